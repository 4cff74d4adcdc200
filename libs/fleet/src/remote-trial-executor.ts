/**
 * The optimizer's TrialExecutor for one GPU of one node: each trial gets a
 * row in the store, goes to the node's agent, and comes back as a
 * measurement. A trial lost with its agent is recorded as lost and run
 * again once the agent is back.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { Logger } from '@hwopt/common';
import type { BenchmarkRepository } from '@hwopt/db';
import type { Architecture, TrialExecutor, TrialMeasurement, TrialRequest } from '@hwopt/optimizer';
import type { AgentRegistry } from './agent-registry.ts';
import type { TrialResultReport } from './agent-messages.ts';
import { AgentNotConnectedError, TrialLostError } from './errors.ts';

export interface RemoteTrialExecutorOptions {
  registry: AgentRegistry;
  benchmarks: BenchmarkRepository;
  logger: Logger;
  nodeName: string;
  nodeId: string;
  gpuId: string;
  gpuUuid: string;
  runId: string;
  workload: string;
  /** Time limit the agent enforces on one trial, in ms. */
  trialTimeoutMs: number;
  /** Extra time the coordinator waits for a result beyond the trial's own limit, in ms. */
  resultGraceMs: number;
  /**
   * How long to wait for a disconnected agent to come back, in ms: before
   * assigning a trial (then the run fails and its job is retried later),
   * and for a trial already assigned (then it is lost and run again).
   */
  reconnectWaitMs: number;
  /** Times a lost trial is run again before the run fails. */
  maxLostRetries: number;
  signal?: AbortSignal;
}

export class RemoteTrialExecutor implements TrialExecutor {
  /** Successful trials per config, so a pick can name the trial that verified it. */
  readonly #succeeded = new Map<string, { trialId: string; iterations: number }[]>();

  constructor(private readonly options: RemoteTrialExecutorOptions) {}

  static configKey(architecture: Architecture, batchSize: number): string {
    return `${architecture.layers}|${architecture.hiddenChannels}|${batchSize}`;
  }

  /**
   * The latest successful trial at exactly this config with at least
   * `minIterations` iterations; a trial of another stage at the same config
   * verifies it as well.
   */
  verifyingTrialId(architecture: Architecture, batchSize: number, minIterations: number): string | null {
    const trials = this.#succeeded.get(RemoteTrialExecutor.configKey(architecture, batchSize)) ?? [];
    return trials.filter((t) => t.iterations >= minIterations).at(-1)?.trialId ?? null;
  }

  async parameterCounts(architectures: Architecture[]): Promise<number[]> {
    await this.#waitForAgent();
    return this.options.registry.describe(this.options.nodeName, this.options.workload, architectures, 120_000);
  }

  async runTrial(request: TrialRequest): Promise<TrialMeasurement> {
    const { options } = this;
    for (let attempt = 0; ; attempt++) {
      options.signal?.throwIfAborted();
      await this.#waitForAgent();
      const trialId = randomUUID();
      await options.benchmarks.createTrial({
        id: trialId,
        runId: options.runId,
        nodeId: options.nodeId,
        gpuId: options.gpuId,
        stage: request.stage,
        purpose: request.purpose,
        layers: request.architecture.layers,
        hiddenChannels: request.architecture.hiddenChannels,
        batchSize: request.batchSize,
        iterations: request.iterations,
      });
      try {
        const result = await options.registry.runTrial(
          options.nodeName,
          {
            trialId,
            gpuUuid: options.gpuUuid,
            workload: options.workload,
            architecture: request.architecture,
            batchSize: request.batchSize,
            iterations: request.iterations,
            timeoutMs: options.trialTimeoutMs,
          },
          // A trial whose agent stays away as long as a run waits for it is lost now, not at its timeout.
          { resultTimeoutMs: options.trialTimeoutMs + options.resultGraceMs, lostAfterDisconnectMs: options.reconnectWaitMs },
        );
        if (result.outcome === 'ok') {
          const key = RemoteTrialExecutor.configKey(request.architecture, request.batchSize);
          this.#succeeded.set(key, [...(this.#succeeded.get(key) ?? []), { trialId, iterations: request.iterations }]);
        }
        return toMeasurement(result);
      } catch (error) {
        if (!(error instanceof TrialLostError || error instanceof AgentNotConnectedError) || attempt >= options.maxLostRetries) throw error;
        await options.benchmarks.markTrialLost(trialId, (error as Error).message);
        options.logger.warn({ node: options.nodeName, trialId, attempt, err: error }, 'trial lost; running it again');
      }
    }
  }

  async #waitForAgent(): Promise<void> {
    const { registry, nodeName, reconnectWaitMs, signal } = this.options;
    if (registry.isConnected(nodeName)) return;
    const deadline = AbortSignal.timeout(reconnectWaitMs);
    const combined = signal ? AbortSignal.any([signal, deadline]) : deadline;
    while (!registry.isConnected(nodeName)) {
      try {
        await once(registry, 'connected', { signal: combined });
      } catch {
        signal?.throwIfAborted();
        throw new AgentNotConnectedError(nodeName);
      }
    }
  }
}

/** Maps an agent's report to what the optimizer decides from. */
export function toMeasurement(result: TrialResultReport): TrialMeasurement {
  if (result.outcome === 'ok') {
    return { outcome: 'ok', peakMiB: result.devicePeakMiB, stepSeconds: result.step?.meanSeconds ?? null, gpuSeconds: result.gpuSeconds };
  }
  if (result.outcome === 'oom') {
    return { outcome: 'oom', peakMiB: result.devicePeakMiB, stepSeconds: null, gpuSeconds: result.gpuSeconds, failureKind: 'oom', failureMessage: result.failure?.summary };
  }
  return {
    outcome: 'failed',
    peakMiB: result.devicePeakMiB,
    stepSeconds: null,
    gpuSeconds: result.gpuSeconds,
    failureKind: result.failure?.kind ?? 'runner_error',
    failureMessage: result.failure?.summary ?? 'the trial failed without a reason',
  };
}
