/**
 * The calibrated strategy: a cost model fitted from every trial so far
 * chooses each next trial, and measured bounds decide.
 *
 * What makes a pick exact:
 * - maxBatch(a) = b only once b was measured feasible and b + 1 either
 *   measured infeasible or proven so by the measured peaks of a (or
 *   b = maxBatchSize). Predictions only choose the probe.
 * - Feasibility is taken to be monotone in batch size (peak memory does
 *   not fall as the batch grows), so one feasible and one infeasible
 *   measurement bound maxBatch from both sides.
 * - Peak memory is also taken to be convex in batch size, so two measured
 *   peaks of a bound its growth per sample from below. Where the peak at b
 *   lies less than that growth below the limit, allowing for the
 *   allocator's rounding, b + 1 cannot fit and is not run
 *   (CostModel.provesCeiling). On fine rounding this saves the failing
 *   trial above most maxima.
 *   NOTE: this proof trusts a measured peak to within the rounding step
 *   plus 20 MiB either way. A runner whose peaks vary more from run to
 *   run, for example with inputs of varying size, can make it claim a
 *   maximum one sample short.
 * - An efficiency candidate is ruled out when its interval of cycle
 *   minutes and throughput cannot beat a candidate proven to fit. A
 *   candidate's maxBatch interval is the measured bounds narrowed by the
 *   memory model's prediction with a safety margin (cost-model.ts). A
 *   step-time model across every measured architecture, with a margin,
 *   bounds the step over that interval (time-model.ts). A measured
 *   candidate's interval also comes from its own steps (step-bounds.ts).
 *   An unmeasured candidate's interval is also predicted from the measured
 *   ones with a margin, and only inside the measured range of layers and
 *   channels (efficiency-model.ts).
 * - The winner is always resolved exactly and verified by a stress trial.
 *
 * Probes towards a maxBatch are chosen to prove it in the fewest expected
 * trials under the cost model's belief (boundary-search.ts), and a probe
 * that likely fits runs the stress iterations so that it can also verify.
 */
import { chooseBoundaryProbe, outcomeProbability, WIDE_BRACKET_UNDERSHOOT_SPREADS, type BoundaryBelief } from './boundary-search.ts';
import { smallestCandidate, type Candidate, type StageCandidates } from './candidates.ts';
import { CostModel } from './cost-model.ts';
import type { CostModelSnapshot } from './cost-model-snapshot.ts';
import { EfficiencyModel, type EfficiencySample } from './efficiency-model.ts';
import type { ResolvedOptimizeOptions } from './options.ts';
import { buildStagePick, type StagePick } from './stage-pick.ts';
import { compareEfficiency, cycleMinutes, efficiencyScore, windowDistance, type EfficiencyScore } from './stage-rules.ts';
import { distanceInterval, stepLowerBound, stepUpperBound, surelyBeats, type EfficiencyInterval, type StepPoint } from './step-bounds.ts';
import { TimeModel } from './time-model.ts';
import { architectureKey, type TrialLedger, type TrialObservation } from './trial-ledger.ts';
import type { Architecture, StageName } from './types.ts';
import { scaledStartBatchSize } from './workload.ts';

/** Iterations of a probe that is not expected to become a recommendation (the rules' minimum). */
const PROBE_ITERATIONS = 3;
/** Largest fraction below a regressed prediction that a first probe aims, so that it likely fits (set on the synthetic twins). */
const REGRESSED_UNDERSHOOT = 0.05;
/** Probability that a fitting probe ends the search above which it runs the stage's stress iterations. */
const FINAL_PROBE_PROBABILITY = 0.5;
/** Probability of an outcome under the belief below which the outcome counts as contradicting it. */
const CONTRADICTION_PROBABILITY = 0.2;
/** Guard against a search that stops making progress on contradictory measurements. */
const MAX_STEPS_PER_STAGE = 2_000;
/** Relative step-time difference between a prior of the same GPU model and this GPU above which the prior is dropped. */
const PRIOR_STEP_TOLERANCE = 0.05;
/** Peak difference, as a fraction of total memory, above which a prior of the same GPU model is dropped. */
const PRIOR_PEAK_TOLERANCE = 0.005;

export interface CalibratedContext {
  ledger: TrialLedger;
  options: ResolvedOptimizeOptions;
  candidates: Record<StageName, StageCandidates>;
  parametersOf: (a: Architecture) => number;
  foreign: CostModelSnapshot[];
}

interface CandidateEstimate {
  candidate: Candidate;
  /** Proven to fit at batch size 1 or more. */
  fits: boolean;
  interval: EfficiencyInterval;
  /** Set once maxBatch is proven and its step time measured. */
  exact: { maxBatch: number; observation: TrialObservation; score: EfficiencyScore } | null;
}

class PriorContradictedError extends Error {}

class CalibratedSearch {
  private cachedModel: { observations: number; model: CostModel } | null = null;
  private cachedTimeModel: { observations: number; model: TimeModel } | null = null;
  /** Per architecture, how many recent predictions a measurement contradicted. */
  private readonly misses = new Map<string, number>();
  /** How many recent probes aimed by a regressed prediction, on any architecture, did not fit. */
  private regressedMisses = 0;

  constructor(private readonly context: CalibratedContext) {}

  private get ledger(): TrialLedger {
    return this.context.ledger;
  }

  private get options(): ResolvedOptimizeOptions {
    return this.context.options;
  }

  /** Returns the cost model, refitted whenever an observation was added or dropped. */
  private get model(): CostModel {
    const count = this.ledger.all().length;
    if (this.cachedModel === null || this.cachedModel.observations !== count) {
      this.cachedModel = { observations: count, model: new CostModel({ ledger: this.ledger, parametersOf: this.context.parametersOf, foreign: this.context.foreign }) };
    }
    return this.cachedModel.model;
  }

  private stepPoints(a: Architecture): StepPoint[] {
    return this.ledger
      .of(a)
      .filter((o) => o.outcome === 'ok' && o.stepSeconds !== null)
      .map((o) => ({ batchSize: o.batchSize, stepSeconds: o.stepSeconds! }));
  }

  /**
   * Runs one trial. With a prior of the same GPU model loaded, a trial whose
   * outcome disagrees with the prior's measurement at the same config drops
   * the prior, and the stage starts over from this run's measurements.
   */
  private async probe(stage: StageName, a: Architecture, batchSize: number, iterations: number, purpose: 'probe' | 'verify'): Promise<{ observation: TrialObservation; feasible: boolean }> {
    const earlier = this.ledger.hasPrior() ? this.ledger.of(a).filter((o) => o.source === 'prior' && o.batchSize === batchSize) : [];
    const result = await this.ledger.probe({ stage, architecture: a, batchSize, iterations, purpose });
    if (earlier.length > 0 && earlier.some((o) => this.contradicts(o, result.observation))) {
      this.ledger.dropPrior();
      throw new PriorContradictedError();
    }
    return result;
  }

  private contradicts(prior: TrialObservation, now: TrialObservation): boolean {
    if (this.ledger.isFeasible(prior) !== this.ledger.isFeasible(now)) return true;
    if (prior.peakMiB !== null && now.peakMiB !== null && Math.abs(prior.peakMiB - now.peakMiB) > PRIOR_PEAK_TOLERANCE * this.options.memoryTotalMiB) return true;
    if (prior.stepSeconds !== null && now.stepSeconds !== null && Math.abs(prior.stepSeconds - now.stepSeconds) > PRIOR_STEP_TOLERANCE * prior.stepSeconds) return true;
    return false;
  }

  /**
   * The proven bracket of maxBatch(a): the ledger's measured bounds, closed
   * at the largest feasible size when its measured peaks prove that one
   * more sample would not fit (CostModel.provesCeiling).
   */
  private bounds(a: Architecture): { lower: number; upper: number } {
    const { lower, upper } = this.ledger.bounds(a);
    if (lower >= 1 && lower < upper && this.model.provesCeiling(a, lower, this.ledger.limitMiB)) return { lower, upper: lower };
    return { lower, upper };
  }

  /**
   * Chooses the next batch size to probe for `a`, or null when maxBatch is
   * proven. With a prediction, the probe minimises the expected trials to
   * prove maxBatch (boundary-search.ts). Without one, the proven bracket is
   * bisected, or the search doubles from the stage's start size.
   */
  private nextProbe(stage: StageName, a: Architecture, feasibleIterations: number): { batchSize: number; finalIfFeasible: number; belief: BoundaryBelief | null; regressed?: boolean } | null {
    const { lower, upper } = this.bounds(a);
    if (upper < 1 || lower === upper) return null;
    const prediction = this.model.predictMaxBatch(a, this.ledger.limitMiB, this.ledger.maxBatchSize);
    if (prediction === undefined) {
      if (upper < this.ledger.maxBatchSize) {
        // With no size proven to fit, batch size 1 settles whether the candidate fits at all, so one
        // that cannot costs one more trial instead of a halving per factor of two.
        if (lower === 0) return { batchSize: 1, finalIfFeasible: 0, belief: null };
        // A wide bracket above a feasible size is split geometrically, so a far-off upper bound costs few probes.
        const split = lower >= 1 && upper + 1 > 4 * lower ? Math.floor(Math.sqrt(lower * (upper + 1))) : lower + Math.ceil((upper - lower) / 2);
        return { batchSize: Math.min(upper, Math.max(lower + 1, split)), finalIfFeasible: 0, belief: null };
      }
      if (lower >= 1) return { batchSize: Math.min(upper, lower * 2), finalIfFeasible: 0, belief: null };
      return { batchSize: Math.min(upper, scaledStartBatchSize(this.options.workload, stage, this.options.memoryTotalMiB)), finalIfFeasible: 0, belief: null };
    }
    let spread = prediction.spread;
    if (prediction.source === 'regressed') {
      // A law not yet measured on this architecture: aim a little low, so that the probe most
      // likely fits and pins the law close to its limit.
      spread = Math.min(prediction.margin / 2, REGRESSED_UNDERSHOOT * prediction.estimate) / WIDE_BRACKET_UNDERSHOOT_SPREADS;
      // A probe that runs out of memory adds no peak, so the regression cannot learn from it. Each
      // regressed probe that did not fit doubles the spread of the next, on any architecture.
      spread *= 2 ** this.regressedMisses;
    }
    // Each prediction a measurement contradicted doubles the spread, so a biased model cannot
    // walk the bracket one batch size at a time.
    spread *= 2 ** (this.misses.get(architectureKey(a)) ?? 0);
    const belief = { estimate: prediction.estimate, spread: Math.max(spread, 0.25) };
    const lowerObservation = lower >= 1 ? this.ledger.feasibleAt(a, lower) : undefined;
    const lowerNeedsVerify = feasibleIterations > PROBE_ITERATIONS && lowerObservation !== undefined && (lowerObservation.source !== 'run' || lowerObservation.iterations < feasibleIterations);
    // A fitting probe at the maximum may prove it from its peak. At `lower`, that proof was
    // already tried whenever a smaller size of `a` had a measured peak, and it failed.
    const ceilingProofChance = this.model.ceilingProofChance(a, belief.estimate);
    const chordBelow = lower >= 1 && this.ledger.of(a).some((o) => o.outcome === 'ok' && o.peakMiB !== null && o.batchSize < lower);
    const lowerProofChance = chordBelow ? ceilingProofChance : 0;
    const probe = chooseBoundaryProbe(lower, upper, belief, { lowerNeedsVerify, upperProven: upper < this.ledger.maxBatchSize, ceilingProofChance, lowerProofChance });
    return probe === null ? null : { ...probe, belief, regressed: prediction.source === 'regressed' };
  }

  /** Takes one step towards proving maxBatch(a); returns false when it is already proven. */
  private async stepTowardsMaxBatch(stage: StageName, a: Architecture, feasibleIterations: number): Promise<boolean> {
    const next = this.nextProbe(stage, a, feasibleIterations);
    if (next === null) return false;
    // A probe that likely ends the search runs the stress iterations, so that it can verify the pick as well.
    // Production picks the first candidate that fits, so there any guided probe that fits may become the pick.
    const likelyFeasible = next.belief !== null && outcomeProbability(next.belief, next.batchSize, true) >= 0.5;
    const likelyFinal = next.finalIfFeasible >= FINAL_PROBE_PROBABILITY || likelyFeasible || (stage === 'production' && next.belief !== null);
    const iterations = likelyFinal ? Math.max(PROBE_ITERATIONS, feasibleIterations) : PROBE_ITERATIONS;
    const { feasible } = await this.probe(stage, a, next.batchSize, iterations, 'probe');
    if (next.belief !== null) {
      const key = architectureKey(a);
      const likelihood = outcomeProbability(next.belief, next.batchSize, feasible);
      const misses = this.misses.get(key) ?? 0;
      this.misses.set(key, likelihood < CONTRADICTION_PROBABILITY ? misses + 1 : Math.max(0, misses - 1));
      // A regressed prediction's probe aims where it most likely fits, so not fitting counts against it.
      if (next.regressed === true) this.regressedMisses = feasible ? Math.max(0, this.regressedMisses - 1) : this.regressedMisses + 1;
    }
    return true;
  }

  /** Proves maxBatch(a); 0 when `a` does not fit at batch size 1. */
  private async resolveMaxBatch(stage: StageName, a: Architecture, feasibleIterations: number): Promise<number> {
    for (let step = 0; step < MAX_STEPS_PER_STAGE; step++) {
      if (!(await this.stepTowardsMaxBatch(stage, a, feasibleIterations))) break;
    }
    const { lower, upper } = this.bounds(a);
    return upper < 1 ? 0 : lower;
  }

  /**
   * Returns a feasible observation of this run at (a, batchSize) with at
   * least `iterations`, running a verify trial when none exists. Null when
   * the verify trial turns out infeasible (the bounds then changed).
   */
  private async verify(stage: StageName, a: Architecture, batchSize: number, iterations: number): Promise<TrialObservation | null> {
    const existing = this.ledger.of(a).find((o) => o.source === 'run' && o.batchSize === batchSize && o.iterations >= iterations && this.ledger.isFeasible(o));
    if (existing !== undefined) return existing;
    const { observation, feasible } = await this.probe(stage, a, batchSize, iterations, 'verify');
    return feasible ? observation : null;
  }

  /**
   * Iterations for production's probes of `a` that may prove its maximum:
   * the most stress iterations of production and of any later efficiency
   * stage that has `a` as a candidate. Such a stage often picks the same
   * maximum, and then the probe verifies it there too.
   */
  private laterStress(a: Architecture, stress: number): number {
    const key = architectureKey(a);
    let iterations = stress;
    for (const stage of ['validation', 'prototyping'] as const) {
      if (!this.options.stages.includes(stage)) continue;
      if (this.context.candidates[stage].candidates.some((c) => architectureKey(c.architecture) === key)) iterations = Math.max(iterations, this.options.workload.stressIterations[stage]);
    }
    return iterations;
  }

  async production(): Promise<StagePick | null> {
    const set = this.context.candidates.production;
    const stress = this.options.workload.stressIterations.production;
    for (const candidate of set.candidates) {
      const a = candidate.architecture;
      const iterations = this.laterStress(a, stress);
      const maxBatch = await this.resolveMaxBatch('production', a, iterations);
      if (maxBatch < 1) continue;
      const verified = await this.verify('production', a, maxBatch, iterations);
      if (verified === null) return this.production();
      return buildStagePick('production', set, candidate, verified, this.options.workload.cycleBatches, null);
    }
    return null;
  }

  async smokeTest(): Promise<StagePick | null> {
    const set = this.context.candidates.smoke_test;
    const candidate = smallestCandidate(set.candidates);
    if (candidate === undefined) return null;
    const verified = await this.verify('smoke_test', candidate.architecture, 1, this.options.workload.stressIterations.smoke_test);
    if (verified === null) return null;
    return buildStagePick('smoke_test', set, candidate, verified, this.options.workload.cycleBatches, null);
  }

  private estimate(candidate: Candidate, window: readonly [number, number], predicted?: EfficiencyModel): CandidateEstimate | null {
    const a = candidate.architecture;
    const { lower, upper } = this.bounds(a);
    if (upper < 1) return null;
    const cycleBatches = this.options.workload.cycleBatches;
    const points = this.stepPoints(a);

    if (lower === upper) {
      const observation = this.ledger.feasibleAt(a, lower);
      if (observation !== undefined && observation.stepSeconds !== null) {
        const score = efficiencyScore({ ...candidate, maxBatch: lower, stepSeconds: observation.stepSeconds, peakMiB: observation.peakMiB }, cycleBatches, window);
        const interval = { cycleLow: score.cycleMinutes, cycleHigh: score.cycleMinutes, throughputLow: score.throughput, throughputHigh: score.throughput };
        return { candidate, fits: true, interval, exact: { maxBatch: lower, observation, score } };
      }
    }

    let low = Math.max(lower, 1);
    // The bound from measured peaks relies on the memory model's slope, so, like a prediction, it
    // narrows the interval for ruling candidates out but never proves maxBatch. A measurement
    // above it shows it wrong, and it is ignored.
    const peakBound = this.model.maxBatchUpperBound(a, this.ledger.limitMiB);
    let high = peakBound >= lower ? Math.min(upper, peakBound) : upper;
    const prediction = this.model.predictMaxBatch(a, this.ledger.limitMiB, this.ledger.maxBatchSize);
    if (prediction !== undefined) {
      const predictedLow = Math.max(low, prediction.estimate - prediction.margin);
      const predictedHigh = Math.min(high, prediction.estimate + prediction.margin);
      if (predictedLow <= predictedHigh) {
        low = predictedLow;
        high = predictedHigh;
      }
    }

    // Not measured yet: predictions from the stage's measured candidates (efficiency-model.ts) and
    // from the step times of every measured architecture at the predicted maxBatch interval
    // (time-model.ts). Both claim to hold, so the candidate gets their intersection.
    // NOTE: a candidate ruled out by these predictions is never measured. Their margins (three
    // held-out RMS errors, at least a factor of 1.28) and predicting only inside the measured
    // architectures keep the pick exact on the twins tested, but they are not a proof. Measured
    // bounds would need about two trials per candidate, more than the whole budget.
    if (points.length === 0) {
      const forecast = intersect(predicted?.predict(a), prediction === undefined ? undefined : this.timeForecast(a, low, high));
      if (forecast !== undefined) return { candidate, fits: lower >= 1, interval: forecast, exact: null };
    }
    const stepLowAtHigh = stepLowerBound(points, high);
    const stepHighAtLow = stepUpperBound(points, low);
    const interval: EfficiencyInterval = {
      cycleLow: cycleMinutes(cycleBatches, stepLowerBound(points, low)),
      cycleHigh: cycleMinutes(cycleBatches, stepUpperBound(points, high)),
      throughputLow: low / stepHighAtLow,
      throughputHigh: stepLowAtHigh > 0 ? high / stepLowAtHigh : Number.POSITIVE_INFINITY,
    };
    // The time model bounds a measured candidate too. Where the two intervals do not overlap, the
    // measured bounds alone count.
    if (prediction !== undefined) {
      const both = intersect(interval, this.timeForecast(a, low, high));
      if (both !== undefined) return { candidate, fits: lower >= 1, interval: both, exact: null };
    }
    return { candidate, fits: lower >= 1, interval, exact: null };
  }

  private get timeModel(): TimeModel {
    const count = this.ledger.all().length;
    if (this.cachedTimeModel === null || this.cachedTimeModel.observations !== count) {
      this.cachedTimeModel = { observations: count, model: new TimeModel(this.ledger.all(), this.context.parametersOf) };
    }
    return this.cachedTimeModel.model;
  }

  /** Predicts a candidate's interval from the time model alone, for a maxBatch somewhere in [low, high]. */
  private timeForecast(a: Architecture, low: number, high: number): EfficiencyInterval | undefined {
    const atLow = this.timeModel.predictStep(a, low);
    const atHigh = this.timeModel.predictStep(a, high);
    if (atLow === undefined || atHigh === undefined) return undefined;
    const cycleBatches = this.options.workload.cycleBatches;
    return {
      cycleLow: cycleMinutes(cycleBatches, atLow[0]),
      cycleHigh: cycleMinutes(cycleBatches, atHigh[2]),
      throughputLow: low / atLow[2],
      throughputHigh: high / atHigh[0],
    };
  }

  async efficiency(stage: 'validation' | 'prototyping'): Promise<StagePick | null> {
    const set = this.context.candidates[stage];
    const window = this.options.windows[stage];
    const stress = this.options.workload.stressIterations[stage];

    for (let step = 0; step < MAX_STEPS_PER_STAGE; step++) {
      const measured = set.candidates.map((c) => this.estimate(c, window)).filter((e): e is CandidateEstimate => e !== null);
      const predicted = new EfficiencyModel(measured.filter((e) => this.stepPoints(e.candidate.architecture).length > 0).map((e) => midpoint(e)));
      const estimates = set.candidates.map((c) => this.estimate(c, window, predicted)).filter((e): e is CandidateEstimate => e !== null);
      const proven = estimates.filter((e) => e.fits);
      const alive = estimates.filter((e) => !proven.some((w) => w !== e && surelyBeats(w.interval, e.interval, window)));
      if (alive.length === 0) return null;

      if (alive.every((e) => e.exact !== null)) {
        const best = alive.reduce((x, y) => (compareEfficiency(y.exact!.score, x.exact!.score) < 0 ? y : x));
        const verified = await this.verify(stage, best.candidate.architecture, best.exact!.maxBatch, stress);
        if (verified === null) continue;
        return buildStagePick(stage, set, best.candidate, verified, this.options.workload.cycleBatches, best.exact!.score);
      }

      // Settle the candidate with the best optimistic outcome: it is either the winner or
      // the measurement that rules others out. Unmeasured candidates come first.
      const open = alive.filter((e) => e.exact === null);
      const target = open.reduce((x, y) => (optimisticOrder(y, x, window) < 0 ? y : x));
      const a = target.candidate.architecture;
      const screened = this.stepPoints(a).length > 0;
      // A first probe of the candidate whose predicted centre beats every other runs the stress
      // iterations too, because it likely becomes the pick and can then verify it.
      const bounded = Number.isFinite(target.interval.cycleHigh) && Number.isFinite(target.interval.throughputHigh);
      const likelyWinner = bounded && alive.every((e) => e === target || centralOrder(target, e, window) <= 0);
      const progressed = await this.stepTowardsMaxBatch(stage, a, screened || likelyWinner ? stress : PROBE_ITERATIONS);
      if (!progressed) {
        // maxBatch is proven but its step time is unknown: measure it with a verify trial.
        const { lower } = this.bounds(a);
        if ((await this.verify(stage, a, lower, stress))?.stepSeconds == null) return null;
      }
    }
    return null;
  }

  async run(): Promise<Record<StageName, StagePick | null>> {
    // A prior of the same GPU model that a trial contradicts is dropped, and every stage is
    // decided again from this run's own measurements, which are kept.
    for (;;) {
      try {
        return await this.runStages();
      } catch (error) {
        if (!(error instanceof PriorContradictedError)) throw error;
        this.misses.clear();
        this.regressedMisses = 0;
      }
    }
  }

  private async runStages(): Promise<Record<StageName, StagePick | null>> {
    const picks: Record<StageName, StagePick | null> = { production: null, validation: null, prototyping: null, smoke_test: null };
    const wanted = new Set(this.options.stages);
    // The smoke test's single trial first, so that the memory regression has a second, small
    // architecture as soon as production's first probe lands. Production next: its large
    // architectures calibrate the memory model for the rest.
    if (wanted.has('smoke_test')) picks.smoke_test = await this.smokeTest();
    if (wanted.has('production')) picks.production = await this.production();
    if (wanted.has('validation')) picks.validation = await this.efficiency('validation');
    if (wanted.has('prototyping')) picks.prototyping = await this.efficiency('prototyping');
    return picks;
  }
}

/** Intersects two intervals that each claim to hold; undefined when neither exists or they contradict each other. */
function intersect(a: EfficiencyInterval | undefined, b: EfficiencyInterval | undefined): EfficiencyInterval | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  const both = {
    cycleLow: Math.max(a.cycleLow, b.cycleLow),
    cycleHigh: Math.min(a.cycleHigh, b.cycleHigh),
    throughputLow: Math.max(a.throughputLow, b.throughputLow),
    throughputHigh: Math.min(a.throughputHigh, b.throughputHigh),
  };
  return both.cycleLow <= both.cycleHigh && both.throughputLow <= both.throughputHigh ? both : undefined;
}

/** Collapses a measured candidate's interval to its geometric midpoint, as a sample for the efficiency model. */
function midpoint(e: CandidateEstimate): EfficiencySample {
  const i = e.interval;
  return {
    architecture: e.candidate.architecture,
    cycleMinutes: Math.sqrt(i.cycleLow * i.cycleHigh),
    throughput: Math.sqrt(i.throughputLow * (Number.isFinite(i.throughputHigh) ? i.throughputHigh : i.throughputLow)),
  };
}

/** Orders two candidates by the centres of their intervals under the efficiency rule; an unbounded `b` always comes first. */
function centralOrder(a: CandidateEstimate, b: CandidateEstimate, window: readonly [number, number]): number {
  const centre = (e: CandidateEstimate) => {
    const cycle = Math.sqrt(e.interval.cycleLow * e.interval.cycleHigh);
    const throughput = Math.sqrt(e.interval.throughputLow * e.interval.throughputHigh);
    return { cycleMinutes: cycle, distance: windowDistance(cycle, window), throughput, parameters: e.candidate.parameters };
  };
  if (!Number.isFinite(b.interval.cycleHigh) || !Number.isFinite(b.interval.throughputHigh)) return 1;
  return compareEfficiency(centre(a), centre(b));
}

/** Orders by the best each candidate could still turn out: nearer the window, then faster, then fewer parameters. */
function optimisticOrder(a: CandidateEstimate, b: CandidateEstimate, window: readonly [number, number]): number {
  const [aDistance] = distanceInterval(a.interval, window);
  const [bDistance] = distanceInterval(b.interval, window);
  if (aDistance !== bDistance) return aDistance - bDistance;
  if (a.interval.throughputHigh !== b.interval.throughputHigh) return b.interval.throughputHigh - a.interval.throughputHigh;
  return a.candidate.parameters - b.candidate.parameters;
}

/** Runs the calibrated search for the requested stages. */
export async function runCalibratedStrategy(context: CalibratedContext): Promise<Record<StageName, StagePick | null>> {
  return new CalibratedSearch(context).run();
}
