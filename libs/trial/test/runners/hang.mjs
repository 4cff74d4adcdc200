// Broken runner: reports one progress line for a trial request, then hangs and ignores SIGTERM,
// so only SIGKILL to its process group ends it.
process.on('SIGTERM', () => process.stderr.write('hang.mjs: ignoring SIGTERM\n'));
process.stdin.once('data', (chunk) => {
  const { spec } = JSON.parse(chunk.toString('utf8'));
  if (spec === undefined) return;
  process.stdout.write(`${JSON.stringify({ protocol: 'hwopt-trial/1', type: 'progress', trialId: spec.trialId, iteration: 1, iterations: spec.iterations })}\n`);
});
setInterval(() => {}, 1000);
