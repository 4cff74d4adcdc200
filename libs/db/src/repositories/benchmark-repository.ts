import type { PrismaClient } from '../generated/prisma/client.ts';
import { isUniqueViolation } from '../client.ts';
import type { StageConfigInput, TrialResultInput } from './types.ts';

export interface CreateRunInput {
  nodeId: string;
  gpuId: string;
  workloadId: string;
  datasetSize: number;
  reason: string;
  strategy: string;
  stages: string[];
  calibrationKey: string;
  driverVersion: string | null;
  cudaVersion: string | null;
}

export interface CreateTrialInput {
  id: string;
  runId: string;
  nodeId: string;
  gpuId: string;
  stage: string;
  purpose: string;
  layers: number;
  hiddenChannels: number;
  batchSize: number;
  iterations: number;
}

/** Benchmark runs, their trials and fitted cost models. */
export class BenchmarkRepository {
  constructor(private readonly prisma: PrismaClient) {}

  async ensureWorkload(name: string, version: string): Promise<string> {
    try {
      const row = await this.prisma.workload.upsert({
        where: { name_version: { name, version } },
        create: { name, version },
        update: {},
      });
      return row.id;
    } catch (error) {
      // Two runs starting at once both found no row and both inserted; the other insert won.
      if (!isUniqueViolation(error)) throw error;
      return (await this.prisma.workload.findUniqueOrThrow({ where: { name_version: { name, version } }, select: { id: true } })).id;
    }
  }

  async createRun(input: CreateRunInput): Promise<string> {
    const run = await this.prisma.benchmarkRun.create({ data: { ...input, status: 'running' } });
    return run.id;
  }

  /**
   * Creates a run and names the runs it should wait for: when no cost
   * model of its calibration key is stored yet, the runs of that key still
   * running. An advisory lock on the key serializes concurrent callers in
   * any coordinator process. So of several runs of one key started at once,
   * exactly one finds nothing to wait for and measures. The others wait for
   * its model and only verify.
   */
  async createRunAfterSameKey(input: CreateRunInput): Promise<{ runId: string; waitFor: string[] }> {
    return this.prisma.$transaction(async (tx) => {
      // Held until the transaction ends; hashtext collisions only serialize unrelated keys.
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${input.calibrationKey}))`;
      const model = await tx.costModel.findFirst({ where: { calibrationKey: input.calibrationKey }, select: { id: true } });
      const running = model
        ? []
        : await tx.benchmarkRun.findMany({ where: { calibrationKey: input.calibrationKey, status: 'running' }, select: { id: true }, orderBy: { startedAt: 'asc' } });
      const run = await tx.benchmarkRun.create({ data: { ...input, status: 'running' } });
      return { runId: run.id, waitFor: running.map((r) => r.id) };
    });
  }

  /** Counts the runs of `runIds` that are still running. */
  async countRunning(runIds: string[]): Promise<number> {
    if (runIds.length === 0) return 0;
    return this.prisma.benchmarkRun.count({ where: { id: { in: runIds }, status: 'running' } });
  }

  /** Touches the heartbeat of these runs, so that runs of a live coordinator are not taken for abandoned. */
  async touchRuns(runIds: string[]): Promise<void> {
    if (runIds.length === 0) return;
    await this.prisma.benchmarkRun.updateMany({ where: { id: { in: runIds }, status: 'running' }, data: { heartbeatAt: new Date() } });
  }

  /** Touches a run's heartbeat, so a run that waits is not taken for abandoned. */
  async touchRun(runId: string): Promise<void> {
    await this.prisma.benchmarkRun.updateMany({ where: { id: runId, status: 'running' }, data: { heartbeatAt: new Date() } });
  }

  async finishRun(runId: string, result: { status: 'succeeded' | 'failed' | 'interrupted'; trialCount: number; gpuSeconds: number; error?: string | null; changes?: string[] }): Promise<void> {
    await this.prisma.benchmarkRun.update({
      where: { id: runId },
      data: {
        status: result.status,
        trialCount: result.trialCount,
        gpuSeconds: result.gpuSeconds,
        error: result.error ?? null,
        changes: result.changes ?? [],
        finishedAt: new Date(),
      },
    });
  }

  /**
   * Closes runs left `running` by a coordinator that stopped, and marks
   * their unfinished trials lost, so no run stays stuck after a restart.
   * Returns the interrupted runs so their benchmarks can be scheduled again.
   */
  async interruptAbandonedRuns(reason: string, heartbeatOlderThan: Date): Promise<{ id: string; nodeName: string; gpuUuid: string; reason: string; stages: string[] }[]> {
    return this.prisma.$transaction(async (tx) => {
      const found = await tx.benchmarkRun.findMany({
        where: { status: 'running', heartbeatAt: { lt: heartbeatOlderThan } },
        select: { id: true, reason: true, stages: true, node: { select: { name: true } }, gpu: { select: { uuid: true } } },
      });
      const runs = found.map((r) => ({ id: r.id, nodeName: r.node.name, gpuUuid: r.gpu.uuid, reason: r.reason, stages: r.stages }));
      if (runs.length === 0) return [];
      const ids = runs.map((r) => r.id);
      await tx.trial.updateMany({ where: { runId: { in: ids }, status: 'assigned' }, data: { status: 'lost', finishedAt: new Date(), failureSummary: reason } });
      await tx.benchmarkRun.updateMany({ where: { id: { in: ids } }, data: { status: 'interrupted', error: reason, finishedAt: new Date() } });
      return runs;
    });
  }

  /** Creates a trial row and touches its run's heartbeat. */
  async createTrial(input: CreateTrialInput): Promise<void> {
    await this.prisma.$transaction([
      this.prisma.trial.create({ data: { ...input, status: 'assigned' } }),
      this.prisma.benchmarkRun.update({ where: { id: input.runId }, data: { heartbeatAt: new Date() } }),
    ]);
  }

  /**
   * Stores a trial's result once. A repeated delivery (an agent resending
   * after a lost acknowledgement) finds the row already finished and
   * changes nothing. Returns false when no trial has this id.
   */
  async recordTrialResult(result: TrialResultInput): Promise<{ stored: boolean; duplicate: boolean; runId: string | null }> {
    const existing = await this.prisma.trial.findUnique({ where: { id: result.trialId }, select: { status: true, runId: true } });
    if (!existing) return { stored: false, duplicate: false, runId: null };
    if (existing.status !== 'assigned' && existing.status !== 'lost') return { stored: true, duplicate: true, runId: existing.runId };
    const updated = await this.prisma.trial.updateMany({
      where: { id: result.trialId, status: { in: ['assigned', 'lost'] } },
      data: {
        status: result.outcome,
        failureKind: result.failureKind,
        failureSummary: result.failureSummary,
        devicePeakMiB: result.devicePeakMiB,
        processPeakMiB: result.processPeakMiB,
        frameworkPeakAllocatedBytes: result.frameworkPeakAllocatedBytes === null ? null : BigInt(Math.round(result.frameworkPeakAllocatedBytes)),
        frameworkPeakReservedBytes: result.frameworkPeakReservedBytes === null ? null : BigInt(Math.round(result.frameworkPeakReservedBytes)),
        stepSecondsMean: result.stepSecondsMean,
        stepSecondsP50: result.stepSecondsP50,
        stepSecondsMin: result.stepSecondsMin,
        stepSecondsMax: result.stepSecondsMax,
        parameterCount: result.parameterCount === null ? null : BigInt(Math.round(result.parameterCount)),
        gpuSeconds: result.gpuSeconds,
        wallSeconds: result.wallSeconds,
        finishedAt: new Date(),
      },
    });
    return { stored: true, duplicate: updated.count === 0, runId: existing.runId };
  }

  async markTrialLost(trialId: string, reason: string): Promise<void> {
    await this.prisma.trial.updateMany({ where: { id: trialId, status: 'assigned' }, data: { status: 'lost', failureSummary: reason, finishedAt: new Date() } });
  }

  async getTrial(trialId: string) {
    return this.prisma.trial.findUnique({ where: { id: trialId } });
  }

  async saveCostModel(input: { calibrationKey: string; workloadId: string; gpuModel: string; memoryTotalMiB: number; driverVersion: string | null; cudaVersion: string | null; runId: string; trialCount: number; snapshot: unknown }): Promise<void> {
    await this.prisma.costModel.create({ data: { ...input, snapshot: input.snapshot as object } });
  }

  /** Finds the newest cost model stored under exactly this calibration key. */
  async findCostModel(calibrationKey: string) {
    return this.prisma.costModel.findFirst({ where: { calibrationKey }, orderBy: { createdAt: 'desc' } });
  }

  /** Finds the newest cost model of this GPU model and memory size, under any driver. */
  async findCostModelOfGpu(workloadId: string, gpuModel: string, memoryTotalMiB: number) {
    return this.prisma.costModel.findFirst({ where: { workloadId, gpuModel, memoryTotalMiB }, orderBy: { createdAt: 'desc' } });
  }

  /** Finds the newest cost model of each other GPU model of this workload, to start an unseen GPU from. */
  async findCostModelsOfOtherGpus(workloadId: string, excludeGpuModel: string) {
    const rows = await this.prisma.costModel.findMany({ where: { workloadId, gpuModel: { not: excludeGpuModel } }, orderBy: { createdAt: 'desc' } });
    const newest = new Map<string, (typeof rows)[number]>();
    for (const row of rows) if (!newest.has(row.gpuModel)) newest.set(row.gpuModel, row);
    return [...newest.values()];
  }

  /**
   * Stores the picks of a run beside the configs they replace. A pick equal
   * to the current config keeps that row and records the check; a different
   * one adds a row and retires the old one with the reason. History is
   * never overwritten. Returns one line per stage saying what changed.
   */
  async saveStageConfigs(input: { runId: string; nodeId: string; gpuId: string; workloadId: string; datasetSize: number; reason: string; configs: StageConfigInput[]; missingStages: string[] }): Promise<string[]> {
    return this.prisma.$transaction(async (tx) => {
      const changes: string[] = [];
      const now = new Date();
      for (const config of input.configs) {
        const current = await tx.recommendedConfig.findFirst({
          where: { gpuId: input.gpuId, workloadId: input.workloadId, stage: config.stage, datasetSize: input.datasetSize, current: true },
        });
        const same =
          current !== null &&
          current.layers === config.layers &&
          current.hiddenChannels === config.hiddenChannels &&
          current.batchSize === config.batchSize;
        if (same) {
          await tx.recommendedConfig.update({
            where: { id: current.id },
            data: { lastVerifiedAt: now, staleAt: null, staleReason: null, verifiedTrialId: config.verifiedTrialId ?? current.verifiedTrialId },
          });
          // The stale mark is cleared on the row; the line keeps it in the run's history.
          const wasStale = current.staleReason ? ` after it was marked stale (${current.staleReason})` : '';
          changes.push(`${config.stage}: unchanged (${describe(config)}), verified by run ${input.runId}${wasStale}`);
          continue;
        }
        const created = await tx.recommendedConfig.create({
          data: {
            nodeId: input.nodeId,
            gpuId: input.gpuId,
            workloadId: input.workloadId,
            runId: input.runId,
            stage: config.stage,
            layers: config.layers,
            hiddenChannels: config.hiddenChannels,
            batchSize: config.batchSize,
            parameters: BigInt(config.parameters),
            peakMiB: config.peakMiB,
            stepSeconds: config.stepSeconds,
            cycleMinutes: config.cycleMinutes,
            inWindow: config.inWindow,
            datasetSize: input.datasetSize,
            candidatesFrom: config.candidatesFrom,
            verifiedTrialId: config.verifiedTrialId,
            evidence: config.evidence as object,
            current: true,
            changeReason: current ? `${input.reason}: was ${describe(current)}` : input.reason,
            lastVerifiedAt: now,
          },
        });
        if (current) {
          await tx.recommendedConfig.update({ where: { id: current.id }, data: { current: false } });
          changes.push(`${config.stage}: ${describe(current)} -> ${describe(config)} (${input.reason}${current.staleReason ? `; marked stale: ${current.staleReason}` : ''})`);
        } else {
          changes.push(`${config.stage}: new ${describe(config)} (config ${created.id})`);
        }
      }
      for (const stage of input.missingStages) {
        const current = await tx.recommendedConfig.findFirst({ where: { gpuId: input.gpuId, workloadId: input.workloadId, stage, datasetSize: input.datasetSize, current: true } });
        if (current) {
          await tx.recommendedConfig.update({ where: { id: current.id }, data: { current: false } });
          changes.push(`${stage}: ${describe(current)} -> none fits (${input.reason})`);
        } else {
          changes.push(`${stage}: none fits`);
        }
      }
      return changes;
    });
  }

  /** GPUs of a node with no current config for this workload and dataset size. */
  async gpusWithoutCurrentConfigs(nodeId: string, workloadName: string, datasetSize: number): Promise<string[]> {
    const gpus = await this.prisma.gpu.findMany({
      where: { nodeId, present: true, configs: { none: { current: true, datasetSize, workload: { name: workloadName } } } },
      select: { uuid: true },
    });
    return gpus.map((g) => g.uuid);
  }

  async hasStaleConfigs(nodeId: string): Promise<boolean> {
    return (await this.prisma.recommendedConfig.count({ where: { nodeId, current: true, staleAt: { not: null } } })) > 0;
  }

  /** Marks a node's current configs stale; they stay queryable, flagged. */
  async markConfigsStale(nodeId: string, reason: string): Promise<number> {
    const result = await this.prisma.recommendedConfig.updateMany({ where: { nodeId, current: true, staleAt: null }, data: { staleAt: new Date(), staleReason: reason } });
    return result.count;
  }

  async listRunsOfNode(nodeId: string) {
    return this.prisma.benchmarkRun.findMany({
      where: { nodeId },
      orderBy: { startedAt: 'asc' },
      include: { gpu: { select: { uuid: true } }, workload: { select: { name: true, version: true } }, _count: { select: { trials: { where: { status: { not: 'lost' } } } } } },
    });
  }
}

function describe(config: { layers: number; hiddenChannels: number; batchSize: number }): string {
  return `${config.layers} layers x ${config.hiddenChannels} channels, batch ${config.batchSize}`;
}
