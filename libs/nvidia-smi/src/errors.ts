import { HwoptError } from '@hwopt/common';

/** Details of the nvidia-smi run that failed, kept for logs. */
export interface NvidiaSmiRunDetails {
  /** Command line that was run, e.g. `nvidia-smi -q -x`. */
  commandLine?: string;
  exitCode?: number | null;
  signal?: string | null;
  /** The first 2,000 characters of what the command printed on stderr (stdout when stderr was empty). */
  outputExcerpt?: string;
}

/** Base class of every nvidia-smi failure: a stable `code`, and a message with the next step. */
export class NvidiaSmiError extends HwoptError {
  readonly details: NvidiaSmiRunDetails;

  constructor(code: string, message: string, details: NvidiaSmiRunDetails = {}, options?: { cause?: unknown }) {
    super(code, message, options);
    this.details = details;
  }
}

/** The nvidia-smi executable does not exist on PATH (or at the configured path). */
export class NvidiaSmiNotFoundError extends NvidiaSmiError {
  constructor(command: string, details: NvidiaSmiRunDetails = {}, options?: { cause?: unknown }) {
    super(
      'NVIDIA_SMI_NOT_FOUND',
      `nvidia-smi was not found (command "${command}"). Install the NVIDIA driver utilities, or set the path to nvidia-smi.`,
      details,
      options,
    );
  }
}

/** nvidia-smi runs but cannot reach the kernel driver, or finds no NVML library. */
export class DriverNotLoadedError extends NvidiaSmiError {
  constructor(details: NvidiaSmiRunDetails = {}, options?: { cause?: unknown }) {
    super(
      'NVIDIA_DRIVER_NOT_LOADED',
      'nvidia-smi could not communicate with the NVIDIA driver: the kernel module is not loaded or the device files are not reachable. ' +
        'Check `lsmod | grep nvidia` on the host, and that containers get the GPU devices (NVIDIA Container Toolkit).' +
        excerptSuffix(details),
      details,
      options,
    );
  }
}

/**
 * The user-space NVML library and the loaded kernel module have different
 * versions, which happens when the driver package is upgraded without a
 * reboot. Only a reboot (or reloading the kernel module) clears it.
 */
export class DriverLibraryMismatchError extends NvidiaSmiError {
  constructor(details: NvidiaSmiRunDetails = {}, options?: { cause?: unknown }) {
    super(
      'NVIDIA_DRIVER_LIBRARY_MISMATCH',
      'Failed to initialize NVML: Driver/library version mismatch. The NVIDIA driver was upgraded but the old kernel module is still loaded; reboot the node (or reload the nvidia kernel modules).',
      details,
      options,
    );
  }
}

/** The calling user or container may not query the GPU. */
export class PermissionDeniedError extends NvidiaSmiError {
  constructor(details: NvidiaSmiRunDetails = {}, options?: { cause?: unknown }) {
    super(
      'NVIDIA_SMI_PERMISSION_DENIED',
      'nvidia-smi was denied permission to query the GPU. Run the agent as a user with access to /dev/nvidia*, or give the pod the GPU devices.' +
        excerptSuffix(details),
      details,
      options,
    );
  }
}

/** nvidia-smi did not exit within its timeout; its process group was killed. */
export class NvidiaSmiTimeoutError extends NvidiaSmiError {
  readonly timeoutMs: number;

  constructor(timeoutMs: number, details: NvidiaSmiRunDetails = {}, options?: { cause?: unknown }) {
    super(
      'NVIDIA_SMI_TIMEOUT',
      `nvidia-smi did not exit within ${timeoutMs} ms and was killed; a GPU or the driver may be wedged. Check \`dmesg\` for Xid errors; the next poll backs off.`,
      details,
      options,
    );
    this.timeoutMs = timeoutMs;
  }
}

/** nvidia-smi printed output that cannot be read: truncated, not XML, too large or of an unknown shape. */
export class MalformedOutputError extends NvidiaSmiError {
  constructor(reason: string, details: NvidiaSmiRunDetails = {}, options?: { cause?: unknown }) {
    super(
      'NVIDIA_SMI_MALFORMED_OUTPUT',
      `nvidia-smi output could not be read: ${reason}. Run the same nvidia-smi command by hand and check that it completes.`,
      details,
      options,
    );
  }
}

function excerptSuffix(details: NvidiaSmiRunDetails): string {
  const firstLine = details.outputExcerpt?.trim().split('\n')[0];
  return firstLine ? ` nvidia-smi printed: "${firstLine.slice(0, 300)}"` : '';
}
