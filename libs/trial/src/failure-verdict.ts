/**
 * Kinds of trial failure. Only `oom` is a result of the trial itself (the
 * batch does not fit) and moves the batch-size search; every other kind stops
 * the run on that GPU with a reason an operator can act on.
 */
export type FailureKind =
  | 'oom'
  | 'host_oom'
  | 'driver_mismatch'
  | 'driver_missing'
  | 'cuda_error'
  | 'nccl'
  | 'gpu_fault'
  | 'timeout'
  | 'killed'
  | 'runner_error';

export const FAILURE_KINDS: readonly FailureKind[] = [
  'oom',
  'host_oom',
  'driver_mismatch',
  'driver_missing',
  'cuda_error',
  'nccl',
  'gpu_fault',
  'timeout',
  'killed',
  'runner_error',
];

export function isFailureKind(value: unknown): value is FailureKind {
  return typeof value === 'string' && (FAILURE_KINDS as readonly string[]).includes(value);
}

/** Memory sizes that a failure message states, in bytes. */
export interface FailureSizes {
  /** Size of the allocation that failed. */
  requestedBytes?: number;
  /** Total capacity of the device, as the framework printed it. */
  totalBytes?: number;
  /** Free memory of the device at the time of the failure, as printed. */
  freeBytes?: number;
  /** The printed texts the byte counts come from, as `requested: 8.13 GiB`. */
  raw?: string[];
  /**
   * True when a byte count was converted from a rounded unit (`8.13 GiB`),
   * so it is only accurate to the printed precision.
   */
  approximate?: boolean;
}

export interface FailureVerdict {
  kind: FailureKind;
  /** One sentence for an operator: what failed and what to do next. */
  summary: string;
  sizes: FailureSizes;
  /** The stderr line (at most 500 characters) that decided the verdict. */
  evidence?: string;
  /**
   * Underlying kind when the message wraps another failure, such as an NCCL
   * error raised because CUDA ran out of memory inside NCCL.
   */
  rootCause?: FailureKind;
}

/** True for the only kind that means the batch did not fit on the GPU. */
export function movesBatchSearch(verdict: FailureVerdict): boolean {
  return verdict.kind === 'oom';
}
