import { execa } from 'execa';
import { classifyFailure } from './classify-failure.ts';
import { NvidiaSmiTimeoutError } from './errors.ts';
import {
  commandLine,
  DEFAULT_NVIDIA_SMI,
  DEFAULT_NVIDIA_SMI_TIMEOUT_MS,
  NVIDIA_SMI_FORCE_KILL_DELAY_MS,
  type NvidiaSmiCommand,
} from './nvidia-smi-command.ts';

/** Default bound on what one query may print on stdout or stderr, in bytes. */
export const DEFAULT_MAX_OUTPUT_BYTES = 32 * 1024 * 1024;

/**
 * Time to wait for the process to be reaped after SIGKILL, in ms. A process
 * in uninterruptible sleep (a wedged GPU) ignores SIGKILL, so the run is
 * abandoned after this instead of waiting forever.
 */
const ABANDON_AFTER_KILL_MS = 2_000;

export interface RunNvidiaSmiOptions {
  /** Default `{ command: 'nvidia-smi' }`. */
  smi?: NvidiaSmiCommand;
  /** Default 10,000 ms. The whole process group is killed when it passes. */
  timeoutMs?: number;
  /** Default 32 MiB, for stdout and stderr each. */
  maxOutputBytes?: number;
  /** Aborting kills the process group and rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Runs one nvidia-smi query and returns its stdout.
 *
 * nvidia-smi starts in a process group of its own (`detached`), so that a
 * timeout kills every process under it, including children that a wrapper
 * script left behind.
 *
 * @throws NvidiaSmiError or one of its subclasses, classified by `classifyFailure`.
 */
export async function runNvidiaSmi(args: string[], options: RunNvidiaSmiOptions = {}): Promise<string> {
  const smi = options.smi ?? DEFAULT_NVIDIA_SMI;
  const timeoutMs = options.timeoutMs ?? DEFAULT_NVIDIA_SMI_TIMEOUT_MS;
  const maxOutputBytes = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const line = commandLine(smi, args);
  options.signal?.throwIfAborted();

  const controller = new AbortController();
  const subprocess = execa(smi.command, [...(smi.args ?? []), ...args], {
    env: smi.env,
    extendEnv: true,
    stdin: 'ignore',
    timeout: timeoutMs,
    forceKillAfterDelay: NVIDIA_SMI_FORCE_KILL_DELAY_MS,
    maxBuffer: maxOutputBytes,
    cancelSignal: controller.signal,
    detached: true,
    reject: false,
    stripFinalNewline: false,
  });

  let timedOut = false;
  const killGroup = () => killProcessGroup(subprocess.pid);
  const onCallerAbort = () => {
    killGroup();
    controller.abort(options.signal?.reason);
  };
  options.signal?.addEventListener('abort', onCallerAbort, { once: true });
  const timeoutTimer = setTimeout(() => {
    timedOut = true;
    killGroup();
  }, timeoutMs);

  let abandonTimer: NodeJS.Timeout | undefined;
  const abandoned = new Promise<'abandoned'>((resolve) => {
    abandonTimer = setTimeout(() => resolve('abandoned'), timeoutMs + ABANDON_AFTER_KILL_MS);
  });

  try {
    const result = await Promise.race([subprocess, abandoned]);
    if (options.signal?.aborted) throw options.signal.reason;
    if (result === 'abandoned' || timedOut || result.timedOut) {
      killGroup();
      throw new NvidiaSmiTimeoutError(timeoutMs, { commandLine: line, outputExcerpt: result === 'abandoned' ? undefined : String(result.stderr ?? '').slice(0, 2000) });
    }

    const stdout = typeof result.stdout === 'string' ? result.stdout : '';
    const stderr = typeof result.stderr === 'string' ? result.stderr : '';
    const failure = classifyFailure({
      command: smi.command,
      commandLine: line,
      spawnErrorCode: typeof result.code === 'string' && result.exitCode === undefined ? result.code : undefined,
      exitCode: result.exitCode ?? null,
      signal: result.signal ?? null,
      stdout,
      stderr,
      outputTooLarge: result.isMaxBuffer,
      maxOutputBytes,
    });
    if (failure) throw failure;
    return stdout;
  } finally {
    clearTimeout(timeoutTimer);
    clearTimeout(abandonTimer);
    options.signal?.removeEventListener('abort', onCallerAbort);
  }
}

/**
 * Sends a signal to a whole process group. Returns false when the group is
 * gone already (ESRCH) or may not be signalled (EPERM), so that it is safe
 * to call from timers.
 */
export function killProcessGroup(pid: number | undefined, signal: NodeJS.Signals = 'SIGKILL'): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}
