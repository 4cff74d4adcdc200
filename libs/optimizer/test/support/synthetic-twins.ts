/**
 * Synthetic twins for proving the strategies on GPUs they were not tuned
 * on: other memory sizes, allocator granularities, quadratic memory terms
 * and per-architecture jitter in memory and time. Deterministic per seed.
 */
import { parseTwin, type Twin, type TwinArchitecture } from '@hwopt/twin';
import { stageSpaces, VISNET_PDB, type Architecture } from '../../src/index.ts';

export interface SyntheticTwinSpec {
  name: string;
  memoryTotalMiB: number;
  granularityMiB: number;
  seed: number;
  /**
   * Seed of the memory laws. Twins sharing it run the same workload on
   * different GPUs: identical memory laws apart from the reserve and the
   * allocator's rounding, as memory carries over across GPU models.
   */
  lawSeed: number;
  /** perSampleSquaredMiB as a fraction of perSampleMiB (0: linear memory); part of the memory laws. */
  squaredFraction: number;
  /** Multiplies every step time (larger is a slower GPU). */
  slowdown: number;
}

export const SYNTHETIC_TWIN_SPECS: SyntheticTwinSpec[] = [
  { name: 'synthetic-8gb', memoryTotalMiB: 8192, granularityMiB: 64, seed: 11, lawSeed: 101, squaredFraction: 0.004, slowdown: 2.5 },
  { name: 'synthetic-12gb', memoryTotalMiB: 12288, granularityMiB: 512, seed: 12, lawSeed: 101, squaredFraction: 0.004, slowdown: 1.6 },
  { name: 'synthetic-24gb', memoryTotalMiB: 24576, granularityMiB: 20, seed: 13, lawSeed: 102, squaredFraction: 0.001, slowdown: 1.2 },
  { name: 'synthetic-80gb', memoryTotalMiB: 81920, granularityMiB: 2, seed: 14, lawSeed: 102, squaredFraction: 0.001, slowdown: 0.9 },
  { name: 'synthetic-80gb-slow', memoryTotalMiB: 81559, granularityMiB: 32, seed: 15, lawSeed: 103, squaredFraction: 0, slowdown: 2.2 },
];

/**
 * Held-out twins: never used to set the strategies' constants, so that
 * results on them estimate how the strategies do on an unseen GPU. They
 * cover memory sizes from 10 to 94 GiB and rounding steps from 2 to 512
 * MiB, with seeds and law seeds of their own. Two of them share a law seed,
 * as one workload on two GPUs.
 */
export const HELD_OUT_SYNTHETIC_TWIN_SPECS: SyntheticTwinSpec[] = [
  { name: 'held-out-10gb', memoryTotalMiB: 10240, granularityMiB: 256, seed: 31, lawSeed: 301, squaredFraction: 0, slowdown: 3 },
  { name: 'held-out-16gb', memoryTotalMiB: 16384, granularityMiB: 8, seed: 32, lawSeed: 302, squaredFraction: 0.002, slowdown: 1.4 },
  { name: 'held-out-20gb', memoryTotalMiB: 20480, granularityMiB: 4, seed: 33, lawSeed: 302, squaredFraction: 0.002, slowdown: 2 },
  { name: 'held-out-32gb', memoryTotalMiB: 32768, granularityMiB: 512, seed: 34, lawSeed: 303, squaredFraction: 0.003, slowdown: 1.8 },
  { name: 'held-out-48gb', memoryTotalMiB: 49152, granularityMiB: 128, seed: 35, lawSeed: 304, squaredFraction: 0.0005, slowdown: 1 },
  { name: 'held-out-94gb', memoryTotalMiB: 96256, granularityMiB: 2, seed: 36, lawSeed: 305, squaredFraction: 0.001, slowdown: 0.7 },
];

/**
 * A second validation set, built after the held-out one had been used to
 * judge changes. It is only compared before and after a round of tuning,
 * never to choose between changes. Memory sizes from 11 to 141 GiB,
 * rounding steps from 2 to 512 MiB, seeds and law seeds of their own.
 */
export const UNSEEN_SYNTHETIC_TWIN_SPECS: SyntheticTwinSpec[] = [
  { name: 'unseen-11gb', memoryTotalMiB: 11264, granularityMiB: 512, seed: 51, lawSeed: 501, squaredFraction: 0.003, slowdown: 2.5 },
  { name: 'unseen-24gb', memoryTotalMiB: 24576, granularityMiB: 20, seed: 52, lawSeed: 502, squaredFraction: 0.0015, slowdown: 1.3 },
  { name: 'unseen-40gb', memoryTotalMiB: 40960, granularityMiB: 256, seed: 53, lawSeed: 503, squaredFraction: 0.004, slowdown: 1 },
  { name: 'unseen-64gb', memoryTotalMiB: 65536, granularityMiB: 64, seed: 54, lawSeed: 504, squaredFraction: 0, slowdown: 1.7 },
  { name: 'unseen-141gb', memoryTotalMiB: 144384, granularityMiB: 2, seed: 55, lawSeed: 505, squaredFraction: 0.002, slowdown: 0.8 },
];

/** Returns a seeded Mulberry32 generator of numbers in [0, 1). It is small and enough for reproducible jitter. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function syntheticTwin(spec: SyntheticTwinSpec): Twin {
  const next = seededRandom(spec.seed);
  const jitter = (fraction: number) => 1 + fraction * (2 * next() - 1);
  const lawFamily = seededRandom(spec.lawSeed);
  const memoryScale = 1 + 0.2 * (2 * lawFamily() - 1);
  const perSampleScale = 1 + 0.3 * (2 * lawFamily() - 1);
  // Memory jitter depends on the architecture and the law seed only, so it is the same on every GPU of a family.
  const memoryJitter = (a: Architecture, salt: number, fraction: number) => 1 + fraction * (2 * seededRandom(spec.lawSeed * 7919 + a.layers * 1009 + a.hiddenChannels * 17 + salt)() - 1);
  const spaces = stageSpaces(VISNET_PDB, spec.memoryTotalMiB);
  const unique = new Map<string, Architecture>();
  for (const list of Object.values(spaces)) for (const a of list) unique.set(`${a.layers}x${a.hiddenChannels}`, a);

  const architectures: TwinArchitecture[] = [...unique.values()].map(({ layers, hiddenChannels: c }) => {
    const parameters = 8 * layers * c * c + 30 * layers * c + 4 * c * c + 2000;
    const lc = layers * c;
    const arch = { layers, hiddenChannels: c };
    const perSampleMiB = Number(((30 + 0.25 * lc) * perSampleScale * memoryJitter(arch, 1, 0.03)).toFixed(3));
    return {
      layers,
      hiddenChannels: c,
      parameters,
      fixedMiB: Number(((180 + 0.0375 * lc + 1.526e-5 * parameters) * memoryScale * memoryJitter(arch, 2, 0.03)).toFixed(3)),
      perSampleMiB,
      perSampleSquaredMiB: Number((perSampleMiB * spec.squaredFraction * memoryJitter(arch, 3, 0.1)).toFixed(5)),
      stepSecondsFixed: Number((spec.slowdown * (0.01 + 1e-8 * parameters) * jitter(0.1)).toFixed(6)),
      stepSecondsPerSample: Number((spec.slowdown * (2.8e-5 * lc + 1.7e-8 * parameters) * jitter(0.15)).toFixed(7)),
    };
  });

  return parseTwin(
    {
      format: 'hwopt-twin/1',
      gpu: { name: `Synthetic ${spec.name}`, memoryTotalMiB: spec.memoryTotalMiB, driverVersion: '0.0', cudaVersion: null, computeCapability: null },
      workload: 'visnet-pdb',
      memory: { reservedMiB: Math.round(250 + 350 * next()), granularityMiB: spec.granularityMiB },
      trialOverheadSeconds: Number((5 + 7 * next()).toFixed(2)),
      architectures,
    },
    spec.name,
  );
}
