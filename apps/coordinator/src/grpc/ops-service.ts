/**
 * hwopt.v1.OpsService: the queries and commands behind the `hwopt` CLI,
 * for any gRPC client.
 */
import { status, type ServerErrorResponse, type ServerUnaryCall, type ServerWritableStream } from '@grpc/grpc-js';
import { STAGE_NAMES, type StageName } from '@hwopt/optimizer';
import type { Logger } from '@hwopt/common';
import { UnknownNodeError, type BenchmarkEvent, type BenchmarkEvents, type BenchmarkJob, type ConfigView, type FleetNodeView, type OpsQueries, type RunView } from '@hwopt/fleet';
import type { NodeRepository } from '@hwopt/db';
import type { BenchmarkEvent as BenchmarkEventMessage, FleetNode, OpsServiceServer, StageConfig } from '@hwopt/proto';
import { decoded } from './decoding.ts';
import * as validate from './validate.ts';

export type OpsRole = 'read' | 'admin';

export interface OpsServiceDeps {
  queries: OpsQueries;
  nodes: NodeRepository;
  events: BenchmarkEvents;
  logger: Logger;
  enqueue(job: BenchmarkJob): Promise<string | null>;
  /** Throws a gRPC error when the caller may not act with `role`. */
  authorize(call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>, role: OpsRole): void;
}

function grpcError(code: status, details: string): ServerErrorResponse {
  return Object.assign(new Error(details), { code, details });
}

/** Maps hwopt errors to gRPC status codes; internal details never leave the server. */
function toStatus(error: unknown, logger: Logger): ServerErrorResponse {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof (error as { code: unknown }).code === 'number') return error as ServerErrorResponse;
  if (error instanceof validate.RequestValidationError) return grpcError(status.INVALID_ARGUMENT, error.message);
  if (error instanceof UnknownNodeError) return grpcError(status.NOT_FOUND, error.message);
  logger.error({ err: error }, 'ops request failed');
  return grpcError(status.INTERNAL, 'internal error; see the coordinator log');
}

/** Runs the role check and logs a rejection with the method and peer; the token itself is never logged. */
function authorizeLogged(deps: OpsServiceDeps, call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>, role: OpsRole, method: string): void {
  try {
    deps.authorize(call, role);
  } catch (error) {
    const { code, details } = error as { code?: number; details?: string };
    deps.logger.warn({ method, peer: call.getPeer(), code: code === undefined ? undefined : status[code], reason: details }, 'ops call rejected');
    throw error;
  }
}

function unary<Req, Res>(deps: OpsServiceDeps, role: OpsRole, name: string, fn: (request: Req) => Promise<Res>) {
  return (call: ServerUnaryCall<Req, Res>, callback: (error: ServerErrorResponse | null, response?: Res) => void) => {
    const started = performance.now();
    Promise.resolve()
      .then(() => authorizeLogged(deps, call as ServerUnaryCall<unknown, unknown>, role, name))
      .then(() => fn(decoded(call.request, `${name}Request`)))
      .then(
        (response) => {
          deps.logger.debug({ method: name, durationMs: Math.round(performance.now() - started) }, 'ops request');
          callback(null, response);
        },
        (error) => callback(toStatus(error, deps.logger)),
      );
  };
}

function optionalStage(value: string): string | undefined {
  if (value === '') return undefined;
  if (!(STAGE_NAMES as readonly string[]).includes(value)) throw new validate.RequestValidationError(`stage ${JSON.stringify(value.slice(0, 32))} is not one of ${STAGE_NAMES.join(', ')}`);
  return value;
}

export function stageConfigMessage(c: ConfigView): StageConfig {
  return {
    nodeName: c.nodeName,
    gpuUuid: c.gpuUuid,
    gpuName: c.gpuName,
    workload: c.workload,
    stage: c.stage,
    architecture: { layers: c.layers, hiddenChannels: c.hiddenChannels },
    batchSize: c.batchSize,
    parameters: c.parameters,
    peakMib: c.peakMiB ?? undefined,
    stepSeconds: c.stepSeconds ?? undefined,
    cycleMinutes: c.cycleMinutes ?? undefined,
    inWindow: c.inWindow ?? undefined,
    datasetSize: c.datasetSize,
    candidatesFrom: c.candidatesFrom,
    stale: c.stale,
    staleReason: c.staleReason ?? '',
    benchmarkRunId: c.benchmarkRunId,
    verifiedTrialId: c.verifiedTrialId ?? '',
    createdAt: c.createdAt,
    driverVersion: c.driverVersion ?? '',
    cudaVersion: c.cudaVersion ?? '',
    current: c.current,
    changeReason: c.changeReason ?? '',
  };
}

function fleetNodeMessage(n: FleetNodeView): FleetNode {
  return {
    nodeName: n.nodeName,
    hostname: n.hostname,
    labels: Object.entries(n.labels).map(([key, value]) => ({ key, value: String(value) })),
    agentVersion: n.agentVersion,
    state: n.connected ? n.state : 'offline',
    lastContactAt: n.lastContactAt,
    inventory: {
      driverVersion: n.driverVersion ?? '',
      cudaVersion: n.cudaVersion ?? '',
      stale: n.inventoryStale,
      rebootPending: n.rebootPending,
      error: '',
      observedAt: n.lastContactAt,
      gpus: n.gpus.map((g) => ({
        index: g.index,
        uuid: g.uuid,
        name: g.name,
        memoryTotalMib: g.memoryTotalMiB ?? undefined,
        memoryUsedMib: undefined,
        memoryReservedMib: undefined,
        computeCapability: g.computeCapability ?? '',
        migMode: g.migMode ?? '',
        parentUuid: g.parentUuid ?? '',
        migProfile: g.migProfile ?? '',
      })),
    },
    configCount: n.configCount,
    staleConfigCount: n.staleConfigCount,
  };
}

function runMessage(r: RunView) {
  return {
    id: r.id,
    nodeName: r.nodeName,
    gpuUuid: r.gpuUuid,
    workload: r.workload,
    reason: r.reason,
    status: r.status,
    strategy: r.strategy,
    trials: r.trials,
    gpuSeconds: r.gpuSeconds,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt ?? undefined,
    error: r.error ?? '',
    driverVersion: r.driverVersion ?? '',
    cudaVersion: r.cudaVersion ?? '',
    changes: r.changes,
  };
}

export function createOpsService(deps: OpsServiceDeps): OpsServiceServer {
  const { queries } = deps;
  return {
    listConfigs: unary(deps, 'read', 'ListConfigs', async (request) => {
      const configs = await queries.listConfigs({
        nodeName: request.nodeName ? validate.nodeName(request.nodeName) : undefined,
        stage: optionalStage(request.stage),
        workload: request.workload ? validate.workloadName(request.workload) : undefined,
        includeHistory: request.includeHistory,
      });
      return { configs: configs.map(stageConfigMessage) };
    }),
    listFleet: unary(deps, 'read', 'ListFleet', async () => ({ nodes: (await queries.listFleet()).map(fleetNodeMessage) })),
    getHistory: unary(deps, 'read', 'GetHistory', async (request) => ({ runs: (await queries.history(validate.nodeName(request.nodeName))).map(runMessage) })),
    exportProfile: unary(deps, 'read', 'ExportProfile', async (request) => {
      const profile = await queries.exportProfile(validate.nodeName(request.nodeName), request.workload ? validate.workloadName(request.workload) : undefined);
      return { profileJson: JSON.stringify(profile, null, 2) };
    }),
    scheduleBenchmark: unary(deps, 'admin', 'ScheduleBenchmark', async (request) => {
      const stage = optionalStage(request.stage) as StageName | undefined;
      // NOTE: the workload is checked but not used yet: every benchmark runs the coordinator's configured workload.
      if (request.workload) validate.workloadName(request.workload);
      let nodeNames: string[];
      if (request.nodeName) {
        const name = validate.nodeName(request.nodeName);
        if (!(await deps.nodes.findByName(name))) throw new UnknownNodeError(name);
        nodeNames = [name];
      } else if (request.gpuModel) {
        const model = validate.text(request.gpuModel, 'gpu_model', 128);
        nodeNames = (await deps.nodes.listWithGpus()).filter((n) => n.gpus.some((g) => g.name === model)).map((n) => n.name);
        if (nodeNames.length === 0) throw grpcError(status.NOT_FOUND, `no node has a GPU named ${JSON.stringify(model)}; list GPU names with \`hwopt fleet\``);
      } else {
        throw new validate.RequestValidationError('name a node (node_name) or a GPU model (gpu_model)');
      }
      const jobIds: string[] = [];
      for (const nodeName of nodeNames) {
        const id = await deps.enqueue({ nodeName, reason: 'on_demand', stages: stage ? [stage] : undefined });
        if (id) jobIds.push(id);
      }
      return { jobIds, nodeNames };
    }),
    watchBenchmarks(call) {
      try {
        authorizeLogged(deps, call as ServerWritableStream<unknown, unknown>, 'read', 'WatchBenchmarks');
        decoded(call.request, 'WatchBenchmarksRequest');
      } catch (error) {
        call.emit('error', toStatus(error, deps.logger));
        return;
      }
      const onEvent = (e: BenchmarkEvent) => {
        const message: BenchmarkEventMessage = { ...e, detail: e.detail.slice(0, 2048) };
        call.write(message);
      };
      deps.events.on('event', onEvent);
      const stop = () => deps.events.off('event', onEvent);
      call.on('cancelled', stop);
      call.on('close', stop);
      call.on('error', stop);
    },
  };
}
