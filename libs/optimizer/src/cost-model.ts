/**
 * The calibrated cost model: device peak memory and step time as functions
 * of architecture and batch size, fitted from observations only.
 *
 * Memory: one regression across every measured point of every
 * architecture, peak = intercept(GPU) + k1 P + k2 LC + b (p0 + p1 LC + p2 P)
 * [+ b^2 (q0 + q1 LC)], where P is millions of parameters and LC is
 * layers x channels / 1000. Weights and optimiser state grow with P and
 * activations per sample with LC. Points of other GPU models enter with
 * their own intercept column, so their laws transfer and only the CUDA
 * context and allocator reserve (the intercept) is learnt anew. An
 * out-of-memory trial whose peak the regression puts below the device
 * memory joins it at the device memory, the least peak it can have had. An
 * architecture with two or more measured peaks on this GPU uses its own
 * line; with one, the regression shifted through that point.
 *
 * Time: a line per architecture from its own measured steps. Step time
 * laws do not carry over across GPUs or architectures well enough to rule
 * anything out, so they are not regressed across either.
 */
import { dot, leastSquares } from './least-squares.ts';
import { BATCH_UNIT, scaledFeatures } from './scaled-features.ts';
import type { CostModelKey, CostModelSnapshot, CrossArchitectureMemoryModel, MemoryLaw, TimeLaw } from './cost-model-snapshot.ts';
import { COST_MODEL_VERSION, MAX_TRANSFERRED_SNAPSHOTS } from './cost-model-snapshot.ts';
import { architectureKey, type TrialLedger, type TrialObservation } from './trial-ledger.ts';
import type { Architecture } from './types.ts';

interface MemoryPoint {
  architecture: Architecture;
  batchSize: number;
  peakMiB: number;
  /** 0 for this GPU, 1.. for each transferred GPU model. */
  group: number;
}

/** Origin of a prediction, from the most to the least certain. */
export type LawSource = 'measured' | 'pinned' | 'regressed' | 'assumed';

export interface MemoryPrediction {
  law: MemoryLaw;
  source: LawSource;
}

export interface MaxBatchPrediction {
  estimate: number;
  /** Half-width of the interval the true maximum is expected in, in samples. */
  margin: number;
  /**
   * Estimated standard deviation of the maximum, in samples: the typical
   * error, where `margin` is a bound for ruling candidates out.
   */
  spread: number;
  source: LawSource;
}

type FeatureName = 'P' | 'LC' | 'b' | 'b*LC' | 'b*P' | 'b^2' | 'b^2*LC';

/** Feature sets from the richest to the simplest, with the distinct architectures each needs. */
const FEATURE_LADDER: { features: FeatureName[]; minArchitectures: number }[] = [
  { features: ['P', 'LC', 'b', 'b*LC', 'b*P', 'b^2', 'b^2*LC'], minArchitectures: 5 },
  { features: ['P', 'LC', 'b', 'b*LC', 'b*P', 'b^2*LC'], minArchitectures: 3 },
  { features: ['P', 'LC', 'b', 'b*LC', 'b*P'], minArchitectures: 3 },
  { features: ['P', 'b', 'b*LC', 'b^2*LC'], minArchitectures: 2 },
  { features: ['P', 'b', 'b*LC'], minArchitectures: 2 },
  // One architecture cannot separate a per-sample constant from a part growing with layers x
  // channels. Keeping its per-sample memory as it is overshoots far less on the smaller
  // architectures the later stages probe than scaling it by layers x channels did.
  { features: ['b'], minArchitectures: 1 },
];

function featureValue(name: FeatureName, a: Architecture, parameters: number, batchSize: number): number {
  const { p, lc, b } = scaledFeatures(a, parameters, batchSize);
  switch (name) {
    case 'P': return p;
    case 'LC': return lc;
    case 'b': return b;
    case 'b*LC': return b * lc;
    case 'b*P': return b * p;
    case 'b^2': return b * b;
    case 'b^2*LC': return b * b * lc;
  }
}

interface GlobalMemoryFit {
  features: FeatureName[];
  groups: number[];
  coefficients: number[];
  rmsResidualMiB: number;
  points: number;
  /** RMS error predicting a held-out architecture's points, in MiB; Infinity with too few architectures. */
  heldOutRmsMiB: number;
  /** Largest relative error of a held-out architecture's per-sample slope; Infinity with too few. */
  heldOutSlopeError: number;
}

export interface CostModelInput {
  ledger: TrialLedger;
  parametersOf: (a: Architecture) => number;
  /** Snapshots of other GPU models whose memory laws transfer. */
  foreign: CostModelSnapshot[];
}

export class CostModel {
  private readonly current: MemoryPoint[] = [];
  private readonly transferred: MemoryPoint[] = [];
  /** Out-of-memory trials of this GPU, at the device memory as the least peak they could have had. */
  private readonly censored: MemoryPoint[] = [];
  private readonly global: GlobalMemoryFit | null;
  private readonly ownLaws = new Map<string, MemoryLaw>();
  private readonly timeLaws = new Map<string, TimeLaw>();
  private granularity: number | undefined;

  constructor(private readonly input: CostModelInput) {
    for (const o of input.ledger.all()) {
      if (o.outcome === 'ok' && o.peakMiB !== null) this.current.push({ architecture: o, batchSize: o.batchSize, peakMiB: o.peakMiB, group: 0 });
      if (o.outcome === 'oom' && o.peakMiB === null) this.censored.push({ architecture: o, batchSize: o.batchSize, peakMiB: input.ledger.memoryTotalMiB, group: 0 });
    }
    for (const [i, snapshot] of input.foreign.slice(0, MAX_TRANSFERRED_SNAPSHOTS).entries()) {
      for (const o of snapshot.observations) {
        if (o.outcome === 'ok' && o.peakMiB !== null) this.transferred.push({ architecture: o, batchSize: o.batchSize, peakMiB: o.peakMiB, group: i + 1 });
      }
    }
    this.global = this.fitGlobal();
    this.fitOwnLaws();
    this.fitTimeLaws(input.ledger.all());
  }

  private parameters(a: Architecture): number {
    const p = this.input.parametersOf(a);
    return Number.isFinite(p) ? p : 0;
  }

  private row(fit: { features: FeatureName[]; groups: number[] }, point: Omit<MemoryPoint, 'peakMiB'>): number[] {
    const groupColumns = fit.groups.map((g) => (g === point.group ? 1 : 0));
    const parameters = this.parameters(point.architecture);
    return [...groupColumns, ...fit.features.map((f) => featureValue(f, point.architecture, parameters, point.batchSize))];
  }

  private solve(features: FeatureName[], groups: number[], points: MemoryPoint[], censored: MemoryPoint[] = []): number[] | null {
    const fit = { features, groups };
    // A tiny ridge keeps near-collinear feature sets solvable; it is far below any real coefficient's scale.
    const fitPoints = (all: MemoryPoint[]) => leastSquares(all.map((p) => this.row(fit, p)), all.map((p) => p.peakMiB), 1e-9);
    let coefficients = fitPoints(points);
    // An out-of-memory trial only shows that its peak exceeded the device memory. Where the fit
    // predicts less, the trial joins the fit at the device memory, the least peak it could have
    // had, and the fit is repeated until no such trial is left out.
    const active: MemoryPoint[] = [];
    for (let round = 0; round < CENSORED_FIT_ROUNDS && coefficients !== null; round++) {
      const violated = censored.filter((p) => !active.includes(p) && dot(this.row(fit, p), coefficients!) < p.peakMiB);
      if (violated.length === 0) break;
      active.push(...violated);
      coefficients = fitPoints([...points, ...active]);
    }
    return coefficients;
  }

  /**
   * Fits each feature set the data supports and keeps the one with the
   * smallest leave-one-architecture-out error on this GPU's points, so that
   * a rich set cannot win by overfitting a handful of measurements. The
   * held-out errors also size the prediction margins.
   */
  private fitGlobal(): GlobalMemoryFit | null {
    const points = [...this.current, ...this.transferred];
    const architectures = new Set(points.map((p) => architectureKey(p.architecture))).size;
    const groups = [...new Set(points.map((p) => p.group))].sort((a, b) => a - b);
    // Held out in turn: each architecture's points on each GPU model, so a transferred prior validates the fit from the start.
    const heldOut = [...new Set(points.map((p) => `${p.group}:${architectureKey(p.architecture)}`))];
    let best: GlobalMemoryFit | null = null;
    // From the simplest set up: a richer one must beat it on held-out error, not merely tie.
    for (const step of [...FEATURE_LADDER].reverse()) {
      const columns = groups.length + step.features.length;
      if (architectures < step.minArchitectures || points.length < columns + 2) continue;
      const coefficients = this.solve(step.features, groups, points, this.censored);
      if (coefficients === null) continue;
      const fit = { features: step.features, groups };
      const residuals = points.map((p) => p.peakMiB - dot(this.row(fit, p), coefficients));
      const rms = Math.sqrt(residuals.reduce((s, r) => s + r * r, 0) / points.length);
      const validation = this.leaveOneOut(step.features, groups, points, heldOut);
      const candidate: GlobalMemoryFit = { ...fit, coefficients, rmsResidualMiB: rms, points: points.length, ...validation };
      if (best === null || candidate.heldOutRmsMiB < best.heldOutRmsMiB) best = candidate;
    }
    return best;
  }

  /** Refits without each architecture (per GPU model) in turn and measures how well its points are predicted. */
  private leaveOneOut(features: FeatureName[], groups: number[], points: MemoryPoint[], heldOut: string[]): { heldOutRmsMiB: number; heldOutSlopeError: number } {
    let squared = 0;
    let count = 0;
    let slopeError = 0;
    let slopeCount = 0;
    for (const key of heldOut) {
      const inHeldOut = (p: MemoryPoint) => `${p.group}:${architectureKey(p.architecture)}` === key;
      const rest = points.filter((p) => !inHeldOut(p));
      const own = points.filter(inHeldOut);
      if (!groups.every((g) => rest.some((p) => p.group === g))) continue;
      const coefficients = this.solve(features, groups, rest, this.censored.filter((p) => !inHeldOut(p)));
      if (coefficients === null) continue;
      const fit = { features, groups };
      for (const p of own) {
        const r = p.peakMiB - dot(this.row(fit, p), coefficients);
        squared += r * r;
        count += 1;
      }
      const ownLaw = this.fitArchitecture(own);
      if (ownLaw !== undefined && own.length >= 2) {
        const b = own.reduce((s, p) => s + p.batchSize, 0) / own.length;
        const predicted = (dot(this.row(fit, { ...own[0]!, batchSize: b + 1 }), coefficients) - dot(this.row(fit, { ...own[0]!, batchSize: b }), coefficients));
        const actual = ownLaw.perSampleMiB + ownLaw.perSampleSquaredMiB * (2 * b + 1);
        // Rounding of g MiB leaves a slope measured across `span` samples uncertain by g / span, so
        // only the part of the difference beyond that counts against the regression.
        const batchSizes = own.map((p) => p.batchSize);
        const span = Math.max(1, Math.max(...batchSizes) - Math.min(...batchSizes));
        const measurementError = this.granularityEstimateMiB() / span;
        slopeError = Math.max(slopeError, Math.max(0, Math.abs(predicted - actual) - measurementError) / Math.max(actual, 1e-9));
        slopeCount += 1;
      }
    }
    // Too few held-out points to judge: report an error large enough that predictions narrow nothing.
    return {
      heldOutRmsMiB: count >= 2 ? Math.sqrt(squared / count) : Number.POSITIVE_INFINITY,
      heldOutSlopeError: heldOutSlopeErrorOf(slopeCount, slopeError),
    };
  }

  /** Evaluates the regression's law for `a` on this GPU, or on the average transferred GPU before this one has a point. */
  private regressedLaw(a: Architecture): MemoryLaw | undefined {
    const fit = this.global;
    if (fit === null) return undefined;
    const parameters = this.parameters(a);
    let intercept = 0;
    const hasCurrent = fit.groups.includes(0);
    const groupCount = fit.groups.length;
    for (const [i, g] of fit.groups.entries()) {
      if (hasCurrent ? g === 0 : true) intercept += fit.coefficients[i]! / (hasCurrent ? 1 : groupCount);
    }
    let perSample = 0;
    let squared = 0;
    for (const [j, name] of fit.features.entries()) {
      const c = fit.coefficients[groupCount + j]!;
      // Each feature is linear in b^k for k = 0, 1 or 2; evaluate its factor at b = BATCH_UNIT.
      const atUnit = featureValue(name, a, parameters, BATCH_UNIT);
      if (name === 'P' || name === 'LC') intercept += c * atUnit;
      else if (name === 'b^2' || name === 'b^2*LC') squared += (c * atUnit) / (BATCH_UNIT * BATCH_UNIT);
      else perSample += (c * atUnit) / BATCH_UNIT;
    }
    const law: MemoryLaw = { layers: a.layers, hiddenChannels: a.hiddenChannels, interceptMiB: intercept, perSampleMiB: perSample, perSampleSquaredMiB: Math.max(0, squared), points: 0 };
    // An architecture measured only on other GPU models keeps its own deviation from the regression there.
    const foreign = this.transferred.filter((p) => architectureKey(p.architecture) === architectureKey(a));
    if (!hasCurrent || foreign.length === 0) return law;
    const deviation = foreign.reduce((s, p) => s + (p.peakMiB - dot(this.row(fit, p), fit.coefficients)), 0) / foreign.length;
    return { ...law, interceptMiB: law.interceptMiB + deviation };
  }

  private fitOwnLaws(): void {
    const byArchitecture = new Map<string, MemoryPoint[]>();
    for (const p of this.current) {
      const key = architectureKey(p.architecture);
      byArchitecture.set(key, [...(byArchitecture.get(key) ?? []), p]);
    }
    for (const [key, points] of byArchitecture) {
      const law = this.fitArchitecture(points, this.smallerArchitecturePeakMiB(points[0]!.architecture));
      if (law !== undefined) this.ownLaws.set(key, law);
    }
  }

  /**
   * Returns the largest peak measured at batch size 1 on this GPU for an
   * architecture with no more parameters and no larger layers x channels
   * than `a` (usually the smoke test's), or 0 for none. It is used as a
   * lower bound on the fixed memory of `a`, because the CUDA context and
   * allocator reserve are shared.
   * NOTE: that bound assumes that the extra weights, gradients and Adam
   * moments of `a` (16 bytes per parameter in fp32) outweigh the smaller
   * architecture's activations for one sample. Nothing checks it.
   */
  private smallerArchitecturePeakMiB(a: Architecture): number {
    const parameters = this.parameters(a);
    const size = a.layers * a.hiddenChannels;
    let peak = 0;
    for (const p of this.current) {
      const other = p.architecture;
      if (p.batchSize !== 1 || architectureKey(other) === architectureKey(a)) continue;
      if (this.parameters(other) > parameters || other.layers * other.hiddenChannels > size) continue;
      peak = Math.max(peak, p.peakMiB);
    }
    return peak;
  }

  /**
   * Fits one architecture's points: a line through two or more distinct
   * batch sizes, a parabola when three show curvature. With two sizes, a
   * line whose intercept falls more than one rounding step below
   * `interceptFloorMiB` (a lower bound on the fixed memory) shows curvature
   * too, and the floor becomes a third point at batch size 0.
   */
  private fitArchitecture(points: MemoryPoint[], interceptFloorMiB = 0): MemoryLaw | undefined {
    const a = points[0]!.architecture;
    const base = { layers: a.layers, hiddenChannels: a.hiddenChannels };
    const distinct = new Set(points.map((p) => p.batchSize)).size;
    // Points on one allocator step (equal peaks) show no slope; such a line would predict no limit at all.
    if (distinct < 2 || new Set(points.map((p) => p.peakMiB)).size < 2) return undefined;
    const line = leastSquares(points.map((p) => [1, p.batchSize]), points.map((p) => p.peakMiB));
    if (distinct >= 3) {
      const parabola = leastSquares(points.map((p) => [1, p.batchSize, p.batchSize * p.batchSize]), points.map((p) => p.peakMiB));
      if (parabola !== null && parabola[2]! > 0 && parabola[1]! >= 0) {
        return { ...base, interceptMiB: parabola[0]!, perSampleMiB: parabola[1]!, perSampleSquaredMiB: parabola[2]!, points: distinct };
      }
    }
    if (line === null) return undefined;
    if (distinct === 2 && interceptFloorMiB > 0 && line[0]! < interceptFloorMiB - this.granularityEstimateMiB()) {
      // A convex law lies above its chord's extension outside the chord, so
      // a chord that falls short of the floor at batch size 0 shows
      // curvature. With unrounded peaks and a floor at most the true fixed
      // memory, the parabola through them bends less than the law, so it
      // predicts a maximum between the true one and the chord's.
      const rows = [[1, 0, 0], ...points.map((p) => [1, p.batchSize, p.batchSize * p.batchSize])];
      const parabola = leastSquares(rows, [interceptFloorMiB, ...points.map((p) => p.peakMiB)]);
      if (parabola !== null && parabola[2]! > 0 && parabola[1]! >= 0) {
        return { ...base, interceptMiB: parabola[0]!, perSampleMiB: parabola[1]!, perSampleSquaredMiB: parabola[2]!, points: distinct };
      }
    }
    return { ...base, interceptMiB: line[0]!, perSampleMiB: Math.max(line[1]!, 1e-9), perSampleSquaredMiB: 0, points: distinct };
  }

  private fitTimeLaws(observations: readonly TrialObservation[]): void {
    const byArchitecture = new Map<string, { b: number; s: number }[]>();
    for (const o of observations) {
      if (o.outcome !== 'ok' || o.stepSeconds === null) continue;
      const key = architectureKey(o);
      byArchitecture.set(key, [...(byArchitecture.get(key) ?? []), { b: o.batchSize, s: o.stepSeconds }]);
    }
    for (const [key, points] of byArchitecture) {
      if (new Set(points.map((p) => p.b)).size < 2) continue;
      const line = leastSquares(points.map((p) => [1, p.b]), points.map((p) => p.s));
      if (line === null) continue;
      const [layers, hiddenChannels] = key.split('x').map(Number) as [number, number];
      this.timeLaws.set(key, { layers, hiddenChannels, fixedSeconds: line[0]!, perSampleSeconds: line[1]!, points: points.length });
    }
  }

  /** Returns the memory law for `a` on this GPU and its origin; undefined before any usable measurement. */
  memoryLaw(a: Architecture): MemoryPrediction | undefined {
    const own = this.ownLaws.get(architectureKey(a));
    if (own !== undefined) return { law: own, source: 'measured' };
    const points = this.current.filter((p) => architectureKey(p.architecture) === architectureKey(a));
    const regressed = this.regressedLaw(a);
    // The point nearest the limit pins the law best.
    const point = points.length === 0 ? undefined : points.reduce((x, y) => (y.peakMiB > x.peakMiB ? y : x));
    if (point !== undefined) {
      if (regressed !== undefined) {
        // Keep the regression's slope and curvature, shifted through the measured point.
        const shift = point.peakMiB - evaluateLaw(regressed, point.batchSize);
        return { law: { ...regressed, interceptMiB: regressed.interceptMiB + shift, points: 1 }, source: 'pinned' };
      }
      // One point and nothing to regress on: assume no fixed memory. The slope then comes out
      // too steep, so the predicted maximum lies below the true one as long as memory is linear.
      return { law: { layers: a.layers, hiddenChannels: a.hiddenChannels, interceptMiB: 0, perSampleMiB: point.peakMiB / point.batchSize, perSampleSquaredMiB: 0, points: 1 }, source: 'assumed' };
    }
    return regressed === undefined ? undefined : { law: regressed, source: 'regressed' };
  }

  /**
   * Predicted maximum feasible batch size of `a` under `limitMiB`, within
   * [0, maxBatchSize], with a margin sized from how well the model
   * predicted held-out architectures. An own law's margin covers allocator
   * rounding between its points. A pinned law's margin grows with the
   * distance from its one point, and a regressed one's with the held-out error.
   * The spread is a typical error rather than a bound; it only steers probes.
   */
  predictMaxBatch(a: Architecture, limitMiB: number, maxBatchSize: number): MaxBatchPrediction | undefined {
    const prediction = this.memoryLaw(a);
    if (prediction === undefined) return undefined;
    const law = prediction.law;
    const estimate = largestBatchWithin(law, limitMiB, maxBatchSize);
    const slope = Math.max(law.perSampleMiB + 2 * law.perSampleSquaredMiB * Math.max(estimate, 1), 1e-9);
    const fit = this.global ?? { heldOutSlopeError: Number.POSITIVE_INFINITY, heldOutRmsMiB: Number.POSITIVE_INFINITY };

    let margin: number;
    let spread: number;
    const rounding = this.granularityEstimateMiB() / slope;
    const likelyRounding = this.likelyGranularityMiB() / slope;
    const own = this.current.filter((p) => architectureKey(p.architecture) === architectureKey(a));
    // Distance from the estimate to the nearest measured size of `a`: extrapolation error grows with it.
    const distance = own.length === 0 ? estimate : Math.min(...own.map((p) => Math.abs(p.batchSize - estimate)));
    if (prediction.source === 'measured') {
      const residual = this.ownResidualMiB(a) / slope;
      margin = 2 + Math.ceil(0.02 * estimate + 3 * rounding + residual);
      // Rounding of g MiB at points `span` samples apart leaves the slope uncertain by about g / span.
      const batchSizes = own.map((p) => p.batchSize);
      const span = Math.max(1, Math.max(...batchSizes) - Math.min(...batchSizes));
      // Two sizes fix a line but not the curvature that a quadratic term adds beyond them.
      // A parabola through two sizes and the fixed-memory floor (fitArchitecture) bends nearly as much as the law.
      const curvature = new Set(batchSizes).size >= 3 || law.perSampleSquaredMiB > 0 ? 0.02 : EXTRAPOLATION_SPREAD;
      spread = 0.3 + likelyRounding / 2 + residual / 2 + (likelyRounding / span + curvature) * distance;
    } else if (prediction.source === 'pinned') {
      // Until held-out architectures show the slope error, allow the slope to be off by a factor of 3.
      const slopeError = Math.min(3 * fit.heldOutSlopeError, 2);
      margin = 2 + Math.ceil(0.02 * estimate + 3 * rounding + slopeError * distance);
      spread = 0.3 + likelyRounding / 2 + (Math.min(fit.heldOutSlopeError, 0.5) + 0.02) * distance;
    } else if (prediction.source === 'assumed') {
      margin = 2 + Math.ceil(0.01 * estimate + (3 * fit.heldOutRmsMiB) / slope + 0.1 * Math.max(0, estimate - this.largestMeasuredBatch()));
      spread = 0.3 * distance + 1;
    } else {
      // Held-out error covers only the measured batch sizes, so beyond them widen by a tenth of the extrapolation.
      const extrapolation = Math.max(0, estimate - this.largestMeasuredBatch());
      margin = 2 + Math.ceil(0.01 * estimate + (3 * fit.heldOutRmsMiB) / slope + 0.1 * extrapolation);
      spread = Math.max(1, margin / 3);
    }

    if (!Number.isFinite(margin)) margin = maxBatchSize;
    if (!Number.isFinite(spread)) spread = Math.max(1, 0.3 * estimate);
    return { estimate, margin, spread: Math.min(spread, margin), source: prediction.source };
  }

  /**
   * Estimates the allocator's rounding step from the measurements, at most
   * MAX_GRANULARITY_MIB. Peaks on one rounding lattice differ by whole
   * multiples of its step. So when the differences are whole MiB, their
   * greatest common divisor is a multiple of the step. Otherwise the
   * smallest gap between distinct peaks is. Either way an estimate below the
   * cap is never below the true step of peaks on one lattice, and with few
   * points it overestimates, which only widens margins.
   */
  private granularityEstimateMiB(): number {
    if (this.granularity !== undefined) return this.granularity;
    const peaks = distinctSorted(this.current.map((p) => p.peakMiB));
    let step = 0;
    if (peaks.every((peak) => isWholeNumber(peak - peaks[0]!))) {
      for (const peak of peaks) step = greatestCommonDivisor(step, Math.round(peak - peaks[0]!));
    } else {
      step = Math.min(...peaks.slice(1).map((peak, i) => peak - peaks[i]!));
    }
    this.granularity = step === 0 ? MAX_GRANULARITY_MIB : Math.min(step, MAX_GRANULARITY_MIB);
    return this.granularity;
  }

  /**
   * Returns the rounding step a belief assumes: the estimate once three
   * distinct peaks back it, else PyTorch's 2 MiB rounding of large blocks,
   * because two peaks alone only bound the step by their difference.
   */
  private likelyGranularityMiB(): number {
    const distinct = distinctSorted(this.current.map((p) => p.peakMiB)).length;
    return distinct >= 3 ? this.granularityEstimateMiB() : Math.min(this.granularityEstimateMiB(), TYPICAL_GRANULARITY_MIB);
  }

  /**
   * Returns a batch size that `a` cannot fit beyond under `limitMiB`, from
   * its measured peak nearest the limit and a lower bound on its per-sample
   * memory; Infinity when nothing bounds it. A peak P measured at b0 means
   * that the unrounded peak there exceeds P - g, for a rounding step g.
   * Memory is taken to be convex in the batch size, so beyond b0 it grows by
   * at least the lower slope per sample, and any b with
   * P - g + slope (b - b0) > limit runs out of memory.
   */
  maxBatchUpperBound(a: Architecture, limitMiB: number): number {
    const own = this.current.filter((p) => architectureKey(p.architecture) === architectureKey(a) && p.peakMiB <= limitMiB);
    if (own.length === 0) return Number.POSITIVE_INFINITY;
    // Real peaks vary a little from run to run, so the rounding step is taken to be at least a small share of the limit.
    const granularity = Math.max(this.granularityEstimateMiB(), PEAK_NOISE_FRACTION * limitMiB);
    const top = own.reduce((x, y) => (y.peakMiB > x.peakMiB || (y.peakMiB === x.peakMiB && y.batchSize > x.batchSize) ? y : x));
    let slope = chordSlopeMiB(own, top.batchSize, top.peakMiB, granularity);
    // The regression's slope, less three held-out slope errors.
    const regressed = this.regressedLaw(a);
    const fit = this.global;
    if (regressed !== undefined && fit !== null && Number.isFinite(fit.heldOutSlopeError)) {
      const factor = 1 - Math.min(3 * fit.heldOutSlopeError + SLOPE_FLOOR_ERROR, 1);
      slope = Math.max(slope, factor * (regressed.perSampleMiB + 2 * regressed.perSampleSquaredMiB * top.batchSize));
    }
    if (!(slope > 0)) return Number.POSITIVE_INFINITY;
    return top.batchSize + Math.floor((limitMiB - top.peakMiB + granularity) / slope);
  }

  /**
   * Tests whether the measured peaks of `a` prove batch size `lower + 1`
   * over `limitMiB`, where `lower` is its largest size measured feasible.
   * Peak memory is taken to be non-decreasing and convex in the batch size
   * (activations grow at least linearly), so beyond two measured sizes it
   * grows per sample by at least the chord slope between them. A reading P
   * stands for an unrounded peak in (P - g - j, P + j], for a rounding step
   * g and a run-to-run jitter j of PEAK_JITTER_MIB. Take a smaller measured
   * size b where P(lower) - g - j + (P(lower) - P(b) - g - 2 j) / (lower - b)
   * exceeds the limit. Then one more sample cannot fit, and the trial at
   * lower + 1 would only confirm it.
   */
  provesCeiling(a: Architecture, lower: number, limitMiB: number): boolean {
    // A prior of the same GPU model counts until a trial contradicts it, as in the ledger's bounds.
    const own = this.current.filter((p) => architectureKey(p.architecture) === architectureKey(a) && p.peakMiB <= limitMiB);
    // Where `lower` was measured more than once, its lowest reading is the least favourable to the proof.
    const top = Math.min(...own.filter((p) => p.batchSize === lower).map((p) => p.peakMiB));
    // A rounding step at the cap may stand for a larger one, which would void the proof.
    if (!Number.isFinite(top) || this.granularityEstimateMiB() >= MAX_GRANULARITY_MIB) return false;
    // The unrounded peak lies within (P - g - jitter, P + jitter] of a reading P.
    const g = this.granularityEstimateMiB();
    const slope = chordSlopeMiB(own, lower, top, g + 2 * PEAK_JITTER_MIB);
    return slope > 0 && top - g - PEAK_JITTER_MIB + slope > limitMiB;
  }

  /**
   * Probability that a fitting probe of `a` at its maximum `estimate` will
   * prove that maximum by provesCeiling: 0 before `a` has a measured peak
   * to draw a chord from. The peak at the maximum lies within one sample's
   * memory below the limit, and the proof needs it more than the rounding
   * step and the jitter above limit - slope, so about
   * 1 - (g + PEAK_JITTER_MIB) / slope of such peaks prove it.
   */
  ceilingProofChance(a: Architecture, estimate: number): number {
    if (!this.current.some((p) => architectureKey(p.architecture) === architectureKey(a))) return 0;
    const law = this.memoryLaw(a)?.law;
    if (law === undefined) return 0;
    const slope = law.perSampleMiB + 2 * law.perSampleSquaredMiB * Math.max(estimate, 1);
    const allowance = this.granularityEstimateMiB() + PEAK_JITTER_MIB;
    return slope > allowance && this.granularityEstimateMiB() < MAX_GRANULARITY_MIB ? 1 - allowance / slope : 0;
  }

  private largestMeasuredBatch(): number {
    let largest = 0;
    for (const p of this.current) largest = Math.max(largest, p.batchSize);
    for (const p of this.transferred) largest = Math.max(largest, p.batchSize);
    return largest;
  }

  /** Largest residual of an architecture's own fit, in MiB; it shows allocator rounding when there are 3+ points. */
  private ownResidualMiB(a: Architecture): number {
    const law = this.ownLaws.get(architectureKey(a));
    if (law === undefined) return 0;
    let worst = 0;
    for (const p of this.current) {
      if (architectureKey(p.architecture) === architectureKey(a)) worst = Math.max(worst, Math.abs(p.peakMiB - evaluateLaw(law, p.batchSize)));
    }
    return 2 * worst;
  }

  /** Returns the step-time line of `a`, fitted when it has two or more measured steps. */
  timeLaw(a: Architecture): TimeLaw | undefined {
    return this.timeLaws.get(architectureKey(a));
  }

  snapshot(key: CostModelKey, parameters: Map<string, number>): CostModelSnapshot {
    const global = this.global;
    let crossArchitectureMemory: CrossArchitectureMemoryModel | null = null;
    if (global !== null) {
      crossArchitectureMemory = {
        features: [...global.groups.map((g) => (g === 0 ? 'intercept(this GPU)' : `intercept(transferred ${g})`)), ...global.features],
        coefficients: global.coefficients,
        rmsResidualMiB: global.rmsResidualMiB,
        points: global.points,
      };
    }
    const transferred = this.input.foreign.slice(0, MAX_TRANSFERRED_SNAPSHOTS).map((s) => ({ ...s, transferred: [] }));
    return {
      version: COST_MODEL_VERSION,
      key,
      parameters: [...parameters].map(([k, count]) => {
        const [layers, hiddenChannels] = k.split('x').map(Number) as [number, number];
        return { layers, hiddenChannels, parameters: count };
      }),
      observations: this.input.ledger.all().map(({ source: _source, ...o }) => o),
      memoryLaws: [...this.ownLaws.values()],
      timeLaws: [...this.timeLaws.values()],
      crossArchitectureMemory,
      transferred,
    };
  }
}

/**
 * Spread of a two-size line's predicted maximum per sample of extrapolation:
 * a quadratic term the line cannot see moves the boundary by up to about
 * this fraction of the distance (tuned on the synthetic twins).
 */
const EXTRAPOLATION_SPREAD = 0.15;
/** Refits that add violated out-of-memory trials to the regression; each round adds every one still violated. */
const CENSORED_FIT_ROUNDS = 3;
/** Run-to-run variation of a measured peak that maxBatchUpperBound allows for, as a fraction of the limit. */
const PEAK_NOISE_FRACTION = 0.005;
/**
 * Run-to-run variation of a measured peak, either way, that provesCeiling
 * allows for on top of the rounding step, in MiB. It is one segment of
 * PyTorch's caching allocator for mid-sized blocks (kLargeBuffer in
 * c10/cuda/CUDACachingAllocator.cpp), which one more small tensor can add
 * to a run's peak.
 */
const PEAK_JITTER_MIB = 20;
/** Relative slope error always allowed for the regression's slope in maxBatchUpperBound. */
const SLOPE_FLOOR_ERROR = 0.2;
/** PyTorch's CUDA caching allocator rounds allocations above 10 MiB up to multiples of 2 MiB (kRoundLarge in c10/cuda/CUDACachingAllocator.cpp). */
const TYPICAL_GRANULARITY_MIB = 2;
/** Largest allocator rounding step the margins allow for, in MiB. */
const MAX_GRANULARITY_MIB = 1024;

/**
 * Smallest held-out slope error reported when only one architecture with
 * two or more measured sizes (usually production's) could be held out,
 * because one sample may understate the error (set on the synthetic twins).
 */
const SINGLE_SLOPE_ERROR_FLOOR = 0.1;

/** Returns the held-out slope error to report from `count` held-out architectures whose largest error was `error`. */
function heldOutSlopeErrorOf(count: number, error: number): number {
  if (count >= 2) return error;
  if (count === 1) return Math.max(error, SINGLE_SLOPE_ERROR_FLOOR);
  return Number.POSITIVE_INFINITY;
}

/**
 * Returns the least growth per sample beyond `batchSize` that the readings
 * at smaller sizes imply, given the reading `peakMiB` there and `slackMiB`
 * lost per chord to rounding and jitter. It is 0 without a smaller
 * reading. A chord bounds the average slope from below, and a convex law
 * grows no slower beyond it. The highest reading at each smaller size counts,
 * because it is the least favourable.
 */
function chordSlopeMiB(points: readonly MemoryPoint[], batchSize: number, peakMiB: number, slackMiB: number): number {
  const highest = new Map<number, number>();
  for (const p of points) {
    if (p.batchSize < batchSize) highest.set(p.batchSize, Math.max(highest.get(p.batchSize) ?? 0, p.peakMiB));
  }
  let slope = 0;
  for (const [size, peak] of highest) slope = Math.max(slope, (peakMiB - peak - slackMiB) / (batchSize - size));
  return slope;
}

/** Peaks that differ by less than this many MiB count as one reading of the same level. */
const PEAK_TOLERANCE_MIB = 1e-6;

function isWholeNumber(value: number): boolean {
  return Math.abs(value - Math.round(value)) <= PEAK_TOLERANCE_MIB;
}

/** Sorts values ascending and drops those within PEAK_TOLERANCE_MIB of the one before. */
function distinctSorted(values: number[]): number[] {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.filter((value, i) => i === 0 || value - sorted[i - 1]! > PEAK_TOLERANCE_MIB);
}

function greatestCommonDivisor(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

export function evaluateLaw(law: MemoryLaw, batchSize: number): number {
  return law.interceptMiB + law.perSampleMiB * batchSize + law.perSampleSquaredMiB * batchSize * batchSize;
}

/** Largest b in [0, maxBatchSize] whose predicted peak is within `limitMiB` (the law is non-decreasing in b). */
export function largestBatchWithin(law: MemoryLaw, limitMiB: number, maxBatchSize: number): number {
  if (evaluateLaw(law, 1) > limitMiB) return 0;
  if (evaluateLaw(law, maxBatchSize) <= limitMiB) return maxBatchSize;
  let low = 1;
  let high = maxBatchSize;
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (evaluateLaw(law, middle) <= limitMiB) low = middle;
    else high = middle;
  }
  return low;
}
