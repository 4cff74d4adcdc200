import { STAGE_NAMES, type Architecture, type StageName } from './types.ts';

export interface Candidate {
  architecture: Architecture;
  /** Trainable parameters, as the executor computed them. */
  parameters: number;
}

export interface StageCandidates {
  stage: StageName;
  /** The space the candidates came from: the stage's own, or a smaller one when none of its own is under the cap. */
  from: StageName;
  /** Candidates in the space's order (layers descending, then channels descending). */
  candidates: Candidate[];
}

/**
 * Selects each stage's candidates: the architectures of its space with at
 * most `cap` parameters. When none of a stage's space is under the cap,
 * the next smaller stage's space is tried (production, validation,
 * prototyping, smoke_test); with none anywhere the list is empty.
 */
export function stageCandidates(
  spaces: Record<StageName, Architecture[]>,
  parameters: (architecture: Architecture) => number,
  cap: number,
): Record<StageName, StageCandidates> {
  const result = {} as Record<StageName, StageCandidates>;
  for (const [index, stage] of STAGE_NAMES.entries()) {
    result[stage] = { stage, from: stage, candidates: [] };
    for (const from of STAGE_NAMES.slice(index)) {
      const candidates = spaces[from]
        .map((architecture) => ({ architecture, parameters: parameters(architecture) }))
        .filter((c) => c.parameters <= cap);
      if (candidates.length > 0) {
        result[stage] = { stage, from, candidates };
        break;
      }
    }
  }
  return result;
}

/** Selects the smoke test's architecture: fewest parameters, the later one in space order on a tie. */
export function smallestCandidate(candidates: Candidate[]): Candidate | undefined {
  let best: Candidate | undefined;
  for (const c of candidates) {
    if (best === undefined || c.parameters <= best.parameters) best = c;
  }
  return best;
}
