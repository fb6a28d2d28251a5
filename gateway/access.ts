/**
 * Who may use which surface, and over what transport: bearer tokens for admin surfaces and (optionally)
 * for inference, and TLS material for both front doors. Shared by REST and gRPC so the rules are one.
 *
 *   --admin_token   required by config reloads (REST POST /v1/config:reload, gRPC HandleReloadConfigRequest)
 *   --api_token     when set, required by every other /v1 and /v2 route and gRPC method (the admin token
 *                   works too)
 * Health, readiness and metrics stay open, for probes and scrapers (also the Open Inference Protocol's:
 * REST /v2/health/live and /v2/health/ready, gRPC ServerLive and ServerReady).
 */
import { timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { loadProtoRoot } from '../common/protos.js';
import { parseTextFormat } from '../common/text-format.js';

export interface AccessTokens {
  admin: string;
  api: string;
}

export type Surface = 'admin' | 'api' | 'open';

/** The token in `Authorization: Bearer <token>`, or undefined. */
export function bearer(header: string | undefined): string | undefined {
  const m = header ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
  return m?.[1];
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** undefined when allowed, else the reason (for a 401 / UNAUTHENTICATED answer). */
export function denied(surface: Surface, token: string | undefined, tokens: AccessTokens): string | undefined {
  if (surface === 'open') return undefined;
  // Admin surfaces take the admin token, or the API token when no admin token is set; API surfaces
  // take either. A surface with no token configured is open.
  const wanted =
    surface === 'admin' ? (tokens.admin ? [tokens.admin] : tokens.api ? [tokens.api] : []) : tokens.api ? [tokens.api, tokens.admin] : [];
  if (wanted.length === 0) return undefined;
  if (token !== undefined && wanted.some((w) => w !== '' && same(token, w))) return undefined;
  return token === undefined
    ? `${surface === 'admin' ? 'Admin' : 'API'} token required (Authorization: Bearer <token>)`
    : `Invalid ${surface === 'admin' ? 'admin' : 'API'} token`;
}

export interface GrpcTls {
  key: Buffer;
  cert: Buffer;
  ca: Buffer | null;
  clientVerify: boolean;
}

/** Reads TF Serving's SSLConfig text file (PEM strings inside); errors carry file:line:col. */
export async function loadSslConfig(file: string): Promise<GrpcTls> {
  const type = loadProtoRoot(['tensorflow_serving/config/ssl_config.proto']).lookupType('tensorflow.serving.SSLConfig');
  const abs = path.resolve(file);
  const { value } = parseTextFormat(await readFile(abs, 'utf8'), type, abs);
  const v = value as { server_key?: string; server_cert?: string; custom_ca?: string; client_verify?: boolean };
  if (!v.server_key || !v.server_cert) throw new Error(`${abs}: server_key and server_cert are required`);
  return {
    key: Buffer.from(v.server_key),
    cert: Buffer.from(v.server_cert),
    ca: v.custom_ca ? Buffer.from(v.custom_ca) : null,
    clientVerify: v.client_verify === true,
  };
}
