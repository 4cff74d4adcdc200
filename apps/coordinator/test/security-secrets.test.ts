import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, stopTestServer, type TestDatabase } from '@hwopt/db';
import { COORDINATOR_BIN, freePort, LocalFleet, OpsHarnessClient, startProcess, waitFor } from '@hwopt/local-fleet';
import { bundledTwinPath } from '@hwopt/twin';
import { bearer, makeCerts, RawSession, t4Hello } from './security-helpers.ts';

/** Distinct strings a leak would copy into a log verbatim. */
const WRONG_AGENT_TOKEN = 'wrong-agent-token-5f1d7c0e9b2a';
const WRONG_OPS_TOKEN = 'wrong-ops-token-0c4e8a6d2f91';
const FALLBACK_PASSWORD = 'db-password-7e3a91c4d2';

// Tokens, the database password and key material must stay out of logs
// and error details, at debug level and when start-up fails. The
// coordinator and an agent run as real processes so their logs go through
// the production logger and its redaction.
describe('secrets in logs and errors', () => {
  let db: TestDatabase;
  let workDir: string;
  let certs: string;
  let fleet: LocalFleet;
  let databaseUrl: string;
  let password: string;
  let agentToken: string;
  let readToken: string;
  let adminToken: string;
  const details: string[] = [];

  beforeAll(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'hwopt-secrets-'));
    certs = await makeCerts(join(workDir, 'certs'));
    agentToken = readFileSync(join(certs, 'agent.token'), 'utf8').trim();
    readToken = readFileSync(join(certs, 'ops-read.token'), 'utf8').trim();
    adminToken = readFileSync(join(certs, 'ops-admin.token'), 'utf8').trim();

    db = await createTestDatabase({ migrate: false });
    // The embedded test server has a password in its URL; a trust-auth server ignores the one added here.
    const url = new URL(db.url);
    if (!url.password) url.password = FALLBACK_PASSWORD;
    password = decodeURIComponent(url.password);
    databaseUrl = url.toString();

    fleet = new LocalFleet(join(workDir, 'fleet'));
    await fleet.startCoordinator({
      databaseUrl,
      extraArgs: ['--agent-token-file', join(certs, 'agent.token'), '--ops-tokens-file', join(certs, 'ops-tokens.json')],
      env: { HWOPT_LOG_LEVEL: 'debug' },
    });
  });

  afterAll(async () => {
    await fleet?.stop();
    await db?.drop();
    await stopTestServer();
    rmSync(workDir, { recursive: true, force: true });
  });

  it('rejects agents with a missing or wrong token', async () => {
    for (const metadata of [undefined, bearer(WRONG_AGENT_TOKEN), bearer(readToken)]) {
      const agent = new RawSession(fleet.address, undefined, metadata);
      agent.send({ hello: t4Hello('secret-node') });
      const closed = await agent.closed;
      agent.close();
      expect(closed.code).toBe(status.UNAUTHENTICATED);
      details.push(closed.details);
    }
  });

  it('registers an agent process with the token file', async () => {
    fleet.startAgent({ nodeName: 'secret-node', twinFile: bundledTwinPath('t4'), extraArgs: ['--token-file', join(certs, 'agent.token')] });
    const ops = new OpsHarnessClient(fleet.address, { token: readToken });
    try {
      const node = await waitFor('the agent online', 60_000, async () => (await ops.fleet()).find((n) => n.nodeName === 'secret-node' && n.state !== 'offline'));
      expect(node.nodeName).toBe('secret-node');
    } finally {
      ops.close();
    }
  });

  it('rejects ops calls with a wrong or read-only token', async () => {
    const calls: [string, () => Promise<unknown>, status][] = [
      ['wrong token', () => new OpsHarnessClient(fleet.address, { token: WRONG_OPS_TOKEN }).configs(), status.UNAUTHENTICATED],
      ['agent token', () => new OpsHarnessClient(fleet.address, { token: agentToken }).configs(), status.UNAUTHENTICATED],
      ['read token', () => new OpsHarnessClient(fleet.address, { token: readToken }).scheduleBenchmark({ nodeName: 'secret-node' }), status.PERMISSION_DENIED],
    ];
    for (const [what, call, code] of calls) {
      const error = (await call().then(
        () => null,
        (e: { code: number; details: string }) => e,
      )) as { code: number; details: string } | null;
      expect(error?.code, what).toBe(code);
      details.push(error?.details ?? '');
    }
    const admin = new OpsHarnessClient(fleet.address, { token: adminToken });
    await expect(admin.scheduleBenchmark({ nodeName: 'secret-node' })).resolves.toMatchObject({ nodeNames: ['secret-node'] });
    admin.close();
  });

  it('keeps secrets out of error details', () => {
    expect(details.length).toBe(6);
    for (const detail of details) {
      for (const secret of [agentToken, readToken, adminToken, WRONG_AGENT_TOKEN, WRONG_OPS_TOKEN, password]) {
        expect(detail).not.toContain(secret);
      }
    }
  });

  it('keeps secrets out of the coordinator and agent logs', async () => {
    await fleet.stop();
    const coordinatorLog = readFileSync(fleet.coordinator!.logFile, 'utf8');
    const agentLog = readFileSync(join(fleet.logDir, 'agent-secret-node.log'), 'utf8');
    // The logs must contain the events, or the checks below would pass on empty files.
    expect(coordinatorLog).toContain('agent session rejected');
    expect(coordinatorLog).toContain('ops call rejected');
    expect(coordinatorLog).toContain('coordinator listening');
    expect(agentLog).toContain('secret-node');
    for (const [name, secret] of Object.entries({ agentToken, readToken, adminToken, WRONG_AGENT_TOKEN, WRONG_OPS_TOKEN, password })) {
      expect(coordinatorLog.includes(secret), `coordinator log contains ${name}`).toBe(false);
      expect(agentLog.includes(secret), `agent log contains ${name}`).toBe(false);
    }
  });

  it('keeps the password out of a failed start-up', async () => {
    // Nothing listens on the port, so connecting to the database fails.
    const unreachable = new URL(databaseUrl);
    unreachable.port = String(await freePort());
    const coordinator = startProcess('coordinator-no-db', COORDINATOR_BIN, ['--listen', `127.0.0.1:${await freePort()}`, '--ops-tokens-file', join(certs, 'ops-tokens.json')], {
      logDir: fleet.logDir,
      env: { DATABASE_URL: unreachable.toString(), HWOPT_LOG_LEVEL: 'debug' },
    });
    const result = await coordinator.process;
    expect(result.exitCode).not.toBe(0);
    const log = readFileSync(coordinator.logFile, 'utf8');
    expect(log).toContain('coordinator failed to start');
    expect(log.includes(password), 'log contains the database password').toBe(false);
    expect(log.includes(readToken), 'log contains an ops token').toBe(false);
  });
});
