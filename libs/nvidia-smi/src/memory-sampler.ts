import { execa, type ResultPromise } from 'execa';
import { silentLogger, type Logger } from '@hwopt/common';
import { classifyFailure } from './classify-failure.ts';
import { NvidiaSmiError } from './errors.ts';
import { commandLine, DEFAULT_NVIDIA_SMI, NVIDIA_SMI_FORCE_KILL_DELAY_MS, type NvidiaSmiCommand } from './nvidia-smi-command.ts';
import { parseComputeAppsCsv, parseGpuQueryCsv } from './parse-csv.ts';
import { listProcessTree } from './process-tree.ts';
import { killProcessGroup } from './run-nvidia-smi.ts';

export interface MemorySamplerOptions {
  /** Default `{ command: 'nvidia-smi' }`. */
  smi?: NvidiaSmiCommand;
  /** GPUs the trial runs on (physical `GPU-...` UUIDs). */
  gpuUuids: string[];
  /** Sampling interval passed to `-lms`, in ms. Default 100; at least 20. */
  intervalMs?: number;
  /** PID of the trial process; its descendants are attributed to the trial too. */
  rootPid: number;
  logger?: Logger;
}

/** Peaks seen while the sampler ran. Each is null when nothing was measured, never 0 for "unknown". */
export interface MemorySampleSummary {
  /** Highest memory held by the trial's process tree on the GPU set, in MiB. Null where per-process memory is hidden (containers with their own PID namespace, Windows WDDM). */
  processPeakMiB: number | null;
  /** Highest memory in use on the GPU set as a whole (sum over the set), in MiB. */
  devicePeakMiB: number | null;
  /** Memory in use on the GPU set at the first device reading, in MiB. */
  deviceBaselineMiB: number | null;
  /** Number of complete device readings (one value per GPU of the set). */
  sampleCount: number;
  /** Number of compute-app rows attributed to the trial's process tree. */
  processSampleCount: number;
  /** Failures of the sampling processes, e.g. a driver error during the trial. */
  errors: NvidiaSmiError[];
}

export interface MemorySampler {
  /** Returns the peaks so far, without stopping. */
  peek(): MemorySampleSummary;
  /** Stops both nvidia-smi processes (SIGTERM, then SIGKILL to their groups) and returns the peaks. Safe to call twice. */
  stop(): Promise<MemorySampleSummary>;
}

const COMPUTE_APP_FIELDS = ['pid', 'used_memory', 'gpu_uuid'];
const DEVICE_FIELDS = ['uuid', 'memory.used'];
const MIN_INTERVAL_MS = 20;
/** Maximum output line length kept, in characters. A longer line is dropped as garbage. */
const MAX_LINE_CHARS = 64 * 1024;
/** Bound on stderr kept per sampling process, in bytes. */
const MAX_STDERR_BYTES = 64 * 1024;
/** A process's last reading counts toward the tree's sum for this many intervals. */
const READING_LIFETIME_INTERVALS = 2.5;
/** Time to wait for a killed sampling process to be reaped, in ms, before it is abandoned. */
const ABANDON_AFTER_KILL_MS = 2_000;

/**
 * Starts sampling GPU memory for one trial: one long-running
 * `nvidia-smi --query-compute-apps=pid,used_memory,gpu_uuid -lms N` for the
 * trial's processes, and one `--query-gpu=uuid,memory.used -lms N` for the
 * whole device, because containers and Windows hide per-process numbers.
 */
export function startMemorySampler(options: MemorySamplerOptions): MemorySampler {
  const intervalMs = options.intervalMs ?? 100;
  if (!Number.isFinite(intervalMs) || intervalMs < MIN_INTERVAL_MS) {
    throw new RangeError(`intervalMs must be at least ${MIN_INTERVAL_MS} ms, got ${intervalMs}`);
  }
  if (!Number.isInteger(options.rootPid) || options.rootPid <= 0) {
    throw new RangeError(`rootPid must be a positive integer, got ${options.rootPid}`);
  }
  return new NvidiaSmiMemorySampler({ ...options, intervalMs });
}

class NvidiaSmiMemorySampler implements MemorySampler {
  private readonly smi: NvidiaSmiCommand;
  private readonly logger: Logger;
  private readonly gpuUuids: Set<string>;
  private readonly intervalMs: number;
  private readonly rootPid: number;
  private readonly subprocesses: ResultPromise[] = [];
  private stopping = false;
  private stopped: Promise<MemorySampleSummary> | null = null;

  private treePids = new Set<number>();
  private treeReadAtMs = 0;
  private readonly readingsByPid = new Map<number, { usedMiB: number; atMs: number }>();
  private readonly deviceUsedByUuid = new Map<string, number>();
  private readonly summary: MemorySampleSummary = {
    processPeakMiB: null,
    devicePeakMiB: null,
    deviceBaselineMiB: null,
    sampleCount: 0,
    processSampleCount: 0,
    errors: [],
  };

  constructor(options: MemorySamplerOptions & { intervalMs: number }) {
    this.smi = options.smi ?? DEFAULT_NVIDIA_SMI;
    this.logger = options.logger ?? silentLogger();
    this.gpuUuids = new Set(options.gpuUuids);
    this.intervalMs = options.intervalMs;
    this.rootPid = options.rootPid;
    this.refreshTree();

    const loop = ['-lms', String(Math.round(this.intervalMs))];
    const format = '--format=csv,noheader,nounits';
    this.spawn([`--query-compute-apps=${COMPUTE_APP_FIELDS.join(',')}`, format, ...loop], (line) => this.onComputeAppLine(line));
    this.spawn([`--query-gpu=${DEVICE_FIELDS.join(',')}`, format, ...loop], (line) => this.onDeviceLine(line));
    this.logger.debug({ rootPid: this.rootPid, gpuUuids: options.gpuUuids, intervalMs: this.intervalMs }, 'memory sampler started');
  }

  peek(): MemorySampleSummary {
    return { ...this.summary, errors: [...this.summary.errors] };
  }

  stop(): Promise<MemorySampleSummary> {
    this.stopped ??= this.stopAll();
    return this.stopped;
  }

  private spawn(args: string[], onLine: (line: string) => void): void {
    const line = commandLine(this.smi, args);
    const subprocess = execa(this.smi.command, [...(this.smi.args ?? []), ...args], {
      env: this.smi.env,
      extendEnv: true,
      stdin: 'ignore',
      detached: true,
      reject: false,
      buffer: { stdout: false, stderr: true },
      maxBuffer: { stderr: MAX_STDERR_BYTES },
      forceKillAfterDelay: NVIDIA_SMI_FORCE_KILL_DELAY_MS,
    });
    this.subprocesses.push(subprocess);

    let partial = '';
    subprocess.stdout?.setEncoding('utf8');
    subprocess.stdout?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      if (partial.length > MAX_LINE_CHARS) partial = '';
      for (const text of lines) {
        if (text.trim() !== '' && text.length <= MAX_LINE_CHARS) onLine(text);
      }
    });

    void subprocess.then((result) => {
      if (this.stopping) return;
      const failure = classifyFailure({
        command: this.smi.command,
        commandLine: line,
        spawnErrorCode: typeof result.code === 'string' && result.exitCode === undefined ? result.code : undefined,
        exitCode: result.exitCode ?? null,
        signal: result.signal ?? null,
        stdout: '',
        stderr: typeof result.stderr === 'string' ? result.stderr : '',
        outputTooLarge: false,
        maxOutputBytes: MAX_STDERR_BYTES,
      }) ?? new NvidiaSmiError('NVIDIA_SMI_SAMPLER_EXITED', `nvidia-smi sampling process exited early (${line}); memory peaks after that point are missing.`);
      this.summary.errors.push(failure);
      this.logger.warn({ err: failure, code: failure.code, rootPid: this.rootPid }, 'nvidia-smi sampling process ended before the trial');
    });
  }

  private refreshTree(): void {
    for (const pid of listProcessTree(this.rootPid)) this.treePids.add(pid);
    this.treeReadAtMs = Date.now();
  }

  private onComputeAppLine(line: string): void {
    const [app] = parseComputeAppsCsv(line, COMPUTE_APP_FIELDS);
    if (!app || app.pid === null) return;
    if (!this.isOnGpuSet(app.gpuUuid)) return;

    // PIDs seen once stay attributed, so short-lived children count too.
    // The tree is re-read at most once per interval, for PIDs not yet known.
    if (!this.treePids.has(app.pid) && Date.now() - this.treeReadAtMs >= this.intervalMs) this.refreshTree();
    if (!this.treePids.has(app.pid)) return;

    this.summary.processSampleCount += 1;
    if (app.usedMemoryMiB === null) return;
    const now = Date.now();
    this.readingsByPid.set(app.pid, { usedMiB: app.usedMemoryMiB, atMs: now });

    // NOTE: the sum adds each process's latest reading, so for a trial of
    // several processes whose peaks fall in different intervals the peak can
    // be overstated by up to one interval's change.
    let totalMiB = 0;
    for (const [pid, reading] of this.readingsByPid) {
      if (now - reading.atMs > READING_LIFETIME_INTERVALS * this.intervalMs) {
        this.readingsByPid.delete(pid);
        continue;
      }
      totalMiB += reading.usedMiB;
    }
    this.summary.processPeakMiB = Math.max(this.summary.processPeakMiB ?? 0, totalMiB);
  }

  /** Compute apps on MIG instances are listed under the parent GPU's UUID, so MIG sets accept any GPU. */
  private isOnGpuSet(gpuUuid: string | null): boolean {
    if (this.gpuUuids.size === 0 || gpuUuid === null) return true;
    if (this.gpuUuids.has(gpuUuid)) return true;
    return [...this.gpuUuids].some((uuid) => uuid.startsWith('MIG-'));
  }

  private onDeviceLine(line: string): void {
    const [row] = parseGpuQueryCsv(line, DEVICE_FIELDS);
    if (!row || row.uuid === null || row.memoryUsedMiB === null) return;
    if (this.gpuUuids.size > 0 && !this.gpuUuids.has(row.uuid)) return;
    this.deviceUsedByUuid.set(row.uuid, row.memoryUsedMiB);

    // A reading is complete once every GPU of the set has a value.
    // NOTE: a set of MIG UUIDs never completes, because --query-gpu lists physical GPUs only.
    const expected = this.gpuUuids.size > 0 ? this.gpuUuids.size : 1;
    if (this.deviceUsedByUuid.size < expected) return;
    let totalMiB = 0;
    for (const usedMiB of this.deviceUsedByUuid.values()) totalMiB += usedMiB;

    this.summary.sampleCount += 1;
    this.summary.deviceBaselineMiB ??= totalMiB;
    this.summary.devicePeakMiB = Math.max(this.summary.devicePeakMiB ?? 0, totalMiB);
  }

  private async stopAll(): Promise<MemorySampleSummary> {
    this.stopping = true;
    await Promise.all(this.subprocesses.map((subprocess) => stopSubprocess(subprocess)));
    this.logger.debug({ rootPid: this.rootPid, ...this.summary, errors: this.summary.errors.map((error) => error.code) }, 'memory sampler stopped');
    return this.peek();
  }
}

/** Sends SIGTERM to the process group, SIGKILL after the force-kill delay, and gives up waiting after that. */
async function stopSubprocess(subprocess: ResultPromise): Promise<void> {
  const pid = subprocess.pid;
  killProcessGroup(pid, 'SIGTERM');
  let forceTimer: NodeJS.Timeout | undefined;
  let abandonTimer: NodeJS.Timeout | undefined;
  const forced = new Promise<void>((resolve) => {
    forceTimer = setTimeout(() => {
      killProcessGroup(pid, 'SIGKILL');
      abandonTimer = setTimeout(resolve, ABANDON_AFTER_KILL_MS);
    }, NVIDIA_SMI_FORCE_KILL_DELAY_MS);
  });
  try {
    await Promise.race([subprocess.then(() => undefined), forced]);
  } finally {
    clearTimeout(forceTimer);
    clearTimeout(abandonTimer);
  }
}
