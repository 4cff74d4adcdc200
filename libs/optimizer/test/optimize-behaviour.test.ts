import { describe, expect, it } from 'vitest';
import { bundledTwinPath, loadTwin, TwinTrialExecutor } from '@hwopt/twin';
import {
  InvalidExecutorResponseError,
  InvalidOptimizeOptionError,
  optimize,
  TrialFailedError,
  type OptimizeResult,
  VISNET_PDB,
  type TrialExecutor,
  type TrialRequest,
} from '../src/index.ts';
import { exhaustiveTruth } from './support/exhaustive-truth.ts';
import { SYNTHETIC_TWIN_SPECS, syntheticTwin } from './support/synthetic-twins.ts';

const t4 = loadTwin(bundledTwinPath('t4'));
const a100 = loadTwin(bundledTwinPath('a100-40gb'));
const rtx = loadTwin(bundledTwinPath('rtx4090'));

function options(twin: typeof t4, datasetSize = 19_500) {
  return { memoryTotalMiB: twin.gpu.memoryTotalMiB, gpuModel: twin.gpu.name, datasetSize, headroom: 0.05 };
}

/** Returns the picks without their verify iterations, because a strategy may verify with more than a stage's stress iterations. */
function picks(stages: OptimizeResult['stages']) {
  return Object.fromEntries(Object.entries(stages).map(([stage, pick]) => [stage, pick === null ? null : { ...pick, verifyTrialIterations: undefined }]));
}

describe('cost model snapshot', () => {
  it('survives a JSON round trip', async () => {
    const result = await optimize(new TwinTrialExecutor(t4), options(t4));
    const copy = JSON.parse(JSON.stringify(result.model));
    expect(copy).toEqual(result.model);
    expect(copy.version).toBe(1);
    expect(copy.observations.length).toBe(result.cost.trials);
    expect(copy.memoryLaws.length).toBeGreaterThan(0);
  });

  it('rejects a snapshot of another version', async () => {
    await expect(optimize(new TwinTrialExecutor(t4), { ...options(t4), prior: { version: 99 } as never })).rejects.toBeInstanceOf(InvalidOptimizeOptionError);
  });
});

describe('warm start', () => {
  for (const twin of [t4, a100, rtx]) {
    it(`with a same-GPU prior runs one verify trial per stage: ${twin.gpu.name}`, async () => {
      const cold = await optimize(new TwinTrialExecutor(twin), options(twin));
      const requests: TrialRequest[] = [];
      const warm = await optimize(new TwinTrialExecutor(twin), { ...options(twin), prior: JSON.parse(JSON.stringify(cold.model)), onTrial: (r) => requests.push(r) });
      expect(warm.stages).toEqual(cold.stages);
      expect(warm.cost.trials).toBeLessThanOrEqual(4);
      expect(requests.every((r) => r.purpose === 'verify')).toBe(true);
    });
  }

  it('with another GPU model prior needs fewer trials than cold', async () => {
    let cold = 0;
    let warm = 0;
    for (const [twin, donor] of [[t4, a100], [rtx, t4], [a100, rtx]] as const) {
      for (const datasetSize of [5_000, 19_500, 30_000]) {
        const coldRun = await optimize(new TwinTrialExecutor(twin), options(twin, datasetSize));
        const prior = (await optimize(new TwinTrialExecutor(donor), options(donor, datasetSize))).model;
        const warmRun = await optimize(new TwinTrialExecutor(twin), { ...options(twin, datasetSize), prior });
        expect(warmRun.stages).toEqual(coldRun.stages);
        cold += coldRun.cost.trials;
        warm += warmRun.cost.trials;
      }
    }
    expect(warm).toBeLessThan(cold);
  }, 60_000);

  it('drops a contradicted same-GPU prior and still matches truth', async () => {
    const twin = syntheticTwin(SYNTHETIC_TWIN_SPECS[2]!);
    const cold = await optimize(new TwinTrialExecutor(twin), options(twin));
    // The same GPU model, but every architecture needs 10% more memory per sample.
    const changed = { ...twin, architectures: twin.architectures.map((a) => ({ ...a, perSampleMiB: a.perSampleMiB * 1.1 })) };
    const warm = await optimize(new TwinTrialExecutor(changed), { ...options(twin), prior: cold.model });
    const truth = exhaustiveTruth(changed, { datasetSize: 19_500, headroom: 0.05 });
    expect(warm.stages.production?.batchSize).toBe(truth.production?.batchSize);
    expect(warm.stages.validation?.batchSize).toBe(truth.validation?.batchSize);
    expect(warm.stages.prototyping?.batchSize).toBe(truth.prototyping?.batchSize);
  });
});

describe('optimize', () => {
  it('runs only the requested stages', async () => {
    const result = await optimize(new TwinTrialExecutor(t4), { ...options(t4), stages: ['smoke_test'] });
    expect(result.stages.production).toBeNull();
    expect(result.stages.smoke_test).not.toBeNull();
    expect(result.cost.trials).toBe(1);
  });

  it('sums the executor-reported GPU seconds', async () => {
    let seconds = 0;
    const result = await optimize(new TwinTrialExecutor(t4), { ...options(t4), onTrial: (_r, m) => (seconds += m.gpuSeconds) });
    expect(result.cost.gpuSeconds).toBeCloseTo(seconds, 9);
  });

  it('stops with TrialFailedError on a failed trial', async () => {
    const twinExecutor = new TwinTrialExecutor(t4);
    const executor: TrialExecutor = {
      parameterCounts: (a) => twinExecutor.parameterCounts(a),
      runTrial: async () => ({ outcome: 'failed', peakMiB: null, stepSeconds: null, gpuSeconds: 2, failureKind: 'exit_code', failureMessage: 'exit 1' }),
    };
    const error = await optimize(executor, options(t4)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrialFailedError);
    expect((error as TrialFailedError).measurement.failureKind).toBe('exit_code');
  });

  it('rejects a measurement with a negative peak', async () => {
    const twinExecutor = new TwinTrialExecutor(t4);
    const executor: TrialExecutor = {
      parameterCounts: (a) => twinExecutor.parameterCounts(a),
      runTrial: async () => ({ outcome: 'ok', peakMiB: -5, stepSeconds: 1, gpuSeconds: 2 }),
    };
    await expect(optimize(executor, options(t4))).rejects.toBeInstanceOf(InvalidExecutorResponseError);
  });

  it('stops when the signal aborts', async () => {
    const controller = new AbortController();
    let trials = 0;
    const run = optimize(new TwinTrialExecutor(t4), {
      ...options(t4),
      signal: controller.signal,
      onTrial: () => {
        trials += 1;
        if (trials === 2) controller.abort(new Error('stopped by test'));
      },
    });
    await expect(run).rejects.toThrow('stopped by test');
    expect(trials).toBe(2);
  });

  it('reaches the cap quickly when peaks never grow', async () => {
    // Memory that does not grow with the batch puts every maximum at the 8192 cap.
    const flat = { ...t4, architectures: t4.architectures.map((a) => ({ ...a, perSampleMiB: 0, perSampleSquaredMiB: 0 })) };
    const calibrated = await optimize(new TwinTrialExecutor(flat), options(flat));
    const legacy = await optimize(new TwinTrialExecutor(flat), { ...options(flat), strategy: 'legacy' });
    expect(calibrated.stages.production?.batchSize).toBe(8192);
    expect(picks(calibrated.stages)).toEqual(picks(legacy.stages));
    expect(calibrated.cost.trials).toBeLessThan(legacy.cost.trials / 3);
  });

  it('gives up quickly when nothing fits', async () => {
    // Every trial rounds up to more memory than the GPU has.
    const full = { ...t4, memory: { ...t4.memory, granularityMiB: 1e9 } };
    const calibrated = await optimize(new TwinTrialExecutor(full), options(full));
    const legacy = await optimize(new TwinTrialExecutor(full), { ...options(full), strategy: 'legacy' });
    expect(Object.values(calibrated.stages).every((pick) => pick === null)).toBe(true);
    expect(calibrated.cost.trials).toBeLessThanOrEqual(2 * legacy.cost.trials);
  });

  it('reports the legacy cost well above the calibrated one', async () => {
    const calibrated = await optimize(new TwinTrialExecutor(a100), options(a100, 30_000));
    const legacy = await optimize(new TwinTrialExecutor(a100), { ...options(a100, 30_000), strategy: 'legacy' });
    expect(picks(legacy.stages)).toEqual(picks(calibrated.stages));
    for (const stage of ['production', 'validation', 'prototyping'] as const) {
      expect(calibrated.stages[stage]!.verifyTrialIterations).toBeGreaterThanOrEqual(legacy.stages[stage]!.verifyTrialIterations);
    }
    expect(calibrated.cost.trials * 5).toBeLessThan(legacy.cost.trials);
    expect(calibrated.cost.gpuSeconds * 5).toBeLessThan(legacy.cost.gpuSeconds);
  });
});

describe('maxima proven from peaks', () => {
  /** Runs the calibrated strategy and reports, per stage, the pick and whether a trial ran one sample above it. */
  async function picksAndProbesAbove(twin: typeof t4, datasetSize: number, headroom: number) {
    const requests: TrialRequest[] = [];
    const result = await optimize(new TwinTrialExecutor(twin), { ...options(twin, datasetSize), headroom, onTrial: (r) => requests.push(r) });
    const truth = exhaustiveTruth(twin, { datasetSize, headroom });
    return (['production', 'validation', 'prototyping'] as const).map((stage) => {
      const pick = result.stages[stage]!;
      const probedAbove = requests.some((r) => r.architecture.layers === pick.layers && r.architecture.hiddenChannels === pick.hiddenChannels && r.batchSize === pick.batchSize + 1);
      return { pick, truth: truth[stage]!, probedAbove, requests };
    });
  }

  it('skips the trial above most maxima under fine rounding', async () => {
    let proven = 0;
    for (const datasetSize of [5_000, 19_500, 30_000]) {
      for (const headroom of [0, 0.05]) {
        for (const { pick, truth, probedAbove } of await picksAndProbesAbove(a100, datasetSize, headroom)) {
          expect(pick.batchSize).toBe(truth.batchSize);
          if (!probedAbove) proven += 1;
        }
      }
    }
    // Of 18 picks in all. The A100 twin's allocator rounds to 2 MiB, and its laws need 36 MiB or more per sample.
    expect(proven).toBeGreaterThanOrEqual(15);
  });

  it('probes above every maximum under coarse rounding', async () => {
    const coarse = syntheticTwin(SYNTHETIC_TWIN_SPECS[1]!);
    expect(coarse.memory.granularityMiB).toBe(512);
    for (const datasetSize of [5_000, 30_000]) {
      for (const { pick, truth, probedAbove } of await picksAndProbesAbove(coarse, datasetSize, 0)) {
        expect(pick.batchSize).toBe(truth.batchSize);
        expect(probedAbove).toBe(true);
      }
    }
  });

  it('verifies an equal production and validation pick once', async () => {
    const [production, validation] = await picksAndProbesAbove(a100, 5_000, 0);
    expect(validation!.pick.layers).toBe(production!.pick.layers);
    expect(validation!.pick.hiddenChannels).toBe(production!.pick.hiddenChannels);
    expect(validation!.pick.batchSize).toBe(production!.pick.batchSize);
    expect(validation!.pick.verifyTrialIterations).toBeGreaterThanOrEqual(VISNET_PDB.stressIterations.validation);
    const atPick = production!.requests.filter((r) => r.architecture.layers === production!.pick.layers && r.architecture.hiddenChannels === production!.pick.hiddenChannels && r.batchSize === production!.pick.batchSize);
    expect(atPick.map((r) => r.stage)).toEqual(['production']);
  });
});
