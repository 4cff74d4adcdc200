/**
 * The original tool's search, ported: no model and no memory between
 * probes. It is kept as the baseline the calibrated strategy is measured
 * against, and it returns the same picks as the exhaustive rules.
 *
 * Changes from the literal original, so that it obeys the rules:
 * - a probe "fails" when it is infeasible under the headroom rule (OOM, or
 *   a peak above total x (1 - headroom)), not only on out-of-memory;
 * - probes never exceed maxBatchSize, and a feasible probe at maxBatchSize
 *   ends the doubling (then a stress probe there verifies it);
 * - the efficiency stages evaluate every candidate in full instead of 20
 *   Bayesian-optimisation samples, and rank them with the stage rules.
 */
import { smallestCandidate, type Candidate, type StageCandidates } from './candidates.ts';
import type { ResolvedOptimizeOptions } from './options.ts';
import { buildStagePick, type StagePick } from './stage-pick.ts';
import { pickEfficient, type ResolvedCandidate } from './stage-rules.ts';
import type { TrialLedger, TrialObservation } from './trial-ledger.ts';
import type { StageName } from './types.ts';
import { scaledStartBatchSize } from './workload.ts';

/** The original's iterations for the batch-size-1 check and the doubling probes. */
const LEGACY_PROBE_ITERATIONS = 5;

interface LegacyContext {
  ledger: TrialLedger;
  options: ResolvedOptimizeOptions;
  candidates: Record<StageName, StageCandidates>;
}

interface MaxBatchResult {
  maxBatch: number;
  /** The stress-iteration probe at maxBatch; its timing is the step time. */
  verified: TrialObservation;
}

async function fitsAtOne(context: LegacyContext, stage: StageName, candidate: Candidate): Promise<boolean> {
  const { feasible } = await context.ledger.probe({ stage, architecture: candidate.architecture, batchSize: 1, iterations: LEGACY_PROBE_ITERATIONS, purpose: 'probe' });
  return feasible;
}

/** Doubles from the scaled start size until a probe fails, then binary searches [1, ceiling - 1]. */
async function searchMaxBatch(context: LegacyContext, stage: StageName, candidate: Candidate): Promise<MaxBatchResult | null> {
  const { ledger, options } = context;
  const architecture = candidate.architecture;
  const stress = options.workload.stressIterations[stage];
  const cap = options.maxBatchSize;

  let size = Math.min(cap, scaledStartBatchSize(options.workload, stage, options.memoryTotalMiB));
  let ceiling = cap + 1;
  for (;;) {
    const { feasible } = await ledger.probe({ stage, architecture, batchSize: size, iterations: LEGACY_PROBE_ITERATIONS, purpose: 'probe' });
    if (!feasible) {
      ceiling = size;
      break;
    }
    if (size === cap) break;
    size = Math.min(cap, size * 2);
  }

  if (ceiling === cap + 1) {
    // Every doubling fitted up to the cap: one stress probe at the cap verifies it.
    const top = await ledger.probe({ stage, architecture, batchSize: cap, iterations: stress, purpose: 'verify' });
    if (top.feasible) return { maxBatch: cap, verified: top.observation };
    ceiling = cap;
  }

  let low = 1;
  let high = ceiling - 1;
  let best: MaxBatchResult | null = null;
  while (low <= high) {
    const middle = Math.floor((low + high) / 2);
    const { observation, feasible } = await ledger.probe({ stage, architecture, batchSize: middle, iterations: stress, purpose: 'probe' });
    if (feasible) {
      best = { maxBatch: middle, verified: observation };
      low = middle + 1;
    } else {
      high = middle - 1;
    }
  }
  return best;
}

async function production(context: LegacyContext): Promise<StagePick | null> {
  const set = context.candidates.production;
  for (const candidate of set.candidates) {
    if (!(await fitsAtOne(context, 'production', candidate))) continue;
    const found = await searchMaxBatch(context, 'production', candidate);
    if (found === null) return null;
    return buildStagePick('production', set, candidate, found.verified, context.options.workload.cycleBatches, null);
  }
  return null;
}

async function efficiency(context: LegacyContext, stage: 'validation' | 'prototyping'): Promise<StagePick | null> {
  const set = context.candidates[stage];
  const resolved: (ResolvedCandidate & { verified: TrialObservation })[] = [];
  for (const candidate of set.candidates) {
    if (!(await fitsAtOne(context, stage, candidate))) continue;
    const found = await searchMaxBatch(context, stage, candidate);
    if (found === null || found.verified.stepSeconds === null) continue;
    resolved.push({ ...candidate, maxBatch: found.maxBatch, stepSeconds: found.verified.stepSeconds, peakMiB: found.verified.peakMiB, verified: found.verified });
  }
  const cycleBatches = context.options.workload.cycleBatches;
  const best = pickEfficient(resolved, cycleBatches, context.options.windows[stage]);
  if (best === null) return null;
  const winner = resolved.find((r) => r === best.candidate)!;
  return buildStagePick(stage, set, winner, winner.verified, cycleBatches, best.score);
}

async function smokeTest(context: LegacyContext): Promise<StagePick | null> {
  const set = context.candidates.smoke_test;
  const candidate = smallestCandidate(set.candidates);
  if (candidate === undefined) return null;
  const iterations = context.options.workload.stressIterations.smoke_test;
  const { observation, feasible } = await context.ledger.probe({ stage: 'smoke_test', architecture: candidate.architecture, batchSize: 1, iterations, purpose: 'verify' });
  if (!feasible) return null;
  return buildStagePick('smoke_test', set, candidate, observation, context.options.workload.cycleBatches, null);
}

/** Runs the legacy search for the requested stages, in the original's order. */
export async function runLegacyStrategy(context: LegacyContext): Promise<Record<StageName, StagePick | null>> {
  const picks: Record<StageName, StagePick | null> = { production: null, validation: null, prototyping: null, smoke_test: null };
  const wanted = new Set(context.options.stages);
  if (wanted.has('production')) picks.production = await production(context);
  if (wanted.has('validation')) picks.validation = await efficiency(context, 'validation');
  if (wanted.has('prototyping')) picks.prototyping = await efficiency(context, 'prototyping');
  if (wanted.has('smoke_test')) picks.smoke_test = await smokeTest(context);
  return picks;
}
