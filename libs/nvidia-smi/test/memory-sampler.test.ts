import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { listProcessTree, startMemorySampler, type NvidiaSmiCommand } from '../src/index.ts';

const FAKE_PATH = fileURLToPath(new URL('../../twin/bin/fake-nvidia-smi.mjs', import.meta.url));
const T4_TWIN = fileURLToPath(new URL('../../twin/twins/t4.json', import.meta.url));
const GPU_UUID = 'GPU-11111111-2222-3333-4444-555555555555';

const started: ChildProcess[] = [];
afterEach(() => {
  for (const child of started.splice(0)) child.kill('SIGKILL');
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `condition` holds, because the fake's start-up time varies with machine load. */
async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(20);
  }
}

function twinState(): { smi: NvidiaSmiCommand; stateDir: string } {
  const stateDir = mkdtempSync(join(tmpdir(), 'hwopt-sampler-'));
  mkdirSync(join(stateDir, 'procs'));
  return { smi: { command: FAKE_PATH, env: { HWOPT_TWIN: T4_TWIN, HWOPT_TWIN_STATE_DIR: stateDir, HWOPT_TWIN_GPU_UUID: GPU_UUID } }, stateDir };
}

/** Starts `sh` with one `sleep` child, standing in for a trial whose worker is a child process. */
async function startTrialTree(): Promise<{ rootPid: number; workerPid: number }> {
  const root = spawn('sh', ['-c', 'sleep 30 & echo $!; wait'], { stdio: ['ignore', 'pipe', 'ignore'] });
  started.push(root);
  const workerPid = await new Promise<number>((resolve) => root.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim()))));
  started.push({ kill: () => { try { process.kill(workerPid, 'SIGKILL'); } catch { /* gone */ } } } as ChildProcess);
  return { rootPid: root.pid!, workerPid };
}

function setUsage(stateDir: string, pid: number, usedMiB: number): void {
  writeFileSync(join(stateDir, 'procs', `${pid}.json`), JSON.stringify({ pid, gpuUuid: GPU_UUID, usedMiB }));
}

describe.skipIf(process.platform !== 'linux')('listProcessTree', () => {
  it('includes children of the root', async () => {
    const { rootPid, workerPid } = await startTrialTree();
    expect(listProcessTree(rootPid)).toEqual(expect.arrayContaining([rootPid, workerPid]));
  });
});

describe.skipIf(process.platform !== 'linux')('startMemorySampler', () => {
  it('records process and device peaks', async () => {
    const { smi, stateDir } = twinState();
    const { rootPid, workerPid } = await startTrialTree();
    const outsider = spawn('sleep', ['30'], { stdio: 'ignore' });
    started.push(outsider);
    setUsage(stateDir, workerPid, 1000);
    setUsage(stateDir, outsider.pid!, 500);

    const sampler = startMemorySampler({ smi, gpuUuids: [GPU_UUID], rootPid, intervalMs: 50 });
    await waitFor(() => sampler.peek().processPeakMiB === 1000 && sampler.peek().sampleCount > 0);
    setUsage(stateDir, workerPid, 3000);
    await waitFor(() => sampler.peek().processPeakMiB === 3000 && sampler.peek().devicePeakMiB === 3500);
    setUsage(stateDir, workerPid, 2000);
    await sleep(300);
    const summary = await sampler.stop();

    expect(summary.processPeakMiB).toBe(3000);
    expect(summary.devicePeakMiB).toBe(3500);
    expect(summary.deviceBaselineMiB).toBe(1500);
    expect(summary.sampleCount).toBeGreaterThan(2);
    expect(summary.processSampleCount).toBeGreaterThan(2);
    expect(summary.errors).toEqual([]);
  });

  it('reports null when no trial process is listed', async () => {
    const { smi } = twinState();
    const { rootPid } = await startTrialTree();
    const sampler = startMemorySampler({ smi, gpuUuids: [GPU_UUID], rootPid, intervalMs: 50 });
    await waitFor(() => sampler.peek().sampleCount >= 3);
    const summary = await sampler.stop();

    expect(summary.processPeakMiB).toBeNull();
    expect(summary.devicePeakMiB).toBe(0);
  });

  it('stops its nvidia-smi processes', async () => {
    const { smi, stateDir } = twinState();
    const { rootPid } = await startTrialTree();
    const sampler = startMemorySampler({ smi, gpuUuids: [GPU_UUID], rootPid, intervalMs: 50 });
    await waitFor(() => sampler.peek().sampleCount > 0);
    expect(readFakePids(stateDir)).toHaveLength(2);

    await sampler.stop();
    await sampler.stop();
    expect(readFakePids(stateDir)).toEqual([]);
  });

  it('records a driver failure during sampling', async () => {
    const { smi, stateDir } = twinState();
    writeFileSync(join(stateDir, 'overrides.json'), JSON.stringify({ failure: 'nvml-mismatch' }));
    const { rootPid } = await startTrialTree();
    const sampler = startMemorySampler({ smi, gpuUuids: [GPU_UUID], rootPid, intervalMs: 50 });
    await waitFor(() => sampler.peek().errors.length === 2);
    const summary = await sampler.stop();

    expect(summary.devicePeakMiB).toBeNull();
    expect(summary.errors.map((error) => error.code)).toEqual(['NVIDIA_DRIVER_LIBRARY_MISMATCH', 'NVIDIA_DRIVER_LIBRARY_MISMATCH']);
  });

  it('rejects a too short interval', () => {
    expect(() => startMemorySampler({ gpuUuids: [], rootPid: process.pid, intervalMs: 1 })).toThrow(/intervalMs/);
  });
});

/** Lists running (not zombie) processes started with this state folder in their environment: the fake's sampling loops. */
function readFakePids(stateDir: string): number[] {
  const marker = `HWOPT_TWIN_STATE_DIR=${stateDir}\0`;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
      if (state !== 'Z' && readFileSync(`/proc/${entry}/environ`, 'utf8').includes(marker)) pids.push(Number(entry));
    } catch {
      // Exited, or owned by another user.
    }
  }
  return pids;
}
