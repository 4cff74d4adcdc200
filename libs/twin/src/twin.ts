/**
 * Digital twins (format `hwopt-twin/1`): a law of memory and time per
 * architecture for one GPU and one workload. Tests, the demo and the
 * simulated trial runner use them in place of real hardware.
 */
import { readFileSync } from 'node:fs';

export const TWIN_FORMAT = 'hwopt-twin/1';

export interface TwinGpu {
  name: string;
  memoryTotalMiB: number;
  driverVersion: string;
  cudaVersion: string | null;
  computeCapability: string | null;
}

export interface TwinArchitecture {
  layers: number;
  hiddenChannels: number;
  /** Trainable parameters. */
  parameters: number;
  fixedMiB: number;
  perSampleMiB: number;
  perSampleSquaredMiB: number;
  stepSecondsFixed: number;
  stepSecondsPerSample: number;
}

export interface Twin {
  format: typeof TWIN_FORMAT;
  gpu: TwinGpu;
  workload: string;
  memory: { reservedMiB: number; granularityMiB: number };
  trialOverheadSeconds: number;
  architectures: TwinArchitecture[];
}

export class InvalidTwinError extends Error {
  readonly code = 'INVALID_TWIN';
  constructor(source: string, detail: string) {
    super(`Invalid twin ${source}: ${detail}. A twin must follow the ${TWIN_FORMAT} format.`);
    this.name = 'InvalidTwinError';
  }
}

function requireNumber(value: unknown, field: string, source: string, min = 0): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new InvalidTwinError(source, `${field} must be a finite number >= ${min}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function requireString(value: unknown, field: string, source: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 200) {
    throw new InvalidTwinError(source, `${field} must be a non-empty string of at most 200 characters`);
  }
  return value;
}

/** Validates parsed JSON as a twin; `source` names it in error messages. */
export function parseTwin(data: unknown, source = 'twin'): Twin {
  if (typeof data !== 'object' || data === null) throw new InvalidTwinError(source, 'not a JSON object');
  const raw = data as Record<string, any>;
  if (raw.format !== TWIN_FORMAT) {
    throw new InvalidTwinError(source, `format is ${JSON.stringify(raw.format)}, expected "${TWIN_FORMAT}"`);
  }
  const gpu = raw.gpu ?? {};
  const memory = raw.memory ?? {};
  if (!Array.isArray(raw.architectures) || raw.architectures.length === 0) {
    throw new InvalidTwinError(source, 'architectures must be a non-empty array');
  }
  const architectures = raw.architectures.map((a: Record<string, unknown>, i: number): TwinArchitecture => {
    const at = `architectures[${i}]`;
    const architecture: TwinArchitecture = {
      layers: requireNumber(a.layers, `${at}.layers`, source, 1),
      hiddenChannels: requireNumber(a.hiddenChannels, `${at}.hiddenChannels`, source, 1),
      parameters: requireNumber(a.parameters, `${at}.parameters`, source),
      fixedMiB: requireNumber(a.fixedMiB, `${at}.fixedMiB`, source),
      perSampleMiB: requireNumber(a.perSampleMiB, `${at}.perSampleMiB`, source),
      perSampleSquaredMiB: a.perSampleSquaredMiB === undefined ? 0 : requireNumber(a.perSampleSquaredMiB, `${at}.perSampleSquaredMiB`, source),
      stepSecondsFixed: requireNumber(a.stepSecondsFixed, `${at}.stepSecondsFixed`, source),
      stepSecondsPerSample: requireNumber(a.stepSecondsPerSample, `${at}.stepSecondsPerSample`, source),
    };
    // A step that takes no time gives no throughput to compare, and a trial runner reporting it is broken.
    if (architecture.stepSecondsFixed + architecture.stepSecondsPerSample <= 0) {
      throw new InvalidTwinError(source, `${at} has stepSecondsFixed and stepSecondsPerSample both 0. Give at least one of them a time above 0 seconds`);
    }
    return architecture;
  });
  return {
    format: TWIN_FORMAT,
    gpu: {
      name: requireString(gpu.name, 'gpu.name', source),
      memoryTotalMiB: requireNumber(gpu.memoryTotalMiB, 'gpu.memoryTotalMiB', source, 1),
      driverVersion: requireString(gpu.driverVersion, 'gpu.driverVersion', source),
      cudaVersion: gpu.cudaVersion == null ? null : requireString(gpu.cudaVersion, 'gpu.cudaVersion', source),
      computeCapability: gpu.computeCapability == null ? null : requireString(gpu.computeCapability, 'gpu.computeCapability', source),
    },
    workload: requireString(raw.workload, 'workload', source),
    memory: {
      reservedMiB: requireNumber(memory.reservedMiB, 'memory.reservedMiB', source),
      granularityMiB: requireNumber(memory.granularityMiB ?? 0, 'memory.granularityMiB', source),
    },
    trialOverheadSeconds: requireNumber(raw.trialOverheadSeconds, 'trialOverheadSeconds', source),
    architectures,
  };
}

/** Reads and validates a twin file. */
export function loadTwin(path: string): Twin {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new InvalidTwinError(path, `cannot be read (${(error as Error).message}); pass the path of an existing twin JSON file`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new InvalidTwinError(path, `is not valid JSON (${(error as Error).message})`);
  }
  return parseTwin(data, path);
}

export function findTwinArchitecture(twin: Twin, layers: number, hiddenChannels: number): TwinArchitecture | undefined {
  return twin.architectures.find((a) => a.layers === layers && a.hiddenChannels === hiddenChannels);
}

function roundUp(value: number, granularity: number): number {
  return granularity > 0 ? Math.ceil(value / granularity) * granularity : value;
}

/** Device peak memory in MiB, as nvidia-smi would count it (CUDA context included). */
export function twinPeakMiB(twin: Twin, arch: TwinArchitecture, batchSize: number): number {
  const tensors = arch.fixedMiB + arch.perSampleMiB * batchSize + arch.perSampleSquaredMiB * batchSize * batchSize;
  return twin.memory.reservedMiB + roundUp(tensors, twin.memory.granularityMiB);
}

export function twinStepSeconds(arch: TwinArchitecture, batchSize: number): number {
  return arch.stepSecondsFixed + arch.stepSecondsPerSample * batchSize;
}

export interface TwinTrialOutcome {
  outOfMemory: boolean;
  peakMiB: number;
  stepSeconds: number;
  /** GPU time the trial costs: overhead plus one step on OOM, else overhead plus every iteration. */
  gpuSeconds: number;
}

/** Applies the twin's laws to one trial. */
export function evaluateTwinTrial(twin: Twin, arch: TwinArchitecture, batchSize: number, iterations: number): TwinTrialOutcome {
  const peakMiB = twinPeakMiB(twin, arch, batchSize);
  const stepSeconds = twinStepSeconds(arch, batchSize);
  const outOfMemory = peakMiB > twin.gpu.memoryTotalMiB;
  const steps = outOfMemory ? 1 : iterations;
  return { outOfMemory, peakMiB, stepSeconds, gpuSeconds: twin.trialOverheadSeconds + steps * stepSeconds };
}
