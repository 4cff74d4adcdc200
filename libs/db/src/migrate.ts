/**
 * Applies the standard `prisma/migrations/<timestamp>_<name>/migration.sql`
 * folders the way `prisma migrate deploy` does (same `_prisma_migrations`
 * table, checksums and failure records), through the WebAssembly engine.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HwoptError } from '@hwopt/common';
import { withSchemaEngine, type SchemaEngine } from './schema-engine.ts';

export const PRISMA_DIR = fileURLToPath(new URL('../prisma/', import.meta.url));
export const SCHEMA_PATH = join(PRISMA_DIR, 'schema.prisma');
export const MIGRATIONS_DIR = join(PRISMA_DIR, 'migrations');

export class MigrationError extends HwoptError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MIGRATION_FAILED', message, options);
  }
}

const NO_FILTER = { externalTables: [], externalEnums: [] };

/** Reads the migrations folder into the list shape the engine takes. */
export function readMigrationsList(migrationsDir = MIGRATIONS_DIR) {
  const lockPath = join(migrationsDir, 'migration_lock.toml');
  const directories = existsSync(migrationsDir)
    ? readdirSync(migrationsDir, { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => entry.name)
        .sort()
    : [];
  return {
    baseDir: migrationsDir,
    lockfile: { path: 'migration_lock.toml', content: existsSync(lockPath) ? readFileSync(lockPath, 'utf8') : null },
    shadowDbInitScript: '',
    migrationDirectories: directories.map((dir) => {
      const file = join(migrationsDir, dir, 'migration.sql');
      return {
        path: dir,
        migrationFile: {
          path: 'migration.sql',
          content: existsSync(file) ? { tag: 'ok' as const, value: readFileSync(file, 'utf8') } : { tag: 'error' as const, value: `missing ${file}` },
        },
      };
    }),
  };
}

function withEngine<T>(databaseUrl: string, fn: (engine: SchemaEngine) => Promise<T>): Promise<T> {
  return withSchemaEngine(databaseUrl, SCHEMA_PATH, readFileSync(SCHEMA_PATH, 'utf8'), fn);
}

/**
 * Applies every migration not yet applied. Returns the names it applied.
 * Safe to run from several processes at once: the engine takes a
 * PostgreSQL advisory lock around the work.
 */
export async function applyMigrations(databaseUrl: string): Promise<string[]> {
  try {
    return await withEngine(databaseUrl, async (engine) => {
      const output = await engine.applyMigrations({ migrationsList: readMigrationsList() as never, filters: NO_FILTER });
      return output.appliedMigrationNames;
    });
  } catch (error) {
    throw new MigrationError(`Applying database migrations failed: ${(error as Error).message}. Check that DATABASE_URL points at a PostgreSQL database this user may change.`, { cause: error });
  }
}

/**
 * SQL that would take a database built by the migrations to what
 * schema.prisma describes; empty when they agree. Replays the migrations
 * in a temporary shadow database.
 */
export async function diffMigrationsToSchema(databaseUrl: string): Promise<string> {
  return withEngine(databaseUrl, async (engine) => {
    const schema = readFileSync(SCHEMA_PATH, 'utf8');
    const result = await engine.diff({
      from: { tag: 'migrations' as const, ...readMigrationsList() } as never,
      to: { tag: 'schemaDatamodel', files: [{ path: SCHEMA_PATH, content: schema }] },
      script: true,
      exitCode: null,
      filters: NO_FILTER,
    });
    return result.stdout ?? '';
  });
}

/** SQL that creates what schema.prisma describes from an empty database. */
export async function diffEmptyToSchema(databaseUrl: string): Promise<string> {
  return withEngine(databaseUrl, async (engine) => {
    const schema = readFileSync(SCHEMA_PATH, 'utf8');
    const result = await engine.diff({
      from: { tag: 'empty' },
      to: { tag: 'schemaDatamodel', files: [{ path: SCHEMA_PATH, content: schema }] },
      script: true,
      exitCode: null,
      filters: NO_FILTER,
    });
    return result.stdout ?? '';
  });
}
