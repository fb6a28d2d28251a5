/**
 * TF Serving's REST API (tf-serving.md §1) as a Fastify plugin.
 *
 * TF Serving matches `/v1/...` paths with two case-insensitive regexes on the raw, still
 * percent-encoded path, so this plugin does the same rather than use Fastify's router: one catch-all
 * route, then `dispatch`. The request body is not parsed here: predict, classify and regress bytes
 * go to the worker as they came, and the worker's answer, buffered whole, is sent back. The
 * server keeps every body as raw bytes, whatever its Content-Type (TF Serving does not check it).
 * Paths under `/v2` belong to the Open Inference Protocol and are handed to v2-rest.ts.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Code, codeName, errorBody, httpStatus, ServingError, toServingError } from '../../common/errors.js';
import { Kind } from '../../common/worker-protocol.js';
import type { ModelManager } from '../manager/model-manager.js';
import { forwardToWorker, routeWithMetadata } from '../routing/forward.js';
import { mirrorRequest } from '../routing/mirror.js';
import { CancelSlot } from '../fleet/worker-channel.js';
import { observeRequest } from '../metrics.js';
import type { Logger } from '../../common/logger.js';
import { dispatchV2, V2_PATH } from './v2-rest.js';

export interface RestApiOptions {
  manager: ModelManager;
  /** --rest_api_timeout_in_ms: bound on every request forwarded to a worker. */
  timeoutMs: number;
  logger: Logger;
  /** --readiness_requires_all_models, for the v2 server-ready route (as /readyz uses it). */
  readinessRequiresAllModels?: boolean;
}

let requestCounter = 0;
const ID_PREFIX = `${process.pid.toString(36)}-`;

/** The client's `x-request-id`, or a new one (cheap: a per-process counter). */
export function requestId(given: string | string[] | undefined): string {
  return typeof given === 'string' && given.length > 0 && given.length <= 128 ? given : ID_PREFIX + (++requestCounter).toString(36);
}

export const POST_PATH = /^\/v1\/models\/([^/:]+)(?:(?:\/versions\/(\d+))|(?:\/labels\/([^/:]+)))?:(classify|regress|predict)$/i;
const GET_PATH = /^\/v1\/models(?:\/([^/:]+))?(?:(?:\/versions\/(\d+))|(?:\/labels\/([^/:]+)))?(?:\/(metadata))?$/i;
const V1_PATH = /^\/v1\//i;
const GZIP = /gzip/i;
const REST_KINDS: Record<string, number> = { predict: Kind.REST_PREDICT, classify: Kind.REST_CLASSIFY, regress: Kind.REST_REGRESS };
const INT64_MAX = 9223372036854775807n;
const CORS_ORIGIN = /https?:\/\//;

/** libevent's default 404 page, which TF Serving sends for paths outside /v1/. */
const NOT_FOUND_HTML =
  '<HTML><HEAD>\n<TITLE>404 Not Found</TITLE>\n</HEAD><BODY>\n<H1>Not Found</H1>\n</BODY></HTML>\n';

export async function tfServingApi(app: FastifyInstance, options: RestApiOptions): Promise<void> {
  app.route({
    method: ['GET', 'POST', 'OPTIONS', 'PUT', 'DELETE', 'PATCH', 'HEAD'],
    url: '*',
    handler: (request, reply) => dispatch(request, reply, options),
  });
  // Methods the route does not list (PROPFIND, PURGE, ...) take the same path: TF's 400 "Malformed
  // request" under /v1/, the HTML 404 elsewhere, instead of Fastify's own 404 JSON.
  app.setNotFoundHandler((request, reply) => dispatch(request, reply, options));
}

async function dispatch(request: FastifyRequest, reply: FastifyReply, options: RestApiOptions): Promise<void> {
  const rawUrl = request.raw.url ?? '/';
  const q = rawUrl.indexOf('?');
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
  if (V2_PATH.test(path)) {
    await dispatchV2(request, reply, options, path);
    return;
  }
  if (!V1_PATH.test(path)) {
    void reply.code(404).type('text/html; charset=ISO-8859-1').send(NOT_FOUND_HTML);
    return;
  }
  const method = request.method;
  try {
    if (method === 'OPTIONS') {
      const origin = request.headers.origin;
      void reply.code(origin && CORS_ORIGIN.test(origin) ? 200 : 400).send('');
      return;
    }
    if (method === 'POST') {
      const m = POST_PATH.exec(path);
      const verb = m?.[4];
      if (m && (verb === 'predict' || verb === 'classify' || verb === 'regress')) {
        await forward(request, reply, options, verb, m);
        return;
      }
    } else if (method === 'GET') {
      const m = GET_PATH.exec(path);
      if (m) {
        await getModel(reply, options.manager, m);
        return;
      }
    }
    throw new ServingError(Code.INVALID_ARGUMENT, `Malformed request: ${method} ${path}`);
  } catch (err) {
    sendError(reply, err);
  }
}

/**
 * Fastify's `frameworkErrors` hook. FST_ERR_BAD_URL: a path whose percent-escapes Fastify's router
 * cannot decode (`%FF`, `%C3%28`) never reaches a route, and Fastify would answer with its own JSON.
 * Answer it as `dispatch` does instead: the HTML 404 outside /v1/, TF's decode error for a model name
 * or label, else TF's "Malformed request". Other framework errors get TF's error shape.
 */
export function sendFrameworkError(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  if (err.code !== 'FST_ERR_BAD_URL') {
    sendJson(reply, err.statusCode ?? 400, errorBody(err.message));
    return;
  }
  const rawUrl = request.raw.url ?? '/';
  const q = rawUrl.indexOf('?');
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
  if (V2_PATH.test(path)) {
    sendError(reply, new ServingError(Code.INVALID_ARGUMENT, `Malformed request: ${request.method} ${path}`));
    return;
  }
  if (!V1_PATH.test(path)) {
    void reply.code(404).type('text/html; charset=ISO-8859-1').send(NOT_FOUND_HTML);
    return;
  }
  const method = request.method;
  try {
    const m = method === 'POST' ? POST_PATH.exec(path) : method === 'GET' ? GET_PATH.exec(path) : null;
    if (m && (method === 'GET' || m[4] === 'predict' || m[4] === 'classify' || m[4] === 'regress')) specFromMatch(m);
    throw new ServingError(Code.INVALID_ARGUMENT, `Malformed request: ${method} ${path}`);
  } catch (err) {
    sendError(reply, err);
  }
}

/**
 * Fastify's `clientErrorHandler`: requests Node's HTTP parser refuses before any route (a malformed
 * request line or header: 400; a request head over 16 KiB: 431; a head not complete within the
 * headers timeout: 408). Answered in TF's error shape and, unlike Fastify's default, with
 * `Connection: close`: the socket is closed next, and a client that is not told so may already have
 * sent its next request on it (which then fails with a reset).
 */
export function sendClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const message =
    status === 431
      ? 'Request header fields too large'
      : status === 408
        ? 'Request timeout: the request head did not arrive in time'
        : `Malformed HTTP request${err.code ? ` (${err.code})` : ''}`;
  const body = errorBody(message);
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

export interface ModelSpecFromPath {
  name: string;
  version: string | undefined;
  label: string | undefined;
}

export function specFromMatch(m: RegExpExecArray): ModelSpecFromPath {
  const rawName = m[1];
  if (rawName === undefined) throw new ServingError(Code.INVALID_ARGUMENT, 'Missing model name in request.');
  const name = decode(rawName, 'Failed to decode model name:');
  const version = m[2];
  if (version !== undefined && BigInt(version) > INT64_MAX) {
    throw new ServingError(Code.INVALID_ARGUMENT, `Failed to convert version: ${version} to numeric.`);
  }
  const label = m[3] === undefined ? undefined : decode(m[3], 'Failed to decode model version label:');
  return { name, version: version?.replace(/^0+(?=\d)/, ''), label };
}

/** Percent-decoding as curl_easy_unescape does it: `+` stays `+`. */
function decode(raw: string, failure: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new ServingError(Code.INVALID_ARGUMENT, `${failure}${raw}`);
  }
}

async function getModel(reply: FastifyReply, manager: ModelManager, m: RegExpExecArray): Promise<void> {
  const spec = specFromMatch(m);
  if (m[4] === 'metadata') {
    // --load_on_demand: a version never loaded loads first (its signatures come from its worker).
    const route = await routeWithMetadata(manager.table.resolve(spec.name, spec.version, spec.label));
    sendJson(reply, 200, route.metadataJson);
    return;
  }
  // TF Serving's status handler looks only at the version; a label-only request lists every version.
  const versions = manager.status(spec.name, spec.version);
  sendJson(reply, 200, JSON.stringify({ model_version_status: versions }, null, 1) + '\n');
}

export interface ProxiedAnswer {
  status: number;
  body: Buffer;
  /** The version that answered (the `x-modelgate-version` header), once the request was routed. */
  version?: number | undefined;
}

/** The request header that keeps a client on one version of a split label. */
export const ROUTING_KEY_HEADER = 'x-modelgate-routing-key';
/** The answer header naming the version that served the request. */
export const VERSION_HEADER = 'x-modelgate-version';

/** The routing key of a request's headers (a repeated header: its first value). */
export function routingKeyOf(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : value?.[0];
}

/**
 * Predict, classify or regress: resolves the route, forwards the body to a worker, records metrics
 * and the request log line, and returns what to answer (a worker's answer, or TF's error body).
 * Shared by the Fastify route and the lean path (lean-rest.ts).
 */
export async function proxyToWorker(
  options: RestApiOptions,
  verb: string,
  spec: ModelSpecFromPath,
  body: Buffer,
  contentEncoding: string | undefined,
  id: string,
  cancel: CancelSlot | undefined,
  routingKey?: string,
): Promise<ProxiedAnswer> {
  const started = performance.now();
  let version: number | undefined;
  let code: number = Code.UNKNOWN;
  try {
    const table = options.manager.table;
    const route = table.resolve(spec.name, spec.version, spec.label, routingKey);
    version = route.version;
    const kind = REST_KINDS[verb] as number;
    const gzip = contentEncoding !== undefined && GZIP.test(contentEncoding);
    const answer = forwardToWorker(route, {
      kind,
      body,
      gzip,
      deadline: options.timeoutMs > 0 ? Date.now() + options.timeoutMs : 0,
      requestId: id,
      cancel,
    });
    if (spec.label !== undefined) mirrorRequest(table, spec.name, spec.label, route, verb, kind, body, gzip);
    const answered = await answer;
    code = answered.code;
    return { status: answered.status, body: answered.body, version };
  } catch (err) {
    const e = toServingError(err);
    code = e.code;
    return { status: httpStatus(e.code), body: Buffer.from(errorBody(e.message)), version };
  } finally {
    const seconds = (performance.now() - started) / 1000;
    observeRequest({ model: spec.name, version, api: verb, entrypoint: 'REST', code, seconds });
    // Every request at debug; failures the server owns (5xx) at warn, with the id the client saw.
    const level = code === Code.UNAVAILABLE || code === Code.INTERNAL || code === Code.DEADLINE_EXCEEDED || code === Code.UNKNOWN ? 'warn' : 'debug';
    if (options.logger.isLevelEnabled(level)) {
      options.logger[level]({ reqId: id, model: spec.name, version, api: verb, code: codeName(code), ms: Math.round(seconds * 1e4) / 10 }, 'request');
    }
  }
}

async function forward(
  request: FastifyRequest,
  reply: FastifyReply,
  options: RestApiOptions,
  verb: string,
  m: RegExpExecArray,
): Promise<void> {
  const spec = specFromMatch(m);
  const id = requestId(request.headers['x-request-id']);
  const cancel = new CancelSlot();
  const res = reply.raw;
  const onClose = () => {
    if (!res.writableFinished) cancel.cancel();
  };
  res.once('close', onClose);
  const body = request.body instanceof Buffer ? request.body : EMPTY;
  const routingKey = routingKeyOf(request.headers[ROUTING_KEY_HEADER]);
  const answer = await proxyToWorker(options, verb, spec, body, request.headers['content-encoding'], id, cancel, routingKey);
  if (answer.version !== undefined) void reply.header(VERSION_HEADER, String(answer.version));
  void reply.code(answer.status).header('x-request-id', id).header('content-type', 'application/json').send(answer.body);
}

function sendJson(reply: FastifyReply, status: number, body: string): void {
  // A Buffer, so Fastify sends the Content-Type as given (TF Serving's, without a charset).
  void reply.code(status).header('content-type', 'application/json').send(Buffer.from(body));
}

const EMPTY = Buffer.alloc(0);

function sendError(reply: FastifyReply, err: unknown): void {
  const e = toServingError(err);
  sendJson(reply, httpStatus(e.code), errorBody(e.message));
}
