export * from './failure-verdict.ts';
export * from './memory-size.ts';
export * from './classify-failure.ts';
