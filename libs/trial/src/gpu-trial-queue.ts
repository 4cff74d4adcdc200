/**
 * Runs at most one trial per GPU at a time: work for one GPU UUID runs in
 * submission order, work for different GPUs runs in parallel.
 */
export class GpuTrialQueue {
  private readonly tails = new Map<string, Promise<void>>();
  private readonly pending = new Map<string, number>();

  /**
   * Runs `work` once every earlier task for `gpuUuid` has settled. A task whose
   * `signal` aborts while it waits is rejected with the abort reason and never runs.
   */
  run<T>(gpuUuid: string, work: () => Promise<T>, options: { signal?: AbortSignal } = {}): Promise<T> {
    const previous = this.tails.get(gpuUuid) ?? Promise.resolve();
    this.pending.set(gpuUuid, (this.pending.get(gpuUuid) ?? 0) + 1);

    const task = previous.then(() => {
      options.signal?.throwIfAborted();
      return work();
    });
    const tail = task.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(gpuUuid, tail);
    void tail.then(() => {
      const left = (this.pending.get(gpuUuid) ?? 1) - 1;
      if (left === 0) this.pending.delete(gpuUuid);
      else this.pending.set(gpuUuid, left);
      if (this.tails.get(gpuUuid) === tail) this.tails.delete(gpuUuid);
    });
    return task;
  }

  /** Tasks queued or running for `gpuUuid`. */
  size(gpuUuid: string): number {
    return this.pending.get(gpuUuid) ?? 0;
  }

  /** True when a task for `gpuUuid` is queued or running. */
  isBusy(gpuUuid: string): boolean {
    return this.size(gpuUuid) > 0;
  }

  /** Resolves once every task submitted so far has settled. */
  async idle(): Promise<void> {
    await Promise.all([...this.tails.values()]);
  }
}
