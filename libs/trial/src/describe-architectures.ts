/**
 * Asks a protocol runner for the trainable parameter count of each
 * architecture. The runner computes them on the CPU (CUDA_VISIBLE_DEVICES is
 * empty), so the parameter cap is applied before any GPU time is spent.
 */
import { silentLogger, type Logger } from '@hwopt/common';
import { DescribeFailedError } from './errors.ts';
import { startProcessGroup } from './process-group.ts';
import { encodeDescribeRequest, MAX_DESCRIBE_ARCHITECTURES, parseRunnerLine, validateArchitecture, type Architecture } from './protocol.ts';
import { InvalidRunnerConfigError, validateRunnerConfig, type RunnerConfig } from './runner-config.ts';

export interface DescribeOptions {
  /** Wall-clock limit in milliseconds. Default 120000, because importing a framework can take a while. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Delay between SIGTERM and SIGKILL to the runner's process group, in milliseconds. Default 5000. */
  killGraceMs?: number;
  logger?: Logger;
}

const DESCRIBE_DEFAULT_TIMEOUT_MS = 120_000;
const DESCRIBE_DEFAULT_KILL_GRACE_MS = 5000;
/** Enough for 10 000 counts of 16 digits and some log lines. */
const DESCRIBE_MAX_STDOUT_BYTES = 1024 * 1024;

/**
 * Returns the trainable parameter count of each architecture, in order.
 * Throws DescribeFailedError when the runner fails or breaks the protocol,
 * and the abort reason when `signal` aborts.
 */
export async function describeArchitectures(
  runner: RunnerConfig,
  workload: string,
  architectures: Architecture[],
  options: DescribeOptions = {},
): Promise<number[]> {
  validateRunnerConfig(runner);
  if (runner.kind !== 'protocol') {
    throw new InvalidRunnerConfigError('describe needs a runner of kind "protocol"; a command template cannot count parameters');
  }
  if (architectures.length > MAX_DESCRIBE_ARCHITECTURES) {
    throw new RangeError(`describe takes at most ${MAX_DESCRIBE_ARCHITECTURES} architectures, got ${architectures.length}`);
  }
  architectures.forEach((architecture, i) => validateArchitecture(architecture, `architectures[${i}]`));
  if (architectures.length === 0) return [];
  options.signal?.throwIfAborted();

  const logger = (options.logger ?? silentLogger()).child({ workload, request: 'describe' });
  let counts: number[] | null = null;
  let failure: string | null = null;
  const run = startProcessGroup({
    file: runner.command,
    args: runner.args ?? [],
    env: { ...runner.env, CUDA_VISIBLE_DEVICES: '', PYTHONUNBUFFERED: '1' },
    cwd: runner.cwd,
    input: encodeDescribeRequest(workload, architectures),
    timeoutMs: options.timeoutMs ?? DESCRIBE_DEFAULT_TIMEOUT_MS,
    signal: options.signal,
    killGraceMs: options.killGraceMs ?? DESCRIBE_DEFAULT_KILL_GRACE_MS,
    maxLineBytes: DESCRIBE_MAX_STDOUT_BYTES,
    maxStdoutBytes: DESCRIBE_MAX_STDOUT_BYTES,
    stderrTailBytes: 16 * 1024,
    logger,
    onLine: (line) => {
      if (counts !== null || failure !== null) return;
      const parsed = parseRunnerLine(line);
      if (parsed.kind === 'log') return;
      if (parsed.kind === 'invalid') failure = `invalid runner output (${parsed.reason})`;
      else if (parsed.message.type === 'error') failure = `runner error: ${parsed.message.message}`;
      else if (parsed.message.type !== 'describe') failure = `expected a describe line, got a ${parsed.message.type} line`;
      else counts = parsed.message.parameterCounts;
      if (failure !== null) run.stop(failure);
    },
  });
  const result = await run.result;
  if (result.canceled) throw options.signal?.reason ?? new Error('describe request aborted');

  const stderr = result.stderrTail;
  if (result.spawnError) throw new DescribeFailedError(workload, `the runner could not be started (${result.spawnError})`, stderr);
  if (result.timedOut) throw new DescribeFailedError(workload, `the runner timed out after ${options.timeoutMs ?? DESCRIBE_DEFAULT_TIMEOUT_MS} ms`, stderr);
  if (failure !== null) throw new DescribeFailedError(workload, failure, stderr);
  if (result.stopReason) throw new DescribeFailedError(workload, result.stopReason, stderr);
  const found = counts as number[] | null;
  if (found === null) {
    const status = result.signal ? `was ended by ${result.signal}` : `exited with code ${result.exitCode}`;
    const lastLine = stderr.trim().split('\n').at(-1) ?? '';
    throw new DescribeFailedError(workload, `the runner ${status} without a describe line${lastLine ? ` (stderr: ${lastLine.slice(0, 300)})` : ''}`, stderr);
  }
  if (found.length !== architectures.length) {
    throw new DescribeFailedError(workload, `the runner returned ${found.length} parameter counts for ${architectures.length} architectures`, stderr);
  }
  if (result.exitCode !== 0) throw new DescribeFailedError(workload, `the runner exited with code ${result.exitCode} after its describe line`, stderr);
  return found;
}
