/**
 * Who may call the coordinator. Agents prove their node with a client
 * certificate (mutual TLS, the certificate's common name is the node name)
 * or, in small setups, with a shared token. Ops clients present a token
 * with a read-only or admin role.
 */
import { readFileSync } from 'node:fs';
import { timingSafeEqual } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { Metadata, ServerCredentials, status, type ServerErrorResponse } from '@grpc/grpc-js';
import { InvalidInputError, type Logger } from '@hwopt/common';
import type { OpsRole } from './grpc/ops-service.ts';
import type { ResolvedCoordinatorOptions } from './options.ts';

interface CallLike {
  metadata: Metadata;
  getAuthContext(): { transportSecurityType?: string; sslPeerCertificate?: PeerCertificate };
}

export interface Authenticator {
  credentials: ServerCredentials;
  mode: 'mutual-tls' | 'tls' | 'plaintext';
  /** The node name a client certificate proves, null when none is required. Throws UNAUTHENTICATED. */
  agentIdentity(call: CallLike): string | null;
  authorizeOps(call: CallLike, role: OpsRole): void;
}

function unauthenticated(details: string): ServerErrorResponse {
  return Object.assign(new Error(details), { code: status.UNAUTHENTICATED, details });
}

function readSecretFile(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new InvalidInputError(`${flag} ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'}); pass a readable file`);
  }
}

function bearerToken(metadata: Metadata): string | null {
  const value = metadata.get('authorization')[0];
  if (typeof value !== 'string') return null;
  const match = /^Bearer (\S{1,512})$/.exec(value);
  return match ? match[1]! : null;
}

function sameSecret(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

export function createAuthenticator(options: ResolvedCoordinatorOptions, logger: Logger): Authenticator {
  let credentials: ServerCredentials;
  let mode: Authenticator['mode'];
  if (options.tls) {
    const ca = options.tls.caFile ? Buffer.from(readSecretFile(options.tls.caFile, '--tls-ca')) : null;
    credentials = ServerCredentials.createSsl(ca, [{ cert_chain: Buffer.from(readSecretFile(options.tls.certFile, '--tls-cert')), private_key: Buffer.from(readSecretFile(options.tls.keyFile, '--tls-key')) }], ca !== null);
    mode = ca ? 'mutual-tls' : 'tls';
  } else {
    credentials = ServerCredentials.createInsecure();
    mode = 'plaintext';
    logger.warn({ host: options.host }, 'serving gRPC in plaintext: traffic and tokens are not encrypted; use --tls-cert/--tls-key/--tls-ca outside a trusted host');
  }

  const agentToken = options.agentTokenFile ? readSecretFile(options.agentTokenFile, '--agent-token-file').trim() : null;
  if (agentToken !== null && agentToken.length < 16) throw new InvalidInputError('--agent-token-file holds a token shorter than 16 characters; use a long random token');

  let opsTokens: { token: string; role: OpsRole }[] | null = null;
  if (options.opsTokensFile) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readSecretFile(options.opsTokensFile, '--ops-tokens-file'));
    } catch (error) {
      if (error instanceof InvalidInputError) throw error;
      throw new InvalidInputError(`--ops-tokens-file ${options.opsTokensFile} is not valid JSON; expected [{"token": "...", "role": "read" | "admin"}]`);
    }
    if (!Array.isArray(parsed) || parsed.some((e) => typeof e?.token !== 'string' || e.token.length < 16 || (e.role !== 'read' && e.role !== 'admin'))) {
      throw new InvalidInputError(`--ops-tokens-file ${options.opsTokensFile} must hold [{"token": "<at least 16 characters>", "role": "read" | "admin"}]`);
    }
    opsTokens = parsed as { token: string; role: OpsRole }[];
  }

  return {
    credentials,
    mode,
    agentIdentity(call) {
      if (mode === 'mutual-tls') {
        const subject = call.getAuthContext().sslPeerCertificate?.subject;
        const commonName: string | undefined = Array.isArray(subject?.CN) ? subject.CN[0] : subject?.CN;
        if (!commonName) throw unauthenticated('a client certificate with the node name as its common name is required');
        return commonName;
      }
      if (agentToken !== null) {
        const presented = bearerToken(call.metadata);
        if (presented === null || !sameSecret(presented, agentToken)) throw unauthenticated('missing or wrong agent token');
      }
      return null;
    },
    authorizeOps(call, role) {
      if (opsTokens === null) return;
      const presented = bearerToken(call.metadata);
      const entry = presented === null ? undefined : opsTokens.find((e) => sameSecret(e.token, presented));
      if (!entry) throw unauthenticated('missing or unknown ops token; pass --token or HWOPT_TOKEN');
      if (role === 'admin' && entry.role !== 'admin') {
        throw Object.assign(new Error('this ops token is read-only; scheduling benchmarks needs an admin token'), { code: status.PERMISSION_DENIED, details: 'this ops token is read-only; scheduling benchmarks needs an admin token' });
      }
    },
  };
}
