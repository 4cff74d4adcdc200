/** How to start nvidia-smi: the executable, arguments put before every query, and extra environment. */
export interface NvidiaSmiCommand {
  /** Executable name or path. */
  command: string;
  /** Arguments placed before the query arguments, e.g. a script path when `command` is `node`. */
  args?: string[];
  /** Added to the agent's environment. */
  env?: Record<string, string>;
}

export const DEFAULT_NVIDIA_SMI: NvidiaSmiCommand = { command: 'nvidia-smi' };

/** Default time one nvidia-smi query may take, in ms. An estimate with wide room, not measured on GPU nodes. */
export const DEFAULT_NVIDIA_SMI_TIMEOUT_MS = 10_000;

/** Time between SIGTERM and SIGKILL when nvidia-smi is stopped, in ms. */
export const NVIDIA_SMI_FORCE_KILL_DELAY_MS = 1_000;

export function commandLine(smi: NvidiaSmiCommand, args: string[]): string {
  return [smi.command, ...(smi.args ?? []), ...args].join(' ');
}
