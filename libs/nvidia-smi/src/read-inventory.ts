import { parseComputeAppsCsv, parseGpuQueryCsv } from './parse-csv.ts';
import { parseInventoryXml } from './parse-inventory-xml.ts';
import { runNvidiaSmi } from './run-nvidia-smi.ts';
import type { NvidiaSmiCommand } from './nvidia-smi-command.ts';
import type { ComputeApp, GpuInventory } from './types.ts';

export interface NvidiaSmiQueryOptions {
  /** Default `{ command: 'nvidia-smi' }`. */
  smi?: NvidiaSmiCommand;
  /** Default 10,000 ms; the process group is killed when it passes. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Reads the node's inventory with `nvidia-smi -q -x`.
 *
 * @throws NvidiaSmiError subclasses: not installed, driver not loaded,
 *   driver/library mismatch, permission denied, timeout, malformed output.
 *   A run that finds no GPU raises NoGpuFoundError; it never returns an empty inventory.
 */
export async function readInventory(options: NvidiaSmiQueryOptions = {}): Promise<GpuInventory> {
  const xml = await runNvidiaSmi(['-q', '-x'], options);
  return parseInventoryXml(xml);
}

const DEVICE_MEMORY_FIELDS = ['uuid', 'memory.used'];

/**
 * Reads how much memory is in use on one GPU, in MiB, to wait for it to
 * return to its level before a trial. Returns null when nvidia-smi does
 * not list the UUID or hides the value (`[N/A]`, `[Insufficient Permissions]`).
 */
export async function readDeviceMemoryUsed(options: NvidiaSmiQueryOptions & { gpuUuid: string }): Promise<number | null> {
  // NOTE: --query-gpu lists physical GPUs only, so a MIG UUID returns null here.
  const text = await runNvidiaSmi([`--query-gpu=${DEVICE_MEMORY_FIELDS.join(',')}`, '--format=csv,noheader,nounits'], options);
  const row = parseGpuQueryCsv(text, DEVICE_MEMORY_FIELDS).find((candidate) => candidate.uuid === options.gpuUuid);
  return row?.memoryUsedMiB ?? null;
}

const COMPUTE_APP_FIELDS = ['pid', 'process_name', 'used_memory', 'gpu_uuid'];

/** Lists the processes with a compute context on any GPU, e.g. to check that a GPU is idle before a trial. */
export async function listComputeApps(options: NvidiaSmiQueryOptions = {}): Promise<ComputeApp[]> {
  const text = await runNvidiaSmi([`--query-compute-apps=${COMPUTE_APP_FIELDS.join(',')}`, '--format=csv,noheader,nounits'], options);
  return parseComputeAppsCsv(text, COMPUTE_APP_FIELDS);
}
