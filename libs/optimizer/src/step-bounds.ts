/**
 * Bounds on an architecture's step time and on where its maximum batch
 * size lies, from measurements, for ruling candidates out of the
 * efficiency stages without resolving them.
 *
 * Two properties of a training step are assumed, both true of a step with
 * a fixed cost plus a per-sample cost: step time does not decrease with
 * batch size, and throughput (samples per second) does not decrease with
 * batch size. So a step measured at b bounds the step at x from below by
 * s(b) when b <= x and by s(b) x / b when b > x, and from above by s(b)
 * when b >= x and by s(b) x / b when b < x.
 */

export interface StepPoint {
  batchSize: number;
  stepSeconds: number;
}

/** Lowest step time at batch size `x` consistent with the points (0 without any). */
export function stepLowerBound(points: readonly StepPoint[], x: number): number {
  let bound = 0;
  for (const p of points) {
    const implied = p.batchSize <= x ? p.stepSeconds : (p.stepSeconds * x) / p.batchSize;
    bound = Math.max(bound, implied);
  }
  return bound;
}

/** Highest step time at batch size `x` consistent with the points (Infinity without any). */
export function stepUpperBound(points: readonly StepPoint[], x: number): number {
  let bound = Number.POSITIVE_INFINITY;
  for (const p of points) {
    const implied = p.batchSize >= x ? p.stepSeconds : (p.stepSeconds * x) / p.batchSize;
    bound = Math.min(bound, implied);
  }
  return bound;
}

/** Interval of a candidate's rule quantities; exact when low equals high. */
export interface EfficiencyInterval {
  cycleLow: number;
  cycleHigh: number;
  throughputLow: number;
  throughputHigh: number;
}

export function distanceInterval(interval: EfficiencyInterval, window: readonly [number, number]): [number, number] {
  const distance = (cycle: number) => Math.max(0, window[0] - cycle, cycle - window[1]);
  const overlaps = interval.cycleLow <= window[1] && interval.cycleHigh >= window[0];
  const low = overlaps ? 0 : Math.min(distance(interval.cycleLow), distance(interval.cycleHigh));
  const high = Math.max(distance(interval.cycleLow), distance(interval.cycleHigh));
  return [low, high];
}

/**
 * Tests whether `winner` beats `other` under the efficiency rule for every value
 * in their intervals: strictly nearer the window, or no farther and
 * strictly faster. Equal values never rule a candidate out.
 */
export function surelyBeats(winner: EfficiencyInterval, other: EfficiencyInterval, window: readonly [number, number]): boolean {
  const [, winnerHigh] = distanceInterval(winner, window);
  const [otherLow] = distanceInterval(other, window);
  if (winnerHigh < otherLow) return true;
  return winnerHigh <= otherLow && winner.throughputLow > other.throughputHigh;
}
