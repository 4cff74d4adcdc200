/**
 * Reads a protocol runner's stdout lines during a trial: progress, the one
 * result line, or a fatal error line. The first protocol violation is kept
 * and the caller stops the runner.
 */
import { parseRunnerLine, type ErrorMessage, type ResultMessage, type TrialSpec } from './protocol.ts';

/** Characters of an offending line quoted in a protocol violation. */
const QUOTED_LINE_CHARS = 200;
/** Per-iteration durations kept; runners with more iterations report their own statistics. */
const MAX_STEP_SAMPLES = 100_000;

export class TrialOutput {
  readonly stepSamples: number[] = [];
  result: ResultMessage | null = null;
  error: ErrorMessage | null = null;
  violation: string | null = null;
  lastProgressIteration = 0;

  constructor(
    private readonly spec: TrialSpec,
    private readonly onProgress?: (progress: { iteration: number; iterations: number }) => void,
  ) {}

  /** Handles one line; returns a violation message when the runner must be stopped. */
  handleLine(line: string): string | null {
    if (this.violation !== null) return this.violation;
    const parsed = parseRunnerLine(line);
    if (parsed.kind === 'log') return null;
    if (parsed.kind === 'invalid') return this.reject(parsed.reason, line);

    const message = parsed.message;
    if (this.result !== null || this.error !== null) return this.reject('runner wrote a message after its result', line);
    switch (message.type) {
      case 'progress':
        if (message.trialId !== this.spec.trialId) return this.reject(`progress for trial ${JSON.stringify(message.trialId)}, expected ${this.spec.trialId}`, line);
        if (message.iteration <= this.lastProgressIteration || message.iteration > this.spec.iterations) {
          return this.reject(`progress iteration ${message.iteration} is out of order (last ${this.lastProgressIteration}, total ${this.spec.iterations})`, line);
        }
        this.lastProgressIteration = message.iteration;
        if (message.stepSeconds !== undefined && this.stepSamples.length < MAX_STEP_SAMPLES) this.stepSamples.push(message.stepSeconds);
        this.onProgress?.({ iteration: message.iteration, iterations: this.spec.iterations });
        return null;
      case 'result':
        if (message.trialId !== this.spec.trialId) return this.reject(`result for trial ${JSON.stringify(message.trialId)}, expected ${this.spec.trialId}`, line);
        this.result = message;
        return null;
      case 'error':
        this.error = message;
        return null;
      case 'describe':
        return this.reject('describe line in reply to a trial request', line);
    }
  }

  /** Handles text after the last newline when the runner's output ended mid-line. */
  handlePartialLine(text: string): void {
    if (this.violation !== null || !text.trim().startsWith('{')) return;
    // A complete message without its final newline is accepted.
    if (parseRunnerLine(text).kind === 'message') {
      this.handleLine(text);
      return;
    }
    this.reject('runner output ended in the middle of a line', text);
  }

  private reject(reason: string, line: string): string {
    const quoted = line.length > QUOTED_LINE_CHARS ? `${line.slice(0, QUOTED_LINE_CHARS)}...` : line;
    this.violation = `${reason}: ${quoted}`;
    return this.violation;
  }
}
