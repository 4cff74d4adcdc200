// Broken runner: writes one bad line chosen by argv[2] (`invalid-json`,
// `wrong-protocol`, `wrong-trial`), then a valid result.
const mode = process.argv[2];
process.stdin.once('data', (chunk) => {
  const { spec } = JSON.parse(chunk.toString('utf8'));
  const lines = {
    'invalid-json': '{"protocol": "hwopt-trial/1", "type": "progress",',
    'wrong-protocol': JSON.stringify({ protocol: 'hwopt-trial/0', type: 'progress', trialId: spec.trialId, iteration: 1, iterations: 1 }),
    'wrong-trial': JSON.stringify({ protocol: 'hwopt-trial/1', type: 'result', trialId: 'other', outcome: 'ok' }),
  };
  process.stdout.write(`starting (a log line, ignored)\n${lines[mode]}\n`);
  process.stdout.write(`${JSON.stringify({ protocol: 'hwopt-trial/1', type: 'result', trialId: spec.trialId, outcome: 'ok' })}\n`);
});
