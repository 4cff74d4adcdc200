/** The trial executor's memory monitor, backed by nvidia-smi. */
import { listComputeApps, readDeviceMemoryUsed, startMemorySampler, type NvidiaSmiCommand } from '@hwopt/nvidia-smi';
import type { DeviceMemoryMonitor } from '@hwopt/trial';
import type { Logger } from '@hwopt/common';

export function createSmiMonitor(smi: NvidiaSmiCommand, options: { intervalMs?: number; logger?: Logger } = {}): DeviceMemoryMonitor {
  return {
    usedMiB: (gpuUuid) => readDeviceMemoryUsed({ smi, gpuUuid }),
    async otherProcesses(gpuUuid) {
      const apps = await listComputeApps({ smi });
      return apps.filter((app) => app.gpuUuid === gpuUuid && app.pid !== null).map((app) => app.pid as number);
    },
    startSampling(rootPid, gpuUuid) {
      const sampler = startMemorySampler({ smi, gpuUuids: [gpuUuid], rootPid, intervalMs: options.intervalMs ?? 100, logger: options.logger });
      return {
        async stop() {
          const summary = await sampler.stop();
          return { processPeakMiB: summary.processPeakMiB, devicePeakMiB: summary.devicePeakMiB };
        },
      };
    },
  };
}
