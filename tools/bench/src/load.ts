/**
 * Load benchmark: many simulated agents on loopback against one
 * coordinator process on a PostgreSQL this benchmark starts. Prints how
 * many agents the coordinator held, how many trial results it stored per
 * second, the latency of ops queries while results stream in, and the
 * CPU and memory of the coordinator and of PostgreSQL.
 *
 *   node --import tsx tools/bench/src/load.ts [--agents 1000] [--duration-s 60]
 *
 * Linux only: CPU and memory are read from /proc.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Command } from 'commander';
import pg from 'pg';
import { createLogger } from '@hwopt/common';
import { startEmbeddedPostgres } from '@hwopt/db';
import { LocalFleet, waitFor } from '@hwopt/local-fleet';
import { bundledTwinPath } from '@hwopt/twin';
import type { WorkerInput, WorkerReport } from './simulated-agent-worker.ts';
import { processCpuSeconds, processRssMiB, processTreeCpuSeconds, quantile } from './process-usage.ts';

// Worker threads do not inherit tsx's loader, so each registers it before importing its TypeScript.
const WORKER_BOOTSTRAP = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => {
  tsx.register();
  return import(${JSON.stringify(new URL('./simulated-agent-worker.ts', import.meta.url).href)});
});`;

interface Flags {
  agents: number;
  workers: number;
  rampS: number;
  durationS: number;
  benchmarkConcurrency: number;
  driverVariants: number;
  opsIntervalMs: number;
  twin: string;
  logLevel: string;
  keep: boolean;
}

const program = new Command('load')
  .option('--agents <n>', 'simulated agents', (v) => Number(v), 1000)
  .option('--workers <n>', 'worker threads the agents are spread over', (v) => Number(v), 2)
  .option('--ramp-s <s>', 'time over which the agents connect', (v) => Number(v), 20)
  .option('--duration-s <s>', 'measured time once every agent is connected', (v) => Number(v), 60)
  .option('--benchmark-concurrency <n>', "the coordinator's --benchmark-concurrency", (v) => Number(v), 16)
  .option('--driver-variants <n>', 'distinct driver versions among the agents; each is its own calibration key, measured in parallel', (v) => Number(v), 16)
  .option('--ops-interval-ms <ms>', 'pause between ops queries', (v) => Number(v), 200)
  .option('--twin <name>', 'bundled twin the agents simulate', 't4')
  .option('--log-level <level>', "the coordinator's HWOPT_LOG_LEVEL", 'warn')
  .option('--keep', 'keep the work folder (logs, database) afterwards', false);

async function main(): Promise<void> {
  const flags = program.parse().opts<Flags>();
  if (process.platform !== 'linux') throw new Error('the load benchmark reads /proc and runs on Linux only');
  const logger = createLogger('bench-load');
  const workDir = mkdtempSync(join(tmpdir(), 'hwopt-bench-load-'));
  // Run as root, PostgreSQL runs as the postgres user, which must pass through this folder.
  chmodSync(workDir, 0o711);
  const database = await startEmbeddedPostgres({ dataDir: join(workDir, 'postgres') });
  const postmasterPid = Number(readFileSync(join(database.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const fleet = new LocalFleet(workDir);
  const workers: Worker[] = [];
  const reports = new Map<Worker, WorkerReport>();
  const db = new pg.Client({ connectionString: database.url });
  try {
    await fleet.startCoordinator({
      databaseUrl: database.url,
      extraArgs: ['--benchmark-concurrency', String(flags.benchmarkConcurrency)],
      env: { HWOPT_LOG_LEVEL: flags.logLevel },
    });
    const coordinatorPid = fleet.coordinator!.pid;
    await db.connect();
    logger.info({ agents: flags.agents, workers: flags.workers, address: fleet.address }, 'coordinator serving; connecting agents');

    const names = Array.from({ length: flags.agents }, (_, i) => `sim-${String(i).padStart(5, '0')}`);
    const connectStart = Date.now();
    for (let w = 0; w < flags.workers; w++) {
      const nodeNames = names.filter((_, i) => i % flags.workers === w);
      const driverVersions = Object.fromEntries(nodeNames.map((name) => [name, `535.183.${Number(name.slice(4)) % Math.max(1, flags.driverVariants)}`]));
      const input: WorkerInput = { address: fleet.address, twinFile: bundledTwinPath(flags.twin), nodeNames, driverVersions, rampMs: flags.rampS * 1000 };
      const worker = new Worker(WORKER_BOOTSTRAP, { eval: true, workerData: input });
      worker.on('message', (report: WorkerReport) => reports.set(worker, report));
      worker.on('error', (error) => logger.error({ err: error }, 'agent worker failed'));
      workers.push(worker);
    }
    const total = () => {
      const sum = { connected: 0, sessions: 0, resultsSent: 0, acknowledgements: 0, rejects: 0 };
      for (const r of reports.values()) {
        sum.connected += r.connected;
        sum.sessions += r.counts.sessions;
        sum.resultsSent += r.counts.resultsSent;
        sum.acknowledgements += r.counts.acknowledgements;
        sum.rejects += r.counts.rejects;
      }
      return sum;
    };
    await waitFor(`${flags.agents} agents connected`, flags.rampS * 1000 + 180_000, async () => total().connected >= flags.agents, 1000);
    const connectSeconds = (Date.now() - connectStart) / 1000;
    logger.info({ connectSeconds }, 'every agent is connected; measuring');

    const storedTrials = async () => Number((await db.query("SELECT count(*) FROM trials WHERE status IN ('ok', 'oom', 'failed')")).rows[0].count);
    const fleetLatencies: number[] = [];
    const configLatencies: number[] = [];
    const opsErrors: string[] = [];
    let measuring = true;
    const opsLoop = (async () => {
      for (let i = 0; measuring; i++) {
        const started = performance.now();
        try {
          if (i % 2 === 0) {
            await fleet.ops!.fleet();
            fleetLatencies.push(performance.now() - started);
          } else {
            await fleet.ops!.configs({ nodeName: names[i % names.length] });
            configLatencies.push(performance.now() - started);
          }
        } catch (error) {
          opsErrors.push((error as Error).message);
        }
        await new Promise((resolve) => setTimeout(resolve, flags.opsIntervalMs));
      }
    })();

    const start = { at: Date.now(), stored: await storedTrials(), acks: total().acknowledgements, cpu: processCpuSeconds(coordinatorPid)!, pgCpu: processTreeCpuSeconds(postmasterPid)! };
    let minConnected = flags.agents;
    let peakRss = 0;
    const cpuSamples: number[] = [];
    let lastCpu = start.cpu;
    while (Date.now() - start.at < flags.durationS * 1000) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      minConnected = Math.min(minConnected, total().connected);
      peakRss = Math.max(peakRss, processRssMiB(coordinatorPid) ?? 0);
      const cpu = processCpuSeconds(coordinatorPid) ?? lastCpu;
      cpuSamples.push((cpu - lastCpu) * 100);
      lastCpu = cpu;
    }
    measuring = false;
    await opsLoop;
    const seconds = (Date.now() - start.at) / 1000;
    const end = { stored: await storedTrials(), acks: total().acknowledgements, cpu: processCpuSeconds(coordinatorPid)!, pgCpu: processTreeCpuSeconds(postmasterPid)! };
    const runs = (await db.query('SELECT status, count(*)::int AS n FROM benchmark_runs GROUP BY status ORDER BY status')).rows as { status: string; n: number }[];
    const sums = total();

    const rows: [string, string][] = [
      ['machine', `${cpus().length} CPUs, Node ${process.versions.node}`],
      ['simulated agents (worker threads)', `${flags.agents} (${flags.workers})`],
      ['coordinator --benchmark-concurrency', String(flags.benchmarkConcurrency)],
      ['driver versions (calibration keys)', String(flags.driverVariants)],
      ['time to connect every agent, s', connectSeconds.toFixed(1)],
      ['agents connected, lowest during the run', String(minConnected)],
      ['measured time, s', seconds.toFixed(1)],
      ['trial results stored per s', ((end.stored - start.stored) / seconds).toFixed(1)],
      ['trial results acknowledged per s', ((end.acks - start.acks) / seconds).toFixed(1)],
      ['ListFleet calls / p50 / p99 ms', `${fleetLatencies.length} / ${quantile(fleetLatencies, 0.5).toFixed(1)} / ${quantile(fleetLatencies, 0.99).toFixed(1)}`],
      ['ListConfigs calls / p50 / p99 ms', `${configLatencies.length} / ${quantile(configLatencies, 0.5).toFixed(1)} / ${quantile(configLatencies, 0.99).toFixed(1)}`],
      ['ops errors', String(opsErrors.length)],
      ['coordinator CPU % (mean / peak 1 s)', `${(((end.cpu - start.cpu) / seconds) * 100).toFixed(0)} / ${Math.max(...cpuSamples).toFixed(0)}`],
      ['coordinator RSS MiB (peak)', peakRss.toFixed(0)],
      ['PostgreSQL CPU % (mean)', (((end.pgCpu - start.pgCpu) / seconds) * 100).toFixed(0)],
      ['sessions opened / rejected', `${sums.sessions} / ${sums.rejects}`],
      ['benchmark runs by status', runs.map((r) => `${r.status} ${r.n}`).join(', ')],
    ];
    process.stdout.write(`\n| figure | value |\n| --- | ---: |\n${rows.map(([k, v]) => `| ${k} | ${v} |`).join('\n')}\n`);
    if (opsErrors.length > 0) process.stdout.write(`\nfirst ops error: ${opsErrors[0]}\n`);
  } finally {
    for (const worker of workers) worker.postMessage('stop');
    await Promise.all(workers.map((w) => new Promise((resolve) => w.once('exit', resolve))));
    await db.end().catch(() => {});
    await fleet.stop();
    await database.stop();
    if (flags.keep) process.stdout.write(`\nwork folder kept: ${workDir}\n`);
    else rmSync(workDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`load: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
