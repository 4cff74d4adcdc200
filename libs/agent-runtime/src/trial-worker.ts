/**
 * Runs the trials a coordinator assigns: one at a time per GPU, GPUs in
 * parallel, each through the trial executor, and puts every result in the
 * outbox before handing it on.
 */
import type { Logger } from '@hwopt/common';
import { describeArchitectures, executeTrial, GpuTrialQueue, type DeviceMemoryMonitor, type RunnerConfig, type TrialReport } from '@hwopt/trial';
import type { ResultOutbox } from './result-outbox.ts';

export interface Assignment {
  trialId: string;
  gpuUuid: string;
  workload: string;
  layers: number;
  hiddenChannels: number;
  batchSize: number;
  iterations: number;
  timeoutMs: number;
}

/** A result as the agent stores and sends it: the report plus what it was for. */
export interface OutboxResult extends TrialReport {
  gpuUuid: string;
  layers: number;
  hiddenChannels: number;
  batchSize: number;
  iterations: number;
}

export interface TrialWorkerOptions {
  /** Runner per workload name. */
  runners: Record<string, RunnerConfig>;
  /** GPU index by UUID, for the trial spec. */
  gpuIndex(uuid: string): number | undefined;
  monitor?: DeviceMemoryMonitor;
  allowBusyGpu?: boolean;
  outbox: ResultOutbox<OutboxResult>;
  logger: Logger;
  onResult(result: OutboxResult): void;
}

export class TrialWorker {
  readonly #queue = new GpuTrialQueue();
  readonly #running = new Map<string, AbortController>();
  readonly #shutdown = new AbortController();

  constructor(private readonly options: TrialWorkerOptions) {}

  /** Starts a trial; its result arrives through `onResult`. A trial already known (resent assignment) is ignored. */
  submit(assignment: Assignment): void {
    if (this.#running.has(assignment.trialId) || this.options.outbox.has(assignment.trialId)) return;
    const controller = new AbortController();
    this.#running.set(assignment.trialId, controller);
    const signal = AbortSignal.any([controller.signal, this.#shutdown.signal]);
    this.#queue
      .run(assignment.gpuUuid, () => this.#run(assignment, signal), { signal })
      .then(
        (result) => {
          this.options.outbox.put(result);
          this.options.onResult(result);
        },
        (error) => this.options.logger.warn({ err: error, trialId: assignment.trialId }, 'trial did not finish; no result is sent'),
      )
      .finally(() => this.#running.delete(assignment.trialId));
  }

  cancel(trialId: string, reason: string): void {
    this.#running.get(trialId)?.abort(new Error(reason));
  }

  async describe(workload: string, architectures: { layers: number; hiddenChannels: number }[]): Promise<number[]> {
    const runner = this.#runner(workload);
    if (!runner) throw new Error(`this agent has no runner for workload ${JSON.stringify(workload)}; configure one with --runner-config`);
    return describeArchitectures(runner, workload, architectures, { signal: this.#shutdown.signal, logger: this.options.logger });
  }

  /** The configured runner of a workload; own keys only, so a name like `constructor` finds nothing. */
  #runner(workload: string): RunnerConfig | undefined {
    return Object.hasOwn(this.options.runners, workload) ? this.options.runners[workload] : undefined;
  }

  /** Aborts running and queued trials (their process groups are stopped). */
  stop(reason: string): void {
    this.#shutdown.abort(new Error(reason));
  }

  async #run(assignment: Assignment, signal: AbortSignal): Promise<OutboxResult> {
    const runner = this.#runner(assignment.workload);
    const index = this.options.gpuIndex(assignment.gpuUuid);
    const base = { gpuUuid: assignment.gpuUuid, layers: assignment.layers, hiddenChannels: assignment.hiddenChannels, batchSize: assignment.batchSize, iterations: assignment.iterations };
    if (!runner || index === undefined) {
      const summary = !runner ? `this agent has no runner for workload ${assignment.workload}` : `this node has no GPU ${assignment.gpuUuid}`;
      return { ...base, ...failedReport(assignment.trialId, summary) };
    }
    const logger = this.options.logger.child({ trialId: assignment.trialId, gpu: assignment.gpuUuid });
    const report = await executeTrial(
      {
        trialId: assignment.trialId,
        workload: assignment.workload,
        architecture: { layers: assignment.layers, hiddenChannels: assignment.hiddenChannels },
        batchSize: assignment.batchSize,
        iterations: assignment.iterations,
        device: { index, uuid: assignment.gpuUuid },
      },
      { runner, timeoutMs: assignment.timeoutMs, signal, monitor: this.options.monitor, allowBusyGpu: this.options.allowBusyGpu, logger },
    );
    logger.debug({ outcome: report.outcome, devicePeakMiB: report.devicePeakMiB, durationMs: Math.round(report.wallSeconds * 1000) }, 'trial finished');
    return { ...base, ...report };
  }
}

function failedReport(trialId: string, summary: string): TrialReport {
  return {
    trialId,
    outcome: 'failed',
    failure: { kind: 'runner_error', summary, sizes: {} },
    parameterCount: null,
    stepSeconds: null,
    frameworkPeakAllocatedBytes: null,
    frameworkPeakReservedBytes: null,
    devicePeakMiB: null,
    processPeakMiB: null,
    gpuSeconds: 0,
    wallSeconds: 0,
    exitCode: null,
    signal: null,
    memoryReleased: null,
    strayProcesses: false,
  };
}
