import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DeviceMemoryMonitor, DeviceMemorySampling } from '../src/index.ts';

interface ProcEntry {
  pid: number;
  gpuUuid: string;
  usedMiB: number;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Test double of the nvidia-smi sampler: reads the `<stateDir>/procs/<pid>.json`
 * files that the simulated runner writes, as the fake nvidia-smi does.
 * `baseMiB` is memory in use that belongs to no listed process.
 */
export class ProcFileMonitor implements DeviceMemoryMonitor {
  usedReadings = 0;

  constructor(
    private readonly stateDir: string,
    public baseMiB = 0,
    private readonly sampleIntervalMs = 5,
  ) {}

  entries(gpuUuid: string): ProcEntry[] {
    let names: string[];
    try {
      names = readdirSync(join(this.stateDir, 'procs'));
    } catch {
      return [];
    }
    const entries: ProcEntry[] = [];
    for (const name of names.filter((file) => file.endsWith('.json'))) {
      try {
        const entry = JSON.parse(readFileSync(join(this.stateDir, 'procs', name), 'utf8')) as ProcEntry;
        if (entry.gpuUuid === gpuUuid && isAlive(entry.pid)) entries.push(entry);
      } catch {
        // A file removed between readdir and read.
      }
    }
    return entries;
  }

  async usedMiB(gpuUuid: string): Promise<number | null> {
    this.usedReadings++;
    return this.baseMiB + this.entries(gpuUuid).reduce((sum, entry) => sum + entry.usedMiB, 0);
  }

  async otherProcesses(gpuUuid: string): Promise<number[]> {
    return this.entries(gpuUuid).map((entry) => entry.pid);
  }

  startSampling(rootPid: number, gpuUuid: string): DeviceMemorySampling {
    let processPeakMiB: number | null = null;
    let devicePeakMiB: number | null = null;
    const sample = () => {
      const entries = this.entries(gpuUuid);
      const device = this.baseMiB + entries.reduce((sum, entry) => sum + entry.usedMiB, 0);
      devicePeakMiB = Math.max(devicePeakMiB ?? 0, device);
      const own = entries.find((entry) => entry.pid === rootPid);
      if (own) processPeakMiB = Math.max(processPeakMiB ?? 0, own.usedMiB);
    };
    sample();
    const timer = setInterval(sample, this.sampleIntervalMs);
    return {
      stop: async () => {
        clearInterval(timer);
        return { processPeakMiB, devicePeakMiB };
      },
    };
  }
}
