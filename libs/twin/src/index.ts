export * from './twin.ts';
export * from './paths.ts';
