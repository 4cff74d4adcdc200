import { describe, expect, it } from 'vitest';
import { chooseBoundaryProbe, outcomeProbability, planBracket } from '../src/boundary-search.ts';

const OPTIONS = { lowerNeedsVerify: false, upperProven: false };

describe('chooseBoundaryProbe', () => {
  it('returns null once the bracket is closed', () => {
    expect(chooseBoundaryProbe(40, 40, { estimate: 40, spread: 1 }, OPTIONS)).toBeNull();
  });

  it('probes a sharp estimate as the final size', () => {
    const probe = chooseBoundaryProbe(10, 8192, { estimate: 62, spread: 0.25 }, OPTIONS);
    expect(probe?.batchSize).toBe(62);
    expect(probe?.finalIfFeasible).toBeGreaterThan(0.9);
  });

  it('probes the upper bound when the estimate lies at it', () => {
    const probe = chooseBoundaryProbe(60, 63, { estimate: 63, spread: 0.25 }, { ...OPTIONS, upperProven: true });
    expect(probe?.batchSize).toBe(63);
    expect(probe?.finalIfFeasible).toBe(1);
  });

  it('aims below a wide estimate', () => {
    const probe = chooseBoundaryProbe(0, 8192, { estimate: 300, spread: 50 }, OPTIONS);
    expect(probe?.batchSize).toBeLessThan(300);
    expect(probe?.batchSize).toBeGreaterThan(200);
  });

  it('stays inside the bracket when the estimate overshoots it', () => {
    for (const estimate of [70, 500, 8000]) {
      const probe = chooseBoundaryProbe(20, 64, { estimate, spread: 2 }, { ...OPTIONS, upperProven: true });
      expect(probe?.batchSize).toBeGreaterThan(20);
      expect(probe?.batchSize).toBeLessThanOrEqual(64);
    }
  });

  it('halves the gap to a wide estimate', () => {
    // The belief's half spread lies far below the proven size, as when peaks hardly grow.
    const probe = chooseBoundaryProbe(7755, 8192, { estimate: 8192, spread: 900 }, OPTIONS);
    expect(probe?.batchSize).toBe(7973);
  });

  it('halves a proven bracket despite a poor belief', () => {
    const probe = chooseBoundaryProbe(0, 254, { estimate: 900, spread: 10 }, { ...OPTIONS, upperProven: true });
    expect(probe?.batchSize).toBeGreaterThanOrEqual(127);
    expect(probe?.batchSize).toBeLessThanOrEqual(254);
  });

  it('every probe lies in (lower, upper] for any belief', () => {
    for (const [lower, upper] of [[0, 1], [0, 5], [3, 4], [17, 90], [100, 8192]] as const) {
      for (const estimate of [-5, 0, 2, 50, 120, 9000]) {
        for (const spread of [0.1, 1, 30]) {
          const probe = chooseBoundaryProbe(lower, upper, { estimate, spread }, OPTIONS);
          expect(probe?.batchSize).toBeGreaterThan(lower);
          expect(probe?.batchSize).toBeLessThanOrEqual(upper);
        }
      }
    }
  });
});

describe('outcomeProbability', () => {
  it('splits evenly at the estimate', () => {
    expect(outcomeProbability({ estimate: 50, spread: 3 }, 50.5, true)).toBeCloseTo(0.5, 6);
  });

  it('rates a probe far above the estimate unlikely to fit', () => {
    expect(outcomeProbability({ estimate: 50, spread: 3 }, 70, true)).toBeLessThan(1e-6);
    expect(outcomeProbability({ estimate: 50, spread: 3 }, 70, false)).toBeGreaterThan(0.999);
  });
});

describe('planBracket', () => {
  // Index 0 is proven feasible and maxBatch is certainly index 1.
  const certain = [0, 1, 0];

  it('needs a fit and a failure without proofs', () => {
    expect(planBracket(certain, 0, 0, 0).expectedTrials).toBeCloseTo(2, 9);
  });

  it('needs one fit when it proves the maximum', () => {
    const plan = planBracket(certain, 0, 1, 0);
    expect(plan.firstProbe).toBe(1);
    expect(plan.expectedTrials).toBeCloseTo(1, 9);
  });

  it('weighs a proof by its chance', () => {
    expect(planBracket(certain, 0, 0.5, 0).expectedTrials).toBeCloseTo(1.5, 9);
  });

  it('rules out a lower size whose proof failed', () => {
    // maxBatch is index 0 or 2 alike. Without a proof at index 0, a failure at 2 leaves a probe at 1.
    const split = [0.5, 0, 0.5];
    expect(planBracket(split, 0, 0, 0).expectedTrials).toBeCloseTo(1.5, 9);
    expect(planBracket(split, 0, 0, 1).expectedTrials).toBeCloseTo(1, 9);
  });
});
