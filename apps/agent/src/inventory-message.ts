/** Maps the nvidia-smi inventory to the hwopt.v1 message the coordinator stores. */
import type { InventorySnapshot } from '@hwopt/nvidia-smi';
import type { Gpu, Inventory } from '@hwopt/proto';

export function inventoryMessage(snapshot: InventorySnapshot): Inventory {
  const inventory = snapshot.inventory;
  const gpus: Gpu[] = [];
  for (const gpu of inventory?.gpus ?? []) {
    // A GPU without a UUID cannot be addressed by trials; it is left out.
    if (!gpu.uuid) continue;
    gpus.push({
      index: gpu.index,
      uuid: gpu.uuid,
      name: gpu.name ?? 'unknown GPU',
      memoryTotalMib: gpu.memoryTotalMiB ?? undefined,
      memoryUsedMib: gpu.memoryUsedMiB ?? undefined,
      memoryReservedMib: gpu.memoryReservedMiB ?? undefined,
      computeCapability: gpu.computeCapability ?? '',
      migMode: gpu.migMode ?? '',
      parentUuid: '',
      migProfile: '',
    });
    // Each MIG instance is a device of its own with its own memory budget.
    for (const mig of gpu.migDevices) {
      const uuid = mig.uuid ?? (mig.gpuInstanceId !== null ? `${gpu.uuid}/gi${mig.gpuInstanceId}/ci${mig.computeInstanceId ?? 0}` : null);
      if (!uuid) continue;
      gpus.push({
        index: gpu.index,
        uuid,
        name: `${gpu.name ?? 'unknown GPU'} MIG ${mig.profile ?? ''}`.trim(),
        memoryTotalMib: mig.memoryTotalMiB ?? undefined,
        memoryUsedMib: mig.memoryUsedMiB ?? undefined,
        memoryReservedMib: undefined,
        computeCapability: gpu.computeCapability ?? '',
        migMode: 'Instance',
        parentUuid: gpu.uuid,
        migProfile: mig.profile ?? '',
      });
    }
  }
  return {
    driverVersion: inventory?.driverVersion ?? '',
    cudaVersion: inventory?.cudaVersion ?? '',
    gpus,
    stale: snapshot.stale,
    rebootPending: snapshot.rebootPending,
    error: snapshot.error?.message.slice(0, 500) ?? '',
    observedAt: snapshot.observedAt,
  };
}
