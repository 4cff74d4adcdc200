/**
 * Makes an undecodable request an INVALID_ARGUMENT error. grpc-js ends a
 * call whose bytes its deserializer rejects with INTERNAL (grpc-js 1.14,
 * server-interceptors.js), a code that blames the server. The
 * wrapped deserializer returns a marker instead of throwing, and
 * `decoded` turns the marker into a RequestValidationError that the
 * services map to INVALID_ARGUMENT like any other invalid field.
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import { RequestValidationError } from './validate.ts';

const UNDECODABLE = Symbol('undecodable request');

interface Undecodable {
  [UNDECODABLE]: string;
}

/** Returns a copy of `service` whose request deserializers never throw. */
export function withTolerantDecoding<T extends ServiceDefinition>(service: T): T {
  const wrapped: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(service)) {
    wrapped[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return method.requestDeserialize(bytes);
        } catch (error) {
          const marker: Undecodable = { [UNDECODABLE]: error instanceof Error ? error.message.slice(0, 200) : 'unknown decoding error' };
          return marker;
        }
      },
    };
  }
  return wrapped as T;
}

/** Returns the request, or throws RequestValidationError when its bytes were not a valid message of its type. */
export function decoded<T>(request: T, type: string): T {
  if (typeof request === 'object' && request !== null && UNDECODABLE in request) {
    throw new RequestValidationError(`request is not a valid protobuf ${type} message (${(request as Undecodable)[UNDECODABLE]}); send a message encoded from the hwopt.v1 protos`);
  }
  return request;
}
