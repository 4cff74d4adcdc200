// Broken runner: floods stdout. `long-line` writes one line without end;
// `many-lines` writes short log lines without end.
const mode = process.argv[2] ?? 'long-line';
const chunk = mode === 'long-line' ? 'x'.repeat(64 * 1024) : 'log line that is not protocol output\n'.repeat(2000);
function write() {
  while (process.stdout.write(chunk)) {
    // Keep writing until the pipe is full, then continue on drain.
  }
  process.stdout.once('drain', write);
}
process.stdout.on('error', () => process.exit(0));
write();
