import { parse } from 'csv-parse/sync';
import { canonicalFieldName, type CsvQueryKind } from './csv-fields.ts';
import { MalformedOutputError } from './errors.ts';
import { ReasonCollector, readInteger, readMiB, readText, readVersion } from './field-value.ts';
import type { ComputeApp, GpuQueryRow, NullableReason } from './types.ts';

/** Largest CSV text accepted, in characters. A 212-field row is about 5 kB, so this leaves wide room for any real query. */
export const MAX_CSV_CHARS = 16 * 1024 * 1024;

/** Columns whose text may itself contain commas, because nvidia-smi never quotes CSV cells. */
const FREE_TEXT_FIELDS = new Set(['process_name']);

interface CsvTable {
  /** Canonical field names, in column order. */
  fields: string[];
  rows: Array<{ cells: Record<string, string>; reasons: NullableReason[] }>;
}

/**
 * Parses `--query-gpu=... --format=csv` output, with or without
 * `noheader` and `nounits`. Columns are mapped by name: from the header
 * when there is one, else from `fields`, the list the caller queried.
 *
 * @throws MalformedOutputError when there is no header and no `fields`.
 */
export function parseGpuQueryCsv(text: string, fields?: string[]): GpuQueryRow[] {
  const table = readCsvTable('gpu', text, fields);
  return table.rows.map(({ cells, reasons: rowReasons }) => {
    const reasons = new ReasonCollector();
    reasons.reasons.push(...rowReasons);
    const read = <T>(reader: (field: string, raw: unknown) => { value: T; reason: null } | { value: null; reason: NullableReason }, field: string, column: string) =>
      reasons.take(reader(field, cells[column]));

    return {
      index: read(readInteger, 'index', 'index'),
      uuid: read(readText, 'uuid', 'uuid'),
      name: read(readText, 'name', 'name'),
      pciBusId: read(readText, 'pciBusId', 'pci.bus_id'),
      memoryTotalMiB: read(readMiB, 'memoryTotalMiB', 'memory.total'),
      memoryUsedMiB: read(readMiB, 'memoryUsedMiB', 'memory.used'),
      memoryFreeMiB: read(readMiB, 'memoryFreeMiB', 'memory.free'),
      memoryReservedMiB: read(readMiB, 'memoryReservedMiB', 'memory.reserved'),
      driverVersion: read(readText, 'driverVersion', 'driver_version'),
      computeCapability: read(readVersion, 'computeCapability', 'compute_cap'),
      migMode: read(readText, 'migMode', 'mig.mode.current'),
      row: cells,
      unknown: reasons.reasons,
    };
  });
}

/**
 * Parses `--query-compute-apps=... --format=csv` output, with or without
 * `noheader` and `nounits`. Header-only output (no process) returns [].
 *
 * @throws MalformedOutputError when there is no header and no `fields`.
 */
export function parseComputeAppsCsv(text: string, fields?: string[]): ComputeApp[] {
  const table = readCsvTable('compute-apps', text, fields);
  return table.rows.map(({ cells, reasons: rowReasons }) => {
    const reasons = new ReasonCollector();
    reasons.reasons.push(...rowReasons);
    const usedMemory = readMiB('usedMemoryMiB', cells.used_gpu_memory);
    return {
      pid: reasons.take(readInteger('pid', cells.pid)),
      // Kept as printed (an empty name stays ''), because Windows hides some names.
      processName: cells.process_name ?? null,
      gpuUuid: reasons.take(readText('gpuUuid', cells.gpu_uuid)),
      gpuName: reasons.take(readText('gpuName', cells.gpu_name)),
      usedMemoryMiB: reasons.take(usedMemory),
      usedMemoryRaw: cells.used_gpu_memory ?? null,
      row: cells,
      unknown: reasons.reasons,
    };
  });
}

function readCsvTable(kind: CsvQueryKind, text: string, fields: string[] | undefined): CsvTable {
  if (typeof text !== 'string') throw new MalformedOutputError('the CSV output is not text');
  if (text.length > MAX_CSV_CHARS) {
    throw new MalformedOutputError(`the CSV output is ${text.length} characters, more than the ${MAX_CSV_CHARS} accepted`);
  }

  let records: string[][];
  try {
    records = parse(text, {
      delimiter: ',',
      // nvidia-smi never quotes, so a quote in a process name is text.
      quote: false,
      trim: true,
      bom: true,
      relax_column_count: true,
      skip_empty_lines: true,
    }) as string[][];
  } catch (error) {
    throw new MalformedOutputError('the CSV parser rejected the output', { outputExcerpt: text.slice(0, 2000) }, { cause: error });
  }

  const queried = fields?.map((field) => canonicalFieldName(kind, field));
  let columns: string[];
  let dataRecords = records;
  if (queried === undefined) {
    if (records.length === 0) return { fields: [], rows: [] };
    columns = records[0].map((cell) => canonicalFieldName(kind, cell));
    dataRecords = records.slice(1);
  } else {
    columns = queried;
    // Output with a header is read by its header even when the caller passed the fields.
    if (records[0] && looksLikeHeader(kind, records[0], queried)) {
      columns = records[0].map((cell) => canonicalFieldName(kind, cell));
      dataRecords = records.slice(1);
    }
  }
  if (columns.length === 0 || columns.some((column) => column === '')) {
    throw new MalformedOutputError('the CSV header has an empty column name', { outputExcerpt: text.slice(0, 2000) });
  }

  return { fields: columns, rows: dataRecords.map((record) => mapRecord(columns, record)) };
}

/** Field names with an optional unit, e.g. `memory.used [MiB]`; values such as GPU names have spaces. */
const HEADER_CELL_PATTERN = /^[A-Za-z_][A-Za-z0-9_.]*(?: \[[^\]]+\])?$/;

/** Returns whether a first line is a header: every cell has a field name's shape, and one of them is a queried field. */
function looksLikeHeader(kind: CsvQueryKind, record: string[], queried: string[]): boolean {
  if (!record.every((cell) => HEADER_CELL_PATTERN.test(cell))) return false;
  return record.some((cell) => queried.includes(canonicalFieldName(kind, cell)));
}

/**
 * Maps one record to its columns. A comma inside a process name yields
 * extra cells, which are joined back with "," (a space after such a comma is lost).
 */
function mapRecord(columns: string[], record: string[]): { cells: Record<string, string>; reasons: NullableReason[] } {
  const cells: Record<string, string> = {};
  const reasons: NullableReason[] = [];
  let values = record;

  if (record.length > columns.length) {
    const freeTextColumn = columns.findIndex((column) => FREE_TEXT_FIELDS.has(column));
    if (freeTextColumn === -1) {
      reasons.push({ field: 'row', reason: 'unparsable', raw: record.join(', ').slice(0, 500) });
      return { cells, reasons };
    }
    const extra = record.length - columns.length;
    values = [
      ...record.slice(0, freeTextColumn),
      record.slice(freeTextColumn, freeTextColumn + extra + 1).join(','),
      ...record.slice(freeTextColumn + extra + 1),
    ];
  }

  // A short record (output cut off mid-line) leaves its last columns absent, so they read as missing.
  columns.forEach((column, position) => {
    if (position < values.length) cells[column] = values[position];
  });
  return { cells, reasons };
}
