#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx, so no build step sits
// between a checkout and a working binary.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
