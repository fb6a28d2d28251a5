/**
 * The Open Inference Protocol's REST API ("KServe v2") beside TF Serving's, on the same port:
 *
 *   GET  /v2                                        server metadata (name, version, extensions)
 *   GET  /v2/health/live | /v2/health/ready         200 {"live": true} / {"ready": true}; not ready: 400
 *   GET  /v2/models/<m>[/versions/<v>]              model metadata
 *   GET  /v2/models/<m>[/versions/<v>]/ready        200 {"name", "ready": true}; not ready: 400
 *   POST /v2/models/<m>[/versions/<v>]/infer        inference (a worker runs it)
 *
 * `<v>` is a version number or a version label (gateway/routing/v2-model.ts). Infer bodies go to a
 * worker untouched (kind V2_REST_INFER), or, with Triton's binary tensor data extension (an
 * `Inference-Header-Content-Length` header), prefixed with that header's value (V2_REST_INFER_BINARY).
 * The worker's answer carries its JSON part's length; when binary outputs follow it, the answer is
 * sent as application/octet-stream with `Inference-Header-Content-Length`. Errors are `{"error": ...}`
 * with the HTTP status of their code (common/errors.ts). Plain infer POSTs take the lean path
 * (lean-rest.ts); everything here is shared by both paths.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Code, codeName, errorBody, httpStatus, ServingError, toServingError } from '../../common/errors.js';
import { Kind, V2_PREFIX_BYTES } from '../../common/worker-protocol.js';
import { CancelSlot } from '../fleet/worker-channel.js';
import { observeRequest } from '../metrics.js';
import { forwardToWorker } from '../routing/forward.js';
import { mirrorRequest } from '../routing/mirror.js';
import { modelMetadata, modelReady, resolveV2, serverReady, V2_SERVER_METADATA } from '../routing/v2-model.js';
import { requestId, ROUTING_KEY_HEADER, routingKeyOf, type RestApiOptions } from './tf-serving-api.js';

export const V2_PATH = /^\/v2(?:\/|$)/;
export const V2_INFER_PATH = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?\/infer$/;
const V2_MODEL_PATH = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(\/ready)?$/;
const GZIP = /gzip/i;
export const HEADER_LENGTH = 'inference-header-content-length';

export interface V2Spec {
  name: string;
  version: string | undefined;
}

/** The model and version of a matched v2 path, percent-decoded. */
export function v2SpecFromMatch(m: RegExpExecArray): V2Spec {
  const decode = (raw: string, what: string) => {
    try {
      return decodeURIComponent(raw);
    } catch {
      throw new ServingError(Code.INVALID_ARGUMENT, `Failed to decode ${what}: ${raw}`);
    }
  };
  return { name: decode(m[1] as string, 'model name'), version: m[2] === undefined ? undefined : decode(m[2], 'model version') };
}

export interface V2Answer {
  status: number;
  body: Buffer;
  /** Set when binary outputs follow the JSON: its length (the Inference-Header-Content-Length header). */
  headerLength: number | undefined;
}

/** The value of an Inference-Header-Content-Length header, checked; undefined when absent. */
export function parseHeaderLength(value: string | string[] | undefined, bodyLength: number): number | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || !/^\d{1,10}$/.test(text.trim()) || Number(text) > 0xfffffffe) {
    throw new ServingError(Code.INVALID_ARGUMENT, `Inference-Header-Content-Length must be a byte count, got '${String(text)}'`);
  }
  const n = Number(text);
  if (n > bodyLength) {
    throw new ServingError(Code.INVALID_ARGUMENT, `Inference-Header-Content-Length ${n} is larger than the body (${bodyLength} bytes)`);
  }
  return n;
}

/**
 * POST .../infer: resolves the route, forwards the body to a worker, records metrics and the request
 * log line, and returns what to answer. Shared by the Fastify route and the lean path.
 */
export async function proxyV2Infer(
  options: RestApiOptions,
  spec: V2Spec,
  body: Buffer,
  headers: {
    'content-encoding'?: string | undefined;
    [HEADER_LENGTH]?: string | string[] | undefined;
    [ROUTING_KEY_HEADER]?: string | string[] | undefined;
  },
  id: string,
  cancel: CancelSlot | undefined,
): Promise<V2Answer> {
  const started = performance.now();
  let version: number | undefined;
  let code: number = Code.UNKNOWN;
  try {
    const table = options.manager.table;
    const route = resolveV2(table, spec.name, spec.version, routingKeyOf(headers[ROUTING_KEY_HEADER]));
    version = route.version;
    const contentEncoding = headers['content-encoding'];
    const gzip = contentEncoding !== undefined && GZIP.test(contentEncoding);
    // The header counts bytes of the uncompressed body: a gzip body is measured by the worker.
    const headerLength = parseHeaderLength(headers[HEADER_LENGTH], gzip ? Infinity : body.length);
    let kind: number = Kind.V2_REST_INFER;
    let payload = body;
    if (headerLength !== undefined) {
      kind = Kind.V2_REST_INFER_BINARY;
      const prefix = Buffer.allocUnsafe(V2_PREFIX_BYTES);
      prefix.writeUInt32LE(headerLength, 0);
      payload = Buffer.concat([prefix, body]);
    }
    const pending = forwardToWorker(route, {
      kind,
      body: payload,
      gzip,
      deadline: options.timeoutMs > 0 ? Date.now() + options.timeoutMs : 0,
      requestId: id,
      cancel,
    });
    if (spec.version !== undefined && !/^\d+$/.test(spec.version)) mirrorRequest(table, spec.name, spec.version, route, 'v2_infer', kind, payload, gzip);
    const answer = await pending;
    code = answer.code;
    if (answer.body.length < V2_PREFIX_BYTES) throw new ServingError(Code.INTERNAL, 'Malformed worker answer to a v2 infer');
    const jsonLength = answer.body.readUInt32LE(0);
    const rest = answer.body.subarray(V2_PREFIX_BYTES);
    return { status: answer.status, body: rest, headerLength: jsonLength < rest.length ? jsonLength : undefined };
  } catch (err) {
    const e = toServingError(err);
    code = e.code;
    return { status: httpStatus(e.code), body: Buffer.from(errorBody(e.message)), headerLength: undefined };
  } finally {
    const seconds = (performance.now() - started) / 1000;
    observeRequest({ model: spec.name, version, api: 'v2_infer', entrypoint: 'REST', code, seconds });
    const level = code === Code.UNAVAILABLE || code === Code.INTERNAL || code === Code.DEADLINE_EXCEEDED || code === Code.UNKNOWN ? 'warn' : 'debug';
    if (options.logger.isLevelEnabled(level)) {
      options.logger[level]({ reqId: id, model: spec.name, version, api: 'v2_infer', code: codeName(code), ms: Math.round(seconds * 1e4) / 10 }, 'request');
    }
  }
}

/** Response headers of an infer answer. */
export function v2AnswerHeaders(answer: V2Answer): Record<string, string> {
  return answer.headerLength === undefined
    ? { 'content-type': 'application/json' }
    : { 'content-type': 'application/octet-stream', [HEADER_LENGTH]: String(answer.headerLength) };
}

function sendJson(reply: FastifyReply, status: number, value: unknown): void {
  void reply.code(status).header('content-type', 'application/json').send(Buffer.from(JSON.stringify(value)));
}

/** Every /v2 request the Fastify catch-all route gets (the lean path takes plain infer POSTs first). */
export async function dispatchV2(request: FastifyRequest, reply: FastifyReply, options: RestApiOptions, path: string): Promise<void> {
  const method = request.method;
  const table = options.manager.table;
  try {
    if (method === 'POST') {
      const m = V2_INFER_PATH.exec(path);
      if (m) {
        const spec = v2SpecFromMatch(m);
        const id = requestId(request.headers['x-request-id']);
        const cancel = new CancelSlot();
        const res = reply.raw;
        res.once('close', () => {
          if (!res.writableFinished) cancel.cancel();
        });
        const body = request.body instanceof Buffer ? request.body : Buffer.alloc(0);
        const answer = await proxyV2Infer(options, spec, body, request.headers as Parameters<typeof proxyV2Infer>[3], id, cancel);
        void reply.code(answer.status).headers(v2AnswerHeaders(answer)).header('x-request-id', id).send(answer.body);
        return;
      }
    } else if (method === 'GET' || method === 'HEAD') {
      if (path === '/v2' || path === '/v2/') {
        sendJson(reply, 200, V2_SERVER_METADATA);
        return;
      }
      if (path === '/v2/health/live') {
        sendJson(reply, 200, { live: true });
        return;
      }
      if (path === '/v2/health/ready') {
        const ready = serverReady(options.manager, options.readinessRequiresAllModels ?? true);
        sendJson(reply, ready ? 200 : 400, { ready });
        return;
      }
      const m = V2_MODEL_PATH.exec(path);
      if (m) {
        const spec = v2SpecFromMatch(m);
        if (m[3]) {
          const ready = modelReady(table, spec.name, spec.version);
          sendJson(reply, ready ? 200 : 400, { name: spec.name, ready });
          return;
        }
        sendJson(reply, 200, modelMetadata(table, resolveV2(table, spec.name, spec.version)));
        return;
      }
    }
    throw new ServingError(Code.NOT_FOUND, `Not found: ${method} ${path}`);
  } catch (err) {
    const e = toServingError(err);
    void reply.code(httpStatus(e.code)).header('content-type', 'application/json').send(Buffer.from(errorBody(e.message)));
  }
}
