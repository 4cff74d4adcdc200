/**
 * GPU memory sampler that the executor takes as an option (in production one
 * built on nvidia-smi). Memory is in MiB as nvidia-smi counts it, so it includes
 * the CUDA context that frameworks do not count in their own peaks.
 */
export interface DeviceMemoryMonitor {
  /** Memory in use on the GPU now, in MiB; null when it cannot be read. */
  usedMiB(gpuUuid: string): Promise<number | null>;
  /** Pids of the compute processes on the GPU now. */
  otherProcesses(gpuUuid: string): Promise<number[]>;
  /**
   * Starts sampling while a trial runs. `processPeakMiB` is the peak of the
   * process tree under `rootPid`; `devicePeakMiB` is the peak of the whole
   * GPU. Either is null when no sample could be taken.
   */
  startSampling(rootPid: number, gpuUuid: string): DeviceMemorySampling;
}

export interface DeviceMemorySampling {
  stop(): Promise<{ processPeakMiB: number | null; devicePeakMiB: number | null }>;
}
