/**
 * Throwaway databases for tests: on the server named by DATABASE_URL when
 * it is set, else on an embedded PostgreSQL started for the test process.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from './embedded-postgres.ts';
import { applyMigrations } from './migrate.ts';

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

let embedded: Promise<EmbeddedPostgresHandle> | undefined;
let embeddedDir: string | undefined;

async function serverUrl(): Promise<string> {
  if (process.env.DATABASE_URL) return process.env.DATABASE_URL;
  embedded ??= (async () => {
    embeddedDir = mkdtempSync(join(tmpdir(), 'hwopt-test-pg-'));
    const handle = await startEmbeddedPostgres({ dataDir: embeddedDir, database: 'postgres' });
    process.once('exit', () => {
      if (embeddedDir) rmSync(embeddedDir, { recursive: true, force: true });
    });
    return handle;
  })();
  return (await embedded).url;
}

/** Creates a fresh database with every migration applied. */
export async function createTestDatabase(options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const base = new URL(await serverUrl());
  const name = `hwopt_test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: base.toString() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } finally {
    await admin.end();
  }
  const url = new URL(base);
  url.pathname = `/${name}`;
  if (options.migrate !== false) await applyMigrations(url.toString());
  return {
    url: url.toString(),
    async drop() {
      const cleanup = new pg.Client({ connectionString: base.toString() });
      await cleanup.connect();
      try {
        await cleanup.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
      } finally {
        await cleanup.end();
      }
    },
  };
}

/**
 * Stops the embedded server a test process started, if any, and removes its
 * data. A later createTestDatabase in the same process starts a new one.
 */
export async function stopTestServer(): Promise<void> {
  if (embedded === undefined) return;
  const handle = await embedded;
  embedded = undefined;
  await handle.stop();
  if (embeddedDir !== undefined) rmSync(embeddedDir, { recursive: true, force: true });
  embeddedDir = undefined;
}
