import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';

// `hwopt simulate` run as a process from the repository root, as an operator runs it.
const REPO_ROOT = join(import.meta.dirname, '../../..');
const CLI = 'apps/cli/bin/hwopt.js';
const TWIN = 'libs/twin/twins/t4.json';
const STAGES = ['production', 'validation', 'prototyping', 'smoke_test'];
const PICK_FIELDS = ['layers', 'hiddenChannels', 'batchSize', 'parameters', 'peakMiB', 'stepSeconds', 'cycleMinutes', 'inWindow'];

async function simulate(args: string[]) {
  return execa(process.execPath, [CLI, 'simulate', ...args], { cwd: REPO_ROOT, reject: false, timeout: 60_000 });
}

function expectRunShape(run: Record<string, any>): void {
  expect(Object.keys(run.stages).sort()).toEqual([...STAGES].sort());
  for (const stage of STAGES) {
    const pick = run.stages[stage];
    expect(pick, stage).not.toBeNull();
    expect(Object.keys(pick).sort(), stage).toEqual([...PICK_FIELDS].sort());
    expect(Number.isInteger(pick.batchSize), stage).toBe(true);
    expect(pick.batchSize, stage).toBeGreaterThanOrEqual(1);
  }
  expect(run.stages.smoke_test.batchSize).toBe(1);
  expect(run.stages.production.inWindow).toBeNull();
  expect(typeof run.stages.validation.inWindow).toBe('boolean');
  expect(Number.isInteger(run.cost.trials)).toBe(true);
  expect(run.cost.trials).toBeGreaterThan(0);
  expect(run.cost.gpuSeconds).toBeGreaterThan(0);
}

describe('hwopt simulate as a process', () => {
  // Two tests read the same run, so the CLI starts once for both.
  let plainRun: ReturnType<typeof simulate> | undefined;
  const runPlain = () => (plainRun ??= simulate(['--twin', TWIN, '--dataset-size', '19500', '--json']));

  it('prints only the JSON report on stdout', async () => {
    const result = await runPlain();
    expect(result.exitCode).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({ twin: TWIN, gpu: 'Tesla T4', memoryTotalMiB: 15360, datasetSize: 19500, memoryHeadroom: 0.05 });
    expectRunShape(report);
    expect(report.legacy).toBeUndefined();
  });

  it('writes one progress line per trial to stderr', async () => {
    const result = await runPlain();
    const report = JSON.parse(result.stdout);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(report.cost.trials);
    for (const line of lines) expect(line).toMatch(/^calibrated (production|validation|prototyping|smoke_test): \d+x\d+ batch \d+ x\d+ -> (ok|oom)/);
  });

  it('adds the legacy run with --baseline', async () => {
    const result = await simulate(['--twin', TWIN, '--dataset-size', '19500', '--json', '--baseline']);
    expect(result.exitCode).toBe(0);
    const report = JSON.parse(result.stdout);
    expectRunShape(report);
    expectRunShape(report.legacy);
    // Both strategies apply the same rules, so they must pick the same configs.
    for (const stage of STAGES) {
      const { layers, hiddenChannels, batchSize } = report.stages[stage];
      expect(report.legacy.stages[stage], stage).toMatchObject({ layers, hiddenChannels, batchSize });
    }
    expect(report.cost.trials).toBeLessThanOrEqual(report.legacy.cost.trials / 5);
    expect(result.stderr).toContain('legacy production:');
  });

  it.each([
    { flag: '--dataset-size', value: '-3', args: ['--twin', TWIN, '--dataset-size', '-3'] },
    { flag: '--dataset-size', value: 'many', args: ['--twin', TWIN, '--dataset-size', 'many'] },
    { flag: '--dataset-size', value: '', args: ['--twin', TWIN, '--dataset-size', ''] },
    { flag: '--dataset-size', value: '0x10', args: ['--twin', TWIN, '--dataset-size', '0x10'] },
    { flag: '--memory-headroom', value: '1.5', args: ['--twin', TWIN, '--dataset-size', '19500', '--memory-headroom', '1.5'] },
    { flag: '--memory-headroom', value: '', args: ['--twin', TWIN, '--dataset-size', '19500', '--memory-headroom', ''] },
    { flag: '--twin', value: 'missing-twin.json', args: ['--twin', 'missing-twin.json', '--dataset-size', '19500'] },
  ])('rejects $flag $value in one line', async ({ value, args }) => {
    const result = await simulate([...args, '--json']);
    expect(result.exitCode).not.toBe(0);
    expect(result.stdout).toBe('');
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`"${value}"`);
  });

  it('says why a stage has no pick', async () => {
    // Rounding every trial up to 1e9 MiB leaves nothing that fits.
    const dir = mkdtempSync(join(tmpdir(), 'hwopt-simulate-'));
    try {
      const twin = JSON.parse(readFileSync(join(REPO_ROOT, TWIN), 'utf8'));
      twin.memory.granularityMiB = 1e9;
      const file = join(dir, 'nothing-fits.json');
      writeFileSync(file, JSON.stringify(twin));
      const result = await simulate(['--twin', file, '--dataset-size', '19500']);
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toContain('production   none: no architecture under the parameter cap fits batch size 1 within 14592 MiB');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects a missing --dataset-size in one line', async () => {
    const result = await simulate(['--twin', TWIN, '--json']);
    expect(result.exitCode).not.toBe(0);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('--dataset-size');
  });
});
