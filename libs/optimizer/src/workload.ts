/**
 * Workload descriptions: the architecture spaces, batch sizes, iteration
 * counts and parameter caps one training workload uses, and the functions
 * that derive a GPU's stage spaces from them.
 */
import { STAGE_NAMES, type Architecture, type StageName } from './types.ts';

/** Layer and hidden-channel lists of one stage's space before scaling. */
export interface StageSpaceSpec {
  layers: number[];
  hiddenChannels: number[];
}

/** One row of the tier table: the spaces for GPUs with at least `minMemoryGiB` of total memory. */
export interface MemoryTier {
  minMemoryGiB: number;
  spaces: Record<StageName, StageSpaceSpec>;
}

/** Multiplies layers and channels for GPUs with at least `minMemoryGiB` of total memory. */
export interface ScalingStep {
  minMemoryGiB: number;
  factor: number;
}

/** At most `maxParameters` trainable parameters for datasets of fewer than `belowSamples` samples. */
export interface ParameterCapRow {
  belowSamples: number;
  maxParameters: number;
}

export interface WorkloadSpec {
  name: string;
  version: string;
  /** Tiers, highest threshold first; a GPU takes the first tier whose threshold it reaches. */
  tiers: MemoryTier[];
  /** Scaling steps, highest threshold first; a GPU takes the first step whose threshold it reaches. */
  scaling: ScalingStep[];
  /** Scaled channel counts are rounded down to a multiple of this (the attention head count). */
  channelMultiple: number;
  /** Batch size the legacy maximum search doubles from, before the scaling factor. */
  startBatchSize: Record<StageName, number>;
  /** Timed iterations of a stage's stress trials; a recommended config is verified with at least these. */
  stressIterations: Record<StageName, number>;
  /** Caps by dataset size, ascending by `belowSamples`. */
  parameterCaps: ParameterCapRow[];
  /** Cap for datasets at least as large as every row's `belowSamples`. */
  parameterCapAbove: number;
  /** Training batches in one cycle: cycle minutes = this x step seconds / 60. */
  cycleBatches: number;
}

function space(layers: number[], hiddenChannels: number[]): StageSpaceSpec {
  return { layers, hiddenChannels };
}

/**
 * The ported original: a ViSNet graph network trained on protein-ligand
 * complexes (PyTorch, torch_geometric). Every constant is the original
 * tool's.
 */
export const VISNET_PDB: WorkloadSpec = {
  name: 'visnet-pdb',
  version: '1',
  tiers: [
    {
      minMemoryGiB: 16,
      spaces: {
        production: space([10, 9, 8, 7, 6, 5], [320, 256, 192, 128, 96]),
        validation: space([7, 6, 5, 4], [192, 128, 96]),
        prototyping: space([5, 4, 3], [96, 64, 48]),
        smoke_test: space([2, 1], [32, 24, 16]),
      },
    },
    {
      minMemoryGiB: 12,
      spaces: {
        production: space([8, 7, 6, 5, 4, 3], [256, 192, 128, 96, 64]),
        validation: space([6, 5, 4, 3], [128, 96, 64]),
        prototyping: space([4, 3, 2], [64, 48, 32]),
        smoke_test: space([2, 1], [32, 24, 16]),
      },
    },
    {
      minMemoryGiB: 8,
      spaces: {
        production: space([6, 5, 4], [96, 64, 48]),
        validation: space([4, 3, 2], [64, 48, 32]),
        prototyping: space([3, 2, 1], [32, 24, 16]),
        smoke_test: space([1], [16, 8]),
      },
    },
    {
      minMemoryGiB: 6,
      spaces: {
        production: space([4, 3, 2], [48, 32, 24]),
        validation: space([3, 2], [32, 24, 16]),
        prototyping: space([2, 1], [16, 8]),
        smoke_test: space([1], [8]),
      },
    },
    {
      minMemoryGiB: 0,
      spaces: {
        production: space([3, 2], [32, 24]),
        validation: space([2, 1], [24, 16]),
        prototyping: space([1], [16, 8]),
        smoke_test: space([1], [8]),
      },
    },
  ],
  scaling: [
    { minMemoryGiB: 24, factor: 1.5 },
    { minMemoryGiB: 16, factor: 1.0 },
    { minMemoryGiB: 12, factor: 1.1 },
    { minMemoryGiB: 0, factor: 1.0 },
  ],
  channelMultiple: 8,
  startBatchSize: { production: 16, validation: 32, prototyping: 64, smoke_test: 128 },
  stressIterations: { production: 20, validation: 29, prototyping: 20, smoke_test: 1 },
  parameterCaps: [
    { belowSamples: 1_000, maxParameters: 250_000 },
    { belowSamples: 10_000, maxParameters: 750_000 },
    { belowSamples: 25_000, maxParameters: 1_000_000 },
  ],
  parameterCapAbove: 2_000_000,
  cycleBatches: 450,
};

const MIB_PER_GIB = 1024;

function memoryTier(workload: WorkloadSpec, memoryTotalMiB: number): MemoryTier {
  const gib = memoryTotalMiB / MIB_PER_GIB;
  const tier = workload.tiers.find((t) => gib >= t.minMemoryGiB);
  if (tier === undefined) {
    throw new RangeError(`Workload ${workload.name} has no memory tier for ${gib} GiB; add a tier with minMemoryGiB 0`);
  }
  return tier;
}

/** The VRAM scaling factor for a GPU of `memoryTotalMiB` (1 when no step matches). */
export function scalingFactor(workload: WorkloadSpec, memoryTotalMiB: number): number {
  const gib = memoryTotalMiB / MIB_PER_GIB;
  return workload.scaling.find((s) => gib >= s.minMemoryGiB)?.factor ?? 1;
}

/**
 * Builds each stage's architecture space for a GPU: the tier's lists,
 * scaled (layers truncated, channels rounded down to the channel multiple),
 * zeros and duplicates dropped, both sorted descending, then walked
 * layers-major as production walks them.
 */
export function stageSpaces(workload: WorkloadSpec, memoryTotalMiB: number): Record<StageName, Architecture[]> {
  const tier = memoryTier(workload, memoryTotalMiB);
  const factor = scalingFactor(workload, memoryTotalMiB);
  const multiple = workload.channelMultiple;
  const result = {} as Record<StageName, Architecture[]>;
  for (const stage of STAGE_NAMES) {
    const spec = tier.spaces[stage];
    const layers = uniqueDescending(spec.layers.map((l) => Math.trunc(l * factor)));
    const channels = uniqueDescending(spec.hiddenChannels.map((c) => Math.floor((c * factor) / multiple) * multiple));
    result[stage] = layers.flatMap((l) => channels.map((c) => ({ layers: l, hiddenChannels: c })));
  }
  return result;
}

function uniqueDescending(values: number[]): number[] {
  return [...new Set(values.filter((v) => v > 0))].sort((a, b) => b - a);
}

/** Maximum trainable parameters for a dataset of `datasetSize` samples. */
export function parameterCap(workload: WorkloadSpec, datasetSize: number): number {
  const row = workload.parameterCaps.find((r) => datasetSize < r.belowSamples);
  return row?.maxParameters ?? workload.parameterCapAbove;
}

/** The legacy maximum search's first batch size: the stage's start size times the scaling factor, at least 1. */
export function scaledStartBatchSize(workload: WorkloadSpec, stage: StageName, memoryTotalMiB: number): number {
  return Math.max(1, Math.trunc(workload.startBatchSize[stage] * scalingFactor(workload, memoryTotalMiB)));
}
