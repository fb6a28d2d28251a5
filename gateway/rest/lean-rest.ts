/**
 * A lean path for the REST requests that carry inference: `POST /v1/models/<m>[...]:predict`
 * (`:classify`, `:regress`) and the Open Inference Protocol's `POST /v2/models/<m>[/versions/<v>]/infer`
 * (v2-rest.ts), taken on the Node HTTP server before Fastify's per-request machinery.
 *
 * Why by hand: measured on this project's 2-core machine (wrk, 32 connections, small body, fixed
 * answer), a Fastify route costs ~27–33 µs of CPU per request and a plain node:http handler ~20 µs.
 * These routes need none of what Fastify adds (they take the body as bytes and answer bytes the worker
 * made), and the difference was a fifth of the gateway's cost per request. Everything else, and every
 * request of these routes that is not plain, stays with Fastify:
 *
 *   - the URL has a query string, the verb is not lower case, or the path does not decode
 *   - an API token is required and the request does not carry a valid one (Fastify's hook answers 401)
 *   - Content-Length is over --max_request_bytes (Fastify answers 413)
 *   - the gateway is closing (Fastify answers 503)
 *
 * A taken request's body is read here (413 in TF's shape if a chunked body outgrows the limit), and
 * the shared `proxyToWorker` does the rest exactly as the Fastify route does; the answer has the same
 * status, body and headers (content-type, content-length, x-request-id, CORS when enabled).
 *
 * `installLeanRest` wraps the one 'request' listener Fastify put on its server (Node's documented way
 * to attach a handler). If that shape differs, nothing is wrapped and Fastify serves everything.
 */
import type http from 'node:http';
import { errorBody } from '../../common/errors.js';
import { bearer, denied, type AccessTokens } from '../access.js';
import { CancelSlot } from '../fleet/worker-channel.js';
import {
  POST_PATH,
  proxyToWorker,
  requestId,
  ROUTING_KEY_HEADER,
  routingKeyOf,
  specFromMatch,
  VERSION_HEADER,
  type ModelSpecFromPath,
  type RestApiOptions,
} from './tf-serving-api.js';
import { HEADER_LENGTH, proxyV2Infer, V2_INFER_PATH, v2SpecFromMatch, type V2Spec } from './v2-rest.js';

export interface LeanRestOptions extends RestApiOptions {
  tokens: AccessTokens;
  maxBodyBytes: number;
  cors: boolean;
  isClosing: () => boolean;
}

/** Requests served by the lean path (for tests and the bench). */
export const leanRestStats = { requests: 0 };

type RequestListener = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export function installLeanRest(server: http.Server, options: LeanRestOptions): boolean {
  const listeners = server.listeners('request') as RequestListener[];
  const fastify = listeners[0];
  if (listeners.length !== 1 || !fastify) return false;
  server.removeListener('request', fastify);
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (!take(req, res, options)) fastify.call(server, req, res);
  });
  return true;
}

const VERBS = new Set(['predict', 'classify', 'regress']);

function take(req: http.IncomingMessage, res: http.ServerResponse, options: LeanRestOptions): boolean {
  if (req.method !== 'POST') return false;
  const url = req.url as string;
  if (url.includes('?')) return false;
  let spec: ModelSpecFromPath | undefined;
  let v2: V2Spec | undefined;
  let verb: string | undefined;
  try {
    const m = POST_PATH.exec(url);
    verb = m?.[4];
    if (m && verb !== undefined && VERBS.has(verb)) {
      spec = specFromMatch(m);
    } else {
      const m2 = V2_INFER_PATH.exec(url);
      if (!m2) return false;
      v2 = v2SpecFromMatch(m2);
    }
  } catch {
    return false;
  }
  const headers = req.headers;
  if ((options.tokens.api || options.tokens.admin) && denied('api', bearer(headers.authorization), options.tokens)) return false;
  const length = headers['content-length'];
  if (length !== undefined && Number(length) > options.maxBodyBytes) return false;
  if (options.isClosing()) return false;

  leanRestStats.requests++;
  const id = requestId(headers['x-request-id']);
  const cancel = new CancelSlot();
  res.once('close', () => {
    if (!res.writableFinished) cancel.cancel();
  });
  const chunks: Buffer[] = [];
  let size = 0;
  let refused = false;
  req.on('data', (chunk: Buffer) => {
    if (refused) return;
    size += chunk.length;
    if (size > options.maxBodyBytes) {
      refused = true;
      const body = Buffer.from(errorBody(`Request body is larger than the limit of ${options.maxBodyBytes} bytes`));
      send(res, 413, body, id, options.cors, true);
      return;
    }
    chunks.push(chunk);
  });
  req.once('end', () => {
    if (refused) return;
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
    if (v2) {
      void proxyV2Infer(options, v2, body, headers, id, cancel).then((answer) =>
        send(res, answer.status, answer.body, id, options.cors, false, answer.headerLength),
      );
      return;
    }
    const key = routingKeyOf(headers[ROUTING_KEY_HEADER]);
    void proxyToWorker(options, verb as string, spec as ModelSpecFromPath, body, headers['content-encoding'], id, cancel, key).then((answer) => {
      if (answer.version !== undefined) res.setHeader(VERSION_HEADER, String(answer.version));
      send(res, answer.status, answer.body, id, options.cors, false);
    });
  });
  req.once('error', () => cancel.cancel());
  return true;
}

function send(res: http.ServerResponse, status: number, body: Buffer, id: string, cors: boolean, close: boolean, headerLength?: number): void {
  if (res.destroyed || res.headersSent) return;
  res.statusCode = status;
  res.setHeader('x-request-id', id);
  if (headerLength === undefined) {
    res.setHeader('content-type', 'application/json');
  } else {
    res.setHeader('content-type', 'application/octet-stream');
    res.setHeader(HEADER_LENGTH, headerLength);
  }
  res.setHeader('content-length', body.length);
  if (cors) {
    res.setHeader('access-control-allow-origin', '*');
    res.setHeader('access-control-allow-methods', 'POST, GET');
    res.setHeader('access-control-allow-headers', 'Content-Type');
  }
  if (close) res.setHeader('connection', 'close');
  res.end(body);
}
