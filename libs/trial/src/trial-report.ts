import type { FailureVerdict } from './failure-verdict.ts';
import type { StepStats } from './protocol.ts';

/** Cost and outcome of one trial. */
export interface TrialReport {
  trialId: string;
  /** `oom` moves the batch-size search; `failed` stops the run on this GPU (see `failure.kind`). */
  outcome: 'ok' | 'oom' | 'failed';
  failure: FailureVerdict | null;
  parameterCount: number | null;
  stepSeconds: StepStats | null;
  /** `torch.cuda.max_memory_allocated()` or the framework's equivalent, when the runner reports it. */
  frameworkPeakAllocatedBytes: number | null;
  /** `torch.cuda.max_memory_reserved()` or the framework's equivalent, when the runner reports it. */
  frameworkPeakReservedBytes: number | null;
  /** Peak memory in use on the whole GPU during the trial (CUDA context included), from the monitor, else from the runner. */
  devicePeakMiB: number | null;
  /** Peak memory of the runner's process tree, from the monitor. */
  processPeakMiB: number | null;
  /** GPU time the trial cost: the runner's own figure when it reports one (simulated runners), else wall time. */
  gpuSeconds: number;
  wallSeconds: number;
  exitCode: number | null;
  signal: string | null;
  /** Whether GPU memory returned to its pre-trial level after the trial; null without a monitor. */
  memoryReleased: boolean | null;
  /** True when processes forked by the runner outlived it and were killed. */
  strayProcesses: boolean;
}
