import { fileURLToPath } from 'node:url';

export * from './generated/hwopt/v1/common.js';
export * from './generated/hwopt/v1/agent.js';
export * from './generated/hwopt/v1/ops.js';
export { Timestamp } from './generated/google/protobuf/timestamp.js';

/** Binary FileDescriptorSet of every hwopt.v1 service, for server reflection. */
export const DESCRIPTOR_SET_PATH = fileURLToPath(new URL('./generated/descriptor-set.binpb', import.meta.url));

/** The port the coordinator listens on and clients dial by default. */
export const DEFAULT_COORDINATOR_PORT = 50_551;
export const DEFAULT_COORDINATOR_ADDRESS = `127.0.0.1:${DEFAULT_COORDINATOR_PORT}`;

/**
 * Largest gRPC message either side accepts, in bytes. hwopt messages are
 * small (an inventory of a few GPUs, one trial result); 4 MiB leaves room
 * for a large fleet listing while bounding what a peer can make us buffer.
 */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/** Channel options every hwopt client and server uses. */
export const GRPC_CHANNEL_OPTIONS = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  // A `localhost` target otherwise triggers DNS TXT lookups for a service config.
  'grpc.service_config_disable_resolution': 1,
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
  'grpc.keepalive_permit_without_calls': 1,
} as const;
