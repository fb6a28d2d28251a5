/**
 * REST-side access rules and limits (see gateway/access.ts): a bearer token check before routing,
 * and TF-shaped answers for requests Fastify refuses itself (a body over --max_request_bytes → 413).
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { errorBody } from '../../common/errors.js';
import { bearer, denied, type AccessTokens, type Surface } from '../access.js';

const OPEN_PATHS = new Set(['/healthz', '/readyz', '/v2/health/live', '/v2/health/ready']);

function surfaceOf(method: string, path: string, metricsPath: string | undefined): Surface {
  if (OPEN_PATHS.has(path) || path === metricsPath) return 'open';
  if (method === 'POST' && path === '/v1/config:reload') return 'admin';
  // The Open Inference Protocol's routes (/v2, /v2/...) are API routes too, but for its health checks.
  return /^\/v1\//i.test(path) || /^\/v2(?:\/|$)/.test(path) ? 'api' : 'open';
}

export function restAccess(app: FastifyInstance, tokens: AccessTokens, metricsPath: string | undefined): void {
  if (tokens.admin || tokens.api) {
    app.addHook('onRequest', async (request, reply) => {
      const url = request.raw.url ?? '/';
      const q = url.indexOf('?');
      const path = q === -1 ? url : url.slice(0, q);
      const reason = denied(surfaceOf(request.method, path, metricsPath), bearer(request.headers.authorization), tokens);
      if (reason) {
        return reply
          .code(401)
          .header('content-type', 'application/json')
          .header('www-authenticate', 'Bearer')
          .send(Buffer.from(errorBody(reason)));
      }
      return undefined;
    });
  }
  app.setErrorHandler((err: FastifyError, _request, reply) => {
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      void reply.code(413).header('content-type', 'application/json').send(Buffer.from(errorBody(`Request body is larger than the limit of ${app.initialConfig.bodyLimit} bytes`)));
      return;
    }
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    void reply
      .code(status)
      .header('content-type', 'application/json')
      .send(Buffer.from(errorBody(status === 500 ? `Internal error: ${err.message}` : err.message)));
  });
}
