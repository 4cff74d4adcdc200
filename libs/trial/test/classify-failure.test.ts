import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { classifyFailure, extractOomSizes, movesBatchSearch } from '../src/index.ts';

const FIXTURES_DIR = fileURLToPath(new URL('./fixtures/trial-failures/', import.meta.url));

interface FixtureCase {
  file: string;
  kind: string;
  requested_bytes: number | null;
  total_bytes: number | null;
  free_bytes: number | null;
  raw_sizes?: { requested: string | null; total: string | null; free: string | null };
}

const cases = JSON.parse(readFileSync(`${FIXTURES_DIR}index.json`, 'utf8')) as FixtureCase[];

/**
 * The index converts rounded units (8.13 GiB) to bytes; a conversion of the
 * same printed text may differ by rounding, so allow half a unit of the last
 * printed digit.
 */
function tolerance(raw: string | null | undefined): number {
  const match = raw ? /^(\d+)(?:\.(\d+))?\s*([KMGT]i?B|bytes?)$/i.exec(raw.trim()) : null;
  if (!match) return 0;
  const unit = { kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 }[match[3].toLowerCase()] ?? 1;
  const decimals = match[2]?.length ?? 0;
  return unit === 1 ? 0 : (unit * 10 ** -decimals) / 2;
}

describe('classifyFailure on captured stderr', () => {
  it('has fixtures to run', () => {
    expect(cases.length).toBeGreaterThanOrEqual(20);
  });

  it.each(cases.map((c) => [c.file, c] as const))('%s', (_file, fixture) => {
    const stderr = readFileSync(`${FIXTURES_DIR}${fixture.file}`, 'utf8');
    const verdict = classifyFailure({ stderr, exitCode: 1 });

    expect(verdict.kind).toBe(fixture.kind);
    expect(verdict.summary.length).toBeGreaterThan(20);
    expect(verdict.evidence).toBeTruthy();

    const expected = [
      ['requestedBytes', fixture.requested_bytes, fixture.raw_sizes?.requested],
      ['totalBytes', fixture.total_bytes, fixture.raw_sizes?.total],
      ['freeBytes', fixture.free_bytes, fixture.raw_sizes?.free],
    ] as const;
    for (const [field, bytes, raw] of expected) {
      if (bytes === null) {
        expect(verdict.sizes[field], field).toBeUndefined();
        continue;
      }
      const actual = verdict.sizes[field];
      expect(actual, field).toBeDefined();
      expect(Math.abs(actual! - bytes), field).toBeLessThanOrEqual(tolerance(raw));
      if (raw) expect(verdict.sizes.raw?.join('\n')).toContain(raw);
    }
    expect(movesBatchSearch(verdict)).toBe(fixture.kind === 'oom');
  });
});

describe('classifyFailure rules', () => {
  it('reports the OOM root cause inside NCCL', () => {
    const stderr = readFileSync(`${FIXTURES_DIR}nccl-warn-cuda-failure-out-of-memory.txt`, 'utf8');
    expect(classifyFailure({ stderr }).rootCause).toBe('oom');
  });

  it('marks sizes from rounded units as approximate', () => {
    const sizes = extractOomSizes('CUDA out of memory. Tried to allocate 2.75 GiB. GPU 0 has a total capacity of 15.73 GiB of which 2.36 GiB is free.');
    expect(sizes.approximate).toBe(true);
    expect(sizes.raw).toEqual(['requested: 2.75 GiB', 'total: 15.73 GiB', 'free: 2.36 GiB']);
  });

  it('keeps exact byte counts exact', () => {
    const sizes = extractOomSizes('RESOURCE_EXHAUSTED: Out of memory while trying to allocate 4770354232 bytes.');
    expect(sizes.requestedBytes).toBe(4770354232);
    expect(sizes.approximate).toBeUndefined();
  });

  it('tells host OOM from GPU OOM', () => {
    expect(classifyFailure({ stderr: 'RuntimeError: [enforce fail at alloc_cpu.cpp:75] . DefaultCPUAllocator: can\'t allocate memory: you tried to allocate 1073741824 bytes.' }).kind).toBe('host_oom');
    expect(classifyFailure({ stderr: 'MemoryError' }).kind).toBe('host_oom');
    expect(classifyFailure({ stderr: 'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB.' }).kind).toBe('oom');
    expect(classifyFailure({ stderr: 'Resource exhausted: OOM when allocating tensor with shape[1024,1024] and type float on /job:localhost/replica:0/task:0/device:CPU:0 by allocator cpu' }).kind).toBe('host_oom');
  });

  it('reads old PyTorch CUDA error wording as OOM', () => {
    expect(classifyFailure({ stderr: 'RuntimeError: CUDA error: out of memory' }).kind).toBe('oom');
    expect(classifyFailure({ stderr: 'RuntimeError: cuDNN error: CUDNN_STATUS_ALLOC_FAILED' }).kind).toBe('oom');
  });

  it('prefers a timeout over other stderr', () => {
    const verdict = classifyFailure({ stderr: 'step 3\nstep 4', timedOut: true, signal: 'SIGKILL' });
    expect(verdict.kind).toBe('timeout');
    expect(verdict.evidence).toBe('step 4');
  });

  it('reports an outside SIGKILL as killed', () => {
    expect(classifyFailure({ stderr: '', signal: 'SIGKILL' }).kind).toBe('killed');
    expect(classifyFailure({ stderr: 'Killed', exitCode: 137 }).summary).toContain('dmesg');
  });

  it('falls back to runner_error with evidence', () => {
    const verdict = classifyFailure({ stderr: 'Traceback (most recent call last):\nKeyError: layers\n', exitCode: 1 });
    expect(verdict.kind).toBe('runner_error');
    expect(verdict.evidence).toBe('KeyError: layers');
    expect(verdict.summary).toContain('code 1');
  });

  it('handles empty and enormous input', () => {
    expect(classifyFailure({ stderr: '' }).kind).toBe('runner_error');
    const verdict = classifyFailure({ stderr: 'x'.repeat(200_000) });
    expect(verdict.evidence!.length).toBeLessThanOrEqual(500);
  });
});
