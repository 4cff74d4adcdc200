import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/prisma/client.ts';

export { PrismaClient, Prisma } from './generated/prisma/client.ts';
export type * from './generated/prisma/models.ts';

/**
 * Creates a Prisma client over the pg driver adapter (no native query
 * engine). Interactive transactions wait up to 10 s for a pooled
 * connection: with Prisma's 2 s default, a burst of agent heartbeats made
 * them fail under load (1,000 agents, 10 connections).
 */
export function createPrismaClient(databaseUrl: string, options: { poolSize?: number } = {}): PrismaClient {
  const adapter = new PrismaPg({ connectionString: databaseUrl, max: options.poolSize ?? 20, connectionTimeoutMillis: 10_000 });
  return new PrismaClient({ adapter, transactionOptions: { maxWait: 10_000, timeout: 30_000 } });
}

/** True for a Prisma unique-constraint violation (P2002). */
export function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: string }).code === 'P2002';
}
