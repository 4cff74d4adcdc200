import { defineConfig } from 'vitest/config';

// Database tests may start an embedded PostgreSQL first (about a second).
export default defineConfig({ test: { testTimeout: 600_000, hookTimeout: 120_000 } });
