import { describe, expect, it } from 'vitest';
import { backoffDelayMs, sleep } from '../src/index.ts';

describe('backoffDelayMs', () => {
  it('grows with the attempt and stays under the cap', () => {
    expect(backoffDelayMs(0, 100, 5000, () => 0.999)).toBe(99);
    expect(backoffDelayMs(3, 100, 5000, () => 0.999)).toBe(799);
    expect(backoffDelayMs(20, 100, 5000, () => 0.999)).toBe(4995);
  });
});

describe('sleep', () => {
  it('rejects when aborted', async () => {
    const controller = new AbortController();
    const pending = sleep(10_000, controller.signal);
    controller.abort(new Error('stop'));
    await expect(pending).rejects.toThrow('stop');
  });
});
