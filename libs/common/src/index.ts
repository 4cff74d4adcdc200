export * from './logger.ts';
export * from './errors.ts';
export * from './abort.ts';
export * from './tls-files.ts';
export * from './warnings.ts';
export * from './numbers.ts';
