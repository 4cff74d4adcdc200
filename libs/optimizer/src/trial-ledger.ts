/**
 * Runs trials through the executor, checks what comes back, adds up the
 * cost and keeps every observation, so that strategies and the cost model
 * decide from measurements only.
 */
import { InvalidExecutorResponseError, TrialFailedError } from './errors.ts';
import type { ResolvedOptimizeOptions } from './options.ts';
import type { Architecture, TrialMeasurement, TrialRequest } from './types.ts';

/** One trial's result as the cost model keeps it (plain JSON). */
export interface TrialObservation {
  layers: number;
  hiddenChannels: number;
  batchSize: number;
  iterations: number;
  outcome: 'ok' | 'oom';
  /** Device peak in MiB; null when the trial did not report one. */
  peakMiB: number | null;
  /** Mean step seconds; null when no step finished. */
  stepSeconds: number | null;
  /** `prior` marks observations carried over from a stored snapshot of the same GPU model. */
  source: 'run' | 'prior';
}

/** Proven bounds on an architecture's maximum feasible batch size. */
export interface BatchBounds {
  /** Largest batch size measured feasible; 0 when none. */
  lower: number;
  /** One less than the smallest batch size measured infeasible, capped at maxBatchSize. */
  upper: number;
}

export function architectureKey(a: Architecture): string {
  return `${a.layers}x${a.hiddenChannels}`;
}

/** Bounds on what an executor may report; larger values are rejected as corrupt. */
const MAX_REPORTED_PEAK_MIB = 16 * 1024 * 1024;
const MAX_REPORTED_SECONDS = 7 * 24 * 3600;

function checkNullableNumber(value: unknown, field: string, max: number, positive: boolean): number | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > max || (positive && value === 0)) {
    throw new InvalidExecutorResponseError(`Trial measurement field ${field} is ${JSON.stringify(value)}; expected null or a number in ${positive ? '(0' : '[0'}, ${max}]. Fix the trial executor.`);
  }
  return value;
}

/** Validates an executor's measurement; a malformed one is rejected rather than guessed at. */
export function checkMeasurement(raw: TrialMeasurement): TrialMeasurement {
  if (typeof raw !== 'object' || raw === null) {
    throw new InvalidExecutorResponseError('Trial executor returned no measurement object. Fix the trial executor.');
  }
  if (raw.outcome !== 'ok' && raw.outcome !== 'oom' && raw.outcome !== 'failed') {
    throw new InvalidExecutorResponseError(`Trial measurement outcome is ${JSON.stringify(raw.outcome)}; expected 'ok', 'oom' or 'failed'. Fix the trial executor.`);
  }
  const gpuSeconds = checkNullableNumber(raw.gpuSeconds, 'gpuSeconds', MAX_REPORTED_SECONDS, false);
  if (gpuSeconds === null) {
    throw new InvalidExecutorResponseError('Trial measurement has no gpuSeconds; every trial must report the GPU time it used. Fix the trial executor.');
  }
  const checked: TrialMeasurement = {
    outcome: raw.outcome,
    peakMiB: checkNullableNumber(raw.peakMiB, 'peakMiB', MAX_REPORTED_PEAK_MIB, false),
    stepSeconds: checkNullableNumber(raw.stepSeconds, 'stepSeconds', MAX_REPORTED_SECONDS, true),
    gpuSeconds,
  };
  if (typeof raw.failureKind === 'string') checked.failureKind = raw.failureKind.slice(0, 200);
  if (typeof raw.failureMessage === 'string') checked.failureMessage = raw.failureMessage.slice(0, 2000);
  return checked;
}

interface LedgerContext {
  executor: { runTrial(request: TrialRequest): Promise<TrialMeasurement> };
  options: Pick<ResolvedOptimizeOptions, 'headroom' | 'maxBatchSize' | 'memoryTotalMiB' | 'signal' | 'onTrial'>;
}

export class TrialLedger {
  readonly limitMiB: number;
  private readonly observations: TrialObservation[] = [];
  private readonly byArchitecture = new Map<string, TrialObservation[]>();
  private trialCount = 0;
  private gpuSecondsTotal = 0;

  constructor(private readonly context: LedgerContext) {
    this.limitMiB = context.options.memoryTotalMiB * (1 - context.options.headroom);
  }

  get cost(): { trials: number; gpuSeconds: number } {
    return { trials: this.trialCount, gpuSeconds: this.gpuSecondsTotal };
  }

  /** Device memory in MiB. A trial runs out of memory when its peak would exceed it. */
  get memoryTotalMiB(): number {
    return this.context.options.memoryTotalMiB;
  }

  get maxBatchSize(): number {
    return this.context.options.maxBatchSize;
  }

  all(): readonly TrialObservation[] {
    return this.observations;
  }

  of(architecture: Architecture): readonly TrialObservation[] {
    return this.byArchitecture.get(architectureKey(architecture)) ?? [];
  }

  /** Adds observations made elsewhere (a prior of the same GPU model) without running trials. */
  addPrior(observations: readonly TrialObservation[]): void {
    for (const o of observations) this.record({ ...o, source: 'prior' });
  }

  /** Drops every observation carried over from a prior, after a trial contradicted it. */
  dropPrior(): void {
    const kept = this.observations.filter((o) => o.source === 'run');
    this.observations.length = 0;
    this.byArchitecture.clear();
    for (const o of kept) this.record(o);
  }

  hasPrior(): boolean {
    return this.observations.some((o) => o.source === 'prior');
  }

  /**
   * Feasible means the trial ran without out-of-memory and its measured
   * peak is within the headroom limit. A successful trial that reported no
   * peak passes only when the headroom is 0, because nothing then proves
   * it stayed under the limit.
   */
  isFeasible(o: TrialObservation): boolean {
    if (o.outcome !== 'ok') return false;
    if (o.peakMiB === null) return this.context.options.headroom === 0;
    return o.peakMiB <= this.limitMiB;
  }

  /**
   * Bounds on maxBatch from measurements, assuming peak memory does not
   * decrease with batch size. Should noise make a feasible size lie above an
   * infeasible one, the feasible one is ignored (the conservative reading).
   */
  bounds(architecture: Architecture): BatchBounds {
    let upper = this.maxBatchSize;
    for (const o of this.of(architecture)) {
      if (!this.isFeasible(o)) upper = Math.min(upper, o.batchSize - 1);
    }
    let lower = 0;
    for (const o of this.of(architecture)) {
      if (this.isFeasible(o) && o.batchSize <= upper) lower = Math.max(lower, o.batchSize);
    }
    return { lower, upper };
  }

  /** Finds the feasible observation at (architecture, batch size) with the most iterations, if any. */
  feasibleAt(architecture: Architecture, batchSize: number): TrialObservation | undefined {
    let best: TrialObservation | undefined;
    for (const o of this.of(architecture)) {
      if (o.batchSize === batchSize && this.isFeasible(o) && (best === undefined || o.iterations > best.iterations)) best = o;
    }
    return best;
  }

  /** Runs one trial; a non-OOM failure throws TrialFailedError after it is counted. */
  async run(request: TrialRequest): Promise<TrialMeasurement> {
    const signal = this.context.options.signal;
    signal?.throwIfAborted();
    const measurement = checkMeasurement(await this.context.executor.runTrial(request));
    this.trialCount += 1;
    this.gpuSecondsTotal += measurement.gpuSeconds;
    this.context.options.onTrial?.(request, measurement);
    if (measurement.outcome === 'failed') throw new TrialFailedError(request, measurement);
    this.record({
      layers: request.architecture.layers,
      hiddenChannels: request.architecture.hiddenChannels,
      batchSize: request.batchSize,
      iterations: request.iterations,
      outcome: measurement.outcome,
      peakMiB: measurement.peakMiB,
      stepSeconds: measurement.stepSeconds,
      source: 'run',
    });
    return measurement;
  }

  /** Runs a trial and returns its observation together with feasibility. */
  async probe(request: TrialRequest): Promise<{ observation: TrialObservation; feasible: boolean }> {
    await this.run(request);
    const observation = this.observations[this.observations.length - 1]!;
    return { observation, feasible: this.isFeasible(observation) };
  }

  private record(o: TrialObservation): void {
    this.observations.push(o);
    const key = architectureKey(o);
    let list = this.byArchitecture.get(key);
    if (list === undefined) {
      list = [];
      this.byArchitecture.set(key, list);
    }
    list.push(o);
  }
}
