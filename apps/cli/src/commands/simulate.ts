/**
 * `hwopt simulate`: runs the optimizer in process against a twin, with no
 * database or network, and prints each stage's pick and the cost. JSON goes
 * to stdout and progress to stderr.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { InvalidInputError, parseDecimal } from '@hwopt/common';
import { optimize, STAGE_NAMES, type OptimizeResult, type StageName, type StagePick, type TrialMeasurement, type TrialRequest } from '@hwopt/optimizer';
import { loadTwin, TwinTrialExecutor } from '@hwopt/twin';

export interface SimulateFlags {
  twin: string;
  datasetSize: string;
  memoryHeadroom?: string;
  baseline?: boolean;
  json?: boolean;
}

interface PrintedPick {
  layers: number;
  hiddenChannels: number;
  batchSize: number;
  parameters: number;
  peakMiB: number | null;
  stepSeconds: number | null;
  cycleMinutes: number | null;
  inWindow: boolean | null;
}

interface PrintedRun {
  stages: Record<StageName, PrintedPick | null>;
  cost: { trials: number; gpuSeconds: number };
}

export interface SimulateReport extends PrintedRun {
  twin: string;
  gpu: string;
  memoryTotalMiB: number;
  datasetSize: number;
  memoryHeadroom: number;
  legacy?: PrintedRun;
}

/** Parses and checks the flags; each error names the value and the fix. */
export function parseSimulateFlags(flags: SimulateFlags): { twinPath: string; datasetSize: number; headroom: number; baseline: boolean; json: boolean } {
  if (!flags.twin || !existsSync(flags.twin)) {
    throw new InvalidInputError(`Twin file ${JSON.stringify(flags.twin)} was not found; pass --twin with the path of a twin JSON file (for example libs/twin/twins/t4.json).`);
  }
  const datasetSize = parseDecimal(flags.datasetSize);
  if (flags.datasetSize === undefined || !Number.isInteger(datasetSize) || datasetSize < 0) {
    throw new InvalidInputError(`Dataset size ${JSON.stringify(flags.datasetSize)} is invalid; pass --dataset-size with a whole number of samples >= 0.`);
  }
  const headroom = flags.memoryHeadroom === undefined ? 0.05 : parseDecimal(flags.memoryHeadroom);
  if (!Number.isFinite(headroom) || headroom < 0 || headroom >= 1) {
    throw new InvalidInputError(`Memory headroom ${JSON.stringify(flags.memoryHeadroom)} is invalid; pass --memory-headroom with a fraction in [0, 1), for example 0.05.`);
  }
  return { twinPath: flags.twin, datasetSize, headroom, baseline: flags.baseline === true, json: flags.json === true };
}

function printedPick(pick: StagePick | null): PrintedPick | null {
  if (pick === null) return null;
  const { layers, hiddenChannels, batchSize, parameters, peakMiB, stepSeconds, cycleMinutes, inWindow } = pick;
  // Microseconds and milliseconds are finer than any trial measures, so more digits are float noise.
  const rounded = (value: number | null, digits: number) => (value === null ? null : Number(value.toFixed(digits)));
  return { layers, hiddenChannels, batchSize, parameters, peakMiB, stepSeconds: rounded(stepSeconds, 6), cycleMinutes: rounded(cycleMinutes, 5), inWindow };
}

function printedRun(result: OptimizeResult): PrintedRun {
  const stages = Object.fromEntries(STAGE_NAMES.map((s) => [s, printedPick(result.stages[s])])) as Record<StageName, PrintedPick | null>;
  return { stages, cost: { trials: result.cost.trials, gpuSeconds: Number(result.cost.gpuSeconds.toFixed(3)) } };
}

/** Runs the simulation; `progress` receives one line per trial. */
export async function runSimulate(flags: SimulateFlags, progress: (line: string) => void = () => {}): Promise<SimulateReport> {
  const parsed = parseSimulateFlags(flags);
  const twin = loadTwin(parsed.twinPath);
  const onTrial = (strategy: string) => (request: TrialRequest, measurement: TrialMeasurement) => {
    const a = request.architecture;
    progress(`${strategy} ${request.stage}: ${a.layers}x${a.hiddenChannels} batch ${request.batchSize} x${request.iterations} -> ${measurement.outcome}${measurement.peakMiB === null ? '' : ` ${measurement.peakMiB} MiB`}`);
  };
  const base = { memoryTotalMiB: twin.gpu.memoryTotalMiB, gpuModel: twin.gpu.name, datasetSize: parsed.datasetSize, headroom: parsed.headroom };
  const calibrated = await optimize(new TwinTrialExecutor(twin), { ...base, strategy: 'calibrated', onTrial: onTrial('calibrated') });
  const report: SimulateReport = {
    twin: parsed.twinPath,
    gpu: twin.gpu.name,
    memoryTotalMiB: twin.gpu.memoryTotalMiB,
    datasetSize: parsed.datasetSize,
    memoryHeadroom: parsed.headroom,
    ...printedRun(calibrated),
  };
  if (parsed.baseline) {
    report.legacy = printedRun(await optimize(new TwinTrialExecutor(twin), { ...base, strategy: 'legacy', onTrial: onTrial('legacy') }));
  }
  return report;
}

function formatText(report: SimulateReport): string {
  const lines = [`${report.gpu} (${report.memoryTotalMiB} MiB), ${report.datasetSize} samples, headroom ${report.memoryHeadroom}`];
  const limitMiB = Math.floor(report.memoryTotalMiB * (1 - report.memoryHeadroom));
  const runs: [string, PrintedRun][] = [['calibrated', report]];
  if (report.legacy) runs.push(['legacy', report.legacy]);
  for (const [name, run] of runs) {
    lines.push(`${name}: ${run.cost.trials} trials, ${run.cost.gpuSeconds.toFixed(1)} GPU-seconds`);
    for (const stage of STAGE_NAMES) {
      const p = run.stages[stage];
      const detail = p === null
        ? `none: no architecture under the parameter cap fits batch size 1 within ${limitMiB} MiB`
        : `${p.layers} layers x ${p.hiddenChannels} channels, batch ${p.batchSize}, ${p.parameters} parameters, peak ${p.peakMiB ?? '?'} MiB, ` +
          `cycle ${p.cycleMinutes === null ? '?' : p.cycleMinutes.toFixed(1)} min${p.inWindow === null ? '' : p.inWindow ? ' (in window)' : ' (outside window)'}`;
      lines.push(`  ${stage.padEnd(12)} ${detail}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Registers `hwopt simulate` on the program. */
export function registerSimulateCommand(program: Command): void {
  program
    .command('simulate')
    .description('Run the optimizer against a twin in process (no database or network) and print each stage\'s pick and the cost')
    .requiredOption('--twin <file>', 'twin JSON file (format hwopt-twin/1)')
    .requiredOption('--dataset-size <n>', 'training samples; sets the parameter cap')
    .option('--memory-headroom <fraction>', 'fraction of GPU memory a trial must leave free, in [0, 1)', '0.05')
    .option('--baseline', 'also run the legacy search and report it under "legacy"')
    .option('--json', 'print the report as JSON on stdout')
    .action(async (flags: SimulateFlags) => {
      const report = await runSimulate(flags, (line) => process.stderr.write(`${line}\n`));
      process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatText(report));
    });
}
