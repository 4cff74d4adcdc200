import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, status } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidInputError, silentLogger } from '@hwopt/common';
import { createAuthenticator } from '../src/auth.ts';
import { isLoopback, resolveCoordinatorOptions, type CoordinatorOptions } from '../src/options.ts';
import { makeCerts } from './security-helpers.ts';

// Start-up checks of the security options: an exposed address needs TLS
// and authenticated agents and ops clients, and secret files are checked
// without their content reaching an error message or a log.
describe('security options', () => {
  // Paths are known before the files exist, because the case tables below are built when the tests are collected.
  const dir = mkdtempSync(join(tmpdir(), 'hwopt-security-options-'));
  const certs = join(dir, 'certs');

  beforeAll(async () => {
    await makeCerts(certs, ['--node', 'node-a']);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const tls = () => ({ certFile: join(certs, 'server.pem'), keyFile: join(certs, 'server-key.pem'), caFile: join(certs, 'ca.pem') });
  const secured = (overrides: CoordinatorOptions = {}): CoordinatorOptions => ({ listen: '0.0.0.0:50551', tls: tls(), opsTokensFile: join(certs, 'ops-tokens.json'), ...overrides });

  describe('isLoopback', () => {
    it.each(['localhost', '127.0.0.1', '127.10.0.3', '[::1]'])('accepts %s', (host) => {
      expect(isLoopback(host)).toBe(true);
    });
    it.each(['0.0.0.0', '10.0.0.5', '[::]', '127.example.com', 'coordinator'])('rejects %s', (host) => {
      expect(isLoopback(host)).toBe(false);
    });
  });

  describe('exposed address', () => {
    it('accepts mutual TLS with ops tokens', () => {
      expect(resolveCoordinatorOptions(secured()).tls?.caFile).toBe(join(certs, 'ca.pem'));
    });

    it('accepts TLS with an agent token', () => {
      const options = resolveCoordinatorOptions(secured({ tls: { ...tls(), caFile: undefined }, agentTokenFile: join(certs, 'agent.token') }));
      expect(options.agentTokenFile).toBe(join(certs, 'agent.token'));
    });

    const rejected: [string, CoordinatorOptions, string][] = [
      ['plaintext', { listen: '0.0.0.0:50551', opsTokensFile: 'x' }, '--tls-cert'],
      ['a hostname that starts with 127.', { listen: '127.example.com:50551' }, '--tls-cert'],
      ['TLS without agent authentication', secured({ tls: { ...tls(), caFile: undefined } }), '--agent-token-file'],
      ['no ops tokens', secured({ opsTokensFile: undefined }), '--ops-tokens-file'],
    ];
    for (const [what, options, flag] of rejected) {
      it(`rejects ${what}`, () => {
        expect(() => resolveCoordinatorOptions(options)).toThrow(InvalidInputError);
        expect(() => resolveCoordinatorOptions(options)).toThrow(flag);
      });
    }

    it('serves anything with --insecure', () => {
      expect(resolveCoordinatorOptions({ listen: '0.0.0.0:50551', insecure: true }).tls).toBeUndefined();
    });

    it('serves plaintext on loopback without flags', () => {
      expect(resolveCoordinatorOptions({ listen: '127.0.0.1:0' }).tls).toBeUndefined();
    });
  });

  describe('createAuthenticator', () => {
    const token = 'a'.repeat(20) + 'SECRET-TOKEN-VALUE';
    const authenticator = (options: CoordinatorOptions, logger = silentLogger()) => createAuthenticator(resolveCoordinatorOptions({ listen: '127.0.0.1:0', ...options }), logger);
    const file = (name: string, content: string) => {
      const path = join(dir, name);
      writeFileSync(path, content, { mode: 0o600 });
      return path;
    };

    it('selects mutual TLS with a CA', () => {
      expect(authenticator({ tls: tls() }).mode).toBe('mutual-tls');
      expect(authenticator({ tls: { ...tls(), caFile: undefined } }).mode).toBe('tls');
      expect(authenticator({}).mode).toBe('plaintext');
    });

    const badFiles: [string, () => CoordinatorOptions, string][] = [
      ['a short agent token', () => ({ agentTokenFile: file('short.token', 'abc\n') }), '--agent-token-file'],
      ['an agent token with spaces', () => ({ agentTokenFile: file('spaces.token', `${token} ${token}`) }), '--agent-token-file'],
      ['ops tokens that are not JSON', () => ({ opsTokensFile: file('bad.json', `[{"token": "${token}", role: admin}]`) }), 'not valid JSON'],
      ['an empty ops token list', () => ({ opsTokensFile: file('empty.json', '[]') }), 'non-empty'],
      ['an unknown role', () => ({ opsTokensFile: file('role.json', JSON.stringify([{ token, role: 'root' }])) }), 'entry 0'],
      ['a duplicated ops token', () => ({ opsTokensFile: file('dup.json', JSON.stringify([{ token, role: 'read' }, { token, role: 'admin' }])) }), 'same token twice'],
      ['an agent token that is an ops token', () => ({ agentTokenFile: file('agent.token', token), opsTokensFile: file('ops.json', JSON.stringify([{ token, role: 'read' }])) }), 'also an ops token'],
      ['a missing key file', () => ({ tls: { ...tls(), keyFile: join(dir, 'missing-key.pem') } }), 'ENOENT'],
      ['a key that is not PEM', () => ({ tls: { ...tls(), keyFile: file('junk-key.pem', `junk ${token}`) } }), '--tls-key'],
      ['a key of another certificate', () => ({ tls: { ...tls(), keyFile: join(certs, 'node-node-a-key.pem') } }), 'not the private key'],
      ['a certificate that is not PEM', () => ({ tls: { ...tls(), certFile: file('junk.pem', 'junk') } }), '--tls-cert'],
    ];
    for (const [what, options, expected] of badFiles) {
      it(`rejects ${what} without quoting it`, () => {
        let error: unknown;
        try {
          authenticator(options());
        } catch (caught) {
          error = caught;
        }
        expect(error).toBeInstanceOf(InvalidInputError);
        expect((error as Error).message).toContain(expected);
        expect((error as Error).message).not.toContain('SECRET-TOKEN-VALUE');
      });
    }

    it('warns about a key file other users may read', () => {
      const lines: string[] = [];
      const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
      const keyFile = join(dir, 'open-key.pem');
      copyFileSync(join(certs, 'server-key.pem'), keyFile);
      chmodSync(keyFile, 0o644);
      authenticator({ tls: { ...tls(), keyFile } }, logger);
      expect(lines.join('')).toContain('chmod 600');
      expect(lines.join('')).not.toContain(readFileSync(keyFile, 'utf8').split('\n')[1]);
    });

    it('checks ops roles', () => {
      const opsTokensFile = file('roles.json', JSON.stringify([{ token: `${token}-read`, role: 'read' }, { token: `${token}-admin`, role: 'admin' }]));
      const auth = authenticator({ opsTokensFile });
      const call = (bearer?: string) => {
        const metadata = new Metadata();
        if (bearer) metadata.set('authorization', `Bearer ${bearer}`);
        return { metadata, getAuthContext: () => ({}) };
      };
      expect(() => auth.authorizeOps(call(`${token}-read`), 'read')).not.toThrow();
      expect(() => auth.authorizeOps(call(`${token}-read`), 'admin')).toThrow(expect.objectContaining({ code: status.PERMISSION_DENIED }));
      expect(() => auth.authorizeOps(call(`${token}-admin`), 'admin')).not.toThrow();
      expect(() => auth.authorizeOps(call(), 'read')).toThrow(expect.objectContaining({ code: status.UNAUTHENTICATED }));
      expect(() => auth.authorizeOps(call(`${token}-other`), 'read')).toThrow(expect.objectContaining({ code: status.UNAUTHENTICATED }));
    });
  });
});
