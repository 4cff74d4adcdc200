import type { Logger } from '@hwopt/common';
import { sleep } from '@hwopt/common';
import type { DeviceMemoryMonitor } from './device-memory-monitor.ts';

export interface MemoryReleaseOptions {
  /** Used memory above the pre-trial level still counted as released, in MiB (sampling noise, driver caches). */
  toleranceMiB: number;
  /** How long to wait for the memory to return, in milliseconds. */
  timeoutMs: number;
  /** Delay between readings, in milliseconds. */
  pollIntervalMs: number;
  logger: Logger;
}

/**
 * Waits until the GPU's used memory is back at `baselineMiB` (plus the
 * tolerance). Returns false when it is not back in time, or null when the
 * monitor cannot read it.
 */
export async function waitForMemoryRelease(
  monitor: DeviceMemoryMonitor,
  gpuUuid: string,
  baselineMiB: number,
  options: MemoryReleaseOptions,
): Promise<boolean | null> {
  const deadline = Date.now() + options.timeoutMs;
  let lastMiB: number | null = null;
  for (;;) {
    try {
      lastMiB = await monitor.usedMiB(gpuUuid);
    } catch (error) {
      options.logger.warn({ err: error, gpuUuid }, 'reading GPU memory after the trial failed');
      lastMiB = null;
    }
    if (lastMiB !== null && lastMiB <= baselineMiB + options.toleranceMiB) return true;
    if (Date.now() >= deadline) break;
    await sleep(Math.min(options.pollIntervalMs, Math.max(0, deadline - Date.now())));
  }
  if (lastMiB === null) return null;
  options.logger.warn(
    { gpuUuid, baselineMiB, usedMiB: lastMiB, waitedMs: options.timeoutMs },
    'GPU memory did not return to its pre-trial level; the next trial on this GPU will see it as busy',
  );
  return false;
}
