import { credentials, makeGenericClientConstructor, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '@hwopt/common';
import { createTestDatabase, stopTestServer, type TestDatabase } from '@hwopt/db';
import { HealthClient } from '@hwopt/local-fleet';
import { GRPC_CHANNEL_OPTIONS, MAX_MESSAGE_BYTES, OpsServiceClient, TrialResult, type TrialAssignment } from '@hwopt/proto';
import { bundledTwinPath, loadTwin, TwinTrialExecutor } from '@hwopt/twin';
import { Coordinator } from '../src/coordinator.ts';
import { RawSession, T4_GPU_UUID, t4Hello } from './security-helpers.ts';

/** Lets a test client send more than the coordinator accepts. */
const UNLIMITED_SEND = { 'grpc.max_send_message_length': 4 * MAX_MESSAGE_BYTES };
const OVERSIZED = 'x'.repeat(MAX_MESSAGE_BYTES + 1024);

function okResult(trialId: string, overrides: Partial<TrialResult> = {}): TrialResult {
  return TrialResult.fromPartial({
    trialId,
    gpuUuid: T4_GPU_UUID,
    architecture: { layers: 2, hiddenChannels: 64 },
    batchSize: 8,
    iterations: 20,
    outcome: 'ok',
    devicePeakMib: 1200.5,
    step: { meanSeconds: 0.25, p50Seconds: 0.24, minSeconds: 0.2, maxSeconds: 0.4, count: 20 },
    parameterCount: 123_456,
    gpuSeconds: 5.5,
    wallSeconds: 7.25,
    ...overrides,
  });
}

// Requests that are too large or malformed end with INVALID_ARGUMENT or
// RESOURCE_EXHAUSTED, and the coordinator keeps serving. A result sent
// twice is stored once and acknowledged twice.
describe('coordinator request validation', () => {
  let db: TestDatabase;
  let coordinator: Coordinator;
  let address: string;
  const sessions: RawSession[] = [];

  const session = (...args: ConstructorParameters<typeof RawSession>) => {
    const opened = new RawSession(...args);
    sessions.push(opened);
    return opened;
  };

  /** Opens a session and completes the hello, as a well-behaved agent would. */
  async function welcomedSession(nodeName: string): Promise<RawSession> {
    const agent = session(address);
    agent.send({ hello: t4Hello(nodeName) });
    await agent.nextOf('a welcome', (m) => m.welcome);
    return agent;
  }

  /** Sends the parameter counts the new node's benchmark requests and returns its first trial assignment. */
  async function firstAssignment(agent: RawSession): Promise<TrialAssignment> {
    const twin = new TwinTrialExecutor(loadTwin(bundledTwinPath('t4')));
    for (;;) {
      const message = await agent.next(60_000);
      if (message === null) throw new Error('the session closed before a trial was assigned');
      if (message.describeRequest) {
        const { requestId, architectures } = message.describeRequest;
        agent.send({ describeResult: { requestId, parameterCounts: await twin.parameterCounts(architectures), error: '' } });
      }
      if (message.trialAssignment) return message.trialAssignment;
    }
  }

  async function expectHealthy(): Promise<void> {
    const health = new HealthClient(address, credentials.createInsecure());
    try {
      expect(await health.check('', 5_000)).toBe('SERVING');
    } finally {
      health.close();
    }
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    coordinator = new Coordinator({ listen: '127.0.0.1:0', databaseUrl: db.url, helloTimeoutMs: 1_000 }, silentLogger());
    await coordinator.start();
    address = `127.0.0.1:${coordinator.port}`;
  });

  afterAll(async () => {
    for (const opened of sessions) opened.close();
    await coordinator?.stop();
    await db?.drop();
    await stopTestServer();
  });

  // First, while their benchmarks are the only ones queued: the nodes of later tests queue benchmarks
  // too, and never reply to them, so they hold the job slots.
  describe('trial results of assigned trials', () => {
    // The trial the first test stores; the second reports it from another node.
    let stored: TrialAssignment | undefined;

    it('stores a duplicate once and acknowledges it twice', async () => {
      const agent = await welcomedSession('duplicate-node');
      const assignment = await firstAssignment(agent);
      stored = assignment;

      const result = okResult(assignment.trialId, { gpuUuid: assignment.gpuUuid, architecture: assignment.architecture, batchSize: assignment.batchSize, iterations: assignment.iterations });
      agent.send({ trialResult: result });
      agent.send({ trialResult: result });
      const acks = [await agent.nextOf('the first ack', (m) => m.resultAck), await agent.nextOf('the second ack', (m) => m.resultAck)];
      expect(acks.map((a) => a.trialId)).toEqual([assignment.trialId, assignment.trialId]);

      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        const rows = (await client.query('SELECT status, gpu_seconds, wall_seconds, device_peak_mib, step_seconds_mean, parameter_count FROM trials WHERE id = $1', [assignment.trialId])).rows;
        expect(rows).toHaveLength(1);
        expect(rows[0]).toEqual({ status: 'ok', gpu_seconds: 5.5, wall_seconds: 7.25, device_peak_mib: 1200.5, step_seconds_mean: 0.25, parameter_count: '123456' });
      } finally {
        await client.end();
      }
    });

    it('denies a result for another node\'s trial', async () => {
      if (!stored) throw new Error('the previous test stored no trial');
      const thief = await welcomedSession('trial-thief');
      thief.send({ trialResult: okResult(stored.trialId, { gpuUuid: stored.gpuUuid, architecture: stored.architecture, batchSize: stored.batchSize, iterations: stored.iterations, gpuSeconds: 99 }) });
      const ack = await thief.nextOf('a rejected ack', (m) => m.resultAck);
      expect(ack.rejectedReason).toContain('not assigned to node trial-thief');
      const closed = await thief.closed;
      expect(closed.code).toBe(status.PERMISSION_DENIED);

      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        const rows = (await client.query('SELECT status, gpu_seconds FROM trials WHERE id = $1', [stored.trialId])).rows;
        expect(rows).toEqual([{ status: 'ok', gpu_seconds: 5.5 }]);
      } finally {
        await client.end();
      }
    });
  });

  describe('agent session', () => {
    it('rejects an oversized hello with RESOURCE_EXHAUSTED', async () => {
      const agent = session(address, undefined, undefined, UNLIMITED_SEND);
      agent.send({ hello: { ...t4Hello('big-node'), hostname: OVERSIZED } });
      const closed = await agent.closed;
      expect(closed.code).toBe(status.RESOURCE_EXHAUSTED);
      await expectHealthy();
    });

    const invalidNames = ['', 'a b', '../etc/passwd', '-leading-dash', "n'; DROP TABLE nodes; --", 'x'.repeat(129), 'tab\there'];
    for (const name of invalidNames) {
      it(`rejects node name ${JSON.stringify(name.slice(0, 24))}`, async () => {
        const agent = session(address);
        agent.send({ hello: t4Hello(name) });
        const closed = await agent.closed;
        expect(closed.code).toBe(status.INVALID_ARGUMENT);
        expect(closed.details).toContain('node_name');
      });
    }

    const invalidHellos: [string, (hello: ReturnType<typeof t4Hello>) => void, string][] = [
      ['a long hostname', (h) => (h.hostname = 'h'.repeat(256)), 'hostname'],
      ['too many labels', (h) => (h.labels = Array.from({ length: 65 }, (_, i) => ({ key: `k${i}`, value: 'v' }))), 'labels'],
      ['a label key with spaces', (h) => (h.labels = [{ key: 'a key', value: 'v' }]), 'labels[0].key'],
      ['control characters', (h) => (h.agentVersion = '1.0\u001b[31m'), 'agent_version'],
      ['a bad workload name', (h) => (h.workloads = ['visnet pdb; rm -rf /']), 'workloads[0]'],
      ['too many GPUs', (h) => (h.inventory!.gpus = Array.from({ length: 65 }, (_, i) => ({ ...h.inventory!.gpus[0]!, index: i }))), 'inventory.gpus'],
      ['a bad GPU UUID', (h) => (h.inventory!.gpus[0]!.uuid = 'GPU 1 $(id)'), 'inventory.gpus[0].uuid'],
      ['a GPU index out of range', (h) => (h.inventory!.gpus[0]!.index = 5000), 'inventory.gpus[0].index'],
      ['no inventory', (h) => (h.inventory = undefined), 'inventory'],
    ];
    for (const [what, change, field] of invalidHellos) {
      it(`rejects a hello with ${what}`, async () => {
        const hello = t4Hello('valid-node');
        change(hello);
        const agent = session(address);
        agent.send({ hello });
        const closed = await agent.closed;
        expect(closed.code).toBe(status.INVALID_ARGUMENT);
        expect(closed.details).toContain(field);
      });
    }

    it('rejects a first message that is not a hello', async () => {
      const agent = session(address);
      agent.send({ heartbeat: { inventory: t4Hello('x').inventory } });
      const closed = await agent.closed;
      expect(closed.code).toBe(status.INVALID_ARGUMENT);
      expect(closed.details).toContain('hello');
    });

    it('rejects a second hello', async () => {
      const agent = await welcomedSession('twice-hello');
      agent.send({ hello: t4Hello('twice-hello') });
      const closed = await agent.closed;
      expect(closed.code).toBe(status.INVALID_ARGUMENT);
    });

    const invalidResults: [string, Partial<TrialResult>, string][] = [
      ['a negative GPU time', { gpuSeconds: -1 }, 'gpu_seconds'],
      ['a NaN wall time', { wallSeconds: Number.NaN }, 'wall_seconds'],
      ['an infinite peak', { devicePeakMib: Number.POSITIVE_INFINITY }, 'device_peak_mib'],
      ['a negative step time', { step: { meanSeconds: -0.1, p50Seconds: 0.1, minSeconds: 0.1, maxSeconds: 0.1, count: 3 } }, 'step.mean_seconds'],
      ['a trial id that is not a UUID', { trialId: "1' OR '1'='1" }, 'trial_id'],
      ['an unknown outcome', { outcome: 'great' }, 'outcome'],
      ['a bad failure kind', { outcome: 'failed', failure: { kind: 'OOM; reboot', summary: '', requestedBytes: undefined, totalBytes: undefined, freeBytes: undefined } }, 'failure.kind'],
      ['zero batch size', { batchSize: 0 }, 'batch_size'],
    ];
    for (const [what, overrides, field] of invalidResults) {
      it(`rejects a result with ${what}`, async () => {
        const agent = await welcomedSession('bad-results');
        agent.send({ trialResult: okResult('00000000-0000-4000-8000-000000000001', overrides) });
        const closed = await agent.closed;
        expect(closed.code).toBe(status.INVALID_ARGUMENT);
        expect(closed.details).toContain(field);
      });
    }

    it('tells the agent to drop a result of an unknown trial', async () => {
      const agent = await welcomedSession('unknown-trial');
      const unknownId = '00000000-0000-4000-8000-0000000000ff';
      agent.send({ trialResult: okResult(unknownId) });
      const ack = await agent.nextOf('a rejected ack', (m) => m.resultAck);
      expect(ack.trialId).toBe(unknownId);
      expect(ack.rejectedReason).toContain(unknownId);
      // The session stays open: a stale outbox is no reason to cut the agent off.
      agent.send({ trialResult: okResult(unknownId) });
      const again = await agent.nextOf('a second rejected ack', (m) => m.resultAck);
      expect(again.rejectedReason).not.toBe('');
    });

    it('closes a session that sends no hello', async () => {
      const agent = session(address);
      const closed = await agent.closed;
      expect(closed.code).toBe(status.DEADLINE_EXCEEDED);
      expect(closed.details).toContain('hello');
      await expectHealthy();
    });

    it('rejects bytes that are not a protobuf message', async () => {
      const RawClient = makeGenericClientConstructor(
        { session: { path: '/hwopt.v1.AgentService/Session', requestStream: true, responseStream: true, requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b } },
        'AgentService',
      );
      const client = new RawClient(address, credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
      const stream = (client as unknown as { session(metadata: Metadata): NodeJS.ReadWriteStream & { on(event: 'status', cb: (s: { code: number }) => void): void } }).session(new Metadata());
      const closed = new Promise<{ code: number }>((resolve) => stream.on('status', resolve));
      stream.on('error', () => {});
      stream.on('data', () => {});
      stream.write(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]));
      expect((await closed).code).toBe(status.INVALID_ARGUMENT);
      client.close();
      await expectHealthy();
    });

    it('still welcomes a valid agent afterwards', async () => {
      const agent = await welcomedSession('after-bad-input');
      expect(agent).toBeDefined();
      await expectHealthy();
    });
  });

  describe('ops service', () => {
    let ops: InstanceType<typeof OpsServiceClient>;
    beforeAll(() => {
      ops = new OpsServiceClient(address, credentials.createInsecure(), { ...GRPC_CHANNEL_OPTIONS, ...UNLIMITED_SEND });
    });
    afterAll(() => ops.close());

    const listConfigs = (request: { nodeName?: string; stage?: string; workload?: string }) =>
      new Promise<ServiceError | null>((resolve) => {
        ops.listConfigs({ nodeName: '', stage: '', workload: '', includeHistory: false, ...request }, new Metadata(), { deadline: new Date(Date.now() + 10_000) }, (error) => resolve(error));
      });

    it('rejects an oversized request with RESOURCE_EXHAUSTED', async () => {
      const error = await listConfigs({ workload: OVERSIZED });
      expect(error?.code).toBe(status.RESOURCE_EXHAUSTED);
      await expectHealthy();
    });

    const invalid: [string, { nodeName?: string; stage?: string; workload?: string }, string][] = [
      ['a bad node name', { nodeName: 'a/../../b' }, 'node_name'],
      ['an unknown stage', { stage: 'prod; drop' }, 'stage'],
      ['a bad workload name', { workload: "visnet' OR 1=1 --" }, 'workload'],
    ];
    for (const [what, request, field] of invalid) {
      it(`rejects ${what}`, async () => {
        const error = await listConfigs(request);
        expect(error?.code).toBe(status.INVALID_ARGUMENT);
        expect(error?.details).toContain(field);
      });
    }

    it('rejects bytes that are not a protobuf message', async () => {
      const RawClient = makeGenericClientConstructor(
        { listConfigs: { path: '/hwopt.v1.OpsService/ListConfigs', requestStream: false, responseStream: false, requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b } },
        'OpsService',
      );
      const client = new RawClient(address, credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
      const error = await new Promise<ServiceError | null>((resolve) => {
        (client as unknown as { listConfigs(b: Buffer, m: Metadata, cb: (e: ServiceError | null) => void): void }).listConfigs(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]), new Metadata(), resolve);
      });
      client.close();
      expect(error?.code).toBe(status.INVALID_ARGUMENT);
      expect(error?.details).toContain('ListConfigsRequest');
      await expectHealthy();
    });

    it('answers a valid request', async () => {
      expect(await listConfigs({ workload: 'visnet-pdb' })).toBeNull();
    });
  });
});
