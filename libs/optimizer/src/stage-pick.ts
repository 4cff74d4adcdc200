import type { Candidate, StageCandidates } from './candidates.ts';
import type { EfficiencyScore } from './stage-rules.ts';
import type { TrialObservation } from './trial-ledger.ts';
import type { StageName } from './types.ts';

/** A stage's recommendation. */
export interface StagePick {
  stage: StageName;
  layers: number;
  hiddenChannels: number;
  batchSize: number;
  parameters: number;
  /** Device peak in MiB measured by the verifying trial; null when it reported none. */
  peakMiB: number | null;
  stepSeconds: number | null;
  /** Cycle minutes at the recommended batch size; null without a step time. */
  cycleMinutes: number | null;
  /** Whether the cycle lies in the stage's window; null for stages without one. */
  inWindow: boolean | null;
  /** The space the candidates came from. */
  candidatesFrom: StageName;
  /** Iterations of the trial that verified this exact config. */
  verifyTrialIterations: number;
}

export function buildStagePick(
  stage: StageName,
  set: StageCandidates,
  candidate: Candidate,
  verified: TrialObservation,
  cycleBatches: number,
  score: EfficiencyScore | null,
): StagePick {
  const step = verified.stepSeconds;
  return {
    stage,
    layers: candidate.architecture.layers,
    hiddenChannels: candidate.architecture.hiddenChannels,
    batchSize: verified.batchSize,
    parameters: candidate.parameters,
    peakMiB: verified.peakMiB,
    stepSeconds: step,
    cycleMinutes: score?.cycleMinutes ?? (step === null ? null : (cycleBatches * step) / 60),
    inWindow: score === null ? null : score.distance === 0,
    candidatesFrom: set.from,
    verifyTrialIterations: verified.iterations,
  };
}
