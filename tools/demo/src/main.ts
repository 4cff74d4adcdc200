/**
 * `npm run demo`: the main job end to end on one machine. It starts a
 * coordinator with an embedded PostgreSQL and three agents on the twins of
 * an A100 40GB, an RTX 4090 and a T4, and shows live progress. Then it
 * prints the per-node, per-stage configs and how to query them, and stops
 * what it started; with --keep-running the coordinator stays up.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { LocalFleet, waitFor, type ManagedProcess } from '@hwopt/local-fleet';
import { bundledTwinPath } from '@hwopt/twin';
import { DEFAULT_COORDINATOR_PORT, type StageConfig } from '@hwopt/proto';

const NODES = [
  { nodeName: 'a100-node', twin: 'a100-40gb' },
  { nodeName: 'rtx4090-node', twin: 'rtx4090' },
  { nodeName: 't4-node', twin: 't4' },
];
const STAGES = ['production', 'validation', 'prototyping', 'smoke_test'];

function integer(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`${JSON.stringify(value)} is not a whole number.`);
  return Number(value);
}

const program = new Command('npm run demo --')
  .description('Run a coordinator and three digital-twin agents on this machine and print the configs they find')
  .option('--keep-running', 'leave the coordinator and its database running for queries')
  .option('--dataset-size <n>', 'samples in the training dataset', integer, 19_500)
  .option('--port <port>', 'coordinator port', integer, DEFAULT_COORDINATOR_PORT)
  .option('--work-dir <dir>', 'folder for logs and data (wiped at start)', '.hwopt/demo')
  .option('--timeout <seconds>', 'give up after this long', integer, 900)
  .exitOverride();

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function inWindowCell(value: boolean | undefined): string {
  if (value === undefined) return '-';
  return value ? 'yes' : 'no';
}

function printTable(configs: StageConfig[]): void {
  const rows = configs
    .slice()
    .sort((a, b) => a.nodeName.localeCompare(b.nodeName) || STAGES.indexOf(a.stage) - STAGES.indexOf(b.stage))
    .map((c) => [
      c.nodeName,
      c.gpuName,
      c.stage,
      String(c.architecture?.layers),
      String(c.architecture?.hiddenChannels),
      String(c.batchSize),
      String(c.parameters),
      c.peakMib === undefined ? '-' : c.peakMib.toFixed(0),
      c.cycleMinutes === undefined ? '-' : c.cycleMinutes.toFixed(1),
      inWindowCell(c.inWindow),
    ]);
  const headers = ['node', 'gpu', 'stage', 'layers', 'channels', 'batch', 'params', 'peak MiB', 'cycle min', 'in window'];
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  process.stdout.write([line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n');
}

async function main(): Promise<number> {
  try {
    program.parse(process.argv.slice(2), { from: 'user' });
  } catch (error) {
    return error instanceof CommanderError && error.exitCode === 0 ? 0 : 2;
  }
  const flags = program.opts<{ keepRunning?: boolean; datasetSize: number; port: number; workDir: string; timeout: number }>();
  const workDir = resolve(flags.workDir);
  const pidFile = join(workDir, 'coordinator.pid');
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8'));
    let alive = false;
    try {
      process.kill(pid, 0);
      alive = true;
    } catch {
      // Not running any more.
    }
    if (alive) {
      log(`A coordinator from an earlier demo (pid ${pid}) still runs with data in ${workDir}. Stop it first: kill ${pid}`);
      return 1;
    }
  }
  rmSync(workDir, { recursive: true, force: true });

  const fleet = new LocalFleet(workDir);
  let stopping = false;
  const stopAll = async () => {
    if (stopping) return;
    stopping = true;
    await fleet.stopAgents();
    if (!flags.keepRunning) await fleet.coordinator?.stop();
    fleet.ops?.close();
  };
  process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));
  process.on('SIGTERM', () => void stopAll().then(() => process.exit(143)));

  const started = Date.now();
  log(`Starting the coordinator on 127.0.0.1:${flags.port} with an embedded PostgreSQL in ${join(workDir, 'coordinator-data')} ...`);
  let coordinator: ManagedProcess;
  try {
    coordinator = await fleet.startCoordinator({ port: flags.port, datasetSize: flags.datasetSize, detached: flags.keepRunning, name: 'coordinator' });
  } catch (error) {
    log(`The coordinator did not start: ${(error as Error).message}`);
    await stopAll();
    return 1;
  }
  writeFileSync(pidFile, String(coordinator.pid));
  log(`Coordinator ready after ${((Date.now() - started) / 1000).toFixed(1)} s (log: ${coordinator.logFile}).`);
  for (const node of NODES) {
    fleet.startAgent({ nodeName: node.nodeName, twinFile: bundledTwinPath(node.twin) });
    log(`Started agent ${node.nodeName} on the ${node.twin} twin.`);
  }

  const expected = NODES.length * STAGES.length;
  let configs: StageConfig[] = [];
  let lastLine = '';
  try {
    configs = await waitFor('configs of every node and stage', flags.timeout * 1000, async () => {
      const current = await fleet.ops!.configs();
      const runs = await Promise.all(NODES.map((n) => fleet.ops!.history(n.nodeName).catch(() => [])));
      const progress = NODES.map((n, i) => {
        const run = runs[i]!.at(-1);
        const done = current.filter((c) => c.nodeName === n.nodeName).length;
        return `${n.nodeName}: ${run ? `${run.status}, ${run.trials || '...'} trials` : 'waiting'}, ${done}/${STAGES.length} stages`;
      });
      const line = progress.join(' | ');
      if (line !== lastLine) log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`);
      lastLine = line;
      const failed = runs.flat().find((r) => r.status === 'failed');
      if (failed) throw Object.assign(new Error(`benchmark run ${failed.id} on ${failed.nodeName} failed: ${failed.error}`), { fatal: true });
      return current.length >= expected ? current : undefined;
    }, 1000);
  } catch (error) {
    log(`The demo did not finish: ${(error as Error).message}. Logs are in ${fleet.logDir}.`);
    await stopAll();
    return 1;
  }

  log(`\nAll ${expected} configs stored after ${((Date.now() - started) / 1000).toFixed(0)} s:\n`);
  printTable(configs);
  await stopAll();
  const address = fleet.address;
  if (flags.keepRunning) {
    log(`\nThe coordinator keeps running at ${address} (pid ${coordinator.pid}). Query it with:`);
    log('  npx hwopt configs --json');
    log('  npx hwopt fleet --json');
    log('  npx hwopt history --node t4-node');
    log('  npx hwopt export-profile --node a100-node > hardware_profile.json');
    log(`Stop it with: kill ${coordinator.pid}`);
  } else {
    rmSync(pidFile, { force: true });
    log('\nStopped the agents, the coordinator and its database. Run `npm run demo -- --keep-running` to query them afterwards with `npx hwopt configs`.');
  }
  return 0;
}

process.exit(await main());
