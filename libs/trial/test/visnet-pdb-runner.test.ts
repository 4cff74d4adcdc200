import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DescribeFailedError, describeArchitectures, executeTrial, type RunnerConfig } from '../src/index.ts';
import { makeSpec } from './helpers.ts';

const RUNNER = fileURLToPath(new URL('../../../runners/visnet-pdb/runner.py', import.meta.url));
const runner: RunnerConfig = { kind: 'protocol', command: 'python3', args: [RUNNER] };

function pythonSucceeds(code: string): boolean {
  const result = spawnSync('python3', ['-c', code], { stdio: 'ignore', timeout: 120_000 });
  return result.status === 0;
}

const hasPython = pythonSucceeds('import sys');
const hasTorch = hasPython && pythonSucceeds('import torch, torch_geometric');
const hasCuda = hasTorch && pythonSucceeds('import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)');

describe('visnet-pdb runner without PyTorch', () => {
  // Runs only where python3 exists and torch does not, to check the error path.
  it.skipIf(!hasPython || hasTorch)('fails describe with a clear message', async () => {
    const error = await describeArchitectures(runner, 'visnet-pdb', [{ layers: 2, hiddenChannels: 64 }]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DescribeFailedError);
    expect((error as Error).message).toContain('PyTorch and torch_geometric are required');
  });

  it.skipIf(!hasPython || hasTorch)('fails a trial as runner error', async () => {
    const report = await executeTrial(makeSpec({ architecture: { layers: 2, hiddenChannels: 64 } }), { runner, timeoutMs: 60_000 });
    expect(report.outcome).toBe('failed');
    expect(report.failure?.kind).toBe('runner_error');
    expect(report.failure?.summary).toContain('PyTorch and torch_geometric are required');
    expect(report.exitCode).toBe(3);
  });
});

describe('visnet-pdb runner requests', () => {
  it.skipIf(!hasPython)('rejects hidden channels not divisible by heads', async () => {
    await expect(describeArchitectures(runner, 'visnet-pdb', [{ layers: 2, hiddenChannels: 65 }])).rejects.toThrow(/multiple of 8/);
  });

  it.skipIf(!hasPython)('rejects another workload', async () => {
    await expect(describeArchitectures(runner, 'other', [{ layers: 2, hiddenChannels: 64 }])).rejects.toThrow(/serves workload visnet-pdb/);
  });
});

describe('visnet-pdb runner with PyTorch', () => {
  // Needs `python3 -c "import torch, torch_geometric"` to succeed; skipped elsewhere.
  it.skipIf(!hasTorch)('counts trainable parameters on CPU', async () => {
    const architectures = [
      { layers: 2, hiddenChannels: 64 },
      { layers: 2, hiddenChannels: 128 },
      { layers: 4, hiddenChannels: 128 },
    ];
    const counts = await describeArchitectures(runner, 'visnet-pdb', architectures, { timeoutMs: 300_000 });
    expect(counts).toHaveLength(3);
    expect(counts[0]).toBeGreaterThan(0);
    expect(counts[1]).toBeGreaterThan(counts[0]);
    expect(counts[2]).toBeGreaterThan(counts[1]);
  }, 310_000);

  // Needs a CUDA build of PyTorch and a GPU; skipped elsewhere.
  it.skipIf(!hasCuda)('runs a short trial on the GPU', async () => {
    const uuid = spawnSync('nvidia-smi', ['--query-gpu=uuid', '--format=csv,noheader'], { encoding: 'utf8' }).stdout.split('\n')[0].trim();
    const spec = makeSpec({ architecture: { layers: 2, hiddenChannels: 64 }, batchSize: 2, iterations: 3, device: { index: 0, uuid } });
    const report = await executeTrial(spec, { runner, timeoutMs: 300_000 });
    expect(report.failure).toBeNull();
    expect(report.outcome).toBe('ok');
    expect(report.stepSeconds?.count).toBe(3);
    expect(report.frameworkPeakAllocatedBytes).toBeGreaterThan(0);
    expect(report.parameterCount).toBeGreaterThan(0);
  }, 310_000);
});
