import { backoffDelayMs, silentLogger, type Logger } from '@hwopt/common';
import { DriverLibraryMismatchError, NvidiaSmiError, NvidiaSmiTimeoutError } from './errors.ts';
import { readInventory } from './read-inventory.ts';
import type { NvidiaSmiCommand } from './nvidia-smi-command.ts';
import type { GpuInventory } from './types.ts';

/** One poll's view of the node. */
export interface InventorySnapshot {
  /** The latest inventory read; after a failure, the last good one (null if none was ever read). */
  inventory: GpuInventory | null;
  /** True when `inventory` is not from this poll, because the poll failed or was skipped for backoff. */
  stale: boolean;
  /** True after a driver/library version mismatch, until a read succeeds again: the node needs a reboot. */
  rebootPending: boolean;
  /** The failure of the latest attempt; null after a success. */
  error: NvidiaSmiError | null;
  observedAt: Date;
  /** When the next poll will run nvidia-smi again; null when there is no backoff. */
  nextAttemptAt: Date | null;
}

export interface InventoryPollerOptions {
  /** Default `{ command: 'nvidia-smi' }`. */
  smi?: NvidiaSmiCommand;
  /** Time one `nvidia-smi -q -x` may take, in ms. Default 10,000. */
  timeoutMs?: number;
  /** First backoff after a failure, in ms. Default 5,000. */
  backoffBaseMs?: number;
  /** Maximum backoff, in ms. Default 300,000 (5 minutes). */
  backoffCapMs?: number;
  logger?: Logger;
  /** Clock, replaceable in tests. Default `Date.now`. */
  nowMs?: () => number;
  /** Random source for backoff jitter, in [0, 1). Default `Math.random`. */
  random?: () => number;
}

/**
 * Polls the inventory, keeping the last good one across failures.
 *
 * After a failure the next attempts are skipped until a backoff passes
 * (base plus capped exponential jitter), so a wedged GPU does not collect
 * a hanging nvidia-smi per poll. Polls never overlap: a call made while one
 * runs gets the same result.
 */
export class InventoryPoller {
  private readonly options: Required<Omit<InventoryPollerOptions, 'smi' | 'logger'>> & { smi?: NvidiaSmiCommand };
  private readonly logger: Logger;
  private lastGood: GpuInventory | null = null;
  private lastSnapshot: InventorySnapshot | null = null;
  private rebootPending = false;
  private consecutiveFailures = 0;
  private nextAttemptAtMs = 0;
  private inFlight: Promise<InventorySnapshot> | null = null;

  constructor(options: InventoryPollerOptions = {}) {
    this.options = {
      smi: options.smi,
      timeoutMs: options.timeoutMs ?? 10_000,
      backoffBaseMs: options.backoffBaseMs ?? 5_000,
      backoffCapMs: options.backoffCapMs ?? 300_000,
      nowMs: options.nowMs ?? Date.now,
      random: options.random ?? Math.random,
    };
    for (const name of ['timeoutMs', 'backoffBaseMs', 'backoffCapMs'] as const) {
      const value = this.options[name];
      if (!Number.isFinite(value) || value <= 0) throw new RangeError(`InventoryPoller option ${name} must be a positive number of ms, got ${value}`);
    }
    this.logger = options.logger ?? silentLogger();
  }

  /** Reads the inventory now, or returns the previous snapshot while a backoff is running. */
  poll(signal?: AbortSignal): Promise<InventorySnapshot> {
    this.inFlight ??= this.attempt(signal).finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  private async attempt(signal?: AbortSignal): Promise<InventorySnapshot> {
    const now = this.options.nowMs();
    if (this.lastSnapshot && now < this.nextAttemptAtMs) {
      return { ...this.lastSnapshot, stale: true, observedAt: new Date(now) };
    }

    try {
      const inventory = await readInventory({ smi: this.options.smi, timeoutMs: this.options.timeoutMs, signal });
      if (this.consecutiveFailures > 0 || this.rebootPending) {
        this.logger.info({ failures: this.consecutiveFailures, driverVersion: inventory.driverVersion }, 'nvidia-smi inventory read again after failures');
      }
      this.lastGood = inventory;
      this.rebootPending = false;
      this.consecutiveFailures = 0;
      this.nextAttemptAtMs = 0;
      return this.record({ inventory, stale: false, rebootPending: false, error: null, observedAt: new Date(this.options.nowMs()), nextAttemptAt: null });
    } catch (error) {
      if (!(error instanceof NvidiaSmiError)) throw error;
      return this.recordFailure(error);
    }
  }

  private recordFailure(error: NvidiaSmiError): InventorySnapshot {
    if (error instanceof DriverLibraryMismatchError) this.rebootPending = true;

    const delayMs = this.options.backoffBaseMs + backoffDelayMs(this.consecutiveFailures, this.options.backoffBaseMs, this.options.backoffCapMs, this.options.random);
    this.consecutiveFailures += 1;
    const now = this.options.nowMs();
    this.nextAttemptAtMs = now + delayMs;

    const log = { err: error, code: error.code, failures: this.consecutiveFailures, backoffMs: delayMs, rebootPending: this.rebootPending };
    if (error instanceof NvidiaSmiTimeoutError || this.consecutiveFailures === 1) {
      this.logger.warn(log, 'nvidia-smi inventory read failed, keeping the last good inventory');
    } else {
      this.logger.debug(log, 'nvidia-smi inventory read failed again');
    }

    return this.record({
      inventory: this.lastGood,
      stale: true,
      rebootPending: this.rebootPending,
      error,
      observedAt: new Date(now),
      nextAttemptAt: new Date(this.nextAttemptAtMs),
    });
  }

  private record(snapshot: InventorySnapshot): InventorySnapshot {
    this.lastSnapshot = snapshot;
    return snapshot;
  }
}
