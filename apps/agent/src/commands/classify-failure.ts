import { open } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { parseDecimal } from '@hwopt/common';
import { classifyFailure, formatMemorySize, type FailureVerdict } from '@hwopt/trial';

/** Only the end of a stderr file is read: the failure is at its tail, and the executor keeps the same amount. */
const STDERR_TAIL_BYTES = 64 * 1024;

interface ClassifyFailureOptions {
  stderr: string;
  exitCode?: number;
  signal?: string;
  timedOut?: boolean;
  json?: boolean;
}

function parseExitCode(value: string): number {
  const code = parseDecimal(value);
  if (!Number.isInteger(code) || code < 0 || code > 255) {
    throw new InvalidArgumentError(`expected an integer from 0 to 255, got "${value}".`);
  }
  return code;
}

async function readTail(path: string, maxBytes: number): Promise<string> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    const length = Math.min(size, maxBytes);
    const buffer = Buffer.alloc(length);
    await file.read(buffer, 0, length, size - length);
    return buffer.toString('utf8');
  } finally {
    await file.close();
  }
}

function formatVerdict(verdict: FailureVerdict): string {
  const lines = [`kind: ${verdict.kind}${verdict.rootCause ? ` (root cause: ${verdict.rootCause})` : ''}`, `summary: ${verdict.summary}`];
  const sizes: [string, number | undefined][] = [
    ['requested', verdict.sizes.requestedBytes],
    ['total', verdict.sizes.totalBytes],
    ['free', verdict.sizes.freeBytes],
  ];
  for (const [label, bytes] of sizes) {
    if (bytes !== undefined) lines.push(`${label}: ${formatMemorySize(bytes)} (${bytes} bytes${verdict.sizes.approximate ? ', approximate' : ''})`);
  }
  if (verdict.evidence) lines.push(`evidence: ${verdict.evidence}`);
  lines.push(`moves batch-size search: ${verdict.kind === 'oom' ? 'yes' : 'no, stops the run on this GPU'}`);
  return `${lines.join('\n')}\n`;
}

/** Registers `hwopt-agent classify-failure`, which prints the verdict for a failed trial's stderr. */
export function registerClassifyFailureCommand(program: Command): void {
  program
    .command('classify-failure')
    .description('Classify a failed trial from its stderr (oom, driver_mismatch, gpu_fault, ...) and print the sizes the message states')
    .requiredOption('--stderr <file>', 'file with the stderr of the failed trial (its last 64 KiB are read)')
    .option('--exit-code <n>', 'exit code of the trial process', parseExitCode)
    .option('--signal <name>', 'signal that ended the trial process, such as SIGKILL')
    .option('--timed-out', 'the trial was stopped because its time limit passed')
    .option('--json', 'print the verdict as JSON')
    .action(async (options: ClassifyFailureOptions, command: Command) => {
      let stderr: string;
      try {
        stderr = await readTail(options.stderr, STDERR_TAIL_BYTES);
      } catch (error) {
        command.error(`Cannot read --stderr file "${options.stderr}": ${(error as Error).message}. Pass the path of a readable file.`, { exitCode: 2 });
      }
      const verdict = classifyFailure({
        stderr,
        exitCode: options.exitCode ?? null,
        signal: options.signal ?? null,
        timedOut: options.timedOut ?? false,
      });
      process.stdout.write(options.json ? `${JSON.stringify(verdict, null, 2)}\n` : formatVerdict(verdict));
    });
}
