export * from './twin.ts';
export * from './paths.ts';
export * from './twin-executor.ts';
