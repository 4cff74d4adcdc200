export * from './smi-monitor.ts';
export * from './twin-node.ts';
export * from './result-outbox.ts';
export * from './trial-worker.ts';
