/**
 * hwopt.v1.AgentService: one bidirectional Session stream per agent. The
 * first message must be a Hello; results are stored before they are
 * acknowledged.
 */
import { status, type ServerDuplexStream } from '@grpc/grpc-js';
import type { Logger } from '@hwopt/common';
import type { AgentHello, AgentLink, AgentSession, FleetCoordinator, AgentRegistry } from '@hwopt/fleet';
import { ForeignTrialError, TrialResultRejectedError } from '@hwopt/fleet';
import type { AgentMessage, AgentServiceServer, CoordinatorMessage } from '@hwopt/proto';
import { decoded } from './decoding.ts';
import * as validate from './validate.ts';

/**
 * Maximum time an unchanged heartbeat goes unstored, in ms. It must stay
 * below the 60 s after which a node's last contact counts as lost.
 */
const HEARTBEAT_STORE_INTERVAL_MS = 30_000;

export interface AgentServiceDeps {
  fleet: FleetCoordinator;
  registry: AgentRegistry;
  logger: Logger;
  heartbeatIntervalMs: number;
  /** Time a new session has to send its hello before it is closed, so that idle streams cannot pile up, in ms. */
  helloTimeoutMs: number;
  /**
   * Returns the node name the caller's certificate proves, or null when the
   * mode proves none (token or plaintext). Throws a gRPC error to reject.
   */
  authenticatedNodeName(call: ServerDuplexStream<AgentMessage, CoordinatorMessage>): string | null;
}

export function createAgentService(deps: AgentServiceDeps): AgentServiceServer {
  return {
    session(call) {
      const logger = deps.logger.child({ peer: call.getPeer() });
      let hello: AgentHello | null = null;
      let session: AgentSession | null = null;
      let ended = false;
      // The inventory last stored for this session and when, in ms since the epoch.
      let storedInventory = '';
      let storedAt = 0;
      // Messages of one session are handled in order, one at a time.
      let queue = Promise.resolve();

      const send = (message: CoordinatorMessage) => {
        if (!ended) call.write(message);
      };
      const end = (code: status, details: string) => {
        if (ended) return;
        ended = true;
        call.emit('error', { code, details });
        call.end();
      };
      const link: AgentLink = {
        assignTrial: (a) =>
          send({
            trialAssignment: {
              trialId: a.trialId,
              gpuUuid: a.gpuUuid,
              workload: a.workload,
              architecture: { layers: a.architecture.layers, hiddenChannels: a.architecture.hiddenChannels },
              batchSize: a.batchSize,
              iterations: a.iterations,
              timeoutMs: a.timeoutMs,
            },
          }),
        acknowledgeResult: (trialId) => send({ resultAck: { trialId, rejectedReason: '' } }),
        cancelTrial: (trialId, reason) => send({ cancelTrial: { trialId, reason } }),
        requestDescribe: (requestId, workload, architectures) => send({ describeRequest: { requestId, workload, architectures } }),
        close: (reason) => {
          send({ reject: { reason } });
          if (!ended) {
            ended = true;
            call.end();
          }
        },
      };

      let proven: string | null;
      try {
        proven = deps.authenticatedNodeName(call);
      } catch (error) {
        const { code, details } = error as { code?: status; details?: string };
        logger.warn({ reason: details }, 'agent session rejected');
        end(code ?? status.UNAUTHENTICATED, details ?? 'not authenticated');
        return;
      }

      /**
       * Runs a store call and reports whether it succeeded. A store failure
       * (PostgreSQL away or overloaded) is logged and the session stays
       * open: closing it would make every agent reconnect at once and add
       * load where the store is already short of it.
       */
      const storeKeepingSession = async (what: string, store: () => Promise<unknown>): Promise<boolean> => {
        try {
          await store();
          return true;
        } catch (error) {
          if (error instanceof TrialResultRejectedError) throw error;
          logger.warn({ err: error, node: hello?.nodeName }, `could not store the ${what}; the session stays open`);
          return false;
        }
      };

      const helloTimer = setTimeout(() => {
        if (hello !== null || ended) return;
        logger.warn({ timeoutMs: deps.helloTimeoutMs }, 'agent session timed out waiting for a hello; closing it');
        end(status.DEADLINE_EXCEEDED, 'no hello arrived in time; an agent must send its hello first');
      }, deps.helloTimeoutMs);
      helloTimer.unref();

      const handle = async (received: AgentMessage) => {
        const message = decoded(received, 'AgentMessage');
        if (!hello) {
          if (!message.hello) throw new validate.RequestValidationError('the first message of a session must be a hello');
          const candidate = validate.hello(message.hello);
          if (proven !== null && proven !== candidate.nodeName) {
            logger.warn({ certificateNode: proven, claimedNode: candidate.nodeName }, 'agent session rejected: the hello names another node than the client certificate');
            end(status.PERMISSION_DENIED, `this client certificate belongs to node ${proven}, not ${candidate.nodeName}`);
            return;
          }
          hello = candidate;
          clearTimeout(helloTimer);
          try {
            session = await deps.fleet.handleHello(hello, link);
          } catch (error) {
            // The session may be attached already; leaving it would show a dead link as connected.
            const attached = deps.registry.session(candidate.nodeName);
            if (attached?.link === link) await deps.fleet.handleDisconnect(attached, 'hello failed').catch(() => {});
            throw error;
          }
          storedInventory = JSON.stringify(hello.inventory);
          storedAt = Date.now();
          send({ welcome: { nodeId: session.nodeId, heartbeatIntervalMs: deps.heartbeatIntervalMs } });
          return;
        }
        if (message.hello) throw new validate.RequestValidationError('a session sends hello only once');
        if (message.heartbeat) {
          const inventory = validate.inventory(message.heartbeat.inventory, 'heartbeat.inventory');
          // An unchanged inventory is stored at most every HEARTBEAT_STORE_INTERVAL_MS: with a
          // thousand agents, storing every heartbeat kept PostgreSQL's connection pool exhausted.
          const key = JSON.stringify(inventory);
          if (key === storedInventory && Date.now() - storedAt < HEARTBEAT_STORE_INTERVAL_MS) return;
          if (await storeKeepingSession('heartbeat', () => deps.fleet.handleHeartbeat(session!, hello!, inventory))) {
            storedInventory = key;
            storedAt = Date.now();
          }
        } else if (message.trialResult) {
          const result = validate.trialResult(message.trialResult);
          // Acknowledged only once stored; unacknowledged, the agent keeps it and resends it later.
          let stored: boolean;
          try {
            stored = await storeKeepingSession(`trial result ${result.trialId}`, () => deps.fleet.handleTrialResult(session!, result));
          } catch (error) {
            if (!(error instanceof TrialResultRejectedError)) throw error;
            // A rejected acknowledgement lets the agent drop the result; without it the agent would resend it on every reconnect.
            send({ resultAck: { trialId: result.trialId, rejectedReason: error.message } });
            if (error instanceof ForeignTrialError) throw error;
            logger.warn({ node: hello.nodeName, trialId: result.trialId, reason: error.message }, 'trial result rejected; the agent drops it');
            return;
          }
          if (stored) link.acknowledgeResult(result.trialId);
        } else if (message.describeResult) {
          const d = validate.describeResult(message.describeResult);
          deps.registry.completeDescribe(session!.nodeName, d.requestId, d.parameterCounts, d.error);
        }
        // Trial progress is informational; the coordinator does not need it to decide.
      };

      call.on('data', (message: AgentMessage) => {
        queue = queue
          .then(() => (ended ? undefined : handle(message)))
          .catch((error: unknown) => {
            if (error instanceof validate.RequestValidationError) {
              logger.warn({ node: hello?.nodeName, reason: error.message }, 'invalid agent message; closing the session');
              end(status.INVALID_ARGUMENT, error.message);
            } else if (error instanceof ForeignTrialError) {
              logger.warn({ node: hello?.nodeName, reason: error.message }, 'agent reported a trial it was not given');
              end(status.PERMISSION_DENIED, error.message);
            } else {
              // A store failure: the result stays unacknowledged, so the agent keeps it and resends.
              logger.error({ err: error, node: hello?.nodeName }, 'could not handle an agent message; closing the session');
              end(status.UNAVAILABLE, 'the coordinator could not store the message; reconnect and resend');
            }
          });
      });
      const finish = (reason: string) => {
        clearTimeout(helloTimer);
        const current = session;
        session = null;
        if (!ended) {
          ended = true;
          try {
            call.end();
          } catch {
            // The stream is already closed.
          }
        }
        if (current) {
          deps.fleet.handleDisconnect(current, reason).catch((error) => logger.warn({ err: error }, 'disconnect handling failed'));
        }
      };
      call.on('end', () => finish('stream ended by the agent'));
      call.on('error', (error) => finish(`stream error: ${error.message}`));
      call.on('cancelled', () => finish('stream cancelled'));
    },
  };
}
