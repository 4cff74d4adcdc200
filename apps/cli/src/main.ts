/**
 * hwopt: the ops command line. Talks to the coordinator over gRPC, except
 * `simulate`, which runs the optimizer against a twin in process. The only
 * place that calls process.exit.
 */
import { Command, CommanderError } from 'commander';
import { dropIpServerNameWarning, errorMessage } from '@hwopt/common';
import { DEFAULT_COORDINATOR_ADDRESS } from '@hwopt/proto';
import { registerBenchmarkCommands } from './commands/benchmark.ts';
import { registerQueryCommands } from './commands/queries.ts';
import { registerSimulateCommand } from './commands/simulate.ts';
import { DEFAULT_CALL_TIMEOUT_SECONDS } from './ops-client.ts';
import { VERSION } from './version.ts';

dropIpServerNameWarning();

const program = new Command('hwopt')
  .description('hwopt: recommended model and batch sizes per GPU node, from a fleet of benchmarking agents')
  .version(VERSION)
  .exitOverride();
program.configureOutput({ writeErr: (text) => process.stderr.write(text.split('\n')[0] + '\n') });

function withConnection(command: Command): Command {
  return command
    .exitOverride()
    .option('--coordinator <host:port>', 'coordinator address', process.env.HWOPT_COORDINATOR ?? DEFAULT_COORDINATOR_ADDRESS)
    .option('--tls-ca <file>', 'PEM CA of the coordinator certificate; enables TLS')
    .option('--tls-cert <file>', 'PEM client certificate, for mutual TLS')
    .option('--tls-key <file>', 'PEM private key of the client certificate')
    .option('--token <token>', 'ops token (default: HWOPT_TOKEN)')
    .option('--timeout <seconds>', 'deadline of each call', String(DEFAULT_CALL_TIMEOUT_SECONDS));
}

registerQueryCommands(program, withConnection);
registerBenchmarkCommands(program, withConnection);
registerSimulateCommand(program);

try {
  await program.parseAsync();
  process.exit(0);
} catch (error) {
  if (error instanceof CommanderError) process.exit(error.exitCode === 0 ? 0 : 2);
  process.stderr.write(`hwopt: ${errorMessage(error)}\n`);
  process.exit(2);
}
