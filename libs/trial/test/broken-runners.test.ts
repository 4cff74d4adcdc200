import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GpuTrialQueue, executeTrial, type RunnerConfig } from '../src/index.ts';
import { GPU_UUID, TEST_RUNNERS_DIR, isAlive, makeSpec, makeStateDir, simulatedRunner, testRunner } from './helpers.ts';

describe('executeTrial with broken runners', () => {
  it('kills a runner that ignores SIGTERM', async () => {
    const report = await executeTrial(makeSpec(), { runner: testRunner('hang.mjs'), timeoutMs: 500, killGraceMs: 300 });
    expect(report.outcome).toBe('failed');
    expect(report.failure?.kind).toBe('timeout');
    expect(report.signal).toBe('SIGKILL');
    expect(report.wallSeconds).toBeGreaterThanOrEqual(0.5);
    expect(report.wallSeconds).toBeLessThan(4);
  });

  it('stops a runner writing an endless line', async () => {
    const report = await executeTrial(makeSpec(), { runner: testRunner('flood.mjs', 'long-line'), timeoutMs: 20_000, killGraceMs: 500 });
    expect(report.outcome).toBe('failed');
    expect(report.failure?.kind).toBe('runner_error');
    expect(report.failure?.evidence).toContain('longer than 65536 bytes');
    expect(report.wallSeconds).toBeLessThan(10);
  });

  it('stops a runner flooding log lines', async () => {
    const report = await executeTrial(makeSpec(), {
      runner: testRunner('flood.mjs', 'many-lines'),
      timeoutMs: 20_000,
      killGraceMs: 500,
      maxStdoutBytes: 1024 * 1024,
    });
    expect(report.failure?.kind).toBe('runner_error');
    expect(report.failure?.evidence).toContain('more than 1048576 bytes');
  });

  it('rejects output that ends mid-line', async () => {
    const report = await executeTrial(makeSpec(), { runner: testRunner('mid-line.mjs'), timeoutMs: 20_000 });
    expect(report.outcome).toBe('failed');
    expect(report.failure?.kind).toBe('runner_error');
    expect(report.failure?.evidence).toContain('ended in the middle of a line');
    expect(report.exitCode).toBe(0);
  });

  it('kills a child that outlives the runner', async () => {
    const pidFile = join(makeStateDir(), 'child.pid');
    const report = await executeTrial(makeSpec(), { runner: testRunner('fork-orphan.mjs', pidFile), timeoutMs: 20_000, killGraceMs: 1000 });
    const childPid = Number(readFileSync(pidFile, 'utf8'));

    expect(report.outcome).toBe('ok');
    expect(report.strayProcesses).toBe(true);
    expect(report.wallSeconds).toBeLessThan(5);
    // The kernel closes a killed process's pipes a moment before the process is gone.
    await expect.poll(() => isAlive(childPid), { timeout: 2000, interval: 20 }).toBe(false);
  });

  it.each([
    ['invalid-json', 'not valid JSON'],
    ['wrong-protocol', 'expected "hwopt-trial/1"'],
    ['wrong-trial', 'result for trial "other"'],
  ])('rejects %s output', async (mode, evidence) => {
    const report = await executeTrial(makeSpec(), { runner: testRunner('bad-output.mjs', mode), timeoutMs: 20_000 });
    expect(report.outcome).toBe('failed');
    expect(report.failure?.kind).toBe('runner_error');
    expect(report.failure?.evidence).toContain(evidence);
  });

  it('reports a runner that cannot start', async () => {
    const runner: RunnerConfig = { kind: 'protocol', command: '/nonexistent/hwopt-runner' };
    const report = await executeTrial(makeSpec(), { runner, timeoutMs: 20_000 });
    expect(report.outcome).toBe('failed');
    expect(report.failure?.kind).toBe('runner_error');
    expect(report.failure?.summary).toContain('could not be started');
    expect(report.exitCode).toBeNull();
  });

  it('keeps earlier reports after a broken trial', async () => {
    const stateDir = makeStateDir();
    const queue = new GpuTrialQueue();
    const good = queue.run(GPU_UUID, () => executeTrial(makeSpec({ batchSize: 3 }), { runner: simulatedRunner(stateDir), timeoutMs: 20_000 }));
    const broken = queue.run(GPU_UUID, () => executeTrial(makeSpec(), { runner: testRunner('flood.mjs', 'long-line'), timeoutMs: 20_000, killGraceMs: 500 }));
    const after = queue.run(GPU_UUID, () => executeTrial(makeSpec({ batchSize: 5 }), { runner: simulatedRunner(stateDir), timeoutMs: 20_000 }));
    const [first, second, third] = await Promise.all([good, broken, after]);

    expect(first.outcome).toBe('ok');
    expect(first.stepSeconds?.count).toBe(5);
    expect(second.failure?.kind).toBe('runner_error');
    expect(third.outcome).toBe('ok');
    expect(third.stepSeconds?.mean).toBeGreaterThan(first.stepSeconds!.mean);
  });
});

describe('executeTrial with a command template', () => {
  const script = join(TEST_RUNNERS_DIR, 'train-script.mjs');

  it('substitutes placeholders without a shell', async () => {
    const outFile = join(makeStateDir(), 'argv.json');
    const spec = makeSpec({ batchSize: 12, architecture: { layers: 3, hiddenChannels: 96 }, iterations: 7 });
    const runner: RunnerConfig = {
      kind: 'command-template',
      argv: [process.execPath, script, outFile, 'ok', '--batch-size', '{batch_size}', '--layers={layers}', 'h={hidden_channels}; echo $HOME {"json": 1}', '{iterations}', '{device_uuid}'],
    };
    const report = await executeTrial(spec, { runner, timeoutMs: 20_000 });
    const written = JSON.parse(readFileSync(outFile, 'utf8')) as { args: string[]; cudaVisibleDevices: string };

    expect(report.outcome).toBe('ok');
    expect(report.stepSeconds).toBeNull();
    expect(report.parameterCount).toBeNull();
    expect(report.gpuSeconds).toBe(report.wallSeconds);
    expect(written.args).toEqual(['--batch-size', '12', '--layers=3', 'h=96; echo $HOME {"json": 1}', '7', GPU_UUID]);
    expect(written.cudaVisibleDevices).toBe(GPU_UUID);
  });

  it('classifies a failing script from stderr', async () => {
    const outFile = join(makeStateDir(), 'argv.json');
    const runner: RunnerConfig = { kind: 'command-template', argv: [process.execPath, script, outFile, 'oom'] };
    const report = await executeTrial(makeSpec(), { runner, timeoutMs: 20_000 });
    expect(report.outcome).toBe('oom');
    expect(report.failure?.sizes.requestedBytes).toBe(20 * 2 ** 20);
    expect(report.exitCode).toBe(1);
  });

  it('rejects unknown placeholders', async () => {
    const runner: RunnerConfig = { kind: 'command-template', argv: [process.execPath, script, '{batchsize}'] };
    await expect(executeTrial(makeSpec(), { runner, timeoutMs: 20_000 })).rejects.toThrow(/unknown placeholder \{batchsize\}/);
  });
});
