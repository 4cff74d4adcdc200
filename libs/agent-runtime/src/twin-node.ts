/**
 * Makes a node whose GPU is a digital twin: nvidia-smi is the twin-driven
 * fake and trials run through the simulated runner. Both are real child
 * processes, so the agent exercises the same code paths as on hardware.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NvidiaSmiCommand } from '@hwopt/nvidia-smi';
import type { RunnerConfig } from '@hwopt/trial';
import { loadTwin, type Twin } from '@hwopt/twin';

const TWIN_BIN = fileURLToPath(new URL('../../twin/bin/', import.meta.url));

export interface TwinNode {
  twin: Twin;
  gpuUuid: string;
  stateDir: string;
  smi: NvidiaSmiCommand;
  runner: RunnerConfig;
}

/**
 * Sets up a twin node. `stateDir` is shared by the fake nvidia-smi and the
 * simulated runner (running trials register their memory there); its
 * `overrides.json` can change the reported driver or inject failures.
 */
export function createTwinNode(options: { twinFile: string; stateDir: string; nodeName: string; timeScale?: number }): TwinNode {
  const twinFile = resolve(options.twinFile);
  const twin = loadTwin(twinFile);
  const stateDir = resolve(options.stateDir);
  mkdirSync(join(stateDir, 'procs'), { recursive: true });
  // Stable per node, so a restarted agent reports the same GPU.
  const hash = createHash('sha256').update(`${options.nodeName}\0${twin.gpu.name}`).digest('hex');
  const gpuUuid = `GPU-${hash.slice(0, 8)}-${hash.slice(8, 12)}-${hash.slice(12, 16)}-${hash.slice(16, 20)}-${hash.slice(20, 32)}`;
  const env = {
    HWOPT_TWIN: twinFile,
    HWOPT_TWIN_STATE_DIR: stateDir,
    HWOPT_TWIN_GPU_UUID: gpuUuid,
    HWOPT_TWIN_TIME_SCALE: String(options.timeScale ?? 0),
  };
  return {
    twin,
    gpuUuid,
    stateDir,
    smi: { command: process.execPath, args: [join(TWIN_BIN, 'fake-nvidia-smi.mjs')], env },
    runner: { kind: 'protocol', command: process.execPath, args: [join(TWIN_BIN, 'simulated-runner.mjs')], env },
  };
}
