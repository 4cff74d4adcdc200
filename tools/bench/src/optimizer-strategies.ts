/**
 * Compares the calibrated and legacy optimizer strategies on the bundled
 * twins and on synthetic ones: trials and GPU-seconds per twin and in
 * total, the same for held-out and for unseen synthetic twins, and cold
 * against warm starts. A last set of twins is drawn at random, and on it
 * both strategies' picks are also checked against the exhaustive rules.
 *
 * Run: node --import tsx tools/bench/src/optimizer-strategies.ts [--random-twins N] [--seed S]
 */
import { parseArgs } from 'node:util';
import { parseDecimal } from '@hwopt/common';
import { TwinTrialExecutor, type Twin } from '@hwopt/twin';
import { optimize, STAGE_NAMES, type CostModelSnapshot, type OptimizeResult } from '@hwopt/optimizer';
import { DATASET_SIZES, HEADROOMS, heldOutTwins, randomTwins, tunedTwins, unseenTwins } from './optimizer-twins.ts';
// The exhaustive evaluation of the stage rules is shared with the optimizer's tests.
import { exhaustiveTruth, picksOf } from '../../../libs/optimizer/test/support/exhaustive-truth.ts';

interface Totals { trials: number; gpuSeconds: number }

function add(total: Totals, result: OptimizeResult): void {
  total.trials += result.cost.trials;
  total.gpuSeconds += result.cost.gpuSeconds;
}

async function run(twin: Twin, datasetSize: number, headroom: number, strategy: 'calibrated' | 'legacy', prior?: CostModelSnapshot): Promise<OptimizeResult> {
  return optimize(new TwinTrialExecutor(twin), { memoryTotalMiB: twin.gpu.memoryTotalMiB, gpuModel: twin.gpu.name, datasetSize, headroom, strategy, prior });
}

function row(cells: (string | number)[]): string {
  return cells.map((c, i) => (typeof c === 'number' ? c.toFixed(c < 10 && !Number.isInteger(c) ? 3 : 0) : c).padStart(i === 0 ? 22 : 12)).join('');
}

/** Counts the stages whose pick differs from the exhaustive evaluation of the rules on the twin's laws. */
function wrongPicks(twin: Twin, datasetSize: number, headroom: number, result: OptimizeResult): number {
  const truth = exhaustiveTruth(twin, { datasetSize, headroom });
  const picks = picksOf(result);
  return STAGE_NAMES.filter((stage) => JSON.stringify(picks[stage]) !== JSON.stringify(truth[stage])).length;
}

/** Appends one row per twin and a total row to `out`, and returns the totals and the picks that broke the rules. */
async function coldRuns(twins: Twin[], totalLabel: string, out: string[]): Promise<{ calibrated: Totals; legacy: Totals; wrong: number }> {
  const grand = { calibrated: { trials: 0, gpuSeconds: 0 }, legacy: { trials: 0, gpuSeconds: 0 }, wrong: 0 };
  for (const twin of twins) {
    const cal = { trials: 0, gpuSeconds: 0 };
    const leg = { trials: 0, gpuSeconds: 0 };
    for (const datasetSize of DATASET_SIZES) {
      for (const headroom of HEADROOMS) {
        const calibrated = await run(twin, datasetSize, headroom, 'calibrated');
        const legacy = await run(twin, datasetSize, headroom, 'legacy');
        add(cal, calibrated);
        add(leg, legacy);
        grand.wrong += wrongPicks(twin, datasetSize, headroom, calibrated) + wrongPicks(twin, datasetSize, headroom, legacy);
      }
    }
    add(grand.calibrated, { cost: cal } as OptimizeResult);
    add(grand.legacy, { cost: leg } as OptimizeResult);
    out.push(row([twin.gpu.name.replace('NVIDIA ', ''), cal.trials, leg.trials, cal.trials / leg.trials, cal.gpuSeconds, leg.gpuSeconds, cal.gpuSeconds / leg.gpuSeconds]));
  }
  const c = grand.calibrated;
  const l = grand.legacy;
  out.push(row([totalLabel, c.trials, l.trials, c.trials / l.trials, c.gpuSeconds, l.gpuSeconds, c.gpuSeconds / l.gpuSeconds]));
  return grand;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'random-twins': { type: 'string', default: '20' }, seed: { type: 'string', default: '1' } } });
  const randomCount = parseDecimal(values['random-twins']);
  const seed = parseDecimal(values.seed);
  if (!Number.isInteger(randomCount) || randomCount < 0) throw new Error(`Invalid --random-twins value ${JSON.stringify(values['random-twins'])}. Pass a whole number of twins, 0 or more.`);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`Invalid --seed value ${JSON.stringify(values.seed)}. Pass a whole number, 0 or more.`);
  const entries = tunedTwins();
  const out: string[] = [];
  out.push(`Cold runs, summed over dataset sizes ${DATASET_SIZES.join(', ')} and headroom ${HEADROOMS.join(', ')}`);
  out.push(row(['twin', 'cal trials', 'leg trials', 'trial ratio', 'cal gpu-s', 'leg gpu-s', 'gpu-s ratio']));
  await coldRuns(entries.map((e) => e.twin), 'total', out);
  // The held-out twins never set any constant of the strategies, so their total estimates an unseen GPU.
  out.push('held-out synthetic twins');
  await coldRuns(heldOutTwins(), 'held-out total', out);
  // The unseen twins were added after the held-out ones had judged changes, and judge none.
  out.push('unseen synthetic twins');
  await coldRuns(unseenTwins(), 'unseen total', out);
  if (randomCount > 0) {
    out.push(`${randomCount} random synthetic twins, seed ${seed}`);
    const random = await coldRuns(randomTwins(randomCount, seed), 'random total', out);
    out.push(`picks of either strategy that differ from the exhaustive rules: ${random.wrong}`);
  }

  out.push('');
  out.push('Warm starts (calibrated, summed over the same dataset sizes and headrooms): trials of a cold run, with a prior');
  out.push('of the same GPU model, and with a prior of another GPU model running the same workload (same memory laws)');
  out.push(row(['twin', 'cold', 'same prior', 'other prior', '  prior from']));
  const warm = { cold: 0, same: 0, other: 0 };
  for (const [i, entry] of entries.entries()) {
    const donor = entries.find((e, j) => j !== i && e.family === entry.family);
    let cold = 0;
    let same = 0;
    let other = 0;
    for (const datasetSize of DATASET_SIZES) {
      for (const headroom of HEADROOMS) {
        const first = await run(entry.twin, datasetSize, headroom, 'calibrated');
        cold += first.cost.trials;
        same += (await run(entry.twin, datasetSize, headroom, 'calibrated', first.model)).cost.trials;
        if (donor !== undefined) {
          const donorModel = (await run(donor.twin, datasetSize, headroom, 'calibrated')).model;
          other += (await run(entry.twin, datasetSize, headroom, 'calibrated', donorModel)).cost.trials;
        }
      }
    }
    warm.cold += cold;
    warm.same += same;
    if (donor !== undefined) warm.other += other;
    out.push(row([entry.twin.gpu.name.replace('NVIDIA ', ''), cold, same, donor === undefined ? '-' : other, `  ${donor?.twin.gpu.name.replace('NVIDIA ', '') ?? '(no other GPU with these laws)'}`]));
  }
  out.push(row(['total', warm.cold, warm.same, warm.other, '  (other-prior total covers twins with a donor)']));
  process.stdout.write(`${out.join('\n')}\n`);
}

await main();
