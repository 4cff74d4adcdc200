import { defineConfig } from 'vitest/config';

// Database tests may start an embedded PostgreSQL first (about a second).
export default defineConfig({ test: { testTimeout: 60_000, hookTimeout: 60_000 } });
