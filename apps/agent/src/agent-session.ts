/**
 * The agent's connection to its coordinator: one Session stream, opened
 * again with capped, jittered backoff whenever it ends. Results that were
 * not acknowledged are resent from the outbox on every new session.
 */
import { hostname } from 'node:os';
import { credentials as grpcCredentials, Metadata, type ChannelCredentials, type ClientDuplexStream } from '@grpc/grpc-js';
import { backoffDelayMs, sleep, type Logger } from '@hwopt/common';
import type { InventoryPoller, InventorySnapshot } from '@hwopt/nvidia-smi';
import { AgentServiceClient, GRPC_CHANNEL_OPTIONS, type AgentMessage, type CoordinatorMessage, type TrialResult } from '@hwopt/proto';
import type { OutboxResult, ResultOutbox, TrialWorker } from '@hwopt/agent-runtime';
import { inventoryMessage } from './inventory-message.ts';

export type SessionState = 'connecting' | 'connected' | 'backing_off' | 'stopped';

export interface AgentSessionOptions {
  coordinator: string;
  nodeName: string;
  labels: Record<string, string>;
  agentVersion: string;
  workloads: string[];
  poller: InventoryPoller;
  outbox: ResultOutbox<OutboxResult>;
  worker: TrialWorker;
  logger: Logger;
  credentials?: ChannelCredentials;
  /** Sent as `authorization: Bearer <token>` in token mode. */
  token?: string;
  /** Called with every inventory read, before it is sent. */
  onInventory?: (snapshot: InventorySnapshot) => void;
  /** First reconnect delay and its cap, in ms. Defaults 500 and 30,000. */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /**
   * Time after which a result sent on the open session and still not
   * acknowledged is sent again, in ms (the coordinator leaves a result
   * unacknowledged when it cannot store it). Default 30,000.
   */
  resendAfterMs?: number;
}

export class AgentSession {
  #state: SessionState = 'connecting';
  #stream: ClientDuplexStream<AgentMessage, CoordinatorMessage> | null = null;
  readonly #stop = new AbortController();
  #done: Promise<void> | undefined;
  #client: InstanceType<typeof AgentServiceClient> | undefined;
  /** When each unacknowledged result was last sent, in ms since the epoch. */
  readonly #sentAt = new Map<string, number>();

  constructor(private readonly options: AgentSessionOptions) {}

  get state(): SessionState {
    return this.#state;
  }

  #setState(state: SessionState, detail?: Record<string, unknown>): void {
    if (this.#state === state) return;
    this.options.logger.info({ from: this.#state, to: state, ...detail }, 'agent session state');
    this.#state = state;
  }

  /** Starts the connect loop; resolves when `stop()` ends it. */
  start(): Promise<void> {
    this.#done ??= this.#loop();
    return this.#done;
  }

  /**
   * Sends a finished trial's result if a session is welcomed; it stays in
   * the outbox until acknowledged either way, and every Welcome resends the
   * outbox. Before the Welcome a result would precede the Hello, which the
   * coordinator rejects.
   */
  sendResult(result: OutboxResult, resend = false): void {
    if (this.#state !== 'connected') return;
    if (this.#write({ trialResult: resultMessage(result) })) {
      this.#sentAt.set(result.trialId, Date.now());
      // One line per send and per acknowledgement, so a fault run can count both.
      this.options.logger.info({ trialId: result.trialId, outcome: result.outcome, resend }, 'trial result sent');
    }
  }

  async stop(): Promise<void> {
    this.#stop.abort(new Error('agent stopping'));
    this.#stream?.cancel();
    await this.#done?.catch(() => {});
    this.#client?.close();
    this.#setState('stopped');
  }

  async #loop(): Promise<void> {
    const { options } = this;
    this.#client = new AgentServiceClient(options.coordinator, options.credentials ?? grpcCredentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
    let attempt = 0;
    while (!this.#stop.signal.aborted) {
      this.#setState('connecting', { coordinator: options.coordinator });
      const startedAt = Date.now();
      const reason = await this.#runSession();
      if (this.#stop.signal.aborted) break;
      // A session that lasted a while was healthy; start backing off from scratch.
      if (Date.now() - startedAt > 30_000) attempt = 0;
      const delay = backoffDelayMs(attempt++, options.backoffBaseMs ?? 500, options.backoffCapMs ?? 30_000);
      this.#setState('backing_off', { reason, retryInMs: delay });
      try {
        await sleep(delay, this.#stop.signal);
      } catch {
        break;
      }
    }
  }

  /** Runs one session until it ends; returns why it ended. */
  async #runSession(): Promise<string> {
    const { options } = this;
    const metadata = new Metadata();
    if (options.token) metadata.set('authorization', `Bearer ${options.token}`);
    const stream = this.#client!.session(metadata);
    this.#stream = stream;
    let heartbeat: NodeJS.Timeout | undefined;
    let resend: NodeJS.Timeout | undefined;

    const ended = new Promise<string>((resolve) => {
      stream.on('data', (message: CoordinatorMessage) => {
        try {
          this.#handle(message, (intervalMs) => {
            clearInterval(heartbeat);
            heartbeat = setInterval(() => void this.#sendHeartbeat(), Math.max(1000, intervalMs));
            heartbeat.unref();
            clearInterval(resend);
            const resendAfterMs = options.resendAfterMs ?? 30_000;
            resend = setInterval(() => this.#resendOverdue(resendAfterMs), resendAfterMs);
            resend.unref();
          });
        } catch (error) {
          options.logger.warn({ err: error }, 'could not handle a coordinator message');
        }
      });
      stream.on('error', (error) => resolve(error.message));
      stream.on('end', () => resolve('the coordinator ended the session'));
    });

    try {
      const snapshot = await options.poller.poll();
      options.onInventory?.(snapshot);
      this.#write({
        hello: {
          nodeName: options.nodeName,
          hostname: hostname(),
          labels: Object.entries(options.labels).map(([key, value]) => ({ key, value })),
          agentVersion: options.agentVersion,
          inventory: inventoryMessage(snapshot),
          workloads: options.workloads,
        },
      });
    } catch (error) {
      stream.cancel();
      return `could not read the GPU inventory: ${(error as Error).message}`;
    }

    const reason = await ended;
    clearInterval(heartbeat);
    clearInterval(resend);
    this.#stream = null;
    return reason;
  }

  #handle(message: CoordinatorMessage, startHeartbeat: (intervalMs: number) => void): void {
    const { options } = this;
    if (message.welcome) {
      this.#setState('connected', { nodeId: message.welcome.nodeId });
      startHeartbeat(message.welcome.heartbeatIntervalMs || 10_000);
      const pending = options.outbox.pending();
      if (pending.length > 0) options.logger.info({ results: pending.length }, 'resending unacknowledged trial results');
      for (const result of pending) this.sendResult(result, true);
    } else if (message.trialAssignment) {
      const a = message.trialAssignment;
      options.worker.submit({
        trialId: a.trialId,
        gpuUuid: a.gpuUuid,
        workload: a.workload,
        layers: a.architecture?.layers ?? 0,
        hiddenChannels: a.architecture?.hiddenChannels ?? 0,
        batchSize: a.batchSize,
        iterations: a.iterations,
        // A coordinator asking for no limit still gets one: a day.
        timeoutMs: a.timeoutMs > 0 ? a.timeoutMs : 86_400_000,
      });
    } else if (message.resultAck) {
      const { trialId, rejectedReason } = message.resultAck;
      options.outbox.acknowledge(trialId);
      this.#sentAt.delete(trialId);
      // The reason comes from the network: it is logged cut short and never acted on.
      if (rejectedReason) options.logger.warn({ trialId, reason: rejectedReason.slice(0, 500) }, 'trial result rejected by the coordinator; dropped from the outbox');
      else options.logger.info({ trialId }, 'trial result acknowledged');
    } else if (message.cancelTrial) {
      options.worker.cancel(message.cancelTrial.trialId, message.cancelTrial.reason || 'cancelled by the coordinator');
    } else if (message.describeRequest) {
      const request = message.describeRequest;
      options.worker.describe(request.workload, request.architectures).then(
        (counts) => this.#write({ describeResult: { requestId: request.requestId, parameterCounts: counts, error: '' } }),
        (error: Error) => this.#write({ describeResult: { requestId: request.requestId, parameterCounts: [], error: error.message.slice(0, 2000) } }),
      );
    } else if (message.reject) {
      options.logger.warn({ reason: message.reject.reason }, 'the coordinator rejected this session');
    }
  }

  /** Sends again the results that waited `resendAfterMs` for an acknowledgement. */
  #resendOverdue(resendAfterMs: number): void {
    const now = Date.now();
    let pending: OutboxResult[];
    try {
      pending = this.options.outbox.pending();
    } catch (error) {
      this.options.logger.warn({ err: error }, 'could not read the result outbox');
      return;
    }
    for (const result of pending) {
      const sentAt = this.#sentAt.get(result.trialId);
      if (sentAt === undefined || now - sentAt >= resendAfterMs) this.sendResult(result, true);
    }
  }

  async #sendHeartbeat(): Promise<void> {
    try {
      const snapshot = await this.options.poller.poll();
      this.options.onInventory?.(snapshot);
      this.#write({ heartbeat: { inventory: inventoryMessage(snapshot) } });
    } catch (error) {
      this.options.logger.warn({ err: error }, 'heartbeat failed');
    }
  }

  /** Writes to the open stream; returns false when no stream can take the message. */
  #write(message: AgentMessage): boolean {
    const stream = this.#stream;
    if (!stream || stream.destroyed || stream.writableEnded) return false;
    stream.write(message);
    return true;
  }
}

function resultMessage(r: OutboxResult): TrialResult {
  return {
    trialId: r.trialId,
    gpuUuid: r.gpuUuid,
    architecture: { layers: r.layers, hiddenChannels: r.hiddenChannels },
    batchSize: r.batchSize,
    iterations: r.iterations,
    outcome: r.outcome,
    failure: r.failure
      ? {
          kind: r.failure.kind,
          summary: r.failure.summary.slice(0, 4000),
          requestedBytes: r.failure.sizes.requestedBytes ?? undefined,
          totalBytes: r.failure.sizes.totalBytes ?? undefined,
          freeBytes: r.failure.sizes.freeBytes ?? undefined,
        }
      : undefined,
    devicePeakMib: r.devicePeakMiB ?? undefined,
    processPeakMib: r.processPeakMiB ?? undefined,
    frameworkPeakAllocatedBytes: r.frameworkPeakAllocatedBytes ?? undefined,
    frameworkPeakReservedBytes: r.frameworkPeakReservedBytes ?? undefined,
    step: r.stepSeconds ? { meanSeconds: r.stepSeconds.mean, p50Seconds: r.stepSeconds.p50, minSeconds: r.stepSeconds.min, maxSeconds: r.stepSeconds.max, count: r.stepSeconds.count } : undefined,
    parameterCount: r.parameterCount ?? undefined,
    gpuSeconds: r.gpuSeconds,
    wallSeconds: r.wallSeconds,
  };
}
