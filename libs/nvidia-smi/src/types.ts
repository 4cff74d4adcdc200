/**
 * Why a value is `null`: the element or column was absent, or nvidia-smi
 * printed a placeholder in place of a value.
 */
export type NullReasonKind =
  | 'missing'
  | 'n/a'
  | 'not_supported'
  | 'insufficient_permissions'
  | 'unparsable'
  | 'deprecated'
  | 'gpu_lost'
  | 'unknown_error';

/** A field that was read as `null`, with the reason and the text nvidia-smi printed. */
export interface NullableReason {
  /** The field's name in this library's types, e.g. `memoryTotalMiB` or `migDevices[0].memoryUsedMiB`. */
  field: string;
  reason: NullReasonKind;
  /** The text nvidia-smi printed, absent when the field was missing. */
  raw?: string;
}

/** A MIG instance, which CUDA addresses as a device of its own. */
export interface MigDevice {
  /** Position of the MIG device under its parent GPU. */
  index: number | null;
  /** `MIG-...` UUID. Schemas v10 to v12 do not print it inside `-q -x`, so it is null there. */
  uuid: string | null;
  gpuInstanceId: number | null;
  computeInstanceId: number | null;
  /** UUID of the physical GPU that contains this instance. */
  parentUuid: string | null;
  /** The instance's own memory budget, in MiB. */
  memoryTotalMiB: number | null;
  memoryUsedMiB: number | null;
  /** Profile name such as `3g.40gb`, when the output states it. */
  profile?: string | null;
}

/** A process with a context on a GPU, as listed under `<processes>` or by `--query-compute-apps`. */
export interface GpuProcess {
  pid: number | null;
  /** `C` (compute), `G` (graphics) or `C+G`; null where the output does not state it. */
  type: string | null;
  processName: string | null;
  /** GPU memory held by the process, in MiB; null on Windows WDDM and where hidden. */
  usedMemoryMiB: number | null;
  /** The text nvidia-smi printed for the memory, e.g. `547 MiB` or `[N/A]`. */
  usedMemoryRaw: string | null;
}

/** One physical GPU. */
export interface GpuInfo {
  /** nvidia-smi's enumeration index: the GPU's position in the output. */
  index: number;
  uuid: string | null;
  name: string | null;
  pciBusId: string | null;
  /** Framebuffer memory in MiB, as nvidia-smi prints it (1 MiB = 2^20 bytes). */
  memoryTotalMiB: number | null;
  memoryUsedMiB: number | null;
  memoryFreeMiB: number | null;
  /** Memory the driver reserves for itself; printed since driver R510. */
  memoryReservedMiB: number | null;
  /** CUDA compute capability such as `8.0`; absent from most `-q -x` schemas. */
  computeCapability: string | null;
  /** Current MIG mode (`Enabled` or `Disabled`); null on GPUs without MIG. */
  migMode: string | null;
  migDevices: MigDevice[];
  processes: GpuProcess[];
  /** Every field of this GPU (and of its MIG devices) that was read as null, with the reason. */
  unknown: NullableReason[];
}

/** Inventory of a node's GPUs as nvidia-smi reports them. */
export interface GpuInventory {
  driverVersion: string | null;
  /** Highest CUDA version the driver supports; absent before driver 410 and `N/A` on some hosts. */
  cudaVersion: string | null;
  /** `attached_gpus` as printed; it can exceed `gpus.length` where output was filtered. */
  attachedGpus: number | null;
  gpus: GpuInfo[];
  /** Node-level fields read as null, with the reason. */
  unknown: NullableReason[];
}

/** One row of `--query-gpu ... --format=csv`. */
export interface GpuQueryRow {
  /** The `index` column; null when it was not queried. */
  index: number | null;
  uuid: string | null;
  name: string | null;
  pciBusId: string | null;
  memoryTotalMiB: number | null;
  memoryUsedMiB: number | null;
  memoryFreeMiB: number | null;
  memoryReservedMiB: number | null;
  driverVersion: string | null;
  computeCapability: string | null;
  migMode: string | null;
  /** Every column by its canonical field name (unit suffix removed), with the text as printed. */
  row: Record<string, string>;
  unknown: NullableReason[];
}

/** One row of `--query-compute-apps ... --format=csv`. */
export interface ComputeApp {
  pid: number | null;
  processName: string | null;
  /** UUID of the GPU the process runs on; for MIG, the parent GPU's UUID. */
  gpuUuid: string | null;
  gpuName: string | null;
  usedMemoryMiB: number | null;
  usedMemoryRaw: string | null;
  row: Record<string, string>;
  unknown: NullableReason[];
}
