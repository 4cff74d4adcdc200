import { describe, expect, it } from 'vitest';
import { parameterCap, scaledStartBatchSize, scalingFactor, stageSpaces, VISNET_PDB } from '../src/index.ts';

const list = (archs: { layers: number; hiddenChannels: number }[]) => archs.map((a) => `${a.layers}x${a.hiddenChannels}`);

describe('stageSpaces', () => {
  it('scales the 16 GiB tier by 1.5 at 40 GiB', () => {
    const spaces = stageSpaces(VISNET_PDB, 40960);
    expect(list(spaces.prototyping)).toEqual(['7x144', '7x96', '7x72', '6x144', '6x96', '6x72', '4x144', '4x96', '4x72']);
    expect(spaces.production).toHaveLength(30);
    expect(list(spaces.production).slice(0, 6)).toEqual(['15x480', '15x384', '15x288', '15x192', '15x144', '13x480']);
  });

  it('keeps the 16 GiB tier unscaled just below 24 GiB', () => {
    expect(list(stageSpaces(VISNET_PDB, 24564).smoke_test)).toEqual(['2x32', '2x24', '2x16', '1x32', '1x24', '1x16']);
  });

  it('scales the 12 GiB tier by 1.1, rounding channels down to 8', () => {
    const spaces = stageSpaces(VISNET_PDB, 15360);
    expect(list(spaces.validation)).toEqual(['6x136', '6x104', '6x64', '5x136', '5x104', '5x64', '4x136', '4x104', '4x64', '3x136', '3x104', '3x64']);
    expect(scalingFactor(VISNET_PDB, 15360)).toBe(1.1);
  });

  it('uses the lowest tier below 6 GiB', () => {
    expect(list(stageSpaces(VISNET_PDB, 4096).production)).toEqual(['3x32', '3x24', '2x32', '2x24']);
  });
});

describe('parameterCap', () => {
  it.each([
    [0, 250_000],
    [999, 250_000],
    [1_000, 750_000],
    [9_999, 750_000],
    [10_000, 1_000_000],
    [24_999, 1_000_000],
    [25_000, 2_000_000],
  ])('caps %i samples at %i parameters', (samples, cap) => {
    expect(parameterCap(VISNET_PDB, samples)).toBe(cap);
  });
});

describe('scaledStartBatchSize', () => {
  it('multiplies the start size by the scaling factor', () => {
    expect(scaledStartBatchSize(VISNET_PDB, 'prototyping', 40960)).toBe(96);
    expect(scaledStartBatchSize(VISNET_PDB, 'production', 15360)).toBe(17);
  });
});
