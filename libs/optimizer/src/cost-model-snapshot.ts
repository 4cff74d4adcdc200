/**
 * The stored form of a cost model: plain JSON, versioned, so that a later
 * run on another node with the same GPU model (or a re-benchmark) starts
 * from it. Snapshots come back from a database and are validated like any
 * other untrusted input.
 */
import { InvalidOptimizeOptionError } from './errors.ts';
import type { TrialObservation } from './trial-ledger.ts';

export const COST_MODEL_VERSION = 1;

/** Identifies what a snapshot's measurements apply to. */
export interface CostModelKey {
  gpuModel: string;
  memoryTotalMiB: number;
  workload: string;
  workloadVersion: string;
}

/** peakMiB(b) = interceptMiB + perSampleMiB * b + perSampleSquaredMiB * b^2, fitted per architecture. */
export interface MemoryLaw {
  layers: number;
  hiddenChannels: number;
  interceptMiB: number;
  perSampleMiB: number;
  perSampleSquaredMiB: number;
  /** Distinct batch sizes the law was fitted on; 1 means the intercept came from the cross-architecture model. */
  points: number;
}

/** stepSeconds(b) = fixedSeconds + perSampleSeconds * b, fitted per architecture. */
export interface TimeLaw {
  layers: number;
  hiddenChannels: number;
  fixedSeconds: number;
  perSampleSeconds: number;
  points: number;
}

/** Coefficients of the cross-architecture memory regression; `features` names each column. */
export interface CrossArchitectureMemoryModel {
  features: string[];
  coefficients: number[];
  /** Root-mean-square residual of the fit, in MiB. */
  rmsResidualMiB: number;
  points: number;
}

export interface CostModelSnapshot {
  version: typeof COST_MODEL_VERSION;
  key: CostModelKey;
  parameters: { layers: number; hiddenChannels: number; parameters: number }[];
  observations: Omit<TrialObservation, 'source'>[];
  memoryLaws: MemoryLaw[];
  timeLaws: TimeLaw[];
  crossArchitectureMemory: CrossArchitectureMemoryModel | null;
  /** Snapshots of other GPU models this one was started from, kept so their memory laws keep transferring. */
  transferred: CostModelSnapshot[];
}

/** Snapshots nested in `transferred` beyond this depth are dropped; each run keeps at most this many. */
export const MAX_TRANSFERRED_SNAPSHOTS = 8;
/** Observations a snapshot may carry; more are rejected as corrupt. */
const MAX_SNAPSHOT_OBSERVATIONS = 100_000;

export function sameKey(a: CostModelKey, b: CostModelKey): boolean {
  return a.gpuModel === b.gpuModel && a.memoryTotalMiB === b.memoryTotalMiB && a.workload === b.workload && a.workloadVersion === b.workloadVersion;
}

function isNumber(value: unknown, min = 0): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= min;
}

function checkObservation(raw: unknown, index: number): Omit<TrialObservation, 'source'> {
  const o = raw as Record<string, unknown>;
  const where = `prior.observations[${index}]`;
  const valid =
    typeof o === 'object' && o !== null &&
    Number.isInteger(o.layers) && isNumber(o.layers, 1) &&
    Number.isInteger(o.hiddenChannels) && isNumber(o.hiddenChannels, 1) &&
    Number.isInteger(o.batchSize) && isNumber(o.batchSize, 1) &&
    Number.isInteger(o.iterations) && isNumber(o.iterations, 1) &&
    (o.outcome === 'ok' || o.outcome === 'oom') &&
    (o.peakMiB === null || isNumber(o.peakMiB)) &&
    (o.stepSeconds === null || isNumber(o.stepSeconds));
  if (!valid) throw new InvalidOptimizeOptionError(where, 'is not a valid trial observation; discard the stored snapshot');
  return {
    layers: o.layers as number,
    hiddenChannels: o.hiddenChannels as number,
    batchSize: o.batchSize as number,
    iterations: o.iterations as number,
    outcome: o.outcome as 'ok' | 'oom',
    peakMiB: o.peakMiB as number | null,
    stepSeconds: o.stepSeconds as number | null,
  };
}

/**
 * Validates a stored snapshot and returns the parts the optimizer uses:
 * key, parameter counts and raw observations. Fitted laws are refitted from
 * the observations, so a stale or edited law cannot mislead a run.
 */
export function parseCostModelSnapshot(raw: unknown, depth = 0): CostModelSnapshot {
  const s = raw as Record<string, any>;
  if (typeof s !== 'object' || s === null || s.version !== COST_MODEL_VERSION) {
    throw new InvalidOptimizeOptionError('prior', `expected a cost model snapshot of version ${COST_MODEL_VERSION}, got version ${JSON.stringify(s?.version)}; rerun without the prior`);
  }
  const key = s.key ?? {};
  if (typeof key.gpuModel !== 'string' || !isNumber(key.memoryTotalMiB, 1) || typeof key.workload !== 'string' || typeof key.workloadVersion !== 'string') {
    throw new InvalidOptimizeOptionError('prior.key', 'expected gpuModel, memoryTotalMiB, workload and workloadVersion');
  }
  if (!Array.isArray(s.observations) || s.observations.length > MAX_SNAPSHOT_OBSERVATIONS) {
    throw new InvalidOptimizeOptionError('prior.observations', `expected an array of at most ${MAX_SNAPSHOT_OBSERVATIONS} observations`);
  }
  const parameters = Array.isArray(s.parameters)
    ? s.parameters
        .filter((p: any) => p && isNumber(p.layers, 1) && isNumber(p.hiddenChannels, 1) && isNumber(p.parameters))
        .map((p: any) => ({ layers: p.layers, hiddenChannels: p.hiddenChannels, parameters: p.parameters }))
    : [];
  const transferred =
    depth === 0 && Array.isArray(s.transferred)
      ? s.transferred.slice(0, MAX_TRANSFERRED_SNAPSHOTS).map((t: unknown) => parseCostModelSnapshot(t, depth + 1))
      : [];
  return {
    version: COST_MODEL_VERSION,
    key: { gpuModel: key.gpuModel, memoryTotalMiB: key.memoryTotalMiB, workload: key.workload, workloadVersion: key.workloadVersion },
    parameters,
    observations: s.observations.map(checkObservation),
    memoryLaws: [],
    timeLaws: [],
    crossArchitectureMemory: null,
    transferred,
  };
}
