import { afterAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { applyMigrations, createTestDatabase, diffMigrationsToSchema, stopTestServer } from '../src/index.ts';

afterAll(stopTestServer);

describe('migrations', () => {
  it('produce exactly what schema.prisma describes', async () => {
    const db = await createTestDatabase({ migrate: false });
    try {
      const drift = await diffMigrationsToSchema(db.url);
      expect(drift.trim()).toBe('-- This is an empty migration.');
    } finally {
      await db.drop();
    }
  });

  it('apply once and record themselves like prisma migrate deploy', async () => {
    const db = await createTestDatabase({ migrate: false });
    try {
      const first = await applyMigrations(db.url);
      expect(first.length).toBeGreaterThan(0);
      expect(await applyMigrations(db.url)).toEqual([]);
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      const rows = await client.query('SELECT migration_name, finished_at, checksum FROM _prisma_migrations ORDER BY migration_name');
      await client.end();
      expect(rows.rows.map((r) => r.migration_name)).toEqual(first);
      expect(rows.rows.every((r) => r.finished_at !== null && /^[0-9a-f]{64}$/.test(r.checksum))).toBe(true);
    } finally {
      await db.drop();
    }
  });
});
