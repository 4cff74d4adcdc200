import type { PrismaClient } from '../generated/prisma/client.ts';
import type { NodeReport } from './types.ts';

export interface NodeUpsertResult {
  nodeId: string;
  gpuIds: Map<string, string>;
  /** Set when the driver or CUDA version differs from the last one stored. */
  versionChange: { from: { driver: string | null; cuda: string | null }; to: { driver: string | null; cuda: string | null } } | null;
  rebootPendingChanged: boolean;
  isNew: boolean;
}

/** Stores nodes, their GPUs and every driver version they report. */
export class NodeRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /**
   * Records a node's report (a hello or a heartbeat) in one transaction:
   * node row, GPUs, and a driver observation when the versions changed.
   * A stale inventory (nvidia-smi failing) keeps the stored GPUs.
   */
  async recordReport(report: NodeReport, state: string): Promise<NodeUpsertResult> {
    return this.prisma.$transaction(async (tx) => {
      const existing = await tx.node.findUnique({ where: { name: report.name } });
      const now = new Date();
      // A stale report repeats the last good versions; only a fresh one can change them.
      const driverVersion = report.inventoryStale && existing ? existing.driverVersion : report.driverVersion;
      const cudaVersion = report.inventoryStale && existing ? existing.cudaVersion : report.cudaVersion;
      const node = await tx.node.upsert({
        where: { name: report.name },
        create: {
          name: report.name,
          hostname: report.hostname,
          labels: report.labels,
          agentVersion: report.agentVersion,
          state,
          driverVersion,
          cudaVersion,
          rebootPending: report.rebootPending,
          inventoryStale: report.inventoryStale,
          lastContactAt: now,
        },
        update: {
          hostname: report.hostname,
          labels: report.labels,
          agentVersion: report.agentVersion,
          state,
          driverVersion,
          cudaVersion,
          rebootPending: report.rebootPending,
          inventoryStale: report.inventoryStale,
          lastContactAt: now,
        },
      });

      const versionChanged = !existing || existing.driverVersion !== driverVersion || existing.cudaVersion !== cudaVersion;
      const rebootPendingChanged = !!existing && existing.rebootPending !== report.rebootPending;
      if (versionChanged || rebootPendingChanged) {
        await tx.driverObservation.create({
          data: { nodeId: node.id, driverVersion, cudaVersion, rebootPending: report.rebootPending, observedAt: now },
        });
      }

      const gpuIds = new Map<string, string>();
      if (!report.inventoryStale) {
        for (const gpu of report.gpus) {
          const row = await tx.gpu.upsert({
            where: { nodeId_uuid: { nodeId: node.id, uuid: gpu.uuid } },
            create: { nodeId: node.id, ...gpu, present: true, lastSeenAt: now },
            update: { ...gpu, present: true, lastSeenAt: now },
          });
          gpuIds.set(gpu.uuid, row.id);
        }
        await tx.gpu.updateMany({
          where: { nodeId: node.id, uuid: { notIn: report.gpus.map((g) => g.uuid) } },
          data: { present: false },
        });
      } else {
        for (const row of await tx.gpu.findMany({ where: { nodeId: node.id, present: true } })) gpuIds.set(row.uuid, row.id);
      }

      return {
        nodeId: node.id,
        gpuIds,
        versionChange:
          existing && versionChanged
            ? { from: { driver: existing.driverVersion, cuda: existing.cudaVersion }, to: { driver: driverVersion, cuda: cudaVersion } }
            : null,
        rebootPendingChanged,
        isNew: !existing,
      };
    });
  }

  async setState(nodeId: string, state: string): Promise<void> {
    await this.prisma.node.update({ where: { id: nodeId }, data: { state } });
  }

  /** Marks every node offline; run at coordinator start, before agents reconnect. */
  async markAllOffline(): Promise<void> {
    await this.prisma.node.updateMany({ where: { state: { not: 'offline' } }, data: { state: 'offline' } });
  }

  async findByName(name: string) {
    return this.prisma.node.findUnique({ where: { name }, include: { gpus: { where: { present: true }, orderBy: { index: 'asc' } } } });
  }

  async listWithGpus() {
    return this.prisma.node.findMany({
      orderBy: { name: 'asc' },
      include: {
        gpus: { where: { present: true }, orderBy: { index: 'asc' } },
        _count: { select: { configs: { where: { current: true } } } },
      },
    });
  }

  async countStaleConfigs(nodeId: string): Promise<number> {
    return this.prisma.recommendedConfig.count({ where: { nodeId, current: true, staleAt: { not: null } } });
  }

  /** Counts stale current configs of every node in one query, keyed by node id. */
  async countStaleConfigsByNode(): Promise<Map<string, number>> {
    const groups = await this.prisma.recommendedConfig.groupBy({ by: ['nodeId'], where: { current: true, staleAt: { not: null } }, _count: { _all: true } });
    return new Map(groups.map((group) => [group.nodeId, group._count._all]));
  }
}
