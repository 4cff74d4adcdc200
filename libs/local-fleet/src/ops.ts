/** A small ops client for harness code: unary calls as promises, with deadlines. */
import { credentials, Metadata, type ChannelCredentials } from '@grpc/grpc-js';
import { GRPC_CHANNEL_OPTIONS, OpsServiceClient, type ListConfigsRequest, type StageConfig, type FleetNode, type BenchmarkRunInfo } from '@hwopt/proto';
import { HealthClient } from './health-client.ts';

export class OpsHarnessClient {
  readonly client: InstanceType<typeof OpsServiceClient>;
  readonly metadata = new Metadata();

  constructor(readonly address: string, options: { credentials?: ChannelCredentials; token?: string } = {}) {
    this.client = new OpsServiceClient(address, options.credentials ?? credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
    if (options.token) this.metadata.set('authorization', `Bearer ${options.token}`);
  }

  #unary<Req, Res>(method: string, request: Req, timeoutMs = 10_000): Promise<Res> {
    return new Promise((resolve, reject) => {
      (this.client as any)[method](request, this.metadata, { deadline: new Date(Date.now() + timeoutMs) }, (error: Error | null, response: Res) => (error ? reject(error) : resolve(response)));
    });
  }

  async configs(request: Partial<ListConfigsRequest> = {}): Promise<StageConfig[]> {
    const response = await this.#unary<ListConfigsRequest, { configs: StageConfig[] }>('listConfigs', { nodeName: '', stage: '', workload: '', includeHistory: false, ...request });
    return response.configs;
  }

  async fleet(): Promise<FleetNode[]> {
    return (await this.#unary<object, { nodes: FleetNode[] }>('listFleet', {})).nodes;
  }

  async history(nodeName: string): Promise<BenchmarkRunInfo[]> {
    return (await this.#unary<object, { runs: BenchmarkRunInfo[] }>('getHistory', { nodeName })).runs;
  }

  async scheduleBenchmark(request: { nodeName?: string; gpuModel?: string; stage?: string }): Promise<{ jobIds: string[]; nodeNames: string[] }> {
    return this.#unary('scheduleBenchmark', { nodeName: '', gpuModel: '', workload: '', stage: '', ...request });
  }

  close(): void {
    this.client.close();
  }
}

/** Resolves once the coordinator's health service reports SERVING, or rejects after `timeoutMs`. */
export async function waitForServing(address: string, timeoutMs: number, channelCredentials = credentials.createInsecure()): Promise<void> {
  const client = new HealthClient(address, channelCredentials);
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const status = await client.check('', 2_000).catch(() => null);
      if (status === 'SERVING') return;
      if (Date.now() > deadline) throw new Error(`the coordinator at ${address} did not report SERVING within ${Math.round(timeoutMs / 1000)} s`);
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    client.close();
  }
}

/**
 * Polls `probe` until it returns a value, or rejects after `timeoutMs`. An
 * error with `fatal: true` ends the wait at once; others are retried.
 */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined | null | false>, intervalMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (error) {
      if ((error as { fatal?: boolean }).fatal) throw error;
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
