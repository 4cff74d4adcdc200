/**
 * Chooses the batch size to probe next when proving an architecture's
 * maximum feasible batch size, from the proven bracket and the cost
 * model's belief about where the maximum lies.
 *
 * Proving maxBatch = m takes a feasible probe at m and an infeasible one
 * at m + 1 (or m = maxBatchSize), unless the peak measured at m proves
 * m + 1 over the limit, so a perfect prediction costs one or two trials.
 * Within a narrow bracket, dynamic programming over the bracket finds the
 * probe that minimises the expected number of further trials, given the
 * chance that a fitting probe at the maximum proves it.
 * A wide bracket is first narrowed by probing just below the predicted
 * maximum, so that the probe most likely fits and adds a measured point
 * close to the boundary.
 */

/** Belief about maxBatch: a normal distribution over batch sizes. */
export interface BoundaryBelief {
  /** Most likely maximum, in samples. */
  estimate: number;
  /** Standard deviation of the estimate, in samples (> 0). */
  spread: number;
}

/** Widest bracket (in batch sizes) that the dynamic program searches; its cost grows with the cube of the width. */
const MAX_PROGRAM_WIDTH = 48;
/** Probability floor per batch size, so that sizes the belief rules out still cost something to miss. */
const PROBABILITY_FLOOR = 1e-6;
/** How far below the estimate, in spreads, a probe into a wide bracket aims; about 7 in 10 such probes fit (set on the synthetic twins). */
export const WIDE_BRACKET_UNDERSHOOT_SPREADS = 0.5;

/** Probabilities of maxBatch = lower .. upper under the belief, normalised. */
function bracketProbabilities(lower: number, upper: number, belief: BoundaryBelief): number[] {
  const weights: number[] = [];
  let sum = 0;
  for (let k = lower; k <= upper; k++) {
    const z = (k - belief.estimate) / belief.spread;
    const w = Math.exp(-0.5 * z * z) + PROBABILITY_FLOOR;
    weights.push(w);
    sum += w;
  }
  return weights.map((w) => w / sum);
}

export interface BoundarySearchOptions {
  /** Whether ending the search at `lower` needs another trial there, because its probe ran fewer than the stress iterations. */
  lowerNeedsVerify: boolean;
  /** Whether `upper` comes from an infeasible measurement rather than the batch size cap. */
  upperProven: boolean;
  /**
   * Probability that a fitting probe at maxBatch itself proves maxBatch from
   * its measured peak, so that no probe above it is needed (0 when only a
   * probe above can). A fitting probe below maxBatch never proves it.
   */
  ceilingProofChance?: number;
  /**
   * The same probability for `lower`, whose peak is already measured and did
   * not prove maxBatch, so this share of maxBatch = lower is ruled out. It is
   * 0 where no proof was possible at `lower`.
   */
  lowerProofChance?: number;
}

export interface BoundaryProbe {
  batchSize: number;
  /** Probability that maxBatch equals batchSize once the probe fits: such a probe likely ends the search. */
  finalIfFeasible: number;
}

/**
 * Returns the probe in (lower, upper] that resolves maxBatch in the fewest
 * expected trials, or null when lower === upper. `lower` is the largest
 * size proven feasible (0 for none) and `upper` one less than the
 * smallest proven infeasible (or maxBatchSize).
 */
export function chooseBoundaryProbe(lower: number, upper: number, belief: BoundaryBelief, options: BoundarySearchOptions): BoundaryProbe | null {
  if (lower >= upper) return null;
  let spread = Math.max(belief.spread, 0.25);
  let estimate = belief.estimate;
  // A prediction outside the proven bracket missed by at least that distance, so widen the belief
  // to match (at most half the bracket). Its error is most likely the smallest that the bracket
  // allows, so centre the belief on the bracket's nearer end.
  const halfWidth = (upper - lower) / 2;
  if (estimate > upper) {
    spread = Math.max(spread, Math.min(estimate - upper, halfWidth));
    estimate = upper;
  } else if (estimate < lower) {
    spread = Math.max(spread, Math.min(lower - estimate, halfWidth));
    estimate = lower;
  }

  // The belief's mass beyond four spreads is negligible, so the program only needs that part of
  // the bracket. Its lowest size stands in for the proven lower bound when that lies further down.
  const top = Math.min(upper, Math.ceil(estimate + 4 * spread) + 1);
  const bottom = Math.max(lower, Math.floor(estimate - 4 * spread) - 1);
  if (top - bottom > MAX_PROGRAM_WIDTH) {
    // A belief wider than its distance from a proven feasible size would aim below that size. So
    // aim no lower than halfway from it to the estimate. When peaks hardly grow with the batch, the
    // search then halves the gap to the estimate instead of moving up one size at a time.
    const aim = Math.max(Math.floor(estimate - WIDE_BRACKET_UNDERSHOOT_SPREADS * spread), lower >= 1 ? Math.floor((lower + estimate) / 2) : 0);
    // Below a proven upper bound, never aim under the bracket's geometric middle (its middle
    // without a feasible size) unless the estimate itself lies there, so a poor belief still halves it.
    const middle = lower >= 1 ? Math.floor(Math.sqrt(lower * (upper + 1))) : Math.ceil(upper / 2);
    const floor = options.upperProven ? Math.min(middle, Math.floor(estimate)) : 0;
    const batchSize = Math.min(upper, Math.max(lower + 1, aim, floor));
    return { batchSize, finalIfFeasible: 0 };
  }

  const probabilities = bracketProbabilities(bottom, top, { estimate, spread });
  const plan = planBracket(probabilities, options.lowerNeedsVerify && bottom === lower ? 1 : 0, options.ceilingProofChance ?? 0, bottom === lower ? (options.lowerProofChance ?? 0) : (options.ceilingProofChance ?? 0));
  const offset = plan.firstProbe;
  const batchSize = bottom + offset;
  // The program treats a fitting probe at `top` as final, though the proven bracket may go on to
  // `upper`, so only a probe at `upper` itself is certain to end the search when it fits.
  let massAtOrAbove = 0;
  for (let i = offset; i < probabilities.length; i++) massAtOrAbove += probabilities[i]!;
  const finalIfFeasible = batchSize === upper ? 1 : probabilities[offset]! / Math.max(massAtOrAbove, 1e-12);
  return { batchSize, finalIfFeasible };
}

/**
 * Dynamic program over sub-brackets [l, u] of indices into `probabilities`
 * (index 0 proven feasible). A fitting probe at x proves maxBatch = x with
 * probability `proofChance` when maxBatch is x. Otherwise the search goes on
 * in [x, u] with that outcome's weight on x reduced by the proof that did
 * not come. So cost(l, u) is 0 when l = u, and otherwise the minimum over
 * probes x in (l, u] of
 *   1 + P(fits, no proof) cost(x, u) + P(does not fit) cost(l, x - 1),
 * except that ending at index 0 may cost a verify trial. Index 0 fitted
 * already, so its weight is reduced by `lowerProofChance`, the chance that
 * its proof, which did not come, would have come. With both chances 0 this
 * is the plain search for a fitting x and a failing x + 1.
 */
export function planBracket(probabilities: number[], lowerVerifyTrials: number, proofChance: number, lowerProofChance: number): { firstProbe: number; expectedTrials: number } {
  const n = probabilities.length;
  // The weight of maxBatch = l, once l fitted without proving it, is what is left of its probability.
  const leftAt = (l: number) => probabilities[l]! * (1 - (l === 0 ? lowerProofChance : proofChance));
  const prefix = [0];
  for (const p of probabilities) prefix.push(prefix[prefix.length - 1]! + p);
  const mass = (l: number, u: number) => (l > u ? 0 : prefix[u + 1]! - prefix[l]!);
  const cost: Float64Array[] = Array.from({ length: n }, () => new Float64Array(n));
  // Ending on the proven lower size costs a verify trial when its probe ran too few iterations.
  cost[0]![0] = lowerVerifyTrials;
  const choice: Int32Array[] = Array.from({ length: n }, () => new Int32Array(n));
  for (let width = 1; width < n; width++) {
    for (let l = 0; l + width < n; l++) {
      const u = l + width;
      const total = leftAt(l) + mass(l + 1, u);
      let best = Number.POSITIVE_INFINITY;
      let bestX = u;
      for (let x = l + 1; x <= u; x++) {
        const goesOn = total > 0 ? (leftAt(x) + mass(x + 1, u)) / total : 0;
        const below = total > 0 ? (leftAt(l) + mass(l + 1, x - 1)) / total : 1;
        const value = 1 + goesOn * cost[x]![u]! + below * cost[l]![x - 1]!;
        // Ties go to the smaller probe: it more likely fits, so it measures a peak that sharpens
        // the model and can verify the pick, where an out-of-memory probe measures nothing.
        if (value < best - 1e-12) {
          best = value;
          bestX = x;
        }
      }
      cost[l]![u] = best;
      choice[l]![u] = bestX;
    }
  }
  return { firstProbe: choice[0]![n - 1]!, expectedTrials: cost[0]![n - 1]! };
}

/** Standard normal cumulative distribution (Abramowitz and Stegun 7.1.26, error below 1.5e-7). */
function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

/** Probability under the belief that a probe at `batchSize` comes out as observed (maxBatch >= batchSize when feasible). */
export function outcomeProbability(belief: BoundaryBelief, batchSize: number, feasible: boolean): number {
  const below = normalCdf((batchSize - 0.5 - belief.estimate) / Math.max(belief.spread, 1e-9));
  return feasible ? 1 - below : below;
}
