/**
 * Runs the optimizer for one GPU of one node and stores what it found:
 * the run, its trials (through the executor), each stage's config and the
 * fitted cost model. Starts from the best stored cost model it can find.
 */
import type { Logger } from '@hwopt/common';
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
}

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

export class BenchmarkService {
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
    const prior = await this.#findPrior(key, workloadId, gpu.name, gpu.memoryTotalMiB);
    const runId = await benchmarks.createRun({
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
    const logger = this.deps.logger.child({ node: node.name, gpu: gpu.uuid, runId });
    logger.info({ reason: request.reason, prior: prior?.source ?? 'none', stages }, 'benchmark run started');

    let trials = 0;
    let gpuSeconds = 0;
    const publish = (event: 'started' | 'trial' | 'finished' | 'failed', detail: string, status: string) =>
      events.publish({ runId, nodeName: node.name, gpuUuid: gpu.uuid, workload: workload.name, event, trials, gpuSeconds, detail, status, at: new Date() });
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
      publish('finished', changes.join('; '), 'succeeded');
      return { runId, status: 'succeeded', trials: result.cost.trials, gpuSeconds: result.cost.gpuSeconds, changes, error: null };
    } catch (error) {
      const message = error instanceof TrialFailedError ? `stopped by a failed trial: ${error.message}` : (error as Error).message;
      await benchmarks.finishRun(runId, { status: 'failed', trialCount: trials, gpuSeconds, error: message }).catch((finishError) => {
        logger.error({ err: finishError }, 'could not record the failed run');
      });
      logger.warn({ err: error }, 'benchmark run failed');
      publish('failed', message, 'failed');
      if (error instanceof TrialFailedError) {
        // A failure other than OOM needs an operator, not a retry.
        return { runId, status: 'failed', trials, gpuSeconds, changes: [], error: message };
      }
      throw error;
    }
  }

  /**
   * The best starting model: the same calibration key first, then the
   * same GPU model and memory under another driver (a re-benchmark), then
   * another GPU model of this workload (memory laws transfer across GPUs).
   */
  async #findPrior(key: string, workloadId: string, gpuModel: string, memoryTotalMiB: number): Promise<{ snapshot: CostModelSnapshot; source: string } | null> {
    const { benchmarks, logger } = this.deps;
    const candidates = [];
    const exact = await benchmarks.findCostModel(key);
    if (exact) candidates.push({ row: exact, source: `cost model of run ${exact.runId} (same key)` });
    const sameModel = await benchmarks.findCostModelOfGpu(workloadId, gpuModel, memoryTotalMiB);
    if (sameModel) candidates.push({ row: sameModel, source: `cost model of run ${sameModel.runId} (same GPU, other driver)` });
    for (const other of await benchmarks.findCostModelsOfOtherGpus(workloadId, gpuModel)) {
      candidates.push({ row: other, source: `cost model of run ${other.runId} (${other.gpuModel})` });
    }
    for (const candidate of candidates) {
      try {
        return { snapshot: parseCostModelSnapshot(candidate.row.snapshot), source: candidate.source };
      } catch (error) {
        logger.warn({ err: error, costModelId: candidate.row.id }, 'stored cost model is unreadable; skipping it');
      }
    }
    return null;
  }
}
