import { describe, expect, it } from 'vitest';
import { leastSquares, nonNegativeLeastSquares } from '../src/least-squares.ts';
import { TimeModel } from '../src/time-model.ts';
import type { TrialObservation } from '../src/trial-ledger.ts';
import type { Architecture } from '../src/types.ts';

/** Parameter count of the synthetic twins' law: 8 L c^2 + 30 L c + 4 c^2 + 2000. */
function parameters(a: Architecture): number {
  const { layers: l, hiddenChannels: c } = a;
  return 8 * l * c * c + 30 * l * c + 4 * c * c + 2000;
}

function stepObservation(layers: number, hiddenChannels: number, batchSize: number, stepSeconds: number): TrialObservation {
  return { layers, hiddenChannels, batchSize, iterations: 20, outcome: 'ok', peakMiB: 1000, stepSeconds, source: 'run' };
}

describe('nonNegativeLeastSquares', () => {
  // y = 2 x1 - 1 x2 fits exactly, so the unconstrained solution has a negative coefficient.
  const rows = [[1, 0], [0, 1], [1, 1], [2, 1]];
  const targets = [2, -1, 1, 3];

  it('matches least squares when non-negative', () => {
    const positive = [2, 1, 3, 5];
    expect(nonNegativeLeastSquares(rows, positive)).toEqual(leastSquares(rows, positive));
  });

  it('clamps negative coefficients to zero', () => {
    expect(leastSquares(rows, targets)![1]).toBeLessThan(0);
    const solution = nonNegativeLeastSquares(rows, targets)!;
    expect(solution[1]).toBe(0);
    // With x2 dropped, the best x1 is sum(x1 y) / sum(x1^2) = (2 + 1 + 6) / 6.
    expect(solution[0]).toBeCloseTo(1.5, 10);
  });

  it('returns null without columns', () => {
    expect(nonNegativeLeastSquares([], [])).toBeNull();
  });
});

describe('TimeModel on small architectures', () => {
  // Steps measured on a slow 10 GiB GPU: the smoke test at batch size 1, production's search,
  // and the validation screens. The smallest prototyping architecture, 1 x 24, takes about
  // 0.96 s per step at batch size 338 on that GPU.
  // [layers, hidden channels, batch size, step seconds]
  const measured: [number, number, number, number][] = [
    [1, 8, 1, 0.028],
    [6, 96, 16, 1.346], [6, 96, 42, 3.459], [6, 96, 55, 4.515], [6, 96, 62, 5.084],
    [2, 32, 78, 0.514], [3, 32, 193, 2.008], [4, 64, 110, 2.842], [3, 64, 132, 3.285],
    [4, 48, 131, 2.965], [3, 48, 153, 2.656], [2, 64, 165, 2.196], [4, 32, 167, 2.053], [2, 48, 187, 1.832],
  ];
  const observations = measured.map(([layers, hiddenChannels, batchSize, stepSeconds]) => stepObservation(layers, hiddenChannels, batchSize, stepSeconds));

  it('brackets a smaller unscreened architecture', () => {
    const model = new TimeModel(observations, parameters);
    const [low, , high] = model.predictStep({ layers: 1, hiddenChannels: 24 }, 338)!;
    expect(low).toBeLessThanOrEqual(0.96);
    expect(high).toBeGreaterThanOrEqual(0.96);
  });
});
