/**
 * Queries for operators. They return plain values, which the gRPC ops
 * service and the CLI print.
 */
import type { BenchmarkRepository, ConfigFilter, ConfigRepository, NodeRepository } from '@hwopt/db';
import type { AgentRegistry } from './agent-registry.ts';
import { UnknownNodeError } from './errors.ts';

export interface ConfigView {
  nodeName: string;
  gpuUuid: string;
  gpuName: string;
  workload: string;
  stage: string;
  layers: number;
  hiddenChannels: number;
  batchSize: number;
  parameters: number;
  peakMiB: number | null;
  stepSeconds: number | null;
  cycleMinutes: number | null;
  inWindow: boolean | null;
  datasetSize: number;
  candidatesFrom: string;
  stale: boolean;
  staleReason: string | null;
  benchmarkRunId: string;
  verifiedTrialId: string | null;
  createdAt: Date;
  driverVersion: string | null;
  cudaVersion: string | null;
  current: boolean;
  changeReason: string | null;
}

export interface FleetNodeView {
  nodeName: string;
  hostname: string;
  labels: Record<string, string>;
  agentVersion: string;
  state: string;
  connected: boolean;
  lastContactAt: Date;
  driverVersion: string | null;
  cudaVersion: string | null;
  rebootPending: boolean;
  inventoryStale: boolean;
  gpus: { index: number; uuid: string; name: string; memoryTotalMiB: number | null; computeCapability: string | null; migMode: string | null; parentUuid: string | null; migProfile: string | null }[];
  configCount: number;
  staleConfigCount: number;
}

export interface RunView {
  id: string;
  nodeName: string;
  gpuUuid: string;
  workload: string;
  reason: string;
  status: string;
  strategy: string;
  trials: number;
  gpuSeconds: number;
  startedAt: Date;
  finishedAt: Date | null;
  error: string | null;
  driverVersion: string | null;
  cudaVersion: string | null;
  changes: string[];
}

/** The original tool's hardware_profile.json: one entry per stage that found a config. */
export type HardwareProfile = Record<string, { visnet_hidden_channels: number; visnet_num_layers: number; batch_size: number }>;

export class OpsQueries {
  /**
   * `contactTimeoutMs`: a node connected to another coordinator on the same
   * database counts as connected while its last report is younger than
   * this, in ms. Default 60 s (several heartbeat intervals).
   */
  constructor(private readonly deps: { nodes: NodeRepository; benchmarks: BenchmarkRepository; configs: ConfigRepository; registry: AgentRegistry; contactTimeoutMs?: number }) {}

  async listConfigs(filter: ConfigFilter): Promise<ConfigView[]> {
    const rows = await this.deps.configs.list(filter);
    return rows.map((row) => ({
      nodeName: row.node.name,
      gpuUuid: row.gpu.uuid,
      gpuName: row.gpu.name,
      workload: row.workload.name,
      stage: row.stage,
      layers: row.layers,
      hiddenChannels: row.hiddenChannels,
      batchSize: row.batchSize,
      parameters: Number(row.parameters),
      peakMiB: row.peakMiB,
      stepSeconds: row.stepSeconds,
      cycleMinutes: row.cycleMinutes,
      inWindow: row.inWindow,
      datasetSize: row.datasetSize,
      candidatesFrom: row.candidatesFrom,
      stale: row.staleAt !== null,
      staleReason: row.staleReason,
      benchmarkRunId: row.runId,
      verifiedTrialId: row.verifiedTrialId,
      createdAt: row.createdAt,
      driverVersion: row.run.driverVersion,
      cudaVersion: row.run.cudaVersion,
      current: row.current,
      changeReason: row.changeReason,
    }));
  }

  async listFleet(): Promise<FleetNodeView[]> {
    const nodes = await this.deps.nodes.listWithGpus();
    // One query for all nodes: a query per node took over 10 s at 1,000 nodes.
    const staleCounts = await this.deps.nodes.countStaleConfigsByNode();
    const views: FleetNodeView[] = [];
    for (const node of nodes) {
      views.push({
        nodeName: node.name,
        hostname: node.hostname,
        labels: (node.labels ?? {}) as Record<string, string>,
        agentVersion: node.agentVersion,
        state: node.state,
        connected: this.deps.registry.isConnected(node.name) || (node.state !== 'offline' && Date.now() - node.lastContactAt.getTime() < (this.deps.contactTimeoutMs ?? 60_000)),
        lastContactAt: node.lastContactAt,
        driverVersion: node.driverVersion,
        cudaVersion: node.cudaVersion,
        rebootPending: node.rebootPending,
        inventoryStale: node.inventoryStale,
        gpus: node.gpus.map((g) => ({ index: g.index, uuid: g.uuid, name: g.name, memoryTotalMiB: g.memoryTotalMiB, computeCapability: g.computeCapability, migMode: g.migMode, parentUuid: g.parentUuid, migProfile: g.migProfile })),
        configCount: node._count.configs,
        staleConfigCount: staleCounts.get(node.id) ?? 0,
      });
    }
    return views;
  }

  async history(nodeName: string): Promise<RunView[]> {
    const node = await this.deps.nodes.findByName(nodeName);
    if (!node) throw new UnknownNodeError(nodeName);
    const runs = await this.deps.benchmarks.listRunsOfNode(node.id);
    return runs.map((run) => ({
      id: run.id,
      nodeName,
      gpuUuid: run.gpu.uuid,
      workload: run.workload.name,
      reason: run.reason,
      status: run.status,
      strategy: run.strategy,
      // A running run has no total yet; count its trials so far.
      trials: run.status === 'running' ? run._count.trials : run.trialCount,
      gpuSeconds: run.gpuSeconds,
      startedAt: run.startedAt,
      finishedAt: run.finishedAt,
      error: run.error,
      driverVersion: run.driverVersion,
      cudaVersion: run.cudaVersion,
      changes: run.changes,
    }));
  }

  /**
   * The node's current configs in the original tool's format. With several
   * GPUs, the first GPU's configs are written (the original tuned one GPU).
   */
  async exportProfile(nodeName: string, workload?: string): Promise<HardwareProfile> {
    const node = await this.deps.nodes.findByName(nodeName);
    if (!node) throw new UnknownNodeError(nodeName);
    const configs = await this.listConfigs({ nodeName, workload });
    const firstGpu = node.gpus.find((g) => configs.some((c) => c.gpuUuid === g.uuid))?.uuid;
    const profile: HardwareProfile = {};
    for (const config of configs) {
      if (config.gpuUuid !== firstGpu) continue;
      profile[config.stage] = { visnet_hidden_channels: config.hiddenChannels, visnet_num_layers: config.layers, batch_size: config.batchSize };
    }
    return profile;
  }
}
