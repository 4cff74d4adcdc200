/**
 * Classifies a failed trial from the tail of its stderr, its exit status and
 * whether the executor timed it out. Rules run in a fixed priority order
 * (hardware faults first, then driver problems, NCCL, memory, other CUDA
 * errors), so that a message that mentions several causes gets the one an
 * operator must handle first.
 */
import type { FailureKind, FailureSizes, FailureVerdict } from './failure-verdict.ts';
import { MEMORY_SIZE_PATTERN, formatMemorySize, parseMemorySize } from './memory-size.ts';

export interface ClassifyFailureInput {
  /** Tail of the process's stderr (the executor keeps the last 64 KiB). */
  stderr: string;
  exitCode?: number | null;
  /** Name of the signal that ended the process, such as `SIGKILL`. */
  signal?: string | null;
  /** True when the executor stopped the process because its time limit passed. */
  timedOut?: boolean;
}

/** Maximum length of the evidence line kept in a verdict, in characters. */
const MAX_EVIDENCE_CHARS = 500;

interface Rule {
  kind: FailureKind;
  pattern: RegExp;
  summary: (match: RegExpExecArray, text: string) => string;
}

const GPU_FAULT_RULES: Rule[] = [
  {
    kind: 'gpu_fault',
    pattern: /fallen off the bus/i,
    summary: () =>
      'GPU fault: the GPU has fallen off the bus (Xid 79) and no longer responds; drain the node and reboot or reseat the GPU before scheduling trials on it.',
  },
  {
    kind: 'gpu_fault',
    pattern: /\bXid\b\s*(?:\(PCI:([0-9a-fA-F:.]+)\))?:?\s*(\d+)/,
    summary: (m) =>
      `GPU fault: the NVIDIA driver reported Xid ${m[2]}${m[1] ? ` on PCI ${m[1]}` : ''}; check the kernel log (dmesg) and the NVIDIA Xid catalog, and drain the GPU if the error repeats.`,
  },
  {
    kind: 'gpu_fault',
    pattern: /GPU is lost|uncorrectable ECC error/i,
    summary: (m) => `GPU fault: "${m[0]}"; drain the GPU and check its health (nvidia-smi -q, dmesg) before scheduling more trials.`,
  },
];

const DRIVER_RULES: Rule[] = [
  {
    kind: 'driver_mismatch',
    pattern: /Driver\/library version mismatch/i,
    summary: () =>
      'NVIDIA driver mismatch: the loaded kernel module and the user-space driver libraries differ (usually after a driver upgrade); reboot the node or reload the nvidia kernel modules.',
  },
  {
    kind: 'driver_mismatch',
    pattern: /CUDA driver version is insufficient for CUDA runtime version|NVIDIA driver on your system is too old|cudaErrorInsufficientDriver|CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE/i,
    summary: () =>
      'NVIDIA driver too old: the installed driver does not support the CUDA runtime that the training framework was built with; upgrade the driver or install a framework build for an older CUDA.',
  },
  {
    kind: 'driver_mismatch',
    pattern: /Error 80[34]\b|unsupported display driver \/ cuda driver combination|forward compatibility was attempted on non supported HW|CUDA_ERROR_SYSTEM_DRIVER_MISMATCH|cudaErrorSystemDriverMismatch/i,
    summary: () =>
      'NVIDIA driver mismatch: libcuda does not match the loaded kernel module (CUDA error 803/804), so CUDA is unusable and a framework may silently fall back to the CPU; reinstall the driver packages or reboot the node.',
  },
  {
    kind: 'driver_missing',
    pattern: /Found no NVIDIA driver|couldn't communicate with the NVIDIA driver|NVIDIA driver is not loaded|NVML Shared Library Not Found|lib(?:cuda|nvidia-ml)\.so[.\d]*: cannot open shared object file/i,
    summary: () =>
      'NVIDIA driver missing: the trial process cannot reach the driver; check that the driver is installed and loaded (nvidia-smi) and, in a container, that the GPUs were passed through.',
  },
  {
    kind: 'driver_missing',
    pattern: /no CUDA-capable device is detected|cudaErrorNoDevice|CUDA_ERROR_NO_DEVICE/i,
    summary: () =>
      'No CUDA device visible to the trial process; check CUDA_VISIBLE_DEVICES, the container GPU passthrough and nvidia-smi.',
  },
];

const NCCL_RULE: Rule = {
  kind: 'nccl',
  pattern: /NCCL error|NCCL WARN|nccl(?:Unhandled\w*|System|Internal|InvalidUsage|Remote)Error|ProcessGroupNCCL|DistBackendError/i,
  summary: (m, text) => {
    if (/Watchdog caught collective operation timeout/i.test(text)) {
      return 'NCCL collective timed out (watchdog); one rank usually failed first, so look for the first failing rank before blaming NCCL.';
    }
    return `NCCL error: "${m[0]}"; rerun with NCCL_DEBUG=INFO to see the failing call.`;
  },
};

/** GPU allocation failures, in PyTorch's wordings from 0.4 to 2.4+, XLA, TensorFlow and the CUDA libraries. */
const GPU_OOM_PATTERN =
  /CUDA out of memory|HIP out of memory|OutOfMemoryError|CUDA error: out of memory|Cuda failure '?out of memory|cudaErrorMemoryAllocation|CUDA_ERROR_OUT_OF_MEMORY|CU(?:BLAS|DNN|SOLVER|SPARSE)_STATUS_ALLOC_FAILED|CUFFT_ALLOC_FAILED|RESOURCE_EXHAUSTED:\s*Out of memory|ResourceExhaustedError|Resource exhausted: OOM|OOM when allocating|ran out of memory trying to allocate/i;

/** TensorFlow names the device of a failed allocation; a CPU one is host memory. */
const TF_HOST_DEVICE_PATTERN = /OOM when allocating[^\n]*(?:device:CPU|allocator cpu)/i;

const HOST_OOM_PATTERN =
  /DefaultCPUAllocator: (?:not enough memory|can't allocate memory)|std::bad_alloc|\bMemoryError\b|Cannot allocate memory|Unable to allocate [\d.]+ \w+ for an array|Out of memory: Killed process|OOM when allocating[^\n]*(?:device:CPU|allocator cpu)/;

const CUDA_ERROR_PATTERN =
  /CUDA error|cuda runtime error|CUDA_ERROR_\w+|cudaError\w+|CUDNN_STATUS_\w+|CUBLAS_STATUS_\w+|device-side assert|illegal memory access|unspecified launch failure|misaligned address/i;

const RUNNER_ENVIRONMENT_PATTERN = /Torch not compiled with CUDA enabled|ModuleNotFoundError: No module named '[^']+'|ImportError: [^\n]+/;

/** Signals that mean something outside the trial stopped it. */
const KILL_SIGNALS = new Set(['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT']);

/**
 * Joins kernel messages that the driver splits over lines (`NVRM: ... has\n
 * NVRM: fallen off the bus`), so that one pattern matches the whole sentence.
 */
function normalize(stderr: string): string {
  return stderr.replace(/\r\n?/g, '\n').replace(/\n[ \t]*(?:\[[^\]\n]*\][ \t]*)?NVRM:[ \t]*/g, ' NVRM: ');
}

function lineAt(text: string, index: number): string {
  const start = text.lastIndexOf('\n', index) + 1;
  const end = text.indexOf('\n', index);
  const line = text.slice(start, end === -1 ? undefined : end).trim();
  return line.length > MAX_EVIDENCE_CHARS ? `${line.slice(0, MAX_EVIDENCE_CHARS - 3)}...` : line;
}

const SIZE = `(${MEMORY_SIZE_PATTERN})`;
const REQUESTED_PATTERNS = [new RegExp(String.raw`(?:Tried|trying) to allocate ${SIZE}`, 'i')];
const TOTAL_PATTERNS = [new RegExp(String.raw`${SIZE} total capacity`, 'i'), new RegExp(String.raw`total capacity of ${SIZE}`, 'i')];
const FREE_PATTERNS = [new RegExp(String.raw`of which ${SIZE} is free`, 'i'), new RegExp(String.raw`;\s*${SIZE} free\b`, 'i')];

/** Reads the requested, total and free sizes that an out-of-memory message states. */
export function extractOomSizes(text: string): FailureSizes {
  const sizes: FailureSizes = {};
  const raw: string[] = [];
  const fields: [keyof Pick<FailureSizes, 'requestedBytes' | 'totalBytes' | 'freeBytes'>, string, RegExp[]][] = [
    ['requestedBytes', 'requested', REQUESTED_PATTERNS],
    ['totalBytes', 'total', TOTAL_PATTERNS],
    ['freeBytes', 'free', FREE_PATTERNS],
  ];
  for (const [field, label, patterns] of fields) {
    for (const pattern of patterns) {
      const match = pattern.exec(text);
      const parsed = match ? parseMemorySize(match[1]) : null;
      if (!match || !parsed) continue;
      sizes[field] = parsed.bytes;
      raw.push(`${label}: ${match[1].trim()}`);
      if (parsed.approximate) sizes.approximate = true;
      break;
    }
  }
  if (raw.length > 0) sizes.raw = raw;
  return sizes;
}

function oomSummary(sizes: FailureSizes): string {
  const parts: string[] = [];
  if (sizes.totalBytes !== undefined) parts.push(`total ${formatMemorySize(sizes.totalBytes)}`);
  if (sizes.freeBytes !== undefined) parts.push(`free ${formatMemorySize(sizes.freeBytes)}`);
  const request = sizes.requestedBytes !== undefined ? `; it tried to allocate ${formatMemorySize(sizes.requestedBytes)}` : '';
  const device = parts.length > 0 ? ` (${parts.join(', ')})` : '';
  return `GPU out of memory${request}${device}: the batch does not fit at this architecture and batch size.`;
}

function firstMatch(rules: Rule[], text: string): { rule: Rule; match: RegExpExecArray } | null {
  for (const rule of rules) {
    const match = rule.pattern.exec(text);
    if (match) return { rule, match };
  }
  return null;
}

function verdictFromRule(rule: Rule, match: RegExpExecArray, text: string): FailureVerdict {
  return { kind: rule.kind, summary: rule.summary(match, text), sizes: {}, evidence: lineAt(text, match.index) };
}

function lastNonEmptyLine(text: string): string | undefined {
  const lines = text.split('\n').map((line) => line.trim()).filter((line) => line.length > 0);
  const line = lines.at(-1);
  return line === undefined ? undefined : lineAt(line, 0);
}

/** Signal name from a shell-style exit code (128 + n), for wrappers that report a killed child that way. */
function signalFromExitCode(exitCode: number | null | undefined): string | null {
  const names: Record<number, string> = { 129: 'SIGHUP', 130: 'SIGINT', 131: 'SIGQUIT', 134: 'SIGABRT', 137: 'SIGKILL', 139: 'SIGSEGV', 143: 'SIGTERM' };
  return exitCode == null ? null : (names[exitCode] ?? null);
}

/**
 * Classifies a failed trial. Never throws: input it cannot place is a
 * `runner_error` whose evidence is the last line of stderr.
 */
export function classifyFailure(input: ClassifyFailureInput): FailureVerdict {
  const text = normalize(input.stderr ?? '');

  const fault = firstMatch(GPU_FAULT_RULES, text);
  if (fault) return verdictFromRule(fault.rule, fault.match, text);

  if (input.timedOut) {
    const last = lastNonEmptyLine(text);
    return {
      kind: 'timeout',
      summary: 'Trial timed out: the runner did not finish within the trial time limit and was stopped; raise the limit or lower the iteration count if the workload is slow.',
      sizes: {},
      ...(last ? { evidence: last } : {}),
    };
  }

  const driver = firstMatch(DRIVER_RULES, text);
  if (driver) return verdictFromRule(driver.rule, driver.match, text);

  const nccl = NCCL_RULE.pattern.exec(text);
  if (nccl) {
    const verdict = verdictFromRule(NCCL_RULE, nccl, text);
    if (GPU_OOM_PATTERN.test(text)) {
      verdict.rootCause = 'oom';
      verdict.summary += ' The underlying cause is CUDA running out of memory inside NCCL, so its buffers need room beside the batch.';
    } else if (CUDA_ERROR_PATTERN.test(text) || /Cuda failure/i.test(text)) {
      verdict.rootCause = 'cuda_error';
      verdict.summary += ' The underlying cause is a failed CUDA call.';
    }
    return verdict;
  }

  const host = HOST_OOM_PATTERN.exec(text);
  const gpuOom = GPU_OOM_PATTERN.exec(text);
  if (gpuOom && !TF_HOST_DEVICE_PATTERN.test(lineAt(text, gpuOom.index))) {
    const sizes = extractOomSizes(text.slice(gpuOom.index));
    const allSizes = Object.keys(sizes).length > 0 ? sizes : extractOomSizes(text);
    return { kind: 'oom', summary: oomSummary(allSizes), sizes: allSizes, evidence: lineAt(text, gpuOom.index) };
  }
  if (host) {
    return {
      kind: 'host_oom',
      summary: 'Host out of memory: the trial process could not allocate system memory; free host memory, lower data-loader workers or run fewer trials per node.',
      sizes: {},
      evidence: lineAt(text, host.index),
    };
  }

  const cuda = CUDA_ERROR_PATTERN.exec(text);
  if (cuda) {
    return {
      kind: 'cuda_error',
      summary: `CUDA error: "${cuda[0]}"; the CUDA context of the trial is unusable. Rerun with CUDA_LAUNCH_BLOCKING=1 to locate the failing kernel; a repeat on this GPU may point at the hardware.`,
      sizes: {},
      evidence: lineAt(text, cuda.index),
    };
  }

  const environment = RUNNER_ENVIRONMENT_PATTERN.exec(text);
  if (environment) {
    return {
      kind: 'runner_error',
      summary: `Runner environment broken: "${lineAt(environment[0], 0)}"; install the runner's dependencies (a CUDA build of the framework) in the environment that starts it.`,
      sizes: {},
      evidence: lineAt(text, environment.index),
    };
  }

  const signal = input.signal ?? signalFromExitCode(input.exitCode);
  const last = lastNonEmptyLine(text);
  if (signal && KILL_SIGNALS.has(signal)) {
    const hint = signal === 'SIGKILL' ? " The kernel's out-of-memory killer sends SIGKILL: check dmesg for 'Out of memory: Killed process'." : '';
    return {
      kind: 'killed',
      summary: `Trial process killed by ${signal} from outside the agent.${hint}`,
      sizes: {},
      ...(last ? { evidence: last } : {}),
    };
  }

  let status = 'failed';
  if (signal) status = `crashed with ${signal}`;
  else if (input.exitCode != null) status = `exited with code ${input.exitCode}`;
  return {
    kind: 'runner_error',
    summary: `Runner ${status} and its stderr matches no known GPU, driver or memory failure; read the evidence line and fix the runner or the trial spec.`,
    sizes: {},
    ...(last ? { evidence: last } : {}),
  };
}
