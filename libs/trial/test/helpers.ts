import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundledTwinPath } from '@hwopt/twin';
import type { RunnerConfig, TrialSpec } from '../src/index.ts';

export const SIMULATED_RUNNER = fileURLToPath(new URL('../../twin/bin/simulated-runner.mjs', import.meta.url));
export const TEST_RUNNERS_DIR = fileURLToPath(new URL('./runners/', import.meta.url));
export const T4_TWIN = bundledTwinPath('t4');
export const GPU_UUID = 'GPU-00000000-0000-0000-0000-000000000001';

export function makeStateDir(): string {
  return mkdtempSync(join(tmpdir(), 'hwopt-trial-test-'));
}

export function simulatedRunner(stateDir: string, timeScale = 0, twin = T4_TWIN): RunnerConfig {
  return {
    kind: 'protocol',
    command: process.execPath,
    args: [SIMULATED_RUNNER],
    env: { HWOPT_TWIN: twin, HWOPT_TWIN_STATE_DIR: stateDir, HWOPT_TWIN_TIME_SCALE: String(timeScale) },
  };
}

export function testRunner(script: string, ...args: string[]): RunnerConfig {
  return { kind: 'protocol', command: process.execPath, args: [join(TEST_RUNNERS_DIR, script), ...args] };
}

let nextTrial = 0;

export function makeSpec(overrides: Partial<TrialSpec> = {}): TrialSpec {
  nextTrial++;
  return {
    trialId: `trial-${nextTrial}`,
    workload: 'visnet-pdb',
    architecture: { layers: 8, hiddenChannels: 64 },
    batchSize: 4,
    iterations: 5,
    device: { index: 0, uuid: GPU_UUID },
    ...overrides,
  };
}

/** True for a running process; a zombie (exited, not yet reaped by its new parent) counts as dead. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}
