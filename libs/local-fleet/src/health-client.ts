/** A client of the standard grpc.health.v1.Health service. */
import { makeGenericClientConstructor, type ChannelCredentials, type Client } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { GRPC_CHANNEL_OPTIONS } from '@hwopt/proto';

const HealthClientConstructor = makeGenericClientConstructor(healthService, 'grpc.health.v1.Health');

export class HealthClient {
  readonly #client: Client & { check(request: { service: string }, options: { deadline: Date }, callback: (error: Error | null, response?: { status: string }) => void): void };

  constructor(address: string, credentials: ChannelCredentials) {
    this.#client = new HealthClientConstructor(address, credentials, GRPC_CHANNEL_OPTIONS) as never;
  }

  check(serviceName: string, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      this.#client.check({ service: serviceName }, { deadline: new Date(Date.now() + timeoutMs) }, (error, response) => (error ? reject(error) : resolve(String(response?.status))));
    });
  }

  close(): void {
    this.#client.close();
  }
}
