/**
 * Errors on the gRPC front door: a `ServingError`'s TF code is the gRPC status code, and its message
 * the status details, cut as TF Serving's ToGRPCStatus cuts them (over 1024 bytes: the first 1024 and
 * `...TRUNCATED`). Worker answers carry their TF code in the RESPONSE frame.
 */
import { Metadata, type StatusObject } from '@grpc/grpc-js';
import { ServingError, toServingError, type CodeNumber } from '../../common/errors.js';
import type { WorkerAnswer } from '../routing/forward.js';

export const ERROR_MESSAGE_LIMIT = 1024;

/** TF Serving's message cut. */
export function truncateMessage(message: string): string {
  if (message.length <= ERROR_MESSAGE_LIMIT / 3) return message;
  const bytes = Buffer.from(message, 'utf8');
  if (bytes.length <= ERROR_MESSAGE_LIMIT) return message;
  return `${bytes.subarray(0, ERROR_MESSAGE_LIMIT).toString('utf8')}...TRUNCATED`;
}

/** The gRPC status for a failure. */
export function grpcStatus(err: unknown): StatusObject {
  const e = toServingError(err);
  return { code: e.code, details: truncateMessage(e.message), metadata: new Metadata() };
}

/** The error a worker answered a gRPC-kind request with: its code, and its message as the body. */
export function workerError(answer: WorkerAnswer): ServingError {
  return new ServingError(answer.code as CodeNumber, answer.body.toString('utf8'));
}
