import { InvalidOptimizeOptionError } from './errors.ts';
import type { CostModelSnapshot } from './cost-model-snapshot.ts';
import { STAGE_NAMES, type StageName, type TrialMeasurement, type TrialRequest } from './types.ts';
import { VISNET_PDB, type WorkloadSpec } from './workload.ts';

export type StrategyName = 'calibrated' | 'legacy';

export interface OptimizeOptions {
  /** Workload whose spaces and constants apply. Default: VISNET_PDB. */
  workload?: WorkloadSpec;
  /** Total memory of the GPU in MiB, as nvidia-smi reports it. Required. */
  memoryTotalMiB: number;
  /** Samples in the training dataset; sets the parameter cap. Required. */
  datasetSize: number;
  /**
   * GPU model identity (for example nvidia-smi's name). A prior whose key
   * matches is treated as measurements of this GPU. Default: the memory size.
   */
  gpuModel?: string;
  /** Fraction of total memory a trial's peak must leave free, in [0, 1). Default 0.05. */
  headroom?: number;
  /** Largest batch size ever recommended or probed. Default 8192. */
  maxBatchSize?: number;
  /** Prototyping cycle window in minutes, inclusive. Default [10, 40]. */
  prototypingWindowMinutes?: [number, number];
  /** Validation cycle window in minutes, inclusive. Default [70, 110]. */
  validationWindowMinutes?: [number, number];
  /** Stages to optimise; the others come back null. Default: all four. */
  stages?: StageName[];
  /** Search strategy. Default 'calibrated'. */
  strategy?: StrategyName;
  /** Cost model of an earlier run (this GPU model or another) to start from. */
  prior?: CostModelSnapshot;
  /** Aborts the run between trials; `optimize` rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Called after every trial, in order. */
  onTrial?: (request: TrialRequest, measurement: TrialMeasurement) => void;
}

/** Options with every default filled in. */
export interface ResolvedOptimizeOptions {
  workload: WorkloadSpec;
  memoryTotalMiB: number;
  datasetSize: number;
  gpuModel: string;
  headroom: number;
  maxBatchSize: number;
  windows: { prototyping: [number, number]; validation: [number, number] };
  stages: StageName[];
  strategy: StrategyName;
  prior: CostModelSnapshot | undefined;
  signal: AbortSignal | undefined;
  onTrial: ((request: TrialRequest, measurement: TrialMeasurement) => void) | undefined;
}

export const DEFAULT_HEADROOM = 0.05;
export const DEFAULT_MAX_BATCH_SIZE = 8192;
/** The original's prototyping window, in minutes. */
export const DEFAULT_PROTOTYPING_WINDOW_MINUTES: [number, number] = [10, 40];
export const DEFAULT_VALIDATION_WINDOW_MINUTES: [number, number] = [70, 110];

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function window(value: unknown, field: string, fallback: [number, number]): [number, number] {
  if (value === undefined) return [...fallback];
  if (!Array.isArray(value) || value.length !== 2 || !isFiniteNumber(value[0]) || !isFiniteNumber(value[1]) || value[0] < 0 || value[0] > value[1]) {
    throw new InvalidOptimizeOptionError(field, `expected [min, max] minutes with 0 <= min <= max, got ${JSON.stringify(value)}`);
  }
  return [value[0], value[1]];
}

/** Fills the defaults of `options` and validates every field, naming the first bad one. */
export function validateOptimizeOptions(options: OptimizeOptions): ResolvedOptimizeOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptimizeOptionError('options', 'expected an object with memoryTotalMiB and datasetSize');
  }
  const { memoryTotalMiB, datasetSize } = options;
  if (!isFiniteNumber(memoryTotalMiB) || memoryTotalMiB <= 0) {
    throw new InvalidOptimizeOptionError('memoryTotalMiB', `expected the GPU's total memory in MiB (> 0), got ${JSON.stringify(memoryTotalMiB)}`);
  }
  if (!isFiniteNumber(datasetSize) || datasetSize < 0 || !Number.isInteger(datasetSize)) {
    throw new InvalidOptimizeOptionError('datasetSize', `expected a whole number of samples >= 0, got ${JSON.stringify(datasetSize)}`);
  }
  const headroom = options.headroom ?? DEFAULT_HEADROOM;
  if (!isFiniteNumber(headroom) || headroom < 0 || headroom >= 1) {
    throw new InvalidOptimizeOptionError('headroom', `expected a fraction in [0, 1), got ${JSON.stringify(options.headroom)}`);
  }
  const maxBatchSize = options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE;
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1 || maxBatchSize > 1_000_000) {
    throw new InvalidOptimizeOptionError('maxBatchSize', `expected a whole number in [1, 1000000], got ${JSON.stringify(options.maxBatchSize)}`);
  }
  const stages = options.stages ?? [...STAGE_NAMES];
  if (!Array.isArray(stages) || stages.some((s) => !STAGE_NAMES.includes(s))) {
    throw new InvalidOptimizeOptionError('stages', `expected a list of ${STAGE_NAMES.join(', ')}, got ${JSON.stringify(options.stages)}`);
  }
  const strategy = options.strategy ?? 'calibrated';
  if (strategy !== 'calibrated' && strategy !== 'legacy') {
    throw new InvalidOptimizeOptionError('strategy', `expected 'calibrated' or 'legacy', got ${JSON.stringify(options.strategy)}`);
  }
  const gpuModel = options.gpuModel ?? `${memoryTotalMiB} MiB`;
  if (typeof gpuModel !== 'string' || gpuModel.length === 0 || gpuModel.length > 200) {
    throw new InvalidOptimizeOptionError('gpuModel', 'expected a non-empty string of at most 200 characters');
  }
  const workload = options.workload ?? VISNET_PDB;
  if (typeof workload !== 'object' || workload === null || !Array.isArray(workload.tiers) || workload.tiers.length === 0) {
    throw new InvalidOptimizeOptionError('workload', 'expected a WorkloadSpec with at least one tier (for example VISNET_PDB)');
  }
  if (options.prior !== undefined && (typeof options.prior !== 'object' || options.prior === null)) {
    throw new InvalidOptimizeOptionError('prior', 'expected a CostModelSnapshot returned by an earlier optimize run');
  }
  return {
    workload,
    memoryTotalMiB,
    datasetSize,
    gpuModel,
    headroom,
    maxBatchSize,
    windows: {
      prototyping: window(options.prototypingWindowMinutes, 'prototypingWindowMinutes', DEFAULT_PROTOTYPING_WINDOW_MINUTES),
      validation: window(options.validationWindowMinutes, 'validationWindowMinutes', DEFAULT_VALIDATION_WINDOW_MINUTES),
    },
    stages: STAGE_NAMES.filter((s) => stages.includes(s)),
    strategy,
    prior: options.prior,
    signal: options.signal,
    onTrial: options.onTrial,
  };
}
