import type { TrialMeasurement, TrialRequest } from './types.ts';

/**
 * Base of the optimizer's errors: a stable `code` for programs and a
 * message that names the value and the fix. The library has no
 * dependencies, so it does not extend `@hwopt/common`'s HwoptError; the
 * shape (`code`, `name`, `cause`) is the same.
 */
export class OptimizerError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** An option of `optimize` is invalid; the message names the field. */
export class InvalidOptimizeOptionError extends OptimizerError {
  readonly field: string;

  constructor(field: string, message: string) {
    super('INVALID_OPTIMIZE_OPTION', `Invalid optimize option ${field}: ${message}`);
    this.field = field;
  }
}

/** A trial failed for a reason other than out-of-memory; the run for that GPU stops. */
export class TrialFailedError extends OptimizerError {
  readonly measurement: TrialMeasurement;
  readonly request: TrialRequest;

  constructor(request: TrialRequest, measurement: TrialMeasurement) {
    const arch = `${request.architecture.layers} layers x ${request.architecture.hiddenChannels} channels`;
    const kind = measurement.failureKind ?? 'unknown';
    const detail = measurement.failureMessage ? `: ${measurement.failureMessage}` : '';
    super(
      'TRIAL_FAILED',
      `Trial of ${arch} at batch size ${request.batchSize} (${request.stage}) failed (${kind})${detail}. ` +
        'Fix the trial environment on that GPU and rerun the optimizer.',
    );
    this.request = request;
    this.measurement = measurement;
  }
}

/** The executor returned something that is not a valid measurement or parameter list. */
export class InvalidExecutorResponseError extends OptimizerError {
  constructor(message: string) {
    super('INVALID_EXECUTOR_RESPONSE', message);
  }
}
