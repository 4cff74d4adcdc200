/**
 * Trial results kept on the agent's disk until the coordinator
 * acknowledges them, so a result survives a lost connection or an agent
 * restart. One file per result, written to a temporary name, flushed,
 * renamed and its folder flushed, so a crash leaves either the whole file
 * or none (a torn `.tmp` file is ignored and removed on the next start).
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '@hwopt/common';

const TRIAL_ID_PATTERN = /^[0-9a-f-]{36}$/;
/** Larger files are not results this agent wrote; they are skipped. */
const MAX_FILE_BYTES = 1024 * 1024;

export class ResultOutbox<T extends { trialId: string }> {
  constructor(
    private readonly dir: string,
    private readonly logger: Logger,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // A .tmp file is a write a crash cut short: its result was never sent, and the
    // coordinator assigns the trial again when the agent reconnects.
    for (const name of readdirSync(dir).filter((n) => n.endsWith('.json.tmp'))) {
      logger.warn({ file: name }, 'removing a result file whose write did not complete');
      rmSync(join(dir, name), { force: true });
    }
  }

  /** Stores a result durably; call it before sending the result. */
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
    this.#syncDir();
  }

  /** Forgets a result the coordinator acknowledged. */
  acknowledge(trialId: string): void {
    if (!TRIAL_ID_PATTERN.test(trialId)) return;
    rmSync(join(this.dir, `${trialId}.json`), { force: true });
  }

  /**
   * Results not yet acknowledged, oldest file name first. Unreadable files
   * (bad JSON, too large, or naming another trial than their name) are
   * skipped, logged and left in place for a person to look at.
   */
  pending(): T[] {
    const results: T[] = [];
    for (const name of readdirSync(this.dir).filter((n) => n.endsWith('.json')).sort()) {
      const path = join(this.dir, name);
      try {
        if (statSync(path).size > MAX_FILE_BYTES) throw new Error(`larger than ${MAX_FILE_BYTES} bytes`);
        const parsed = JSON.parse(readFileSync(path, 'utf8')) as unknown;
        const trialId = (parsed as { trialId?: unknown } | null)?.trialId;
        if (typeof trialId !== 'string' || `${trialId}.json` !== name) throw new Error(`contains trial id ${JSON.stringify(trialId)}, not the one in its name`);
        results.push(parsed as T);
      } catch (error) {
        this.logger.warn({ err: error, file: name }, 'outbox file is unreadable; leaving it in place');
      }
    }
    return results;
  }

  has(trialId: string): boolean {
    return TRIAL_ID_PATTERN.test(trialId) && existsSync(join(this.dir, `${trialId}.json`));
  }

  /** Flushes the folder, so the rename itself survives a power loss. */
  #syncDir(): void {
    let fd: number | undefined;
    try {
      fd = openSync(this.dir, 'r');
      fsyncSync(fd);
    } catch (error) {
      // Some file systems refuse fsync on a folder; the file itself is flushed.
      this.logger.debug({ err: error }, 'could not flush the outbox folder');
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
}
