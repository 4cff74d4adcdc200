/**
 * A TrialExecutor over a twin: runs trials in process by applying the
 * twin's laws, so that the optimizer can be exercised without a GPU.
 */
import type { Architecture, TrialExecutor, TrialMeasurement, TrialRequest } from '@hwopt/optimizer';
import { evaluateTwinTrial, findTwinArchitecture, type Twin } from './twin.ts';

export class TwinArchitectureNotFoundError extends Error {
  readonly code = 'TWIN_ARCHITECTURE_NOT_FOUND';

  constructor(twinName: string, architecture: Architecture) {
    super(
      `Twin ${twinName} has no architecture with ${architecture.layers} layers and ${architecture.hiddenChannels} hidden channels; ` +
        'add it to the twin file or use a twin that covers the workload\'s stage spaces.',
    );
    this.name = 'TwinArchitectureNotFoundError';
  }
}

export class TwinTrialExecutor implements TrialExecutor {
  private trialCount = 0;

  constructor(readonly twin: Twin) {}

  /** Trials run so far. */
  get trials(): number {
    return this.trialCount;
  }

  async parameterCounts(architectures: Architecture[]): Promise<number[]> {
    return architectures.map((a) => {
      const found = findTwinArchitecture(this.twin, a.layers, a.hiddenChannels);
      if (found === undefined) throw new TwinArchitectureNotFoundError(this.twin.gpu.name, a);
      return found.parameters;
    });
  }

  /**
   * Applies the twin's laws. Out-of-memory trials report neither a peak nor
   * a step time, as a real trial that fails on its first iteration cannot.
   * An architecture the twin does not list fails with outcome `failed`.
   */
  async runTrial(request: TrialRequest): Promise<TrialMeasurement> {
    this.trialCount += 1;
    const { layers, hiddenChannels } = request.architecture;
    const arch = findTwinArchitecture(this.twin, layers, hiddenChannels);
    if (arch === undefined) {
      return {
        outcome: 'failed',
        peakMiB: null,
        stepSeconds: null,
        gpuSeconds: 0,
        failureKind: 'unknown_architecture',
        failureMessage: new TwinArchitectureNotFoundError(this.twin.gpu.name, request.architecture).message,
      };
    }
    if (!Number.isInteger(request.batchSize) || request.batchSize < 1 || !Number.isInteger(request.iterations) || request.iterations < 1) {
      return {
        outcome: 'failed',
        peakMiB: null,
        stepSeconds: null,
        gpuSeconds: 0,
        failureKind: 'invalid_request',
        failureMessage: `Batch size ${request.batchSize} and iterations ${request.iterations} must both be whole numbers >= 1.`,
      };
    }
    const outcome = evaluateTwinTrial(this.twin, arch, request.batchSize, request.iterations);
    if (outcome.outOfMemory) {
      return { outcome: 'oom', peakMiB: null, stepSeconds: null, gpuSeconds: outcome.gpuSeconds };
    }
    return { outcome: 'ok', peakMiB: outcome.peakMiB, stepSeconds: outcome.stepSeconds, gpuSeconds: outcome.gpuSeconds };
  }
}
