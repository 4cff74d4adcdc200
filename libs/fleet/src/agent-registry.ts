/**
 * Connected agents and the requests waiting on them. Pending trials are
 * keyed by trial id, not by session, so a result an agent resends after
 * reconnecting still reaches the run that asked for it. A reconnecting
 * agent gets its pending assignments again under the same trial ids: one
 * still running or finished ignores them, one restarted without them runs
 * them, and either way each trial is stored once.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from '@hwopt/common';
import type { Architecture } from '@hwopt/optimizer';
import type { AgentLink, TrialAssignment, TrialResultReport } from './agent-messages.ts';
import { AgentNotConnectedError, DescribeFailedError, TrialLostError } from './errors.ts';

interface PendingTrial {
  nodeName: string;
  assignment: TrialAssignment;
  resolve(result: TrialResultReport): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
  /** How long the trial may wait for its disconnected agent, in ms; unset waits for `timer` alone. */
  lostAfterDisconnectMs: number | undefined;
  /** Runs while the node has no session. */
  disconnectTimer: NodeJS.Timeout | undefined;
}

export interface RunTrialOptions {
  /** Time from assignment until the trial counts as lost, in ms: the agent's trial limit plus a grace. */
  resultTimeoutMs: number;
  /**
   * Time a trial waits for its agent once the agent's session ends, in ms.
   * The trial counts as lost when no session of the node is back by then.
   * When unset, only `resultTimeoutMs` applies.
   */
  lostAfterDisconnectMs?: number;
}

interface PendingDescribe {
  nodeName: string;
  resolve(counts: number[]): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

export interface AgentSession {
  sessionId: string;
  nodeName: string;
  nodeId: string;
  link: AgentLink;
  connectedAt: Date;
}

export class AgentRegistry extends EventEmitter<{ connected: [AgentSession]; disconnected: [AgentSession, string] }> {
  readonly #sessions = new Map<string, AgentSession>();
  readonly #pendingTrials = new Map<string, PendingTrial>();
  readonly #pendingDescribes = new Map<string, PendingDescribe>();

  constructor(private readonly logger: Logger) {
    super();
  }

  /** Registers a session; an older session of the same node is closed. */
  attach(nodeName: string, nodeId: string, link: AgentLink): AgentSession {
    const previous = this.#sessions.get(nodeName);
    if (previous) {
      this.#sessions.delete(nodeName);
      previous.link.close('replaced by a newer session of the same node');
      this.emit('disconnected', previous, 'replaced');
    }
    const session: AgentSession = { sessionId: randomUUID(), nodeName, nodeId, link, connectedAt: new Date() };
    this.#sessions.set(nodeName, session);
    let resent = 0;
    for (const pending of this.#pendingTrials.values()) {
      if (pending.nodeName !== nodeName) continue;
      clearTimeout(pending.disconnectTimer);
      pending.disconnectTimer = undefined;
      link.assignTrial(pending.assignment);
      resent += 1;
    }
    this.logger.info({ node: nodeName, sessionId: session.sessionId, resentAssignments: resent }, 'agent connected');
    this.emit('connected', session);
    return session;
  }

  /**
   * Forgets a session. Pending trials keep waiting, since the agent may
   * reconnect and resend, but no longer than their `lostAfterDisconnectMs`.
   */
  detach(session: AgentSession, reason: string): void {
    if (this.#sessions.get(session.nodeName) !== session) return;
    this.#sessions.delete(session.nodeName);
    this.logger.info({ node: session.nodeName, sessionId: session.sessionId, reason }, 'agent disconnected');
    for (const [id, pending] of this.#pendingTrials) {
      if (pending.nodeName !== session.nodeName || pending.lostAfterDisconnectMs === undefined || pending.disconnectTimer) continue;
      const waitMs = pending.lostAfterDisconnectMs;
      pending.disconnectTimer = setTimeout(() => {
        if (this.#pendingTrials.get(id) !== pending || this.#sessions.has(pending.nodeName)) return;
        this.#settle(id, pending);
        pending.reject(new TrialLostError(pending.nodeName, id, `its agent disconnected (${reason}) and did not come back within ${Math.round(waitMs / 1000)} s`));
      }, waitMs);
      pending.disconnectTimer.unref();
    }
    for (const [id, pending] of this.#pendingDescribes) {
      if (pending.nodeName === session.nodeName) {
        clearTimeout(pending.timer);
        this.#pendingDescribes.delete(id);
        pending.reject(new AgentNotConnectedError(session.nodeName));
      }
    }
    this.emit('disconnected', session, reason);
  }

  session(nodeName: string): AgentSession | undefined {
    return this.#sessions.get(nodeName);
  }

  isConnected(nodeName: string): boolean {
    return this.#sessions.has(nodeName);
  }

  connectedNodeNames(): string[] {
    return [...this.#sessions.keys()];
  }

  /**
   * Sends a trial to a node and resolves with its result. Rejects with
   * TrialLostError when no result arrives within `resultTimeoutMs`, or
   * when the node stays disconnected for `lostAfterDisconnectMs`.
   * A number is read as `resultTimeoutMs`.
   */
  runTrial(nodeName: string, assignment: TrialAssignment, options: RunTrialOptions | number): Promise<TrialResultReport> {
    const { resultTimeoutMs, lostAfterDisconnectMs } = typeof options === 'number' ? { resultTimeoutMs: options, lostAfterDisconnectMs: undefined } : options;
    const session = this.#sessions.get(nodeName);
    if (!session) return Promise.reject(new AgentNotConnectedError(nodeName));
    return new Promise<TrialResultReport>((resolve, reject) => {
      const timer = setTimeout(() => {
        const pending = this.#pendingTrials.get(assignment.trialId);
        if (pending) this.#settle(assignment.trialId, pending);
        this.#sessions.get(nodeName)?.link.cancelTrial(assignment.trialId, 'no result before the coordinator timeout');
        reject(new TrialLostError(nodeName, assignment.trialId, `no result within ${Math.round(resultTimeoutMs / 1000)} s`));
      }, resultTimeoutMs);
      timer.unref();
      this.#pendingTrials.set(assignment.trialId, { nodeName, assignment, resolve, reject, timer, lostAfterDisconnectMs, disconnectTimer: undefined });
      session.link.assignTrial(assignment);
    });
  }

  /** Count of trials waiting for a result. */
  get pendingTrialCount(): number {
    return this.#pendingTrials.size;
  }

  #settle(trialId: string, pending: PendingTrial): void {
    clearTimeout(pending.timer);
    clearTimeout(pending.disconnectTimer);
    this.#pendingTrials.delete(trialId);
  }

  /** Returns the node a pending trial was sent to, or undefined when no trial waits under that id. */
  pendingTrialNode(trialId: string): string | undefined {
    return this.#pendingTrials.get(trialId)?.nodeName;
  }

  /** Hands a stored result to the run waiting for it. */
  completeTrial(result: TrialResultReport): void {
    const pending = this.#pendingTrials.get(result.trialId);
    if (!pending) return;
    this.#settle(result.trialId, pending);
    pending.resolve(result);
  }

  /** Fails every pending trial of a node, for example when its run is cancelled. */
  failPendingTrials(nodeName: string, error: Error): void {
    for (const [id, pending] of this.#pendingTrials) {
      if (pending.nodeName !== nodeName) continue;
      this.#settle(id, pending);
      pending.reject(error);
    }
  }

  describe(nodeName: string, workload: string, architectures: Architecture[], timeoutMs: number): Promise<number[]> {
    const session = this.#sessions.get(nodeName);
    if (!session) return Promise.reject(new AgentNotConnectedError(nodeName));
    const requestId = randomUUID();
    return new Promise<number[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pendingDescribes.delete(requestId);
        reject(new DescribeFailedError(nodeName, workload, `no response within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      timer.unref();
      this.#pendingDescribes.set(requestId, {
        nodeName,
        resolve: (counts) => {
          if (counts.length !== architectures.length) {
            reject(new DescribeFailedError(nodeName, workload, `${counts.length} counts returned for ${architectures.length} architectures`));
          } else {
            resolve(counts);
          }
        },
        reject,
        timer,
      });
      session.link.requestDescribe(requestId, workload, architectures);
    });
  }

  completeDescribe(nodeName: string, requestId: string, counts: number[], error: string | null): void {
    const pending = this.#pendingDescribes.get(requestId);
    if (!pending || pending.nodeName !== nodeName) return;
    clearTimeout(pending.timer);
    this.#pendingDescribes.delete(requestId);
    if (error) pending.reject(new DescribeFailedError(nodeName, '(requested)', error));
    else pending.resolve(counts);
  }

  /** Closes every session and rejects what waits on them; used at shutdown. */
  closeAll(reason: string): void {
    for (const session of [...this.#sessions.values()]) {
      session.link.close(reason);
      this.detach(session, reason);
    }
    for (const [id, pending] of this.#pendingTrials) {
      this.#settle(id, pending);
      pending.reject(new TrialLostError(pending.nodeName, id, reason));
    }
  }
}
