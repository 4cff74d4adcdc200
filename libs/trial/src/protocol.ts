/**
 * The `hwopt-trial/1` contract between the agent and a trial runner process,
 * documented for runner authors in PROTOCOL.md. The agent writes one request
 * line (JSON) to the runner's stdin and closes it; the runner writes JSON
 * lines to stdout.
 */
import { InvalidInputError } from '@hwopt/common';
import { isFailureKind, type FailureKind } from './failure-verdict.ts';

export const TRIAL_PROTOCOL = 'hwopt-trial/1';

export interface Architecture {
  layers: number;
  hiddenChannels: number;
}

export interface TrialSpec {
  /** Unique id of the trial; the runner echoes it in progress and result lines. */
  trialId: string;
  /** Workload name, such as `visnet-pdb`. */
  workload: string;
  architecture: Architecture;
  batchSize: number;
  /** Timed training steps to run. */
  iterations: number;
  /** The GPU as nvidia-smi lists it: index and UUID (`GPU-...` or `MIG-...`). */
  device: { index: number; uuid: string };
}

export interface TrialRequest {
  protocol: typeof TRIAL_PROTOCOL;
  request: 'trial';
  spec: TrialSpec;
}

export interface DescribeRequest {
  protocol: typeof TRIAL_PROTOCOL;
  request: 'describe';
  workload: string;
  architectures: Architecture[];
}

/** Step-time statistics of the timed iterations, in seconds. */
export interface StepStats {
  mean: number;
  p50: number;
  min: number;
  max: number;
  count: number;
}

export interface ProgressMessage {
  type: 'progress';
  trialId: string;
  /** 1-based number of the iteration just finished. */
  iteration: number;
  iterations: number;
  /** Duration of that iteration in seconds, when the runner timed it. */
  stepSeconds?: number;
}

export interface ResultMessage {
  type: 'result';
  trialId: string;
  outcome: 'ok' | 'oom' | 'failed';
  parameterCount?: number;
  frameworkPeakAllocatedBytes?: number;
  frameworkPeakReservedBytes?: number;
  stepSeconds?: StepStats;
  /** GPU time the trial cost, for runners that simulate time; else the executor uses wall time. */
  gpuSeconds?: number;
  /** Device peak the runner computes itself (CUDA context included), for simulated runners. */
  devicePeakMiB?: number;
  /** Failure message, such as the framework's out-of-memory text. */
  message?: string;
  /** The runner's own classification of a failure. */
  failureKind?: FailureKind;
}

export interface DescribeMessage {
  type: 'describe';
  /** Trainable parameters of each requested architecture, in request order. */
  parameterCounts: number[];
}

/** A fatal error of the runner: bad request, missing dependency, unknown architecture. */
export interface ErrorMessage {
  type: 'error';
  message: string;
  failureKind?: FailureKind;
}

export type RunnerMessage = ProgressMessage | ResultMessage | DescribeMessage | ErrorMessage;

/** Maximum length of a runner's message text that the agent keeps, in characters. */
export const MAX_MESSAGE_CHARS = 8192;
/** Maximum architectures in one describe request. */
export const MAX_DESCRIBE_ARCHITECTURES = 10_000;

export class InvalidTrialSpecError extends InvalidInputError {
  constructor(detail: string) {
    super(`Invalid trial spec: ${detail}.`);
  }
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}

function isNonNegativeNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

/** Ids and names travel in argv and file names, so they are limited to a safe character set. */
const SAFE_NAME_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

export function validateArchitecture(architecture: Architecture, field = 'architecture'): void {
  if (!isPositiveInteger(architecture?.layers)) {
    throw new InvalidTrialSpecError(`${field}.layers must be a positive integer, got ${JSON.stringify(architecture?.layers)}`);
  }
  if (!isPositiveInteger(architecture.hiddenChannels)) {
    throw new InvalidTrialSpecError(`${field}.hiddenChannels must be a positive integer, got ${JSON.stringify(architecture.hiddenChannels)}`);
  }
}

/** Checks a spec before any process starts; throws InvalidTrialSpecError naming the field. */
export function validateTrialSpec(spec: TrialSpec): void {
  if (typeof spec?.trialId !== 'string' || !SAFE_NAME_PATTERN.test(spec.trialId)) {
    throw new InvalidTrialSpecError(`trialId must be 1-128 characters of letters, digits, '.', '_', ':' or '-', got ${JSON.stringify(spec?.trialId)}`);
  }
  if (typeof spec.workload !== 'string' || !SAFE_NAME_PATTERN.test(spec.workload)) {
    throw new InvalidTrialSpecError(`workload must be 1-128 characters of letters, digits, '.', '_', ':' or '-', got ${JSON.stringify(spec.workload)}`);
  }
  validateArchitecture(spec.architecture);
  if (!isPositiveInteger(spec.batchSize)) throw new InvalidTrialSpecError(`batchSize must be a positive integer, got ${JSON.stringify(spec.batchSize)}`);
  if (!isPositiveInteger(spec.iterations)) throw new InvalidTrialSpecError(`iterations must be a positive integer, got ${JSON.stringify(spec.iterations)}`);
  if (!Number.isSafeInteger(spec.device?.index) || spec.device.index < 0) {
    throw new InvalidTrialSpecError(`device.index must be a non-negative integer, got ${JSON.stringify(spec.device?.index)}`);
  }
  if (typeof spec.device.uuid !== 'string' || !SAFE_NAME_PATTERN.test(spec.device.uuid)) {
    throw new InvalidTrialSpecError(`device.uuid must be a GPU or MIG UUID as nvidia-smi prints it, got ${JSON.stringify(spec.device.uuid)}`);
  }
}

export function encodeTrialRequest(spec: TrialSpec): string {
  const request: TrialRequest = { protocol: TRIAL_PROTOCOL, request: 'trial', spec };
  return `${JSON.stringify(request)}\n`;
}

export function encodeDescribeRequest(workload: string, architectures: Architecture[]): string {
  const request: DescribeRequest = { protocol: TRIAL_PROTOCOL, request: 'describe', workload, architectures };
  return `${JSON.stringify(request)}\n`;
}

export type ParsedRunnerLine =
  | { kind: 'message'; message: RunnerMessage }
  | { kind: 'log' }
  | { kind: 'invalid'; reason: string };

function truncate(text: string, maxChars: number): string {
  return text.length > maxChars ? `${text.slice(0, maxChars - 3)}...` : text;
}

function parseStepStats(value: unknown): StepStats | null {
  if (typeof value !== 'object' || value === null) return null;
  const stats = value as Record<string, unknown>;
  const fields = ['mean', 'p50', 'min', 'max'] as const;
  if (!fields.every((field) => isNonNegativeNumber(stats[field]))) return null;
  if (!isPositiveInteger(stats.count)) return null;
  return { mean: stats.mean as number, p50: stats.p50 as number, min: stats.min as number, max: stats.max as number, count: stats.count };
}

function optionalNumber(raw: Record<string, unknown>, field: string, integer: boolean): number | undefined | 'invalid' {
  const value = raw[field];
  if (value === undefined || value === null) return undefined;
  if (!isNonNegativeNumber(value)) return 'invalid';
  if (integer && !Number.isSafeInteger(value)) return 'invalid';
  return value;
}

function parseResult(raw: Record<string, unknown>): RunnerMessage | string {
  if (typeof raw.trialId !== 'string') return 'result line lacks a string "trialId"';
  if (raw.outcome !== 'ok' && raw.outcome !== 'oom' && raw.outcome !== 'failed') {
    return `result outcome must be "ok", "oom" or "failed", got ${truncate(JSON.stringify(raw.outcome) ?? 'undefined', 80)}`;
  }
  const result: ResultMessage = { type: 'result', trialId: raw.trialId, outcome: raw.outcome };
  const numberFields: [keyof ResultMessage, boolean][] = [
    ['parameterCount', true],
    ['frameworkPeakAllocatedBytes', true],
    ['frameworkPeakReservedBytes', true],
    ['gpuSeconds', false],
    ['devicePeakMiB', false],
  ];
  for (const [field, integer] of numberFields) {
    const value = optionalNumber(raw, field, integer);
    if (value === 'invalid') return `result field "${field}" must be a non-negative ${integer ? 'integer' : 'number'} or null`;
    if (value !== undefined) (result as unknown as Record<string, number>)[field] = value;
  }
  if (raw.stepSeconds !== undefined && raw.stepSeconds !== null) {
    const stats = parseStepStats(raw.stepSeconds);
    if (!stats) return 'result field "stepSeconds" must be {mean, p50, min, max, count} with non-negative numbers';
    result.stepSeconds = stats;
  }
  if (typeof raw.message === 'string') result.message = truncate(raw.message, MAX_MESSAGE_CHARS);
  if (isFailureKind(raw.failureKind)) result.failureKind = raw.failureKind;
  return result;
}

function parseMessage(raw: Record<string, unknown>): RunnerMessage | string {
  switch (raw.type) {
    case 'progress': {
      if (typeof raw.trialId !== 'string') return 'progress line lacks a string "trialId"';
      if (!isPositiveInteger(raw.iteration) || !isPositiveInteger(raw.iterations)) {
        return 'progress line needs positive integers "iteration" and "iterations"';
      }
      const progress: ProgressMessage = { type: 'progress', trialId: raw.trialId, iteration: raw.iteration, iterations: raw.iterations };
      if (raw.stepSeconds !== undefined && raw.stepSeconds !== null) {
        if (!isNonNegativeNumber(raw.stepSeconds)) return 'progress field "stepSeconds" must be a non-negative number';
        progress.stepSeconds = raw.stepSeconds;
      }
      return progress;
    }
    case 'result':
      return parseResult(raw);
    case 'describe': {
      const counts = raw.parameterCounts;
      if (!Array.isArray(counts) || counts.length > MAX_DESCRIBE_ARCHITECTURES || !counts.every((count) => Number.isSafeInteger(count) && count >= 0)) {
        return 'describe line needs "parameterCounts", an array of non-negative integers';
      }
      return { type: 'describe', parameterCounts: counts as number[] };
    }
    case 'error': {
      if (typeof raw.message !== 'string') return 'error line lacks a string "message"';
      const error: ErrorMessage = { type: 'error', message: truncate(raw.message, MAX_MESSAGE_CHARS) };
      if (isFailureKind(raw.failureKind)) error.failureKind = raw.failureKind;
      return error;
    }
    default:
      return `unknown message type ${truncate(JSON.stringify(raw.type) ?? 'undefined', 80)}`;
  }
}

/**
 * Parses one stdout line of a runner. Lines that do not start with `{` are
 * log output and are ignored; a line that starts with `{` must be a valid
 * message of this protocol version.
 */
export function parseRunnerLine(line: string): ParsedRunnerLine {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return { kind: 'log' };
  let data: unknown;
  try {
    data = JSON.parse(trimmed);
  } catch (error) {
    return { kind: 'invalid', reason: `line is not valid JSON (${(error as Error).message})` };
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return { kind: 'invalid', reason: 'line is not a JSON object' };
  const raw = data as Record<string, unknown>;
  if (raw.protocol !== TRIAL_PROTOCOL) {
    return { kind: 'invalid', reason: `protocol is ${truncate(JSON.stringify(raw.protocol) ?? 'undefined', 80)}, expected "${TRIAL_PROTOCOL}"` };
  }
  const parsed = parseMessage(raw);
  return typeof parsed === 'string' ? { kind: 'invalid', reason: parsed } : { kind: 'message', message: parsed };
}

/** Computes step-time statistics from per-iteration durations; null for no samples. */
export function computeStepStats(samples: number[]): StepStats | null {
  if (samples.length === 0) return null;
  const sorted = [...samples].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const p50 = sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  const mean = sorted.reduce((sum, value) => sum + value, 0) / sorted.length;
  return { mean, p50, min: sorted[0], max: sorted[sorted.length - 1], count: sorted.length };
}
