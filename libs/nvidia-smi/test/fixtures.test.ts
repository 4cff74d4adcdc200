import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseComputeAppsCsv, parseGpuQueryCsv, parseInventoryXml, placeholderReason } from '../src/index.ts';
import type { NullableReason } from '../src/index.ts';

// Every capture under fixtures/nvidia-smi/{xml,csv} is checked against its
// NAME.expected.json sidecar (snake_case keys; null = the file does not
// state the value), so a new capture needs no new test code.
const FIXTURES_DIR = fileURLToPath(new URL('./fixtures/nvidia-smi/', import.meta.url));

type Sidecar = Record<string, any>;

function captures(folder: string, extension: string): Array<{ file: string; text: string; expected: Sidecar }> {
  const dir = join(FIXTURES_DIR, folder);
  return readdirSync(dir)
    .filter((file) => file.endsWith(extension))
    .sort()
    .map((file) => {
      const sidecarPath = join(dir, file.slice(0, -extension.length) + '.expected.json');
      if (!existsSync(sidecarPath)) throw new Error(`capture ${file} has no sidecar ${sidecarPath}`);
      return { file, text: readFileSync(join(dir, file), 'utf8'), expected: JSON.parse(readFileSync(sidecarPath, 'utf8')) };
    });
}

/**
 * Checks a value that may be null. The sidecar keeps placeholders as
 * printed (`N/A`); the library turns them into null plus a reason.
 */
function expectNullable(label: string, actual: unknown, expected: unknown, unknown: NullableReason[], field: string): void {
  if (expected === undefined) return;
  if (expected === null) {
    expect(actual, `${label}: expected null`).toBeNull();
    return;
  }
  const reason = typeof expected === 'string' ? placeholderReason(expected) : null;
  if (reason) {
    expect(actual, `${label}: placeholder "${expected}" must read as null`).toBeNull();
    expect(unknown.find((entry) => entry.field === field)?.reason, `${label}: reason kept in unknown[]`).toBe(reason);
    return;
  }
  expect(actual, label).toEqual(expected);
}

const xmlCaptures = captures('xml', '.xml');
const csvCaptures = captures('csv', '.csv');

describe('nvidia-smi -q -x captures', () => {
  it('finds captures', () => {
    expect(xmlCaptures.length).toBeGreaterThan(0);
  });

  it.each(xmlCaptures.map((capture) => [capture.file, capture] as const))('%s', (_file, { text, expected }) => {
    const inventory = parseInventoryXml(text);

    expectNullable('driver_version', inventory.driverVersion, expected.driver_version, inventory.unknown, 'driverVersion');
    expectNullable('cuda_version', inventory.cudaVersion, expected.cuda_version, inventory.unknown, 'cudaVersion');
    expectNullable('attached_gpus', inventory.attachedGpus, expected.attached_gpus, inventory.unknown, 'attachedGpus');
    if (expected.gpu_count !== undefined) expect(inventory.gpus.length, 'gpu_count').toBe(expected.gpu_count);

    (expected.gpus ?? []).forEach((want: Sidecar, position: number) => {
      const gpu = inventory.gpus[position];
      const label = (key: string) => `gpus[${position}].${key}`;
      expect(gpu, label('present')).toBeDefined();
      const check = (key: string, actual: unknown, field: string) => expectNullable(label(key), actual, want[key], gpu.unknown, field);

      check('index', gpu.index, 'index');
      check('pci_bus_id', gpu.pciBusId, 'pciBusId');
      check('name', gpu.name, 'name');
      check('uuid', gpu.uuid, 'uuid');
      check('memory_total_mib', gpu.memoryTotalMiB, 'memoryTotalMiB');
      check('memory_used_mib', gpu.memoryUsedMiB, 'memoryUsedMiB');
      check('memory_free_mib', gpu.memoryFreeMiB, 'memoryFreeMiB');
      check('memory_reserved_mib', gpu.memoryReservedMiB, 'memoryReservedMiB');
      check('mig_mode', gpu.migMode, 'migMode');
      check('compute_capability', gpu.computeCapability, 'computeCapability');
      expectNullable(label('driver_version'), inventory.driverVersion, want.driver_version, inventory.unknown, 'driverVersion');
      expectNullable(label('cuda_version'), inventory.cudaVersion, want.cuda_version, inventory.unknown, 'cudaVersion');

      const wantMig: Sidecar[] = want.mig_devices ?? [];
      expect(gpu.migDevices.length, label('mig_devices.length')).toBe(wantMig.length);
      wantMig.forEach((mig, migPosition) => {
        const actual = gpu.migDevices[migPosition];
        const migLabel = (key: string) => label(`mig_devices[${migPosition}].${key}`);
        const field = (name: string) => `migDevices[${migPosition}].${name}`;
        expectNullable(migLabel('index'), actual.index, mig.index, gpu.unknown, field('index'));
        expectNullable(migLabel('uuid'), actual.uuid, mig.uuid, gpu.unknown, field('uuid'));
        expectNullable(migLabel('gpu_instance_id'), actual.gpuInstanceId, mig.gpu_instance_id, gpu.unknown, field('gpuInstanceId'));
        expectNullable(migLabel('compute_instance_id'), actual.computeInstanceId, mig.compute_instance_id, gpu.unknown, field('computeInstanceId'));
        expectNullable(migLabel('memory_total_mib'), actual.memoryTotalMiB, mig.memory_total_mib, gpu.unknown, field('memoryTotalMiB'));
        expectNullable(migLabel('memory_used_mib'), actual.memoryUsedMiB, mig.memory_used_mib, gpu.unknown, field('memoryUsedMiB'));
        expect(actual.parentUuid, migLabel('parent')).toBe(gpu.uuid);
      });

      if (want.processes !== undefined) {
        expect(gpu.processes.map((process) => ({
          pid: process.pid,
          type: process.type,
          process_name: process.processName,
          used_memory_mib: process.usedMemoryMiB,
          used_memory_raw: process.usedMemoryRaw,
        })), label('processes')).toEqual(want.processes);
      }
    });
  });
});

describe('nvidia-smi CSV captures', () => {
  it('finds captures', () => {
    expect(csvCaptures.length).toBeGreaterThan(0);
  });

  it.each(csvCaptures.map((capture) => [capture.file, capture] as const))('%s', (_file, { text, expected }) => {
    const fields: string[] | undefined = expected.header_present === false ? expected.columns : undefined;

    if (expected.query === 'compute-apps') {
      const apps = parseComputeAppsCsv(text, fields);
      if (expected.row_count !== undefined) expect(apps.length, 'row_count').toBe(expected.row_count);
      if (expected.processes !== undefined) {
        expect(apps.map((app) => ({
          pid: app.pid,
          process_name: app.processName,
          gpu_uuid: app.gpuUuid,
          used_memory_mib: app.usedMemoryMiB,
          used_memory_raw: app.usedMemoryRaw,
        })), 'processes').toEqual(expected.processes);
      }
      const gpus = [...new Map(apps.map((app) => [app.gpuUuid, { name: app.gpuName, uuid: app.gpuUuid }])).values()];
      if (typeof expected.gpu_count === 'number') expect(gpus.length, 'gpu_count').toBe(expected.gpu_count);
      (expected.gpus ?? []).forEach((want: Sidecar, position: number) => {
        expect(gpus[position]?.name, `gpus[${position}].name`).toBe(want.name);
        expect(gpus[position]?.uuid, `gpus[${position}].uuid`).toBe(want.uuid);
      });
      return;
    }

    expect(expected.query, 'sidecar query kind').toBe('gpu');
    const rows = parseGpuQueryCsv(text, fields);
    if (expected.row_count !== undefined) expect(rows.length, 'row_count').toBe(expected.row_count);
    if (typeof expected.gpu_count === 'number') expect(rows.length, 'gpu_count').toBe(expected.gpu_count);

    (expected.gpus ?? []).forEach((want: Sidecar, position: number) => {
      const row = rows[position];
      const label = (key: string) => `gpus[${position}].${key}`;
      expect(row, label('present')).toBeDefined();
      const check = (key: string, actual: unknown, field: string) => expectNullable(label(key), actual, want[key], row.unknown, field);

      check('index', row.index, 'index');
      check('name', row.name, 'name');
      check('uuid', row.uuid, 'uuid');
      check('memory_total_mib', row.memoryTotalMiB, 'memoryTotalMiB');
      check('memory_used_mib', row.memoryUsedMiB, 'memoryUsedMiB');
      check('memory_free_mib', row.memoryFreeMiB, 'memoryFreeMiB');
      check('memory_reserved_mib', row.memoryReservedMiB, 'memoryReservedMiB');
      check('driver_version', row.driverVersion, 'driverVersion');
      check('mig_mode', row.migMode, 'migMode');
      check('compute_capability', row.computeCapability, 'computeCapability');
      // --query-gpu has no CUDA version field.
      if (want.cuda_version !== undefined) expect(want.cuda_version, label('cuda_version')).toBeNull();
      if (want.row !== undefined) expect(row.row, label('row')).toEqual(want.row);
    });
  });
});
