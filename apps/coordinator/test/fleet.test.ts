import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa, execaSync, type ResultPromise } from 'execa';
import { createPrismaClient, createTestDatabase, stopTestServer, type PrismaClient, type TestDatabase } from '@hwopt/db';
import { CLI_BIN, LocalFleet, OpsHarnessClient, REPO_ROOT, waitFor, type ManagedProcess } from '@hwopt/local-fleet';
import { bundledTwinPath } from '@hwopt/twin';

// A fleet of unlike nodes over real gRPC. Two pairs of nodes share a GPU
// model (T4, A100) and one node is alone (RTX 4090). The cases cover driver
// upgrades with and without a pending reboot, `hwopt watch`, and a second
// coordinator on the same database that takes over the queued jobs when the
// first stops.
// Agents reach the second coordinator by being restarted with its address.
const DATASET_SIZE = 19_500;
const NEW_T4_DRIVER = '550.54.15';
const NEW_A100_DRIVER = '570.86.15';
const PAIRS = [
  { twin: 't4', nodes: ['t4-a', 't4-b'] },
  { twin: 'a100-40gb', nodes: ['a100-a', 'a100-b'] },
];
const COORDINATOR_ARGS = ['--heartbeat-interval', '2'];
const PYTHON_CLIENT = join(REPO_ROOT, 'tools/grpc-python/hwopt_ops_client.py');
// Debian's python3-grpcio installs into the system Python, which a python3 earlier on PATH may not see.
const PYTHON = ['python3', '/usr/bin/python3'].find((bin) => execaSync(bin, ['-c', 'import grpc, google.protobuf'], { reject: false }).exitCode === 0);
if (!PYTHON) console.warn('No python3 imports grpc and google.protobuf, so the Python reflection client case is skipped; install python3-grpcio and python3-protobuf.');

interface RunTrials {
  id: string;
  reason: string;
  status: string;
  stages: string[];
  startedAt: Date;
  trials: number;
  perStage: Record<string, number>;
}

describe('a fleet of five twin nodes', () => {
  let db: TestDatabase;
  let prisma: PrismaClient;
  let fleet: LocalFleet;
  let workDir: string;
  let firstCoordinator: ManagedProcess | undefined;
  const twinOf = new Map<string, string>();

  const startAgent = (nodeName: string) => fleet.startAgent({ nodeName, twinFile: bundledTwinPath(twinOf.get(nodeName)!) });
  const cli = (args: string[]) => execa(process.execPath, [CLI_BIN, ...args, '--coordinator', fleet.address]);
  const setOverrides = (nodeName: string, overrides: Record<string, string>) => {
    const dir = join(fleet.agentStateDir(nodeName), 'twin');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'overrides.json'), JSON.stringify(overrides));
  };

  /** Runs of a node, oldest first, with their trials counted per stage (lost trials excluded). */
  async function runsOf(nodeName: string): Promise<RunTrials[]> {
    const runs = await prisma.benchmarkRun.findMany({
      where: { node: { name: nodeName } },
      orderBy: { startedAt: 'asc' },
      include: { trials: { where: { status: { not: 'lost' } }, select: { stage: true } } },
    });
    return runs.map((run) => {
      const perStage: Record<string, number> = {};
      for (const trial of run.trials) perStage[trial.stage] = (perStage[trial.stage] ?? 0) + 1;
      return { id: run.id, reason: run.reason, status: run.status, stages: run.stages, startedAt: run.startedAt, trials: run.trials.length, perStage };
    });
  }

  beforeAll(async () => {
    db = await createTestDatabase({ migrate: false });
    prisma = createPrismaClient(db.url, { poolSize: 2 });
    workDir = mkdtempSync(join(tmpdir(), 'hwopt-fleet-'));
    fleet = new LocalFleet(workDir);
    firstCoordinator = await fleet.startCoordinator({ databaseUrl: db.url, datasetSize: DATASET_SIZE, extraArgs: COORDINATOR_ARGS, name: 'coordinator-a' });
    for (const pair of PAIRS) for (const node of pair.nodes) twinOf.set(node, pair.twin);
    twinOf.set('rtx-a', 'rtx4090');
    // All five at once: the nodes of a pair start together and must split the work.
    for (const node of twinOf.keys()) startAgent(node);
  });

  afterAll(async () => {
    await fleet?.stop();
    await firstCoordinator?.stop();
    await prisma?.$disconnect();
    await db?.drop();
    await stopTestServer();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('second node of a pair verifies', async () => {
    await waitFor('20 configs of five nodes', 420_000, async () => (await fleet.ops!.configs()).length === 20, 1000);
    for (const pair of PAIRS) {
      const [first, second] = (await Promise.all(pair.nodes.map(async (node) => ({ node, run: (await runsOf(node))[0]! })))).sort((a, b) => b.run.trials - a.run.trials);
      console.info(`${pair.twin}: first node ${first!.node} ${first!.run.trials} trials, second node ${second!.node} ${second!.run.trials} trials ${JSON.stringify(second!.run.perStage)}`);
      expect(first!.run.status).toBe('succeeded');
      expect(second!.run.status).toBe('succeeded');
      expect(Object.keys(second!.run.perStage).length).toBeLessThanOrEqual(4);
      for (const [stage, count] of Object.entries(second!.run.perStage)) expect(count, `${second!.node} ${stage}`).toBeLessThanOrEqual(1);
      expect(second!.run.trials).toBeLessThanOrEqual(first!.run.trials);
      // Both nodes of a pair get the same configs.
      const configs = await Promise.all(pair.nodes.map((nodeName) => fleet.ops!.configs({ nodeName })));
      const summary = (list: typeof configs[number]) => list.map((c) => `${c.stage}:${c.architecture?.layers}x${c.architecture?.hiddenChannels}@${c.batchSize}`).sort();
      expect(summary(configs[0]!)).toEqual(summary(configs[1]!));
      expect(configs[0]).toHaveLength(4);
    }
    const [rtx] = await runsOf('rtx-a');
    console.info(`rtx4090: alone, ${rtx!.trials} trials`);
    expect(rtx!.status).toBe('succeeded');
  });

  it('reboot-pending upgrade re-verifies after reboot', async () => {
    const before = await fleet.ops!.configs({ nodeName: 't4-b' });
    setOverrides('t4-b', { failure: 'nvml-mismatch' });
    const waiting = await waitFor('t4-b to wait for a reboot', 60_000, async () => {
      const node = (await fleet.ops!.fleet()).find((n) => n.nodeName === 't4-b');
      return node?.state === 'reboot_pending' && node.staleConfigCount === 4 ? node : undefined;
    });
    expect(waiting.inventory?.rebootPending).toBe(true);
    const stale = await fleet.ops!.configs({ nodeName: 't4-b' });
    expect(stale.every((c) => c.stale && /reboot/.test(c.staleReason))).toBe(true);
    // No benchmark runs on a node whose trials would fail.
    expect((await runsOf('t4-b')).map((r) => r.reason)).toEqual(['initial']);

    setOverrides('t4-b', { driverVersion: NEW_T4_DRIVER });
    const runs = await waitFor('a driver_change run on t4-b', 120_000, async () => {
      const list = await runsOf('t4-b');
      return list.some((r) => r.reason === 'driver_change' && r.status === 'succeeded') ? list : undefined;
    });
    const recheck = runs.find((r) => r.reason === 'driver_change')!;
    console.info(`t4-b driver ${NEW_T4_DRIVER}: re-benchmark ${recheck.trials} trials ${JSON.stringify(recheck.perStage)}`);
    for (const count of Object.values(recheck.perStage)) expect(count).toBeLessThanOrEqual(1);

    const after = await fleet.ops!.configs({ nodeName: 't4-b' });
    expect(after).toHaveLength(4);
    for (const config of after) {
      const old = before.find((c) => c.stage === config.stage)!;
      expect(config.stale, config.stage).toBe(false);
      // An unchanged config under the new driver keeps its row and records the verifying trial of the new run.
      expect(config.architecture).toEqual(old.architecture);
      expect(config.batchSize).toBe(old.batchSize);
      const trial = await prisma.trial.findUnique({ where: { id: config.verifiedTrialId } });
      expect(trial?.runId, config.stage).toBe(recheck.id);
    }
    const node = (await fleet.ops!.fleet()).find((n) => n.nodeName === 't4-b');
    expect(node?.state).toBe('online');
    expect(node?.inventory?.driverVersion).toBe(NEW_T4_DRIVER);

    const history = await cli(['history', '--node', 't4-b']);
    expect(history.stdout).toMatch(/initial\s+succeeded\s+driver 535\.183\.01/);
    expect(history.stdout).toMatch(new RegExp(`driver_change\\s+succeeded\\s+driver ${NEW_T4_DRIVER.replaceAll('.', '\\.')}`));
    expect(history.stdout).toContain('marked stale (driver upgraded without reboot');
  });

  it('driver upgrade re-benchmarks at once', async () => {
    setOverrides('a100-b', { driverVersion: NEW_A100_DRIVER });
    const runs = await waitFor('a driver_change run on a100-b', 120_000, async () => {
      const list = await runsOf('a100-b');
      return list.some((r) => r.reason === 'driver_change' && r.status === 'succeeded') ? list : undefined;
    });
    const recheck = runs.find((r) => r.reason === 'driver_change')!;
    console.info(`a100-b driver ${NEW_A100_DRIVER}: re-benchmark ${recheck.trials} trials ${JSON.stringify(recheck.perStage)}`);
    for (const count of Object.values(recheck.perStage)) expect(count).toBeLessThanOrEqual(1);
    const history = JSON.parse((await cli(['history', '--node', 'a100-b', '--json'])).stdout) as { reason: string; changes: string[]; driverVersion: string }[];
    expect(history.map((r) => r.reason)).toEqual(['initial', 'driver_change']);
    expect(history[1]!.driverVersion).toBe(NEW_A100_DRIVER);
    expect(history[1]!.changes).toHaveLength(4);
    for (const line of history[1]!.changes) expect(line).toContain(`marked stale (driver 550.54.15 -> ${NEW_A100_DRIVER}`);
  });

  it('watch prints JSON lines off a terminal', async () => {
    const watch = execa(process.execPath, [CLI_BIN, 'watch', '--coordinator', fleet.address], { reject: false, buffer: false });
    const lines: string[] = [];
    let pending = '';
    watch.stdout!.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      const parts = pending.split('\n');
      pending = parts.pop()!;
      lines.push(...parts.filter((line) => line.length > 0));
    });
    type WatchEvent = { runId: string; nodeName: string; event: string; trials: number; status: string };
    const parsed = () => lines.map((line) => JSON.parse(line) as WatchEvent);
    // A run of rtx-a whose events the watch saw from start to finish.
    const seenWhole = () => {
      const ofNode = parsed().filter((e) => e.nodeName === 'rtx-a');
      const runId = ofNode.find((e) => e.event === 'finished' && ofNode.some((s) => s.runId === e.runId && s.event === 'started'))?.runId;
      return runId ? ofNode.filter((e) => e.runId === runId) : undefined;
    };
    try {
      // The watch process may connect after a run began, so runs are requested until one is seen whole.
      for (let attempt = 0; attempt < 12 && !seenWhole(); attempt++) {
        await fleet.ops!.scheduleBenchmark({ nodeName: 'rtx-a', stage: 'production' });
        await waitFor('a watched run of rtx-a', 10_000, async () => seenWhole(), 250).catch(() => undefined);
      }
    } finally {
      await stopWatch(watch);
    }
    const run = seenWhole();
    expect(run, `watch output:\n${lines.join('\n')}`).toBeDefined();
    expect(run![0]).toMatchObject({ event: 'started' });
    expect(run!.at(-1)).toMatchObject({ event: 'finished', status: 'succeeded' });
    expect(run!.filter((e) => e.event === 'trial').length).toBeLessThanOrEqual(1);
  });

  it('second coordinator takes over queued jobs', async () => {
    const first = fleet.coordinator!;
    const firstAddress = fleet.address;
    fleet.ops!.close();
    // The second coordinator serves beside the first until the first stops.
    await fleet.startCoordinator({ databaseUrl: db.url, datasetSize: DATASET_SIZE, extraArgs: [...COORDINATOR_ARGS, '--rebenchmark-cron', '0 3 * * 0'], name: 'coordinator-b' });
    const secondAddress = fleet.address;
    expect(secondAddress).not.toBe(firstAddress);

    // The T4 nodes go away, so the first coordinator cannot run their jobs; rtx-a stays and may run its own.
    await Promise.all(['t4-a', 't4-b'].map((node) => fleet.agents.get(node)!.stop()));
    const viaFirst = (args: string[]) => execa(process.execPath, [CLI_BIN, ...args, '--coordinator', firstAddress]);
    const t4 = JSON.parse((await viaFirst(['benchmark', '--gpu-model', 'Tesla T4', '--json'])).stdout) as { jobIds: string[]; nodeNames: string[] };
    expect(t4.nodeNames.sort()).toEqual(['t4-a', 't4-b']);
    expect(t4.jobIds).toHaveLength(2);
    // Asking again adds nothing: one job per node and reason (checked below: one run each).
    const firstOps = new OpsHarnessClient(firstAddress);
    await firstOps.scheduleBenchmark({ gpuModel: 'Tesla T4' });
    await firstOps.scheduleBenchmark({ nodeName: 'rtx-a' });
    firstOps.close();
    const stoppedAt = new Date();
    await first.stop();
    firstCoordinator = undefined;

    // Agents are restarted with the second coordinator's address.
    await fleet.stopAgents();
    for (const node of twinOf.keys()) startAgent(node);

    const fullRuns = async (node: string) => (await runsOf(node)).filter((r) => r.reason === 'on_demand' && r.stages.length === 4);
    await waitFor('the on-demand re-benchmarks on the second coordinator', 180_000, async () => {
      for (const node of ['t4-a', 't4-b', 'rtx-a']) if (!(await fullRuns(node)).some((r) => r.status === 'succeeded')) return false;
      return true;
    }, 1000);
    for (const node of ['t4-a', 't4-b']) {
      const runs = await fullRuns(node);
      // Each job ran once, after the first coordinator stopped (its agent was not connected before).
      expect(runs.map((r) => r.status), node).toEqual(['succeeded']);
      expect(runs[0]!.startedAt.getTime()).toBeGreaterThan(stoppedAt.getTime());
      for (const count of Object.values(runs[0]!.perStage)) expect(count).toBeLessThanOrEqual(1);
    }
    // rtx-a's job may have started on the first coordinator (then interrupted and retried); it succeeded once.
    const rtx = await fullRuns('rtx-a');
    expect(rtx.filter((r) => r.status === 'succeeded')).toHaveLength(1);
    expect(rtx.every((r) => r.status === 'succeeded' || r.status === 'interrupted')).toBe(true);

    const nodes = await fleet.ops!.fleet();
    expect(nodes.map((n) => [n.nodeName, n.state])).toEqual([...twinOf.keys()].sort().map((name) => [name, 'online']));
    expect(await prisma.benchmarkRun.count({ where: { status: 'running' } })).toBe(0);
    const schedules = await prisma.$queryRaw<{ name: string; cron: string }[]>`SELECT name, cron FROM pgboss.schedule`;
    expect(schedules).toEqual([{ name: 'hwopt-scheduled-rebenchmark', cron: '0 3 * * 0' }]);
  });

  it('export-profile writes the original format', async () => {
    const profile = JSON.parse((await cli(['export-profile', '--node', 't4-a'])).stdout) as Record<string, Record<string, number>>;
    const configs = await fleet.ops!.configs({ nodeName: 't4-a' });
    expect(Object.keys(profile).sort()).toEqual(configs.map((c) => c.stage).sort());
    for (const config of configs) {
      expect(profile[config.stage]).toEqual({ visnet_hidden_channels: config.architecture!.hiddenChannels, visnet_num_layers: config.architecture!.layers, batch_size: config.batchSize });
    }
  });

  it.skipIf(!PYTHON)('Python client calls through reflection', async () => {
    const python = (args: string[]) => execa(PYTHON!, [PYTHON_CLIENT, '--address', fleet.address, ...args]);
    expect(JSON.parse((await python(['services'])).stdout)).toEqual(['hwopt.v1.AgentService', 'hwopt.v1.OpsService']);
    expect(JSON.parse((await python(['health'])).stdout)).toEqual({ service: '', status: 'SERVING' });
    expect(JSON.parse((await python(['health', 'hwopt.v1.OpsService'])).stdout).status).toBe('SERVING');
    const fleetReply = JSON.parse((await python(['call', 'ListFleet'])).stdout) as { nodes: { nodeName: string; inventory: { driverVersion: string } }[] };
    expect(fleetReply.nodes.map((n) => n.nodeName)).toEqual([...twinOf.keys()].sort());
    expect(fleetReply.nodes.find((n) => n.nodeName === 't4-b')?.inventory.driverVersion).toBe(NEW_T4_DRIVER);
    const configs = JSON.parse((await python(['call', 'ListConfigs', JSON.stringify({ nodeName: 't4-b' })])).stdout) as { configs: { stage: string; batchSize: number }[] };
    expect(configs.configs.map((c) => c.stage).sort()).toEqual(['production', 'prototyping', 'smoke_test', 'validation']);
    const history = JSON.parse((await python(['call', 'GetHistory', JSON.stringify({ nodeName: 't4-b' })])).stdout) as { runs: { reason: string }[] };
    expect(history.runs.map((r) => r.reason)).toContain('driver_change');
    const exported = JSON.parse((await python(['call', 'ExportProfile', JSON.stringify({ nodeName: 't4-a' })])).stdout) as { profileJson: string };
    expect(JSON.parse(exported.profileJson)).toEqual(JSON.parse((await cli(['export-profile', '--node', 't4-a'])).stdout));
    const missing = await execa(PYTHON!, [PYTHON_CLIENT, '--address', fleet.address, 'call', 'GetHistory', '{"nodeName": "no-such-node"}'], { reject: false });
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toMatch(/^NOT_FOUND: /);
  });
});

async function stopWatch(watch: ResultPromise): Promise<void> {
  watch.kill('SIGINT');
  const forced = setTimeout(() => watch.kill('SIGKILL'), 5_000);
  await watch;
  clearTimeout(forced);
}
