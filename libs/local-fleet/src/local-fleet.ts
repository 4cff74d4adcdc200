/**
 * A whole hwopt fleet on one machine: a coordinator (embedded PostgreSQL
 * unless a database URL is given) and agents on digital twins, all real
 * processes talking gRPC over loopback.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AGENT_BIN, COORDINATOR_BIN, freePort, startProcess, type ManagedProcess } from './processes.ts';
import { OpsHarnessClient, waitForServing } from './ops.ts';

export interface CoordinatorStartOptions {
  /** Folder for logs, the embedded database and agent state. */
  workDir: string;
  /** Uses this PostgreSQL instead of an embedded one. */
  databaseUrl?: string;
  port?: number;
  datasetSize?: number;
  extraArgs?: string[];
  env?: Record<string, string | undefined>;
  /** Leave the coordinator running after this process exits. */
  detached?: boolean;
  name?: string;
  /** Time allowed for start-up, in ms. Default 120 s. */
  startTimeoutMs?: number;
}

export interface AgentStartOptions {
  nodeName: string;
  twinFile: string;
  extraArgs?: string[];
  env?: Record<string, string | undefined>;
}

export class LocalFleet {
  readonly agents = new Map<string, ManagedProcess>();
  coordinator: ManagedProcess | undefined;
  address = '';
  ops: OpsHarnessClient | undefined;

  constructor(readonly workDir: string) {
    this.workDir = resolve(workDir);
    mkdirSync(this.workDir, { recursive: true });
  }

  get logDir(): string {
    return join(this.workDir, 'logs');
  }

  async startCoordinator(options: Omit<CoordinatorStartOptions, 'workDir'> = {}): Promise<ManagedProcess> {
    const port = options.port ?? (await freePort());
    this.address = `127.0.0.1:${port}`;
    const args = ['--listen', this.address, '--data-dir', join(this.workDir, 'coordinator-data'), ...(options.datasetSize ? ['--dataset-size', String(options.datasetSize)] : []), ...(options.extraArgs ?? [])];
    const coordinator = startProcess(options.name ?? 'coordinator', COORDINATOR_BIN, args, {
      logDir: this.logDir,
      detached: options.detached,
      env: { DATABASE_URL: options.databaseUrl ?? '', HWOPT_LOG_LEVEL: 'info', ...options.env },
    });
    this.coordinator = coordinator;
    const exited = coordinator.process.then((result) => {
      throw new Error(`the coordinator exited during start-up with code ${result.exitCode}; see ${coordinator.logFile}`);
    });
    await Promise.race([waitForServing(this.address, options.startTimeoutMs ?? 120_000), exited]);
    this.ops = new OpsHarnessClient(this.address);
    return coordinator;
  }

  startAgent(options: AgentStartOptions): ManagedProcess {
    const agent = startProcess(`agent-${options.nodeName}`, AGENT_BIN, ['run', '--coordinator', this.address, '--node-name', options.nodeName, '--twin', options.twinFile, '--state-dir', this.agentStateDir(options.nodeName), ...(options.extraArgs ?? [])], {
      logDir: this.logDir,
      env: { HWOPT_LOG_LEVEL: 'info', ...options.env },
    });
    this.agents.set(options.nodeName, agent);
    return agent;
  }

  /** Returns the agent's state folder. The twin's `overrides.json` goes in its `twin` subfolder. */
  agentStateDir(nodeName: string): string {
    return join(this.workDir, `agent-${nodeName}`);
  }

  async stopAgents(): Promise<void> {
    await Promise.all([...this.agents.values()].map((agent) => agent.stop()));
    this.agents.clear();
  }

  /** Stops every process it started. */
  async stop(): Promise<void> {
    this.ops?.close();
    await this.stopAgents();
    await this.coordinator?.stop();
  }
}
