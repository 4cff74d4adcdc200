import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '@hwopt/common';
import { BenchmarkRepository, createPrismaClient, createTestDatabase, NodeRepository, stopTestServer, type PrismaClient, type TestDatabase } from '@hwopt/db';
import { optimize, VISNET_PDB, type TrialMeasurement } from '@hwopt/optimizer';
import { bundledTwinPath, loadTwin, TwinTrialExecutor, type Twin } from '@hwopt/twin';
import { AgentRegistry, BenchmarkEvents, BenchmarkService, FleetCoordinator, type AgentHello, type AgentLink, type BenchmarkJob, type TrialResultReport } from '../src/index.ts';

// The coordinator's calibration sharing in process: agents are links that
// return twin results at once, so trial counts are exact and fast.
const DATASET_SIZE = 19_500;

function toResult(trialId: string, gpuUuid: string, assignment: { architecture: { layers: number; hiddenChannels: number }; batchSize: number; iterations: number }, m: TrialMeasurement): TrialResultReport {
  return {
    trialId,
    gpuUuid,
    architecture: assignment.architecture,
    batchSize: assignment.batchSize,
    iterations: assignment.iterations,
    outcome: m.outcome,
    failure: m.outcome === 'ok' ? null : { kind: m.failureKind ?? m.outcome, summary: m.failureMessage ?? m.outcome, requestedBytes: null, totalBytes: null, freeBytes: null },
    devicePeakMiB: m.peakMiB,
    processPeakMiB: m.peakMiB,
    frameworkPeakAllocatedBytes: null,
    frameworkPeakReservedBytes: null,
    step: m.stepSeconds === null ? null : { meanSeconds: m.stepSeconds, p50Seconds: m.stepSeconds, minSeconds: m.stepSeconds, maxSeconds: m.stepSeconds, count: assignment.iterations },
    parameterCount: null,
    gpuSeconds: m.gpuSeconds,
    wallSeconds: m.gpuSeconds,
  };
}

describe('calibration shared across the fleet', () => {
  let db: TestDatabase;
  let prisma: PrismaClient;
  let benchmarks: BenchmarkRepository;
  let registry: AgentRegistry;
  let service: BenchmarkService;
  let fleet: FleetCoordinator;
  const deferred: { job: BenchmarkJob; delaySeconds: number }[] = [];
  const queued: BenchmarkJob[] = [];

  async function connect(nodeName: string, twin: Twin, driverVersion = twin.gpu.driverVersion): Promise<string> {
    const gpuUuid = `GPU-${nodeName}`;
    const executor = new TwinTrialExecutor(twin);
    const hello: AgentHello = {
      nodeName,
      hostname: nodeName,
      labels: {},
      agentVersion: 'test',
      workloads: [VISNET_PDB.name],
      inventory: {
        driverVersion,
        cudaVersion: twin.gpu.cudaVersion ?? null,
        stale: false,
        rebootPending: false,
        error: null,
        gpus: [{ index: 0, uuid: gpuUuid, name: twin.gpu.name, memoryTotalMiB: twin.gpu.memoryTotalMiB, computeCapability: null, migMode: null, parentUuid: null, migProfile: null }],
      },
    };
    // Resolved once the hello returns. A reconnect mid-run gets its pending trials during the hello,
    // so results wait for the session instead of reading it before it exists.
    let sessionReady!: (session: Awaited<ReturnType<FleetCoordinator['handleHello']>>) => void;
    const session = new Promise<Awaited<ReturnType<FleetCoordinator['handleHello']>>>((resolve) => {
      sessionReady = resolve;
    });
    const link: AgentLink = {
      assignTrial: (a) => {
        setImmediate(async () => {
          const measurement = await executor.runTrial({ stage: 'production', purpose: 'probe', architecture: a.architecture, batchSize: a.batchSize, iterations: a.iterations });
          await fleet.handleTrialResult(await session, toResult(a.trialId, a.gpuUuid, a, measurement));
        });
      },
      acknowledgeResult: () => {},
      cancelTrial: () => {},
      requestDescribe: (requestId, _workload, architectures) => {
        setImmediate(async () => registry.completeDescribe(nodeName, requestId, await executor.parameterCounts(architectures), null));
      },
      close: () => {},
    };
    sessionReady(await fleet.handleHello(hello, link));
    return gpuUuid;
  }

  /** Waits until the node has a running run, which exists only once a job has taken the node. */
  async function waitForRunningRun(nodeName: string): Promise<void> {
    const node = await prisma.node.findUniqueOrThrow({ where: { name: nodeName } });
    for (let waited = 0; !(await prisma.benchmarkRun.findFirst({ where: { nodeId: node.id, status: 'running' } })); waited += 20) {
      if (waited > 30_000) throw new Error(`no run of ${nodeName} started within 30 s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async function trialsPerStage(runId: string): Promise<Record<string, number>> {
    const trials = await prisma.trial.findMany({ where: { runId }, select: { stage: true } });
    const counts: Record<string, number> = {};
    for (const t of trials) counts[t.stage] = (counts[t.stage] ?? 0) + 1;
    return counts;
  }

  const cold = async (twin: Twin) =>
    (await optimize(new TwinTrialExecutor(twin), { workload: VISNET_PDB, memoryTotalMiB: twin.gpu.memoryTotalMiB, datasetSize: DATASET_SIZE, gpuModel: twin.gpu.name })).cost.trials;

  beforeAll(async () => {
    db = await createTestDatabase();
    prisma = createPrismaClient(db.url, { poolSize: 4 });
    const nodes = new NodeRepository(prisma);
    benchmarks = new BenchmarkRepository(prisma);
    const logger = silentLogger();
    registry = new AgentRegistry(logger);
    service = new BenchmarkService({
      nodes,
      benchmarks,
      registry,
      events: new BenchmarkEvents(),
      logger,
      settings: { workload: VISNET_PDB, datasetSize: DATASET_SIZE, headroom: 0.05, strategy: 'calibrated', trialTimeoutMs: 60_000, resultGraceMs: 5_000, reconnectWaitMs: 1_000, maxLostRetries: 1, sameKeyPollMs: 50 },
    });
    fleet = new FleetCoordinator({ nodes, benchmarks, registry, service, logger });
    fleet.queue = {
      enqueue: async (job) => {
        queued.push(job);
        return null;
      },
      defer: async (job, delaySeconds) => {
        deferred.push({ job, delaySeconds });
        return 'deferred';
      },
    };
  });

  afterAll(async () => {
    registry?.closeAll('test done');
    await prisma?.$disconnect();
    await db?.drop();
    await stopTestServer();
  });

  it('same-key nodes split the work', async () => {
    const t4 = loadTwin(bundledTwinPath('t4'));
    const [gpuA, gpuB] = [await connect('t4-a', t4), await connect('t4-b', t4)];
    const [a, b] = await Promise.all([service.run({ nodeName: 't4-a', gpuUuid: gpuA, reason: 'initial' }), service.run({ nodeName: 't4-b', gpuUuid: gpuB, reason: 'initial' })]);
    const [first, second] = [a, b].sort((x, y) => y.trials - x.trials);
    expect(first!.trials).toBe(await cold(t4));
    expect(second!.trials).toBeLessThanOrEqual(4);
    for (const count of Object.values(await trialsPerStage(second!.runId))) expect(count).toBeLessThanOrEqual(1);
    expect(second!.changes.every((line) => line.includes('new'))).toBe(true);
  });

  it('later node of a key verifies', async () => {
    const t4 = loadTwin(bundledTwinPath('t4'));
    const outcome = await service.run({ nodeName: 't4-c', gpuUuid: await connect('t4-c', t4), reason: 'initial' });
    expect(outcome.status).toBe('succeeded');
    expect(outcome.trials).toBeLessThanOrEqual(4);
  });

  it('driver upgrade verifies from old model', async () => {
    const t4 = loadTwin(bundledTwinPath('t4'));
    const outcome = await service.run({ nodeName: 't4-d', gpuUuid: await connect('t4-d', t4, '999.1'), reason: 'driver_change' });
    expect(outcome.trials).toBeLessThanOrEqual(4);
  });

  it('unseen GPU model beats cold start', async () => {
    const a100 = loadTwin(bundledTwinPath('a100-40gb'));
    const a100Run = await service.run({ nodeName: 'a100-a', gpuUuid: await connect('a100-a', a100), reason: 'initial' });
    const rtx = loadTwin(bundledTwinPath('rtx4090'));
    const rtxRun = await service.run({ nodeName: 'rtx-a', gpuUuid: await connect('rtx-a', rtx), reason: 'initial' });
    const figures = { a100: { fromT4: a100Run.trials, cold: await cold(a100) }, rtx4090: { fromOthers: rtxRun.trials, cold: await cold(rtx) } };
    console.info(`unseen GPU models: ${JSON.stringify(figures)}`);
    expect(figures.a100.fromT4).toBeLessThan(figures.a100.cold);
    expect(figures.rtx4090.fromOthers).toBeLessThan(figures.rtx4090.cold);
  });

  it('reconnect mid-benchmark queues nothing more', async () => {
    const t4 = loadTwin(bundledTwinPath('t4'));
    await connect('t4-reconnect', t4);
    const running = fleet.runJob({ nodeName: 't4-reconnect', reason: 'initial' });
    await waitForRunningRun('t4-reconnect');
    const before = queued.length;

    // The agent comes back while its first benchmark runs: the node has no configs yet.
    await connect('t4-reconnect', t4);
    expect(queued.slice(before)).toEqual([]);
    await running;
  });

  it('sweep keeps live runs and requeues stale ones', async () => {
    const node = await prisma.node.findUniqueOrThrow({ where: { name: 't4-c' }, include: { gpus: true } });
    const finished = await prisma.benchmarkRun.findFirstOrThrow({ where: { nodeId: node.id } });
    const template = { nodeId: node.id, gpuId: node.gpus[0]!.id, workloadId: finished.workloadId, datasetSize: DATASET_SIZE, reason: 'on_demand', strategy: 'calibrated', stages: ['smoke_test'], calibrationKey: 'sweep-test' };
    // Both heartbeats are ten minutes old, and only the second run belongs to this process.
    const old = new Date(Date.now() - 600_000);
    const stale = await prisma.benchmarkRun.create({ data: { ...template, heartbeatAt: old } });
    const live = await prisma.benchmarkRun.create({ data: { ...template, heartbeatAt: old } });

    const before = queued.length;
    const activeRunIds = service.activeRunIds;
    service.activeRunIds = () => [live.id];
    try {
      expect(await fleet.recoverAbandonedRuns(90_000)).toBe(1);
    } finally {
      service.activeRunIds = activeRunIds;
    }

    expect((await prisma.benchmarkRun.findUniqueOrThrow({ where: { id: stale.id } })).status).toBe('interrupted');
    const liveAfter = await prisma.benchmarkRun.findUniqueOrThrow({ where: { id: live.id } });
    expect(liveAfter.status).toBe('running');
    expect(liveAfter.heartbeatAt.getTime()).toBeGreaterThan(old.getTime());
    expect(queued.slice(before)).toEqual([{ nodeName: 't4-c', gpuUuid: node.gpus[0]!.uuid, reason: 'interrupted' }]);
    await prisma.benchmarkRun.update({ where: { id: live.id }, data: { status: 'succeeded' } });
  });

  it('jobs defer or drop by node state', async () => {
    const t4 = loadTwin(bundledTwinPath('t4'));
    await connect('t4-elsewhere', t4);
    registry.detach(registry.session('t4-elsewhere')!, 'the agent moved to another coordinator');
    await fleet.runJob({ nodeName: 't4-elsewhere', reason: 'on_demand' });
    expect(deferred.at(-1)).toMatchObject({ job: { nodeName: 't4-elsewhere', reason: 'on_demand' }, delaySeconds: 2 });
    expect(Date.parse(deferred.at(-1)!.job.deferredSince!)).toBeLessThanOrEqual(Date.now());

    await prisma.node.update({ where: { name: 't4-elsewhere' }, data: { state: 'offline' } });
    await fleet.runJob(deferred.at(-1)!.job);
    expect(deferred.at(-1)).toMatchObject({ delaySeconds: 10 });

    const long = { nodeName: 't4-elsewhere', reason: 'on_demand' as const, deferredSince: new Date(Date.now() - 8 * 86_400_000).toISOString() };
    const before = deferred.length;
    await fleet.runJob(long);
    expect(deferred.length).toBe(before);

    // A second job of a node that is benchmarking here waits for the first.
    const running = fleet.runJob({ nodeName: 't4-c', reason: 'on_demand' });
    // Waiting for its run, not a fixed delay, so the second job cannot overtake it on a loaded machine.
    await waitForRunningRun('t4-c');
    await fleet.runJob({ nodeName: 't4-c', reason: 'schedule' });
    expect(deferred.at(-1)).toMatchObject({ job: { nodeName: 't4-c', reason: 'schedule' }, delaySeconds: 10 });
    await running;
    const busyDeferrals = deferred.length;

    await prisma.node.update({ where: { name: 't4-c' }, data: { rebootPending: true } });
    const runs = await prisma.benchmarkRun.count();
    await fleet.runJob({ nodeName: 't4-c', reason: 'schedule' });
    expect(deferred.length).toBe(busyDeferrals);
    expect(await prisma.benchmarkRun.count()).toBe(runs);
  });
});
