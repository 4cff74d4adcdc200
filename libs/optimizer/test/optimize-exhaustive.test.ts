import { describe, expect, it } from 'vitest';
import { bundledTwinPath, loadTwin, TwinTrialExecutor, type Twin } from '@hwopt/twin';
import { optimize, STAGE_NAMES, type OptimizeResult } from '../src/index.ts';
import { exhaustiveTruth, picksOf } from './support/exhaustive-truth.ts';

const BUNDLED = ['a100-40gb', 'rtx4090', 't4'];
const DATASET_SIZES = [5_000, 19_500, 30_000];
const HEADROOMS = [0, 0.05];

export function checkVerification(result: OptimizeResult, stress: Record<string, number>): void {
  for (const s of STAGE_NAMES) {
    const p = result.stages[s];
    if (p !== null) expect(p.verifyTrialIterations).toBeGreaterThanOrEqual(stress[s]!);
  }
}

describe.each(['legacy', 'calibrated'] as const)('%s strategy on bundled twins', (strategy) => {
  for (const name of BUNDLED) {
    const twin: Twin = loadTwin(bundledTwinPath(name));
    for (const datasetSize of DATASET_SIZES) {
      for (const headroom of HEADROOMS) {
        it(`matches exhaustive truth: ${name}, ${datasetSize} samples, headroom ${headroom}`, async () => {
          const result = await optimize(new TwinTrialExecutor(twin), { memoryTotalMiB: twin.gpu.memoryTotalMiB, datasetSize, headroom, strategy });
          expect(picksOf(result)).toEqual(exhaustiveTruth(twin, { datasetSize, headroom }));
          checkVerification(result, { production: 20, validation: 29, prototyping: 20, smoke_test: 1 });
        });
      }
    }
  }
});
