/**
 * A lightweight stand-in for hwopt-agent: one AgentService Session stream
 * that sends a Hello with a one-GPU inventory, then heartbeats, and answers
 * every assignment at once with the result a digital twin's laws give. A
 * thousand of these fit in one process, where a thousand agent processes
 * would not fit on a small machine.
 */
import { createHash } from 'node:crypto';
import { credentials, type ClientDuplexStream } from '@grpc/grpc-js';
import { backoffDelayMs } from '@hwopt/common';
import { AgentServiceClient, GRPC_CHANNEL_OPTIONS, type AgentMessage, type CoordinatorMessage, type Inventory, type TrialAssignment, type TrialResult } from '@hwopt/proto';
import { evaluateTwinTrial, findTwinArchitecture, type Twin } from '@hwopt/twin';

export interface SimulatedAgentOptions {
  /** Coordinator HOST:PORT. */
  address: string;
  nodeName: string;
  twin: Twin;
  /** Driver version to report instead of the twin's; nodes of different drivers have different calibration keys. */
  driverVersion?: string;
  /** First reconnect delay and its cap, in ms. Defaults 500 and 10,000. */
  backoffBaseMs?: number;
  backoffCapMs?: number;
}

/** Counts one agent keeps; a benchmark sums them. */
export interface SimulatedAgentCounts {
  sessions: number;
  assignments: number;
  resultsSent: number;
  acknowledgements: number;
  describes: number;
  rejects: number;
}

export class SimulatedAgent {
  readonly counts: SimulatedAgentCounts = { sessions: 0, assignments: 0, resultsSent: 0, acknowledgements: 0, describes: 0, rejects: 0 };
  readonly gpuUuid: string;
  #client: InstanceType<typeof AgentServiceClient> | undefined;
  #stream: ClientDuplexStream<AgentMessage, CoordinatorMessage> | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #welcomed = false;
  #stopped = false;
  #attempt = 0;

  constructor(private readonly options: SimulatedAgentOptions) {
    const hash = createHash('sha256').update(`${options.nodeName}\0${options.twin.gpu.name}`).digest('hex');
    this.gpuUuid = `GPU-${hash.slice(0, 8)}-${hash.slice(8, 12)}-${hash.slice(12, 16)}-${hash.slice(16, 20)}-${hash.slice(20, 32)}`;
  }

  /** True between a Welcome and the end of its session. */
  get connected(): boolean {
    return this.#welcomed;
  }

  start(): void {
    // Each agent gets its own HTTP/2 connection, as separate machines would.
    this.#client ??= new AgentServiceClient(this.options.address, credentials.createInsecure(), { ...GRPC_CHANNEL_OPTIONS, 'grpc.use_local_subchannel_pool': 1 });
    this.#connect();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retry);
    clearInterval(this.#heartbeat);
    this.#stream?.cancel();
    this.#client?.close();
  }

  #connect(): void {
    if (this.#stopped) return;
    const stream = this.#client!.session();
    this.#stream = stream;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      this.#welcomed = false;
      clearInterval(this.#heartbeat);
      if (this.#stopped) return;
      const delay = backoffDelayMs(this.#attempt++, this.options.backoffBaseMs ?? 500, this.options.backoffCapMs ?? 10_000);
      this.#retry = setTimeout(() => this.#connect(), delay);
      this.#retry.unref();
    };
    stream.on('data', (message: CoordinatorMessage) => this.#handle(message));
    stream.on('error', end);
    stream.on('end', end);
    stream.write({
      hello: {
        nodeName: this.options.nodeName,
        hostname: this.options.nodeName,
        labels: [{ key: 'simulated', value: 'true' }],
        agentVersion: 'simulated',
        inventory: this.#inventory(),
        workloads: [this.options.twin.workload],
      },
    });
  }

  #handle(message: CoordinatorMessage): void {
    if (message.welcome) {
      this.#welcomed = true;
      this.#attempt = 0;
      this.counts.sessions += 1;
      clearInterval(this.#heartbeat);
      this.#heartbeat = setInterval(() => this.#write({ heartbeat: { inventory: this.#inventory() } }), Math.max(1000, message.welcome.heartbeatIntervalMs || 10_000));
      this.#heartbeat.unref();
    } else if (message.trialAssignment) {
      this.counts.assignments += 1;
      if (this.#write({ trialResult: this.#result(message.trialAssignment) })) this.counts.resultsSent += 1;
    } else if (message.resultAck) {
      // A rejected acknowledgement means the result will never be stored, so it counts as a reject.
      if (message.resultAck.rejectedReason) this.counts.rejects += 1;
      else this.counts.acknowledgements += 1;
    } else if (message.describeRequest) {
      this.counts.describes += 1;
      const request = message.describeRequest;
      const counts = request.architectures.map((a) => findTwinArchitecture(this.options.twin, a.layers, a.hiddenChannels)?.parameters);
      const missing = counts.some((c) => c === undefined);
      this.#write({ describeResult: { requestId: request.requestId, parameterCounts: missing ? [] : (counts as number[]), error: missing ? 'the twin lacks an architecture that was asked for' : '' } });
    } else if (message.reject) {
      this.counts.rejects += 1;
    }
  }

  #write(message: AgentMessage): boolean {
    const stream = this.#stream;
    if (!stream || stream.destroyed || stream.writableEnded) return false;
    stream.write(message);
    return true;
  }

  #inventory(): Inventory {
    const gpu = this.options.twin.gpu;
    return {
      driverVersion: this.options.driverVersion ?? gpu.driverVersion,
      cudaVersion: gpu.cudaVersion ?? '',
      gpus: [{ index: 0, uuid: this.gpuUuid, name: gpu.name, memoryTotalMib: gpu.memoryTotalMiB, memoryUsedMib: 0, memoryReservedMib: undefined, computeCapability: gpu.computeCapability ?? '', migMode: '', parentUuid: '', migProfile: '' }],
      stale: false,
      rebootPending: false,
      error: '',
      observedAt: new Date(),
    };
  }

  /** The result the twin's laws give, as an agent would report it. */
  #result(a: TrialAssignment): TrialResult {
    const base = { trialId: a.trialId, gpuUuid: a.gpuUuid, architecture: a.architecture, batchSize: a.batchSize, iterations: a.iterations };
    const arch = a.architecture ? findTwinArchitecture(this.options.twin, a.architecture.layers, a.architecture.hiddenChannels) : undefined;
    if (!arch) {
      return { ...base, outcome: 'failed', failure: { kind: 'runner_error', summary: 'the twin has no such architecture' }, step: undefined, gpuSeconds: 0, wallSeconds: 0 };
    }
    const outcome = evaluateTwinTrial(this.options.twin, arch, a.batchSize, a.iterations);
    if (outcome.outOfMemory) {
      return {
        ...base,
        outcome: 'oom',
        failure: { kind: 'oom', summary: `CUDA out of memory (simulated ${Math.round(outcome.peakMiB)} MiB)` },
        step: undefined,
        parameterCount: arch.parameters,
        gpuSeconds: outcome.gpuSeconds,
        wallSeconds: outcome.gpuSeconds,
      };
    }
    const step = outcome.stepSeconds;
    return {
      ...base,
      outcome: 'ok',
      failure: undefined,
      devicePeakMib: outcome.peakMiB,
      processPeakMib: outcome.peakMiB - this.options.twin.memory.reservedMiB,
      step: { meanSeconds: step, p50Seconds: step, minSeconds: step, maxSeconds: step, count: a.iterations },
      parameterCount: arch.parameters,
      gpuSeconds: outcome.gpuSeconds,
      wallSeconds: outcome.gpuSeconds,
    };
  }
}
