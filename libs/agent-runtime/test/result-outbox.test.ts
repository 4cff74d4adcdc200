import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { silentLogger } from '@hwopt/common';
import { ResultOutbox } from '../src/result-outbox.ts';

const CRASHER = fileURLToPath(new URL('./fixtures/write-and-crash.ts', import.meta.url));

interface Result {
  trialId: string;
  outcome: string;
  gpuSeconds: number;
}

describe('ResultOutbox', () => {
  const dirs: string[] = [];
  const freshDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'hwopt-outbox-'));
    dirs.push(dir);
    return join(dir, 'outbox');
  };
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('keeps a result across SIGKILL', async () => {
    const dir = freshDir();
    const trialId = randomUUID();
    const child = await execa(process.execPath, ['--import', 'tsx', CRASHER, dir, trialId], { reject: false });
    expect(child.signal).toBe('SIGKILL');
    expect(child.stdout).toBe('written');
    const outbox = new ResultOutbox<Result>(dir, silentLogger());
    expect(outbox.pending()).toEqual([{ trialId, outcome: 'ok', gpuSeconds: 12.5 }]);
    expect(outbox.has(trialId)).toBe(true);
  });

  it('ignores, then removes, a torn .tmp file', () => {
    const dir = freshDir();
    const first = new ResultOutbox<Result>(dir, silentLogger());
    const kept = randomUUID();
    first.put({ trialId: kept, outcome: 'oom', gpuSeconds: 1 });
    const torn = randomUUID();
    writeFileSync(join(dir, `${torn}.json.tmp`), '{"trialId":"' + torn + '","outc');
    expect(first.pending().map((r) => r.trialId)).toEqual([kept]);
    expect(first.has(torn)).toBe(false);

    const restarted = new ResultOutbox<Result>(dir, silentLogger());
    expect(readdirSync(dir)).toEqual([`${kept}.json`]);
    expect(restarted.pending().map((r) => r.trialId)).toEqual([kept]);
  });

  it('skips files not naming their trial', () => {
    const dir = freshDir();
    const outbox = new ResultOutbox<Result>(dir, silentLogger());
    const good = randomUUID();
    outbox.put({ trialId: good, outcome: 'ok', gpuSeconds: 3 });
    const garbled = randomUUID();
    writeFileSync(join(dir, `${garbled}.json`), '{not json');
    const mismatched = randomUUID();
    writeFileSync(join(dir, `${mismatched}.json`), JSON.stringify({ trialId: randomUUID(), outcome: 'ok', gpuSeconds: 1 }));
    expect(outbox.pending().map((r) => r.trialId)).toEqual([good]);
    // Left in place for a person to look at.
    expect(existsSync(join(dir, `${garbled}.json`))).toBe(true);
  });

  it('forgets acknowledged results', () => {
    const dir = freshDir();
    const outbox = new ResultOutbox<Result>(dir, silentLogger());
    const trialId = randomUUID();
    outbox.put({ trialId, outcome: 'ok', gpuSeconds: 2 });
    outbox.acknowledge(trialId);
    outbox.acknowledge(trialId);
    outbox.acknowledge('../../etc/passwd');
    expect(outbox.pending()).toEqual([]);
    expect(outbox.has(trialId)).toBe(false);
  });

  it('rejects a trial id that is no UUID', () => {
    const outbox = new ResultOutbox<Result>(freshDir(), silentLogger());
    expect(() => outbox.put({ trialId: '../escape', outcome: 'ok', gpuSeconds: 0 })).toThrow(/not a UUID/);
  });
});
