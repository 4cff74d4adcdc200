import { defineConfig } from 'vitest/config';

// The fault tests run a coordinator and twin agents as processes and wait
// for trials to be lost and rerun (about a minute each).
export default defineConfig({ test: { testTimeout: 240_000, hookTimeout: 120_000 } });
