/**
 * hwopt-agent: the GPU node daemon and its diagnostic commands. The only
 * place that calls process.exit.
 */
import { Command, CommanderError } from 'commander';
import { dropIpServerNameWarning, errorMessage } from '@hwopt/common';
import { registerClassifyFailureCommand } from './commands/classify-failure.ts';
import { registerGpusCommand } from './commands/gpus.ts';
import { registerRunCommand } from './commands/run.ts';
import { VERSION } from './version.ts';

dropIpServerNameWarning();

let stopAgent: (() => Promise<void>) | undefined;

const program = new Command('hwopt-agent')
  .description('hwopt agent: reads this node\'s GPUs with nvidia-smi and runs benchmark trials for the coordinator')
  .version(VERSION)
  .showHelpAfterError(false)
  .exitOverride();
program.configureOutput({ writeErr: (text) => process.stderr.write(text.split('\n')[0] + '\n') });
registerRunCommand(program, (stop) => (stopAgent = stop));
registerGpusCommand(program);
registerClassifyFailureCommand(program);

let signalled = false;
function shutdown(signal: string): void {
  if (signalled) process.exit(1);
  signalled = true;
  process.stderr.write(`hwopt-agent: ${signal} received; stopping\n`);
  if (!stopAgent) process.exit(0);
  stopAgent().then(
    () => process.exit(0),
    () => process.exit(1),
  );
}
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));

try {
  await program.parseAsync();
  process.exit(0);
} catch (error) {
  if (error instanceof CommanderError) process.exit(error.exitCode === 0 ? 0 : 2);
  process.stderr.write(`hwopt-agent: ${errorMessage(error)}\n`);
  process.exit(2);
}
