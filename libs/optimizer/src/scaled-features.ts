/**
 * The scaled quantities the memory and time regressions are built from,
 * so both models read architecture and batch size the same way.
 */
import type { Architecture } from './types.ts';

/** Batch sizes enter the regressions in hundreds so that the normal equations stay well conditioned. */
export const BATCH_UNIT = 100;

export interface ScaledFeatures {
  /** Trainable parameters in millions. */
  p: number;
  /** Layers x hidden channels in thousands. */
  lc: number;
  /** Batch size in units of BATCH_UNIT. */
  b: number;
}

export function scaledFeatures(a: Architecture, parameters: number, batchSize: number): ScaledFeatures {
  return { p: parameters / 1e6, lc: (a.layers * a.hiddenChannels) / 1e3, b: batchSize / BATCH_UNIT };
}
