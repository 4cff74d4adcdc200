/**
 * Runs one child in its own process group, so that the child and everything
 * it forks can be stopped together: SIGTERM to the group, then SIGKILL after
 * a grace period. Output is read through bounded buffers only.
 */
import { execa } from 'execa';
import type { Logger } from '@hwopt/common';
import { LineSplitter, LineTooLongError, TailBuffer } from './bounded-output.ts';

export interface ProcessGroupOptions {
  file: string;
  args: string[];
  /** Added to the agent's environment. */
  env: Record<string, string>;
  cwd?: string;
  /** Written to stdin, which is then closed; without it stdin is /dev/null. */
  input?: string;
  /** Wall-clock limit in milliseconds, after which the group is stopped. */
  timeoutMs: number;
  /** Aborting it stops the group; the result then has `canceled: true`. */
  signal?: AbortSignal;
  /** Delay between SIGTERM and SIGKILL to the group, in milliseconds. */
  killGraceMs: number;
  /** Called for each stdout line; omit it to discard stdout. */
  onLine?: (line: string) => void;
  /** Maximum length of one stdout line in bytes. */
  maxLineBytes: number;
  /** Maximum stdout bytes in total; more stops the group. */
  maxStdoutBytes: number;
  /** Bytes of stderr kept (the last ones). */
  stderrTailBytes: number;
  /** Called once the child has a pid, before any output is read. */
  onSpawn?: (pid: number) => void;
  logger: Logger;
}

export interface ProcessGroupResult {
  /** Process id of the group leader; null when it did not start. */
  pid: number | null;
  exitCode: number | null;
  /** Signal that ended the leader, such as `SIGKILL`. */
  signal: string | null;
  timedOut: boolean;
  /** True when `options.signal` aborted the run. */
  canceled: boolean;
  /** Reason the executor stopped the group itself (output limits or a caller's `stop`), else null. */
  stopReason: string | null;
  /** Reason the child could not be started, else null. */
  spawnError: string | null;
  stderrTail: string;
  /** Text after the last stdout newline, when the output ended mid-line. */
  partialLine: string | null;
  stdoutBytes: number;
  /** True when processes of the group outlived the leader and had to be stopped. */
  strayProcesses: boolean;
  wallSeconds: number;
}

export interface ProcessGroupRun {
  pid: number | null;
  /** Stops the group (SIGTERM, then SIGKILL after the grace period) and records the reason. */
  stop(reason: string): void;
  result: Promise<ProcessGroupResult>;
}

/** Margin after SIGKILL for the kernel to close a killed group's pipes, in milliseconds. */
const PIPE_CLOSE_MARGIN_MS = 2000;

/** Sends `signal` to every process of the group; false when none is left. */
function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

/** Starts the child; the returned `result` settles once the leader has exited and its pipes are closed. */
export function startProcessGroup(options: ProcessGroupOptions): ProcessGroupRun {
  const started = process.hrtime.bigint();
  const controller = new AbortController();
  const stderrTail = new TailBuffer(options.stderrTailBytes);
  const splitter = new LineSplitter(options.maxLineBytes);
  let stdoutBytes = 0;
  let stopReason: string | null = null;
  let timedOut = false;
  let canceled = false;
  let strayProcesses = false;
  let killTimer: NodeJS.Timeout | undefined;
  let pipeTimer: NodeJS.Timeout | undefined;

  const subprocess = execa(options.file, options.args, {
    detached: true,
    cwd: options.cwd,
    env: options.env,
    extendEnv: true,
    ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }),
    stdout: options.onLine ? 'pipe' : 'ignore',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    cancelSignal: controller.signal,
    forceKillAfterDelay: options.killGraceMs,
  });
  const pid = subprocess.pid ?? null;
  const log = options.logger.child({ pid });

  /**
   * Closes our ends of the pipes, for a descendant that left the group and keeps them open.
   * NOTE: such a descendant (setsid, a double fork into a new session) is not killed; only the
   * memory-release check after the trial notices it when it holds GPU memory.
   */
  const closePipes = () => {
    subprocess.stdout?.destroy();
    subprocess.stderr?.destroy();
  };

  const terminateGroup = (reason: string) => {
    if (pid === null || killTimer) return;
    log.debug({ reason }, 'stopping process group with SIGTERM');
    signalGroup(pid, 'SIGTERM');
    killTimer = setTimeout(() => {
      if (signalGroup(pid, 'SIGKILL')) log.warn({ reason, killGraceMs: options.killGraceMs }, 'process group outlived SIGTERM; sent SIGKILL');
      pipeTimer = setTimeout(closePipes, PIPE_CLOSE_MARGIN_MS);
      pipeTimer.unref();
    }, options.killGraceMs);
    killTimer.unref();
  };

  const stop = (reason: string) => {
    stopReason ??= reason;
    controller.abort(new Error(reason));
  };

  controller.signal.addEventListener('abort', () => terminateGroup(stopReason ?? 'aborted'), { once: true });
  const timeoutTimer = setTimeout(() => {
    timedOut = true;
    controller.abort(new Error(`timed out after ${options.timeoutMs} ms`));
  }, options.timeoutMs);
  timeoutTimer.unref();
  const onCallerAbort = () => {
    canceled = true;
    controller.abort(options.signal?.reason);
  };
  options.signal?.addEventListener('abort', onCallerAbort, { once: true });
  if (options.signal?.aborted) onCallerAbort();

  if (pid !== null) options.onSpawn?.(pid);

  subprocess.stderr?.on('data', (chunk: Buffer | string) => stderrTail.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)));
  subprocess.stdout?.on('data', (chunk: Buffer | string) => {
    if (stopReason !== null) return;
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    stdoutBytes += bytes.length;
    if (stdoutBytes > options.maxStdoutBytes) {
      stop(`runner wrote more than ${options.maxStdoutBytes} bytes to stdout`);
      return;
    }
    let lines: string[];
    try {
      lines = splitter.push(bytes);
    } catch (error) {
      if (!(error instanceof LineTooLongError)) throw error;
      stop(`runner wrote ${error.message}`);
      return;
    }
    for (const line of lines) {
      if (stopReason !== null) return;
      options.onLine?.(line);
    }
  });

  // Processes the leader forked may still run (and hold the pipes) after it exits; stop them.
  subprocess.once('exit', () => {
    if (pid === null) return;
    if (!killTimer && signalGroup(pid, 0)) {
      strayProcesses = true;
      log.warn('processes of the trial outlived the runner; stopping its process group');
      terminateGroup('runner exited, its process group did not');
    }
    // A descendant that left the group (setsid) can hold the pipes open forever.
    clearTimeout(pipeTimer);
    pipeTimer = setTimeout(closePipes, options.killGraceMs + PIPE_CLOSE_MARGIN_MS);
    pipeTimer.unref();
  });

  const result = (async (): Promise<ProcessGroupResult> => {
    const outcome = await subprocess;
    clearTimeout(timeoutTimer);
    clearTimeout(pipeTimer);
    options.signal?.removeEventListener('abort', onCallerAbort);
    // The group may still hold members that closed their pipes; they must not outlive the trial.
    if (pid !== null && signalGroup(pid, 0)) {
      strayProcesses = true;
      signalGroup(pid, 'SIGKILL');
    }
    clearTimeout(killTimer);
    const partialLine = stopReason === null ? splitter.finish() : null;
    const spawnError = pid === null ? (outcome.originalMessage || outcome.shortMessage || 'the runner could not be started') : null;
    return {
      pid,
      exitCode: outcome.exitCode ?? null,
      signal: outcome.signal ?? null,
      timedOut,
      canceled,
      stopReason,
      spawnError,
      stderrTail: stderrTail.text(),
      partialLine,
      stdoutBytes,
      strayProcesses,
      wallSeconds: Number(process.hrtime.bigint() - started) / 1e9,
    };
  })();

  return { pid, stop, result };
}
