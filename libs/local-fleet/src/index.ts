export * from './processes.ts';
export * from './ops.ts';
export * from './health-client.ts';
export * from './local-fleet.ts';
