import { describe, expect, it } from 'vitest';
import { InvalidOptimizeOptionError, validateOptimizeOptions } from '../src/index.ts';

const base = { memoryTotalMiB: 15360, datasetSize: 1000 };

describe('validateOptimizeOptions', () => {
  it('fills documented defaults', () => {
    const o = validateOptimizeOptions(base);
    expect(o.headroom).toBe(0.05);
    expect(o.maxBatchSize).toBe(8192);
    expect(o.windows).toEqual({ prototyping: [10, 40], validation: [70, 110] });
    expect(o.stages).toEqual(['production', 'validation', 'prototyping', 'smoke_test']);
    expect(o.strategy).toBe('calibrated');
  });

  it.each([
    ['memoryTotalMiB', { ...base, memoryTotalMiB: 0 }],
    ['datasetSize', { ...base, datasetSize: -1 }],
    ['datasetSize', { ...base, datasetSize: 1.5 }],
    ['headroom', { ...base, headroom: 1 }],
    ['headroom', { ...base, headroom: -0.1 }],
    ['maxBatchSize', { ...base, maxBatchSize: 0 }],
    ['prototypingWindowMinutes', { ...base, prototypingWindowMinutes: [40, 10] as [number, number] }],
    ['stages', { ...base, stages: ['bogus' as never] }],
    ['strategy', { ...base, strategy: 'fast' as never }],
  ])('rejects a bad %s naming the field', (field, options) => {
    let error: unknown;
    try {
      validateOptimizeOptions(options);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidOptimizeOptionError);
    expect((error as InvalidOptimizeOptionError).field).toBe(field);
    expect((error as Error).message).toContain(field);
  });
});
