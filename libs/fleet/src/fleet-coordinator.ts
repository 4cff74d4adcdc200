/**
 * The coordinator's decisions about nodes: what a hello, a heartbeat or a
 * result changes in the store, and which benchmarks that calls for.
 */
import type { Logger } from '@hwopt/common';
import type { BenchmarkRepository, NodeReport, NodeRepository } from '@hwopt/db';
import type { AgentHello, AgentLink, InventoryReport, TrialResultReport } from './agent-messages.ts';
import type { AgentRegistry, AgentSession } from './agent-registry.ts';
import type { BenchmarkJob } from './benchmark-scheduler.ts';
import type { BenchmarkService } from './benchmark-service.ts';

export interface JobQueue {
  enqueue(job: BenchmarkJob): Promise<string | null>;
  /** Queues the job again to start after `delaySeconds`. */
  defer(job: BenchmarkJob, delaySeconds: number): Promise<string | null>;
  /** Fails the active jobs of these nodes started before a time, so they are retried now. */
  releaseAbandonedJobs?(nodeNames: string[], startedBefore: Date): Promise<string[]>;
}

export interface FleetCoordinatorOptions {
  /** Delay before a job whose node is connected to another coordinator is offered again, in s. Default 2. */
  deferDelaySeconds?: number;
  /** Delay before a job whose node is connected nowhere, or busy with another benchmark here, is offered again, in s. Default 10. */
  offlineDeferDelaySeconds?: number;
  /** A job deferred for longer than this is dropped, in ms (the node's next hello queues what it still needs). Default 7 days. */
  maxDeferralMs?: number;
  /** A node with no report for longer than this counts as connected nowhere, in ms. Default 60 s. */
  contactTimeoutMs?: number;
}

/** Raised for a trial result that can never be stored; the agent should drop it. */
export class TrialResultRejectedError extends Error {}

/** Raised when a result names a trial that was assigned to another node. */
export class ForeignTrialError extends TrialResultRejectedError {
  readonly code = 'FOREIGN_TRIAL';
}

/**
 * Raised when a result names a trial the store has no record of, as after
 * the database was reset or the agent's state folder was copied from
 * another deployment. Such a result can never be stored.
 */
export class UnknownTrialError extends TrialResultRejectedError {
  readonly code = 'UNKNOWN_TRIAL';
}

export class FleetCoordinator {
  readonly #running = new Map<string, AbortController>();
  queue: JobQueue | undefined;

  constructor(
    private readonly deps: {
      nodes: NodeRepository;
      benchmarks: BenchmarkRepository;
      registry: AgentRegistry;
      service: BenchmarkService;
      logger: Logger;
      options?: FleetCoordinatorOptions;
    },
  ) {}

  /** Stores the node's report, attaches its session and queues the benchmarks it needs. */
  async handleHello(hello: AgentHello, link: AgentLink): Promise<AgentSession> {
    const update = await this.deps.nodes.recordReport(toNodeReport(hello, hello.inventory), stateOf(hello.inventory));
    const session = this.deps.registry.attach(hello.nodeName, update.nodeId, link);
    await this.#reactToVersions(hello.nodeName, update.nodeId, hello.inventory, update.versionChange);
    await this.#queueMissingBenchmarks(hello.nodeName, update.nodeId);
    return session;
  }

  async handleHeartbeat(session: AgentSession, hello: AgentHello, inventory: InventoryReport): Promise<void> {
    const update = await this.deps.nodes.recordReport(toNodeReport(hello, inventory), stateOf(inventory));
    if (update.versionChange || update.rebootPendingChanged) {
      await this.#reactToVersions(session.nodeName, update.nodeId, inventory, update.versionChange);
      // Jobs dropped while the node waited for its reboot are queued again.
      if (!inventory.rebootPending) await this.#queueMissingBenchmarks(session.nodeName, update.nodeId);
    }
  }

  /**
   * Stores a result, then lets the waiting run continue. The caller sends
   * the acknowledgement only after this resolves, so an acknowledged result
   * is always in the store. A duplicate is acknowledged again and changes
   * nothing.
   */
  async handleTrialResult(session: AgentSession, result: TrialResultReport): Promise<{ duplicate: boolean }> {
    const trial = await this.deps.benchmarks.getTrial(result.trialId);
    if (!trial) throw new UnknownTrialError(`Trial ${result.trialId} is not known to this coordinator; the result is rejected.`);
    if (trial.nodeId !== session.nodeId) {
      throw new ForeignTrialError(`Trial ${result.trialId} was not assigned to node ${session.nodeName}; the result is rejected.`);
    }
    const stored = await this.deps.benchmarks.recordTrialResult({
      trialId: result.trialId,
      outcome: result.outcome,
      failureKind: result.failure?.kind ?? null,
      failureSummary: result.failure?.summary ?? null,
      devicePeakMiB: result.devicePeakMiB,
      processPeakMiB: result.processPeakMiB,
      frameworkPeakAllocatedBytes: result.frameworkPeakAllocatedBytes,
      frameworkPeakReservedBytes: result.frameworkPeakReservedBytes,
      stepSecondsMean: result.step?.meanSeconds ?? null,
      stepSecondsP50: result.step?.p50Seconds ?? null,
      stepSecondsMin: result.step?.minSeconds ?? null,
      stepSecondsMax: result.step?.maxSeconds ?? null,
      parameterCount: result.parameterCount,
      gpuSeconds: result.gpuSeconds,
      wallSeconds: result.wallSeconds,
    });
    if (!stored.duplicate) this.deps.registry.completeTrial(result);
    return { duplicate: stored.duplicate };
  }

  async handleDisconnect(session: AgentSession, reason: string): Promise<void> {
    this.deps.registry.detach(session, reason);
    if (!this.deps.registry.isConnected(session.nodeName)) {
      await this.deps.nodes.setState(session.nodeId, 'offline').catch((error) => this.deps.logger.warn({ err: error, node: session.nodeName }, 'could not mark node offline'));
    }
  }

  /**
   * Runs one queued benchmark job: every GPU of the node (or the one named)
   * in parallel. Only the coordinator holding the node's session runs it,
   * and only when no other job of the node runs; otherwise it is deferred.
   * A node waiting for a reboot drops it, since the node's first report
   * with a usable driver queues the re-benchmark.
   */
  async runJob(job: BenchmarkJob): Promise<void> {
    const { logger } = this.deps;
    const node = await this.deps.nodes.findByName(job.nodeName);
    if (!node) {
      logger.warn({ node: job.nodeName }, 'benchmark job names an unknown node; dropping it');
      return;
    }
    if (node.rebootPending) {
      // Trials would fail until the node reboots into the new driver.
      logger.info({ node: node.name, reason: job.reason }, 'node waits for a reboot after a driver upgrade; dropping the job until it reports a usable driver');
      return;
    }
    if (!this.deps.registry.isConnected(node.name)) {
      const connectedElsewhere = node.state !== 'offline' && Date.now() - node.lastContactAt.getTime() < (this.deps.options?.contactTimeoutMs ?? 60_000);
      await this.#deferJob(job, connectedElsewhere ? 'connected to another coordinator' : 'not connected');
      return;
    }
    if (this.#running.has(node.name)) {
      // One benchmark per node at a time: trials of two runs would share its GPUs and skew both.
      await this.#deferJob(job, 'busy');
      return;
    }
    const gpus = node.gpus.filter((g) => (job.gpuUuid ? g.uuid === job.gpuUuid : true)).filter((g) => g.migMode !== 'Enabled' || g.parentUuid !== null);
    const controller = new AbortController();
    this.#running.set(job.nodeName, controller);
    try {
      const outcomes = await Promise.allSettled(
        gpus.map((gpu) => this.deps.service.run({ nodeName: node.name, gpuUuid: gpu.uuid, reason: job.reason, stages: job.stages, signal: controller.signal })),
      );
      const failure = outcomes.find((o) => o.status === 'rejected');
      if (failure) throw (failure as PromiseRejectedResult).reason;
    } finally {
      this.#running.delete(job.nodeName);
    }
  }

  async #deferJob(job: BenchmarkJob, why: 'connected to another coordinator' | 'not connected' | 'busy'): Promise<void> {
    const { logger, options } = this.deps;
    const since = job.deferredSince ? Date.parse(job.deferredSince) : Date.now();
    if (Number.isFinite(since) && Date.now() - since > (options?.maxDeferralMs ?? 7 * 86_400_000)) {
      logger.warn({ node: job.nodeName, reason: job.reason, deferredSince: job.deferredSince, why }, 'benchmark job was deferred for too long; dropping it');
      return;
    }
    const delay = why === 'connected to another coordinator' ? (options?.deferDelaySeconds ?? 2) : (options?.offlineDeferDelaySeconds ?? 10);
    const id = await this.queue?.defer({ ...job, deferredSince: new Date(Number.isFinite(since) ? since : Date.now()).toISOString() }, delay);
    logger.debug({ node: job.nodeName, reason: job.reason, why, delaySeconds: delay, jobId: id }, 'benchmark job deferred');
  }

  /** Queues a re-benchmark of every known node, for the scheduled cron run. */
  async queueRebenchmarkOfAll(): Promise<void> {
    for (const node of await this.deps.nodes.listWithGpus()) {
      await this.queue?.enqueue({ nodeName: node.name, reason: 'schedule' });
    }
  }

  /** Aborts running benchmarks so their jobs go back to the queue; used at shutdown. */
  abortRunningBenchmarks(reason: string): void {
    for (const controller of this.#running.values()) controller.abort(new Error(reason));
  }

  /**
   * Touches the heartbeat of this process's runs, then closes runs whose
   * coordinator stopped without finishing them (their heartbeat is older
   * than `staleAfterMs`) and queues them again. Call it more often than
   * `staleAfterMs`, or live runs go stale too.
   */
  async recoverAbandonedRuns(staleAfterMs: number): Promise<number> {
    // This process's own runs are alive whatever their trials are doing, however long a trial lasts.
    await this.deps.benchmarks.touchRuns(this.deps.service.activeRunIds());
    const staleBefore = new Date(Date.now() - staleAfterMs);
    const runs = await this.deps.benchmarks.interruptAbandonedRuns('the coordinator running it stopped', staleBefore);
    // A node this process is benchmarking has a live job (a retry after a store outage left the
    // old run behind), and failing that job would start the same benchmark twice.
    const idle = runs.map((run) => run.nodeName).filter((name) => !this.#running.has(name));
    await this.queue?.releaseAbandonedJobs?.([...new Set(idle)], staleBefore);
    for (const run of runs) {
      this.deps.logger.warn({ runId: run.id, node: run.nodeName }, 'benchmark run was abandoned; queueing it again');
      await this.queue?.enqueue({ nodeName: run.nodeName, gpuUuid: run.gpuUuid, reason: 'interrupted' });
    }
    return runs.length;
  }

  async #queueMissingBenchmarks(nodeName: string, nodeId: string): Promise<void> {
    // An agent that reconnects mid-benchmark has no configs yet, but the running job will store them.
    if (this.#running.has(nodeName)) return;
    const missing = await this.deps.benchmarks.gpusWithoutCurrentConfigs(nodeId, this.deps.service.settings.workload.name, this.deps.service.settings.datasetSize);
    if (missing.length > 0) await this.queue?.enqueue({ nodeName, reason: 'initial' });
  }

  async #reactToVersions(nodeName: string, nodeId: string, inventory: InventoryReport, change: { from: { driver: string | null; cuda: string | null }; to: { driver: string | null; cuda: string | null } } | null): Promise<void> {
    if (change) {
      // NOTE: a benchmark already running on this node keeps going under the old key; its
      // result is verified again by the driver_change job queued below.
      const reason = `driver ${change.from.driver ?? 'unknown'} -> ${change.to.driver ?? 'unknown'}, CUDA ${change.from.cuda ?? 'unknown'} -> ${change.to.cuda ?? 'unknown'}`;
      const marked = await this.deps.benchmarks.markConfigsStale(nodeId, reason);
      this.deps.logger.info({ node: nodeName, reason, staleConfigs: marked }, 'driver version changed');
    }
    if (inventory.rebootPending) {
      const marked = await this.deps.benchmarks.markConfigsStale(nodeId, 'driver upgraded without reboot (NVML version mismatch)');
      this.deps.logger.warn({ node: nodeName, staleConfigs: marked }, 'node waits for a reboot after a driver upgrade');
      return;
    }
    if (change || (await this.deps.benchmarks.hasStaleConfigs(nodeId))) {
      await this.queue?.enqueue({ nodeName, reason: 'driver_change' });
    }
  }
}

function stateOf(inventory: InventoryReport): string {
  return inventory.rebootPending ? 'reboot_pending' : 'online';
}

function toNodeReport(hello: AgentHello, inventory: InventoryReport): NodeReport {
  return {
    name: hello.nodeName,
    hostname: hello.hostname,
    labels: hello.labels,
    agentVersion: hello.agentVersion,
    driverVersion: inventory.driverVersion,
    cudaVersion: inventory.cudaVersion,
    rebootPending: inventory.rebootPending,
    inventoryStale: inventory.stale,
    gpus: inventory.gpus.map((gpu) => ({
      uuid: gpu.uuid,
      index: gpu.index,
      name: gpu.name,
      memoryTotalMiB: gpu.memoryTotalMiB,
      computeCapability: gpu.computeCapability,
      migMode: gpu.migMode,
      parentUuid: gpu.parentUuid,
      migProfile: gpu.migProfile,
    })),
  };
}
