/**
 * Predicts an unmeasured candidate's cycle minutes and throughput at its
 * maximum batch size from candidates of the same stage already measured on
 * this GPU: log cycle and log throughput regressed on log layers and log
 * channels. The interval is the prediction widened by three times the
 * leave-one-out RMS error, and never by less than MIN_LOG_MARGIN, so a
 * candidate is ruled out by prediction only where the measured candidates
 * follow the law that closely.
 */
import { leastSquares, dot } from './least-squares.ts';
import type { EfficiencyInterval } from './step-bounds.ts';
import type { Architecture } from './types.ts';

export interface EfficiencySample {
  architecture: Architecture;
  cycleMinutes: number;
  throughput: number;
}

/** Measured candidates needed before any prediction: three coefficients plus two for leave-one-out. */
export const MIN_EFFICIENCY_SAMPLES = 5;
/** Smallest half-width of a predicted interval in log space (a factor of e^0.25, about 1.28). */
const MIN_LOG_MARGIN = 0.25;

function features(a: Architecture): number[] {
  return [1, Math.log(a.layers), Math.log(a.hiddenChannels)];
}

interface LogFit {
  coefficients: number[];
  margin: number;
}

function fitLog(samples: EfficiencySample[], value: (s: EfficiencySample) => number): LogFit | null {
  const rows = samples.map((s) => features(s.architecture));
  const targets = samples.map((s) => Math.log(value(s)));
  const coefficients = leastSquares(rows, targets, 1e-9);
  if (coefficients === null) return null;
  let squared = 0;
  for (let i = 0; i < samples.length; i++) {
    const rest = leastSquares(rows.filter((_, j) => j !== i), targets.filter((_, j) => j !== i), 1e-9);
    if (rest === null) return null;
    const r = targets[i]! - dot(rows[i]!, rest);
    squared += r * r;
  }
  return { coefficients, margin: Math.max(MIN_LOG_MARGIN, 3 * Math.sqrt(squared / samples.length)) };
}

export class EfficiencyModel {
  private readonly cycle: LogFit | null;
  private readonly throughput: LogFit | null;
  /** Smallest and largest sampled [layers, hidden channels]. */
  private readonly range: [[number, number], [number, number]];

  constructor(samples: EfficiencySample[]) {
    const usable = samples.filter((s) => s.cycleMinutes > 0 && s.throughput > 0);
    const distinct = new Set(usable.map((s) => `${s.architecture.layers}x${s.architecture.hiddenChannels}`)).size;
    const enough = distinct >= MIN_EFFICIENCY_SAMPLES;
    const layers = usable.map((s) => s.architecture.layers);
    const channels = usable.map((s) => s.architecture.hiddenChannels);
    this.range = [
      [Math.min(...layers), Math.max(...layers)],
      [Math.min(...channels), Math.max(...channels)],
    ];
    this.cycle = enough ? fitLog(usable, (s) => s.cycleMinutes) : null;
    this.throughput = enough ? fitLog(usable, (s) => s.throughput) : null;
  }

  /** Predicts the interval for `a`; undefined before enough candidates were measured. */
  predict(a: Architecture): EfficiencyInterval | undefined {
    if (this.cycle === null || this.throughput === null) return undefined;
    // Held-out errors measure interpolation only, so nothing outside the sampled layers and channels is predicted.
    const [layers, channels] = this.range;
    if (a.layers < layers[0] || a.layers > layers[1] || a.hiddenChannels < channels[0] || a.hiddenChannels > channels[1]) return undefined;
    const x = features(a);
    const cycle = dot(x, this.cycle.coefficients);
    const throughput = dot(x, this.throughput.coefficients);
    return {
      cycleLow: Math.exp(cycle - this.cycle.margin),
      cycleHigh: Math.exp(cycle + this.cycle.margin),
      throughputLow: Math.exp(throughput - this.throughput.margin),
      throughputHigh: Math.exp(throughput + this.throughput.margin),
    };
  }
}
