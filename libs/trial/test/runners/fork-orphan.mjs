// Broken runner: forks a child (in the runner's process group) that outlives it,
// reports success and exits. argv[2] is a file that receives the child's pid.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';

const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: ['ignore', 'inherit', 'inherit'] });
writeFileSync(process.argv[2], String(child.pid));
child.unref();
process.stdin.once('data', (chunk) => {
  const { spec } = JSON.parse(chunk.toString('utf8'));
  process.stdout.write(`${JSON.stringify({ protocol: 'hwopt-trial/1', type: 'result', trialId: spec.trialId, outcome: 'ok' })}\n`);
  process.exit(0);
});
