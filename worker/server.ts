/**
 * The worker's small internal HTTP API. One worker serves one model version; the gateway has already
 * resolved the model, version or label, so routes name only the method:
 *
 *   POST /predict    body: TF Serving's predict JSON (gzip allowed) → TF Serving's predict JSON
 *   POST /classify   body: TF Serving's classify JSON → `{"results": ...}`
 *   POST /regress    body: TF Serving's regress JSON → `{"results": ...}`
 *   GET  /healthz    200 while the model is loaded
 *   GET  /metrics    this worker's Prometheus registry (worker/metrics.ts), as text
 *   POST /grpc/...   serialized gRPC request messages (see grpc-api.ts)
 *
 * Errors are TF Serving's `{"error": ...}` with its HTTP status. Node's http module is enough here:
 * a few fixed routes, no parsing beyond reading the body.
 */
import http from 'node:http';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { Code, errorBody, httpStatus, invalidArgument, ServingError } from '../common/errors.js';
import { decodePredictInputs, encodePredictResponse, parsePredictBody } from './codec/predict-json.js';
import { CLASSIFY_METHOD, DEFAULT_SIGNATURE, REGRESS_METHOD } from './codec/tensor.js';
import { classifyExamples, handleGrpcRoute, isGrpcRoute, regressExamples } from './grpc-api.js';
import { encodeClassifyResponse, encodeRegressResponse, parseExamplesRequest } from './codec/classify-regress-json.js';
import { serializeExamples } from './runtimes/tensorflow/example.js';
import { findSignature, type Runtime } from './runtimes/runtime.js';
import { metricsText } from './metrics.js';

const gunzip = promisify(zlib.gunzip);
const textDecoder = new TextDecoder();

/** TF Serving's cap on a gunzipped request body (ZLib::kMaxUncompressedBytes). */
const MAX_UNCOMPRESSED_BYTES = 100 * 1024 * 1024;

export interface WorkerServerOptions {
  runtime: Runtime;
  /** Largest request body accepted, in bytes. */
  maxBodyBytes: number;
}

export function createWorkerServer(options: WorkerServerOptions): http.Server {
  const server = http.createServer((req, res) => {
    handle(req, res, options).catch((err) => sendError(res, err));
  });
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 65_000;
  // Requests come only from gateways over keep-alive pools; no per-request timeout here, the gateway owns it.
  server.requestTimeout = 0;
  return server;
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse, options: WorkerServerOptions): Promise<void> {
  const url = req.url ?? '/';
  if (req.method === 'GET' && url === '/healthz') {
    send(res, 200, '{"status":"ok"}');
    return;
  }
  if (req.method === 'GET' && url === '/metrics') {
    const { contentType, body } = await metricsText();
    res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  if (req.method !== 'POST') {
    sendError(res, invalidArgument(`Malformed request: ${req.method} ${url}`));
    return;
  }
  const body = await readBody(req, options.maxBodyBytes);
  if (isGrpcRoute(url)) {
    await handleGrpcRoute(req, res, options.runtime, body);
    return;
  }
  switch (url) {
    case '/predict':
      send(res, 200, await predict(options.runtime, body));
      return;
    case '/classify':
    case '/regress':
      send(res, 200, await classifyOrRegress(options.runtime, body, url === '/classify' ? CLASSIFY_METHOD : REGRESS_METHOD));
      return;
    default:
      sendError(res, invalidArgument(`Malformed request: ${req.method} ${url}`));
  }
}

async function predict(runtime: Runtime, body: Buffer): Promise<string> {
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
  const outputs = await runtime.run(sigName, inputs);
  return encodePredictResponse(format, outputs, Object.keys(signature.outputs));
}

async function classifyOrRegress(runtime: Runtime, body: Buffer, method: string): Promise<string> {
  const classify = method === CLASSIFY_METHOD;
  const request = parseExamplesRequest(body, classify ? 'classify' : 'regress');
  const examples = serializeExamples(request.examples, request.context);
  const signatureName = request.signatureName ?? '';
  if (classify) {
    const result = await classifyExamples(runtime, signatureName, examples);
    return encodeClassifyResponse(
      result.classifications.map((c) =>
        c.classes.map((k): [string, number] => [k.label ? textDecoder.decode(k.label) : '', k.score ?? 0]),
      ),
    );
  }
  const result = await regressExamples(runtime, signatureName, examples);
  return encodeRegressResponse(result.regressions);
}

function readBody(req: http.IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.destroy();
        reject(new ServingError(Code.RESOURCE_EXHAUSTED, `Request body is larger than the limit of ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', reject);
    req.on('end', () => {
      const raw = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
      if (!/gzip/i.test(req.headers['content-encoding'] ?? '')) {
        resolve(raw);
        return;
      }
      gunzip(raw, { maxOutputLength: MAX_UNCOMPRESSED_BYTES }).then(resolve, (err: Error) =>
        reject(invalidArgument(`Failed to decompress gzip request body: ${err.message}`)),
      );
    });
  });
}

function send(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function sendError(res: http.ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const e =
    err instanceof ServingError ? err : new ServingError(Code.INTERNAL, String((err as Error)?.message ?? err));
  send(res, httpStatus(e.code), errorBody(e.message));
}
