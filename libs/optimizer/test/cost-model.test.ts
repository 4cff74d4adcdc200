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
