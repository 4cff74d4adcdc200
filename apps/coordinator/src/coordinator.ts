/**
 * The coordinator process: database (given or embedded), migrations, the
 * job queue, and the gRPC server with the agent, ops, health and
 * reflection services. `stop()` undoes `start()` in reverse and can be
 * called twice.
 */
import { readFileSync } from 'node:fs';
import { Server, type ServerDuplexStream } from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import type { Logger } from '@hwopt/common';
import { applyMigrations, BenchmarkRepository, ConfigRepository, createPrismaClient, NodeRepository, startEmbeddedPostgres, type EmbeddedPostgresHandle, type PrismaClient } from '@hwopt/db';
import { AgentRegistry, BenchmarkEvents, BenchmarkScheduler, BenchmarkService, FleetCoordinator, OpsQueries } from '@hwopt/fleet';
import { VISNET_PDB } from '@hwopt/optimizer';
import { AgentServiceService, DESCRIPTOR_SET_PATH, GRPC_CHANNEL_OPTIONS, OpsServiceService, type AgentMessage, type CoordinatorMessage } from '@hwopt/proto';
import { createAuthenticator } from './auth.ts';
import { createAgentService } from './grpc/agent-service.ts';
import { withTolerantDecoding } from './grpc/decoding.ts';
import { createOpsService } from './grpc/ops-service.ts';
import { resolveCoordinatorOptions, type CoordinatorOptions, type ResolvedCoordinatorOptions } from './options.ts';

/** Interval of the sweep that touches this process's runs and recovers abandoned ones, in ms. */
const SWEEP_INTERVAL_MS = 20_000;
/** Age of a run's heartbeat after which its coordinator counts as stopped: several missed sweeps. */
const RUN_STALE_AFTER_MS = 90_000;

export type CoordinatorState = 'created' | 'starting' | 'serving' | 'stopping' | 'stopped' | 'failed';

const SERVICE_NAMES = ['hwopt.v1.AgentService', 'hwopt.v1.OpsService'];

export class Coordinator {
  readonly options: ResolvedCoordinatorOptions;
  #state: CoordinatorState = 'created';
  #embedded: EmbeddedPostgresHandle | undefined;
  #prisma: PrismaClient | undefined;
  #scheduler: BenchmarkScheduler | undefined;
  #server: Server | undefined;
  #fleet: FleetCoordinator | undefined;
  #registry: AgentRegistry | undefined;
  #health: HealthImplementation | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  #stopping: Promise<void> | undefined;
  #port = 0;
  #databaseUrl = '';

  constructor(options: CoordinatorOptions, private readonly logger: Logger) {
    this.options = resolveCoordinatorOptions(options);
  }

  get state(): CoordinatorState {
    return this.#state;
  }

  /** The bound port (useful with port 0). */
  get port(): number {
    return this.#port;
  }

  /** The database URL in use, password included: never log it. */
  get databaseUrl(): string {
    return this.#databaseUrl;
  }

  #setState(state: CoordinatorState): void {
    this.logger.info({ from: this.#state, to: state }, 'coordinator state');
    this.#state = state;
  }

  async start(): Promise<void> {
    this.#setState('starting');
    try {
      await this.#start();
      this.#setState('serving');
    } catch (error) {
      this.#setState('failed');
      await this.stop('start-up failed').catch(() => {});
      throw error;
    }
  }

  async #start(): Promise<void> {
    const { options, logger } = this;
    const authenticator = createAuthenticator(options, logger);
    if (options.databaseUrl) {
      this.#databaseUrl = options.databaseUrl;
      logger.info('using the PostgreSQL from DATABASE_URL');
    } else {
      logger.info({ dataDir: options.dataDir }, 'DATABASE_URL is not set; starting an embedded PostgreSQL');
      this.#embedded = await startEmbeddedPostgres({ dataDir: options.dataDir, logger });
      this.#databaseUrl = this.#embedded.url;
    }
    const applied = await applyMigrations(this.#databaseUrl);
    logger.info({ applied }, applied.length ? 'database migrations applied' : 'database schema is up to date');

    const prisma = createPrismaClient(this.#databaseUrl);
    this.#prisma = prisma;
    const nodes = new NodeRepository(prisma);
    const benchmarks = new BenchmarkRepository(prisma);
    const configs = new ConfigRepository(prisma);
    const registry = new AgentRegistry(logger);
    this.#registry = registry;
    const events = new BenchmarkEvents();
    const service = new BenchmarkService({
      nodes,
      benchmarks,
      registry,
      events,
      logger,
      settings: {
        workload: VISNET_PDB,
        datasetSize: options.datasetSize,
        headroom: options.headroom,
        strategy: options.strategy,
        trialTimeoutMs: options.trialTimeoutMs,
        resultGraceMs: 30_000,
        reconnectWaitMs: options.reconnectWaitMs,
        maxLostRetries: 3,
      },
    });
    const fleet = new FleetCoordinator({ nodes, benchmarks, registry, service, logger });
    this.#fleet = fleet;
    const scheduler = new BenchmarkScheduler({
      databaseUrl: this.#databaseUrl,
      logger,
      concurrency: options.benchmarkConcurrency,
      rebenchmarkCron: options.rebenchmarkCron,
      handler: (job) => fleet.runJob(job),
      onScheduledRebenchmark: () => fleet.queueRebenchmarkOfAll(),
    });
    this.#scheduler = scheduler;
    fleet.queue = scheduler;
    await scheduler.start();

    // Every sweep touches this process's runs, so a run goes stale only when its coordinator
    // stopped: after a kill -9 it is queued again within about RUN_STALE_AFTER_MS.
    await fleet.recoverAbandonedRuns(RUN_STALE_AFTER_MS);
    this.#sweeper = setInterval(() => {
      fleet.recoverAbandonedRuns(RUN_STALE_AFTER_MS).catch((error) => logger.warn({ err: error }, 'sweep of abandoned runs failed'));
    }, SWEEP_INTERVAL_MS);
    this.#sweeper.unref();

    const server = new Server({ ...GRPC_CHANNEL_OPTIONS, 'grpc.keepalive_permit_without_calls': 1, 'grpc.http2.min_ping_interval_without_data_ms': 10_000 });
    this.#server = server;
    server.addService(
      withTolerantDecoding(AgentServiceService),
      createAgentService({
        fleet,
        registry,
        logger: logger.child({ service: 'agent' }),
        heartbeatIntervalMs: options.heartbeatIntervalMs,
        helloTimeoutMs: options.helloTimeoutMs,
        authenticatedNodeName: (call: ServerDuplexStream<AgentMessage, CoordinatorMessage>) => authenticator.agentIdentity(call),
      }),
    );
    server.addService(
      withTolerantDecoding(OpsServiceService),
      createOpsService({
        queries: new OpsQueries({ nodes, benchmarks, configs, registry }),
        nodes,
        events,
        logger: logger.child({ service: 'ops' }),
        enqueue: (job) => scheduler.enqueue(job),
        authorize: (call, role) => authenticator.authorizeOps(call, role),
      }),
    );
    const health = new HealthImplementation(Object.fromEntries(['', ...SERVICE_NAMES].map((name) => [name, 'NOT_SERVING' as const])));
    health.addToServer(server);
    this.#health = health;
    // Served from buf's descriptor set: strict clients need the imported files too.
    const reflection = new ReflectionService(readDescriptorSet(), { services: SERVICE_NAMES });
    reflection.addToServer(server);

    this.#port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${options.host}:${options.port}`, authenticator.credentials, (error, port) => (error ? reject(error) : resolve(port)));
    });
    for (const name of ['', ...SERVICE_NAMES]) health.setStatus(name, 'SERVING');
    logger.info({ address: `${options.host}:${this.#port}`, security: authenticator.mode, datasetSize: options.datasetSize, strategy: options.strategy }, 'coordinator listening');
  }

  /**
   * Stops serving. Running benchmarks are aborted, so their jobs go back to
   * the queue for this or another coordinator. Agent sessions are closed
   * (agents reconnect later), then the queue, the database and the
   * embedded server are closed.
   */
  stop(reason = 'stop requested'): Promise<void> {
    this.#stopping ??= this.#stop(reason);
    return this.#stopping;
  }

  async #stop(reason: string): Promise<void> {
    if (this.#state !== 'failed') this.#setState('stopping');
    this.logger.info({ reason }, 'coordinator stopping');
    if (this.#sweeper) clearInterval(this.#sweeper);
    for (const name of ['', ...SERVICE_NAMES]) this.#health?.setStatus(name, 'NOT_SERVING');
    this.#fleet?.abortRunningBenchmarks(`coordinator stopping: ${reason}`);
    this.#registry?.closeAll(`coordinator stopping: ${reason}`);
    await this.#scheduler?.stop(10_000).catch((error) => this.logger.warn({ err: error }, 'job queue did not stop cleanly'));
    if (this.#server) {
      const server = this.#server;
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 5_000);
        force.unref();
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    }
    await this.#prisma?.$disconnect().catch(() => {});
    await this.#embedded?.stop().catch((error) => this.logger.warn({ err: error }, 'embedded PostgreSQL did not stop cleanly'));
    if (this.#state !== 'failed') this.#setState('stopped');
  }
}

/**
 * Reads buf's descriptor set into the reflection service's package
 * definition, one entry per file with the file's bytes unchanged.
 * proto-loader (0.8) merges the files of one package into one file and
 * drops its imports, such as google/protobuf/timestamp.proto. Strict
 * clients like Python's protobuf reject such a file, so the original files
 * are served.
 */
function readDescriptorSet(): PackageDefinition {
  const files = splitFileDescriptorSet(readFileSync(DESCRIPTOR_SET_PATH));
  return Object.fromEntries(files.map((bytes, i) => [`file${i}`, { format: 'Protocol Buffer 3 DescriptorProto', type: {}, fileDescriptorProtos: [bytes] }])) as PackageDefinition;
}

/** Splits a FileDescriptorSet into the encoded FileDescriptorProto of each `file` (field 1, length-delimited). */
function splitFileDescriptorSet(set: Buffer): Buffer[] {
  const files: Buffer[] = [];
  let offset = 0;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (offset >= set.length) break;
      const byte = set[offset++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
    throw new Error(`${DESCRIPTOR_SET_PATH} is not a FileDescriptorSet (bad varint at byte ${offset}); run \`npm run generate\``);
  };
  while (offset < set.length) {
    const tag = varint();
    if (tag !== 0x0a) throw new Error(`${DESCRIPTOR_SET_PATH} is not a FileDescriptorSet (field tag ${tag} at byte ${offset}); run \`npm run generate\``);
    const length = varint();
    if (offset + length > set.length) throw new Error(`${DESCRIPTOR_SET_PATH} is truncated; run \`npm run generate\``);
    files.push(set.subarray(offset, offset + length));
    offset += length;
  }
  return files;
}
