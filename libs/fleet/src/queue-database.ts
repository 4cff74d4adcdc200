/**
 * The connection pg-boss runs its SQL on, given to it through its `db`
 * option. pg-boss 10.4 completes and fails a job without awaiting the
 * call (Manager.watch in pg-boss/src/manager.js), so a job that ends
 * while PostgreSQL is unreachable becomes an unhandled rejection, which
 * stops the Node process. Here a statement that failed because the
 * server could not be reached is retried with backoff until the server
 * is back, so a PostgreSQL restart delays the queue instead of crashing
 * the coordinator.
 */
import pg from 'pg';
import { backoffDelayMs, sleep, type Logger } from '@hwopt/common';

/**
 * SQLSTATE classes and codes that mean the statement never ran: connection
 * exceptions (08), and admin_shutdown, crash_shutdown and
 * cannot_connect_now (57P01 to 57P03).
 */
const UNREACHABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03']);
/** Node socket errors of a server that is down or restarting. */
const UNREACHABLE_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN']);
/** Messages node-postgres uses for a connection that closed under a query. */
const CLOSED_CONNECTION = /Connection terminated|Client has encountered a connection error|connection timeout/i;

/** Tests whether `error` means PostgreSQL could not be reached, rather than that the statement failed. */
export function isUnreachableError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (code.startsWith('08') || UNREACHABLE_SQLSTATES.has(code) || UNREACHABLE_ERRNOS.has(code))) return true;
  const message = (error as { message?: unknown }).message;
  return typeof message === 'string' && CLOSED_CONNECTION.test(message);
}

export interface QueueDatabaseOptions {
  connectionString: string;
  logger: Logger;
  /** Pool size. Default 4. */
  max?: number;
  /** How long one statement is retried while PostgreSQL is unreachable, in ms; then the error is raised. Default 1 hour. */
  retryForMs?: number;
  /** Maximum wait between retries, in ms. Default 5 s. */
  maxRetryDelayMs?: number;
}

/** Interface pg-boss 10 calls on a database connection it did not open itself. */
export interface PgBossDatabase {
  executeSql(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

export class QueueDatabase implements PgBossDatabase {
  readonly #pool: pg.Pool;
  readonly #logger: Logger;
  readonly #retryForMs: number;
  readonly #maxRetryDelayMs: number;
  #closed = false;
  /** Start of the current outage (ms since the epoch), or null while PostgreSQL is reachable. */
  #unreachableSince: number | null = null;
  #lastWarnedAt = 0;

  constructor(options: QueueDatabaseOptions) {
    this.#logger = options.logger;
    this.#retryForMs = options.retryForMs ?? 3_600_000;
    this.#maxRetryDelayMs = options.maxRetryDelayMs ?? 5_000;
    this.#pool = new pg.Pool({ connectionString: options.connectionString, max: options.max ?? 4, application_name: 'pgboss' });
    // An idle client whose server went away emits here; without a listener the error would stop the process.
    this.#pool.on('error', (error) => this.#logger.warn({ err: error }, 'job queue connection lost; it is opened again on the next statement'));
  }

  async executeSql(text: string, values?: unknown[]): Promise<{ rows: unknown[] }> {
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await this.#pool.query(text, values);
        if (this.#unreachableSince !== null) {
          this.#logger.info({ downForMs: Date.now() - this.#unreachableSince }, 'job queue reached PostgreSQL again');
          this.#unreachableSince = null;
        }
        return result;
      } catch (error) {
        // NOTE: a connection cut while a statement ran (ECONNRESET, "Connection terminated") may
        // have committed it, so a retried fetch can leave a job active until its expiry. Refused
        // connections and server shutdowns (57P01 to 57P03) roll the statement back.
        if (this.#closed || !isUnreachableError(error) || Date.now() - started >= this.#retryForMs) throw error;
        this.#unreachableSince ??= Date.now();
        // One warning per 30 s however many statements wait, so an outage does not flood the log.
        if (Date.now() - this.#lastWarnedAt >= 30_000) {
          this.#lastWarnedAt = Date.now();
          this.#logger.warn({ err: error, downForMs: Date.now() - this.#unreachableSince }, 'job queue cannot reach PostgreSQL; retrying');
        }
        await sleep(backoffDelayMs(attempt, 250, this.#maxRetryDelayMs));
      }
    }
  }

  /** Closes the pool; statements still waiting for PostgreSQL then fail instead of retrying. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }
}
