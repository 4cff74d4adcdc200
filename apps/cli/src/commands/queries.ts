/** `hwopt configs`, `fleet`, `history` and `export-profile`. */
import type { Command } from 'commander';
import { InvalidInputError } from '@hwopt/common';
import type { FleetNode, StageConfig } from '@hwopt/proto';
import { call, connect, type ConnectionFlags } from '../ops-client.ts';
import { round, table } from '../format.ts';

const STAGES = ['production', 'validation', 'prototyping', 'smoke_test'];

type Flags = ConnectionFlags & { node?: string; stage?: string; workload?: string; json?: boolean; history?: boolean };

function write(text: string): void {
  process.stdout.write(text);
}

function yesNo(value: boolean | undefined): string {
  if (value === undefined) return '';
  return value ? 'yes' : 'no';
}

function configState(config: StageConfig): string {
  if (!config.current) return 'replaced';
  if (config.stale) return `stale: ${config.staleReason}`;
  return 'current';
}

export function configsTable(configs: StageConfig[]): string {
  return table(
    ['node', 'gpu', 'stage', 'layers', 'channels', 'batch', 'params', 'peak MiB', 'step s', 'cycle min', 'in window', 'state'],
    configs.map((c) => [
      c.nodeName,
      c.gpuName,
      c.stage,
      c.architecture?.layers,
      c.architecture?.hiddenChannels,
      c.batchSize,
      c.parameters,
      round(c.peakMib, 0),
      round(c.stepSeconds, 4),
      round(c.cycleMinutes, 1),
      yesNo(c.inWindow),
      configState(c),
    ]),
  );
}

function fleetTable(nodes: FleetNode[]): string {
  return table(
    ['node', 'state', 'gpus', 'driver', 'cuda', 'last contact', 'configs', 'stale'],
    nodes.map((n) => [
      n.nodeName,
      n.state,
      n.inventory?.gpus.map((g) => `${g.name} (${g.memoryTotalMib ?? '?'} MiB)`).join(', '),
      n.inventory?.driverVersion,
      n.inventory?.cudaVersion,
      n.lastContactAt?.toISOString(),
      n.configCount,
      n.staleConfigCount,
    ]),
  );
}

export function registerQueryCommands(program: Command, withConnection: (command: Command) => Command): void {
  withConnection(program.command('configs'))
    .description('Print the recommended configs stored by the coordinator')
    .option('--node <name>', 'only this node')
    .option('--stage <stage>', `only this stage (${STAGES.join(', ')})`)
    .option('--workload <name>', 'only this workload')
    .option('--history', 'include configs that later benchmarks replaced')
    .option('--json', 'print JSON')
    .action(async (flags: Flags) => {
      if (flags.stage && !STAGES.includes(flags.stage)) throw new InvalidInputError(`--stage ${JSON.stringify(flags.stage)} is not one of ${STAGES.join(', ')}`);
      const connection = connect(flags);
      try {
        const response = await call(connection, connection.client.listConfigs, { nodeName: flags.node ?? '', stage: flags.stage ?? '', workload: flags.workload ?? '', includeHistory: flags.history ?? false }, flags.coordinator);
        if (flags.json) write(`${JSON.stringify(response.configs, null, 2)}\n`);
        else if (response.configs.length > 0) write(configsTable(response.configs));
        else write('No configs stored yet; agents may still be benchmarking (see `hwopt watch`).\n');
      } finally {
        connection.close();
      }
    });

  withConnection(program.command('fleet'))
    .description('List nodes with their GPUs, driver versions, last contact, state and config staleness')
    .option('--json', 'print JSON')
    .action(async (flags: Flags) => {
      const connection = connect(flags);
      try {
        const response = await call(connection, connection.client.listFleet, {}, flags.coordinator);
        if (flags.json) write(`${JSON.stringify(response.nodes, null, 2)}\n`);
        else if (response.nodes.length > 0) write(fleetTable(response.nodes));
        else write('No node has registered yet; start hwopt-agent on a GPU node.\n');
      } finally {
        connection.close();
      }
    });

  withConnection(program.command('history'))
    .description('List a node\'s benchmark runs and what each changed')
    .requiredOption('--node <name>', 'the node')
    .option('--json', 'print JSON')
    .action(async (flags: Flags) => {
      const connection = connect(flags);
      try {
        const response = await call(connection, connection.client.getHistory, { nodeName: flags.node! }, flags.coordinator);
        if (flags.json) {
          write(`${JSON.stringify(response.runs, null, 2)}\n`);
          return;
        }
        for (const run of response.runs) {
          write(`${run.startedAt?.toISOString()}  run ${run.id}  ${run.reason}  ${run.status}  driver ${run.driverVersion || '?'}  ${run.trials} trials, ${run.gpuSeconds.toFixed(0)} GPU-s${run.error ? `  error: ${run.error}` : ''}\n`);
          for (const change of run.changes) write(`    ${change}\n`);
        }
        if (response.runs.length === 0) write(`No benchmark runs for node ${flags.node} yet.\n`);
      } finally {
        connection.close();
      }
    });

  withConnection(program.command('export-profile'))
    .description('Write the node\'s configs in the original hardware_profile.json format to stdout')
    .requiredOption('--node <name>', 'the node')
    .option('--workload <name>', 'the workload (default: all)')
    .action(async (flags: Flags) => {
      const connection = connect(flags);
      try {
        const response = await call(connection, connection.client.exportProfile, { nodeName: flags.node!, workload: flags.workload ?? '' }, flags.coordinator);
        write(`${response.profileJson}\n`);
      } finally {
        connection.close();
      }
    });
}
