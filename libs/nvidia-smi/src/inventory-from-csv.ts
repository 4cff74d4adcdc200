import { MalformedOutputError } from './errors.ts';
import type { GpuInfo, GpuInventory, GpuQueryRow, NullableReason } from './types.ts';

/**
 * Builds an inventory from `--query-gpu` rows, for input that was saved as
 * CSV. The CSV form has no CUDA version and no MIG devices, so those read
 * as null and []. A row without an `index` column gets its position, which
 * is the index because nvidia-smi prints GPUs in index order.
 *
 * @throws MalformedOutputError when there are no rows: no GPU is an error, not an empty inventory.
 */
export function inventoryFromGpuQueryRows(rows: GpuQueryRow[]): GpuInventory {
  if (rows.length === 0) throw new MalformedOutputError('the CSV output has no GPU rows');

  const unknown: NullableReason[] = [{ field: 'cudaVersion', reason: 'missing' }];
  const driverVersions = new Set(rows.map((row) => row.driverVersion).filter((version) => version !== null));
  const driverVersion = driverVersions.size === 1 ? [...driverVersions][0] : null;
  if (driverVersions.size === 0) unknown.push({ field: 'driverVersion', reason: 'missing' });
  if (driverVersions.size > 1) unknown.push({ field: 'driverVersion', reason: 'unparsable', raw: [...driverVersions].join(', ') });

  const gpus = rows.map((row, position): GpuInfo => ({
    index: row.index ?? position,
    uuid: row.uuid,
    name: row.name,
    pciBusId: row.pciBusId,
    memoryTotalMiB: row.memoryTotalMiB,
    memoryUsedMiB: row.memoryUsedMiB,
    memoryFreeMiB: row.memoryFreeMiB,
    memoryReservedMiB: row.memoryReservedMiB,
    computeCapability: row.computeCapability,
    migMode: row.migMode,
    migDevices: [],
    processes: [],
    unknown: row.unknown.filter((reason) => reason.field !== 'driverVersion' && reason.field !== 'index'),
  }));
  return { driverVersion, cudaVersion: null, attachedGpus: null, gpus, unknown };
}
