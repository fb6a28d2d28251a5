/**
 * The worker's server: the worker protocol (common/worker-protocol.ts) on a Unix socket or TCP port.
 * One worker serves one model version; the gateway has already resolved the model, version or label,
 * so a request names only its kind:
 *
 *   REST_PREDICT / REST_CLASSIFY / REST_REGRESS   TF Serving's JSON bodies (gzip allowed) → JSON answer
 *   GRPC_*                                        serialized request message → response message (grpc-api.ts)
 *   V2_*                                          Open Inference Protocol infer (v2-api.ts)
 *   HEALTH                                        `ok` while the model is loaded
 *   METRICS                                       this worker's Prometheus registry (worker/metrics.ts)
 *
 * REST errors are TF Serving's `{"error": ...}` with its HTTP status; gRPC errors are the TF code and
 * the message. A connection whose first bytes are not the protocol's preface is handed to a small
 * HTTP server with `GET /healthz` and `GET /metrics`, for container health checks and people.
 */
import http from 'node:http';
import net from 'node:net';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { Code, errorBody, httpStatus, invalidArgument, ServingError, toServingError } from '../common/errors.js';
import {
  CoalescingWriter,
  decodeRequest,
  encodeResponseHead,
  FLAG_GZIP,
  FrameReader,
  FrameType,
  isGrpcKind,
  isV2RestKind,
  Kind,
  NO_DEADLINE,
  PREFACE,
  ProtocolError,
  V2_PREFIX_BYTES,
} from '../common/worker-protocol.js';
import { decodePredictInputs, encodePredictResponse, parsePredictBody } from './codec/predict-json.js';
import { bytesToText } from './codec/json-writer.js';
import { CLASSIFY_METHOD, DEFAULT_SIGNATURE, REGRESS_METHOD } from './codec/tensor.js';
import { checkDeadline, type CallContext } from './call-context.js';
import { findSignature, type Runtime } from './runtimes/runtime.js';

// Imported on first use, so a worker only ever asked for REST predictions never loads protobufjs's
// message code, the tf.Example proto, the Open Inference Protocol codec or prom-client (lean workers:
// docs/architecture.md).
// Each import() is made once and its promise kept: a dynamic import() of a module already loaded
// still goes through the module loader (resolution, file checks) every time, which showed in the
// worker's profile when it ran per request.
const once = <T>(load: () => Promise<T>): (() => Promise<T>) => {
  let loaded: Promise<T> | undefined;
  return () => (loaded ??= load());
};
const grpcApi = once(() => import('./grpc-api.js'));
const v2Api = once(() => import('./v2-api.js'));
const examplesCodec = once(() => import('./codec/classify-regress-json.js'));
const exampleProto = once(() => import('./runtimes/tensorflow/example.js'));
const metricsModule = once(() => import('./metrics.js'));
let metricsLabels: WorkerServerOptions['metricsLabels'];
const metricsText = async () => {
  const m = await metricsModule();
  if (metricsLabels) m.setWorkerLabels(metricsLabels.modelName, metricsLabels.modelVersion);
  return m.metricsText();
};

const gunzip = promisify(zlib.gunzip);
/** A class label as JSON text; a label that is not UTF-8 cannot be written unchanged, so it is refused. */
function labelText(label: Uint8Array): string {
  const text = bytesToText(label);
  if (text === undefined) {
    throw new ServingError(Code.DATA_LOSS, 'A class label is not valid UTF-8 and cannot be written as JSON text; use the gRPC API for it');
  }
  return text;
}

/** TF Serving's cap on a gunzipped request body (ZLib::kMaxUncompressedBytes). */
const MAX_UNCOMPRESSED_BYTES = 100 * 1024 * 1024;

export interface WorkerServerOptions {
  runtime: Runtime;
  /** Largest request body accepted, in bytes. */
  maxBodyBytes: number;
  /** The model this worker serves (named in Open Inference Protocol answers). */
  modelName?: string;
  /** Labels of every series this worker exports (applied when the registry is first loaded). */
  metricsLabels?: { modelName: string; modelVersion: string };
}

export interface WorkerServer {
  readonly server: net.Server;
  /** Requests being worked on, over every connection. */
  readonly inFlight: number;
  /**
   * Stops accepting connections, lets requests in flight finish (at most `drainMs`), then closes
   * every connection, cutting those whose requests are still running. Resolves when done.
   */
  drain(drainMs: number): Promise<void>;
}

interface Answer {
  status: number;
  code: number;
  body: Buffer | string;
}

export function createWorkerServer(options: WorkerServerOptions): WorkerServer {
  metricsLabels = options.metricsLabels;
  const connections = new Set<Connection>();
  const http1 = createHttpFallback();
  let inFlight = 0;
  let idle: (() => void) | undefined;

  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    sniff(socket, (rest) => {
      const conn = new Connection(socket, options, {
        started: () => void inFlight++,
        finished: () => {
          if (--inFlight === 0) idle?.();
        },
      });
      connections.add(conn);
      socket.once('close', () => connections.delete(conn));
      if (rest.length > 0) conn.onData(rest);
    }, (first) => {
      socket.pause();
      socket.unshift(first);
      http1.emit('connection', socket);
      socket.resume();
    });
  });

  return {
    server,
    get inFlight() {
      return inFlight;
    },
    async drain(drainMs: number): Promise<void> {
      server.close();
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, drainMs);
          idle = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      for (const c of connections) c.end();
      http1.closeAllConnections();
    },
  };
}

/** Reads the first bytes: the preface → the protocol, with what followed it; else → HTTP. */
function sniff(socket: net.Socket, onProtocol: (rest: Buffer) => void, onHttp: (first: Buffer) => void): void {
  let seen: Buffer = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    if (seen.length < PREFACE.length && PREFACE.subarray(0, seen.length).equals(seen)) return;
    socket.off('data', onData);
    if (seen.subarray(0, PREFACE.length).equals(PREFACE)) onProtocol(seen.subarray(PREFACE.length));
    else onHttp(seen);
  };
  socket.on('data', onData);
  socket.on('error', () => socket.destroy());
}

interface InFlightCounter {
  started(): void;
  finished(): void;
}

/** One gateway connection: frames in, answers out, in whatever order they finish. */
class Connection {
  readonly #socket: net.Socket;
  readonly #options: WorkerServerOptions;
  readonly #reader: FrameReader;
  readonly #writer: CoalescingWriter;
  readonly #counter: InFlightCounter;
  /** Requests of this connection being worked on, by id (CANCEL marks them). */
  readonly #active = new Map<number, CallContext>();
  #ending = false;

  constructor(socket: net.Socket, options: WorkerServerOptions, counter: InFlightCounter) {
    this.#socket = socket;
    this.#options = options;
    this.#counter = counter;
    // A frame is a request body plus a few hundred bytes of head at most.
    this.#reader = new FrameReader(options.maxBodyBytes + 1024);
    this.#writer = new CoalescingWriter(socket);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  onData(chunk: Buffer): void {
    try {
      this.#reader.push(chunk, (frame) => {
        if (frame.type === FrameType.REQUEST) this.#request(frame.id, frame.payload);
        else if (frame.type === FrameType.CANCEL) {
          const ctx = this.#active.get(frame.id);
          if (ctx) ctx.cancelled = true;
        } else throw new ProtocolError(`unexpected frame type ${frame.type}`);
      });
    } catch (err) {
      // A peer that does not speak the protocol gets nothing more from this connection.
      this.#socket.destroy(err as Error);
    }
  }

  /** Closes: at once if nothing is in flight (answers already written still go out), else cut. */
  end(): void {
    this.#ending = true;
    if (this.#active.size === 0) this.#socket.end();
    else this.#socket.destroy();
  }

  #request(id: number, payload: Buffer): void {
    const req = decodeRequest(payload);
    const ctx: CallContext = {
      version: Number.isNaN(req.version) ? undefined : String(req.version),
      deadline: req.timeoutMs === NO_DEADLINE ? undefined : Date.now() + req.timeoutMs,
      cancelled: false,
    };
    this.#active.set(id, ctx);
    this.#counter.started();
    serve(this.#options, req.kind, req.flags, req.body, ctx)
      .catch((err: unknown) => failure(req.kind, err))
      .then((answer) => {
        this.#active.delete(id);
        this.#counter.finished();
        const body = typeof answer.body === 'string' ? Buffer.from(answer.body) : answer.body;
        this.#writer.write(encodeResponseHead(id, answer.status, answer.code, body.length), body);
        if (this.#ending && this.#active.size === 0) this.#socket.end();
      });
  }
}

async function failure(kind: number, err: unknown): Promise<Answer> {
  const e = toServingError(err);
  if (isGrpcKind(kind)) return { status: httpStatus(e.code), code: e.code, body: e.message };
  if (isV2RestKind(kind)) return { status: httpStatus(e.code), code: e.code, body: (await v2Api()).v2RestAnswer(errorBody(e.message)) };
  return { status: httpStatus(e.code), code: e.code, body: errorBody(e.message) };
}

async function serve(options: WorkerServerOptions, kind: number, flags: number, body: Buffer, ctx: CallContext): Promise<Answer> {
  if (kind === Kind.HEALTH) return { status: 200, code: Code.OK, body: 'ok' };
  if (kind === Kind.METRICS) return { status: 200, code: Code.OK, body: (await metricsText()).body };
  if (body.length > options.maxBodyBytes) {
    throw new ServingError(Code.RESOURCE_EXHAUSTED, `Request body is larger than the limit of ${options.maxBodyBytes} bytes`);
  }
  let headerLength: number | undefined;
  if (kind === Kind.V2_REST_INFER_BINARY) {
    if (body.length < V2_PREFIX_BYTES) throw new ProtocolError('V2_REST_INFER_BINARY body too short');
    headerLength = body.readUInt32LE(0);
    body = body.subarray(V2_PREFIX_BYTES);
  }
  if (flags & FLAG_GZIP) body = await gunzipBody(body);
  const runtime = options.runtime;
  switch (kind) {
    case Kind.V2_REST_INFER:
    case Kind.V2_REST_INFER_BINARY:
      return { status: 200, code: Code.OK, body: await (await v2Api()).runV2Rest(runtime, options.modelName ?? '', body, headerLength, ctx) };
    case Kind.V2_GRPC_INFER: {
      const out = await (await v2Api()).runV2Grpc(runtime, options.modelName ?? '', body, ctx);
      return { status: 200, code: Code.OK, body: Buffer.from(out.buffer, out.byteOffset, out.byteLength) };
    }
    case Kind.REST_PREDICT:
      return { status: 200, code: Code.OK, body: await predict(runtime, body, ctx) };
    case Kind.REST_CLASSIFY:
    case Kind.REST_REGRESS:
      return {
        status: 200,
        code: Code.OK,
        body: await classifyOrRegress(runtime, body, kind === Kind.REST_CLASSIFY ? CLASSIFY_METHOD : REGRESS_METHOD, ctx),
      };
    default: {
      const out = await (await grpcApi()).runGrpc(kind, runtime, body, ctx);
      return { status: 200, code: Code.OK, body: Buffer.from(out.buffer, out.byteOffset, out.byteLength) };
    }
  }
}

function gunzipBody(raw: Buffer): Promise<Buffer> {
  return gunzip(raw, { maxOutputLength: MAX_UNCOMPRESSED_BYTES }).catch((err: Error) => {
    throw invalidArgument(`Failed to decompress gzip request body: ${err.message}`);
  });
}

async function predict(runtime: Runtime, body: Buffer, ctx: CallContext): Promise<string> {
  const { doc, signatureName } = parsePredictBody(body);
  const sigName = signatureName || DEFAULT_SIGNATURE;
  const signature = findSignature(runtime, sigName);
  if (!signature) {
    throw invalidArgument(`Serving signature name: "${sigName}" not found in signature def`);
  }
  if (Object.keys(signature.inputs).length === 0) {
    throw invalidArgument(`Failed to get input map for signature: ${signatureName || 'DEFAULT'}`);
  }
  const { format, inputs } = decodePredictInputs(doc, signature);
  checkDeadline(ctx);
  const outputs = await runtime.run(sigName, inputs, undefined, ctx);
  return encodePredictResponse(format, outputs, Object.keys(signature.outputs));
}

async function classifyOrRegress(runtime: Runtime, body: Buffer, method: string, ctx: CallContext): Promise<string> {
  const classify = method === CLASSIFY_METHOD;
  const [{ encodeClassifyResponse, encodeRegressResponse, parseExamplesRequest }, { serializeExamples }, { classifyExamples, regressExamples }] =
    await Promise.all([examplesCodec(), exampleProto(), grpcApi()]);
  const request = parseExamplesRequest(body, classify ? 'classify' : 'regress');
  const examples = serializeExamples(request.examples, request.context);
  const signatureName = request.signatureName ?? '';
  if (classify) {
    const result = await classifyExamples(runtime, signatureName, examples, ctx);
    return encodeClassifyResponse(
      result.classifications.map((c) =>
        c.classes.map((k): [string, number] => [k.label ? labelText(k.label) : '', k.score ?? 0]),
      ),
    );
  }
  const result = await regressExamples(runtime, signatureName, examples, ctx);
  return encodeRegressResponse(result.regressions);
}

/** `GET /healthz` and `GET /metrics` over HTTP/1.1, for what does not speak the protocol. */
function createHttpFallback(): http.Server {
  const server = http.createServer((req, res) => {
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (req.method === 'GET' && req.url === '/healthz') {
      send(200, 'application/json', '{"status":"ok"}');
    } else if (req.method === 'GET' && req.url === '/metrics') {
      metricsText().then(
        ({ contentType, body }) => send(200, contentType, body),
        (err: unknown) => send(500, 'application/json', errorBody(toServingError(err).message)),
      );
    } else {
      send(404, 'application/json', errorBody(`Not found: ${req.method} ${req.url} (this port speaks the worker protocol)`));
    }
  });
  server.keepAliveTimeout = 5_000;
  return server;
}
