import { describe, expect, it } from 'vitest';
import { findTwinArchitecture, loadTwin } from '@hwopt/twin';
import { DescribeFailedError, InvalidRunnerConfigError, describeArchitectures } from '../src/index.ts';
import { T4_TWIN, makeStateDir, simulatedRunner, testRunner } from './helpers.ts';

const twin = loadTwin(T4_TWIN);

describe('describeArchitectures', () => {
  it('returns twin parameter counts in order', async () => {
    const architectures = [
      { layers: 8, hiddenChannels: 280 },
      { layers: 8, hiddenChannels: 64 },
    ];
    const counts = await describeArchitectures(simulatedRunner(makeStateDir()), 'visnet-pdb', architectures);
    expect(counts).toEqual(architectures.map((a) => findTwinArchitecture(twin, a.layers, a.hiddenChannels)!.parameters));
  });

  it('fails for an unlisted architecture', async () => {
    const error = await describeArchitectures(simulatedRunner(makeStateDir()), 'visnet-pdb', [{ layers: 99, hiddenChannels: 1 }]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DescribeFailedError);
    expect((error as Error).message).toContain('does not list architecture');
  });

  it('fails for another workload', async () => {
    await expect(describeArchitectures(simulatedRunner(makeStateDir()), 'other-workload', [{ layers: 8, hiddenChannels: 64 }])).rejects.toThrow(/models workload visnet-pdb/);
  });

  it('times out a hanging runner', async () => {
    await expect(describeArchitectures(testRunner('hang.mjs'), 'visnet-pdb', [{ layers: 8, hiddenChannels: 64 }], { timeoutMs: 300, killGraceMs: 200 })).rejects.toThrow(/timed out/);
  });

  it('needs a protocol runner', async () => {
    await expect(describeArchitectures({ kind: 'command-template', argv: ['train.py'] }, 'visnet-pdb', [{ layers: 1, hiddenChannels: 1 }])).rejects.toBeInstanceOf(InvalidRunnerConfigError);
  });
});
