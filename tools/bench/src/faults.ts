/**
 * Fault benchmark: twin agents (real processes) run benchmarks against one
 * coordinator on a PostgreSQL this benchmark starts, while it kills agents
 * mid-trial with SIGKILL, kills and restarts the coordinator, restarts
 * PostgreSQL, and cuts one agent off its network. Then it counts results
 * sent, acknowledged and stored. An acknowledged result that is not
 * stored is a lost result; the run fails when there is one.
 *
 *   node --import tsx tools/bench/src/faults.ts [--agents 2] [--time-scale 0.03]
 *
 * Linux only. The network cut needs root and `ip netns`; without them it
 * is skipped with the reason printed.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { Command } from 'commander';
import pg from 'pg';
import { createLogger, type Logger } from '@hwopt/common';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '@hwopt/db';
import { AGENT_BIN, freePort, LocalFleet, waitFor } from '@hwopt/local-fleet';
import { bundledTwinPath } from '@hwopt/twin';

interface Flags {
  agents: number;
  timeScale: number;
  trialTimeoutS: number;
  settleS: number;
  netns: boolean;
  keep: boolean;
}

const program = new Command('faults')
  .option('--agents <n>', 'twin agents on loopback (one more runs in a network namespace)', (v) => Number(v), 2)
  .option('--time-scale <factor>', "the agents' --twin-time-scale (real seconds per simulated second)", (v) => Number(v), 0.03)
  .option('--trial-timeout-s <s>', "the coordinator's --trial-timeout; a trial is given up this plus 30 s after assignment", (v) => Number(v), 10)
  .option('--settle-s <s>', 'time allowed after the last fault for every run to finish', (v) => Number(v), 900)
  .option('--no-netns', 'skip the network cut')
  .option('--keep', 'keep the work folder (logs, database) afterwards', false);

const TWINS = ['a100-40gb', 'rtx4090', 't4'];
const NETNS = 'hwopt-bench-cut';
const HOST_IF = 'hwopt-cut0';
const NS_IF = 'hwopt-cut1';
const HOST_IP = '10.213.0.1';
const NS_IP = '10.213.0.2';

interface FaultRow {
  fault: string;
  detail: string;
  trialId: string | null;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class Store {
  client: pg.Client | undefined;
  constructor(private readonly url: string) {}

  /** Runs a query on a connection that is opened again after PostgreSQL restarts. */
  async query<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
    if (!this.client) {
      const client = new pg.Client({ connectionString: this.url });
      client.on('error', () => {
        this.client = undefined;
      });
      await client.connect();
      this.client = client;
    }
    try {
      return (await this.client.query<T>(sql, params)).rows;
    } catch (error) {
      await this.client?.end().catch(() => {});
      this.client = undefined;
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.client?.end().catch(() => {});
    this.client = undefined;
  }

  /**
   * A trial assigned after `since` that has been running for at least
   * 200 ms on one of the nodes; older `assigned` rows may belong to runs of
   * a killed coordinator. When none runs for 10 s, `idle` is called (to
   * schedule more benchmarks).
   */
  async runningTrial(nodeNames: string[], since: Date, idle: (nodeNames: string[]) => Promise<unknown>, timeoutMs = 300_000): Promise<{ nodeName: string; trialId: string }> {
    let idleSince = Date.now();
    return waitFor(`a running trial on ${nodeNames.join(' or ')}`, timeoutMs, async () => {
      const rows = await this.query<{ id: string; name: string }>(
        "SELECT t.id, n.name FROM trials t JOIN nodes n ON n.id = t.node_id WHERE n.name = ANY($1) AND t.status = 'assigned' AND t.assigned_at > $2 ORDER BY t.assigned_at DESC LIMIT 1",
        [nodeNames, since],
      ).catch(() => []);
      if (rows.length === 0) {
        if (Date.now() - idleSince > 10_000) {
          idleSince = Date.now();
          await idle(nodeNames).catch(() => {});
        }
        return undefined;
      }
      await sleep(200);
      const still = await this.query<{ status: string }>('SELECT status FROM trials WHERE id = $1', [rows[0]!.id]).catch(() => []);
      return still[0]?.status === 'assigned' ? { nodeName: rows[0]!.name, trialId: rows[0]!.id } : undefined;
    }, 100);
  }
}

/** A veth pair into a network namespace, so one agent's traffic can be dropped. */
class NetworkCut {
  constructor(private readonly logger: Logger) {}

  /** Sets the namespace up; returns null on success, else why it cannot be used. */
  async setUp(): Promise<string | null> {
    if (process.getuid?.() !== 0) return 'needs root';
    const ip = await execa('ip', ['netns', 'list'], { reject: false });
    if (ip.exitCode !== 0) return `\`ip netns\` is not usable: ${String(ip.stderr || ip.shortMessage).split('\n')[0]}`;
    await this.tearDown();
    const steps: string[][] = [
      ['ip', 'netns', 'add', NETNS],
      ['ip', 'link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', NS_IF],
      ['ip', 'link', 'set', NS_IF, 'netns', NETNS],
      ['ip', 'addr', 'add', `${HOST_IP}/30`, 'dev', HOST_IF],
      ['ip', 'link', 'set', HOST_IF, 'up'],
      ['ip', 'netns', 'exec', NETNS, 'ip', 'addr', 'add', `${NS_IP}/30`, 'dev', NS_IF],
      ['ip', 'netns', 'exec', NETNS, 'ip', 'link', 'set', NS_IF, 'up'],
      ['ip', 'netns', 'exec', NETNS, 'ip', 'link', 'set', 'lo', 'up'],
    ];
    for (const [file, ...args] of steps) {
      const result = await execa(file!, args, { reject: false });
      if (result.exitCode !== 0) return `\`${[file, ...args].join(' ')}\` failed: ${result.stderr.split('\n')[0]}`;
    }
    return null;
  }

  /**
   * Drops every packet both ways (netem loss 100%), so neither side sees
   * the connection close; where netem is missing, takes the link down.
   */
  async cut(): Promise<string> {
    const host = await execa('tc', ['qdisc', 'add', 'dev', HOST_IF, 'root', 'netem', 'loss', '100%'], { reject: false });
    const inside = await execa('ip', ['netns', 'exec', NETNS, 'tc', 'qdisc', 'add', 'dev', NS_IF, 'root', 'netem', 'loss', '100%'], { reject: false });
    if (host.exitCode === 0 && inside.exitCode === 0) return 'netem loss 100% both ways';
    this.logger.warn({ reason: (host.stderr || inside.stderr).split('\n')[0] }, 'netem is not available; taking the link down instead');
    await execa('ip', ['link', 'set', HOST_IF, 'down'], { reject: false });
    return 'veth link down';
  }

  async restore(): Promise<void> {
    await execa('tc', ['qdisc', 'del', 'dev', HOST_IF, 'root'], { reject: false });
    await execa('ip', ['netns', 'exec', NETNS, 'tc', 'qdisc', 'del', 'dev', NS_IF, 'root'], { reject: false });
    await execa('ip', ['link', 'set', HOST_IF, 'up'], { reject: false });
  }

  async tearDown(): Promise<void> {
    await execa('ip', ['link', 'del', HOST_IF], { reject: false });
    await execa('ip', ['netns', 'del', NETNS], { reject: false });
  }
}

/** Counts of 'trial result sent' and 'trial result acknowledged' lines in the agents' logs. */
function countAgentLogs(logDir: string): { sentIds: Set<string>; sends: number; resends: number; ackedIds: Set<string> } {
  const sentIds = new Set<string>();
  const ackedIds = new Set<string>();
  let sends = 0;
  let resends = 0;
  for (const name of readdirSync(logDir).filter((n) => n.startsWith('agent-') && n.endsWith('.log'))) {
    for (const line of readFileSync(join(logDir, name), 'utf8').split('\n')) {
      if (!line.includes('trial result')) continue;
      let entry: { msg?: string; trialId?: string; resend?: boolean };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        continue;
      }
      if (!entry.trialId) continue;
      if (entry.msg === 'trial result sent') {
        sentIds.add(entry.trialId);
        sends += 1;
        if (entry.resend) resends += 1;
      } else if (entry.msg === 'trial result acknowledged') {
        ackedIds.add(entry.trialId);
      }
    }
  }
  return { sentIds, sends, resends, ackedIds };
}

async function main(): Promise<void> {
  const flags = program.parse().opts<Flags>();
  if (process.platform !== 'linux') throw new Error('the fault benchmark runs on Linux only');
  const logger = createLogger('bench-faults');
  const startedAt = Date.now();
  const workDir = mkdtempSync(join(tmpdir(), 'hwopt-bench-faults-'));
  // Run as root, PostgreSQL runs as the postgres user, which must pass through this folder.
  chmodSync(workDir, 0o711);
  const pgDir = join(workDir, 'postgres');
  let database: EmbeddedPostgresHandle | undefined = await startEmbeddedPostgres({ dataDir: pgDir });
  const pgPort = database.port;
  const databaseUrl = database.url;
  const store = new Store(databaseUrl);
  const fleet = new LocalFleet(workDir);
  const network = new NetworkCut(logger);
  let cutAgent: ResultPromise | undefined;
  const faults: FaultRow[] = [];
  const skipped: string[] = [];

  try {
    const netnsProblem = flags.netns ? await network.setUp() : 'turned off with --no-netns';
    if (netnsProblem) skipped.push(`network cut skipped: ${netnsProblem}`);
    const port = await freePort();
    const coordinatorArgs = ['--trial-timeout', String(flags.trialTimeoutS), ...(netnsProblem ? [] : ['--listen', `0.0.0.0:${port}`, '--insecure'])];
    const startCoordinator = () => fleet.startCoordinator({ databaseUrl, port, extraArgs: coordinatorArgs });
    await startCoordinator();

    const agentArgs = ['--twin-time-scale', String(flags.timeScale)];
    const nodes = Array.from({ length: flags.agents }, (_, i) => ({ name: `fault-${TWINS[i % TWINS.length]}-${i}`, twin: bundledTwinPath(TWINS[i % TWINS.length]!) }));
    // The cut node's twin is the last one, so with the default two loopback agents no two nodes share a calibration key.
    const startAgent = (node: { name: string; twin: string }) => fleet.startAgent({ nodeName: node.name, twinFile: node.twin, extraArgs: agentArgs });
    for (const node of nodes) startAgent(node);

    const cutTwin = TWINS[TWINS.length - 1]!;
    const cutNode = { name: `fault-netns-${cutTwin}`, twin: bundledTwinPath(cutTwin) };
    if (!netnsProblem) {
      mkdirSync(fleet.logDir, { recursive: true });
      cutAgent = execa('ip', ['netns', 'exec', NETNS, process.execPath, AGENT_BIN, 'run', '--coordinator', `${HOST_IP}:${port}`, '--node-name', cutNode.name, '--twin', cutNode.twin, '--state-dir', fleet.agentStateDir(cutNode.name), ...agentArgs], {
        reject: false,
        detached: true,
        stdin: 'ignore',
        stdout: { file: join(fleet.logDir, `agent-${cutNode.name}.log`), append: true },
        stderr: { file: join(fleet.logDir, `agent-${cutNode.name}.log`), append: true },
        env: { HWOPT_LOG_LEVEL: 'info' },
      });
    }
    const allNodes = netnsProblem ? nodes : [...nodes, cutNode];
    const byName = new Map(allNodes.map((n) => [n.name, n]));
    const loopbackNames = nodes.map((n) => n.name);
    const allNames = allNodes.map((n) => n.name);
    // Runs end after a few dozen trials; more are scheduled whenever a fault finds none in flight.
    const scheduleMore = async (names: string[]) => {
      for (const nodeName of names) await fleet.ops?.scheduleBenchmark({ nodeName }).catch(() => undefined);
    };

    // 1. An agent killed mid-trial and restarted at once: the trial is resent and rerun under its id.
    let inFlight = await store.runningTrial(loopbackNames, new Date(), scheduleMore);
    await fleet.agents.get(inFlight.nodeName)!.kill();
    await sleep(2_000);
    startAgent(byName.get(inFlight.nodeName)!);
    faults.push({ fault: 'agent SIGKILL, back in 2 s', detail: inFlight.nodeName, trialId: inFlight.trialId });

    // 2. An agent killed mid-trial and away past the trial limit: the trial is lost and rerun.
    inFlight = await store.runningTrial(loopbackNames, new Date(), scheduleMore);
    await fleet.agents.get(inFlight.nodeName)!.kill();
    const awayMs = (flags.trialTimeoutS + 40) * 1000;
    faults.push({ fault: `agent SIGKILL, back in ${Math.round(awayMs / 1000)} s`, detail: inFlight.nodeName, trialId: inFlight.trialId });
    await sleep(awayMs);
    startAgent(byName.get(inFlight.nodeName)!);

    // 3. The coordinator killed mid-trial and restarted.
    inFlight = await store.runningTrial(allNames, new Date(), scheduleMore);
    await fleet.coordinator!.kill();
    await sleep(5_000);
    await startCoordinator();
    faults.push({ fault: 'coordinator SIGKILL, back in 5 s', detail: `trial on ${inFlight.nodeName}`, trialId: inFlight.trialId });

    // 4. One agent's network dropped for longer than keepalive notices (30 s + 10 s).
    if (!netnsProblem) {
      const cutTrial = await store.runningTrial([cutNode.name], new Date(), scheduleMore, 180_000).catch(() => null);
      const how = await network.cut();
      await sleep(60_000);
      await network.restore();
      faults.push({ fault: 'network cut for 60 s', detail: `${cutNode.name}, ${how}`, trialId: cutTrial?.trialId ?? null });
    }

    // 5. PostgreSQL stopped under the running coordinator and started again.
    const pgTrial = await store.runningTrial(allNames, new Date(), scheduleMore, 180_000).catch(() => null);
    await store.close();
    await database.stop();
    database = undefined;
    await sleep(15_000);
    database = await startEmbeddedPostgres({ dataDir: pgDir, port: pgPort });
    faults.push({ fault: 'PostgreSQL stopped, back in 15 s', detail: pgTrial ? `trial on ${pgTrial.nodeName}` : 'no trial was in flight', trialId: pgTrial?.trialId ?? null });

    // Every node ends with its configs and no run left running.
    // A coordinator that exits by itself (a crash) ends the wait: nothing would settle after it.
    const coordinatorExit = () => fleet.coordinator?.process.exitCode ?? null;
    const settled = await waitFor('every run finished', flags.settleS * 1000, async () => {
      if (coordinatorExit() !== null) throw Object.assign(new Error(`the coordinator exited with code ${coordinatorExit()}`), { fatal: true });
      const running = await store.query<{ n: number }>("SELECT count(*)::int AS n FROM benchmark_runs WHERE status = 'running'").catch(() => [{ n: -1 }]);
      const configured = await store.query<{ n: number }>('SELECT count(DISTINCT node_id)::int AS n FROM recommended_configs').catch(() => [{ n: -1 }]);
      return running[0]!.n === 0 && configured[0]!.n >= allNodes.length;
    }, 2_000).then(() => true, () => false);
    // Results still on their way: give the agents a moment (and one resend interval) to be acknowledged.
    await sleep(35_000);

    const logs = countAgentLogs(fleet.logDir);
    const storedRows = await store.query<{ id: string }>("SELECT id FROM trials WHERE status IN ('ok', 'oom', 'failed')");
    const storedIds = new Set(storedRows.map((r) => r.id));
    const lostAcknowledged = [...logs.ackedIds].filter((id) => !storedIds.has(id));
    const neverAcknowledged = [...logs.sentIds].filter((id) => !logs.ackedIds.has(id));
    const byStatus = await store.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM trials GROUP BY status ORDER BY status');
    const runs = await store.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM benchmark_runs GROUP BY status ORDER BY status');
    const jobs = await store.query<{ state: string; n: number }>("SELECT state::text, count(*)::int AS n FROM pgboss.job WHERE name = 'hwopt-benchmark' GROUP BY state ORDER BY state").catch(() => []);
    let outboxLeft = 0;
    for (const node of allNodes) {
      const dir = join(fleet.agentStateDir(node.name), 'outbox');
      if (existsSync(dir)) outboxLeft += readdirSync(dir).filter((n) => n.endsWith('.json')).length;
    }
    const faultTrials = await Promise.all(faults.map(async (f) => (f.trialId ? (await store.query<{ status: string }>('SELECT status FROM trials WHERE id = $1', [f.trialId]))[0]?.status ?? 'missing' : '-')));

    const out: string[] = [];
    out.push('| fault | where | trial in flight | its final status |', '| --- | --- | --- | --- |');
    faults.forEach((f, i) => out.push(`| ${f.fault} | ${f.detail} | ${f.trialId?.slice(0, 8) ?? '-'} | ${faultTrials[i]} |`));
    out.push('', '| count | value |', '| --- | ---: |');
    const rows: [string, string | number][] = [
      ['results sent (distinct trials)', logs.sentIds.size],
      ['sends, resends included', `${logs.sends} (${logs.resends} resends)`],
      ['results acknowledged (distinct trials)', logs.ackedIds.size],
      ['results stored (ok, oom, failed)', storedIds.size],
      ['**acknowledged but not stored (lost)**', lostAcknowledged.length],
      ['sent, never acknowledged', neverAcknowledged.length],
      ['left in agent outboxes', outboxLeft],
      ['trials by status', byStatus.map((r) => `${r.status} ${r.n}`).join(', ')],
      ['benchmark runs by status', runs.map((r) => `${r.status} ${r.n}`).join(', ')],
      ['every run finished, every node configured', settled ? 'yes' : `no, after ${flags.settleS} s`],
      ['coordinator exited by itself', coordinatorExit() === null ? 'no' : `yes, code ${coordinatorExit()} (see logs/coordinator.log)`],
      ['pg-boss benchmark jobs by state', jobs.map((r) => `${r.state} ${r.n}`).join(', ') || 'unknown'],
      ['wall time, s', Math.round((Date.now() - startedAt) / 1000)],
    ];
    for (const [k, v] of rows) out.push(`| ${k} | ${v} |`);
    for (const line of skipped) out.push('', line);
    process.stdout.write(`\n${out.join('\n')}\n`);
    if (lostAcknowledged.length > 0) {
      process.stdout.write(`\nlost acknowledged results: ${lostAcknowledged.join(', ')}\n`);
      process.exitCode = 1;
    }
  } finally {
    if (cutAgent?.pid) {
      try {
        process.kill(-cutAgent.pid, 'SIGTERM');
      } catch {
        // Already gone.
      }
      await Promise.race([cutAgent, sleep(15_000)]);
    }
    await network.tearDown();
    await store.close();
    await fleet.stop();
    await database?.stop();
    if (flags.keep) process.stdout.write(`\nwork folder kept: ${workDir}\n`);
    else rmSync(workDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`faults: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
