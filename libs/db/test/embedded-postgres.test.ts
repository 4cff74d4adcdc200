import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { isProcessRunning, startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../src/embedded-postgres.ts';

// A coordinator killed with SIGKILL leaves its embedded PostgreSQL running,
// and that server keeps the data folder locked. The next start stops it.
describe('embedded PostgreSQL after its owner was killed', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'hwopt-embedded-orphan-'));
  let handle: EmbeddedPostgresHandle | undefined;

  afterAll(async () => {
    await handle?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('stops the left-over server and starts again', async () => {
    const script = `const { startEmbeddedPostgres } = await import(${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)});
const h = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)} });
console.log('ready ' + h.port);
setInterval(() => {}, 1000);`;
    const owner = execa(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { reject: false, buffer: false });
    const port = await new Promise<number>((resolve, reject) => {
      owner.stdout!.on('data', (chunk: Buffer) => {
        const match = /ready (\d+)/.exec(chunk.toString());
        if (match) resolve(Number(match[1]));
      });
      owner.on('exit', (code) => reject(new Error(`the owner process exited with code ${code} before the server was ready`)));
    });
    owner.kill('SIGKILL');
    await owner;
    const orphan = Number(readFileSync(join(dataDir, 'pgdata', 'postmaster.pid'), 'utf8').split('\n')[0]);
    expect(isProcessRunning(orphan)).toBe(true);

    handle = await startEmbeddedPostgres({ dataDir, port });
    expect(isProcessRunning(orphan)).toBe(false);
    const client = new pg.Client({ connectionString: handle.url });
    await client.connect();
    try {
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await client.end();
    }
  }, 120_000);
});
