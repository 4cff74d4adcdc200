import type { NullableReason, NullReasonKind } from './types.ts';

/**
 * Placeholders nvidia-smi prints instead of a value. The XML writes them
 * bare (`N/A`), the CSV form in brackets (`[N/A]`); both are accepted.
 */
const PLACEHOLDER_REASONS: ReadonlyArray<[RegExp, NullReasonKind]> = [
  [/^\[?N\/A\]?$/i, 'n/a'],
  [/^\[?Not Supported\]?$/i, 'not_supported'],
  [/^\[?Insufficient Permissions\]?$/i, 'insufficient_permissions'],
  [/^\[?Requested functionality has been deprecated\]?$/i, 'deprecated'],
  [/^\[?GPU is lost\]?$/i, 'gpu_lost'],
  [/^\[?(Unknown Error|Unknown)\]?$/i, 'unknown_error'],
  [/^Not Found$/i, 'missing'],
];

/** A value read from nvidia-smi: the value, or null and the reason. */
export type FieldValue<T> = { value: T; reason: null } | { value: null; reason: NullableReason };

/** Collects the reasons of fields read as null, so a caller can build `unknown[]` in one pass. */
export class ReasonCollector {
  readonly reasons: NullableReason[] = [];

  take<T>(result: FieldValue<T>): T | null {
    if (result.reason) this.reasons.push(result.reason);
    return result.value;
  }
}

/** Classifies a placeholder such as `[N/A]`; returns null for an ordinary value. */
export function placeholderReason(raw: string): NullReasonKind | null {
  for (const [pattern, reason] of PLACEHOLDER_REASONS) {
    if (pattern.test(raw)) return reason;
  }
  return null;
}

function nullValue(field: string, reason: NullReasonKind, raw?: string): { value: null; reason: NullableReason } {
  return { value: null, reason: raw === undefined ? { field, reason } : { field, reason, raw } };
}

/** Reads a text field: absent or empty is `missing`, a placeholder gets its reason. */
export function readText(field: string, raw: unknown): FieldValue<string> {
  if (raw === undefined || raw === null) return nullValue(field, 'missing');
  if (typeof raw !== 'string') return nullValue(field, 'unparsable', JSON.stringify(raw).slice(0, 200));
  const text = raw.trim();
  if (text === '') return nullValue(field, 'missing', raw);
  const reason = placeholderReason(text);
  if (reason) return nullValue(field, reason, text);
  return { value: text, reason: null };
}

/**
 * Reads an amount of memory in MiB from `1234 MiB` (XML and CSV with
 * units) or `1234` (CSV with `nounits`). Any other unit or a fraction is
 * `unparsable`: nvidia-smi prints framebuffer memory in whole MiB.
 */
export function readMiB(field: string, raw: unknown): FieldValue<number> {
  const text = readText(field, raw);
  if (text.reason) return text;
  const match = /^(\d{1,12})(?:\s*MiB)?$/.exec(text.value);
  if (!match) return nullValue(field, 'unparsable', text.value);
  return { value: Number(match[1]), reason: null };
}

/** Reads a non-negative integer such as an index, a PID or an instance id. */
export function readInteger(field: string, raw: unknown): FieldValue<number> {
  const text = readText(field, raw);
  if (text.reason) return text;
  if (!/^\d{1,12}$/.test(text.value)) return nullValue(field, 'unparsable', text.value);
  return { value: Number(text.value), reason: null };
}

/** Reads a `major.minor` version such as a compute capability or a CUDA version. */
export function readVersion(field: string, raw: unknown): FieldValue<string> {
  const text = readText(field, raw);
  if (text.reason) return text;
  if (!/^\d{1,4}(\.\d{1,4}){0,3}$/.test(text.value)) return nullValue(field, 'unparsable', text.value);
  return text;
}
