import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, sleep } from '@hwopt/common';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '@hwopt/db';
import { BenchmarkScheduler, type BenchmarkJob } from '../src/index.ts';
import { isUnreachableError } from '../src/queue-database.ts';

/** Polls `check` every 250 ms until it returns a value other than false or undefined. */
async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | false | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(250);
  }
}

/** A promise with its resolve function, so a test can release a waiting job handler. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

// PostgreSQL stopped and started again under a running scheduler, on a
// server of its own: jobs that end during the outage are completed or
// failed once it is back, and the queue goes on running new jobs. pg-boss
// 10.4 does not await those calls, so without retries the process would
// die of an unhandled rejection and vitest would report it.
describe('benchmark scheduler across a PostgreSQL restart', () => {
  let dataDir: string;
  let database: EmbeddedPostgresHandle | undefined;
  let scheduler: BenchmarkScheduler;
  const started: string[] = [];
  const gates = new Map<string, ReturnType<typeof gate>>();

  async function jobStates(): Promise<Record<string, string>> {
    const client = new pg.Client({ connectionString: database!.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ node: string; state: string }>(
        "SELECT data->>'nodeName' AS node, state FROM pgboss.job WHERE name = 'hwopt-benchmark' ORDER BY created_on",
      );
      return Object.fromEntries(rows.map((row) => [row.node, row.state]));
    } finally {
      await client.end();
    }
  }

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'hwopt-scheduler-restart-'));
    database = await startEmbeddedPostgres({ dataDir });
    scheduler = new BenchmarkScheduler({
      databaseUrl: database.url,
      logger: silentLogger(),
      concurrency: 4,
      pollingIntervalSeconds: 0.5,
      retryDelaySeconds: 1,
      async handler(job: BenchmarkJob) {
        started.push(job.nodeName);
        await gates.get(job.nodeName)?.promise;
        if (job.nodeName === 'fails-while-down') throw new Error('run failed while PostgreSQL was down');
      },
      async onScheduledRebenchmark() {},
    });
    await scheduler.start();
  });

  afterAll(async () => {
    await scheduler?.stop(2_000);
    await database?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('finishes jobs that ended during the outage and runs new ones', async () => {
    for (const name of ['completes-while-down', 'fails-while-down']) {
      gates.set(name, gate());
      await scheduler.enqueue({ nodeName: name, reason: 'on_demand' });
    }
    await waitFor('both jobs started', 30_000, async () => started.includes('completes-while-down') && started.includes('fails-while-down'));

    const port = database!.port;
    await database!.stop();
    database = undefined;
    // Both handlers return while the server is down, so pg-boss's complete and fail calls meet a refused connection.
    for (const g of gates.values()) g.open();
    await sleep(2_000);
    database = await startEmbeddedPostgres({ dataDir, port });

    const states = await waitFor('the jobs settled', 60_000, async () => {
      const current = await jobStates();
      return current['completes-while-down'] === 'completed' && current['fails-while-down'] !== 'active' ? current : undefined;
    });
    expect(states['completes-while-down']).toBe('completed');
    // A failed job goes back to the queue for its retry.
    expect(['retry', 'created', 'active', 'completed']).toContain(states['fails-while-down']);

    await scheduler.enqueue({ nodeName: 'after-restart', reason: 'on_demand' });
    await waitFor('the new job ran', 30_000, async () => (await jobStates())['after-restart'] === 'completed');
    expect(started).toContain('after-restart');
  });
});

describe('unreachable-server errors', () => {
  const cases: [string, unknown, boolean][] = [
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }), true],
    ['an administrator shutdown', Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }), true],
    ['a server starting up', Object.assign(new Error('the database system is starting up'), { code: '57P03' }), true],
    ['a connection exception', Object.assign(new Error('connection failure'), { code: '08006' }), true],
    ['a terminated connection', new Error('Connection terminated unexpectedly'), true],
    ['a unique violation', Object.assign(new Error('duplicate key value'), { code: '23505' }), false],
    ['a syntax error', Object.assign(new Error('syntax error'), { code: '42601' }), false],
    ['a non-error value', 'ECONNREFUSED', false],
  ];
  for (const [what, error, expected] of cases) {
    it(`classifies ${what}`, () => {
      expect(isUnreachableError(error)).toBe(expected);
    });
  }
});
