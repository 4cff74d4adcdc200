/**
 * The twins and run settings the optimizer benchmarks share: the bundled
 * twins, the synthetic twins the strategies were tuned on, the held-out
 * and unseen synthetic twins, and the dataset sizes and headrooms each
 * twin is run at.
 */
import { bundledTwinPath, loadTwin, type Twin } from '@hwopt/twin';
// The synthetic twin generator is shared with the optimizer's tests.
import { HELD_OUT_SYNTHETIC_TWIN_SPECS, SYNTHETIC_TWIN_SPECS, syntheticTwin, UNSEEN_SYNTHETIC_TWIN_SPECS } from '../../../libs/optimizer/test/support/synthetic-twins.ts';

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
