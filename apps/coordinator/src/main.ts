/**
 * hwopt-coordinator: parses flags, starts the coordinator, and stops it on
 * SIGINT or SIGTERM. The only place that calls process.exit.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { createLogger, errorMessage, parseDecimal } from '@hwopt/common';
import { DEFAULT_COORDINATOR_ADDRESS } from '@hwopt/proto';
import { Coordinator } from './coordinator.ts';
import { VERSION } from './version.ts';

function integer(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`${JSON.stringify(value)} is not a whole number.`);
  return Number(value);
}

function fraction(value: string): number {
  const n = parseDecimal(value);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`${JSON.stringify(value)} is not a decimal number.`);
  return n;
}

const program = new Command('hwopt-coordinator')
  .description('Coordinates hwopt agents: runs benchmarks on their GPUs, stores results and recommended configs, and serves ops queries over gRPC.')
  .version(VERSION)
  .option('--listen <host:port>', 'address the gRPC server binds', DEFAULT_COORDINATOR_ADDRESS)
  .option('--data-dir <dir>', 'folder of the embedded PostgreSQL, used when DATABASE_URL is unset', '.hwopt/coordinator')
  .option('--dataset-size <n>', 'samples in the training dataset; sets the parameter cap', integer, 19_500)
  .option('--memory-headroom <fraction>', 'fraction of GPU memory a trial must leave free', fraction, 0.05)
  .addOption(new Option('--strategy <name>', 'search strategy').choices(['calibrated', 'legacy']).default('calibrated'))
  .option('--trial-timeout <seconds>', 'time limit of one trial on the agent', integer, 900)
  .option('--rebenchmark-cron <expr>', 'cron expression (5 or 6 fields) for re-benchmarking every node')
  .option('--benchmark-concurrency <n>', 'benchmark jobs this process runs at once', integer, 16)
  .option('--heartbeat-interval <seconds>', 'interval agents send heartbeats (inventory, driver version) at', integer, 10)
  .option('--tls-cert <file>', 'PEM certificate of the server')
  .option('--tls-key <file>', 'PEM private key of the server')
  .option('--tls-ca <file>', 'PEM CA that signs agent certificates; enables mutual TLS')
  .option('--agent-token-file <file>', 'file holding the shared token agents must send (token mode)')
  .option('--ops-tokens-file <file>', 'JSON file of ops tokens: [{"token": "...", "role": "read" | "admin"}]')
  .option('--insecure', 'serve a non-loopback address without TLS, agent authentication or ops tokens (each missing one is allowed)')
  .addHelpText('after', '\nEnvironment:\n  DATABASE_URL     PostgreSQL to use instead of the embedded one\n  HWOPT_LOG_LEVEL  log level (default info)');

program.exitOverride();
program.configureOutput({ writeErr: (text) => process.stderr.write(text.split('\n')[0] + '\n') });

async function main(): Promise<number> {
  try {
    program.parse();
  } catch (error) {
    const code = (error as { exitCode?: number }).exitCode ?? 2;
    return code === 0 ? 0 : 2;
  }
  const flags = program.opts();
  const logger = createLogger('hwopt-coordinator');
  let coordinator: Coordinator;
  try {
    coordinator = new Coordinator(
      {
        listen: flags.listen,
        databaseUrl: process.env.DATABASE_URL || undefined,
        dataDir: flags.dataDir,
        datasetSize: flags.datasetSize,
        headroom: flags.memoryHeadroom,
        strategy: flags.strategy,
        trialTimeoutMs: flags.trialTimeout * 1000,
        rebenchmarkCron: flags.rebenchmarkCron,
        benchmarkConcurrency: flags.benchmarkConcurrency,
        heartbeatIntervalMs: flags.heartbeatInterval * 1000,
        tls: flags.tlsCert || flags.tlsKey ? { certFile: flags.tlsCert, keyFile: flags.tlsKey, caFile: flags.tlsCa } : undefined,
        agentTokenFile: flags.agentTokenFile,
        opsTokensFile: flags.opsTokensFile,
        insecure: flags.insecure,
      },
      logger,
    );
  } catch (error) {
    process.stderr.write(`hwopt-coordinator: ${errorMessage(error)}\n`);
    return 2;
  }

  let signalled = false;
  const shutdown = (signal: string) => {
    if (signalled) {
      logger.warn({ signal }, 'second signal; exiting now');
      process.exit(1);
    }
    signalled = true;
    coordinator.stop(`received ${signal}`).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  // Node would stop the process anyway; logging first leaves the cause in the structured log.
  process.on('unhandledRejection', (reason) => {
    logger.fatal({ err: reason }, 'unhandled promise rejection; exiting so that a supervisor restarts the coordinator');
    process.exit(1);
  });

  try {
    await coordinator.start();
  } catch (error) {
    logger.error({ err: error }, 'coordinator failed to start');
    process.stderr.write(`hwopt-coordinator: ${errorMessage(error)}\n`);
    return 1;
  }
  return -1;
}

const code = await main();
if (code >= 0) process.exit(code);
