/**
 * Base class of hwopt's own errors: a stable `code` for programs, a message
 * that says what failed and what to do for people, and the original error
 * as `cause`.
 */
export class HwoptError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Raised for invalid user input: a flag, a file or a request field. */
export class InvalidInputError extends HwoptError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_INPUT', message, options);
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
