/**
 * Decides how a finished trial failed, from what the process group did and
 * what a protocol runner reported. Returns null for a successful trial.
 */
import { classifyFailure, extractOomSizes } from './classify-failure.ts';
import type { FailureKind, FailureVerdict } from './failure-verdict.ts';
import type { ProcessGroupResult } from './process-group.ts';
import { TRIAL_PROTOCOL } from './protocol.ts';
import type { TrialOutput } from './trial-output.ts';

function exitStatus(run: ProcessGroupResult): string {
  if (run.signal) return `was ended by ${run.signal}`;
  return `exited with code ${run.exitCode ?? 'unknown'}`;
}

function firstLine(text: string): string {
  const line = text.split('\n').find((candidate) => candidate.trim().length > 0)?.trim() ?? '';
  return line.length > 500 ? `${line.slice(0, 497)}...` : line;
}

function protocolViolation(reason: string): FailureVerdict {
  return {
    kind: 'runner_error',
    summary: `Runner output violates ${TRIAL_PROTOCOL} (${reason.split(':')[0]}), so the trial was stopped; fix the runner to follow libs/trial/PROTOCOL.md.`,
    sizes: {},
    evidence: reason.length > 500 ? `${reason.slice(0, 497)}...` : reason,
  };
}

/** Verdict for a failure the runner reported itself, in a result or error line. */
function reportedFailure(run: ProcessGroupResult, message: string, runnerKind: FailureKind | undefined, outcome: 'oom' | 'failed'): FailureVerdict {
  const text = message.length > 0 ? `${message}\n${run.stderrTail}` : run.stderrTail;
  const verdict = classifyFailure({ stderr: text, exitCode: run.exitCode, signal: run.signal });
  if (outcome === 'oom' && verdict.kind !== 'oom' && verdict.kind !== 'gpu_fault') {
    // The runner caught the framework's out-of-memory exception, whatever its wording.
    return {
      kind: 'oom',
      summary: `GPU out of memory, as the runner reported: ${firstLine(message) || 'no message'}.`,
      sizes: extractOomSizes(text),
      ...(message ? { evidence: firstLine(message) } : {}),
    };
  }
  if (verdict.kind === 'runner_error' && runnerKind && runnerKind !== 'runner_error') {
    return {
      kind: runnerKind,
      summary: `Runner reported a ${runnerKind} failure: ${firstLine(message) || 'no message'}.`,
      sizes: runnerKind === 'oom' ? extractOomSizes(text) : {},
      ...(message ? { evidence: firstLine(message) } : {}),
    };
  }
  if (verdict.kind === 'runner_error' && message) {
    return { kind: 'runner_error', summary: `Runner failed: ${firstLine(message)}`, sizes: {}, evidence: firstLine(message) };
  }
  return verdict;
}

/** `output` is null for command-template runners, whose outcome comes from the exit status and stderr alone. */
export function decideTrialFailure(run: ProcessGroupResult, output: TrialOutput | null): FailureVerdict | null {
  if (run.spawnError !== null) {
    return {
      kind: 'runner_error',
      summary: `Runner could not be started: ${run.spawnError}. Check the runner command, its working directory and permissions.`,
      sizes: {},
    };
  }
  if (run.timedOut) return classifyFailure({ stderr: run.stderrTail, exitCode: run.exitCode, signal: run.signal, timedOut: true });
  if (run.canceled) {
    return { kind: 'killed', summary: 'Trial canceled by the agent (shutdown or an aborted request); its process group was stopped.', sizes: {} };
  }
  if (run.stopReason !== null) return protocolViolation(run.stopReason);
  if (output?.violation) return protocolViolation(output.violation);

  if (output === null) {
    if (run.exitCode === 0 && run.signal === null) return null;
    return classifyFailure({ stderr: run.stderrTail, exitCode: run.exitCode, signal: run.signal });
  }

  const result = output.result;
  if (result?.outcome === 'ok') {
    if (run.exitCode === 0 && run.signal === null) return null;
    const verdict = classifyFailure({ stderr: run.stderrTail, exitCode: run.exitCode, signal: run.signal });
    if (verdict.kind !== 'runner_error') return verdict;
    return { ...verdict, summary: `Runner reported success but ${exitStatus(run)}; a runner must exit with code 0 after an "ok" result.` };
  }
  if (result) return reportedFailure(run, result.message ?? '', result.failureKind, result.outcome === 'oom' ? 'oom' : 'failed');
  if (output.error) return reportedFailure(run, output.error.message, output.error.failureKind, 'failed');

  const verdict = classifyFailure({ stderr: run.stderrTail, exitCode: run.exitCode, signal: run.signal });
  if (verdict.kind !== 'runner_error') return verdict;
  return { ...verdict, summary: `Runner ${exitStatus(run)} without a result line, and its stderr matches no known GPU, driver or memory failure; read the evidence line and fix the runner.` };
}
