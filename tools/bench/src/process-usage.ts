/**
 * CPU time and resident memory of processes, read from /proc (Linux only).
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Kernel clock ticks per second for /proc/<pid>/stat times; 100 on every mainstream Linux build (USER_HZ). */
const TICKS_PER_SECOND = 100;

interface Stat {
  ppid: number;
  /** utime + stime, in seconds. */
  cpuSeconds: number;
  /** cutime + cstime of waited-for children, in seconds. */
  childrenCpuSeconds: number;
}

function readStat(pid: number | string): Stat | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After the command name: state is field 0, ppid 1, utime 11, stime 12, cutime 13, cstime 14 (proc(5)).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      ppid: Number(fields[1]),
      cpuSeconds: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND,
      childrenCpuSeconds: (Number(fields[13]) + Number(fields[14])) / TICKS_PER_SECOND,
    };
  } catch {
    // The process exited.
    return null;
  }
}

/** CPU seconds the process used so far, or null when it is gone. */
export function processCpuSeconds(pid: number): number | null {
  return readStat(pid)?.cpuSeconds ?? null;
}

/** Resident memory of the process in MiB, or null when it is gone. */
export function processRssMiB(pid: number): number | null {
  try {
    const kib = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    return Number.isFinite(kib) ? kib / 1024 : null;
  } catch {
    return null;
  }
}

/**
 * CPU seconds of a process and its direct children, exited children
 * included: for PostgreSQL, the postmaster and its backends.
 */
export function processTreeCpuSeconds(pid: number): number | null {
  const root = readStat(pid);
  if (!root) return null;
  let total = root.cpuSeconds + root.childrenCpuSeconds;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const child = readStat(entry);
    if (child?.ppid === pid) total += child.cpuSeconds;
  }
  return total;
}

/** Summed resident memory of a process and its direct children, in MiB. */
export function processTreeRssMiB(pid: number): number | null {
  const root = processRssMiB(pid);
  if (root === null) return null;
  let total = root;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    if (readStat(entry)?.ppid === pid) total += processRssMiB(Number(entry)) ?? 0;
  }
  return total;
}

/** The value at quantile q (0..1) of the numbers, nearest rank; NaN when there are none. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
