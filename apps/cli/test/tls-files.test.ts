import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_BIN, CLI_BIN, REPO_ROOT } from '@hwopt/local-fleet';

// Wrong TLS files are named with their flag in one line, before any
// connection is tried, instead of as an OpenSSL error code.
describe('client TLS files', () => {
  let dir: string;
  const certs = (name: string) => join(dir, 'certs', name);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hwopt-tls-files-'));
    await execa('bash', [join(REPO_ROOT, 'tools/certs/make-certs.sh'), join(dir, 'certs'), '--node', 'node-a', '--ops', 'alice']);
    writeFileSync(join(dir, 'not-a-key.pem'), 'this is not a key\n');
  }, 60_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const cases: [string, () => string[], string][] = [
    ['a key file that is not a key', () => ['--tls-cert', certs('ops-alice.pem'), '--tls-key', join(dir, 'not-a-key.pem')], 'is not an unencrypted PEM private key'],
    ['the key of another certificate', () => ['--tls-cert', certs('ops-alice.pem'), '--tls-key', certs('node-node-a-key.pem')], 'is not the private key of --tls-cert'],
    ['a CA file that is not a certificate', () => ['--tls-ca', join(dir, 'not-a-key.pem')], '--tls-ca'],
  ];

  for (const [what, extra, message] of cases) {
    it(`names ${what} in the CLI`, async () => {
      const flags = extra();
      const args = ['fleet', '--coordinator', '127.0.0.1:1', ...(flags.includes('--tls-ca') ? [] : ['--tls-ca', certs('ca.pem')]), ...flags];
      const result = await execa(process.execPath, [CLI_BIN, ...args], { reject: false, timeout: 30_000 });
      expect(result.exitCode).toBe(2);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toContain(message);
      expect(result.stderr).not.toContain('error:');
    });
  }

  it('points an unreachable TLS call at the certificates', async () => {
    // A listener that closes every connection: TCP connects, so grpc-js starts TLS towards an IP address, and the handshake fails.
    const server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const args = ['fleet', '--coordinator', `127.0.0.1:${port}`, '--timeout', '2', '--tls-ca', certs('ca.pem'), '--tls-cert', certs('ops-alice.pem'), '--tls-key', certs('ops-alice-key.pem')];
    const result = await execa(process.execPath, [CLI_BIN, ...args], { reject: false, timeout: 30_000 });
    server.close();
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('cannot reach the coordinator');
    expect(result.stderr).toContain('TLS handshake');
    // grpc-js sets an IP address as the TLS server name, which Node warns about unless the CLI drops it.
    expect(result.stderr).not.toContain('DEP0123');
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('names a bad key file in the agent', async () => {
    const args = ['run', '--coordinator', '127.0.0.1:1', '--node-name', 'node-a', '--state-dir', join(dir, 'agent'), '--twin', join(REPO_ROOT, 'libs/twin/twins/t4.json'), '--tls-ca', certs('ca.pem'), '--tls-cert', certs('node-node-a.pem'), '--tls-key', join(dir, 'not-a-key.pem')];
    const result = await execa(process.execPath, [AGENT_BIN, ...args], { reject: false, timeout: 30_000 });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('--tls-key');
    expect(result.stderr).toContain('is not an unencrypted PEM private key');
  });
});
