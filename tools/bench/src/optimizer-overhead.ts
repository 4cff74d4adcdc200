/**
 * Splits the calibrated strategy's trials into the part its design needs
 * and the part a sharper boundary search could save, per twin set.
 *
 * The design needs, on each stage's picked architecture, a first point
 * (production: the calibration probe at the start batch size and one probe
 * near the predicted maximum; prototyping and validation: the screening
 * probe), then a feasible trial at maxBatch = m, and an infeasible one at
 * m + 1 where the measured peaks did not prove m + 1 over the limit. So
 * production needs 3 or 4 trials on its pick and each efficiency stage 2
 * or 3. Trials on a pick beyond that are overhead of the boundary search.
 * Everything else (the smoke test, screening the other candidates, ruling
 * them out) is counted as needed. The figure "without overhead" is the
 * ratio the strategy would reach if every pick were proven in exactly
 * those trials.
 *
 * Run: node --import tsx tools/bench/src/optimizer-overhead.ts
 */
import { TwinTrialExecutor, type Twin } from '@hwopt/twin';
import { optimize, type StageName, type TrialMeasurement, type TrialRequest } from '@hwopt/optimizer';
import { DATASET_SIZES, HEADROOMS, heldOutTwins, tunedTwins, unseenTwins } from './optimizer-twins.ts';

/** Trials a pick needs before the one at maxBatch: the first point or points. */
const FIRST_POINTS: Partial<Record<StageName, number>> = { production: 2, validation: 1, prototyping: 1 };

/** Records every trial request that passes through, so the bench can count them per stage and architecture. */
class RecordingExecutor extends TwinTrialExecutor {
  readonly requests: TrialRequest[] = [];

  override async runTrial(request: TrialRequest): Promise<TrialMeasurement> {
    this.requests.push(request);
    return super.runTrial(request);
  }
}

interface SetFigures {
  calibrated: number;
  legacy: number;
  overhead: Record<string, number>;
}

async function measure(twins: Twin[]): Promise<SetFigures> {
  const figures: SetFigures = { calibrated: 0, legacy: 0, overhead: { production: 0, validation: 0, prototyping: 0 } };
  for (const twin of twins) {
    for (const datasetSize of DATASET_SIZES) {
      for (const headroom of HEADROOMS) {
        const options = { memoryTotalMiB: twin.gpu.memoryTotalMiB, gpuModel: twin.gpu.name, datasetSize, headroom };
        const executor = new RecordingExecutor(twin);
        const result = await optimize(executor, { ...options, strategy: 'calibrated' });
        figures.calibrated += result.cost.trials;
        figures.legacy += (await optimize(new TwinTrialExecutor(twin), { ...options, strategy: 'legacy' })).cost.trials;
        for (const [stage, firstPoints] of Object.entries(FIRST_POINTS) as [StageName, number][]) {
          const pick = result.stages[stage];
          if (pick === null) continue;
          const ofPick = executor.requests.filter((request) => request.architecture.layers === pick.layers && request.architecture.hiddenChannels === pick.hiddenChannels);
          const onPick = ofPick.filter((request) => request.stage === stage).length;
          const probedAbove = ofPick.some((request) => request.batchSize === pick.batchSize + 1);
          const needed = firstPoints + 1 + (probedAbove ? 1 : 0);
          figures.overhead[stage]! += Math.max(0, onPick - needed);
        }
      }
    }
  }
  return figures;
}

async function main(): Promise<void> {
  const sets: [string, Twin[]][] = [
    ['tuned', tunedTwins().map((entry) => entry.twin)],
    ['held-out', heldOutTwins()],
    ['unseen', unseenTwins()],
  ];
  const header = ['twins', 'cal trials', 'leg trials', 'ratio', 'overhead (prod/val/proto)', 'ratio without overhead'];
  const lines = [header.join(' | ')];
  for (const [name, twins] of sets) {
    const totals = await measure(twins);
    const overhead = totals.overhead.production! + totals.overhead.validation! + totals.overhead.prototyping!;
    lines.push([
      name,
      totals.calibrated,
      totals.legacy,
      (totals.calibrated / totals.legacy).toFixed(3),
      `${overhead} (${totals.overhead.production}/${totals.overhead.validation}/${totals.overhead.prototyping})`,
      ((totals.calibrated - overhead) / totals.legacy).toFixed(3),
    ].join(' | '));
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
