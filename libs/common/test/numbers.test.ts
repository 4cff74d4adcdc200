import { describe, expect, it } from 'vitest';
import { parseDecimal } from '../src/numbers.ts';

describe('parseDecimal', () => {
  it('reads plain decimals', () => {
    expect(parseDecimal('19500')).toBe(19_500);
    expect(parseDecimal('0.05')).toBe(0.05);
    expect(parseDecimal('.5')).toBe(0.5);
    expect(parseDecimal('-3')).toBe(-3);
  });

  it('rejects empty and blank values', () => {
    expect(parseDecimal('')).toBeNaN();
    expect(parseDecimal(' ')).toBeNaN();
    expect(parseDecimal(undefined)).toBeNaN();
  });

  it('rejects other notations', () => {
    for (const text of ['0x10', '1e3', 'Infinity', '1_000', '5 ', '1,5', '.']) expect(parseDecimal(text)).toBeNaN();
  });
});
