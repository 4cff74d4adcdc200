/**
 * Who may call the coordinator. Agents prove their node with a client
 * certificate (mutual TLS, the certificate's common name is the node name)
 * or, in small setups, with a shared token. Ops clients present a token
 * with a read-only or admin role. Under mutual TLS the certificate's
 * organizational unit binds it to one role, so an ops certificate cannot
 * register a node and a node's certificate cannot make ops calls. Tokens and key material never go into
 * logs or error details: messages name the file, never its content.
 */
import { readFileSync, statSync } from 'node:fs';
import { timingSafeEqual } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { Metadata, ServerCredentials, status, type ServerErrorResponse } from '@grpc/grpc-js';
import { checkCertificateAndKey, InvalidInputError, parseCertificate, readFlagFile, type Logger } from '@hwopt/common';
import type { OpsRole } from './grpc/ops-service.ts';
import type { ResolvedCoordinatorOptions } from './options.ts';

interface CallLike {
  metadata: Metadata;
  getAuthContext(): { transportSecurityType?: string; sslPeerCertificate?: PeerCertificate };
}

export interface Authenticator {
  credentials: ServerCredentials;
  mode: 'mutual-tls' | 'tls' | 'plaintext';
  /**
   * Returns the node name the client certificate proves, or null in TLS
   * and plaintext modes. Throws a gRPC UNAUTHENTICATED error when the
   * certificate has no common name or the agent token is missing or wrong,
   * and PERMISSION_DENIED for a certificate without OU hwopt-agent.
   */
  agentIdentity(call: CallLike): string | null;
  /**
   * Throws UNAUTHENTICATED for a missing or unknown ops token, and
   * PERMISSION_DENIED for a read-only token on an admin call or, under
   * mutual TLS, for a certificate without OU hwopt-ops.
   */
  authorizeOps(call: CallLike, role: OpsRole): void;
}

/** Organizational unit (OU) of agent certificates, as tools/certs/make-certs.sh writes them. */
export const AGENT_CERTIFICATE_UNIT = 'hwopt-agent';
/** Organizational unit (OU) of ops client certificates. */
export const OPS_CERTIFICATE_UNIT = 'hwopt-ops';

/** Tokens: printable ASCII without spaces, as the `Bearer` header carries them. */
const TOKEN_PATTERN = /^[\x21-\x7e]{16,512}$/;
const TOKEN_RULE = '16 to 512 printable ASCII characters without spaces';

function grpcError(code: status, details: string): ServerErrorResponse {
  return Object.assign(new Error(details), { code, details });
}

/** Reads a key or token file, warning when users other than the owner may read it. */
function readSecretFile(path: string, flag: string, logger: Logger): string {
  let content: string;
  try {
    content = readFileSync(path, 'utf8');
  } catch (error) {
    throw new InvalidInputError(`${flag} ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'}); pass a readable file`);
  }
  // Windows has no POSIX mode bits to check.
  if (process.platform !== 'win32' && (statSync(path).mode & 0o077) !== 0) {
    logger.warn({ flag, file: path }, 'secret file is readable by other users; run chmod 600 on it');
  }
  return content;
}

/** Values of one subject field of the peer's certificate (a field may repeat). */
function subjectField(call: CallLike, field: 'CN' | 'OU'): string[] {
  const value = call.getAuthContext().sslPeerCertificate?.subject?.[field] as string | string[] | undefined;
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
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

function readAgentToken(path: string, logger: Logger): string {
  const token = readSecretFile(path, '--agent-token-file', logger).trim();
  if (!TOKEN_PATTERN.test(token)) throw new InvalidInputError(`--agent-token-file ${path} must contain one token of ${TOKEN_RULE}; make one with \`openssl rand -hex 32\``);
  return token;
}

function readOpsTokens(path: string, logger: Logger): { token: string; role: OpsRole }[] {
  const expected = `[{"token": "<${TOKEN_RULE}>", "role": "read" | "admin"}, ...]`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readSecretFile(path, '--ops-tokens-file', logger));
  } catch (error) {
    if (error instanceof InvalidInputError) throw error;
    // The parser's message quotes the file's text, which contains tokens, so it is left out.
    throw new InvalidInputError(`--ops-tokens-file ${path} is not valid JSON; expected ${expected}`);
  }
  if (!Array.isArray(parsed) || parsed.length === 0) throw new InvalidInputError(`--ops-tokens-file ${path} must contain a non-empty list ${expected}`);
  for (const [i, entry] of parsed.entries()) {
    if (typeof entry?.token !== 'string' || !TOKEN_PATTERN.test(entry.token) || (entry.role !== 'read' && entry.role !== 'admin')) {
      throw new InvalidInputError(`--ops-tokens-file ${path}, entry ${i}, must be {"token": "<${TOKEN_RULE}>", "role": "read" | "admin"}`);
    }
  }
  const tokens = parsed as { token: string; role: OpsRole }[];
  if (new Set(tokens.map((e) => e.token)).size !== tokens.length) throw new InvalidInputError(`--ops-tokens-file ${path} lists the same token twice; give every credential its own token`);
  return tokens;
}

/**
 * Checks the PEM files up front, so a wrong file is named at start-up
 * instead of failing inside the gRPC bind with an OpenSSL code.
 */
function serverCredentials(tls: NonNullable<ResolvedCoordinatorOptions['tls']>, logger: Logger): ServerCredentials {
  const ca = tls.caFile ? readFlagFile(tls.caFile, '--tls-ca') : null;
  if (ca !== null) parseCertificate(ca, tls.caFile!, '--tls-ca');
  const certChain = readFlagFile(tls.certFile, '--tls-cert');
  const privateKey = Buffer.from(readSecretFile(tls.keyFile, '--tls-key', logger));
  checkCertificateAndKey(certChain, privateKey, { certFile: tls.certFile, keyFile: tls.keyFile });
  // With a CA, the third argument makes the TLS handshake fail for a client without a certificate signed by it.
  return ServerCredentials.createSsl(ca, [{ cert_chain: certChain, private_key: privateKey }], ca !== null);
}

export function createAuthenticator(options: ResolvedCoordinatorOptions, logger: Logger): Authenticator {
  let credentials: ServerCredentials;
  let mode: Authenticator['mode'];
  if (options.tls) {
    credentials = serverCredentials(options.tls, logger);
    mode = options.tls.caFile ? 'mutual-tls' : 'tls';
  } else {
    credentials = ServerCredentials.createInsecure();
    mode = 'plaintext';
    logger.warn({ host: options.host }, 'serving gRPC in plaintext: traffic and tokens are not encrypted; use --tls-cert/--tls-key/--tls-ca outside a trusted host');
  }

  const agentToken = options.agentTokenFile ? readAgentToken(options.agentTokenFile, logger) : null;
  const opsTokens = options.opsTokensFile ? readOpsTokens(options.opsTokensFile, logger) : null;
  if (agentToken !== null && opsTokens?.some((e) => sameSecret(e.token, agentToken))) {
    throw new InvalidInputError(`--agent-token-file ${options.agentTokenFile} contains a token that is also an ops token; agents and ops clients need different tokens`);
  }
  if (mode !== 'mutual-tls' && agentToken === null) logger.warn('agents are not authenticated: any client may register as any node; give --tls-ca or --agent-token-file');
  if (opsTokens === null) logger.warn('ops calls are not authenticated: any client may read configs and schedule benchmarks; give --ops-tokens-file');

  return {
    credentials,
    mode,
    agentIdentity(call) {
      let nodeName: string | null = null;
      if (mode === 'mutual-tls') {
        const commonName = subjectField(call, 'CN')[0];
        if (!commonName) throw grpcError(status.UNAUTHENTICATED, 'a client certificate with the node name as its common name is required');
        if (!subjectField(call, 'OU').includes(AGENT_CERTIFICATE_UNIT)) {
          throw grpcError(status.PERMISSION_DENIED, `client certificate ${commonName} is not an agent certificate (OU=${AGENT_CERTIFICATE_UNIT}); make one with make-certs.sh --node NAME`);
        }
        nodeName = commonName;
      }
      // With mutual TLS a configured token is required as well.
      if (agentToken !== null) {
        const presented = bearerToken(call.metadata);
        if (presented === null || !sameSecret(presented, agentToken)) throw grpcError(status.UNAUTHENTICATED, 'missing or wrong agent token; pass --token-file to hwopt-agent');
      }
      return nodeName;
    },
    authorizeOps(call, role) {
      if (mode === 'mutual-tls' && !subjectField(call, 'OU').includes(OPS_CERTIFICATE_UNIT)) {
        const commonName = subjectField(call, 'CN')[0] ?? '(no common name)';
        throw grpcError(status.PERMISSION_DENIED, `client certificate ${commonName} is not an ops certificate (OU=${OPS_CERTIFICATE_UNIT}); make one with make-certs.sh --ops NAME`);
      }
      if (opsTokens === null) return;
      const presented = bearerToken(call.metadata);
      const entry = presented === null ? undefined : opsTokens.find((e) => sameSecret(e.token, presented));
      if (!entry) throw grpcError(status.UNAUTHENTICATED, 'missing or unknown ops token; pass --token or HWOPT_TOKEN');
      if (role === 'admin' && entry.role !== 'admin') {
        throw grpcError(status.PERMISSION_DENIED, 'this ops token is read-only; scheduling benchmarks and other changes need an admin token');
      }
    },
  };
}
