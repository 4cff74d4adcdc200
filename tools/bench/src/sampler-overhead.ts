/**
 * Measures what GPU memory sampling costs during a trial: CPU and memory
 * of the agent process and of the two long-running nvidia-smi processes,
 * at each sampling interval.
 *
 *   node --import tsx tools/bench/src/sampler-overhead.ts [--duration-s 10] [--intervals 100,500] [--smi PATH]
 *
 * By default it samples the twin-driven fake nvidia-smi (a Node script),
 * so the nvidia-smi figures are the fake's, not those of the real tool.
 * Linux only: the child processes' CPU and RSS are read from /proc.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startMemorySampler, type NvidiaSmiCommand } from '@hwopt/nvidia-smi';

const FAKE_NVIDIA_SMI = fileURLToPath(new URL('../../../libs/twin/bin/fake-nvidia-smi.mjs', import.meta.url));
const TWIN_PATH = fileURLToPath(new URL('../../../libs/twin/twins/t4.json', import.meta.url));
const GPU_UUID = 'GPU-00000000-0000-0000-0000-0000000000be';
/** Kernel clock ticks per second for /proc/<pid>/stat times; 100 on every mainstream Linux build (USER_HZ). */
const CLOCK_TICKS_PER_SECOND = 100;
/** How often the nvidia-smi processes' CPU time and RSS are read, in ms. */
const PROBE_INTERVAL_MS = 250;

interface ProcessReading {
  cpuSeconds: number;
  rssMiB: number;
}

interface IntervalResult {
  intervalMs: number;
  durationS: number;
  deviceSamples: number;
  processSamples: number;
  agentCpuPercent: number;
  agentRssDeltaMiB: number;
  smiProcesses: number;
  /** CPU of the nvidia-smi processes over the whole run, start-up included. */
  smiCpuPercent: number;
  /** CPU of the nvidia-smi processes between the first and the last probe, start-up excluded. */
  smiSteadyCpuPercent: number;
  smiMaxRssMiB: number;
}

/**
 * Reads CPU time and RSS of the running processes whose environment
 * contains `marker`. With `knownPids` only those are read, so that the
 * probe does not scan /proc (and add to the agent's CPU) on every call.
 */
function readMarkedProcesses(marker: string, knownPids?: number[]): Map<number, ProcessReading> {
  const readings = new Map<number, ProcessReading>();
  const candidates = knownPids?.map(String) ?? readdirSync('/proc').filter((entry) => /^\d+$/.test(entry));
  for (const entry of candidates) {
    try {
      if (!knownPids && !readFileSync(`/proc/${entry}/environ`, 'utf8').includes(marker)) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // After the command name: state is field 0, utime 11 and stime 12 (proc(5), fields 14 and 15).
      if (fields[0] === 'Z') continue;
      const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
      const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1] ?? 0);
      readings.set(Number(entry), { cpuSeconds, rssMiB: rssKiB / 1024 });
    } catch {
      // The process exited, or belongs to another user.
    }
  }
  return readings;
}

async function measureInterval(intervalMs: number, durationS: number, smi: NvidiaSmiCommand, marker: string, rootPid: number): Promise<IntervalResult> {
  const latest = new Map<number, ProcessReading>();
  const first = new Map<number, ProcessReading & { atMs: number }>();
  let lastProbeMs = 0;
  let smiMaxRssMiB = 0;
  const probe = setInterval(() => {
    // Both sampling processes start together; once two are found, only they are read.
    const readings = readMarkedProcesses(marker, first.size >= 2 ? [...first.keys()] : undefined);
    lastProbeMs = performance.now();
    for (const [pid, reading] of readings) {
      latest.set(pid, reading);
      if (!first.has(pid)) first.set(pid, { ...reading, atMs: lastProbeMs });
    }
    let rssMiB = 0;
    for (const reading of readings.values()) rssMiB += reading.rssMiB;
    smiMaxRssMiB = Math.max(smiMaxRssMiB, rssMiB);
  }, PROBE_INTERVAL_MS);

  const rssBefore = process.memoryUsage().rss;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const sampler = startMemorySampler({ smi, gpuUuids: [GPU_UUID], rootPid, intervalMs });
  await new Promise((resolve) => setTimeout(resolve, durationS * 1000));
  clearInterval(probe);
  const summary = await sampler.stop();
  const wallS = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);

  let smiCpuSeconds = 0;
  let smiSteadyCpuPercent = 0;
  for (const [pid, reading] of latest) {
    smiCpuSeconds += reading.cpuSeconds;
    const start = first.get(pid)!;
    const spanS = (lastProbeMs - start.atMs) / 1000;
    if (spanS > 0) smiSteadyCpuPercent += ((reading.cpuSeconds - start.cpuSeconds) / spanS) * 100;
  }
  return {
    intervalMs,
    durationS: wallS,
    deviceSamples: summary.sampleCount,
    processSamples: summary.processSampleCount,
    // The agent's figure includes this benchmark's /proc probe, so it is an upper bound.
    agentCpuPercent: ((cpu.user + cpu.system) / 1e6 / wallS) * 100,
    agentRssDeltaMiB: (process.memoryUsage().rss - rssBefore) / 1024 / 1024,
    smiProcesses: latest.size,
    smiCpuPercent: (smiCpuSeconds / wallS) * 100,
    smiSteadyCpuPercent,
    smiMaxRssMiB,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'duration-s': { type: 'string', default: '10' },
      intervals: { type: 'string', default: '100,500' },
      smi: { type: 'string' },
    },
  });
  const durationS = Number(values['duration-s']);
  const intervals = values.intervals.split(',').map(Number);
  if (!Number.isFinite(durationS) || durationS <= 0) throw new Error(`--duration-s must be a positive number of seconds, got "${values['duration-s']}"`);
  if (intervals.some((interval) => !Number.isInteger(interval) || interval < 20)) throw new Error(`--intervals must be whole milliseconds of at least 20, got "${values.intervals}"`);
  if (process.platform !== 'linux') throw new Error('sampler-overhead reads /proc and runs on Linux only');

  const stateDir = mkdtempSync(join(tmpdir(), 'hwopt-bench-sampler-'));
  mkdirSync(join(stateDir, 'procs'));
  const marker = `HWOPT_TWIN_STATE_DIR=${stateDir}\0`;
  const smi: NvidiaSmiCommand = values.smi
    ? { command: values.smi, env: { HWOPT_TWIN_STATE_DIR: stateDir } }
    : { command: FAKE_NVIDIA_SMI, env: { HWOPT_TWIN: TWIN_PATH, HWOPT_TWIN_STATE_DIR: stateDir, HWOPT_TWIN_GPU_UUID: GPU_UUID } };

  // A stand-in trial: one process that the fake lists as holding 4,096 MiB.
  const trial = spawn('sleep', [String(Math.ceil(durationS * intervals.length + 30))], { stdio: 'ignore' });
  writeFileSync(join(stateDir, 'procs', `${trial.pid}.json`), JSON.stringify({ pid: trial.pid, gpuUuid: GPU_UUID, usedMiB: 4096 }));

  const results: IntervalResult[] = [];
  try {
    for (const intervalMs of intervals) results.push(await measureInterval(intervalMs, durationS, smi, marker, trial.pid!));
  } finally {
    trial.kill('SIGKILL');
    rmSync(stateDir, { recursive: true, force: true });
  }

  const smiLabel = values.smi ?? 'fake-nvidia-smi.mjs (Node)';
  process.stdout.write(`sampler overhead: ${durationS} s per interval, nvidia-smi = ${smiLabel}, node ${process.version}\n`);
  console.table(results.map((result) => ({
    'interval ms': result.intervalMs,
    'wall s': result.durationS.toFixed(1),
    'device samples': result.deviceSamples,
    'process samples': result.processSamples,
    'agent CPU %': result.agentCpuPercent.toFixed(2),
    'agent RSS delta MiB': result.agentRssDeltaMiB.toFixed(1),
    'nvidia-smi procs': result.smiProcesses,
    'nvidia-smi CPU %': result.smiCpuPercent.toFixed(2),
    'nvidia-smi steady CPU %': result.smiSteadyCpuPercent.toFixed(2),
    'nvidia-smi RSS MiB': result.smiMaxRssMiB.toFixed(1),
  })));
}

await main();
