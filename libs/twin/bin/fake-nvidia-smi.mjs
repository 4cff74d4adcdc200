#!/usr/bin/env node
// A stand-in for nvidia-smi on machines without a GPU: it prints one GPU
// described by a digital twin, in the formats the agent reads.
//
// Environment:
//   HWOPT_TWIN            path of the twin JSON (format hwopt-twin/1), re-read on every run
//   HWOPT_TWIN_GPU_UUID   UUID to print; default GPU-... derived from a hash of the state dir or twin path
//   HWOPT_TWIN_STATE_DIR  folder shared with the simulated trial runner:
//     procs/<pid>.json    {"pid", "gpuUuid", "usedMiB"} per running trial process, listed as a compute app
//                         while the pid is alive and gpuUuid is this GPU's (or absent)
//     overrides.json      {"driverVersion"?, "cudaVersion"?, "failure"?: "nvml-mismatch" | "no-driver" |
//                         "permission-denied" | "hang"}, read on every run
//
// Supported: -q -x, -L, --query-gpu=F --format=csv[,noheader][,nounits],
// --query-compute-apps=F --format=..., -i/--id, and -lms N / -l S loops
// (stopped by SIGTERM or SIGINT). Only node: built-ins are imported, so it starts fast.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Exit codes of the real tool (nvidia-smi manual, RETURN VALUE; 18 is NVML_ERROR_LIB_RM_VERSION_MISMATCH). */
const EXIT = { invalidArgument: 2, noPermission: 4, notFound: 6, driverNotLoaded: 9, driverLibraryMismatch: 18 };
const PCI_BUS_ID = '00000000:01:00.0';

const FAILURE_MESSAGES = {
  'nvml-mismatch': ['Failed to initialize NVML: Driver/library version mismatch', EXIT.driverLibraryMismatch],
  'no-driver': [
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n",
    EXIT.driverNotLoaded,
  ],
  'permission-denied': ['Failed to initialize NVML: Insufficient Permissions', EXIT.noPermission],
};

/** Field name, header (with unit) and value of each --query-gpu field; aliases map to the same entry. */
const GPU_FIELDS = {
  timestamp: ['timestamp', null, () => timestamp()],
  index: ['index', null, () => '0'],
  count: ['count', null, () => '1'],
  uuid: ['uuid', null, (gpu) => gpu.uuid],
  name: ['name', null, (gpu) => gpu.name],
  'pci.bus_id': ['pci.bus_id', null, () => PCI_BUS_ID],
  driver_version: ['driver_version', null, (gpu) => gpu.driverVersion],
  'memory.total': ['memory.total', 'MiB', (gpu) => gpu.memoryTotalMiB],
  'memory.reserved': ['memory.reserved', 'MiB', () => 0],
  'memory.used': ['memory.used', 'MiB', (gpu) => gpu.memoryUsedMiB],
  'memory.free': ['memory.free', 'MiB', (gpu) => Math.max(0, gpu.memoryTotalMiB - gpu.memoryUsedMiB)],
  compute_cap: ['compute_cap', null, (gpu) => gpu.computeCapability ?? '[N/A]'],
  'mig.mode.current': ['mig.mode.current', null, () => '[N/A]'],
};
const GPU_FIELD_ALIASES = { gpu_name: 'name', gpu_uuid: 'uuid', gpu_bus_id: 'pci.bus_id' };

const APP_FIELDS = {
  timestamp: ['timestamp', null, () => timestamp()],
  gpu_name: ['gpu_name', null, (gpu) => gpu.name],
  gpu_bus_id: ['gpu_bus_id', null, () => PCI_BUS_ID],
  gpu_serial: ['gpu_serial', null, () => '[N/A]'],
  gpu_uuid: ['gpu_uuid', null, (gpu) => gpu.uuid],
  pid: ['pid', null, (_gpu, app) => String(app.pid)],
  process_name: ['process_name', null, (_gpu, app) => app.processName],
  used_gpu_memory: ['used_gpu_memory', 'MiB', (_gpu, app) => app.usedMiB],
};
const APP_FIELD_ALIASES = { name: 'process_name', used_memory: 'used_gpu_memory' };

function fail(message, exitCode) {
  process.stdout.write(`${message}\n`);
  process.exit(exitCode);
}

function invalidArguments() {
  fail("Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.", EXIT.invalidArgument);
}

function timestamp() {
  const now = new Date();
  const pad = (value, width = 2) => String(value).padStart(width, '0');
  return `${now.getFullYear()}/${pad(now.getMonth() + 1)}/${pad(now.getDate())} ${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}.${pad(now.getMilliseconds(), 3)}`;
}

/** Formats the time as -q -x does, e.g. `Fri Aug  4 11:44:30 2023` (C asctime without the newline). */
function xmlTimestamp() {
  const [weekday, month, day, year, time] = new Date().toString().split(' ');
  return `${weekday} ${month} ${String(Number(day)).padStart(2, ' ')} ${time} ${year}`;
}

function readJson(path, fallback) {
  let text;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (error.code === 'ENOENT') return fallback;
    throw error;
  }
  return JSON.parse(text);
}

function stableUuid(seed) {
  const hex = createHash('sha256').update(seed).digest('hex');
  return `GPU-${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return error.code === 'EPERM';
  }
}

function processName(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() || 'python';
  } catch {
    return 'python';
  }
}

/** Lists the running trial processes on this GPU from <stateDir>/procs; unreadable or stale files are skipped. */
function readApps(stateDir, gpuUuid) {
  if (!stateDir) return [];
  let files;
  try {
    files = readdirSync(join(stateDir, 'procs'));
  } catch {
    return [];
  }
  const apps = [];
  for (const file of files.sort()) {
    if (!file.endsWith('.json')) continue;
    let entry;
    try {
      entry = JSON.parse(readFileSync(join(stateDir, 'procs', file), 'utf8'));
    } catch {
      // A file being written or removed by the trial runner right now.
      continue;
    }
    const pid = Number(entry?.pid);
    const usedMiB = Number(entry?.usedMiB);
    if (!Number.isInteger(pid) || pid <= 0 || !Number.isFinite(usedMiB) || usedMiB < 0) continue;
    if (entry.gpuUuid !== undefined && entry.gpuUuid !== gpuUuid) continue;
    if (!isAlive(pid)) continue;
    apps.push({ pid, usedMiB: Math.round(usedMiB), processName: processName(pid) });
  }
  return apps;
}

/** Reads the twin and the overrides into the GPU this run prints; `refreshApps` adds the trial processes. */
function readGpu() {
  const twinPath = process.env.HWOPT_TWIN;
  if (!twinPath) fail('HWOPT_TWIN is not set: point it at a twin JSON file (format hwopt-twin/1).', EXIT.invalidArgument);
  const stateDir = process.env.HWOPT_TWIN_STATE_DIR || null;
  const twin = readJson(twinPath, null);
  if (!twin || typeof twin.gpu !== 'object') fail(`HWOPT_TWIN ${twinPath}: file not found or not a twin.`, EXIT.invalidArgument);
  const overrides = stateDir ? readJson(join(stateDir, 'overrides.json'), {}) : {};
  const uuid = process.env.HWOPT_TWIN_GPU_UUID || stableUuid(stateDir ?? twinPath);
  return {
    uuid,
    stateDir,
    failure: overrides.failure ?? null,
    name: String(twin.gpu.name),
    memoryTotalMiB: Math.round(Number(twin.gpu.memoryTotalMiB)),
    driverVersion: String(overrides.driverVersion ?? twin.gpu.driverVersion),
    cudaVersion: overrides.cudaVersion ?? twin.gpu.cudaVersion ?? null,
    computeCapability: twin.gpu.computeCapability ?? null,
    memoryUsedMiB: 0,
    apps: [],
  };
}

function refreshApps(gpu) {
  gpu.apps = readApps(gpu.stateDir, gpu.uuid);
  gpu.memoryUsedMiB = gpu.apps.reduce((sum, app) => sum + app.usedMiB, 0);
}

function escapeXml(text) {
  return String(text).replace(/[<>&"']/g, (char) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[char]);
}

function printXml(gpu) {
  const free = Math.max(0, gpu.memoryTotalMiB - gpu.memoryUsedMiB);
  const processes = gpu.apps
    .map((app) => `\t\t\t<process_info>
\t\t\t\t<gpu_instance_id>N/A</gpu_instance_id>
\t\t\t\t<compute_instance_id>N/A</compute_instance_id>
\t\t\t\t<pid>${app.pid}</pid>
\t\t\t\t<type>C</type>
\t\t\t\t<process_name>${escapeXml(app.processName)}</process_name>
\t\t\t\t<used_memory>${app.usedMiB} MiB</used_memory>
\t\t\t</process_info>
`)
    .join('');
  process.stdout.write(`<?xml version="1.0" ?>
<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">
<nvidia_smi_log>
\t<timestamp>${xmlTimestamp()}</timestamp>
\t<driver_version>${escapeXml(gpu.driverVersion)}</driver_version>
\t<cuda_version>${escapeXml(gpu.cudaVersion ?? 'N/A')}</cuda_version>
\t<attached_gpus>1</attached_gpus>
\t<gpu id="${PCI_BUS_ID}">
\t\t<product_name>${escapeXml(gpu.name)}</product_name>
\t\t<product_brand>NVIDIA</product_brand>
\t\t<mig_mode>
\t\t\t<current_mig>N/A</current_mig>
\t\t\t<pending_mig>N/A</pending_mig>
\t\t</mig_mode>
\t\t<mig_devices>
\t\t\tNone
\t\t</mig_devices>
\t\t<uuid>${escapeXml(gpu.uuid)}</uuid>
\t\t<minor_number>0</minor_number>
\t\t<compute_cap>${escapeXml(gpu.computeCapability ?? 'N/A')}</compute_cap>
\t\t<pci>
\t\t\t<pci_bus_id>${PCI_BUS_ID}</pci_bus_id>
\t\t</pci>
\t\t<fb_memory_usage>
\t\t\t<total>${gpu.memoryTotalMiB} MiB</total>
\t\t\t<reserved>0 MiB</reserved>
\t\t\t<used>${gpu.memoryUsedMiB} MiB</used>
\t\t\t<free>${free} MiB</free>
\t\t</fb_memory_usage>
\t\t<processes>
${processes}\t\t</processes>
\t</gpu>
</nvidia_smi_log>
`);
}

function resolveFields(list, table, aliases) {
  return list.split(',').map((requested) => {
    const name = requested.trim();
    const field = table[aliases[name] ?? name];
    if (!field) fail(`Field "${name}" is not a valid field to query.`, EXIT.invalidArgument);
    return field;
  });
}

function formatCsv(fields, rows, format) {
  const flags = new Set(format.split(',').map((flag) => flag.trim()));
  if (!flags.has('csv')) invalidArguments();
  const withUnits = !flags.has('nounits');
  const lines = [];
  if (!flags.has('noheader')) lines.push(fields.map(([header, unit]) => (unit ? `${header} [${unit}]` : header)).join(', '));
  for (const row of rows) {
    lines.push(fields.map(([, unit, read]) => {
      const value = String(row(read));
      return unit && withUnits && !value.startsWith('[') ? `${value} ${unit}` : value;
    }).join(', '));
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

function parseArguments(argv) {
  const options = { query: false, xml: false, list: false, queryGpu: null, queryApps: null, format: null, loopMs: null, id: null };
  for (let position = 0; position < argv.length; position += 1) {
    const argument = argv[position];
    const [flag, inlineValue] = argument.includes('=') ? [argument.slice(0, argument.indexOf('=')), argument.slice(argument.indexOf('=') + 1)] : [argument, undefined];
    const value = () => inlineValue ?? argv[++position] ?? invalidArguments();
    switch (flag) {
      case '-q': case '--query': options.query = true; break;
      case '-x': case '--xml-format': options.xml = true; break;
      case '-L': case '--list-gpus': options.list = true; break;
      case '--query-gpu': options.queryGpu = value(); break;
      case '--query-compute-apps': options.queryApps = value(); break;
      case '--format': options.format = value(); break;
      case '-i': case '--id': options.id = value(); break;
      case '-lms': case '--loop-ms': options.loopMs = Number(value()); break;
      case '-l': case '--loop': options.loopMs = Number(value()) * 1000; break;
      default: invalidArguments();
    }
  }
  if (options.loopMs !== null && (!Number.isFinite(options.loopMs) || options.loopMs <= 0)) invalidArguments();
  return options;
}

function main() {
  const options = parseArguments(process.argv.slice(2));
  const gpu = readGpu();

  if (gpu.failure === 'hang') {
    // Like nvidia-smi on a wedged GPU: no output, never exits until killed.
    setInterval(() => {}, 1 << 30);
    return;
  }
  const failure = FAILURE_MESSAGES[gpu.failure];
  if (failure) fail(failure[0], failure[1]);

  if (options.id !== null && options.id !== '0' && options.id !== gpu.uuid && options.id !== PCI_BUS_ID) {
    fail('No devices were found', EXIT.notFound);
  }

  let render;
  if (options.queryGpu !== null) {
    if (options.format === null) invalidArguments();
    const fields = resolveFields(options.queryGpu, GPU_FIELDS, GPU_FIELD_ALIASES);
    render = () => formatCsv(fields, [(read) => read(gpu)], options.format);
  } else if (options.queryApps !== null) {
    if (options.format === null) invalidArguments();
    const fields = resolveFields(options.queryApps, APP_FIELDS, APP_FIELD_ALIASES);
    render = () => formatCsv(fields, gpu.apps.map((app) => (read) => read(gpu, app)), options.format);
  } else if (options.query && options.xml) {
    refreshApps(gpu);
    printXml(gpu);
    return;
  } else if (options.list) {
    process.stdout.write(`GPU 0: ${gpu.name} (UUID: ${gpu.uuid})\n`);
    return;
  } else {
    invalidArguments();
  }

  const tick = () => {
    refreshApps(gpu);
    process.stdout.write(render());
  };
  tick();
  if (options.loopMs !== null) setInterval(tick, options.loopMs);
}

// A reader that went away (the sampler stopped) ends the loop.
process.stdout.on('error', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
main();
