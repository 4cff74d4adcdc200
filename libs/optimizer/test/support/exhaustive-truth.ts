/**
 * The stage rules evaluated exhaustively from a twin's laws: every batch
 * size of every candidate, no search. Test code only; the optimizer never
 * reads a twin's laws.
 */
import { findTwinArchitecture, twinPeakMiB, twinStepSeconds, type Twin } from '@hwopt/twin';
import { parameterCap, stageSpaces, VISNET_PDB, STAGE_NAMES, type Architecture, type OptimizeResult, type StageName } from '../../src/index.ts';

export interface TruthOptions {
  datasetSize: number;
  headroom: number;
  maxBatchSize?: number;
  windows?: { prototyping: [number, number]; validation: [number, number] };
}

export interface TruthPick {
  layers: number;
  hiddenChannels: number;
  batchSize: number;
  inWindow: boolean | null;
  candidatesFrom: StageName;
}

/** Reduces an optimizer result to the fields exhaustiveTruth returns, so that the two compare with toEqual. */
export function picksOf(result: OptimizeResult): Record<StageName, TruthPick | null> {
  const picks = {} as Record<StageName, TruthPick | null>;
  for (const stage of STAGE_NAMES) {
    const p = result.stages[stage];
    picks[stage] = p === null ? null : { layers: p.layers, hiddenChannels: p.hiddenChannels, batchSize: p.batchSize, inWindow: p.inWindow, candidatesFrom: p.candidatesFrom };
  }
  return picks;
}

export function truthMaxBatch(twin: Twin, a: Architecture, headroom: number, maxBatchSize: number): number {
  const arch = findTwinArchitecture(twin, a.layers, a.hiddenChannels)!;
  const limit = twin.gpu.memoryTotalMiB * (1 - headroom);
  for (let b = maxBatchSize; b >= 1; b--) {
    if (twinPeakMiB(twin, arch, b) <= limit) return b;
  }
  return 0;
}

export function exhaustiveTruth(twin: Twin, options: TruthOptions): Record<StageName, TruthPick | null> {
  const maxBatchSize = options.maxBatchSize ?? 8192;
  const windows = options.windows ?? { prototyping: [10, 40], validation: [70, 110] };
  const spaces = stageSpaces(VISNET_PDB, twin.gpu.memoryTotalMiB);
  const cap = parameterCap(VISNET_PDB, options.datasetSize);
  const params = (a: Architecture) => findTwinArchitecture(twin, a.layers, a.hiddenChannels)!.parameters;
  const result = {} as Record<StageName, TruthPick | null>;

  for (const [index, stage] of STAGE_NAMES.entries()) {
    let from: StageName | null = null;
    let candidates: Architecture[] = [];
    for (const space of STAGE_NAMES.slice(index)) {
      candidates = spaces[space].filter((a) => params(a) <= cap);
      if (candidates.length > 0) {
        from = space;
        break;
      }
    }
    result[stage] = null;
    if (from === null) continue;

    if (stage === 'smoke_test') {
      const smallest = candidates.reduce((best, a) => (params(a) <= params(best) ? a : best));
      if (truthMaxBatch(twin, smallest, options.headroom, maxBatchSize) >= 1) {
        result[stage] = { layers: smallest.layers, hiddenChannels: smallest.hiddenChannels, batchSize: 1, inWindow: null, candidatesFrom: from };
      }
      continue;
    }
    if (stage === 'production') {
      for (const a of candidates) {
        const m = truthMaxBatch(twin, a, options.headroom, maxBatchSize);
        if (m >= 1) {
          result[stage] = { layers: a.layers, hiddenChannels: a.hiddenChannels, batchSize: m, inWindow: null, candidatesFrom: from };
          break;
        }
      }
      continue;
    }

    const window = windows[stage];
    let best: { a: Architecture; m: number; distance: number; throughput: number; parameters: number } | null = null;
    for (const a of candidates) {
      const m = truthMaxBatch(twin, a, options.headroom, maxBatchSize);
      if (m < 1) continue;
      const step = twinStepSeconds(findTwinArchitecture(twin, a.layers, a.hiddenChannels)!, m);
      const cycle = (450 * step) / 60;
      const distance = cycle < window[0] ? window[0] - cycle : cycle > window[1] ? cycle - window[1] : 0;
      const entry = { a, m, distance, throughput: m / step, parameters: params(a) };
      const better =
        best === null ||
        entry.distance < best.distance ||
        (entry.distance === best.distance && (entry.throughput > best.throughput || (entry.throughput === best.throughput && entry.parameters > best.parameters)));
      if (better) best = entry;
    }
    if (best !== null) {
      result[stage] = { layers: best.a.layers, hiddenChannels: best.a.hiddenChannels, batchSize: best.m, inWindow: best.distance === 0, candidatesFrom: from };
    }
  }
  return result;
}
