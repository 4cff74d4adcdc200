import { describe, expect, it } from 'vitest';
import { bundledTwinPath, loadTwin, TwinArchitectureNotFoundError, TwinTrialExecutor } from '../src/index.ts';

describe('TwinTrialExecutor', () => {
  const twin = loadTwin(bundledTwinPath('t4'));

  it('reports peak and step of a fitting trial', async () => {
    const executor = new TwinTrialExecutor(twin);
    const m = await executor.runTrial({ stage: 'production', architecture: { layers: 8, hiddenChannels: 64 }, batchSize: 3, iterations: 5, purpose: 'probe' });
    expect(m.outcome).toBe('ok');
    expect(m.peakMiB).toBe(988);
    expect(m.stepSeconds).toBeCloseTo(0.046652 + 0.025393 * 3, 9);
    expect(m.gpuSeconds).toBeCloseTo(8 + 5 * (0.046652 + 0.025393 * 3), 9);
    expect(executor.trials).toBe(1);
  });

  it('reports out-of-memory without peak or step', async () => {
    const m = await new TwinTrialExecutor(twin).runTrial({ stage: 'production', architecture: { layers: 8, hiddenChannels: 64 }, batchSize: 1000, iterations: 20, purpose: 'probe' });
    expect(m.outcome).toBe('oom');
    expect(m.peakMiB).toBeNull();
    expect(m.stepSeconds).toBeNull();
    expect(m.gpuSeconds).toBeCloseTo(8 + 0.046652 + 0.025393 * 1000, 9);
  });

  it('fails a trial of an unknown architecture', async () => {
    const m = await new TwinTrialExecutor(twin).runTrial({ stage: 'production', architecture: { layers: 99, hiddenChannels: 8 }, batchSize: 1, iterations: 3, purpose: 'probe' });
    expect(m.outcome).toBe('failed');
    expect(m.failureKind).toBe('unknown_architecture');
    expect(m.failureMessage).toMatch(/99 layers/);
  });

  it('fails a trial with a fractional batch size', async () => {
    const m = await new TwinTrialExecutor(twin).runTrial({ stage: 'production', architecture: { layers: 8, hiddenChannels: 64 }, batchSize: 1.5, iterations: 3, purpose: 'probe' });
    expect(m.outcome).toBe('failed');
    expect(m.failureKind).toBe('invalid_request');
  });

  it('returns parameter counts in request order', async () => {
    const counts = await new TwinTrialExecutor(twin).parameterCounts([{ layers: 8, hiddenChannels: 280 }, { layers: 8, hiddenChannels: 208 }]);
    expect(counts).toEqual([5400400, 2993872]);
  });

  it('rejects parameter counts of an unknown architecture', async () => {
    await expect(new TwinTrialExecutor(twin).parameterCounts([{ layers: 99, hiddenChannels: 8 }])).rejects.toBeInstanceOf(TwinArchitectureNotFoundError);
  });
});
