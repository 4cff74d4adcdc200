/**
 * Checks every field an agent or an ops client sends before it is used:
 * sizes bounded, numbers in range, names matched against a pattern.
 * Failures become INVALID_ARGUMENT with the field named.
 */
import type { AgentHello, InventoryReport, TrialResultReport } from '@hwopt/fleet';
import type { DescribeResult, Hello, Inventory, TrialResult } from '@hwopt/proto';

export class RequestValidationError extends Error {
  readonly code = 'INVALID_ARGUMENT';
}

/** Node names: what hostnames and Kubernetes node names use. */
export const NODE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Workload names, such as visnet-pdb. */
export const WORKLOAD_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Label keys: the same set `hwopt-agent run --label` accepts. */
const LABEL_KEY_PATTERN = /^[A-Za-z0-9._/-]{1,128}$/;
/** nvidia-smi GPU and MIG UUIDs (GPU-..., MIG-...) and the agent's `<gpu>/gi<n>/ci<n>` MIG names. */
const GPU_UUID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;
/** Failure kinds such as oom, host_oom or runner_error. */
const FAILURE_KIND_PATTERN = /^[a-z][a-z0-9_]{0,31}$/;
const MAX_TEXT = 512;
const MAX_SUMMARY = 4096;
const MAX_GPUS = 64;
const MAX_LABELS = 64;
const MAX_WORKLOADS = 64;
/** Architectures one describe result may list; visnet-pdb lists under 50 for GPUs of 15 to 140 GiB, so the bound is generous. */
const MAX_DESCRIBE_COUNTS = 10_000;
/** Same bound the optimizer applies to an executor's parameter counts. */
const MAX_PARAMETER_COUNT = 1e13;

function fail(field: string, detail: string): never {
  throw new RequestValidationError(`${field} ${detail}`);
}

export function text(value: string, field: string, max = MAX_TEXT): string {
  if (value.length > max) fail(field, `is ${value.length} characters long; the limit is ${max}`);
  // Control characters would corrupt logs and terminal output.
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(value)) fail(field, 'contains control characters');
  return value;
}

function optionalText(value: string, field: string): string | null {
  return value === '' ? null : text(value, field);
}

export function nodeName(value: string, field = 'node_name'): string {
  if (!NODE_NAME_PATTERN.test(value)) fail(field, `${JSON.stringify(value.slice(0, 64))} is not a valid node name (letters, digits, '.', '_' and '-', at most 128, starting with a letter or digit)`);
  return value;
}

function matching(value: string, pattern: RegExp, field: string, what: string): string {
  if (!pattern.test(value)) fail(field, `${JSON.stringify(value.slice(0, 64))} is not a valid ${what}`);
  return value;
}

export function workloadName(value: string, field = 'workload'): string {
  return matching(value, WORKLOAD_PATTERN, field, "workload name (letters, digits, '.', '_' and '-', at most 64)");
}

function gpuUuid(value: string, field: string): string {
  return matching(value, GPU_UUID_PATTERN, field, 'GPU UUID');
}

function count(value: number, field: string, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) fail(field, `must be an integer in [${min}, ${max}], got ${value}`);
  return value;
}

function measure(value: number | undefined, field: string, max: number): number | null {
  if (value === undefined) return null;
  if (!Number.isFinite(value) || value < 0 || value > max) fail(field, `must be a finite number in [0, ${max}], got ${value}`);
  return value;
}

export function trialId(value: string, field = 'trial_id'): string {
  if (!UUID_PATTERN.test(value)) fail(field, `${JSON.stringify(value.slice(0, 64))} is not a trial id (a lower-case UUID)`);
  return value;
}

export function inventory(value: Inventory | undefined, field = 'inventory'): InventoryReport {
  if (!value) fail(field, 'is missing');
  if (value.gpus.length > MAX_GPUS) fail(`${field}.gpus`, `lists ${value.gpus.length} GPUs; the limit is ${MAX_GPUS}`);
  return {
    driverVersion: optionalText(value.driverVersion, `${field}.driver_version`),
    cudaVersion: optionalText(value.cudaVersion, `${field}.cuda_version`),
    stale: value.stale,
    rebootPending: value.rebootPending,
    error: optionalText(value.error.slice(0, MAX_TEXT), `${field}.error`),
    gpus: value.gpus.map((gpu, i) => {
      const at = `${field}.gpus[${i}]`;
      if (gpu.uuid === '') fail(`${at}.uuid`, 'is missing');
      return {
        index: count(gpu.index, `${at}.index`, 0, 1024),
        uuid: gpuUuid(gpu.uuid, `${at}.uuid`),
        name: text(gpu.name, `${at}.name`, 128),
        memoryTotalMiB: gpu.memoryTotalMib === undefined ? null : count(gpu.memoryTotalMib, `${at}.memory_total_mib`, 1, 16 * 1024 * 1024),
        computeCapability: optionalText(gpu.computeCapability, `${at}.compute_capability`),
        migMode: optionalText(gpu.migMode, `${at}.mig_mode`),
        parentUuid: gpu.parentUuid === '' ? null : gpuUuid(gpu.parentUuid, `${at}.parent_uuid`),
        migProfile: optionalText(gpu.migProfile, `${at}.mig_profile`),
      };
    }),
  };
}

export function hello(value: Hello): AgentHello {
  if (value.labels.length > MAX_LABELS) fail('labels', `has ${value.labels.length} entries; the limit is ${MAX_LABELS}`);
  if (value.workloads.length > MAX_WORKLOADS) fail('workloads', `has ${value.workloads.length} entries; the limit is ${MAX_WORKLOADS}`);
  // Object.fromEntries defines own properties, so a key such as __proto__ stays a plain label.
  const labels: Record<string, string> = Object.fromEntries(
    value.labels.map((label, i) => [matching(label.key, LABEL_KEY_PATTERN, `labels[${i}].key`, "label key (letters, digits, '.', '_', '/' and '-', at most 128)"), text(label.value, `labels[${i}].value`, 256)]),
  );
  return {
    nodeName: nodeName(value.nodeName),
    hostname: text(value.hostname, 'hostname', 255),
    labels,
    agentVersion: text(value.agentVersion, 'agent_version', 64),
    inventory: inventory(value.inventory),
    workloads: value.workloads.map((w, i) => workloadName(w, `workloads[${i}]`)),
  };
}

const OUTCOMES = new Set(['ok', 'oom', 'failed']);
/** 1 PiB: above any device; larger values are corrupt. */
const MAX_BYTES = 2 ** 50;
const MAX_MIB = 2 ** 30;
/** A week: far above any trial. */
const MAX_SECONDS = 7 * 24 * 3600;

export function trialResult(value: TrialResult): TrialResultReport {
  if (!OUTCOMES.has(value.outcome)) fail('outcome', `must be ok, oom or failed, got ${JSON.stringify(value.outcome.slice(0, 32))}`);
  if (!value.architecture) fail('architecture', 'is missing');
  const step = value.step;
  return {
    trialId: trialId(value.trialId),
    gpuUuid: gpuUuid(value.gpuUuid, 'gpu_uuid'),
    architecture: {
      layers: count(value.architecture.layers, 'architecture.layers', 1, 1024),
      hiddenChannels: count(value.architecture.hiddenChannels, 'architecture.hidden_channels', 1, 1 << 20),
    },
    batchSize: count(value.batchSize, 'batch_size', 1, 1 << 24),
    iterations: count(value.iterations, 'iterations', 1, 1 << 20),
    outcome: value.outcome as TrialResultReport['outcome'],
    failure: value.failure
      ? {
          kind: matching(value.failure.kind, FAILURE_KIND_PATTERN, 'failure.kind', 'failure kind (lower-case letters, digits and _)'),
          summary: text(value.failure.summary.slice(0, MAX_SUMMARY), 'failure.summary', MAX_SUMMARY),
          requestedBytes: measure(value.failure.requestedBytes, 'failure.requested_bytes', MAX_BYTES),
          totalBytes: measure(value.failure.totalBytes, 'failure.total_bytes', MAX_BYTES),
          freeBytes: measure(value.failure.freeBytes, 'failure.free_bytes', MAX_BYTES),
        }
      : null,
    devicePeakMiB: measure(value.devicePeakMib, 'device_peak_mib', MAX_MIB),
    processPeakMiB: measure(value.processPeakMib, 'process_peak_mib', MAX_MIB),
    frameworkPeakAllocatedBytes: measure(value.frameworkPeakAllocatedBytes, 'framework_peak_allocated_bytes', MAX_BYTES),
    frameworkPeakReservedBytes: measure(value.frameworkPeakReservedBytes, 'framework_peak_reserved_bytes', MAX_BYTES),
    step:
      step && step.count > 0
        ? {
            meanSeconds: measure(step.meanSeconds, 'step.mean_seconds', MAX_SECONDS)!,
            p50Seconds: measure(step.p50Seconds, 'step.p50_seconds', MAX_SECONDS)!,
            minSeconds: measure(step.minSeconds, 'step.min_seconds', MAX_SECONDS)!,
            maxSeconds: measure(step.maxSeconds, 'step.max_seconds', MAX_SECONDS)!,
            count: count(step.count, 'step.count', 1, 1 << 20),
          }
        : null,
    parameterCount: measure(value.parameterCount, 'parameter_count', MAX_PARAMETER_COUNT),
    gpuSeconds: measure(value.gpuSeconds, 'gpu_seconds', MAX_SECONDS)!,
    wallSeconds: measure(value.wallSeconds, 'wall_seconds', MAX_SECONDS)!,
  };
}

export interface DescribeReport {
  requestId: string;
  parameterCounts: number[];
  error: string | null;
}

export function describeResult(value: DescribeResult): DescribeReport {
  const counts = value.parameterCounts;
  if (counts.length > MAX_DESCRIBE_COUNTS) fail('describe_result.parameter_counts', `has ${counts.length} entries; the limit is ${MAX_DESCRIBE_COUNTS}`);
  return {
    requestId: matching(value.requestId, UUID_PATTERN, 'describe_result.request_id', 'request id (a lower-case UUID)'),
    parameterCounts: counts.map((c, i) => count(c, `describe_result.parameter_counts[${i}]`, 0, MAX_PARAMETER_COUNT)),
    error: value.error === '' ? null : text(value.error.slice(0, 2048), 'describe_result.error', 2048),
  };
}
