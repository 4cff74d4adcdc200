/**
 * What a measurement depends on: the GPU model and its memory (a MIG
 * profile is its own model), the driver and CUDA versions, and the
 * workload's name and version. Runs with equal keys share cost models.
 */
export interface CalibrationKeyParts {
  gpuModel: string;
  memoryTotalMiB: number;
  driverVersion: string | null;
  cudaVersion: string | null;
  workload: string;
  workloadVersion: string;
}

export function calibrationKey(parts: CalibrationKeyParts): string {
  return [parts.gpuModel, `${parts.memoryTotalMiB}MiB`, `driver=${parts.driverVersion ?? 'unknown'}`, `cuda=${parts.cudaVersion ?? 'unknown'}`, `${parts.workload}@${parts.workloadVersion}`].join('|');
}
