import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, status } from '@grpc/grpc-js';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '@hwopt/common';
import { createTestDatabase, stopTestServer, type TestDatabase } from '@hwopt/db';
import { AGENT_BIN, CLI_BIN, HealthClient, OpsHarnessClient, startProcess, waitFor, type ManagedProcess } from '@hwopt/local-fleet';
import { bundledTwinPath } from '@hwopt/twin';
import { Coordinator } from '../src/coordinator.ts';
import { makeCerts, RawSession, t4Hello, tlsCredentials } from './security-helpers.ts';

// Mutual TLS as the recommended deployment: agents and ops clients need a
// certificate from the configured CA, agents may register only as the node
// their certificate names, and ops calls need a token of the right role.
describe('coordinator with mutual TLS', () => {
  let db: TestDatabase;
  let workDir: string;
  let certs: string;
  let otherCa: string;
  let coordinator: Coordinator;
  let address: string;
  let readToken: string;
  let adminToken: string;
  const sessions: RawSession[] = [];
  let agentProcess: ManagedProcess | undefined;

  const session = (...args: ConstructorParameters<typeof RawSession>) => {
    const opened = new RawSession(...args);
    sessions.push(opened);
    return opened;
  };

  beforeAll(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'hwopt-mtls-'));
    certs = await makeCerts(join(workDir, 'certs'), ['--node', 'node-a', '--node', 'node-b']);
    otherCa = await makeCerts(join(workDir, 'other-ca'), ['--node', 'node-a']);
    readToken = readFileSync(join(certs, 'ops-read.token'), 'utf8').trim();
    adminToken = readFileSync(join(certs, 'ops-admin.token'), 'utf8').trim();
    db = await createTestDatabase();
    coordinator = new Coordinator(
      {
        listen: '127.0.0.1:0',
        databaseUrl: db.url,
        tls: { certFile: join(certs, 'server.pem'), keyFile: join(certs, 'server-key.pem'), caFile: join(certs, 'ca.pem') },
        opsTokensFile: join(certs, 'ops-tokens.json'),
      },
      silentLogger(),
    );
    await coordinator.start();
    address = `127.0.0.1:${coordinator.port}`;
  });

  afterAll(async () => {
    for (const opened of sessions) opened.close();
    await agentProcess?.stop();
    await coordinator?.stop();
    await db?.drop();
    await stopTestServer();
    rmSync(workDir, { recursive: true, force: true });
  });

  it('welcomes a node with its own certificate', async () => {
    const agent = session(address, tlsCredentials(certs, 'node-node-a'));
    agent.send({ hello: t4Hello('node-a') });
    const welcome = await agent.nextOf('a welcome', (m) => m.welcome);
    expect(welcome.nodeId).not.toBe('');
  });

  it('rejects a client without a certificate', async () => {
    const agent = session(address, tlsCredentials(certs));
    agent.send({ hello: t4Hello('node-a') });
    const closed = await agent.closed;
    expect(closed.code).toBe(status.UNAVAILABLE);
  });

  it('rejects a certificate from another CA', async () => {
    // The client trusts the real server but presents a node-a certificate signed by a different CA.
    const agent = session(address, tlsCredentials(otherCa, 'node-node-a', certs));
    agent.send({ hello: t4Hello('node-a') });
    const closed = await agent.closed;
    expect(closed.code).toBe(status.UNAVAILABLE);
  });

  it('rejects a server outside the trusted CA', async () => {
    const agent = session(address, tlsCredentials(certs, 'node-node-a', otherCa));
    agent.send({ hello: t4Hello('node-a') });
    const closed = await agent.closed;
    expect(closed.code).toBe(status.UNAVAILABLE);
  });

  it('rejects a plaintext client', async () => {
    const agent = session(address, credentials.createInsecure());
    agent.send({ hello: t4Hello('node-a') });
    const closed = await agent.closed;
    expect(closed.code).toBe(status.UNAVAILABLE);
  });

  it("denies a certificate claiming another node's name", async () => {
    const agent = session(address, tlsCredentials(certs, 'node-node-a'));
    agent.send({ hello: t4Hello('node-b') });
    const closed = await agent.closed;
    expect(closed.code).toBe(status.PERMISSION_DENIED);
    expect(closed.details).toContain('node-a');
    const fleet = await opsClient(readToken).fleet();
    expect(fleet.map((n) => n.nodeName)).not.toContain('node-b');
  });

  it('denies an ops certificate registering a node', async () => {
    const agent = session(address, tlsCredentials(certs, 'ops-hwopt-ops'));
    agent.send({ hello: t4Hello('hwopt-ops') });
    const closed = await agent.closed;
    expect(closed.code).toBe(status.PERMISSION_DENIED);
    expect(closed.details).toContain('not an agent certificate');
    const fleet = await opsClient(readToken).fleet();
    expect(fleet.map((n) => n.nodeName)).not.toContain('hwopt-ops');
  });

  it('denies a node certificate an ops call', async () => {
    const ops = new OpsHarnessClient(address, { credentials: tlsCredentials(certs, 'node-node-a'), token: adminToken });
    const error = await ops.configs().catch((e: { code: number; details: string }) => e);
    ops.close();
    expect(error).toMatchObject({ code: status.PERMISSION_DENIED });
    expect((error as { details: string }).details).toContain('not an ops certificate');
  });

  it('serves ops reads to a read-only token', async () => {
    const ops = opsClient(readToken);
    await expect(ops.configs()).resolves.toEqual([]);
    await expect(ops.fleet()).resolves.toBeInstanceOf(Array);
  });

  it('denies a read-only token an admin call', async () => {
    const error = await opsClient(readToken).scheduleBenchmark({ nodeName: 'node-a' }).catch((e: { code: number; details: string }) => e);
    expect(error).toMatchObject({ code: status.PERMISSION_DENIED });
    expect((error as { details: string }).details).not.toContain(readToken);
  });

  it('lets an admin token schedule a benchmark', async () => {
    // node-b never registered, so an authorised call reaches the lookup and gets NOT_FOUND.
    const error = await opsClient(adminToken).scheduleBenchmark({ nodeName: 'node-b' }).catch((e: { code: number }) => e);
    expect(error).toMatchObject({ code: status.NOT_FOUND });
  });

  it('rejects ops calls without a valid token', async () => {
    for (const token of [undefined, 'x'.repeat(64), `${readToken}x`]) {
      const error = await opsClient(token).configs().catch((e: { code: number; details: string }) => e);
      expect(error, String(token?.length)).toMatchObject({ code: status.UNAUTHENTICATED });
      if (token) expect((error as { details: string }).details).not.toContain(token);
    }
  });

  it('rejects an ops client without a certificate', async () => {
    const ops = new OpsHarnessClient(address, { credentials: tlsCredentials(certs), token: adminToken });
    const error = await ops.configs().catch((e: { code: number }) => e);
    ops.close();
    expect(error).toMatchObject({ code: status.UNAVAILABLE });
  });

  it('registers an agent process started with its certificate', async () => {
    agentProcess = startProcess('agent-node-b', AGENT_BIN, ['run', '--coordinator', address, '--node-name', 'node-b', '--twin', bundledTwinPath('t4'), '--state-dir', join(workDir, 'agent-node-b'), '--tls-ca', join(certs, 'ca.pem'), '--tls-cert', join(certs, 'node-node-b.pem'), '--tls-key', join(certs, 'node-node-b-key.pem')], {
      logDir: join(workDir, 'logs'),
      env: { HWOPT_LOG_LEVEL: 'info' },
    });
    const ops = opsClient(readToken);
    const node = await waitFor('node-b online', 60_000, async () => (await ops.fleet()).find((n) => n.nodeName === 'node-b' && n.state !== 'offline'));
    expect(node.nodeName).toBe('node-b');
  });

  it('serves the CLI with an ops certificate and token', async () => {
    const tlsFlags = ['--coordinator', address, '--tls-ca', join(certs, 'ca.pem'), '--tls-cert', join(certs, 'ops-hwopt-ops.pem'), '--tls-key', join(certs, 'ops-hwopt-ops-key.pem')];
    const fleet = await execa(process.execPath, [CLI_BIN, 'fleet', ...tlsFlags, '--json'], { env: { HWOPT_TOKEN: readToken }, reject: false });
    expect(fleet.exitCode, fleet.stderr).toBe(0);
    expect(JSON.parse(fleet.stdout).map((n: { nodeName: string }) => n.nodeName)).toContain('node-a');

    const denied = await execa(process.execPath, [CLI_BIN, 'benchmark', ...tlsFlags, '--node', 'node-a'], { env: { HWOPT_TOKEN: readToken }, reject: false });
    expect(denied.exitCode).not.toBe(0);
    expect(denied.stderr).toContain('PERMISSION_DENIED');
    expect(denied.stderr).not.toContain(readToken);

    const queued = await execa(process.execPath, [CLI_BIN, 'benchmark', ...tlsFlags, '--node', 'node-a', '--json'], { env: { HWOPT_TOKEN: adminToken }, reject: false });
    expect(queued.exitCode, queued.stderr).toBe(0);
    expect(JSON.parse(queued.stdout).nodeNames).toEqual(['node-a']);
  });

  it('still reports SERVING after the rejections', async () => {
    const health = new HealthClient(address, tlsCredentials(certs, 'ops-hwopt-ops'));
    await expect(health.check('', 5_000)).resolves.toBe('SERVING');
    health.close();
  });

  const opsClients: OpsHarnessClient[] = [];
  function opsClient(token: string | undefined): OpsHarnessClient {
    const ops = new OpsHarnessClient(address, { credentials: tlsCredentials(certs, 'ops-hwopt-ops'), token });
    opsClients.push(ops);
    return ops;
  }
  afterAll(() => {
    for (const ops of opsClients) ops.close();
  });
});
