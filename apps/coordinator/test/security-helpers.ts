/**
 * Shared pieces of the security tests: certificates made with
 * tools/certs/make-certs.sh, a raw agent Session stream that a test drives
 * message by message, and a Hello for a twin T4 node.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { credentials, Metadata, type ChannelCredentials, type ClientDuplexStream, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import { execa } from 'execa';
import { REPO_ROOT } from '@hwopt/local-fleet';
import { AgentMessage, AgentServiceClient, GRPC_CHANNEL_OPTIONS, Hello, type CoordinatorMessage } from '@hwopt/proto';

export const MAKE_CERTS = join(REPO_ROOT, 'tools/certs/make-certs.sh');

/** Runs make-certs.sh into `dir` and returns the folder. */
export async function makeCerts(dir: string, args: string[] = []): Promise<string> {
  await execa('bash', [MAKE_CERTS, dir, ...args]);
  return dir;
}

/** Client credentials from a make-certs.sh folder; `client` names `node-X` or `ops-X` files, or none. */
export function tlsCredentials(dir: string, client?: string, caDir = dir): ChannelCredentials {
  const ca = readFileSync(join(caDir, 'ca.pem'));
  if (!client) return credentials.createSsl(ca);
  return credentials.createSsl(ca, readFileSync(join(dir, `${client}-key.pem`)), readFileSync(join(dir, `${client}.pem`)));
}

export function bearer(token: string): Metadata {
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  return metadata;
}

export const T4_GPU_UUID = 'GPU-5e4c2a3b-0000-4000-8000-000000007400';

export function t4Hello(nodeName: string, workloads = ['visnet-pdb']): Hello {
  return Hello.fromPartial({
    nodeName,
    hostname: nodeName,
    agentVersion: 'test',
    workloads,
    inventory: {
      driverVersion: '535.183.01',
      cudaVersion: '12.2',
      stale: false,
      rebootPending: false,
      error: '',
      gpus: [{ index: 0, uuid: T4_GPU_UUID, name: 'Tesla T4', memoryTotalMib: 15_360, computeCapability: '7.5', migMode: '' }],
    },
  });
}

/**
 * One agent Session stream driven by a test: `send` writes a message,
 * `next` waits for the coordinator's next message, `closed` resolves with
 * the final status (a handshake failure included).
 */
export class RawSession {
  readonly client: InstanceType<typeof AgentServiceClient>;
  readonly stream: ClientDuplexStream<AgentMessage, CoordinatorMessage>;
  readonly closed: Promise<StatusObject>;
  readonly #received: CoordinatorMessage[] = [];
  #waiter: (() => void) | undefined;
  #status: StatusObject | undefined;

  constructor(address: string, channelCredentials: ChannelCredentials = credentials.createInsecure(), metadata = new Metadata(), channelOptions: Record<string, number> = {}) {
    this.client = new AgentServiceClient(address, channelCredentials, { ...GRPC_CHANNEL_OPTIONS, ...channelOptions });
    this.stream = this.client.session(metadata);
    this.stream.on('data', (message: CoordinatorMessage) => {
      this.#received.push(message);
      this.#waiter?.();
    });
    this.closed = new Promise((resolve) => {
      this.stream.on('status', (status: StatusObject) => {
        this.#status = status;
        this.#waiter?.();
        resolve(status);
      });
    });
    // The status event carries the outcome; without this listener an error would be thrown.
    this.stream.on('error', (_error: ServiceError) => {});
  }

  send(message: Partial<AgentMessage>): void {
    this.stream.write(AgentMessage.fromPartial(message));
  }

  /** Waits for the coordinator's next message; returns null once the stream has closed. */
  async next(timeoutMs = 10_000): Promise<CoordinatorMessage | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.#received.length === 0) {
      if (this.#status) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no message from the coordinator within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#waiter = undefined;
    }
    return this.#received.shift()!;
  }

  /** Waits for the first message matching `pick`, skipping others. */
  async nextOf<T>(what: string, pick: (message: CoordinatorMessage) => T | undefined, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = await this.next(Math.max(1, deadline - Date.now()));
      if (message === null) throw new Error(`the stream closed before ${what} arrived (status ${this.#status?.code}: ${this.#status?.details})`);
      const picked = pick(message);
      if (picked !== undefined) return picked;
    }
  }

  close(): void {
    this.stream.cancel();
    this.client.close();
  }
}
