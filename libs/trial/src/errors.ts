import { HwoptError } from '@hwopt/common';
import type { TrialReport } from './trial-report.ts';

/** The GPU runs other compute processes, so no trial was started on it. */
export class GpuBusyError extends HwoptError {
  constructor(
    readonly gpuUuid: string,
    readonly pids: number[],
    readonly usedMiB: number | null,
    readonly trialId: string,
  ) {
    const holders = pids.length > 0 ? `processes ${pids.slice(0, 20).join(', ')} use it` : `${usedMiB} MiB of its memory is in use`;
    super(
      'GPU_BUSY',
      `GPU ${gpuUuid} is busy (${holders}), so trial ${trialId} was not started. Wait until the GPU is free, or set allowBusyGpu to run trials beside other work.`,
    );
  }
}

/** The monitor failed before the trial, so the agent cannot tell whether the GPU is free. */
export class GpuCheckFailedError extends HwoptError {
  constructor(readonly gpuUuid: string, trialId: string, cause: unknown) {
    super('GPU_CHECK_FAILED', `Cannot read the processes and memory of GPU ${gpuUuid}, so trial ${trialId} was not started. Check that nvidia-smi works on this node.`, { cause });
  }
}

/**
 * The caller's signal aborted the trial. It is thrown after the runner's
 * process group is gone and the GPU memory check is done; `report` describes
 * the stopped trial.
 */
export class TrialCanceledError extends HwoptError {
  constructor(readonly report: TrialReport, reason: unknown) {
    super('TRIAL_CANCELED', `Trial ${report.trialId} was canceled: ${reason instanceof Error ? reason.message : String(reason ?? 'aborted')}.`, { cause: reason });
  }
}

/** A runner failed to return parameter counts for a describe request. */
export class DescribeFailedError extends HwoptError {
  constructor(workload: string, detail: string, readonly stderrTail: string) {
    super('DESCRIBE_FAILED', `Describe request for workload ${workload} failed: ${detail}. Run the runner by hand with the same request to see its error.`);
  }
}
