/**
 * What the coordinator and an agent exchange, independent of the transport
 * (the gRPC app maps these to and from hwopt.v1 messages).
 */
import type { Architecture } from '@hwopt/optimizer';

export interface GpuReport {
  index: number;
  uuid: string;
  name: string;
  memoryTotalMiB: number | null;
  computeCapability: string | null;
  migMode: string | null;
  parentUuid: string | null;
  migProfile: string | null;
}

export interface InventoryReport {
  driverVersion: string | null;
  cudaVersion: string | null;
  gpus: GpuReport[];
  stale: boolean;
  rebootPending: boolean;
  error: string | null;
}

export interface AgentHello {
  nodeName: string;
  hostname: string;
  labels: Record<string, string>;
  agentVersion: string;
  inventory: InventoryReport;
  workloads: string[];
}

export interface TrialAssignment {
  trialId: string;
  gpuUuid: string;
  workload: string;
  architecture: Architecture;
  batchSize: number;
  iterations: number;
  timeoutMs: number;
}

export interface TrialResultReport {
  trialId: string;
  gpuUuid: string;
  architecture: Architecture;
  batchSize: number;
  iterations: number;
  outcome: 'ok' | 'oom' | 'failed';
  failure: { kind: string; summary: string; requestedBytes: number | null; totalBytes: number | null; freeBytes: number | null } | null;
  devicePeakMiB: number | null;
  processPeakMiB: number | null;
  frameworkPeakAllocatedBytes: number | null;
  frameworkPeakReservedBytes: number | null;
  step: { meanSeconds: number; p50Seconds: number; minSeconds: number; maxSeconds: number; count: number } | null;
  parameterCount: number | null;
  gpuSeconds: number;
  wallSeconds: number;
}

/** The coordinator's side of one connected agent. */
export interface AgentLink {
  assignTrial(assignment: TrialAssignment): void;
  acknowledgeResult(trialId: string): void;
  cancelTrial(trialId: string, reason: string): void;
  requestDescribe(requestId: string, workload: string, architectures: Architecture[]): void;
  /** Ends the session from the coordinator's side. */
  close(reason: string): void;
}
