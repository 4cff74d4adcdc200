import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

/**
 * Creates the process's structured logger. Logs go to stderr so that a
 * command's stdout stays clean for `--json` output. `HWOPT_LOG_LEVEL`
 * overrides the level (trace, debug, info, warn, error, silent).
 */
export function createLogger(name: string, options: LoggerOptions = {}): Logger {
  return pino(
    {
      name,
      level: process.env.HWOPT_LOG_LEVEL ?? 'info',
      // Secrets travel in these fields; they are never written.
      redact: { paths: ['token', '*.token', 'password', '*.password', 'databaseUrl', '*.databaseUrl', 'authorization', '*.authorization'], censor: '[redacted]' },
      ...options,
    },
    pino.destination({ fd: 2, sync: true }),
  );
}

/** A logger that writes nothing, for tests and library defaults. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
