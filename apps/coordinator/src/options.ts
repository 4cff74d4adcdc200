/**
 * Coordinator options: one interface with documented defaults, filled and
 * checked by one function that names the bad field.
 */
import { InvalidInputError } from '@hwopt/common';
import { DEFAULT_COORDINATOR_ADDRESS } from '@hwopt/proto';
import type { StrategyName } from '@hwopt/optimizer';

export interface CoordinatorOptions {
  /** HOST:PORT the gRPC server binds. Default 127.0.0.1:50551; port 0 picks a free one. */
  listen?: string;
  /** PostgreSQL URL; unset starts an embedded PostgreSQL in `dataDir`. */
  databaseUrl?: string;
  /** Folder of the embedded PostgreSQL. Default `.hwopt/coordinator` under the working directory. */
  dataDir?: string;
  /** Samples in the training dataset; sets the parameter cap. Default 19,500. */
  datasetSize?: number;
  /** Fraction of GPU memory a trial must leave free. Default 0.05. */
  headroom?: number;
  /** Search strategy. Default 'calibrated'. */
  strategy?: StrategyName;
  /** Time limit of one trial on the agent, in ms. Default 15 minutes. */
  trialTimeoutMs?: number;
  /** Cron expression for re-benchmarking every node; unset for none. */
  rebenchmarkCron?: string;
  /** Benchmark jobs this process runs at once. Default 16. */
  benchmarkConcurrency?: number;
  /** Interval agents send heartbeats at, in ms. Default 10 s. */
  heartbeatIntervalMs?: number;
  /** How long a run waits for its disconnected agent before its job is retried, in ms. Default 2 minutes. */
  reconnectWaitMs?: number;
  /** Time a new agent session has to send its hello before it is closed, in ms. Default 30 s. */
  helloTimeoutMs?: number;
  /** TLS material; all three paths together enable mutual TLS. */
  tls?: { certFile: string; keyFile: string; caFile?: string };
  /** File holding the shared token agents must present (token mode). */
  agentTokenFile?: string;
  /** JSON file of ops credentials: `[{"token": "...", "role": "read" | "admin"}]`. */
  opsTokensFile?: string;
  /** Serve on a non-loopback address without TLS, agent authentication or ops tokens. */
  insecure?: boolean;
}

export interface ResolvedCoordinatorOptions {
  host: string;
  port: number;
  databaseUrl: string | undefined;
  dataDir: string;
  datasetSize: number;
  headroom: number;
  strategy: StrategyName;
  trialTimeoutMs: number;
  rebenchmarkCron: string | undefined;
  benchmarkConcurrency: number;
  heartbeatIntervalMs: number;
  reconnectWaitMs: number;
  helloTimeoutMs: number;
  tls: CoordinatorOptions['tls'];
  agentTokenFile: string | undefined;
  opsTokensFile: string | undefined;
  insecure: boolean;
}

export function parseHostPort(value: string, field: string): { host: string; port: number } {
  const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65_535) throw new InvalidInputError(`${field} ${JSON.stringify(value)} is not HOST:PORT (for example 127.0.0.1:50551)`);
  return { host: match[1]!, port };
}

/** True for localhost, an IPv4 address in 127.0.0.0/8 and [::1]; a name such as 127.example.com is not loopback. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === '[::1]';
}

/**
 * Rejects a non-loopback address unless every caller is authenticated:
 * TLS, agents by client certificate (--tls-ca) or shared token, and ops
 * clients by token. `--insecure` serves without them on purpose.
 */
function checkExposure(options: CoordinatorOptions, address: string, insecure: boolean): void {
  if (insecure) return;
  const fix = 'or pass --insecure to serve it unauthenticated on purpose';
  if (!options.tls) {
    throw new InvalidInputError(`--listen ${address} is not a loopback address; give --tls-cert/--tls-key (and --tls-ca for mutual TLS), ${fix}`);
  }
  if (!options.tls.caFile && !options.agentTokenFile) {
    throw new InvalidInputError(`--listen ${address} is not a loopback address, so agents must authenticate; give --tls-ca (mutual TLS) or --agent-token-file, ${fix}`);
  }
  if (!options.opsTokensFile) {
    throw new InvalidInputError(`--listen ${address} is not a loopback address, so ops clients must authenticate; give --ops-tokens-file, ${fix}`);
  }
}

export function resolveCoordinatorOptions(options: CoordinatorOptions): ResolvedCoordinatorOptions {
  const { host, port } = parseHostPort(options.listen ?? DEFAULT_COORDINATOR_ADDRESS, '--listen');
  const datasetSize = options.datasetSize ?? 19_500;
  if (!Number.isInteger(datasetSize) || datasetSize < 1 || datasetSize > 1e12) throw new InvalidInputError(`--dataset-size ${datasetSize} must be a positive integer (samples in the training dataset)`);
  const headroom = options.headroom ?? 0.05;
  if (!(headroom >= 0 && headroom < 1)) throw new InvalidInputError(`--memory-headroom ${headroom} must be in [0, 1), for example 0.05`);
  const strategy = options.strategy ?? 'calibrated';
  if (strategy !== 'calibrated' && strategy !== 'legacy') throw new InvalidInputError(`--strategy ${JSON.stringify(strategy)} must be calibrated or legacy`);
  const trialTimeoutMs = options.trialTimeoutMs ?? 15 * 60_000;
  if (!(trialTimeoutMs >= 1000)) throw new InvalidInputError(`--trial-timeout ${trialTimeoutMs / 1000} s must be at least 1 second`);
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 10_000;
  if (!(heartbeatIntervalMs >= 1000 && heartbeatIntervalMs <= 3_600_000)) throw new InvalidInputError(`--heartbeat-interval ${heartbeatIntervalMs / 1000} s must be between 1 and 3600 seconds`);
  const helloTimeoutMs = options.helloTimeoutMs ?? 30_000;
  if (!(helloTimeoutMs >= 100 && helloTimeoutMs <= 600_000)) throw new InvalidInputError(`helloTimeoutMs ${helloTimeoutMs} must be between 100 and 600000 ms`);
  if (options.tls && (!options.tls.certFile || !options.tls.keyFile)) throw new InvalidInputError('--tls-cert and --tls-key must be given together');
  const insecure = options.insecure ?? false;
  if (!isLoopback(host)) checkExposure(options, `${host}:${port}`, insecure);
  return {
    host,
    port,
    databaseUrl: options.databaseUrl,
    dataDir: options.dataDir ?? '.hwopt/coordinator',
    datasetSize,
    headroom,
    strategy,
    trialTimeoutMs,
    rebenchmarkCron: options.rebenchmarkCron,
    benchmarkConcurrency: options.benchmarkConcurrency ?? 16,
    heartbeatIntervalMs,
    reconnectWaitMs: options.reconnectWaitMs ?? 120_000,
    helloTimeoutMs,
    tls: options.tls,
    agentTokenFile: options.agentTokenFile,
    opsTokensFile: options.opsTokensFile,
    insecure,
  };
}
