/**
 * The one catalogue of error codes: TensorFlow's `tensorflow.error.Code` numbers (which are also the
 * gRPC status codes) and their HTTP mapping, as TF Serving's `ToHTTPStatusCode` does it.
 *
 * Every failure that reaches a client is a `ServingError`: a code plus TF Serving's exact message.
 * REST writes it as `{"error": message}` with `httpStatus(code)`; gRPC uses the code number directly.
 */
import { escapeJsonString } from './json-string.js';

export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export type CodeName = keyof typeof Code;
export type CodeNumber = (typeof Code)[CodeName];

const codeNames: Record<number, CodeName> = Object.fromEntries(
  Object.entries(Code).map(([name, num]) => [num, name as CodeName]),
);

export function codeName(code: number): CodeName {
  return codeNames[code] ?? 'UNKNOWN';
}

const httpByCode: Record<number, number> = {
  0: 200, 1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429,
  9: 400, 10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401,
};

/** HTTP status for a TF error code (TF Serving's `ToHTTPStatusCode`); unknown codes give 500. */
export function httpStatus(code: number): number {
  return httpByCode[code] ?? 500;
}

export class ServingError extends Error {
  readonly code: CodeNumber;
  constructor(code: CodeNumber, message: string) {
    super(message);
    this.code = code;
    this.name = 'ServingError';
  }
}

/** Any failure as a ServingError: one already is; anything else is INTERNAL with its message. */
export function toServingError(err: unknown): ServingError {
  if (err instanceof ServingError) return err;
  return new ServingError(Code.INTERNAL, String((err as Error)?.message ?? err));
}

export const invalidArgument = (msg: string) => new ServingError(Code.INVALID_ARGUMENT, msg);
export const notFound = (msg: string) => new ServingError(Code.NOT_FOUND, msg);
export const unavailable = (msg: string) => new ServingError(Code.UNAVAILABLE, msg);
export const unimplemented = (msg: string) => new ServingError(Code.UNIMPLEMENTED, msg);
export const internal = (msg: string) => new ServingError(Code.INTERNAL, msg);
export const failedPrecondition = (msg: string) => new ServingError(Code.FAILED_PRECONDITION, msg);
export const deadlineExceeded = (msg: string) => new ServingError(Code.DEADLINE_EXCEEDED, msg);

/** Serialises an error body the way TF Serving's REST server does (rapidjson PrettyWriter, 4-space indent). */
export function errorBody(message: string): string {
  return `{\n    "error": ${escapeJsonString(message)}\n}`;
}
