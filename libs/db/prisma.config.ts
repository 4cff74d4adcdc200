import { fileURLToPath } from 'node:url';
import { defineConfig } from 'prisma/config';

// The Prisma CLI downloads its native schema engine before any command,
// even `generate`, and fails where that host is unreachable. Naming any
// existing file here skips the download; generate, validate and format do
// not use the engine, and migrations go through src/migrate.ts instead.
process.env.PRISMA_SCHEMA_ENGINE_BINARY ??= fileURLToPath(import.meta.url);
process.env.CHECKPOINT_DISABLE ??= '1';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  // Read directly: Prisma's env() helper throws when the variable is unset,
  // which `generate` does not need.
  datasource: { url: process.env.DATABASE_URL ?? '' },
});
