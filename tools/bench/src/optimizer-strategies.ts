/**
 * Compares the calibrated and legacy optimizer strategies on the bundled
 * twins and on synthetic ones: trials and GPU-seconds per twin and in
 * total, and cold against warm starts.
 *
 * Run: node --import tsx tools/bench/src/optimizer-strategies.ts
 */
import { bundledTwinPath, loadTwin, TwinTrialExecutor, type Twin } from '@hwopt/twin';
import { optimize, type CostModelSnapshot, type OptimizeResult } from '@hwopt/optimizer';
// The synthetic twin generator is shared with the optimizer's tests.
import { SYNTHETIC_TWIN_SPECS, syntheticTwin } from '../../../libs/optimizer/test/support/synthetic-twins.ts';

const DATASET_SIZES = [5_000, 19_500, 30_000];
const HEADROOMS = [0, 0.05];

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

async function main(): Promise<void> {
  const twins: Twin[] = [...['a100-40gb', 'rtx4090', 't4'].map((n) => loadTwin(bundledTwinPath(n))), ...SYNTHETIC_TWIN_SPECS.map(syntheticTwin)];
  const grand = { calibrated: { trials: 0, gpuSeconds: 0 }, legacy: { trials: 0, gpuSeconds: 0 } };
  const out: string[] = [];
  out.push(`Cold runs, summed over dataset sizes ${DATASET_SIZES.join(', ')} and headroom ${HEADROOMS.join(', ')}`);
  out.push(row(['twin', 'cal trials', 'leg trials', 'trial ratio', 'cal gpu-s', 'leg gpu-s', 'gpu-s ratio']));
  for (const twin of twins) {
    const cal = { trials: 0, gpuSeconds: 0 };
    const leg = { trials: 0, gpuSeconds: 0 };
    for (const datasetSize of DATASET_SIZES) {
      for (const headroom of HEADROOMS) {
        add(cal, await run(twin, datasetSize, headroom, 'calibrated'));
        add(leg, await run(twin, datasetSize, headroom, 'legacy'));
      }
    }
    add(grand.calibrated, { cost: cal } as OptimizeResult);
    add(grand.legacy, { cost: leg } as OptimizeResult);
    out.push(row([twin.gpu.name.replace('NVIDIA ', ''), cal.trials, leg.trials, cal.trials / leg.trials, cal.gpuSeconds, leg.gpuSeconds, cal.gpuSeconds / leg.gpuSeconds]));
  }
  const c = grand.calibrated;
  const l = grand.legacy;
  out.push(row(['total', c.trials, l.trials, c.trials / l.trials, c.gpuSeconds, l.gpuSeconds, c.gpuSeconds / l.gpuSeconds]));

  out.push('');
  out.push('Warm starts (calibrated, 19,500 samples, headroom 0.05): trials cold / same-GPU prior / other-GPU prior');
  out.push(row(['twin', 'cold', 'same prior', 'other prior', 'prior from']));
  for (const [i, twin] of twins.entries()) {
    const cold = await run(twin, 19_500, 0.05, 'calibrated');
    const same = await run(twin, 19_500, 0.05, 'calibrated', cold.model);
    const donor = twins[(i + 1) % twins.length]!;
    const donorModel = (await run(donor, 19_500, 0.05, 'calibrated')).model;
    const other = await run(twin, 19_500, 0.05, 'calibrated', donorModel);
    out.push(row([twin.gpu.name.replace('NVIDIA ', ''), cold.cost.trials, same.cost.trials, other.cost.trials, donor.gpu.name.replace('NVIDIA ', '')]));
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

await main();
