/**
 * `hwopt-agent run`: registers this node with the coordinator and runs the
 * trials it assigns until SIGINT or SIGTERM.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { credentials as grpcCredentials, type ChannelCredentials } from '@grpc/grpc-js';
import type { Command } from 'commander';
import { createLogger, InvalidInputError, parseDecimal, readClientTlsFiles } from '@hwopt/common';
import { InventoryPoller, type NvidiaSmiCommand } from '@hwopt/nvidia-smi';
import { DEFAULT_COORDINATOR_ADDRESS } from '@hwopt/proto';
import { validateRunnerConfig, type RunnerConfig } from '@hwopt/trial';
import { createSmiMonitor, createTwinNode, ResultOutbox, TrialWorker, type OutboxResult } from '@hwopt/agent-runtime';
import { AgentSession } from '../agent-session.ts';
import { VERSION } from '../version.ts';

const NODE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const DEFAULT_VISNET_RUNNER = fileURLToPath(new URL('../../../../runners/visnet-pdb/runner.py', import.meta.url));

interface RunFlags {
  coordinator: string;
  nodeName?: string;
  label: string[];
  twin?: string;
  twinTimeScale: string;
  stateDir?: string;
  runnerConfig?: string;
  nvidiaSmi: string;
  allowBusyGpu?: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tokenFile?: string;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function parseLabels(values: string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const value of values) {
    const match = /^([A-Za-z0-9._/-]{1,128})=(.{0,256})$/.exec(value);
    if (!match) throw new InvalidInputError(`--label ${JSON.stringify(value)} is not KEY=VALUE (key of letters, digits, '.', '_', '/', '-')`);
    labels[match[1]!] = match[2]!;
  }
  return labels;
}

function readRunnerConfig(path: string): Record<string, RunnerConfig> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new InvalidInputError(`--runner-config ${path} cannot be read as JSON (${(error as Error).message}); expected {"<workload>": {"kind": "protocol", "command": ...}}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new InvalidInputError(`--runner-config ${path} must hold an object keyed by workload name`);
  for (const [workload, runner] of Object.entries(parsed)) {
    try {
      validateRunnerConfig(runner as RunnerConfig);
    } catch (error) {
      throw new InvalidInputError(`--runner-config ${path}, workload ${workload}: ${(error as Error).message}`);
    }
  }
  return parsed as Record<string, RunnerConfig>;
}

function channelCredentials(flags: RunFlags): ChannelCredentials {
  if (!flags.tlsCa && !flags.tlsCert && !flags.tlsKey) return grpcCredentials.createInsecure();
  if (!flags.tlsCa) throw new InvalidInputError('--tls-ca is required with TLS: it is the CA that signed the coordinator certificate');
  const files = readClientTlsFiles({ caFile: flags.tlsCa, certFile: flags.tlsCert, keyFile: flags.tlsKey });
  return grpcCredentials.createSsl(files.ca, files.key, files.cert);
}

export function registerRunCommand(program: Command, onStop: (stop: () => Promise<void>) => void): void {
  program
    .command('run')
    .description('Register this node with the coordinator and run the trials it assigns')
    .option('--coordinator <host:port>', 'coordinator address', DEFAULT_COORDINATOR_ADDRESS)
    .option('--node-name <name>', 'name of this node (default: the hostname)')
    .option('--label <key=value>', 'label of this node; repeat for several', collect, [])
    .option('--twin <file>', 'simulate the GPU with a digital twin (hwopt-twin/1 JSON) instead of real hardware')
    .option('--twin-time-scale <factor>', 'with --twin, real seconds slept per simulated second', '0')
    .option('--state-dir <dir>', 'folder for the result outbox and twin state (default .hwopt/agent-<node>)')
    .option('--runner-config <file>', 'JSON mapping workload names to trial runners')
    .option('--nvidia-smi <path>', 'nvidia-smi executable', 'nvidia-smi')
    .option('--allow-busy-gpu', 'run trials even when other processes use the GPU')
    .option('--tls-ca <file>', 'PEM CA of the coordinator certificate; enables TLS')
    .option('--tls-cert <file>', 'PEM client certificate (its common name is this node name) for mutual TLS')
    .option('--tls-key <file>', 'PEM private key of the client certificate')
    .option('--token-file <file>', 'file holding the shared agent token (token mode)')
    .action(async (flags: RunFlags) => {
      const nodeName = flags.nodeName ?? hostname();
      if (!NODE_NAME_PATTERN.test(nodeName)) throw new InvalidInputError(`node name ${JSON.stringify(nodeName)} is invalid; use letters, digits, '.', '_' and '-' (pass --node-name)`);
      if (!/^[^\s:]+:\d{1,5}$/.test(flags.coordinator) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(flags.coordinator)) {
        throw new InvalidInputError(`--coordinator ${JSON.stringify(flags.coordinator)} is not HOST:PORT`);
      }
      const labels = parseLabels(flags.label);
      const timeScale = parseDecimal(flags.twinTimeScale);
      if (!(timeScale >= 0)) throw new InvalidInputError(`--twin-time-scale ${flags.twinTimeScale} must be a number >= 0`);
      const stateDir = resolve(flags.stateDir ?? join('.hwopt', `agent-${nodeName}`));
      const credentials = channelCredentials(flags);
      const token = flags.tokenFile ? readFileSync(flags.tokenFile, 'utf8').trim() : undefined;
      const logger = createLogger('hwopt-agent').child({ node: nodeName });

      let smi: NvidiaSmiCommand = { command: flags.nvidiaSmi };
      let runners: Record<string, RunnerConfig> = { 'visnet-pdb': { kind: 'protocol', command: 'python3', args: [DEFAULT_VISNET_RUNNER] } };
      if (flags.twin) {
        const twinNode = createTwinNode({ twinFile: flags.twin, stateDir: join(stateDir, 'twin'), nodeName, timeScale });
        smi = twinNode.smi;
        runners = { [twinNode.twin.workload]: twinNode.runner };
        logger.info({ twin: flags.twin, gpu: twinNode.twin.gpu.name, gpuUuid: twinNode.gpuUuid }, 'this node simulates its GPU with a digital twin');
      }
      if (flags.runnerConfig) runners = { ...runners, ...readRunnerConfig(flags.runnerConfig) };

      const poller = new InventoryPoller({ smi, logger });
      const outbox = new ResultOutbox<OutboxResult>(join(stateDir, 'outbox'), logger);
      const gpuIndex = new Map<string, number>();
      let session: AgentSession | undefined;
      const worker = new TrialWorker({
        runners,
        gpuIndex: (uuid) => gpuIndex.get(uuid),
        monitor: createSmiMonitor(smi, { logger }),
        allowBusyGpu: flags.allowBusyGpu,
        outbox,
        logger,
        onResult: (result) => session?.sendResult(result),
      });
      session = new AgentSession({
        coordinator: flags.coordinator,
        nodeName,
        labels,
        agentVersion: VERSION,
        workloads: Object.keys(runners),
        poller,
        outbox,
        worker,
        logger,
        credentials,
        token,
        onInventory: (snapshot) => {
          for (const gpu of snapshot.inventory?.gpus ?? []) {
            if (gpu.uuid) gpuIndex.set(gpu.uuid, gpu.index);
            for (const mig of gpu.migDevices) if (mig.uuid) gpuIndex.set(mig.uuid, gpu.index);
          }
        },
      });
      onStop(async () => {
        worker.stop('agent shutting down');
        await session!.stop();
      });
      await session.start();
    });
}
