import { describe, expect, it } from 'vitest';
import { TwinTrialExecutor } from '@hwopt/twin';
import { optimize, STAGE_NAMES } from '../src/index.ts';
import { exhaustiveTruth, picksOf } from './support/exhaustive-truth.ts';
import { HELD_OUT_SYNTHETIC_TWIN_SPECS, SYNTHETIC_TWIN_SPECS, syntheticTwin, UNSEEN_SYNTHETIC_TWIN_SPECS } from './support/synthetic-twins.ts';

const DATASET_SIZES = [800, 5_000, 19_500, 30_000];
const HEADROOMS = [0, 0.05, 0.2];
const STRESS: Record<string, number> = { production: 20, validation: 29, prototyping: 20, smoke_test: 1 };

describe.each(['legacy', 'calibrated'] as const)('%s strategy on synthetic twins', (strategy) => {
  for (const spec of [...SYNTHETIC_TWIN_SPECS, ...HELD_OUT_SYNTHETIC_TWIN_SPECS, ...UNSEEN_SYNTHETIC_TWIN_SPECS]) {
    const twin = syntheticTwin(spec);
    for (const datasetSize of DATASET_SIZES) {
      for (const headroom of HEADROOMS) {
        it(`matches exhaustive truth: ${spec.name}, ${datasetSize} samples, headroom ${headroom}`, async () => {
          const result = await optimize(new TwinTrialExecutor(twin), { memoryTotalMiB: twin.gpu.memoryTotalMiB, datasetSize, headroom, strategy });
          expect(picksOf(result)).toEqual(exhaustiveTruth(twin, { datasetSize, headroom }));
          for (const s of STAGE_NAMES) {
            const p = result.stages[s];
            if (p !== null) expect(p.verifyTrialIterations).toBeGreaterThanOrEqual(STRESS[s]!);
          }
        });
      }
    }
  }

  it('matches exhaustive truth with a small batch cap and custom windows', async () => {
    const twin = syntheticTwin(SYNTHETIC_TWIN_SPECS[3]!);
    const windows = { prototyping: [5, 15] as [number, number], validation: [20, 30] as [number, number] };
    for (const maxBatchSize of [1, 7, 64]) {
      const result = await optimize(new TwinTrialExecutor(twin), {
        memoryTotalMiB: twin.gpu.memoryTotalMiB, datasetSize: 30_000, headroom: 0.05, maxBatchSize, strategy,
        prototypingWindowMinutes: windows.prototyping, validationWindowMinutes: windows.validation,
      });
      expect(picksOf(result)).toEqual(exhaustiveTruth(twin, { datasetSize: 30_000, headroom: 0.05, maxBatchSize, windows }));
    }
  });
});
