/**
 * Writes prisma/migrations/<timestamp>_<name>/migration.sql with the SQL
 * that takes the current migrations to schema.prisma, as
 * `prisma migrate dev --create-only` would, without the native engine.
 *
 * Usage: DATABASE_URL=postgresql://... node --import tsx libs/db/scripts/new-migration.ts NAME
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MIGRATIONS_DIR, diffMigrationsToSchema } from '../src/migrate.ts';

const name = process.argv[2];
const databaseUrl = process.env.DATABASE_URL;
if (!name || !/^[a-z0-9_]{1,60}$/.test(name)) {
  console.error('Usage: new-migration.ts NAME (lower-case letters, digits and underscores)');
  process.exit(2);
}
if (!databaseUrl) {
  console.error('DATABASE_URL is not set; it must name a PostgreSQL server where a temporary shadow database can be created.');
  process.exit(2);
}
const sql = await diffMigrationsToSchema(databaseUrl);
if (sql.trim() === '' || sql.includes('This is an empty migration')) {
  console.error('schema.prisma and the migrations agree; no migration written.');
  process.exit(0);
}
const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
const dir = join(MIGRATIONS_DIR, `${stamp}_${name}`);
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'migration.sql'), sql);
console.error(`Wrote ${dir}/migration.sql`);
