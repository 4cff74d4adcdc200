import type { StageCandidates } from './candidates.ts';
import type { CostModelSnapshot } from './cost-model-snapshot.ts';
import { runLegacyStrategy } from './legacy-strategy.ts';
import type { ResolvedOptimizeOptions } from './options.ts';
import type { StagePick } from './stage-pick.ts';
import type { TrialLedger } from './trial-ledger.ts';
import type { Architecture, StageName } from './types.ts';

export interface CalibratedContext {
  ledger: TrialLedger;
  options: ResolvedOptimizeOptions;
  candidates: Record<StageName, StageCandidates>;
  parametersOf: (a: Architecture) => number;
  foreign: CostModelSnapshot[];
}

// TODO: replace with the model-guided search; the legacy search stands in until then.
export async function runCalibratedStrategy(context: CalibratedContext): Promise<Record<StageName, StagePick | null>> {
  return runLegacyStrategy(context);
}
