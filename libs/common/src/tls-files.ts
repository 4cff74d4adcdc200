/**
 * Reads and checks TLS files before they reach grpc-js, so that a wrong
 * file is named with its flag instead of surfacing as an OpenSSL code
 * from inside grpc-js. The clients and the coordinator share these
 * checks. Messages name files, never their content.
 */
import { readFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { InvalidInputError } from './errors.ts';

export interface ClientTlsFiles {
  /** CA certificate(s) that signed the server's certificate (PEM). */
  ca: Buffer;
  /** Client certificate chain (PEM), or null without a client certificate. */
  cert: Buffer | null;
  /** Client private key (PEM), or null without a client certificate. */
  key: Buffer | null;
}

/** Reads the file a flag names, or throws InvalidInputError naming the flag and the file. */
export function readFlagFile(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new InvalidInputError(`${flag} ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'}); pass a readable file`);
  }
}

/** Parses a PEM certificate, or throws InvalidInputError naming the flag and the file. */
export function parseCertificate(pem: Buffer, path: string, flag: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new InvalidInputError(`${flag} ${path} is not a PEM certificate; pass the .pem file make-certs.sh wrote (BEGIN CERTIFICATE)`);
  }
}

function parsePrivateKey(pem: Buffer, path: string, flag: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch {
    // The parser's message is left out, so no part of the key can reach a log.
    throw new InvalidInputError(`${flag} ${path} is not an unencrypted PEM private key; pass the -key.pem file make-certs.sh wrote (BEGIN PRIVATE KEY)`);
  }
}

/**
 * Reads the CA file and, when both are given, the client certificate and
 * key. Throws InvalidInputError for an unreadable file, a file of the
 * wrong kind, a key that does not match the certificate or an expired
 * certificate.
 */
export function readClientTlsFiles(files: { caFile: string; certFile?: string; keyFile?: string }, now = Date.now()): ClientTlsFiles {
  const ca = readFlagFile(files.caFile, '--tls-ca');
  parseCertificate(ca, files.caFile, '--tls-ca');
  if (!files.certFile || !files.keyFile) {
    if (files.certFile || files.keyFile) throw new InvalidInputError('--tls-cert and --tls-key must be given together');
    return { ca, cert: null, key: null };
  }
  const cert = readFlagFile(files.certFile, '--tls-cert');
  const key = readFlagFile(files.keyFile, '--tls-key');
  checkCertificateAndKey(cert, key, { certFile: files.certFile, keyFile: files.keyFile }, now);
  return { ca, cert, key };
}

/**
 * Checks a `--tls-cert` and `--tls-key` pair: a PEM certificate, an
 * unencrypted PEM key that belongs to it, and a certificate that has not
 * expired. Throws InvalidInputError naming the flag, the file and the fix.
 */
export function checkCertificateAndKey(cert: Buffer, key: Buffer, files: { certFile: string; keyFile: string }, now = Date.now()): void {
  const certificate = parseCertificate(cert, files.certFile, '--tls-cert');
  if (!certificate.checkPrivateKey(parsePrivateKey(key, files.keyFile, '--tls-key'))) {
    throw new InvalidInputError(`--tls-key ${files.keyFile} is not the private key of --tls-cert ${files.certFile}; pass the -key.pem file made with that certificate`);
  }
  if (Date.parse(certificate.validTo) < now) {
    throw new InvalidInputError(`--tls-cert ${files.certFile} expired on ${certificate.validTo}; make a new one with make-certs.sh`);
  }
}
