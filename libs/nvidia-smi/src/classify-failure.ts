import {
  DriverLibraryMismatchError,
  DriverNotLoadedError,
  MalformedOutputError,
  NvidiaSmiError,
  NvidiaSmiNotFoundError,
  PermissionDeniedError,
  type NvidiaSmiRunDetails,
} from './errors.ts';

/** Result of a finished nvidia-smi run: the fields that classifying a failure needs. */
export interface NvidiaSmiRunOutcome {
  command: string;
  commandLine: string;
  /** Error code of a failed spawn, such as `ENOENT`. */
  spawnErrorCode?: string;
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  outputTooLarge: boolean;
  maxOutputBytes: number;
}

/**
 * Exit codes from the nvidia-smi manual page (RETURN VALUE): 4 no
 * permission, 9 driver not loaded, 12 NVML shared library not found.
 * 18 is NVML_ERROR_LIB_RM_VERSION_MISMATCH in nvml.h, the code nvidia-smi exits
 * with on "Driver/library version mismatch".
 */
const EXIT_NO_PERMISSION = 4;
const EXIT_DRIVER_NOT_LOADED = 9;
const EXIT_NVML_LIBRARY_NOT_FOUND = 12;
const EXIT_DRIVER_LIBRARY_MISMATCH = 18;
/** A shell's exit code for "command not found", seen when nvidia-smi is a wrapper script. */
const EXIT_COMMAND_NOT_FOUND = 127;

const MISMATCH_PATTERN = /Driver\/library version mismatch/i;
const DRIVER_UNREACHABLE_PATTERN =
  /couldn't communicate with the NVIDIA driver|NVIDIA driver is not loaded|Failed to initialize NVML: (Unknown Error|Driver Not Loaded|GPU access blocked)|NVML Shared Library Not Found|libnvidia-ml\.so[^\n]*(not found|cannot open)|No such file or directory[^\n]*\/dev\/nvidia/i;
const PERMISSION_PATTERN = /Insufficient Permissions|Permission denied|NVML_ERROR_NO_PERMISSION/i;
/** Messages that replace the whole output, so they are errors even when the exit code is 0. */
const FATAL_FIRST_LINE_PATTERN = /^(Failed to initialize NVML|NVIDIA-SMI has failed|NVML Shared Library Not Found)/i;

/** Raised when nvidia-smi finds no GPU; reported as an error, never as an empty inventory. */
export class NoGpuFoundError extends NvidiaSmiError {
  constructor(details: NvidiaSmiRunDetails = {}) {
    super(
      'NVIDIA_SMI_NO_GPU_FOUND',
      'nvidia-smi found no GPU ("No devices were found"). Check that the GPUs are visible to this host or container (NVIDIA_VISIBLE_DEVICES, device plugin) and not fallen off the bus (`dmesg` for Xid 79).',
      details,
    );
  }
}

/**
 * Returns the error a run stands for, or null when it succeeded. Spawn
 * errors and exit codes decide first, then the message text, because
 * wrappers and containers change exit codes but keep NVML's messages.
 */
export function classifyFailure(outcome: NvidiaSmiRunOutcome): NvidiaSmiError | null {
  const output = `${outcome.stderr}\n${outcome.stdout}`.trim();
  const details: NvidiaSmiRunDetails = {
    commandLine: outcome.commandLine,
    exitCode: outcome.exitCode,
    signal: outcome.signal,
    outputExcerpt: (outcome.stderr.trim() || outcome.stdout.trim()).slice(0, 2000),
  };

  if (outcome.spawnErrorCode === 'ENOENT') return new NvidiaSmiNotFoundError(outcome.command, details);
  if (outcome.spawnErrorCode === 'EACCES') return new PermissionDeniedError(details);
  if (outcome.spawnErrorCode) {
    return new NvidiaSmiError('NVIDIA_SMI_FAILED', `nvidia-smi could not be started (${outcome.spawnErrorCode}). Check the command "${outcome.command}".`, details);
  }
  if (outcome.outputTooLarge) {
    return new MalformedOutputError(`the output exceeded ${outcome.maxOutputBytes} bytes and was cut off`, details);
  }

  const firstLine = output.split('\n')[0]?.trim() ?? '';
  const failed = outcome.exitCode !== 0 || FATAL_FIRST_LINE_PATTERN.test(firstLine);
  if (!failed) return null;

  if (outcome.exitCode === EXIT_DRIVER_LIBRARY_MISMATCH || MISMATCH_PATTERN.test(output)) return new DriverLibraryMismatchError(details);
  if (outcome.exitCode === EXIT_DRIVER_NOT_LOADED || outcome.exitCode === EXIT_NVML_LIBRARY_NOT_FOUND || DRIVER_UNREACHABLE_PATTERN.test(output)) {
    return new DriverNotLoadedError(details);
  }
  if (outcome.exitCode === EXIT_NO_PERMISSION || PERMISSION_PATTERN.test(output)) return new PermissionDeniedError(details);
  if (/No devices were found/i.test(output)) return new NoGpuFoundError(details);
  if (outcome.exitCode === EXIT_COMMAND_NOT_FOUND && /not found/i.test(output)) return new NvidiaSmiNotFoundError(outcome.command, details);

  const how = outcome.signal ? `was killed by ${outcome.signal}` : `exited with code ${outcome.exitCode}`;
  return new NvidiaSmiError(
    'NVIDIA_SMI_FAILED',
    `nvidia-smi ${how}${firstLine ? `: "${firstLine.slice(0, 300)}"` : ''}. Run \`${outcome.commandLine}\` by hand to see the full message.`,
    details,
  );
}
