/** What an agent reports of one GPU, in storage terms. */
export interface GpuRecordInput {
  uuid: string;
  index: number;
  name: string;
  memoryTotalMiB: number | null;
  computeCapability: string | null;
  migMode: string | null;
  parentUuid: string | null;
  migProfile: string | null;
}

export interface NodeReport {
  name: string;
  hostname: string;
  labels: Record<string, string>;
  agentVersion: string;
  driverVersion: string | null;
  cudaVersion: string | null;
  rebootPending: boolean;
  inventoryStale: boolean;
  gpus: GpuRecordInput[];
}

export interface TrialResultInput {
  trialId: string;
  outcome: 'ok' | 'oom' | 'failed';
  failureKind: string | null;
  failureSummary: string | null;
  devicePeakMiB: number | null;
  processPeakMiB: number | null;
  frameworkPeakAllocatedBytes: number | null;
  frameworkPeakReservedBytes: number | null;
  stepSecondsMean: number | null;
  stepSecondsP50: number | null;
  stepSecondsMin: number | null;
  stepSecondsMax: number | null;
  parameterCount: number | null;
  gpuSeconds: number;
  wallSeconds: number;
}

/** One stage's pick as the optimizer returns it. */
export interface StageConfigInput {
  stage: string;
  layers: number;
  hiddenChannels: number;
  batchSize: number;
  parameters: number;
  peakMiB: number | null;
  stepSeconds: number | null;
  cycleMinutes: number | null;
  inWindow: boolean | null;
  candidatesFrom: string;
  verifiedTrialId: string | null;
  evidence: Record<string, unknown>;
}
