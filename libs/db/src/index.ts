export * from './client.ts';
export * from './migrate.ts';
export * from './embedded-postgres.ts';
export * from './repositories/types.ts';
export * from './repositories/node-repository.ts';
export * from './repositories/benchmark-repository.ts';
export * from './repositories/config-repository.ts';
export * from './test-database.ts';
