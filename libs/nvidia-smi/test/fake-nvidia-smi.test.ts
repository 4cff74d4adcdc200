import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DriverLibraryMismatchError,
  DriverNotLoadedError,
  listComputeApps,
  NvidiaSmiTimeoutError,
  PermissionDeniedError,
  readDeviceMemoryUsed,
  readInventory,
  type NvidiaSmiCommand,
} from '../src/index.ts';

// The twin-driven fake that the agent uses with --twin, checked through this library's own readers.
const FAKE_PATH = fileURLToPath(new URL('../../twin/bin/fake-nvidia-smi.mjs', import.meta.url));
const T4_TWIN = fileURLToPath(new URL('../../twin/twins/t4.json', import.meta.url));
const GPU_UUID = 'GPU-11111111-2222-3333-4444-555555555555';

const sleepers: ChildProcess[] = [];
afterEach(() => {
  for (const child of sleepers.splice(0)) child.kill('SIGKILL');
});

function twinState(): { smi: NvidiaSmiCommand; stateDir: string } {
  const stateDir = mkdtempSync(join(tmpdir(), 'hwopt-fake-smi-'));
  mkdirSync(join(stateDir, 'procs'));
  const smi = { command: FAKE_PATH, env: { HWOPT_TWIN: T4_TWIN, HWOPT_TWIN_STATE_DIR: stateDir, HWOPT_TWIN_GPU_UUID: GPU_UUID } };
  return { smi, stateDir };
}

/** Starts a process that stands in for a trial and registers it as a compute app of `usedMiB`. */
function startTrialProcess(stateDir: string, usedMiB: number, gpuUuid = GPU_UUID): number {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  sleepers.push(child);
  writeFileSync(join(stateDir, 'procs', `${child.pid}.json`), JSON.stringify({ pid: child.pid, gpuUuid, usedMiB }));
  return child.pid!;
}

describe('fake nvidia-smi', () => {
  it('prints an inventory from the twin', async () => {
    const { smi } = twinState();
    const inventory = await readInventory({ smi });
    expect(inventory.driverVersion).toBe('535.183.01');
    expect(inventory.cudaVersion).toBe('12.2');
    expect(inventory.gpus).toHaveLength(1);
    expect(inventory.gpus[0].uuid).toBe(GPU_UUID);
    expect(inventory.gpus[0].name).toBe('Tesla T4');
    expect(inventory.gpus[0].memoryTotalMiB).toBe(15360);
    expect(inventory.gpus[0].memoryUsedMiB).toBe(0);
    expect(inventory.gpus[0].computeCapability).toBe('7.5');
  });

  it('lists live trial processes only', async () => {
    const { smi, stateDir } = twinState();
    const pid = startTrialProcess(stateDir, 4567);
    startTrialProcess(stateDir, 100, 'GPU-other');
    writeFileSync(join(stateDir, 'procs', '999999999.json'), JSON.stringify({ pid: 999999999, gpuUuid: GPU_UUID, usedMiB: 5 }));

    const apps = await listComputeApps({ smi });
    expect(apps.map((app) => [app.pid, app.usedMemoryMiB, app.gpuUuid])).toEqual([[pid, 4567, GPU_UUID]]);
    expect(await readDeviceMemoryUsed({ smi, gpuUuid: GPU_UUID })).toBe(4567);
    expect((await readInventory({ smi })).gpus[0].processes.map((process) => process.pid)).toEqual([pid]);
  });

  it('applies driver overrides', async () => {
    const { smi, stateDir } = twinState();
    writeFileSync(join(stateDir, 'overrides.json'), JSON.stringify({ driverVersion: '550.54.15', cudaVersion: '12.4' }));
    const inventory = await readInventory({ smi });
    expect(inventory.driverVersion).toBe('550.54.15');
    expect(inventory.cudaVersion).toBe('12.4');
  });

  it.each([
    ['nvml-mismatch', DriverLibraryMismatchError],
    ['no-driver', DriverNotLoadedError],
    ['permission-denied', PermissionDeniedError],
    ['hang', NvidiaSmiTimeoutError],
  ] as const)('fails as the real tool on %s', async (failure, errorClass) => {
    const { smi, stateDir } = twinState();
    writeFileSync(join(stateDir, 'overrides.json'), JSON.stringify({ failure }));
    await expect(readInventory({ smi, timeoutMs: 1_000 })).rejects.toBeInstanceOf(errorClass);
  });
});
