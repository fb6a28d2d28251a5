/**
 * The gateway↔worker contract, in one place: the framed binary protocol a gateway speaks to a worker
 * over the worker's Unix socket (local workers) or TCP port (standalone workers), the request kinds,
 * the worker's command-line flags, and the IPC messages a forked worker sends to its gateway. Neither
 * side imports the other; both import this module.
 *
 * ## Connection
 * The client opens a stream connection and writes the 4-byte preface `MGW1`. Anything else as the
 * first bytes is taken for HTTP/1.1, which a worker also answers on the same socket (`GET /healthz`,
 * `GET /metrics`: for container health checks and people, not for the gateway).
 *
 * ## Frames
 * Every frame, both ways, starts with the same 9 bytes (little-endian):
 *
 *   u32 length   bytes after this field (type + id + payload)
 *   u8  type     REQUEST, CANCEL (gateway → worker) or RESPONSE (worker → gateway)
 *   u32 id       chosen by the gateway, unique among its requests in flight on this connection
 *
 * REQUEST payload:
 *   u8  kind       what to run (Kind below)
 *   u8  flags      bit 0: the body is gzip-compressed (REST Content-Encoding: gzip)
 *   u32 timeoutMs  milliseconds the client still waits (0: the deadline has passed); NO_DEADLINE
 *                  (0xFFFFFFFF) = none. The worker refuses work that has not started by then with
 *                  DEADLINE_EXCEEDED
 *   f64 version    the servable version the gateway resolved (echoed in gRPC model specs); NaN = unsaid
 *   u8  idLength   then that many bytes: the request id (UTF-8), for the worker's logs
 *   ...            the body: the client's request bytes, untouched
 * CANCEL payload: none. The client stopped waiting for request `id`: work not yet started is dropped;
 *   an answer may still arrive and is ignored.
 * RESPONSE payload:
 *   u16 status     the HTTP status the REST front door answers with (from the code for gRPC kinds)
 *   u8  code       the TF error code (0 = OK)
 *   ...            the body: REST kinds: the JSON answer or `{"error": ...}` body; gRPC kinds: the
 *                  serialized response message when OK, else the error message as UTF-8 text;
 *                  HEALTH: `ok`; METRICS: Prometheus exposition text; V2_REST_*: see below
 *
 * Open Inference Protocol ("KServe v2") kinds:
 *   V2_REST_INFER         body: the client's JSON infer request, untouched
 *   V2_REST_INFER_BINARY  body: u32 LE the client's `Inference-Header-Content-Length` | the client's
 *                         body, untouched (a JSON header, then raw tensor bytes: Triton's binary
 *                         tensor data extension); gzip (flags bit 0) covers only the client's body
 *   both answer:          u32 LE the JSON part's length | JSON answer or `{"error": ...}` [| raw
 *                         output bytes]; a JSON length short of the rest means binary outputs follow,
 *                         and the gateway sends it as the `Inference-Header-Content-Length` header
 *   V2_GRPC_INFER         body: a serialized inference.ModelInferRequest; answer: ModelInferResponse
 *                         (or, failing, the message as text), like the other gRPC kinds
 *
 * Requests on one connection are answered in any order. Each side gathers the frames it produces in one
 * event-loop turn and writes them with one system call, so under load many requests share one write
 * and one wake-up of the other process.
 */
import type { SignatureDef } from './signature.js';

export const PREFACE = Buffer.from('MGW1', 'latin1');

export const FrameType = {
  REQUEST: 1,
  CANCEL: 2,
  RESPONSE: 3,
} as const;

/** What a REQUEST asks the worker to run. */
export const Kind = {
  REST_PREDICT: 1,
  REST_CLASSIFY: 2,
  REST_REGRESS: 3,
  GRPC_PREDICT: 4,
  GRPC_CLASSIFY: 5,
  GRPC_REGRESS: 6,
  GRPC_MULTI_INFERENCE: 7,
  HEALTH: 8,
  METRICS: 9,
  V2_REST_INFER: 10,
  V2_REST_INFER_BINARY: 11,
  V2_GRPC_INFER: 12,
} as const;
export type KindNumber = (typeof Kind)[keyof typeof Kind];

export const KIND_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(Kind).map(([name, n]) => [n, name.toLowerCase()]),
);

export function isGrpcKind(kind: number): boolean {
  return (kind >= Kind.GRPC_PREDICT && kind <= Kind.GRPC_MULTI_INFERENCE) || kind === Kind.V2_GRPC_INFER;
}

/** Kinds of the Open Inference Protocol's REST infer, whose bodies and answers carry a u32 prefix. */
export function isV2RestKind(kind: number): boolean {
  return kind === Kind.V2_REST_INFER || kind === Kind.V2_REST_INFER_BINARY;
}

/** A V2_REST_INFER_BINARY body's prefix, and every V2 REST answer's: the JSON part's length. */
export const V2_PREFIX_BYTES = 4;

export const FLAG_GZIP = 1;
/** `timeoutMs` of a request with no deadline. */
export const NO_DEADLINE = 0xffff_ffff;

/** Bytes before the payload: length, type, id. */
export const HEADER_BYTES = 9;
/** Bytes of a REQUEST payload before the request id. */
const REQUEST_FIXED = 1 + 1 + 4 + 8 + 1;
/** Bytes of a RESPONSE payload before the body. */
const RESPONSE_FIXED = 2 + 1;
/** The largest frame either side accepts (the length field's range; bodies are bounded before this). */
export const MAX_FRAME_BYTES = 0xffff_ffff;

export interface RequestHead {
  kind: number;
  flags: number;
  timeoutMs: number;
  /** NaN when the gateway did not resolve a version (e.g. HEALTH). */
  version: number;
  requestId: string;
}

/** The head of a REQUEST frame, as one small buffer; the body is written after it as it is. */
export function encodeRequestHead(id: number, head: RequestHead, bodyLength: number): Buffer {
  // Ids longer than a byte can count are dropped: the id is for logs, never for routing.
  let idBytes = head.requestId.length === 0 ? 0 : Buffer.byteLength(head.requestId);
  if (idBytes > 255) idBytes = 0;
  const b = Buffer.allocUnsafe(HEADER_BYTES + REQUEST_FIXED + idBytes);
  b.writeUInt32LE(4 + 1 + REQUEST_FIXED + idBytes + bodyLength, 0);
  b[4] = FrameType.REQUEST;
  b.writeUInt32LE(id, 5);
  b[9] = head.kind;
  b[10] = head.flags;
  b.writeUInt32LE(head.timeoutMs, 11);
  b.writeDoubleLE(head.version, 15);
  b[23] = idBytes;
  if (idBytes > 0) b.write(head.requestId, 24, 'utf8');
  return b;
}

export function encodeCancel(id: number): Buffer {
  const b = Buffer.allocUnsafe(HEADER_BYTES);
  b.writeUInt32LE(5, 0);
  b[4] = FrameType.CANCEL;
  b.writeUInt32LE(id, 5);
  return b;
}

/** The head of a RESPONSE frame; the body is written after it as it is. */
export function encodeResponseHead(id: number, status: number, code: number, bodyLength: number): Buffer {
  const b = Buffer.allocUnsafe(HEADER_BYTES + RESPONSE_FIXED);
  b.writeUInt32LE(5 + RESPONSE_FIXED + bodyLength, 0);
  b[4] = FrameType.RESPONSE;
  b.writeUInt32LE(id, 5);
  b.writeUInt16LE(status, 9);
  b[11] = code;
  return b;
}

/** One frame as read: `payload` is a view of the bytes after the id. */
export interface Frame {
  type: number;
  id: number;
  payload: Buffer;
}

export interface DecodedRequest extends RequestHead {
  body: Buffer;
}

export function decodeRequest(payload: Buffer): DecodedRequest {
  if (payload.length < REQUEST_FIXED) throw new ProtocolError('REQUEST frame too short');
  const idBytes = payload[14] as number;
  const bodyStart = REQUEST_FIXED + idBytes;
  if (payload.length < bodyStart) throw new ProtocolError('REQUEST frame too short for its request id');
  return {
    kind: payload[0] as number,
    flags: payload[1] as number,
    timeoutMs: payload.readUInt32LE(2),
    version: payload.readDoubleLE(6),
    requestId: idBytes === 0 ? '' : payload.toString('utf8', REQUEST_FIXED, bodyStart),
    body: payload.subarray(bodyStart),
  };
}

export interface DecodedResponse {
  status: number;
  code: number;
  body: Buffer;
}

export function decodeResponse(payload: Buffer): DecodedResponse {
  if (payload.length < RESPONSE_FIXED) throw new ProtocolError('RESPONSE frame too short');
  return { status: payload.readUInt16LE(0), code: payload[2] as number, body: payload.subarray(RESPONSE_FIXED) };
}

export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

/**
 * Cuts a byte stream into frames. Chunks are kept as they arrive and joined only when a frame spans
 * them, so a frame that fits one read is a view of that read, not a copy.
 */
export class FrameReader {
  #chunks: Buffer[] = [];
  #buffered = 0;
  readonly #maxFrameBytes: number;

  constructor(maxFrameBytes = MAX_FRAME_BYTES) {
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** Feeds bytes and calls `onFrame` for every complete frame; throws ProtocolError on a bad length. */
  push(chunk: Buffer, onFrame: (frame: Frame) => void): void {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    while (this.#buffered >= 4) {
      let head = this.#chunks[0] as Buffer;
      if (head.length < HEADER_BYTES && this.#buffered >= HEADER_BYTES) head = this.#join();
      if (head.length < 4) head = this.#join();
      const length = head.readUInt32LE(0);
      if (length < 5 || length > this.#maxFrameBytes) throw new ProtocolError(`bad frame length ${length}`);
      const total = 4 + length;
      if (this.#buffered < total) return;
      if (head.length < total) head = this.#join();
      const frame: Frame = { type: head[4] as number, id: head.readUInt32LE(5), payload: head.subarray(HEADER_BYTES, total) };
      if (head.length === total) {
        this.#chunks.shift();
      } else {
        this.#chunks[0] = head.subarray(total);
      }
      this.#buffered -= total;
      onFrame(frame);
    }
  }

  #join(): Buffer {
    const all = Buffer.concat(this.#chunks, this.#buffered);
    this.#chunks = [all];
    return all;
  }
}

/**
 * Gathers the buffers one side writes in an event-loop turn and hands them to the socket in one
 * `writev` (cork, then uncork on the next check phase: after every I/O callback of this turn ran).
 *
 * With `maxFrames`, a turn that writes more frames than that sends them every `maxFrames` frames
 * instead of all at the end. The gateway uses it: one read from a busy HTTP/2 client can hold
 * dozens of requests, and holding all of them until the turn ends leaves the worker idle while the
 * gateway parses them, then the gateway idle while the worker answers them, so the two processes
 * take turns instead of working at once (measured in bench/RESULTS.md: gRPC c=32 went from ~0.65× to
 * ~0.85× of the in-process baseline with 16 here).
 */
export class CoalescingWriter {
  readonly #socket: { cork(): void; uncork(): void; write(b: Uint8Array): boolean; destroyed: boolean };
  readonly #maxFrames: number;
  #scheduled = false;
  #frames = 0;

  constructor(socket: { cork(): void; uncork(): void; write(b: Uint8Array): boolean; destroyed: boolean }, maxFrames = Infinity) {
    this.#socket = socket;
    this.#maxFrames = maxFrames;
  }

  /** Writes one frame (its buffers in order). */
  write(...buffers: Uint8Array[]): void {
    const socket = this.#socket;
    if (socket.destroyed) return;
    if (!this.#scheduled) {
      this.#scheduled = true;
      socket.cork();
      setImmediate(this.#flush);
    }
    for (const b of buffers) if (b.length > 0) socket.write(b);
    if (++this.#frames >= this.#maxFrames) {
      this.#frames = 0;
      socket.uncork();
      socket.cork();
    }
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    this.#frames = 0;
    this.#socket.uncork();
  };
}

/** The gateway's `maxFrames` for its connections to workers (see CoalescingWriter). */
export const GATEWAY_MAX_FRAMES_PER_WRITE = 16;

// ---------------------------------------------------------------------------------------------
// IPC messages from a forked worker to its gateway.

export type WorkerMessage =
  | {
      type: 'ready';
      signatures: Record<string, SignatureDef>;
      backends: Record<string, string>;
      loadMillis: number;
    }
  | { type: 'failed'; code: number; message: string };

/**
 * IPC message from the gateway to a forked worker: unload the model you serve and serve this one
 * instead, on a new socket (--max_loaded_versions reuses an evicted ONNX worker's process, which skips
 * a process start). Sent only when the worker has nothing in flight; it answers `ready` or `failed`
 * as after a start. Connections to the old socket are closed, so nothing meant for the old model
 * reaches the new one.
 */
export interface AssignMessage {
  type: 'assign';
  model_name: string;
  model_version: number;
  version_path: string;
  socket_path: string;
}

// ---------------------------------------------------------------------------------------------
// The worker's flags: one table, read by the worker's parser and written by the gateway's spawner.

type FlagKind = 'string' | 'int' | 'bool' | 'json';

interface FlagSpec {
  kind: FlagKind;
  default: string;
  help: string;
}

export const WORKER_FLAGS = {
  model_name: { kind: 'string', default: '', help: 'the model this worker serves' },
  model_version: { kind: 'int', default: '0', help: 'the version this worker serves' },
  model_platform: { kind: 'string', default: 'onnx', help: 'onnx or tensorflow' },
  version_path: { kind: 'string', default: '', help: 'the version folder' },
  socket_path: { kind: 'string', default: '', help: 'listen on this Unix socket' },
  host: { kind: 'string', default: '127.0.0.1', help: 'with --port: the address to listen on' },
  port: { kind: 'int', default: '-1', help: 'listen on this TCP port (standalone workers; 0 = any free port)' },
  intra_op_threads: { kind: 'int', default: '1', help: 'onnxruntime intra-op threads' },
  inter_op_threads: { kind: 'int', default: '1', help: 'onnxruntime inter-op threads' },
  max_body_bytes: { kind: 'int', default: String(256 * 1024 * 1024), help: 'largest request body' },
  drain_timeout_ms: { kind: 'int', default: '30000', help: 'how long a stopping worker lets requests finish' },
  saved_model_tags: { kind: 'string', default: 'serve', help: 'MetaGraph tags to load, comma-separated' },
  max_json_depth: { kind: 'int', default: '100000', help: 'deepest JSON nesting accepted' },
  max_tensor_elements: { kind: 'int', default: String(256 * 1024 * 1024), help: 'largest tensor accepted' },
  max_b64_bytes: { kind: 'int', default: String(64 * 1024 * 1024), help: 'largest decoded {"b64": ...} value' },
  enable_signature_method_name_check: { kind: 'bool', default: 'false', help: "TF's method-name check" },
  redis_url: { kind: 'string', default: '', help: 'standalone: register in this shared routing state (or REDIS_URL)' },
  redis_prefix: { kind: 'string', default: 'modelgate', help: 'key prefix in Redis' },
  advertise_host: { kind: 'string', default: '', help: 'standalone: the host name gateways reach this worker by' },
  worker_lease_ms: { kind: 'int', default: '2000', help: 'standalone: endpoint lease in Redis' },
  enable_batching: { kind: 'bool', default: 'false', help: 'batch requests (TF Serving batching)' },
  batching_options: { kind: 'json', default: '', help: "the gateway's resolved batching parameters, as JSON" },
  enable_per_model_batching_parameters: { kind: 'bool', default: 'false', help: 'read batching_params.pbtxt in the version folder' },
  standby: {
    kind: 'bool',
    default: 'false',
    help: 'start with no model: import the onnx runtime, report ready, and wait for an assign message (--load_on_demand standby workers)',
  },
} as const satisfies Record<string, FlagSpec>;

type WorkerFlagName = keyof typeof WORKER_FLAGS;
type FlagValue<K extends FlagKind> = K extends 'int' ? number : K extends 'bool' ? boolean : K extends 'json' ? unknown : string;
export type WorkerFlags = { [K in WorkerFlagName]: FlagValue<(typeof WORKER_FLAGS)[K]['kind']> };

/** `--name=value` arguments for the flags given (others keep the worker's defaults). */
export function workerArgs(flags: Partial<WorkerFlags>): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(flags)) {
    if (value === undefined) continue;
    const spec = WORKER_FLAGS[name as WorkerFlagName];
    if (!spec) throw new Error(`unknown worker flag --${name}`);
    out.push(`--${name}=${spec.kind === 'json' ? JSON.stringify(value) : String(value)}`);
  }
  return out;
}

/** Parses a worker's argv (`--name=value` or `--name value`); unknown flags and bad values throw. */
export function parseWorkerArgs(argv: readonly string[], env: NodeJS.ProcessEnv = {}): WorkerFlags {
  const raw = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    if (!(name in WORKER_FLAGS)) throw new Error(`unknown worker flag --${name}`);
    const spec = WORKER_FLAGS[name as WorkerFlagName];
    let value: string;
    if (eq !== -1) value = arg.slice(eq + 1);
    else if (spec.kind === 'bool' && (i + 1 >= argv.length || argv[i + 1]!.startsWith('--'))) value = 'true';
    else value = argv[++i] ?? '';
    raw.set(name, value);
  }
  if (!raw.has('redis_url') && env.REDIS_URL) raw.set('redis_url', env.REDIS_URL);
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(WORKER_FLAGS) as Array<[WorkerFlagName, FlagSpec]>) {
    const text = raw.get(name) ?? spec.default;
    switch (spec.kind) {
      case 'string':
        out[name] = text;
        break;
      case 'int': {
        if (!/^-?\d+$/.test(text)) throw new Error(`--${name} must be an integer, got "${text}"`);
        out[name] = Number(text);
        break;
      }
      case 'bool':
        if (text !== 'true' && text !== 'false') throw new Error(`--${name} must be true or false, got "${text}"`);
        out[name] = text === 'true';
        break;
      case 'json':
        out[name] = text === '' ? undefined : JSON.parse(text);
        break;
    }
  }
  return out as WorkerFlags;
}
