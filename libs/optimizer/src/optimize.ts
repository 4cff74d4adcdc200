/**
 * Entry point: validates options, builds each stage's candidates, runs
 * the chosen strategy through the executor and returns the picks, the
 * cost and the fitted cost model.
 */
import { stageCandidates, type StageCandidates } from './candidates.ts';
import { runCalibratedStrategy } from './calibrated-strategy.ts';
import { CostModel } from './cost-model.ts';
import { parseCostModelSnapshot, sameKey, type CostModelKey, type CostModelSnapshot } from './cost-model-snapshot.ts';
import { InvalidExecutorResponseError } from './errors.ts';
import { runLegacyStrategy } from './legacy-strategy.ts';
import { validateOptimizeOptions, type OptimizeOptions, type ResolvedOptimizeOptions, type StrategyName } from './options.ts';
import type { StagePick } from './stage-pick.ts';
import { TrialLedger, architectureKey } from './trial-ledger.ts';
import type { Architecture, StageName, TrialExecutor } from './types.ts';
import { parameterCap, stageSpaces } from './workload.ts';

export interface OptimizeResult {
  stages: Record<StageName, StagePick | null>;
  /** Trials run and GPU seconds they used, as the executor reported them. */
  cost: { trials: number; gpuSeconds: number };
  model: CostModelSnapshot;
  strategy: StrategyName;
}

/** Upper bound on a parameter count the executor may report; larger is treated as corrupt. */
const MAX_PARAMETER_COUNT = 1e13;

async function fetchParameterCounts(executor: TrialExecutor, architectures: Architecture[]): Promise<Map<string, number>> {
  const counts = await executor.parameterCounts(architectures);
  if (!Array.isArray(counts) || counts.length !== architectures.length) {
    throw new InvalidExecutorResponseError(`Executor returned ${Array.isArray(counts) ? counts.length : 'no'} parameter counts for ${architectures.length} architectures. Fix the trial executor.`);
  }
  const result = new Map<string, number>();
  for (const [i, architecture] of architectures.entries()) {
    const count = counts[i];
    if (typeof count !== 'number' || !Number.isFinite(count) || count < 0 || count > MAX_PARAMETER_COUNT) {
      throw new InvalidExecutorResponseError(`Executor returned parameter count ${JSON.stringify(count)} for ${architecture.layers} layers x ${architecture.hiddenChannels} channels; expected a number in [0, ${MAX_PARAMETER_COUNT}]. Fix the trial executor.`);
    }
    result.set(architectureKey(architecture), count);
  }
  return result;
}

export function costModelKey(options: ResolvedOptimizeOptions): CostModelKey {
  return { gpuModel: options.gpuModel, memoryTotalMiB: options.memoryTotalMiB, workload: options.workload.name, workloadVersion: options.workload.version };
}

/** Runs the optimizer for one GPU. */
export async function optimize(executor: TrialExecutor, options: OptimizeOptions): Promise<OptimizeResult> {
  const resolved = validateOptimizeOptions(options);
  const key = costModelKey(resolved);
  const prior = resolved.prior === undefined ? undefined : parseCostModelSnapshot(resolved.prior);

  const spaces = stageSpaces(resolved.workload, resolved.memoryTotalMiB);
  const unique = new Map<string, Architecture>();
  for (const list of Object.values(spaces)) for (const a of list) unique.set(architectureKey(a), a);
  const parameters = await fetchParameterCounts(executor, [...unique.values()]);
  const parametersOf = (a: Architecture): number => parameters.get(architectureKey(a)) ?? Number.POSITIVE_INFINITY;
  const candidates: Record<StageName, StageCandidates> = stageCandidates(spaces, parametersOf, parameterCap(resolved.workload, resolved.datasetSize));

  const ledger = new TrialLedger({ executor, options: resolved });
  // A prior of the same GPU model counts as measurements of this GPU; others only transfer memory laws.
  const foreign: CostModelSnapshot[] = [];
  if (prior !== undefined) {
    if (sameKey(prior.key, key)) {
      ledger.addPrior(prior.observations.map((o) => ({ ...o, source: 'prior' as const })));
      foreign.push(...prior.transferred);
    } else {
      foreign.push(prior, ...prior.transferred);
    }
  }

  const stages =
    resolved.strategy === 'legacy'
      ? await runLegacyStrategy({ ledger, options: resolved, candidates })
      : await runCalibratedStrategy({ ledger, options: resolved, candidates, parametersOf, foreign });

  const model = new CostModel({ ledger, parametersOf, foreign }).snapshot(key, parameters);
  return { stages, cost: ledger.cost, model, strategy: resolved.strategy };
}
