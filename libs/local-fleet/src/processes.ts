/**
 * Coordinator and agent processes started from this checkout's binaries,
 * each in its own process group so the whole tree can be stopped.
 */
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const COORDINATOR_BIN = join(REPO_ROOT, 'apps/coordinator/bin/hwopt-coordinator.js');
export const AGENT_BIN = join(REPO_ROOT, 'apps/agent/bin/hwopt-agent.js');
export const CLI_BIN = join(REPO_ROOT, 'apps/cli/bin/hwopt.js');

/** Time between SIGTERM and SIGKILL when a child is stopped, in ms. */
const STOP_GRACE_MS = 15_000;

export interface ManagedProcess {
  name: string;
  pid: number;
  logFile: string;
  process: ResultPromise;
  /** SIGTERM, then SIGKILL after a grace period; resolves when it exited. */
  stop(): Promise<void>;
  /** SIGKILL at once, as a crash would. */
  kill(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export function startProcess(name: string, file: string, args: string[], options: { logDir: string; env?: Record<string, string | undefined>; detached?: boolean }): ManagedProcess {
  mkdirSync(options.logDir, { recursive: true });
  const logFile = join(options.logDir, `${name}.log`);
  const child = execa(process.execPath, [file, ...args], {
    env: options.env,
    extendEnv: true,
    reject: false,
    detached: true,
    stdin: 'ignore',
    // Straight to the file, so a detached child outlives this process.
    stdout: { file: logFile, append: true },
    stderr: { file: logFile, append: true },
    cleanup: !options.detached,
  });
  if (options.detached) child.unref();
  const pid = child.pid!;
  const exited = child.then(() => undefined);
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig);
    } catch {
      // Already gone.
    }
  };
  return {
    name,
    pid,
    logFile,
    process: child,
    async stop() {
      signal('SIGTERM');
      const timer = setTimeout(() => signal('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    },
    async kill() {
      signal('SIGKILL');
      await exited;
    },
  };
}
