import { readFile, stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { InvalidInputError, parseDecimal } from '@hwopt/common';
import {
  inventoryFromGpuQueryRows,
  MAX_CSV_CHARS,
  MAX_INVENTORY_XML_CHARS,
  parseGpuQueryCsv,
  parseInventoryXml,
  readInventory,
  type GpuInventory,
  type NvidiaSmiCommand,
} from '@hwopt/nvidia-smi';

interface GpusOptions {
  fromXml?: string;
  fromCsv?: string;
  fields?: string;
  json?: boolean;
  timeoutMs?: string;
}

export interface GpusCommandDependencies {
  /** nvidia-smi to run when no file is given. Default `{ command: 'nvidia-smi' }`. */
  smi?: NvidiaSmiCommand;
  /** Reads the live inventory; replaceable in tests. Default `readInventory` of `@hwopt/nvidia-smi`. */
  readInventory?: typeof readInventory;
  /** Receives the printed text. Default `process.stdout.write`. */
  write?: (text: string) => void;
}

/**
 * Registers `hwopt-agent gpus`, which prints the GPU inventory from a live
 * nvidia-smi or from a saved `-q -x` or `--query-gpu` CSV file.
 * Invalid arguments and unreadable input raise an error with a one-line message.
 */
export function registerGpusCommand(program: Command, deps: GpusCommandDependencies = {}): void {
  program
    .command('gpus')
    .description('Print the GPU inventory read from nvidia-smi (driver, CUDA, memory, MIG devices)')
    .option('--from-xml <file>', 'read saved `nvidia-smi -q -x` output instead of running nvidia-smi')
    .option('--from-csv <file>', 'read saved `nvidia-smi --query-gpu=... --format=csv` output instead of running nvidia-smi')
    .option('--fields <list>', 'comma-separated fields that were queried, for --from-csv input saved with noheader')
    .option('--timeout-ms <ms>', 'time nvidia-smi may take, in milliseconds (default 10000)')
    .option('--json', 'print the inventory as JSON')
    .action(async (options: GpusOptions) => {
      const inventory = await loadInventory(options, deps);
      const write = deps.write ?? ((text: string) => void process.stdout.write(text));
      write(options.json ? `${JSON.stringify(inventory, null, 2)}\n` : formatInventoryTable(inventory));
    });
}

async function loadInventory(options: GpusOptions, deps: GpusCommandDependencies): Promise<GpuInventory> {
  if (options.fromXml !== undefined && options.fromCsv !== undefined) {
    throw new InvalidInputError('--from-xml and --from-csv cannot be combined: pass one input file.');
  }
  if (options.fields !== undefined && options.fromCsv === undefined) {
    throw new InvalidInputError('--fields applies to --from-csv input only: add --from-csv FILE or drop --fields.');
  }

  if (options.fromXml !== undefined) {
    return parseInventoryXml(await readInputFile('--from-xml', options.fromXml, MAX_INVENTORY_XML_CHARS));
  }
  if (options.fromCsv !== undefined) {
    const fields = options.fields?.split(',').map((field) => field.trim()).filter((field) => field !== '');
    if (fields !== undefined && fields.length === 0) throw new InvalidInputError('--fields is empty: pass the queried fields, e.g. --fields uuid,name,memory.total.');
    const text = await readInputFile('--from-csv', options.fromCsv, MAX_CSV_CHARS);
    return inventoryFromGpuQueryRows(parseGpuQueryCsv(text, fields));
  }

  const timeoutMs = parseTimeoutMs(options.timeoutMs);
  return (deps.readInventory ?? readInventory)({ smi: deps.smi, timeoutMs });
}

function parseTimeoutMs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const timeoutMs = parseDecimal(value);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    throw new InvalidInputError(`--timeout-ms must be a positive whole number of milliseconds, got "${value}".`);
  }
  return timeoutMs;
}

async function readInputFile(option: string, path: string, maxChars: number): Promise<string> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (error) {
    throw new InvalidInputError(`Cannot read ${option} file "${path}": ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}. Pass the path of a readable file.`);
  }
  // Characters never outnumber bytes in UTF-8, so the byte size bounds the text.
  if (size > maxChars) {
    throw new InvalidInputError(`${option} file "${path}" is ${size} bytes, more than the ${maxChars} accepted: pass nvidia-smi output.`);
  }
  return readFile(path, 'utf8');
}

const NULL_CELL = '-';

function cell(value: string | number | null): string {
  return value === null ? NULL_CELL : String(value);
}

function formatMiB(value: number | null): string {
  return value === null ? NULL_CELL : `${value} MiB`;
}

/** Formats the inventory as a text table; a value nvidia-smi did not state prints as "-". */
export function formatInventoryTable(inventory: GpuInventory): string {
  const header = ['IDX', 'NAME', 'UUID', 'TOTAL', 'USED', 'RESERVED', 'CC', 'MIG'];
  const rows: string[][] = [];
  for (const gpu of inventory.gpus) {
    rows.push([
      String(gpu.index),
      cell(gpu.name),
      cell(gpu.uuid),
      formatMiB(gpu.memoryTotalMiB),
      formatMiB(gpu.memoryUsedMiB),
      formatMiB(gpu.memoryReservedMiB),
      cell(gpu.computeCapability),
      cell(gpu.migMode),
    ]);
    for (const mig of gpu.migDevices) {
      const id = `GI ${cell(mig.gpuInstanceId)} CI ${cell(mig.computeInstanceId)}`;
      rows.push([`  ${gpu.index}.${cell(mig.index)}`, `MIG ${id}`, cell(mig.uuid), formatMiB(mig.memoryTotalMiB), formatMiB(mig.memoryUsedMiB), '', '', '']);
    }
  }

  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const formatRow = (row: string[]) => row.map((text, column) => text.padEnd(widths[column])).join('  ').trimEnd();
  const lines = [
    `Driver ${cell(inventory.driverVersion)}  CUDA ${cell(inventory.cudaVersion)}  GPUs ${inventory.gpus.length}`,
    formatRow(header),
    ...rows.map(formatRow),
  ];
  return `${lines.join('\n')}\n`;
}
