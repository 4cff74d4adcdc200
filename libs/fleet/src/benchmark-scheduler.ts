/**
 * Benchmark jobs on pg-boss, a PostgreSQL job queue: jobs survive a
 * coordinator restart, several coordinators share one queue without running
 * a job twice, and a failed job is retried with backoff. A job whose node
 * is connected to another coordinator (or to none) is deferred: queued
 * again after a short delay, without using up its retries, until the
 * coordinator holding the node's session takes it.
 */
import PgBoss from 'pg-boss';
import type { Logger } from '@hwopt/common';
import { QueueDatabase } from './queue-database.ts';
import type { StageName } from '@hwopt/optimizer';

export const BENCHMARK_QUEUE = 'hwopt-benchmark';
export const SCHEDULED_REBENCHMARK_QUEUE = 'hwopt-scheduled-rebenchmark';

export type BenchmarkReason = 'initial' | 'driver_change' | 'schedule' | 'on_demand' | 'interrupted';

export interface BenchmarkJob {
  nodeName: string;
  reason: BenchmarkReason;
  /** One GPU of the node; all of its GPUs when unset. */
  gpuUuid?: string;
  stages?: StageName[];
  /** When the job was first deferred (ISO 8601), because its node was not connected to the coordinator that took it. */
  deferredSince?: string;
}

export interface BenchmarkSchedulerOptions {
  databaseUrl: string;
  logger: Logger;
  /** Jobs this process runs at once (one job benchmarks one node). Default 16. */
  concurrency?: number;
  /** Cron expression (5 or 6 fields) for re-benchmarking every node; unset for none. */
  rebenchmarkCron?: string;
  /** Seconds between queue polls. Default 1. */
  pollingIntervalSeconds?: number;
  /** First retry delay in seconds for a job that failed (doubles each time). Default 5. */
  retryDelaySeconds?: number;
  handler(job: BenchmarkJob): Promise<void>;
  onScheduledRebenchmark(): Promise<void>;
}

export class BenchmarkScheduler {
  readonly #boss: PgBoss;
  readonly #database: QueueDatabase;
  #started = false;
  #stopping: Promise<void> | undefined;

  constructor(private readonly options: BenchmarkSchedulerOptions) {
    // Our own connection, so that statements are retried while PostgreSQL restarts (queue-database.ts).
    this.#database = new QueueDatabase({ connectionString: options.databaseUrl, logger: options.logger, max: 4 });
    this.#boss = new PgBoss({ db: this.#database, schema: 'pgboss' });
    this.#boss.on('error', (error) => options.logger.error({ err: error }, 'job queue error'));
  }

  async start(): Promise<void> {
    const { options } = this;
    await this.#boss.start();
    this.#started = true;
    // 'stately': at most one queued and one active job per singleton key,
    // so a node gets one pending benchmark per reason however often it is asked.
    await this.#boss.createQueue(BENCHMARK_QUEUE, {
      name: BENCHMARK_QUEUE,
      policy: 'stately',
      retryLimit: 20,
      retryDelay: options.retryDelaySeconds ?? 5,
      retryBackoff: true,
      // A benchmark on real GPUs can take hours; a job held longer by a
      // coordinator that died is handed to another after this.
      expireInHours: 12,
    });
    await this.#boss.createQueue(SCHEDULED_REBENCHMARK_QUEUE, { name: SCHEDULED_REBENCHMARK_QUEUE, policy: 'singleton' });
    const concurrency = options.concurrency ?? 16;
    const polling = { pollingIntervalSeconds: options.pollingIntervalSeconds ?? 1 };
    for (let i = 0; i < concurrency; i++) {
      await this.#boss.work<BenchmarkJob>(BENCHMARK_QUEUE, polling, async ([job]) => {
        if (job) await options.handler(job.data);
      });
    }
    await this.#boss.work(SCHEDULED_REBENCHMARK_QUEUE, polling, async () => options.onScheduledRebenchmark());
    if (options.rebenchmarkCron) {
      await this.#boss.schedule(SCHEDULED_REBENCHMARK_QUEUE, options.rebenchmarkCron, {});
    } else {
      // NOTE: the schedule lives in the shared database, so a coordinator started without
      // --rebenchmark-cron removes the one another coordinator set; start all with the same flag.
      await this.#boss.unschedule(SCHEDULED_REBENCHMARK_QUEUE);
    }
    options.logger.info({ concurrency, cron: options.rebenchmarkCron ?? null }, 'benchmark scheduler started');
  }

  /** Queues a benchmark; returns the job id, or null when an equal job is already queued. */
  async enqueue(job: BenchmarkJob): Promise<string | null> {
    const id = await this.#boss.send(BENCHMARK_QUEUE, job, { singletonKey: singletonKey(job) });
    this.options.logger.info({ node: job.nodeName, reason: job.reason, jobId: id }, id ? 'benchmark queued' : 'benchmark already queued');
    return id;
  }

  /**
   * Queues a job again to start after `delaySeconds`. It is called from
   * the job's own handler, and 'stately' allows one queued job beside the
   * active one. When an equal job is already queued, that job replaces this
   * one and null is returned.
   */
  async defer(job: BenchmarkJob, delaySeconds: number): Promise<string | null> {
    return this.#boss.send(BENCHMARK_QUEUE, job, { singletonKey: singletonKey(job), startAfter: Math.max(1, Math.round(delaySeconds)) });
  }

  /**
   * Fails the active jobs of these nodes that started before
   * `startedBefore`, so pg-boss retries them now instead of after the 12 h
   * expiry. Called for runs whose heartbeat shows their coordinator died
   * (kill -9): its jobs stay active and, under the 'stately' policy, block
   * the node's later jobs with the same key. Returns the failed job ids.
   */
  async releaseAbandonedJobs(nodeNames: string[], startedBefore: Date): Promise<string[]> {
    if (nodeNames.length === 0) return [];
    const result = await this.#boss.getDb().executeSql(
      `SELECT id FROM pgboss.job WHERE name = $1 AND state = 'active' AND data->>'nodeName' = ANY($2::text[]) AND started_on < $3`,
      [BENCHMARK_QUEUE, nodeNames, startedBefore.toISOString()],
    );
    const ids = (result as { rows: { id: string }[] }).rows.map((row) => row.id);
    if (ids.length > 0) {
      await this.#boss.fail(BENCHMARK_QUEUE, ids);
      this.options.logger.warn({ jobIds: ids, nodes: nodeNames }, 'failed benchmark jobs of a stopped coordinator so they are retried');
    }
    return ids;
  }

  /** Stops taking jobs, waits for running ones up to `timeoutMs`, then closes. Safe to call twice. */
  stop(timeoutMs = 10_000): Promise<void> {
    if (!this.#started) return this.#database.close();
    // pg-boss closes only a connection it opened itself, so ours is closed after it stops.
    this.#stopping ??= this.#boss.stop({ graceful: true, timeout: timeoutMs, wait: true, close: true }).finally(() => this.#database.close());
    return this.#stopping;
  }
}

/** Builds the deduplication key: one job per node, reason, GPU and stage set (the deferral time is not part of it). */
function singletonKey(job: BenchmarkJob): string {
  return [job.nodeName, job.reason, job.gpuUuid ?? 'all', (job.stages ?? []).join('+') || 'all-stages'].join(':');
}
