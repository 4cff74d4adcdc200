/**
 * The CLI's connection to the coordinator's ops service: credentials from
 * flags, a deadline on every call, and errors turned into one-line reasons.
 */
import { credentials as grpcCredentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { InvalidInputError, parseDecimal, readClientTlsFiles } from '@hwopt/common';
import { GRPC_CHANNEL_OPTIONS, OpsServiceClient } from '@hwopt/proto';

export interface ConnectionFlags {
  coordinator: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  token?: string;
  timeout: string;
}

/** Default deadline of one ops call, in seconds. */
export const DEFAULT_CALL_TIMEOUT_SECONDS = 15;

export class OpsCallError extends Error {
  readonly code = 'OPS_CALL_FAILED';
}

export interface OpsConnection {
  client: InstanceType<typeof OpsServiceClient>;
  metadata: Metadata;
  deadline(): Date;
  close(): void;
  /** Whether the channel uses TLS, so that errors can point at the certificates. */
  tls: boolean;
}

export function connect(flags: ConnectionFlags): OpsConnection {
  if (!/^(\[[0-9a-fA-F:]+\]|[^\s:]+):\d{1,5}$/.test(flags.coordinator)) {
    throw new InvalidInputError(`--coordinator ${JSON.stringify(flags.coordinator)} is not HOST:PORT (for example 127.0.0.1:50551)`);
  }
  const timeoutSeconds = parseDecimal(flags.timeout);
  if (!(timeoutSeconds > 0)) throw new InvalidInputError(`--timeout ${flags.timeout} must be a positive number of seconds`);
  if ((flags.tlsCert || flags.tlsKey) && !flags.tlsCa) throw new InvalidInputError('--tls-cert and --tls-key need --tls-ca, the CA that signed the coordinator certificate');
  if (!!flags.tlsCert !== !!flags.tlsKey) throw new InvalidInputError('--tls-cert and --tls-key must be given together');
  let credentials = grpcCredentials.createInsecure();
  if (flags.tlsCa) {
    const files = readClientTlsFiles({ caFile: flags.tlsCa, certFile: flags.tlsCert, keyFile: flags.tlsKey });
    credentials = grpcCredentials.createSsl(files.ca, files.key, files.cert);
  }
  const client = new OpsServiceClient(flags.coordinator, credentials, GRPC_CHANNEL_OPTIONS);
  const metadata = new Metadata();
  const token = flags.token ?? process.env.HWOPT_TOKEN;
  if (token) metadata.set('authorization', `Bearer ${token}`);
  return {
    client,
    metadata,
    deadline: () => new Date(Date.now() + timeoutSeconds * 1000),
    close: () => client.close(),
    tls: Boolean(flags.tlsCa),
  };
}

/** Calls a unary ops method and turns gRPC errors into one-line reasons. */
export function call<Req, Res>(connection: OpsConnection, method: (request: Req, metadata: Metadata, options: { deadline: Date }, callback: (error: ServiceError | null, response: Res) => void) => unknown, request: Req, coordinator: string): Promise<Res> {
  return new Promise((resolve, reject) => {
    method.call(connection.client, request, connection.metadata, { deadline: connection.deadline() }, (error, response) => {
      if (!error) {
        resolve(response);
        return;
      }
      if (error.code === status.UNAVAILABLE || error.code === status.DEADLINE_EXCEEDED) {
        // grpc-js reports a failed TLS handshake as UNAVAILABLE too, so with TLS the certificates are a suspect as well.
        const tlsHint = connection.tls ? '; or the TLS handshake failed: check that --tls-ca signed the coordinator certificate, that the coordinator trusts the CA of --tls-cert, and that no certificate expired' : '';
        reject(new OpsCallError(`cannot reach the coordinator at ${coordinator} (${status[error.code]}); start it with hwopt-coordinator or pass --coordinator HOST:PORT${tlsHint}`));
      } else {
        reject(new OpsCallError(`${status[error.code]}: ${error.details}`));
      }
    });
  });
}
