import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { inventoryFromGpuQueryRows, MalformedOutputError, parseComputeAppsCsv, parseGpuQueryCsv, parseInventoryXml } from '../src/index.ts';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/nvidia-smi/${name}`, import.meta.url), 'utf8');

const V13_DOCUMENT = `<?xml version="1.0" ?>
<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v13.dtd">
<nvidia_smi_log>
  <kmd_version>580.65.06</kmd_version>
  <cuda_umd_version>13.0</cuda_umd_version>
  <attached_gpus>2</attached_gpus>
  <gpu id="00000000:01:00.0">
    <product_name>NVIDIA H100 80GB HBM3</product_name>
    <mig_mode><current_mig>Enabled</current_mig><pending_mig>Enabled</pending_mig></mig_mode>
    <mig_devices>
      <mig_device>
        <index>0</index>
        <gpu_instance_id>1</gpu_instance_id>
        <compute_instance_id>0</compute_instance_id>
        <uuid>MIG-11111111-2222-3333-4444-555555555555</uuid>
        <fb_memory_usage><total>40192 MiB</total><reserved>0 MiB</reserved><used>[Insufficient Permissions]</used><free>40000 MiB</free></fb_memory_usage>
      </mig_device>
    </mig_devices>
    <uuid>GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee</uuid>
    <compute_cap>9.0</compute_cap>
    <fb_memory_usage><total>81559 MiB</total><reserved>479 MiB</reserved><used>11125 MiB</used><free>69956 MiB</free></fb_memory_usage>
    <processes></processes>
  </gpu>
  <gpu id="00000000:02:00.0">
    <product_name>NVIDIA H100 80GB HBM3</product_name>
    <uuid>GPU is lost</uuid>
    <fb_memory_usage><total>GPU is lost</total><used>12.5 GiB</used></fb_memory_usage>
  </gpu>
</nvidia_smi_log>
`;

describe('parseInventoryXml', () => {
  it('reads reserved memory from R510+ captures', () => {
    expect(parseInventoryXml(fixture('xml/v11-510.47-tesla-p100.xml')).gpus[0].memoryReservedMiB).toBe(103);
    expect(parseInventoryXml(fixture('xml/v11-515.105-tesla-t4-processes.xml')).gpus[0].memoryReservedMiB).toBe(388);
  });

  it('marks reserved memory missing before R510', () => {
    const gpu = parseInventoryXml(fixture('xml/v10-440.82-dual-rtx2080ti.xml')).gpus[1];
    expect(gpu.memoryReservedMiB).toBeNull();
    expect(gpu.unknown).toContainEqual({ field: 'memoryReservedMiB', reason: 'missing' });
    expect(gpu.migMode).toBeNull();
    expect(gpu.unknown).toContainEqual({ field: 'migMode', reason: 'missing' });
  });

  it('keeps the N/A reason for MIG mode', () => {
    const gpu = parseInventoryXml(fixture('xml/v11-510.47-tesla-p100.xml')).gpus[0];
    expect(gpu.unknown).toContainEqual({ field: 'migMode', reason: 'n/a', raw: 'N/A' });
  });

  it('reads MIG devices with parent and budget', () => {
    const gpu = parseInventoryXml(fixture('xml/v12-535.54-a100-sxm4-80gb-mig.xml')).gpus[0];
    expect(gpu.migMode).toBe('Enabled');
    expect(gpu.migDevices).toHaveLength(4);
    expect(gpu.migDevices[3]).toEqual({
      index: 3, uuid: null, gpuInstanceId: 6, computeInstanceId: 0,
      parentUuid: 'GPU-00000000-0000-0000-0000-000000000001', memoryTotalMiB: 19968, memoryUsedMiB: 12,
    });
  });

  it('reads schema v13 version elements and MIG UUIDs', () => {
    const inventory = parseInventoryXml(V13_DOCUMENT);
    expect(inventory.driverVersion).toBe('580.65.06');
    expect(inventory.cudaVersion).toBe('13.0');
    expect(inventory.gpus[0].computeCapability).toBe('9.0');
    expect(inventory.gpus[0].pciBusId).toBe('00000000:01:00.0');
    expect(inventory.gpus[0].migDevices[0].uuid).toBe('MIG-11111111-2222-3333-4444-555555555555');
    expect(inventory.gpus[0].migDevices[0].memoryUsedMiB).toBeNull();
    expect(inventory.gpus[0].unknown).toContainEqual({ field: 'migDevices[0].memoryUsedMiB', reason: 'insufficient_permissions', raw: '[Insufficient Permissions]' });
  });

  it('reads a lost GPU as nulls with reasons', () => {
    const gpu = parseInventoryXml(V13_DOCUMENT).gpus[1];
    expect(gpu.uuid).toBeNull();
    expect(gpu.memoryTotalMiB).toBeNull();
    expect(gpu.unknown).toContainEqual({ field: 'uuid', reason: 'gpu_lost', raw: 'GPU is lost' });
    expect(gpu.unknown).toContainEqual({ field: 'memoryUsedMiB', reason: 'unparsable', raw: '12.5 GiB' });
  });

  it('reads a missing CUDA version as null', () => {
    const inventory = parseInventoryXml('<nvidia_smi_log><driver_version>418.43</driver_version><cuda_version>N/A</cuda_version></nvidia_smi_log>');
    expect(inventory.cudaVersion).toBeNull();
    expect(inventory.unknown).toContainEqual({ field: 'cudaVersion', reason: 'n/a', raw: 'N/A' });
    expect(inventory.gpus).toEqual([]);
  });

  it('rejects truncated XML', () => {
    const text = fixture('xml/v12-525.147-rtx3090.xml');
    expect(() => parseInventoryXml(text.slice(0, Math.floor(text.length / 2)))).toThrow(MalformedOutputError);
    expect(() => parseInventoryXml(text.slice(0, text.lastIndexOf('</nvidia_smi_log>')))).toThrow(MalformedOutputError);
  });

  it('rejects text that is not XML', () => {
    expect(() => parseInventoryXml('NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver.')).toThrow(MalformedOutputError);
    expect(() => parseInventoryXml('')).toThrow(MalformedOutputError);
    expect(() => parseInventoryXml('<html><body>502</body></html>')).toThrow(/no <nvidia_smi_log> root/);
  });

  it('rejects entity declarations', () => {
    const bomb = '<?xml version="1.0"?><!DOCTYPE nvidia_smi_log [<!ENTITY a "aaaa">]><nvidia_smi_log>&a;</nvidia_smi_log>';
    expect(() => parseInventoryXml(bomb)).toThrow(MalformedOutputError);
  });
});

describe('parseGpuQueryCsv', () => {
  it('maps noheader columns by the queried names', () => {
    const rows = parseGpuQueryCsv('GPU-1, 0, 81920\nGPU-2, 1, [Not Supported]\n', ['gpu_uuid', 'index', 'memory.total']);
    expect(rows.map((row) => [row.uuid, row.index, row.memoryTotalMiB])).toEqual([['GPU-1', 0, 81920], ['GPU-2', 1, null]]);
    expect(rows[1].unknown).toContainEqual({ field: 'memoryTotalMiB', reason: 'not_supported', raw: '[Not Supported]' });
  });

  it('uses the header when fields are also passed', () => {
    const rows = parseGpuQueryCsv('memory.used [MiB], uuid\n12 MiB, GPU-1\n', ['uuid', 'memory.used']);
    expect(rows).toHaveLength(1);
    expect(rows[0].memoryUsedMiB).toBe(12);
  });

  it('reads a cut-off line as missing values', () => {
    const rows = parseGpuQueryCsv('uuid, memory.used [MiB], memory.total [MiB]\nGPU-1, 12 MiB\n');
    expect(rows[0].memoryTotalMiB).toBeNull();
    expect(rows[0].unknown).toContainEqual({ field: 'memoryTotalMiB', reason: 'missing' });
  });

  it('handles Windows line endings', () => {
    const rows = parseGpuQueryCsv('uuid, memory.used [MiB]\r\nGPU-1, 12 MiB\r\n');
    expect(rows[0].uuid).toBe('GPU-1');
    expect(rows[0].memoryUsedMiB).toBe(12);
  });
});

describe('parseComputeAppsCsv', () => {
  it('reads noheader nounits rows', () => {
    const apps = parseComputeAppsCsv('123, 4567, GPU-1\n124, [N/A], GPU-1\n', ['pid', 'used_memory', 'gpu_uuid']);
    expect(apps.map((app) => [app.pid, app.usedMemoryMiB, app.gpuUuid])).toEqual([[123, 4567, 'GPU-1'], [124, null, 'GPU-1']]);
  });

  it('joins a process name that contains commas', () => {
    const apps = parseComputeAppsCsv('pid, process_name, used_gpu_memory [MiB]\n42, python train.py --dims=1,2,3, 100 MiB\n');
    expect(apps[0].processName).toBe('python train.py --dims=1,2,3');
    expect(apps[0].usedMemoryMiB).toBe(100);
  });

  it('returns no rows for empty output', () => {
    expect(parseComputeAppsCsv('', ['pid', 'used_memory', 'gpu_uuid'])).toEqual([]);
  });
});

describe('inventoryFromGpuQueryRows', () => {
  it('uses the row position without an index column', () => {
    const inventory = inventoryFromGpuQueryRows(parseGpuQueryCsv(fixture('csv/units-510.47-tesla-p100.csv')));
    expect(inventory.gpus[0].index).toBe(0);
    expect(inventory.gpus[0].memoryReservedMiB).toBe(103);
    expect(inventory.gpus[0].memoryTotalMiB).toBeNull();
    expect(inventory.cudaVersion).toBeNull();
    expect(inventory.driverVersion).toBeNull();
    expect(inventory.unknown).toContainEqual({ field: 'driverVersion', reason: 'missing' });
  });

  it('reads the driver version of the rows', () => {
    const inventory = inventoryFromGpuQueryRows(parseGpuQueryCsv(fixture('csv/units-590.48-h100-mig-query-gpu-all-fields.csv')));
    expect(inventory.driverVersion).toBe('590.48.01');
    expect(inventory.gpus[0].migMode).toBe('Enabled');
    expect(inventory.gpus[0].computeCapability).toBe('9.0');
  });

  it('rejects output without rows', () => {
    expect(() => inventoryFromGpuQueryRows([])).toThrow(MalformedOutputError);
  });
});
