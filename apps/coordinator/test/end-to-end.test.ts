import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { createTestDatabase, stopTestServer, type TestDatabase } from '@hwopt/db';
import { CLI_BIN, LocalFleet, waitFor } from '@hwopt/local-fleet';
import { optimize, VISNET_PDB } from '@hwopt/optimizer';
import { bundledTwinPath, loadTwin, TwinTrialExecutor } from '@hwopt/twin';

// The main job over real gRPC on loopback: a coordinator process on a real
// PostgreSQL, an agent process on the T4 twin, and the CLI querying them.
describe('coordinator and agent end to end', () => {
  let db: TestDatabase;
  let fleet: LocalFleet;
  let workDir: string;

  beforeAll(async () => {
    db = await createTestDatabase({ migrate: false });
    workDir = mkdtempSync(join(tmpdir(), 'hwopt-e2e-'));
    fleet = new LocalFleet(workDir);
    await fleet.startCoordinator({ databaseUrl: db.url, datasetSize: 19_500 });
    fleet.startAgent({ nodeName: 't4-e2e', twinFile: bundledTwinPath('t4') });
  });

  afterAll(async () => {
    await fleet?.stop();
    await db?.drop();
    await stopTestServer();
    rmSync(workDir, { recursive: true, force: true });
  });

  it('stores the same four configs the optimizer finds in process', async () => {
    // Generous: the whole suite shares two cores, and a failure names the run's state.
    const configs = await waitFor('four configs', 480_000, async () => {
      const current = await fleet.ops!.configs({ nodeName: 't4-e2e' });
      if (current.length === 4) return current;
      const runs = await fleet.ops!.history('t4-e2e').catch(() => []);
      const failed = runs.find((run) => run.status === 'failed');
      if (failed) throw Object.assign(new Error(`run ${failed.id} failed: ${failed.error}`), { fatal: true });
      return undefined;
    });
    const twin = loadTwin(bundledTwinPath('t4'));
    const expected = await optimize(new TwinTrialExecutor(twin), { workload: VISNET_PDB, memoryTotalMiB: twin.gpu.memoryTotalMiB, datasetSize: 19_500, gpuModel: twin.gpu.name });
    for (const config of configs) {
      const pick = expected.stages[config.stage as keyof typeof expected.stages];
      expect(pick, config.stage).not.toBeNull();
      expect(config.architecture, config.stage).toEqual({ layers: pick!.layers, hiddenChannels: pick!.hiddenChannels });
      expect(config.batchSize, config.stage).toBe(pick!.batchSize);
      expect(config.verifiedTrialId, config.stage).toMatch(/^[0-9a-f-]{36}$/);
      expect(config.stale, config.stage).toBe(false);
    }
  });

  it('lists the node with its twin GPU and driver', async () => {
    const nodes = await fleet.ops!.fleet();
    const node = nodes.find((n) => n.nodeName === 't4-e2e');
    expect(node?.state).toBe('online');
    expect(node?.inventory?.driverVersion).toBe('535.183.01');
    expect(node?.inventory?.gpus.map((g) => [g.name, g.memoryTotalMib])).toEqual([['Tesla T4', 15360]]);
  });

  it('answers the CLI over gRPC with JSON', async () => {
    const configs = await execa(process.execPath, [CLI_BIN, 'configs', '--coordinator', fleet.address, '--node', 't4-e2e', '--json']);
    expect(JSON.parse(configs.stdout)).toHaveLength(4);
    const fleetJson = await execa(process.execPath, [CLI_BIN, 'fleet', '--coordinator', fleet.address, '--json']);
    expect(JSON.parse(fleetJson.stdout).map((n: { nodeName: string }) => n.nodeName)).toContain('t4-e2e');
  });

  it('rejects a bad stage with a one-line reason', async () => {
    const result = await execa(process.execPath, [CLI_BIN, 'configs', '--coordinator', fleet.address, '--stage', 'bogus'], { reject: false });
    expect(result.exitCode).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('--stage "bogus"');
  });
});
