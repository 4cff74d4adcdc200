/**
 * The efficiency rule of the prototyping and validation stages, shared by
 * both strategies so that they rank candidates identically.
 */
import type { Candidate } from './candidates.ts';

/** Cycle length in minutes: `cycleBatches` steps of `stepSeconds` each. */
export function cycleMinutes(cycleBatches: number, stepSeconds: number): number {
  return (cycleBatches * stepSeconds) / 60;
}

/** Minutes between a cycle and a window; 0 inside it (bounds included). */
export function windowDistance(cycle: number, window: readonly [number, number]): number {
  if (cycle < window[0]) return window[0] - cycle;
  if (cycle > window[1]) return cycle - window[1];
  return 0;
}

/** A candidate with its exact maximum batch size and the step time measured there. */
export interface ResolvedCandidate extends Candidate {
  maxBatch: number;
  stepSeconds: number;
  peakMiB: number | null;
}

export interface EfficiencyScore {
  cycleMinutes: number;
  distance: number;
  throughput: number;
  parameters: number;
}

export function efficiencyScore(c: ResolvedCandidate, cycleBatches: number, window: readonly [number, number]): EfficiencyScore {
  const cycle = cycleMinutes(cycleBatches, c.stepSeconds);
  return { cycleMinutes: cycle, distance: windowDistance(cycle, window), throughput: c.maxBatch / c.stepSeconds, parameters: c.parameters };
}

/**
 * Orders two scores, negative when `a` wins. In the window (distance 0)
 * the higher throughput wins; out of it the nearer cycle wins, then the
 * higher throughput; the last tie goes to more parameters.
 */
export function compareEfficiency(a: EfficiencyScore, b: EfficiencyScore): number {
  if (a.distance !== b.distance) return a.distance - b.distance;
  if (a.throughput !== b.throughput) return b.throughput - a.throughput;
  return b.parameters - a.parameters;
}

/** Applies the efficiency rule to candidates that fit; null when none does. */
export function pickEfficient(
  resolved: ResolvedCandidate[],
  cycleBatches: number,
  window: readonly [number, number],
): { candidate: ResolvedCandidate; score: EfficiencyScore } | null {
  let best: { candidate: ResolvedCandidate; score: EfficiencyScore } | null = null;
  for (const candidate of resolved) {
    const score = efficiencyScore(candidate, cycleBatches, window);
    if (best === null || compareEfficiency(score, best.score) < 0) best = { candidate, score };
  }
  return best;
}
