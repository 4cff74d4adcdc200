import type { PrismaClient } from '../generated/prisma/client.ts';

export interface ConfigFilter {
  nodeName?: string;
  stage?: string;
  workload?: string;
  includeHistory?: boolean;
}

/** Read side of recommended configs, for ops queries. */
export class ConfigRepository {
  constructor(private readonly prisma: PrismaClient) {}

  async list(filter: ConfigFilter) {
    return this.prisma.recommendedConfig.findMany({
      where: {
        ...(filter.includeHistory ? {} : { current: true }),
        ...(filter.stage ? { stage: filter.stage } : {}),
        ...(filter.nodeName ? { node: { name: filter.nodeName } } : {}),
        ...(filter.workload ? { workload: { name: filter.workload } } : {}),
      },
      include: {
        node: { select: { name: true } },
        gpu: { select: { uuid: true, name: true } },
        workload: { select: { name: true, version: true } },
        run: { select: { driverVersion: true, cudaVersion: true } },
      },
      orderBy: [{ node: { name: 'asc' } }, { gpu: { index: 'asc' } }, { createdAt: 'asc' }],
      take: 10_000,
    });
  }
}
