/**
 * Memory sizes as frameworks print them: PyTorch's `format_size` writes
 * `1024.00 KiB`, `8.13 GiB` or `0 bytes`; XLA writes `372.76MiB` or
 * `4770354232 bytes`. Binary prefixes are powers of 1024; decimal ones
 * (`MB`) are read as powers of 1000.
 */

const UNIT_BYTES: Record<string, number> = {
  b: 1,
  byte: 1,
  bytes: 1,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
};

/** Pattern source of one size, such as `8.13 GiB`, for use inside larger patterns. */
export const MEMORY_SIZE_PATTERN = String.raw`\d+(?:\.\d+)?\s*(?:[KMGT]i?B|bytes?|B)\b`;

export interface ParsedMemorySize {
  bytes: number;
  /** True when the text had decimals or a unit above bytes, so the count is rounded. */
  approximate: boolean;
}

/** Parses `8.13 GiB` into bytes (rounded to a whole byte); null for anything else. */
export function parseMemorySize(text: string): ParsedMemorySize | null {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*$/.exec(text);
  if (!match) return null;
  const unit = UNIT_BYTES[match[2].toLowerCase()];
  const value = Number(match[1]);
  if (unit === undefined || !Number.isFinite(value)) return null;
  const bytes = Math.round(value * unit);
  if (!Number.isSafeInteger(bytes)) return null;
  return { bytes, approximate: unit !== 1 };
}

/** Formats bytes the way PyTorch's allocator messages do (`8.13 GiB`, `0 bytes`). */
export function formatMemorySize(bytes: number): string {
  if (bytes < 2 ** 10) return `${Math.round(bytes)} bytes`;
  if (bytes < 2 ** 20) return `${(bytes / 2 ** 10).toFixed(2)} KiB`;
  if (bytes < 2 ** 30) return `${(bytes / 2 ** 20).toFixed(2)} MiB`;
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}
