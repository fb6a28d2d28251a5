/**
 * What a worker knows about one request while it runs: the version it answers for, its deadline and
 * whether the client went away. Kept apart from grpc-api.ts so the REST path needs neither it nor
 * protobufjs.
 */
import { Code, ServingError } from '../common/errors.js';

export interface CallContext {
  /** The servable version, for response model specs; absent when the gateway did not say. */
  version: string | undefined;
  /** Epoch milliseconds after which work must not start. */
  deadline: number | undefined;
  /** Set when the client stopped waiting (a CANCEL frame): work not started yet is dropped. */
  cancelled?: boolean;
}

/** Throws DEADLINE_EXCEEDED or CANCELLED when work must not start. */
export function checkDeadline(ctx: CallContext): void {
  if (ctx.cancelled) throw new ServingError(Code.CANCELLED, 'Cancelled');
  if (ctx.deadline !== undefined && Date.now() >= ctx.deadline) {
    throw new ServingError(Code.DEADLINE_EXCEEDED, 'Deadline Exceeded');
  }
}

let methodNameCheck = false;

/**
 * TF's --enable_signature_method_name_check (default off): when on, Classify and Regress refuse a
 * signature whose method_name is not theirs. Off, TF2 exports (whose signatures all say "predict")
 * still classify and regress, as TF Serving allows.
 */
export function setMethodNameCheck(on: boolean): void {
  methodNameCheck = on;
}

export function methodNameCheckEnabled(): boolean {
  return methodNameCheck;
}
