import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { createTestDatabase, stopTestServer } from '@hwopt/db';
import { AGENT_BIN, CLI_BIN, COORDINATOR_BIN, freePort, LocalFleet } from '@hwopt/local-fleet';

const BINARIES = [
  { name: 'hwopt', bin: CLI_BIN, badArgs: ['configs', '--bogus'] },
  { name: 'hwopt-agent', bin: AGENT_BIN, badArgs: ['run', '--node-name', 'bad name!'] },
  { name: 'hwopt-coordinator', bin: COORDINATOR_BIN, badArgs: ['--dataset-size', 'many'] },
];

afterAll(stopTestServer);

describe.each(BINARIES)('$name command line', ({ name, bin, badArgs }) => {
  it('prints help and exits 0', async () => {
    const result = await execa(process.execPath, [bin, '--help'], { reject: false });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain(`Usage: ${name}`);
  });

  it('rejects bad arguments in one line', async () => {
    const result = await execa(process.execPath, [bin, ...badArgs], { reject: false, timeout: 30_000 });
    expect(result.exitCode).toBe(2);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.length).toBeGreaterThan(10);
  });
});

describe('shutdown on signals', () => {
  it('stops the agent on SIGTERM while it waits to connect', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'hwopt-agent-signal-'));
    try {
      const port = await freePort();
      const agent = execa(process.execPath, [AGENT_BIN, 'run', '--coordinator', `127.0.0.1:${port}`, '--node-name', 'signal-test', '--twin', join(import.meta.dirname, '../../../libs/twin/twins/t4.json'), '--state-dir', stateDir], { reject: false });
      // Signal only once the agent runs its connect loop, not while it loads.
      await new Promise<void>((resolve) => {
        agent.stderr!.on('data', (chunk: Buffer) => {
          if (chunk.toString().includes('agent session state')) resolve();
        });
      });
      agent.kill('SIGTERM');
      const result = await agent;
      expect(result.exitCode).toBe(0);
      expect(result.stderr).toContain('SIGTERM received');
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  it.each(['SIGINT', 'SIGTERM'] as const)('stops the coordinator on %s', async (signal) => {
    const db = await createTestDatabase({ migrate: false });
    const fleet = new LocalFleet(mkdtempSync(join(tmpdir(), 'hwopt-coordinator-signal-')));
    try {
      const coordinator = await fleet.startCoordinator({ databaseUrl: db.url });
      process.kill(coordinator.pid, signal);
      const result = await coordinator.process;
      expect(result.exitCode).toBe(0);
    } finally {
      await fleet.stop();
      await db.drop();
      rmSync(fleet.workDir, { recursive: true, force: true });
    }
  });
});
