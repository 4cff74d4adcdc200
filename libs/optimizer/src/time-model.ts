/**
 * A cross-architecture model of step time on this GPU, for predicting an
 * unmeasured candidate's step at its maximum batch size:
 * step = t0 + t1 P + b (t2 + t3 LC + t4 P), where P is millions of
 * parameters and LC is layers x channels / 1000. Fixed work grows with the
 * weights and per-sample work with activations and weights. It is fitted by
 * least squares on relative error, with no coefficient below 0, over every
 * measured step of this GPU, whichever stage measured it.
 *
 * The interval it returns is the prediction widened by three times the
 * leave-one-architecture-out RMS error in log space, and never by less than
 * MIN_TIME_LOG_MARGIN. So a candidate is ruled out by it only where the
 * measured architectures follow the law that closely.
 */
import { dot, nonNegativeLeastSquares } from './least-squares.ts';
import { scaledFeatures } from './scaled-features.ts';
import { architectureKey, type TrialObservation } from './trial-ledger.ts';
import type { Architecture } from './types.ts';

/** Smallest half-width of a predicted step interval in log space (a factor of e^0.25, about 1.28). */
const MIN_TIME_LOG_MARGIN = 0.25;
/** Measured architectures needed before any fit. */
const MIN_TIME_ARCHITECTURES = 4;
/** Held-out architectures inside the others' range needed to size the error. */
const MIN_HELD_OUT = 2;

type TimeFeature = 'P' | 'b' | 'b*LC' | 'b*P';

/** Feature sets from the simplest to the richest; every set has a constant term as well. */
const TIME_FEATURE_LADDER: TimeFeature[][] = [
  ['b', 'b*LC'],
  ['P', 'b', 'b*LC'],
  ['P', 'b', 'b*LC', 'b*P'],
];

interface StepSample {
  key: string;
  architecture: Architecture;
  parameters: number;
  batchSize: number;
  stepSeconds: number;
}

interface TimeFit {
  features: TimeFeature[];
  coefficients: number[];
  /** Half-width of a prediction interval in log space. */
  logMargin: number;
}

function row(features: TimeFeature[], a: Architecture, parameters: number, batchSize: number): number[] {
  const { p, lc, b } = scaledFeatures(a, parameters, batchSize);
  const values: Record<TimeFeature, number> = { P: p, b, 'b*LC': b * lc, 'b*P': b * p };
  return [1, ...features.map((f) => values[f])];
}

/**
 * Fits by relative error: each row and target is divided by the measured
 * step. Every term is a time cost, so no coefficient may be negative. An
 * unconstrained fit can trade a negative per-sample constant against a
 * steeper layers x channels term, and that predicts the smallest
 * architectures several times too fast.
 */
function solve(features: TimeFeature[], samples: StepSample[]): number[] | null {
  const rows = samples.map((s) => row(features, s.architecture, s.parameters, s.batchSize).map((v) => v / s.stepSeconds));
  return nonNegativeLeastSquares(rows, samples.map(() => 1), 1e-9);
}

/** Tests whether `sample`'s parameters and layers x channels lie within those of `others`. */
function within(sample: StepSample, others: StepSample[]): boolean {
  const lc = (s: StepSample) => s.architecture.layers * s.architecture.hiddenChannels;
  const parameters = others.map((s) => s.parameters);
  const lcs = others.map(lc);
  return sample.parameters >= Math.min(...parameters) && sample.parameters <= Math.max(...parameters) && lc(sample) >= Math.min(...lcs) && lc(sample) <= Math.max(...lcs);
}

export class TimeModel {
  private readonly fit: TimeFit | null;
  /** Smallest and largest measured parameter count and layers x channels. */
  private readonly range: { parameters: [number, number]; lc: [number, number] };

  constructor(observations: readonly TrialObservation[], private readonly parametersOf: (a: Architecture) => number) {
    const samples: StepSample[] = [];
    for (const o of observations) {
      if (o.outcome !== 'ok' || o.stepSeconds === null || o.stepSeconds <= 0) continue;
      const parameters = parametersOf(o);
      if (!Number.isFinite(parameters)) continue;
      samples.push({ key: architectureKey(o), architecture: { layers: o.layers, hiddenChannels: o.hiddenChannels }, parameters, batchSize: o.batchSize, stepSeconds: o.stepSeconds });
    }
    const parameters = samples.map((s) => s.parameters);
    const lc = samples.map((s) => s.architecture.layers * s.architecture.hiddenChannels);
    this.range = { parameters: [Math.min(...parameters), Math.max(...parameters)], lc: [Math.min(...lc), Math.max(...lc)] };
    this.fit = TimeModel.fitBest(samples);
  }

  /** Fits each feature set and keeps the one with the smallest leave-one-architecture-out error. */
  private static fitBest(samples: StepSample[]): TimeFit | null {
    const keys = [...new Set(samples.map((s) => s.key))];
    if (keys.length < MIN_TIME_ARCHITECTURES) return null;
    let best: TimeFit | null = null;
    for (const features of TIME_FEATURE_LADDER) {
      // Each held-out fit must still have at least as many architectures as coefficients.
      if (keys.length - 1 < features.length + 1) continue;
      const coefficients = solve(features, samples);
      if (coefficients === null) continue;
      let squared = 0;
      let count = 0;
      let heldOut = 0;
      for (const key of keys) {
        const others = samples.filter((s) => s.key !== key);
        const heldOutSample = samples.find((s) => s.key === key)!;
        // Predictions are only made inside the measured range, so only such held-out architectures size the error.
        if (!within(heldOutSample, others)) continue;
        const rest = solve(features, others);
        if (rest === null) continue;
        heldOut += 1;
        for (const s of samples.filter((x) => x.key === key)) {
          const predicted = dot(row(features, s.architecture, s.parameters, s.batchSize), rest);
          const r = predicted > 0 ? Math.log(s.stepSeconds / predicted) : Number.POSITIVE_INFINITY;
          squared += r * r;
          count += 1;
        }
      }
      if (count === 0 || heldOut < MIN_HELD_OUT) continue;
      const logMargin = Math.max(MIN_TIME_LOG_MARGIN, 3 * Math.sqrt(squared / count));
      if (best === null || logMargin < best.logMargin) best = { features, coefficients, logMargin };
    }
    return best === null || !Number.isFinite(best.logMargin) ? null : best;
  }

  /**
   * Predicts the step of `a` at `batchSize` as [low, central, high] seconds.
   * Returns undefined before enough architectures were measured, and for an
   * architecture outside the measured range of parameters and layers x channels.
   */
  predictStep(a: Architecture, batchSize: number): [number, number, number] | undefined {
    if (this.fit === null) return undefined;
    const parameters = this.parametersOf(a);
    const lc = a.layers * a.hiddenChannels;
    // Held-out errors measure interpolation only, so nothing outside the measured architectures is predicted.
    if (!(parameters >= this.range.parameters[0] && parameters <= this.range.parameters[1] && lc >= this.range.lc[0] && lc <= this.range.lc[1])) return undefined;
    const central = dot(row(this.fit.features, a, parameters, batchSize), this.fit.coefficients);
    if (!(central > 0)) return undefined;
    return [central * Math.exp(-this.fit.logMargin), central, central * Math.exp(this.fit.logMargin)];
  }
}
