/**
 * Runs the optimizer for one GPU of one node and stores what it found:
 * the run, its trials (through the executor), each stage's config and the
 * fitted cost model. Starts from the best stored cost model it can find.
 */
import { errorMessage, sleep, type Logger } from '@hwopt/common';
import type { BenchmarkRepository, NodeRepository, StageConfigInput } from '@hwopt/db';
import {
  optimize,
  parseCostModelSnapshot,
  STAGE_NAMES,
  TrialFailedError,
  type CostModelSnapshot,
  type StageName,
  type StrategyName,
  type WorkloadSpec,
} from '@hwopt/optimizer';
import type { AgentRegistry } from './agent-registry.ts';
import type { BenchmarkEvents } from './benchmark-events.ts';
import { calibrationKey } from './calibration-key.ts';
import { UnknownNodeError } from './errors.ts';
import { RemoteTrialExecutor } from './remote-trial-executor.ts';

export interface BenchmarkSettings {
  workload: WorkloadSpec;
  datasetSize: number;
  headroom: number;
  strategy: StrategyName;
  trialTimeoutMs: number;
  resultGraceMs: number;
  reconnectWaitMs: number;
  maxLostRetries: number;
  /**
   * How often a run that waits for another run of its calibration key
   * checks whether that run stored its model, in ms. Default 1000.
   */
  sameKeyPollMs?: number;
}

/** Touch a waiting run's heartbeat at most this often, in ms. */
const WAIT_HEARTBEAT_MS = 10_000;

export interface BenchmarkRequest {
  nodeName: string;
  gpuUuid: string;
  reason: string;
  stages?: StageName[];
  signal?: AbortSignal;
}

export interface BenchmarkOutcome {
  runId: string;
  status: 'succeeded' | 'failed';
  trials: number;
  gpuSeconds: number;
  changes: string[];
  error: string | null;
}

interface Prior {
  snapshot: CostModelSnapshot;
  /** Names the run the model came from and how it relates to this GPU, for logs and `hwopt watch`. */
  source: string;
  sameKey: boolean;
  /** Trials the run that stored the model needed. */
  trialCount: number;
}

export class BenchmarkService {
  readonly #activeRuns = new Set<string>();

  constructor(
    private readonly deps: {
      nodes: NodeRepository;
      benchmarks: BenchmarkRepository;
      registry: AgentRegistry;
      events: BenchmarkEvents;
      logger: Logger;
      settings: BenchmarkSettings;
    },
  ) {}

  get settings(): BenchmarkSettings {
    return this.deps.settings;
  }

  /** Ids of the runs this process is executing now. */
  activeRunIds(): string[] {
    return [...this.#activeRuns];
  }

  async run(request: BenchmarkRequest): Promise<BenchmarkOutcome> {
    const { nodes, benchmarks, registry, events, settings } = this.deps;
    const node = await nodes.findByName(request.nodeName);
    if (!node) throw new UnknownNodeError(request.nodeName);
    const gpu = node.gpus.find((g) => g.uuid === request.gpuUuid);
    if (!gpu) throw new UnknownNodeError(`${request.nodeName} GPU ${request.gpuUuid}`);
    if (gpu.memoryTotalMiB === null) {
      throw new Error(`GPU ${gpu.uuid} of node ${node.name} reports no total memory, so no batch size can be sized for it; check nvidia-smi on that node.`);
    }
    const workload = settings.workload;
    const workloadId = await benchmarks.ensureWorkload(workload.name, workload.version);
    const key = calibrationKey({
      gpuModel: gpu.name,
      memoryTotalMiB: gpu.memoryTotalMiB,
      driverVersion: node.driverVersion,
      cudaVersion: node.cudaVersion,
      workload: workload.name,
      workloadVersion: workload.version,
    });
    const stages = request.stages ?? [...STAGE_NAMES];
    const { runId, waitFor } = await benchmarks.createRunAfterSameKey({
      nodeId: node.id,
      gpuId: gpu.id,
      workloadId,
      datasetSize: settings.datasetSize,
      reason: request.reason,
      strategy: settings.strategy,
      stages,
      calibrationKey: key,
      driverVersion: node.driverVersion,
      cudaVersion: node.cudaVersion,
    });
    // Touched by the coordinator's sweep while this process runs it, so only a run whose coordinator died goes stale.
    this.#activeRuns.add(runId);
    try {
      const logger = this.deps.logger.child({ node: node.name, gpu: gpu.uuid, runId });

      let trials = 0;
      let gpuSeconds = 0;
      const publish = (event: 'started' | 'trial' | 'finished' | 'failed', detail: string, status: string) =>
        events.publish({ runId, nodeName: node.name, gpuUuid: gpu.uuid, workload: workload.name, event, trials, gpuSeconds, detail, status, at: new Date() });

      let prior: Prior | null;
      try {
        if (waitFor.length > 0) {
          logger.info({ waitFor }, 'another run of this calibration key is measuring; waiting for its model');
          publish('started', `${request.reason}; waiting for run ${waitFor.join(', ')} of the same GPU, driver and workload, then verifying`, 'waiting');
          await this.#waitForSameKey(runId, key, waitFor, request.signal);
        }
        prior = await this.#findPrior(key, workloadId, gpu.name, gpu.memoryTotalMiB);
      } catch (error) {
        await this.#closeRun(runId, request.signal, 0, 0, error, logger);
        throw error;
      }
      logger.info({ reason: request.reason, prior: prior?.source ?? 'none', stages }, 'benchmark run started');
      publish('started', `${request.reason}; starting from ${prior?.source ?? 'no stored model'}`, 'running');

      const executor = new RemoteTrialExecutor({
        registry,
        benchmarks,
        logger,
        nodeName: node.name,
        nodeId: node.id,
        gpuId: gpu.id,
        gpuUuid: gpu.uuid,
        runId,
        workload: workload.name,
        trialTimeoutMs: settings.trialTimeoutMs,
        resultGraceMs: settings.resultGraceMs,
        reconnectWaitMs: settings.reconnectWaitMs,
        maxLostRetries: settings.maxLostRetries,
        signal: request.signal,
      });

      try {
        const result = await optimize(executor, {
          workload,
          memoryTotalMiB: gpu.memoryTotalMiB,
          datasetSize: settings.datasetSize,
          gpuModel: gpu.name,
          headroom: settings.headroom,
          strategy: settings.strategy,
          stages,
          prior: prior?.snapshot,
          signal: request.signal,
          onTrial: (trial, measurement) => {
            trials += 1;
            gpuSeconds += measurement.gpuSeconds;
            logger.debug({ stage: trial.stage, ...trial.architecture, batchSize: trial.batchSize, outcome: measurement.outcome }, 'trial finished');
            publish('trial', `${trial.stage} ${trial.architecture.layers}x${trial.architecture.hiddenChannels} batch ${trial.batchSize}: ${measurement.outcome}`, 'running');
          },
        });

        const configs: StageConfigInput[] = [];
        const missing: string[] = [];
        for (const stage of stages) {
          const pick = result.stages[stage];
          if (!pick) {
            missing.push(stage);
            continue;
          }
          const verifiedTrialId = executor.verifyingTrialId({ layers: pick.layers, hiddenChannels: pick.hiddenChannels }, pick.batchSize, pick.verifyTrialIterations);
          configs.push({
            stage,
            layers: pick.layers,
            hiddenChannels: pick.hiddenChannels,
            batchSize: pick.batchSize,
            parameters: pick.parameters,
            peakMiB: pick.peakMiB,
            stepSeconds: pick.stepSeconds,
            cycleMinutes: pick.cycleMinutes,
            inWindow: pick.inWindow,
            candidatesFrom: pick.candidatesFrom,
            verifiedTrialId,
            evidence: { verifyTrialIterations: pick.verifyTrialIterations, runTrials: result.cost.trials, strategy: result.strategy },
          });
        }
        const changes = await benchmarks.saveStageConfigs({
          runId,
          nodeId: node.id,
          gpuId: gpu.id,
          workloadId,
          datasetSize: settings.datasetSize,
          reason: request.reason,
          configs,
          missingStages: missing,
        });
        await benchmarks.saveCostModel({
          calibrationKey: key,
          workloadId,
          gpuModel: gpu.name,
          memoryTotalMiB: gpu.memoryTotalMiB,
          driverVersion: node.driverVersion,
          cudaVersion: node.cudaVersion,
          runId,
          trialCount: result.cost.trials,
          snapshot: result.model,
        });
        await benchmarks.finishRun(runId, { status: 'succeeded', trialCount: result.cost.trials, gpuSeconds: result.cost.gpuSeconds, changes });
        logger.info({ trials: result.cost.trials, gpuSeconds: Math.round(result.cost.gpuSeconds), changes }, 'benchmark run succeeded');
        if (prior?.sameKey && result.cost.trials > prior.trialCount) {
          // NOTE: the bound is checked, not enforced. When a trial contradicts the stored model,
          // the optimizer drops the model and measures this GPU as if cold.
          logger.warn({ trials: result.cost.trials, priorTrials: prior.trialCount, prior: prior.source }, 'verification against the stored model of this key took more trials than the run that stored it');
        }
        publish('finished', changes.join('; '), 'succeeded');
        return { runId, status: 'succeeded', trials: result.cost.trials, gpuSeconds: result.cost.gpuSeconds, changes, error: null };
      } catch (error) {
        const { message, status } = await this.#closeRun(runId, request.signal, trials, gpuSeconds, error, logger);
        publish('failed', message, status);
        if (error instanceof TrialFailedError) {
          // A failure other than OOM needs an operator, not a retry.
          return { runId, status: 'failed', trials, gpuSeconds, changes: [], error: message };
        }
        throw error;
      }
    } finally {
      this.#activeRuns.delete(runId);
    }
  }

  /** Records why a run stopped early: 'interrupted' when it was aborted (its job runs again), else 'failed'. */
  async #closeRun(runId: string, signal: AbortSignal | undefined, trials: number, gpuSeconds: number, error: unknown, logger: Logger): Promise<{ message: string; status: 'failed' | 'interrupted' }> {
    const status = signal?.aborted ? 'interrupted' : 'failed';
    const message = error instanceof TrialFailedError ? `stopped by a failed trial: ${error.message}` : errorMessage(error);
    await this.deps.benchmarks.finishRun(runId, { status, trialCount: trials, gpuSeconds, error: message }).catch((finishError) => {
      logger.error({ err: finishError }, 'could not record the end of the run');
    });
    logger.warn({ err: error, status }, 'benchmark run did not finish');
    return { message, status };
  }

  /**
   * Waits until a model of this calibration key is stored, or until none of
   * the runs it waits for is running any more (they failed: this run then
   * measures from whatever prior is left).
   */
  async #waitForSameKey(runId: string, key: string, waitFor: string[], signal: AbortSignal | undefined): Promise<void> {
    const { benchmarks, settings } = this.deps;
    let touchedAt = Date.now();
    for (;;) {
      if (await benchmarks.findCostModel(key)) return;
      if ((await benchmarks.countRunning(waitFor)) === 0) return;
      if (Date.now() - touchedAt >= WAIT_HEARTBEAT_MS) {
        await benchmarks.touchRun(runId);
        touchedAt = Date.now();
      }
      await sleep(settings.sameKeyPollMs ?? 1000, signal);
    }
  }

  /**
   * The best starting model: the same calibration key first, then the
   * same GPU model and memory under another driver (a re-benchmark), then
   * another GPU model of this workload (memory laws transfer across GPUs).
   */
  async #findPrior(key: string, workloadId: string, gpuModel: string, memoryTotalMiB: number): Promise<Prior | null> {
    const { benchmarks, logger } = this.deps;
    const candidates = [];
    const exact = await benchmarks.findCostModel(key);
    if (exact) candidates.push({ row: exact, source: `cost model of run ${exact.runId} (same key)`, sameKey: true });
    const sameModel = await benchmarks.findCostModelOfGpu(workloadId, gpuModel, memoryTotalMiB);
    if (sameModel) candidates.push({ row: sameModel, source: `cost model of run ${sameModel.runId} (same GPU, other driver)`, sameKey: false });
    for (const other of await benchmarks.findCostModelsOfOtherGpus(workloadId, gpuModel)) {
      candidates.push({ row: other, source: `cost model of run ${other.runId} (${other.gpuModel})`, sameKey: false });
    }
    for (const candidate of candidates) {
      try {
        return { snapshot: parseCostModelSnapshot(candidate.row.snapshot), source: candidate.source, sameKey: candidate.sameKey, trialCount: candidate.row.trialCount };
      } catch (error) {
        logger.warn({ err: error, costModelId: candidate.row.id }, 'stored cost model is unreadable; skipping it');
      }
    }
    return null;
  }
}
