import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { evaluateTwinTrial, findTwinArchitecture, loadTwin } from '@hwopt/twin';
import { describe, expect, it } from 'vitest';
import { GpuBusyError, TrialCanceledError, executeTrial } from '../src/index.ts';
import { GPU_UUID, T4_TWIN, makeSpec, makeStateDir, simulatedRunner } from './helpers.ts';
import { ProcFileMonitor } from './proc-file-monitor.ts';

const twin = loadTwin(T4_TWIN);

function law(layers: number, hiddenChannels: number, batchSize: number, iterations: number) {
  const arch = findTwinArchitecture(twin, layers, hiddenChannels)!;
  return { arch, outcome: evaluateTwinTrial(twin, arch, batchSize, iterations) };
}

function procFiles(stateDir: string): string[] {
  const dir = join(stateDir, 'procs');
  return existsSync(dir) ? readdirSync(dir) : [];
}

describe('executeTrial with the simulated runner', () => {
  it('reports a successful trial', async () => {
    const stateDir = makeStateDir();
    const monitor = new ProcFileMonitor(stateDir, 3);
    const spec = makeSpec({ batchSize: 6, iterations: 4 });
    const progress: number[] = [];
    const report = await executeTrial(spec, {
      runner: simulatedRunner(stateDir, 0.005),
      timeoutMs: 20_000,
      monitor,
      onProgress: (p) => progress.push(p.iteration),
    });
    const expected = law(8, 64, 6, 4);

    expect(report.outcome).toBe('ok');
    expect(report.failure).toBeNull();
    expect(report.trialId).toBe(spec.trialId);
    expect(report.parameterCount).toBe(expected.arch.parameters);
    expect(report.stepSeconds?.count).toBe(4);
    expect(report.stepSeconds?.p50).toBeCloseTo(expected.outcome.stepSeconds, 9);
    expect(report.gpuSeconds).toBeCloseTo(expected.outcome.gpuSeconds, 9);
    expect(report.processPeakMiB).toBe(expected.outcome.peakMiB);
    expect(report.devicePeakMiB).toBe(expected.outcome.peakMiB + 3);
    expect(report.frameworkPeakAllocatedBytes).toBeGreaterThan(0);
    expect(report.frameworkPeakReservedBytes).toBeGreaterThanOrEqual(report.frameworkPeakAllocatedBytes!);
    expect(report.exitCode).toBe(0);
    expect(report.memoryReleased).toBe(true);
    expect(report.strayProcesses).toBe(false);
    expect(progress).toEqual([1, 2, 3, 4]);
    expect(procFiles(stateDir)).toEqual([]);
  });

  it('falls back to the runner device peak', async () => {
    const stateDir = makeStateDir();
    const report = await executeTrial(makeSpec({ batchSize: 2 }), { runner: simulatedRunner(stateDir), timeoutMs: 20_000 });
    expect(report.devicePeakMiB).toBe(law(8, 64, 2, 5).outcome.peakMiB);
    expect(report.processPeakMiB).toBeNull();
    expect(report.memoryReleased).toBeNull();
  });

  it('reports out of memory with sizes', async () => {
    const stateDir = makeStateDir();
    const spec = makeSpec({ architecture: { layers: 8, hiddenChannels: 280 }, batchSize: 40 });
    const report = await executeTrial(spec, { runner: simulatedRunner(stateDir), timeoutMs: 20_000, monitor: new ProcFileMonitor(stateDir) });
    const expected = law(8, 280, 40, 5);

    expect(expected.outcome.outOfMemory).toBe(true);
    expect(report.outcome).toBe('oom');
    expect(report.failure?.kind).toBe('oom');
    expect(report.failure?.sizes.requestedBytes).toBeGreaterThan(0);
    expect(report.failure?.sizes.totalBytes).toBe(twin.gpu.memoryTotalMiB * 2 ** 20);
    expect(report.failure?.sizes.freeBytes).toBeLessThan(report.failure!.sizes.requestedBytes!);
    expect(report.exitCode).toBe(1);
    expect(report.gpuSeconds).toBeCloseTo(expected.outcome.gpuSeconds, 9);
    expect(report.stepSeconds).toBeNull();
    expect(report.memoryReleased).toBe(true);
  });

  it('fails an unlisted architecture as runner error', async () => {
    const stateDir = makeStateDir();
    const spec = makeSpec({ architecture: { layers: 99, hiddenChannels: 64 } });
    const report = await executeTrial(spec, { runner: simulatedRunner(stateDir), timeoutMs: 20_000 });
    expect(report.outcome).toBe('failed');
    expect(report.failure?.kind).toBe('runner_error');
    expect(report.failure?.summary).toContain('does not list architecture');
    expect(report.exitCode).toBe(2);
  });

  it('rejects a busy GPU', async () => {
    const stateDir = makeStateDir();
    mkdirSync(join(stateDir, 'procs'));
    writeFileSync(join(stateDir, 'procs', `${process.pid}.json`), JSON.stringify({ pid: process.pid, gpuUuid: GPU_UUID, usedMiB: 500 }));
    const monitor = new ProcFileMonitor(stateDir);
    const spec = makeSpec();

    const error = await executeTrial(spec, { runner: simulatedRunner(stateDir), timeoutMs: 20_000, monitor }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GpuBusyError);
    expect((error as GpuBusyError).code).toBe('GPU_BUSY');
    expect((error as GpuBusyError).pids).toEqual([process.pid]);
    expect((error as Error).message).toContain(spec.trialId);
  });

  it('runs on a busy GPU when allowed', async () => {
    const stateDir = makeStateDir();
    mkdirSync(join(stateDir, 'procs'));
    writeFileSync(join(stateDir, 'procs', `${process.pid}.json`), JSON.stringify({ pid: process.pid, gpuUuid: GPU_UUID, usedMiB: 500 }));
    const monitor = new ProcFileMonitor(stateDir);
    const report = await executeTrial(makeSpec(), { runner: simulatedRunner(stateDir), timeoutMs: 20_000, monitor, allowBusyGpu: true });
    expect(report.outcome).toBe('ok');
    expect(report.memoryReleased).toBe(true);
  });

  it('rejects a GPU with unlisted memory in use', async () => {
    const stateDir = makeStateDir();
    const monitor = new ProcFileMonitor(stateDir, 4000);
    await expect(executeTrial(makeSpec(), { runner: simulatedRunner(stateDir), timeoutMs: 20_000, monitor })).rejects.toBeInstanceOf(GpuBusyError);
  });

  it('stops the runner on timeout', async () => {
    const stateDir = makeStateDir();
    const monitor = new ProcFileMonitor(stateDir);
    // Long enough for the runner to install its SIGTERM handler on a loaded machine.
    const report = await executeTrial(makeSpec(), { runner: simulatedRunner(stateDir, 1), timeoutMs: 3000, killGraceMs: 2000, monitor });
    expect(report.outcome).toBe('failed');
    expect(report.failure?.kind).toBe('timeout');
    expect(report.exitCode).toBe(143);
    expect(report.memoryReleased).toBe(true);
    expect(procFiles(stateDir)).toEqual([]);
  });

  it('throws TrialCanceledError on abort', async () => {
    const stateDir = makeStateDir();
    const monitor = new ProcFileMonitor(stateDir);
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('agent shutting down')), 300);
    const error = await executeTrial(makeSpec(), {
      runner: simulatedRunner(stateDir, 1),
      timeoutMs: 60_000,
      signal: controller.signal,
      monitor,
    }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(TrialCanceledError);
    const report = (error as TrialCanceledError).report;
    expect(report.failure?.kind).toBe('killed');
    expect(report.memoryReleased).toBe(true);
    expect(report.wallSeconds).toBeLessThan(5);
    expect(procFiles(stateDir)).toEqual([]);
  });

  it('rejects an already aborted signal', async () => {
    const stateDir = makeStateDir();
    await expect(
      executeTrial(makeSpec(), { runner: simulatedRunner(stateDir), timeoutMs: 1000, signal: AbortSignal.abort(new Error('stop')) }),
    ).rejects.toThrow('stop');
  });

  it('validates the spec', async () => {
    const stateDir = makeStateDir();
    await expect(executeTrial(makeSpec({ batchSize: 0 }), { runner: simulatedRunner(stateDir), timeoutMs: 1000 })).rejects.toThrow(/batchSize/);
    await expect(executeTrial(makeSpec({ trialId: 'a b' }), { runner: simulatedRunner(stateDir), timeoutMs: 1000 })).rejects.toThrow(/trialId/);
  });
});
