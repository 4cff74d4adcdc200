/**
 * Trial results kept on the agent's disk until the coordinator
 * acknowledges them, so a result survives a lost connection or an agent
 * restart. One file per result, written to a temporary name, flushed and
 * renamed, so a crash leaves either the whole file or none.
 */
import { mkdirSync, openSync, writeSync, fsyncSync, closeSync, renameSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '@hwopt/common';

const TRIAL_ID_PATTERN = /^[0-9a-f-]{36}$/;

export class ResultOutbox<T extends { trialId: string }> {
  constructor(
    private readonly dir: string,
    private readonly logger: Logger,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /** Stores a result durably before it is sent. */
  put(result: T): void {
    if (!TRIAL_ID_PATTERN.test(result.trialId)) throw new Error(`trial id ${JSON.stringify(result.trialId)} is not a UUID; it cannot name an outbox file`);
    const final = join(this.dir, `${result.trialId}.json`);
    const temporary = `${final}.tmp`;
    const fd = openSync(temporary, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(result));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, final);
  }

  /** Forgets a result the coordinator acknowledged. */
  acknowledge(trialId: string): void {
    if (!TRIAL_ID_PATTERN.test(trialId)) return;
    rmSync(join(this.dir, `${trialId}.json`), { force: true });
  }

  /** Results not yet acknowledged, oldest file name first; unreadable files are skipped and logged. */
  pending(): T[] {
    const results: T[] = [];
    for (const name of readdirSync(this.dir).filter((n) => n.endsWith('.json')).sort()) {
      try {
        results.push(JSON.parse(readFileSync(join(this.dir, name), 'utf8')) as T);
      } catch (error) {
        this.logger.warn({ err: error, file: name }, 'outbox file is unreadable; leaving it in place');
      }
    }
    return results;
  }

  has(trialId: string): boolean {
    return this.pending().some((r) => r.trialId === trialId);
  }
}
