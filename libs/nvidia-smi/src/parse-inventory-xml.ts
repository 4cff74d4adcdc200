import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { MalformedOutputError } from './errors.ts';
import { ReasonCollector, readInteger, readMiB, readText, readVersion } from './field-value.ts';
import type { GpuInfo, GpuInventory, GpuProcess, MigDevice } from './types.ts';

/**
 * Maximum `nvidia-smi -q -x` document size accepted, in characters. The
 * captures are 10 to 63 kB per GPU, so 8 GPUs print about 0.5 MB (an
 * estimate). Far more means the input is not an inventory.
 */
export const MAX_INVENTORY_XML_CHARS = 32 * 1024 * 1024;

/** Elements that repeat; listing them keeps a single occurrence an array too. */
const ARRAY_PATHS = new Set([
  'nvidia_smi_log.gpu',
  'nvidia_smi_log.gpu.mig_devices.mig_device',
  'nvidia_smi_log.gpu.processes.process_info',
]);

const xmlParser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  // Every value stays text: "0000" serials and "12.10" versions must not turn into numbers.
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  isArray: (_name, jpath) => ARRAY_PATHS.has(String(jpath)),
});

type XmlNode = Record<string, unknown>;

/**
 * Parses `nvidia-smi -q -x` output (schemas without a DTD line and v10 to
 * v13) into an inventory. Values that are absent or printed as a
 * placeholder (`N/A`, `[Not Supported]`, ...) become null and are listed
 * in `unknown[]` with their reason.
 *
 * @throws MalformedOutputError when the text is not a complete
 *   `<nvidia_smi_log>` document (truncated output, an error message, HTML).
 */
export function parseInventoryXml(xml: string): GpuInventory {
  if (typeof xml !== 'string' || xml.trim() === '') {
    throw new MalformedOutputError('the output is empty, expected an <nvidia_smi_log> XML document');
  }
  if (xml.length > MAX_INVENTORY_XML_CHARS) {
    throw new MalformedOutputError(`the output is ${xml.length} characters, more than the ${MAX_INVENTORY_XML_CHARS} accepted`);
  }
  // nvidia-smi never declares entities; refusing them rules out entity-expansion bombs.
  if (/<!ENTITY/i.test(xml)) {
    throw new MalformedOutputError('the XML declares entities, which nvidia-smi never prints');
  }

  const validation = XMLValidator.validate(xml);
  if (validation !== true) {
    const { msg, line } = validation.err;
    throw new MalformedOutputError(`invalid or truncated XML at line ${line}: ${msg.replace(/\.+$/, '')}`, { outputExcerpt: xml.slice(0, 2000) });
  }

  let document: XmlNode;
  try {
    document = xmlParser.parse(xml) as XmlNode;
  } catch (error) {
    throw new MalformedOutputError('the XML parser rejected the document', { outputExcerpt: xml.slice(0, 2000) }, { cause: error });
  }

  const root = document.nvidia_smi_log;
  if (root === undefined) {
    throw new MalformedOutputError('the document has no <nvidia_smi_log> root element', { outputExcerpt: xml.slice(0, 2000) });
  }
  return readInventory(asNode(root));
}

function readInventory(root: XmlNode): GpuInventory {
  const reasons = new ReasonCollector();

  // Schema v13 deprecates driver_version and cuda_version in favour of
  // kmd_version and cuda_umd_version; a document may carry either pair.
  const driverVersion = root.driver_version === undefined && root.kmd_version !== undefined
    ? reasons.take(readText('driverVersion', root.kmd_version))
    : reasons.take(readText('driverVersion', root.driver_version));
  const cudaVersion = root.cuda_version === undefined && root.cuda_umd_version !== undefined
    ? reasons.take(readVersion('cudaVersion', root.cuda_umd_version))
    : reasons.take(readVersion('cudaVersion', root.cuda_version));
  const attachedGpus = reasons.take(readInteger('attachedGpus', root.attached_gpus));

  const gpuNodes = Array.isArray(root.gpu) ? root.gpu : [];
  const gpus = gpuNodes.map((node, position) => readGpu(asNode(node), position));

  return { driverVersion, cudaVersion, attachedGpus, gpus, unknown: reasons.reasons };
}

function readGpu(gpu: XmlNode, position: number): GpuInfo {
  const reasons = new ReasonCollector();
  const memory = asNode(gpu.fb_memory_usage);
  const pci = asNode(gpu.pci);

  const uuid = reasons.take(readText('uuid', gpu.uuid));
  const pciBusId = pci.pci_bus_id !== undefined
    ? reasons.take(readText('pciBusId', pci.pci_bus_id))
    : reasons.take(readText('pciBusId', gpu['@_id']));

  const info: GpuInfo = {
    // nvidia-smi lists GPUs in index order; minor_number is the /dev/nvidiaN
    // number, which differs from the index on some hosts and is N/A on Windows.
    index: position,
    uuid,
    name: reasons.take(readText('name', gpu.product_name)),
    pciBusId,
    memoryTotalMiB: reasons.take(readMiB('memoryTotalMiB', memory.total)),
    memoryUsedMiB: reasons.take(readMiB('memoryUsedMiB', memory.used)),
    memoryFreeMiB: reasons.take(readMiB('memoryFreeMiB', memory.free)),
    // Drivers before R510 (418 to 470 in the test captures) print no <reserved>.
    memoryReservedMiB: reasons.take(readMiB('memoryReservedMiB', memory.reserved)),
    computeCapability: reasons.take(readVersion('computeCapability', gpu.compute_cap)),
    migMode: reasons.take(readText('migMode', asNode(gpu.mig_mode).current_mig)),
    migDevices: [],
    processes: readProcesses(gpu.processes),
    unknown: reasons.reasons,
  };

  const migNodes = asNode(gpu.mig_devices).mig_device;
  if (Array.isArray(migNodes)) {
    info.migDevices = migNodes.map((node, migPosition) => readMigDevice(asNode(node), `migDevices[${migPosition}]`, uuid, reasons));
  }
  return info;
}

function readMigDevice(mig: XmlNode, prefix: string, parentUuid: string | null, reasons: ReasonCollector): MigDevice {
  const memory = asNode(mig.fb_memory_usage);
  return {
    index: reasons.take(readInteger(`${prefix}.index`, mig.index)),
    // Schemas v10 to v12 print no MIG UUID here; `nvidia-smi -L` lists it.
    uuid: reasons.take(readText(`${prefix}.uuid`, mig.uuid)),
    gpuInstanceId: reasons.take(readInteger(`${prefix}.gpuInstanceId`, mig.gpu_instance_id)),
    computeInstanceId: reasons.take(readInteger(`${prefix}.computeInstanceId`, mig.compute_instance_id)),
    parentUuid,
    memoryTotalMiB: reasons.take(readMiB(`${prefix}.memoryTotalMiB`, memory.total)),
    memoryUsedMiB: reasons.take(readMiB(`${prefix}.memoryUsedMiB`, memory.used)),
  };
}

function readProcesses(processes: unknown): GpuProcess[] {
  const entries = asNode(processes).process_info;
  if (!Array.isArray(entries)) return [];
  return entries.map((entry) => {
    const node = asNode(entry);
    const usedMemoryRaw = typeof node.used_memory === 'string' ? node.used_memory : null;
    return {
      pid: readInteger('pid', node.pid).value,
      type: typeof node.type === 'string' && node.type !== '' ? node.type : null,
      // Kept as printed: Windows prints an empty name for protected processes.
      processName: typeof node.process_name === 'string' ? node.process_name : null,
      usedMemoryMiB: readMiB('usedMemoryMiB', node.used_memory).value,
      usedMemoryRaw,
    };
  });
}

/** Treats an empty element (parsed as '') or a text-only element as a node without children. */
function asNode(value: unknown): XmlNode {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as XmlNode) : {};
}
