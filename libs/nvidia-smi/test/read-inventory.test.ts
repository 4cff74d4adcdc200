import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  DriverLibraryMismatchError,
  DriverNotLoadedError,
  InventoryPoller,
  listComputeApps,
  MalformedOutputError,
  NoGpuFoundError,
  NvidiaSmiError,
  NvidiaSmiNotFoundError,
  NvidiaSmiTimeoutError,
  PermissionDeniedError,
  readDeviceMemoryUsed,
  readInventory,
  type NvidiaSmiCommand,
} from '../src/index.ts';

const FAKES_DIR = fileURLToPath(new URL('./fakes/', import.meta.url));
/**
 * Lists the processes of a process group that are still running. Killed
 * processes may linger as zombies where PID 1 does not reap orphans
 * (containers), so zombies do not count.
 */
function liveProcessesInGroup(groupId: number): number[] {
  const live: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // Fields after the command name, which is in parentheses: state, ppid, pgrp, ...
    const [state, , processGroup] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(processGroup) === groupId && state !== 'Z') live.push(Number(entry));
  }
  return live;
}

const fake = (name: string, env: Record<string, string> = {}): NvidiaSmiCommand => ({ command: join(FAKES_DIR, name), env });

describe('readInventory', () => {
  it('reads a real capture', async () => {
    const inventory = await readInventory({ smi: fake('print-fixture.sh', { FAKE_SMI_FIXTURE: 'xml/v10-440.82-dual-rtx2080ti.xml' }) });
    expect(inventory.driverVersion).toBe('440.82');
    expect(inventory.gpus).toHaveLength(2);
  });

  it.each([
    ['no-driver.sh', DriverNotLoadedError, 'NVIDIA_DRIVER_NOT_LOADED'],
    ['nvml-mismatch.sh', DriverLibraryMismatchError, 'NVIDIA_DRIVER_LIBRARY_MISMATCH'],
    ['permission-denied.sh', PermissionDeniedError, 'NVIDIA_SMI_PERMISSION_DENIED'],
    ['no-devices.sh', NoGpuFoundError, 'NVIDIA_SMI_NO_GPU_FOUND'],
    ['truncated-xml.sh', MalformedOutputError, 'NVIDIA_SMI_MALFORMED_OUTPUT'],
    ['not-xml.sh', MalformedOutputError, 'NVIDIA_SMI_MALFORMED_OUTPUT'],
  ] as const)('%s raises its error class', async (script, errorClass, code) => {
    const failure = await readInventory({ smi: fake(script) }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(errorClass);
    expect((failure as NvidiaSmiError).code).toBe(code);
  });

  it('raises not found for a missing executable', async () => {
    const failure = await readInventory({ smi: { command: join(FAKES_DIR, 'no-such-nvidia-smi') } }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(NvidiaSmiNotFoundError);
    expect((failure as Error).message).toContain('no-such-nvidia-smi');
  });

  it('raises permission denied for a file that is not executable', async () => {
    const failure = await readInventory({ smi: { command: join(FAKES_DIR, '..', 'fixtures', 'nvidia-smi', 'README.md') } }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(PermissionDeniedError);
  });

  it('times out a tool that never exits', async () => {
    const started = Date.now();
    const failure = await readInventory({ smi: fake('hang.sh'), timeoutMs: 300 }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(NvidiaSmiTimeoutError);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it.skipIf(process.platform !== 'linux')('kills the process tree on timeout', async () => {
    const pidFile = join(mkdtempSync(join(tmpdir(), 'hwopt-smi-')), 'pid');
    const failure = await readInventory({ smi: fake('hang-with-child.sh', { FAKE_SMI_PID_FILE: pidFile }), timeoutMs: 300 }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(NvidiaSmiTimeoutError);

    const groupId = Number(readFileSync(pidFile, 'utf8'));
    expect(groupId).toBeGreaterThan(0);
    expect(liveProcessesInGroup(groupId)).toEqual([]);
  });

  it('rejects with the abort reason', async () => {
    const controller = new AbortController();
    const pending = readInventory({ smi: fake('hang.sh'), timeoutMs: 5_000, signal: controller.signal });
    setTimeout(() => controller.abort(new Error('agent stopping')), 100);
    await expect(pending).rejects.toThrow('agent stopping');
  });
});

describe('CSV queries', () => {
  it('reads device memory used by UUID', async () => {
    const smi = fake('print-fixture.sh', { FAKE_SMI_FIXTURE: 'csv/noheader-nounits-2018-gtx1070ti.csv' });
    // The fixture's first columns are not uuid,memory.used, so the row reads as unparsable and no UUID matches.
    expect(await readDeviceMemoryUsed({ smi, gpuUuid: 'GPU-00000000-0000-0000-0000-000000000001' })).toBeNull();
  });

  it('lists compute apps', async () => {
    const smi = fake('print-fixture.sh', { FAKE_SMI_FIXTURE: 'csv/compute-apps-595.80-l40s-idle-header-only.csv' });
    expect(await listComputeApps({ smi })).toEqual([]);
  });
});

describe('InventoryPoller', () => {
  function switchable(mode: string): { smi: NvidiaSmiCommand; setMode: (next: string) => void } {
    const modeFile = join(mkdtempSync(join(tmpdir(), 'hwopt-smi-')), 'mode');
    writeFileSync(modeFile, mode);
    return { smi: fake('switchable.sh', { FAKE_SMI_MODE_FILE: modeFile }), setMode: (next) => writeFileSync(modeFile, next) };
  }

  it('keeps the last inventory on mismatch', async () => {
    const { smi, setMode } = switchable('ok');
    let nowMs = 1_000_000;
    const poller = new InventoryPoller({ smi, nowMs: () => nowMs, random: () => 0, backoffBaseMs: 1_000 });

    const first = await poller.poll();
    expect(first.stale).toBe(false);
    expect(first.inventory?.driverVersion).toBe('535.54.03');

    setMode('nvml-mismatch');
    const second = await poller.poll();
    expect(second.error).toBeInstanceOf(DriverLibraryMismatchError);
    expect(second.rebootPending).toBe(true);
    expect(second.stale).toBe(true);
    expect(second.inventory).toBe(first.inventory);

    setMode('ok');
    nowMs += 1_001;
    const third = await poller.poll();
    expect(third.stale).toBe(false);
    expect(third.rebootPending).toBe(false);
    expect(third.error).toBeNull();
  });

  it('backs off after a timeout', async () => {
    const { smi, setMode } = switchable('hang');
    let nowMs = 1_000_000;
    const poller = new InventoryPoller({ smi, timeoutMs: 200, nowMs: () => nowMs, random: () => 0.5, backoffBaseMs: 1_000, backoffCapMs: 10_000 });

    const first = await poller.poll();
    expect(first.error).toBeInstanceOf(NvidiaSmiTimeoutError);
    expect(first.inventory).toBeNull();
    expect(first.nextAttemptAt?.getTime()).toBe(nowMs + 1_000 + 500);

    // Within the backoff no nvidia-smi runs: a healthy tool would otherwise answer.
    setMode('ok');
    nowMs += 1_000;
    const skipped = await poller.poll();
    expect(skipped.error).toBeInstanceOf(NvidiaSmiTimeoutError);
    expect(skipped.stale).toBe(true);

    nowMs += 600;
    const recovered = await poller.poll();
    expect(recovered.error).toBeNull();
    expect(recovered.inventory?.gpus).toHaveLength(1);
  });

  it('reports a missing tool as an error, not zero GPUs', async () => {
    const poller = new InventoryPoller({ smi: { command: join(FAKES_DIR, 'no-such-nvidia-smi') } });
    const snapshot = await poller.poll();
    expect(snapshot.inventory).toBeNull();
    expect(snapshot.error).toBeInstanceOf(NvidiaSmiNotFoundError);
  });

  it('shares one run between overlapping polls', async () => {
    const { smi } = switchable('ok');
    const poller = new InventoryPoller({ smi });
    const [first, second] = await Promise.all([poller.poll(), poller.poll()]);
    expect(second).toBe(first);
  });
});
