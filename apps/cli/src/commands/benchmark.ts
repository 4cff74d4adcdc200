/** `hwopt benchmark` and `hwopt watch`. */
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { InvalidInputError } from '@hwopt/common';
import type { BenchmarkEvent } from '@hwopt/proto';
import { call, connect, type ConnectionFlags } from '../ops-client.ts';

type Flags = ConnectionFlags & { node?: string; gpuModel?: string; workload?: string; stage?: string; json?: boolean };

export function registerBenchmarkCommands(program: Command, withConnection: (command: Command) => Command): void {
  withConnection(program.command('benchmark'))
    .description('Queue a re-benchmark of a node, or of every node with a GPU model (needs an admin token when tokens are on)')
    .option('--node <name>', 'the node')
    .option('--gpu-model <name>', 'every node with this GPU (as `hwopt fleet` names it)')
    .option('--workload <name>', 'the workload')
    .option('--stage <stage>', 'only this stage')
    .option('--json', 'print JSON')
    .action(async (flags: Flags) => {
      if (!!flags.node === !!flags.gpuModel) throw new InvalidInputError('pass exactly one of --node NAME and --gpu-model MODEL');
      const connection = connect(flags);
      try {
        const response = await call(connection, connection.client.scheduleBenchmark, { nodeName: flags.node ?? '', gpuModel: flags.gpuModel ?? '', workload: flags.workload ?? '', stage: flags.stage ?? '' }, flags.coordinator);
        if (flags.json) process.stdout.write(`${JSON.stringify(response, null, 2)}\n`);
        else process.stdout.write(`Queued ${response.jobIds.length} benchmark job(s) for ${response.nodeNames.join(', ')}${response.jobIds.length < response.nodeNames.length ? ' (others were already queued)' : ''}.\n`);
      } finally {
        connection.close();
      }
    });

  withConnection(program.command('watch'))
    .description('Show live progress of running benchmarks (progress bars in a terminal, JSON lines otherwise)')
    .option('--json', 'print JSON lines even in a terminal')
    .action(async (flags: Flags) => {
      const connection = connect(flags);
      const stream = connection.client.watchBenchmarks({}, connection.metadata);
      const tty = process.stdout.isTTY && !flags.json;
      const bars = tty ? new cliProgress.MultiBar({ format: '{node} {gpu} |{bar}| {value} trials {status} {detail}', hideCursor: true, clearOnComplete: false }, cliProgress.Presets.shades_classic) : null;
      const perRun = new Map<string, cliProgress.SingleBar>();
      await new Promise<void>((resolve, reject) => {
        stream.on('data', (event: BenchmarkEvent) => {
          if (!bars) {
            process.stdout.write(`${JSON.stringify(event)}\n`);
            return;
          }
          let bar = perRun.get(event.runId);
          // The total is unknown up front: the calibrated search decides as it goes.
          bar ??= bars.create(Math.max(10, event.trials + 5), 0, { node: event.nodeName, gpu: event.gpuUuid.slice(0, 12) });
          perRun.set(event.runId, bar);
          bar.setTotal(Math.max(bar.getTotal(), event.trials + (event.status === 'running' ? 5 : 0)));
          bar.update(event.trials, { status: event.status, detail: event.detail.slice(0, 60) });
        });
        stream.on('error', (error) => {
          bars?.stop();
          reject(error);
        });
        stream.on('end', () => {
          bars?.stop();
          resolve();
        });
        process.once('SIGINT', () => {
          stream.cancel();
          bars?.stop();
          resolve();
        });
      }).catch((error: { code?: number; details?: string }) => {
        if (error.code === 1) return;
        throw new Error(`watch ended: ${error.details ?? String(error)}`);
      });
      connection.close();
    });
}
