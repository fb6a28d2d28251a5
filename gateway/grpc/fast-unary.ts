/**
 * A lean path for plain unary calls of PredictionService, taken before grpc-js's per-call machinery.
 *
 * Why by hand: measured on this project's 2-core machine (h2load, one connection, 32 streams, echo of
 * a small message), a bare @grpc/grpc-js unary server spends ~73 µs of CPU per call and a bare
 * node:http2 handler ~44 µs; the difference (interceptor chains, Metadata objects, per-call timers
 * and listeners) was most of our gRPC front door's cost. No library offers a cheaper unary server
 * that keeps grpc-js's sessions, TLS and channel options, so this file handles the one common shape
 * itself and hands every other stream to grpc-js unchanged:
 *
 *   POST /tensorflow.serving.PredictionService/<Method>, content-type application/grpc[+proto],
 *   no grpc-encoding other than identity, a grpc-timeout grpc-js would accept (or none).
 *
 * Such a stream's single length-prefixed message is read here and passed to the same handler the
 * grpc-js service runs (prediction-service.ts), with the deadline from `grpc-timeout` and a
 * CancelSlot fired when the stream closes before its answer. Answers are written as grpc-js writes
 * them: headers (content-type application/grpc+proto, grpc-encoding identity, grpc-accept-encoding),
 * one message, trailers `grpc-status: 0` / `grpc-message: OK`; errors as a trailers-only response.
 *
 * grpc-js exposes no hook for this: `install` wraps the one 'stream' listener grpc-js puts on each
 * http2 server it created (its `http2Servers` map). If that shape ever changes (a grpc-js upgrade),
 * nothing is wrapped and every call goes through grpc-js as before; `installed` says which happened
 * and a test checks it.
 */
import http2 from 'node:http2';
import type { Server } from '@grpc/grpc-js';
import { Code, toServingError } from '../../common/errors.js';
import { bearer, denied, type AccessTokens } from '../access.js';
import { CancelSlot } from '../fleet/worker-channel.js';
import { truncateMessage } from './status.js';

/** What a unary handler gets besides the request bytes. */
export interface CallInfo {
  /** Epoch ms of the client's deadline; 0 = none. */
  deadline: number;
  /** Fired when the client goes away before the answer. */
  cancel: CancelSlot;
  /** The `x-modelgate-routing-key` metadata (a split label sends one key to one version). */
  routingKey?: string | undefined;
}

export type UnaryHandler = (request: Buffer, call: CallInfo) => Promise<Uint8Array>;

export interface FastUnaryOptions {
  /** Full method path (`/package.Service/Method`) → handler. */
  methods: ReadonlyMap<string, UnaryHandler>;
  maxReceiveMessageSize: number;
  maxSendMessageSize: number;
  /** With an api or admin token set, calls must carry it (the api surface). */
  tokens?: AccessTokens | undefined;
  /**
   * Each HTTP/2 connection's receive window (HTTP/2's default is 64 KiB for the whole connection,
   * which one client with many streams of larger tensors fills before the first is read). 0 = leave it.
   */
  connectionWindowBytes?: number;
}

const TIMEOUT = /^(\d{1,8})\s*([HMSmun])$/;
const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

const RESPONSE_HEADERS = {
  ':status': 200,
  'content-type': 'application/grpc+proto',
  'grpc-accept-encoding': 'identity,deflate,gzip',
  'grpc-encoding': 'identity',
};
const OK_TRAILERS = { 'grpc-status': '0', 'grpc-message': 'OK' };
// No `date` header: grpc-js's server sends one, TF Serving's does not, and no gRPC client reads it.
const WITH_TRAILERS = { waitForTrailers: true, sendDate: false } as http2.ServerStreamResponseOptions;
const TRAILERS_ONLY = { endStream: true, sendDate: false } as http2.ServerStreamResponseOptions;

/** Calls answered by the lean path (for tests and the bench). */
export const fastUnaryStats = { calls: 0 };

type StreamListener = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, raw: string[]) => void;

/**
 * Wraps grpc-js's stream listener on every http2 server `server` has bound so far. Returns how many
 * servers now take the lean path.
 */
export function installFastUnary(server: Server, options: FastUnaryOptions): number {
  const servers = (server as unknown as { http2Servers?: Map<http2.Http2Server | http2.Http2SecureServer, unknown> }).http2Servers;
  if (!(servers instanceof Map)) return 0;
  let installed = 0;
  for (const h2 of servers.keys()) {
    const listeners = h2.listeners('stream') as StreamListener[];
    const grpcJs = listeners[0];
    if (listeners.length !== 1 || !grpcJs || (h2 as { fastUnary?: boolean }).fastUnary) continue;
    h2.removeListener('stream', grpcJs);
    h2.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, raw: string[]) => {
      if (!takeStream(stream, headers, options)) grpcJs.call(h2, stream, headers, flags, raw);
    });
    (h2 as { fastUnary?: boolean }).fastUnary = true;
    const window = options.connectionWindowBytes ?? 0;
    if (window > 0) h2.on('session', (session: http2.ServerHttp2Session) => session.setLocalWindowSize(window));
    installed++;
  }
  return installed;
}

/**
 * One call on the lean path, also the CallInfo its handler gets. The stream's listeners are shared
 * functions that find it on the stream, so a call allocates this object and its CancelSlot rather
 * than a closure per listener (GC was a tenth of the gateway's gRPC time in profiles).
 */
class LeanCall implements CallInfo {
  readonly cancel = new CancelSlot();
  /** The `x-modelgate-routing-key` metadata (a split label sends one key to one version). */
  routingKey: string | undefined = undefined;
  chunks: Buffer[] = [];
  size = 0;
  answered = false;
  constructor(
    readonly stream: http2.ServerHttp2Stream,
    readonly path: string,
    readonly handler: UnaryHandler,
    readonly options: FastUnaryOptions,
    readonly deadline: number,
  ) {}
}

const CALL = Symbol('modelgate.leanCall');
type LeanStream = http2.ServerHttp2Stream & { [CALL]: LeanCall };

function onData(this: LeanStream, chunk: Buffer): void {
  const call = this[CALL];
  if (call.answered) return;
  call.size += chunk.length;
  const limit = call.options.maxReceiveMessageSize;
  if (limit >= 0 && call.size > limit + 5) {
    finish(call, Code.RESOURCE_EXHAUSTED, `Received message larger than max (${call.size - 5} vs ${limit})`);
    this.close(http2.constants.NGHTTP2_NO_ERROR);
    return;
  }
  call.chunks.push(chunk);
}

function onEnd(this: LeanStream): void {
  const call = this[CALL];
  if (call.answered) return;
  const chunks = call.chunks;
  const all = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, call.size);
  call.chunks = [];
  if (all.length < 5) {
    finish(call, Code.UNIMPLEMENTED, `Received no request message for server streaming method ${call.path}`);
    return;
  }
  if (all[0] !== 0) {
    finish(call, Code.INTERNAL, 'Received compressed message but "grpc-encoding" header was identity');
    return;
  }
  const length = all.readUInt32BE(1);
  if (all.length !== 5 + length) {
    const extra = all.length > 5 + length;
    finish(
      call,
      extra ? Code.UNIMPLEMENTED : Code.INTERNAL,
      extra ? `Received a second request message for server streaming method ${call.path}` : 'Incomplete message',
    );
    return;
  }
  void answer(call, call.handler(all.subarray(5), call));
}

function onClose(this: LeanStream): void {
  const call = this[CALL];
  if (!call.answered) call.cancel.cancel();
}

function ignoreError(): void {}

function sendOkTrailers(this: http2.ServerHttp2Stream): void {
  this.sendTrailers(OK_TRAILERS);
}

async function answer(call: LeanCall, pending: Promise<Uint8Array>): Promise<void> {
  let out: Uint8Array;
  try {
    out = await pending;
  } catch (err) {
    const e = toServingError(err);
    finish(call, e.code, e.message);
    return;
  }
  const max = call.options.maxSendMessageSize;
  if (max >= 0 && out.length > max) finish(call, Code.RESOURCE_EXHAUSTED, `Sent message larger than max (${out.length} vs. ${max})`);
  else finish(call, 0, 'OK', out);
}

function finish(call: LeanCall, status: number, details: string, message?: Uint8Array): void {
  if (call.answered) return;
  call.answered = true;
  const stream = call.stream;
  if (stream.destroyed || stream.closed) return;
  if (status !== 0) {
    stream.respond(
      { ...RESPONSE_HEADERS, 'grpc-status': String(status), 'grpc-message': encodeURI(truncateMessage(details)) },
      TRAILERS_ONLY,
    );
    return;
  }
  const body = message as Uint8Array;
  stream.respond(RESPONSE_HEADERS, WITH_TRAILERS);
  stream.once('wantTrailers', sendOkTrailers);
  const prefix = Buffer.allocUnsafe(5);
  prefix[0] = 0;
  prefix.writeUInt32BE(body.length, 1);
  if (body.length < 16_384) {
    // Small answers: one DATA write. Large ones are not copied on the gateway's thread to add 5 bytes.
    stream.end(Buffer.concat([prefix, body], 5 + body.length));
  } else {
    stream.write(prefix);
    stream.end(body);
  }
}

/** Serves the stream if it has the common shape; false = leave it to grpc-js. */
function takeStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, options: FastUnaryOptions): boolean {
  const path = headers[':path'] as string;
  const handler = options.methods.get(path);
  if (!handler || headers[':method'] !== 'POST') return false;
  const type = headers['content-type'];
  if (type !== 'application/grpc' && type !== 'application/grpc+proto') return false;
  const encoding = headers['grpc-encoding'];
  if (encoding !== undefined && encoding !== 'identity') return false;
  let deadline = 0;
  const timeout = headers['grpc-timeout'];
  if (timeout !== undefined) {
    const m = TIMEOUT.exec(timeout as string);
    if (!m) return false;
    deadline = Date.now() + ((Number(m[1]) * (UNIT_MS[m[2] as string] as number)) | 0);
  }

  fastUnaryStats.calls++;
  const call = new LeanCall(stream, path, handler, options, deadline);
  (stream as LeanStream)[CALL] = call;
  const key = headers['x-modelgate-routing-key'];
  if (key !== undefined) call.routingKey = typeof key === 'string' ? key : key[0];
  stream.once('close', onClose);
  stream.on('error', ignoreError);

  if (options.tokens && (options.tokens.api || options.tokens.admin)) {
    const reason = denied('api', bearer(headers.authorization), options.tokens);
    if (reason) {
      stream.resume();
      finish(call, Code.UNAUTHENTICATED, reason);
      return true;
    }
  }
  stream.on('data', onData);
  stream.once('end', onEnd);
  return true;
}
