import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '@hwopt/common';
import { createTestDatabase, stopTestServer, type TestDatabase } from '@hwopt/db';
import { Coordinator } from '../src/coordinator.ts';
import { bearer, makeCerts, RawSession, t4Hello, tlsCredentials } from './security-helpers.ts';

// The shared-token mode for small setups: TLS without client certificates,
// and every agent sends the same token.
describe('coordinator with a shared agent token', () => {
  let db: TestDatabase;
  let workDir: string;
  let certs: string;
  let coordinator: Coordinator;
  let address: string;
  let agentToken: string;
  const sessions: RawSession[] = [];

  const session = (...args: ConstructorParameters<typeof RawSession>) => {
    const opened = new RawSession(...args);
    sessions.push(opened);
    return opened;
  };

  beforeAll(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'hwopt-token-'));
    certs = await makeCerts(join(workDir, 'certs'));
    agentToken = readFileSync(join(certs, 'agent.token'), 'utf8').trim();
    db = await createTestDatabase();
    coordinator = new Coordinator(
      {
        listen: '127.0.0.1:0',
        databaseUrl: db.url,
        tls: { certFile: join(certs, 'server.pem'), keyFile: join(certs, 'server-key.pem') },
        agentTokenFile: join(certs, 'agent.token'),
        opsTokensFile: join(certs, 'ops-tokens.json'),
      },
      silentLogger(),
    );
    await coordinator.start();
    address = `127.0.0.1:${coordinator.port}`;
  });

  afterAll(async () => {
    for (const opened of sessions) opened.close();
    await coordinator?.stop();
    await db?.drop();
    await stopTestServer();
    rmSync(workDir, { recursive: true, force: true });
  });

  it('serves TLS without client certificates', () => {
    expect(coordinator.state).toBe('serving');
  });

  it('welcomes an agent with the token', async () => {
    const agent = session(address, tlsCredentials(certs), bearer(agentToken));
    agent.send({ hello: t4Hello('token-node') });
    const welcome = await agent.nextOf('a welcome', (m) => m.welcome);
    expect(welcome.nodeId).not.toBe('');
  });

  it('rejects an agent without a token', async () => {
    const agent = session(address, tlsCredentials(certs));
    agent.send({ hello: t4Hello('token-node') });
    const closed = await agent.closed;
    expect(closed.code).toBe(status.UNAUTHENTICATED);
  });

  it('rejects an agent with a wrong token', async () => {
    // Same length as the real token; 'z' is not a hex digit, so it never matches.
    const agent = session(address, tlsCredentials(certs), bearer('z'.repeat(agentToken.length)));
    agent.send({ hello: t4Hello('token-node') });
    const closed = await agent.closed;
    expect(closed.code).toBe(status.UNAUTHENTICATED);
    expect(closed.details).not.toContain(agentToken.slice(0, 16));
  });

  it('rejects an ops token used as the agent token', async () => {
    const opsToken = readFileSync(join(certs, 'ops-admin.token'), 'utf8').trim();
    const agent = session(address, tlsCredentials(certs), bearer(opsToken));
    agent.send({ hello: t4Hello('token-node') });
    const closed = await agent.closed;
    expect(closed.code).toBe(status.UNAUTHENTICATED);
  });
});
