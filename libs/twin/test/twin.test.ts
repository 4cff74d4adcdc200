import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { BUNDLED_TWINS_DIR, bundledTwinPath, evaluateTwinTrial, findTwinArchitecture, loadTwin, parseTwin } from '../src/index.ts';

describe('twin loader', () => {
  it('loads every bundled twin', () => {
    const files = readdirSync(BUNDLED_TWINS_DIR).filter((f) => f.endsWith('.json'));
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const file of files) {
      const twin = loadTwin(`${BUNDLED_TWINS_DIR}/${file}`);
      expect(twin.architectures.length).toBeGreaterThan(0);
    }
  });

  it('rejects a wrong format naming the field', () => {
    expect(() => parseTwin({ format: 'x' }, 'bad.json')).toThrow(/bad.json.*format/);
  });

  it('rejects a negative law coefficient', () => {
    const twin = JSON.parse(JSON.stringify(loadTwin(bundledTwinPath('t4'))));
    twin.architectures[0].perSampleMiB = -1;
    expect(() => parseTwin(twin, 't4 copy')).toThrow(/architectures\[0\]\.perSampleMiB/);
  });

  it('rejects a step that takes no time', () => {
    const twin = JSON.parse(JSON.stringify(loadTwin(bundledTwinPath('t4'))));
    twin.architectures[2].stepSecondsFixed = 0;
    twin.architectures[2].stepSecondsPerSample = 0;
    expect(() => parseTwin(twin, 't4 copy')).toThrow(/t4 copy.*architectures\[2\].*stepSecondsFixed and stepSecondsPerSample/);
  });
});

describe('twin laws', () => {
  const twin = loadTwin(bundledTwinPath('t4'));
  const arch = findTwinArchitecture(twin, 8, 64)!;

  it('rounds memory up to the granularity and adds the reserve', () => {
    const outcome = evaluateTwinTrial(twin, arch, 3, 5);
    // 203.715 + 158 * 3 = 677.715, rounded up to 2 MiB = 678, plus 310 reserved.
    expect(outcome.peakMiB).toBe(988);
    expect(outcome.outOfMemory).toBe(false);
    expect(outcome.gpuSeconds).toBeCloseTo(8 + 5 * (0.046652 + 0.025393 * 3), 9);
  });

  it('charges one step for an out-of-memory trial', () => {
    const outcome = evaluateTwinTrial(twin, arch, 1000, 20);
    expect(outcome.outOfMemory).toBe(true);
    expect(outcome.gpuSeconds).toBeCloseTo(8 + 0.046652 + 0.025393 * 1000, 9);
  });
});
