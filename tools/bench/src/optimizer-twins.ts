/**
 * The twins and run settings the optimizer benchmarks share: the bundled
 * twins, the synthetic twins the strategies were tuned on, the held-out
 * and unseen synthetic twins, and the dataset sizes and headrooms each
 * twin is run at.
 */
import { bundledTwinPath, loadTwin, type Twin } from '@hwopt/twin';
// The synthetic twin generator is shared with the optimizer's tests.
import { HELD_OUT_SYNTHETIC_TWIN_SPECS, seededRandom, SYNTHETIC_TWIN_SPECS, syntheticTwin, UNSEEN_SYNTHETIC_TWIN_SPECS, type SyntheticTwinSpec } from '../../../libs/optimizer/test/support/synthetic-twins.ts';

export const DATASET_SIZES = [5_000, 19_500, 30_000];
export const HEADROOMS = [0, 0.05];

/** A twin and its family: twins of one family run the same workload, so their memory laws match. */
export interface BenchTwin {
  twin: Twin;
  family: string;
}

/** Returns the twins the strategies' constants were set on: the bundled ones and the first synthetic ones. */
export function tunedTwins(): BenchTwin[] {
  const bundled = ['a100-40gb', 'rtx4090', 't4'].map((name) => ({ twin: loadTwin(bundledTwinPath(name)), family: 'bundled' }));
  const synthetic = SYNTHETIC_TWIN_SPECS.map((spec) => ({ twin: syntheticTwin(spec), family: `synthetic laws ${spec.lawSeed}` }));
  return [...bundled, ...synthetic];
}

/** Returns the held-out synthetic twins, which set no constant. */
export function heldOutTwins(): Twin[] {
  return HELD_OUT_SYNTHETIC_TWIN_SPECS.map(syntheticTwin);
}

/** Returns the unseen synthetic twins, which were only compared before and after a round of changes. */
export function unseenTwins(): Twin[] {
  return UNSEEN_SYNTHETIC_TWIN_SPECS.map(syntheticTwin);
}

const RANDOM_MEMORY_MIB = [8192, 10240, 11264, 12288, 16384, 20480, 24576, 32768, 40960, 49152, 65536, 81920, 96256, 144384];
/** Allocator rounding steps to draw from. PyTorch's own 2 MiB comes twice as often as the others. */
const RANDOM_GRANULARITY_MIB = [2, 2, 4, 8, 20, 32, 64, 128, 256, 512];

/**
 * Draws `count` synthetic twins from `seed`. Memory sizes run from 8 to
 * 141 GiB and rounding steps from 2 to 512 MiB. Quadratic memory terms are
 * 0 to 0.5 % of the per-sample memory, and step times 0.8 to 2.5 times the
 * base. A seed not run before gives twins that no change was judged on.
 */
export function randomTwins(count: number, seed: number): Twin[] {
  const next = seededRandom(seed);
  const pick = <T>(values: T[]) => values[Math.floor(next() * values.length)]!;
  const specs: SyntheticTwinSpec[] = [];
  for (let i = 0; i < count; i++) {
    specs.push({
      name: `random-${seed}-${i}`,
      memoryTotalMiB: pick(RANDOM_MEMORY_MIB),
      granularityMiB: pick(RANDOM_GRANULARITY_MIB),
      seed: seed * 1000 + i,
      lawSeed: seed * 1000 + 500 + i,
      squaredFraction: Math.round(next() * 5) / 1000,
      slowdown: 0.8 + next() * 1.7,
    });
  }
  return specs.map(syntheticTwin);
}
