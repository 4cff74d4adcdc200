import { describe, expect, it } from 'vitest';
import { GpuTrialQueue } from '../src/index.ts';

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

describe('GpuTrialQueue', () => {
  it('runs one task per GPU at a time', async () => {
    const queue = new GpuTrialQueue();
    const order: string[] = [];
    const gate = deferred();
    const first = queue.run('GPU-a', async () => {
      order.push('a1 start');
      await gate.promise;
      order.push('a1 end');
    });
    const second = queue.run('GPU-a', async () => {
      order.push('a2 start');
    });
    await new Promise((resolve) => setTimeout(resolve, 20));

    expect(order).toEqual(['a1 start']);
    expect(queue.size('GPU-a')).toBe(2);
    gate.resolve();
    await Promise.all([first, second]);
    expect(order).toEqual(['a1 start', 'a1 end', 'a2 start']);
    expect(queue.isBusy('GPU-a')).toBe(false);
  });

  it('runs different GPUs in parallel', async () => {
    const queue = new GpuTrialQueue();
    const gate = deferred();
    let running = 0;
    let maxRunning = 0;
    const work = async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await gate.promise;
      running--;
    };
    const tasks = [queue.run('GPU-a', work), queue.run('GPU-b', work), queue.run('GPU-c', work)];
    await new Promise((resolve) => setTimeout(resolve, 20));
    gate.resolve();
    await Promise.all(tasks);
    expect(maxRunning).toBe(3);
  });

  it('continues after a failed task', async () => {
    const queue = new GpuTrialQueue();
    const failed = queue.run('GPU-a', async () => {
      throw new Error('runner broke');
    });
    const next = queue.run('GPU-a', async () => 42);
    await expect(failed).rejects.toThrow('runner broke');
    await expect(next).resolves.toBe(42);
  });

  it('skips a task aborted while queued', async () => {
    const queue = new GpuTrialQueue();
    const gate = deferred();
    const controller = new AbortController();
    let ran = false;
    const first = queue.run('GPU-a', () => gate.promise);
    const second = queue.run('GPU-a', async () => {
      ran = true;
    }, { signal: controller.signal });
    controller.abort(new Error('shutdown'));
    gate.resolve();
    await first;
    await expect(second).rejects.toThrow('shutdown');
    expect(ran).toBe(false);
    await queue.idle();
    expect(queue.size('GPU-a')).toBe(0);
  });
});
