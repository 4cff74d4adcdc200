// Broken runner: exits in the middle of its result line.
process.stdin.once('data', (chunk) => {
  const { spec } = JSON.parse(chunk.toString('utf8'));
  process.stdout.write(`{"protocol":"hwopt-trial/1","type":"result","trialId":"${spec.trialId}","outc`);
  process.exit(0);
});
