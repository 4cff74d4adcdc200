/**
 * Runs one trial. It checks that the GPU is free and starts the runner in its
 * own process group. While the runner works, it reads the output through
 * bounded buffers and samples device memory. It stops the whole group on
 * timeout or cancel, and waits for the GPU memory to return before it resolves.
 */
import { silentLogger, type Logger } from '@hwopt/common';
import type { DeviceMemoryMonitor, DeviceMemorySampling } from './device-memory-monitor.ts';
import { GpuBusyError, GpuCheckFailedError, TrialCanceledError } from './errors.ts';
import { waitForMemoryRelease } from './memory-release.ts';
import { startProcessGroup, type ProcessGroupResult, type ProcessGroupRun } from './process-group.ts';
import { computeStepStats, encodeTrialRequest, validateTrialSpec, type TrialSpec } from './protocol.ts';
import { expandCommandTemplate, validateRunnerConfig, type RunnerConfig } from './runner-config.ts';
import { decideTrialFailure } from './trial-failure.ts';
import { TrialOutput } from './trial-output.ts';
import type { TrialReport } from './trial-report.ts';

export interface ExecuteTrialOptions {
  runner: RunnerConfig;
  /** Wall-clock limit of the trial in milliseconds; the process group is stopped when it passes. */
  timeoutMs: number;
  /** Aborting it (agent shutdown, canceled run) stops the trial; executeTrial then throws TrialCanceledError. */
  signal?: AbortSignal;
  /** Device memory sampler; without it the GPU is not checked for other processes and memory is not awaited. */
  monitor?: DeviceMemoryMonitor;
  /** Start the trial even when other processes use the GPU. Default false. */
  allowBusyGpu?: boolean;
  /**
   * A GPU with more used memory than this (MiB) counts as busy even when no
   * process is listed, as happens for processes of other containers.
   * Default 1024; null turns the check off.
   */
  busyUsedMiB?: number | null;
  /** Delay between SIGTERM and SIGKILL to the runner's process group, in milliseconds. Default 5000. */
  killGraceMs?: number;
  logger?: Logger;
  onProgress?: (progress: { iteration: number; iterations: number }) => void;
  /** How long to wait for GPU memory to return to its pre-trial level, in milliseconds. Default 30000. */
  memoryReleaseTimeoutMs?: number;
  /** Used memory above the pre-trial level still counted as released, in MiB. Default 64. */
  memoryReleaseToleranceMiB?: number;
  /** Delay between memory readings while waiting for release, in milliseconds. Default 250. */
  memoryPollIntervalMs?: number;
  /** Maximum length of one runner stdout line in bytes. Default 64 KiB. */
  maxLineBytes?: number;
  /** Maximum runner stdout in bytes; more stops the trial as a runner error. Default 8 MiB. */
  maxStdoutBytes?: number;
  /** Bytes of stderr kept for failure classification (the last ones). Default 64 KiB. */
  stderrTailBytes?: number;
  /** Set CUDA_VISIBLE_DEVICES to the spec's GPU UUID, so only that GPU is visible to the runner (as cuda:0). Default true. */
  setCudaVisibleDevices?: boolean;
}

export const EXECUTE_TRIAL_DEFAULTS = {
  allowBusyGpu: false,
  busyUsedMiB: 1024,
  killGraceMs: 5000,
  memoryReleaseTimeoutMs: 30_000,
  memoryReleaseToleranceMiB: 64,
  memoryPollIntervalMs: 250,
  maxLineBytes: 64 * 1024,
  maxStdoutBytes: 8 * 1024 * 1024,
  stderrTailBytes: 64 * 1024,
  setCudaVisibleDevices: true,
} as const;

type ResolvedOptions = Required<Omit<ExecuteTrialOptions, 'signal' | 'monitor' | 'onProgress'>> &
  Pick<ExecuteTrialOptions, 'signal' | 'monitor' | 'onProgress'>;

function requirePositive(value: number, field: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`executeTrial option ${field} must be a positive number, got ${value}`);
  return value;
}

function resolveOptions(options: ExecuteTrialOptions): ResolvedOptions {
  validateRunnerConfig(options.runner);
  const resolved: ResolvedOptions = { ...EXECUTE_TRIAL_DEFAULTS, logger: silentLogger(), ...stripUndefined(options) };
  requirePositive(resolved.timeoutMs, 'timeoutMs');
  requirePositive(resolved.killGraceMs, 'killGraceMs');
  requirePositive(resolved.memoryReleaseTimeoutMs, 'memoryReleaseTimeoutMs');
  requirePositive(resolved.memoryPollIntervalMs, 'memoryPollIntervalMs');
  requirePositive(resolved.maxLineBytes, 'maxLineBytes');
  requirePositive(resolved.maxStdoutBytes, 'maxStdoutBytes');
  requirePositive(resolved.stderrTailBytes, 'stderrTailBytes');
  if (!(resolved.memoryReleaseToleranceMiB >= 0)) throw new RangeError('executeTrial option memoryReleaseToleranceMiB must be >= 0');
  return resolved;
}

function stripUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined)) as T;
}

interface Launch {
  file: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  input?: string;
}

function buildLaunch(spec: TrialSpec, options: ResolvedOptions): Launch {
  const runner = options.runner;
  const env: Record<string, string> = { ...runner.env };
  if (options.setCudaVisibleDevices) env.CUDA_VISIBLE_DEVICES = spec.device.uuid;
  if (runner.kind === 'protocol') {
    // Python buffers stdout in a pipe; progress lines must arrive as they are written.
    env.PYTHONUNBUFFERED ??= '1';
    return { file: runner.command, args: runner.args ?? [], env, cwd: runner.cwd, input: encodeTrialRequest(spec) };
  }
  const argv = expandCommandTemplate(runner.argv, spec);
  return { file: argv[0], args: argv.slice(1), env, cwd: runner.cwd };
}

/** Reads the pre-trial memory level and throws GpuBusyError when other work uses the GPU. */
async function checkGpu(spec: TrialSpec, options: ResolvedOptions, log: Logger): Promise<number | null> {
  const monitor = options.monitor;
  if (!monitor) return null;
  let pids: number[];
  let usedMiB: number | null;
  try {
    pids = await monitor.otherProcesses(spec.device.uuid);
    usedMiB = await monitor.usedMiB(spec.device.uuid);
  } catch (error) {
    if (options.allowBusyGpu) {
      log.warn({ err: error }, 'reading the GPU before the trial failed; starting anyway because allowBusyGpu is set');
      return null;
    }
    throw new GpuCheckFailedError(spec.device.uuid, spec.trialId, error);
  }
  const busyByMemory = options.busyUsedMiB !== null && usedMiB !== null && usedMiB > options.busyUsedMiB;
  if ((pids.length > 0 || busyByMemory) && !options.allowBusyGpu) {
    log.info({ pids, usedMiB }, 'GPU busy; trial not started');
    throw new GpuBusyError(spec.device.uuid, pids, usedMiB, spec.trialId);
  }
  if (pids.length > 0 || busyByMemory) log.warn({ pids, usedMiB }, 'GPU busy; starting the trial because allowBusyGpu is set');
  return usedMiB;
}

function startSampling(monitor: DeviceMemoryMonitor | undefined, pid: number, gpuUuid: string, log: Logger): DeviceMemorySampling | null {
  if (!monitor) return null;
  try {
    return monitor.startSampling(pid, gpuUuid);
  } catch (error) {
    log.warn({ err: error }, 'starting GPU memory sampling failed; the trial runs without device peaks');
    return null;
  }
}

async function stopSampling(sampling: DeviceMemorySampling | null, log: Logger): Promise<{ processPeakMiB: number | null; devicePeakMiB: number | null }> {
  if (!sampling) return { processPeakMiB: null, devicePeakMiB: null };
  try {
    return await sampling.stop();
  } catch (error) {
    log.warn({ err: error }, 'stopping GPU memory sampling failed; device peaks are unknown');
    return { processPeakMiB: null, devicePeakMiB: null };
  }
}

/**
 * Returns the larger of two peak readings. Sampling at an interval can miss a short
 * peak that a runner measuring its own device use saw, and the larger
 * reading is the safe one to size batches by.
 */
function largerOf(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}

function buildReport(
  spec: TrialSpec,
  run: ProcessGroupResult,
  output: TrialOutput | null,
  peaks: { processPeakMiB: number | null; devicePeakMiB: number | null },
  memoryReleased: boolean | null,
): TrialReport {
  const failure = decideTrialFailure(run, output);
  const result = output?.result ?? null;
  let outcome: TrialReport['outcome'] = 'ok';
  if (failure) outcome = failure.kind === 'oom' ? 'oom' : 'failed';
  return {
    trialId: spec.trialId,
    outcome,
    failure,
    parameterCount: result?.parameterCount ?? null,
    stepSeconds: result?.stepSeconds ?? computeStepStats(output?.stepSamples ?? []),
    frameworkPeakAllocatedBytes: result?.frameworkPeakAllocatedBytes ?? null,
    frameworkPeakReservedBytes: result?.frameworkPeakReservedBytes ?? null,
    devicePeakMiB: largerOf(peaks.devicePeakMiB, result?.devicePeakMiB ?? null),
    processPeakMiB: peaks.processPeakMiB,
    gpuSeconds: result?.gpuSeconds ?? run.wallSeconds,
    wallSeconds: run.wallSeconds,
    exitCode: run.exitCode,
    signal: run.signal,
    memoryReleased,
    strayProcesses: run.strayProcesses,
  };
}

/**
 * Runs one trial and reports what it cost. A failed trial is a report with
 * outcome `oom` or `failed`, never an exception. It throws InvalidTrialSpecError
 * or InvalidRunnerConfigError for bad input, GpuBusyError or GpuCheckFailedError
 * when the trial was not started, and TrialCanceledError when `signal` aborted
 * it (after the process group is gone). A signal aborted before the runner
 * starts rejects with the signal's reason.
 */
export async function executeTrial(spec: TrialSpec, options: ExecuteTrialOptions): Promise<TrialReport> {
  validateTrialSpec(spec);
  const resolved = resolveOptions(options);
  const log = resolved.logger.child({ trialId: spec.trialId, gpuUuid: spec.device.uuid });
  resolved.signal?.throwIfAborted();

  const baselineMiB = await checkGpu(spec, resolved, log);
  resolved.signal?.throwIfAborted();

  const launch = buildLaunch(spec, resolved);
  const output = resolved.runner.kind === 'protocol' ? new TrialOutput(spec, resolved.onProgress) : null;
  let sampling: DeviceMemorySampling | null = null;
  let run: ProcessGroupRun | undefined;
  run = startProcessGroup({
    ...launch,
    timeoutMs: resolved.timeoutMs,
    signal: resolved.signal,
    killGraceMs: resolved.killGraceMs,
    maxLineBytes: resolved.maxLineBytes,
    maxStdoutBytes: resolved.maxStdoutBytes,
    stderrTailBytes: resolved.stderrTailBytes,
    logger: log,
    onSpawn: (pid) => {
      sampling = startSampling(resolved.monitor, pid, spec.device.uuid, log);
    },
    onLine: output
      ? (line) => {
          const violation = output.handleLine(line);
          if (violation) run?.stop(violation);
        }
      : undefined,
  });
  log.info(
    { pid: run.pid, runner: resolved.runner.kind, file: launch.file, batchSize: spec.batchSize, architecture: spec.architecture, iterations: spec.iterations },
    'trial started',
  );

  const result = await run.result;
  if (output && result.partialLine !== null) output.handlePartialLine(result.partialLine);
  const peaks = await stopSampling(sampling, log);

  let memoryReleased: boolean | null = null;
  if (resolved.monitor && baselineMiB !== null) {
    memoryReleased = await waitForMemoryRelease(resolved.monitor, spec.device.uuid, baselineMiB, {
      toleranceMiB: resolved.memoryReleaseToleranceMiB,
      timeoutMs: resolved.memoryReleaseTimeoutMs,
      pollIntervalMs: resolved.memoryPollIntervalMs,
      logger: log,
    });
  }

  const report = buildReport(spec, result, output, peaks, memoryReleased);
  log.info(
    {
      outcome: report.outcome,
      failureKind: report.failure?.kind ?? null,
      exitCode: report.exitCode,
      signal: report.signal,
      durationMs: Math.round(report.wallSeconds * 1000),
      devicePeakMiB: report.devicePeakMiB,
      memoryReleased,
    },
    'trial finished',
  );
  if (result.canceled) throw new TrialCanceledError(report, resolved.signal?.reason);
  return report;
}
