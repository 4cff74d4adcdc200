/**
 * Query names nvidia-smi accepts besides the canonical name it prints in
 * the CSV header (from `nvidia-smi --help-query-gpu` and
 * `--help-query-compute-apps`, drivers 510 to 590). With a header the
 * canonical names come back; with `noheader` the caller passes what it
 * queried, so both spellings are mapped to the canonical name.
 */
const GPU_FIELD_ALIASES: Readonly<Record<string, string>> = {
  gpu_name: 'name',
  gpu_uuid: 'uuid',
  gpu_bus_id: 'pci.bus_id',
  gpu_serial: 'serial',
  'clocks.gr': 'clocks.current.graphics',
  'clocks.sm': 'clocks.current.sm',
  'clocks.mem': 'clocks.current.memory',
  'clocks.video': 'clocks.current.video',
  'clocks.applications.gr': 'clocks.applications.graphics',
  'clocks.applications.mem': 'clocks.applications.memory',
  'clocks.max.gr': 'clocks.max.graphics',
  'clocks.max.mem': 'clocks.max.memory',
  'mig.mode': 'mig.mode.current',
};

const COMPUTE_APP_FIELD_ALIASES: Readonly<Record<string, string>> = {
  name: 'process_name',
  used_memory: 'used_gpu_memory',
};

export type CsvQueryKind = 'gpu' | 'compute-apps';

/** Returns the canonical name of a queried field or of a header cell (its `[unit]` suffix removed). */
export function canonicalFieldName(kind: CsvQueryKind, nameOrHeader: string): string {
  const name = nameOrHeader.replace(/\s*\[[^\]]*\]\s*$/, '').trim();
  const aliases = kind === 'gpu' ? GPU_FIELD_ALIASES : COMPUTE_APP_FIELD_ALIASES;
  return aliases[name] ?? name;
}
