import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { AGENT_BIN, REPO_ROOT } from '@hwopt/local-fleet';

const FIXTURES = join(REPO_ROOT, 'libs/nvidia-smi/test/fixtures/nvidia-smi');
const scratch = mkdtempSync(join(tmpdir(), 'hwopt-gpus-command-'));

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function runGpus(args: string[], env: Record<string, string> = {}) {
  return execa(process.execPath, [AGENT_BIN, 'gpus', ...args], { reject: false, env, timeout: 60_000 });
}

describe('hwopt-agent gpus', () => {
  it('prints a MIG inventory from a saved XML as JSON', async () => {
    const result = await runGpus(['--from-xml', join(FIXTURES, 'xml/v12-535.54-a100-sxm4-80gb-mig.xml'), '--json']);
    expect(result.exitCode).toBe(0);
    const inventory = JSON.parse(result.stdout);
    expect(inventory.driverVersion).toBe('535.54.03');
    expect(inventory.cudaVersion).toBe('12.2');
    expect(inventory.gpus).toHaveLength(1);
    const gpu = inventory.gpus[0];
    for (const key of ['index', 'uuid', 'name', 'memoryTotalMiB', 'memoryUsedMiB', 'memoryReservedMiB', 'computeCapability', 'migMode', 'migDevices']) {
      expect(gpu, key).toHaveProperty(key);
    }
    expect(gpu.memoryTotalMiB).toBe(81920);
    expect(gpu.migMode).toBe('Enabled');
    expect(gpu.migDevices).toHaveLength(4);
    expect(gpu.migDevices[0].memoryTotalMiB).toBe(19968);
  });

  it('prints a CSV inventory as a table', async () => {
    const result = await runGpus(['--from-csv', join(FIXTURES, 'csv/units-510.47-tesla-p100.csv')]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('Tesla P100');
  });

  it('reads a live nvidia-smi from PATH', async () => {
    const bin = join(scratch, 'bin');
    freshDirectory(bin);
    const fake = join(REPO_ROOT, 'libs/twin/bin/fake-nvidia-smi.mjs');
    writeFileSync(join(bin, 'nvidia-smi'), `#!/bin/sh\nexec "${process.execPath}" "${fake}" "$@"\n`);
    chmodSync(join(bin, 'nvidia-smi'), 0o755);
    const result = await runGpus(['--json'], { PATH: `${bin}:${process.env.PATH}`, HWOPT_TWIN: join(REPO_ROOT, 'libs/twin/twins/t4.json'), HWOPT_TWIN_STATE_DIR: join(scratch, 'twin') });
    expect(result.exitCode).toBe(0);
    const inventory = JSON.parse(result.stdout);
    expect(inventory.driverVersion).toBe('535.183.01');
    expect(inventory.gpus.map((g: { name: string; memoryTotalMiB: number }) => [g.name, g.memoryTotalMiB])).toEqual([['Tesla T4', 15360]]);
  });

  it('rejects two input files in one line', async () => {
    const result = await runGpus(['--from-xml', 'a.xml', '--from-csv', 'b.csv']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('--from-xml and --from-csv cannot be combined');
  });

  it('names a missing file and the fix', async () => {
    const result = await runGpus(['--from-xml', join(scratch, 'missing.xml')]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('missing.xml');
    expect(result.stderr).toContain('readable file');
  });

  it('reports missing nvidia-smi instead of zero GPUs', async () => {
    const result = await runGpus(['--json'], { PATH: join(scratch, 'empty-path') });
    expect(result.exitCode).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.toLowerCase()).toContain('nvidia-smi');
  });
});

function freshDirectory(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
}
