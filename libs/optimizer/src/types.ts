/** The four stages of work, from the largest model space to the smallest. */
export type StageName = 'production' | 'validation' | 'prototyping' | 'smoke_test';

export const STAGE_NAMES: readonly StageName[] = ['production', 'validation', 'prototyping', 'smoke_test'];

export interface Architecture {
  layers: number;
  hiddenChannels: number;
}

/** One trial the optimizer asks for. */
export interface TrialRequest {
  stage: StageName;
  architecture: Architecture;
  batchSize: number;
  iterations: number;
  /** `verify` marks the trial that confirms a stage's recommended config. */
  purpose: 'probe' | 'verify';
}

/** What a trial measured; the optimizer decides from these alone. */
export interface TrialMeasurement {
  /** `failed` is any failure other than GPU out-of-memory; it stops the run for that GPU. */
  outcome: 'ok' | 'oom' | 'failed';
  /** Device peak memory in MiB (CUDA context included); null when unknown or OOM before measuring. */
  peakMiB: number | null;
  /** Mean seconds per training step; null when the trial did not finish a step. */
  stepSeconds: number | null;
  /** GPU time the trial occupied, in seconds. */
  gpuSeconds: number;
  failureKind?: string;
  failureMessage?: string;
}

/**
 * The optimizer's only way to reach a GPU. The coordinator implements it by
 * sending trials to agents; `hwopt simulate` implements it over a twin.
 */
export interface TrialExecutor {
  /** Trainable parameter counts, in the order of `architectures`, computed without a GPU. */
  parameterCounts(architectures: Architecture[]): Promise<number[]>;
  runTrial(request: TrialRequest): Promise<TrialMeasurement>;
}
