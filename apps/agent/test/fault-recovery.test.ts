import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createTestDatabase, stopTestServer, type TestDatabase } from '@hwopt/db';
import { LocalFleet, waitFor } from '@hwopt/local-fleet';
import { bundledTwinPath } from '@hwopt/twin';

// Real processes on loopback: a coordinator on a throwaway database and twin
// agents whose trials last a few seconds (--twin-time-scale 0.05), so they
// can be killed mid-trial.
const SLOW_TWIN = ['--twin-time-scale', '0.05'];
// A 10 s trial limit, so the coordinator gives a trial up 40 s (limit plus 30 s grace) after assigning it.
const COORDINATOR_ARGS = ['--trial-timeout', '10'];

interface TrialRow {
  id: string;
  status: string;
  stage: string;
  layers: number;
  hidden_channels: number;
  batch_size: number;
  iterations: number;
  wall_seconds: number | null;
  gpu_seconds: number | null;
  assigned_at: Date;
}

class Store {
  readonly #client: pg.Client;
  constructor(url: string) {
    this.#client = new pg.Client({ connectionString: url });
  }
  connect() {
    return this.#client.connect();
  }
  end() {
    return this.#client.end();
  }
  async trial(id: string): Promise<TrialRow | undefined> {
    const { rows } = await this.#client.query<TrialRow>('SELECT * FROM trials WHERE id = $1', [id]);
    return rows[0];
  }
  async trialsOf(nodeName: string): Promise<TrialRow[]> {
    const { rows } = await this.#client.query<TrialRow>('SELECT t.* FROM trials t JOIN nodes n ON n.id = t.node_id WHERE n.name = $1 ORDER BY t.assigned_at', [nodeName]);
    return rows;
  }
  /** Waits for a trial of the node that has been running for at least 300 ms. */
  async runningTrial(nodeName: string): Promise<TrialRow> {
    return waitFor(`a running trial on ${nodeName}`, 120_000, async () => {
      const running = (await this.trialsOf(nodeName)).find((t) => t.status === 'assigned');
      if (!running) return undefined;
      await new Promise((resolve) => setTimeout(resolve, 300));
      return (await this.trial(running.id))?.status === 'assigned' ? running : undefined;
    }, 200);
  }
}

describe('an agent killed mid-trial', () => {
  let db: TestDatabase;
  let store: Store;
  let fleet: LocalFleet;
  let workDir: string;

  beforeAll(async () => {
    db = await createTestDatabase({ migrate: false });
    workDir = mkdtempSync(join(tmpdir(), 'hwopt-agent-faults-'));
    fleet = new LocalFleet(workDir);
    await fleet.startCoordinator({ databaseUrl: db.url, extraArgs: COORDINATOR_ARGS });
    store = new Store(db.url);
    await store.connect();
  });

  afterAll(async () => {
    await fleet?.stop();
    await store?.end();
    await db?.drop();
    await stopTestServer();
    if (workDir !== undefined && !process.env.HWOPT_KEEP_TEST_DIRS) rmSync(workDir, { recursive: true, force: true });
  });

  it('reruns the trial under its id after a restart', async () => {
    const node = 'restarted-agent';
    fleet.startAgent({ nodeName: node, twinFile: bundledTwinPath('t4'), extraArgs: SLOW_TWIN });
    const killed = await store.runningTrial(node);
    await fleet.agents.get(node)!.kill();
    fleet.startAgent({ nodeName: node, twinFile: bundledTwinPath('t4'), extraArgs: SLOW_TWIN });

    // The coordinator resends the pending assignment on reconnect, well before the trial's 40 s limit.
    const stored = await waitFor('the killed trial stored', 30_000, async () => {
      const row = await store.trial(killed.id);
      return row && row.status !== 'assigned' ? row : undefined;
    });
    expect(['ok', 'oom', 'failed']).toContain(stored.status);
    expect(stored.wall_seconds).toBeGreaterThan(0);
    // The run went on after it.
    await waitFor('a later trial', 30_000, async () => (await store.trialsOf(node)).find((t) => t.assigned_at > killed.assigned_at && t.status !== 'assigned'));
    // Stopped so the next test's processes get the CPUs.
    await fleet.agents.get(node)!.stop();
  });

  it('marks the trial lost, then reruns it', async () => {
    // Another twin than the first test's: runs of one calibration key measure one at a time.
    const node = 'vanished-agent';
    fleet.startAgent({ nodeName: node, twinFile: bundledTwinPath('a100-40gb'), extraArgs: SLOW_TWIN });
    const killed = await store.runningTrial(node);
    await fleet.agents.get(node)!.kill();

    const lost = await waitFor('the trial marked lost', 60_000, async () => {
      const row = await store.trial(killed.id);
      return row?.status === 'lost' ? row : undefined;
    });
    expect(lost.status).toBe('lost');

    fleet.startAgent({ nodeName: node, twinFile: bundledTwinPath('a100-40gb'), extraArgs: SLOW_TWIN });
    const rerun = await waitFor('the same trial run again under a new id', 60_000, async () =>
      (await store.trialsOf(node)).find(
        (t) =>
          t.id !== killed.id &&
          t.status !== 'assigned' &&
          t.status !== 'lost' &&
          t.stage === killed.stage &&
          t.layers === killed.layers &&
          t.hidden_channels === killed.hidden_channels &&
          t.batch_size === killed.batch_size &&
          t.iterations === killed.iterations,
      ),
    );
    expect(rerun.assigned_at.getTime()).toBeGreaterThan(killed.assigned_at.getTime());
    // The lost trial was not handed to the new agent process again.
    expect((await store.trial(killed.id))?.status).toBe('lost');
  });
});

describe('a result finished while the coordinator is down', () => {
  let db: TestDatabase;
  let store: Store;
  let fleet: LocalFleet;
  let workDir: string;

  beforeAll(async () => {
    db = await createTestDatabase({ migrate: false });
    workDir = mkdtempSync(join(tmpdir(), 'hwopt-agent-outbox-'));
    fleet = new LocalFleet(workDir);
    await fleet.startCoordinator({ databaseUrl: db.url, extraArgs: COORDINATOR_ARGS });
    store = new Store(db.url);
    await store.connect();
  });

  afterAll(async () => {
    await fleet?.stop();
    await store?.end();
    await db?.drop();
    await stopTestServer();
    if (workDir !== undefined && !process.env.HWOPT_KEEP_TEST_DIRS) rmSync(workDir, { recursive: true, force: true });
  });

  it('resends the kept result and stores it once', async () => {
    const node = 'outbox-agent';
    fleet.startAgent({ nodeName: node, twinFile: bundledTwinPath('t4'), extraArgs: SLOW_TWIN });
    const outboxDir = join(fleet.agentStateDir(node), 'outbox');
    const port = Number(fleet.address.split(':')[1]);

    const running = await store.runningTrial(node);
    await fleet.coordinator!.kill();
    const file = join(outboxDir, `${running.id}.json`);
    // The agent finishes the trial with no coordinator to send it to.
    await waitFor('the result in the outbox', 30_000, async () => existsSync(file));
    const kept = JSON.parse(readFileSync(file, 'utf8')) as { trialId: string; outcome: string; wallSeconds: number; gpuSeconds: number };
    expect((await store.trial(running.id))?.status).toBe('assigned');

    await fleet.startCoordinator({ databaseUrl: db.url, port, extraArgs: COORDINATOR_ARGS });
    await waitFor('the outbox emptied by the acknowledgement', 60_000, async () => !existsSync(file));
    const stored = await store.trial(running.id);
    expect(stored?.status).toBe(kept.outcome);
    expect(stored?.wall_seconds).toBeCloseTo(kept.wallSeconds, 6);

    // The same result again, with other figures, as after a lost acknowledgement:
    // it is acknowledged and changes nothing.
    await fleet.agents.get(node)!.stop();
    writeFileSync(file, JSON.stringify({ ...kept, wallSeconds: kept.wallSeconds + 100, gpuSeconds: kept.gpuSeconds + 100 }));
    fleet.startAgent({ nodeName: node, twinFile: bundledTwinPath('t4'), extraArgs: SLOW_TWIN });
    await waitFor('the resent duplicate acknowledged', 60_000, async () => !existsSync(file));
    const again = await store.trial(running.id);
    expect(again?.status).toBe(kept.outcome);
    expect(again?.wall_seconds).toBeCloseTo(kept.wallSeconds, 6);
    expect(again?.gpu_seconds).toBe(stored?.gpu_seconds);

    // A kept result of a trial the coordinator never assigned, as from a state folder copied
    // from another deployment: the coordinator rejects it, and the agent drops it instead of
    // resending it on every reconnect.
    await fleet.agents.get(node)!.stop();
    const unknownId = '00000000-0000-4000-8000-0000000000aa';
    const unknownFile = join(outboxDir, `${unknownId}.json`);
    writeFileSync(unknownFile, JSON.stringify({ ...kept, trialId: unknownId }));
    fleet.startAgent({ nodeName: node, twinFile: bundledTwinPath('t4'), extraArgs: SLOW_TWIN });
    await waitFor('the rejected result dropped from the outbox', 60_000, async () => !existsSync(unknownFile));
    expect(await store.trial(unknownId)).toBeUndefined();
  });
});
