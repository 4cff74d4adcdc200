import { describe, expect, it } from 'vitest';
import { CostModel } from '../src/cost-model.ts';
import { TrialLedger, type TrialObservation } from '../src/trial-ledger.ts';
import type { Architecture } from '../src/types.ts';

const SMOKE: Architecture = { layers: 1, hiddenChannels: 8 };
const PRODUCTION: Architecture = { layers: 7, hiddenChannels: 96 };
const PARAMETERS = new Map([['1x8', 10_000], ['7x96', 5_000_000]]);

function observation(a: Architecture, batchSize: number, peakMiB: number): TrialObservation {
  return { ...a, batchSize, iterations: 20, outcome: 'ok', peakMiB, stepSeconds: 0.1, source: 'run' };
}

/** Builds a cost model from measured peaks alone; the executor is never called. */
function modelOf(observations: TrialObservation[]): CostModel {
  const executor = { runTrial: () => Promise.reject(new Error('no trials in this test')) };
  const ledger = new TrialLedger({ executor, options: { headroom: 0, maxBatchSize: 8192, memoryTotalMiB: 100_000, signal: undefined, onTrial: undefined } });
  ledger.addPrior(observations);
  return new CostModel({ ledger, parametersOf: (a) => PARAMETERS.get(`${a.layers}x${a.hiddenChannels}`) ?? 0, foreign: [] });
}

describe('CostModel two-size laws', () => {
  // peak(b) = 1000 + 100 b + 0.5 b^2, so the true maximum under 76,000 MiB is 300.
  const quadratic = (b: number) => 1000 + 100 * b + 0.5 * b * b;

  it('bends through the smoke test floor', () => {
    const model = modelOf([observation(SMOKE, 1, 900), observation(PRODUCTION, 20, quadratic(20)), observation(PRODUCTION, 200, quadratic(200))]);
    const law = model.memoryLaw(PRODUCTION);
    expect(law?.source).toBe('measured');
    expect(law?.law.perSampleSquaredMiB).toBeGreaterThan(0);
    const prediction = model.predictMaxBatch(PRODUCTION, quadratic(300), 8192);
    // The chord through the two points alone predicts 366.
    expect(prediction?.estimate).toBeGreaterThanOrEqual(300);
    expect(prediction?.estimate).toBeLessThan(320);
  });

  it('keeps a line that clears the floor', () => {
    const linear = (b: number) => 1000 + 100 * b;
    const model = modelOf([observation(SMOKE, 1, 900), observation(PRODUCTION, 20, linear(20)), observation(PRODUCTION, 200, linear(200))]);
    expect(model.memoryLaw(PRODUCTION)?.law.perSampleSquaredMiB).toBe(0);
    expect(model.predictMaxBatch(PRODUCTION, linear(300), 8192)?.estimate).toBe(300);
  });

  it('keeps a line without a smaller architecture', () => {
    const model = modelOf([observation(PRODUCTION, 20, quadratic(20)), observation(PRODUCTION, 200, quadratic(200))]);
    expect(model.memoryLaw(PRODUCTION)?.law.perSampleSquaredMiB).toBe(0);
  });
});

describe('CostModel.provesCeiling', () => {
  // The peaks' differences share no rounding step above 2 MiB, so the model takes the step to
  // be small. With peaks such as 3000 and 30000, the step could be as large as their common divisor.
  const linear = (b: number) => 1002 + 100 * b;
  const measured = [observation(SMOKE, 1, 900), observation(PRODUCTION, 20, linear(20)), observation(PRODUCTION, 290, linear(290))];

  it('proves a ceiling one sample short of the limit', () => {
    // The limit lies 50 MiB above the peak at 290, and one more sample needs 100.
    expect(modelOf(measured).provesCeiling(PRODUCTION, 290, linear(290) + 50)).toBe(true);
  });

  it('leaves room for one more sample', () => {
    // 291 needs 30,102 MiB and fits under 30,152.
    expect(modelOf(measured).provesCeiling(PRODUCTION, 290, linear(290) + 150)).toBe(false);
  });

  it('allows jitter at both readings', () => {
    // With readings 10 sizes apart, 20 MiB either way at each leaves a slope of 95.8 MiB, not 100.
    const close = [observation(SMOKE, 1, 900), observation(PRODUCTION, 280, linear(280)), observation(PRODUCTION, 290, linear(290))];
    expect(modelOf(close).provesCeiling(PRODUCTION, 290, linear(290) + 73)).toBe(true);
    expect(modelOf(close).provesCeiling(PRODUCTION, 290, linear(290) + 76)).toBe(false);
  });

  it('trusts the lower of two readings', () => {
    // A second run at 290 read 100 MiB less, so one more sample may still fit.
    const repeated = [...measured, observation(PRODUCTION, 290, linear(290) - 100)];
    expect(modelOf(repeated).provesCeiling(PRODUCTION, 290, linear(290) + 50)).toBe(false);
  });

  it('needs a second measured size', () => {
    const single = [observation(SMOKE, 1, 900), observation(PRODUCTION, 290, linear(290))];
    expect(modelOf(single).provesCeiling(PRODUCTION, 290, linear(290) + 50)).toBe(false);
  });

  it('proves nothing under coarse rounding', () => {
    // Peaks rounded up to 512 MiB: 291 samples need 30,102, which still rounds to the 30,208 of 290.
    const rounded = (b: number) => 512 * Math.ceil(linear(b) / 512);
    const coarse = [observation(PRODUCTION, 20, rounded(20)), observation(PRODUCTION, 150, rounded(150)), observation(PRODUCTION, 290, rounded(290))];
    expect(rounded(291)).toBe(rounded(290));
    expect(modelOf(coarse).provesCeiling(PRODUCTION, 290, rounded(290) + 100)).toBe(false);
    expect(modelOf(coarse).ceilingProofChance(PRODUCTION, 290)).toBe(0);
  });

  it('proves nothing when rounding may exceed the cap', () => {
    // Rounded up to 4096 MiB, 21 samples need 32,502 and still fit within the 32,768 of 20.
    const law = (b: number) => 4096 * Math.ceil((1002 + 1500 * b) / 4096);
    const huge = [observation(PRODUCTION, 4, law(4)), observation(PRODUCTION, 20, law(20))];
    expect(law(21)).toBe(law(20));
    expect(modelOf(huge).provesCeiling(PRODUCTION, 20, law(20) + 10)).toBe(false);
  });

  it('proves nothing under fractional rounding', () => {
    // Peaks rounded up to 100.25 MiB: 287 samples need 12,482 and round to the 12,531.25 of 286.
    const law = (b: number) => 100.25 * Math.ceil((1002 + 40 * b) / 100.25);
    const fractional = [observation(PRODUCTION, 20, law(20)), observation(PRODUCTION, 150, law(150)), observation(PRODUCTION, 286, law(286))];
    expect(law(287)).toBe(law(286));
    expect(modelOf(fractional).provesCeiling(PRODUCTION, 286, law(286) + 10)).toBe(false);
  });

  it('rates a steep law likely to prove its ceiling', () => {
    expect(modelOf(measured).ceilingProofChance(PRODUCTION, 290)).toBeGreaterThan(0.7);
    expect(modelOf([observation(SMOKE, 1, 900)]).ceilingProofChance(PRODUCTION, 290)).toBe(0);
  });
});
