/**
 * Bounded, seeded fuzzing of modelgate's inputs with fast-check (issue 9 part 4). One module holds the
 * generators and the properties; `test/*\/fuzz-*.test.ts` run a few hundred cases of each inside
 * `npm test`, and `bench/fuzz.ts` (`npm run fuzz -- --cases=100000`) runs the same ones at scale.
 *
 * Properties are written as checks that RECORD violations (never throw), so a run goes through all
 * its cases and reports every failure with its input, rather than stopping at the first.
 *
 * - REST: TF Serving's route shapes with mutated names, versions, labels, percent-escapes, methods and
 *   verbs; predict/classify/regress bodies from valid ones, mutated (wrong types, deep nesting, huge and
 *   non-finite numbers, truncation, random bytes, gzip with wrong content, b64 junk, oversize). Every
 *   answer must arrive within the client timeout with a documented status, and on /v1 paths a non-200
 *   answer must be `{"error": string}` JSON.
 * - Open Inference Protocol (v2) REST: `/v2` route shapes (models, versions as numbers and labels,
 *   infer/ready/metadata tails, health) and infer bodies from valid ones, mutated as above, plus
 *   Triton's binary tensor data extension with honest, short, long and malformed
 *   `Inference-Header-Content-Length`s. Same properties as /v1: a documented status, and a non-200
 *   answer is `{"error": string}` JSON (the ready routes' 400 `{"ready": false}` excepted).
 * - Raw TCP: random bytes and mangled request heads on a socket; the connection must end (answered
 *   or closed) within a bound.
 * - gRPC: random PredictRequest, GetModelMetadataRequest and GetModelStatusRequest messages, and the
 *   v2 GRPCInferenceService's ModelInferRequest (typed and raw contents), ModelMetadataRequest and
 *   ModelReadyRequest (encoded from our protos, then sometimes mangled), and raw random bytes on every
 *   method; the status must be one of the documented ones.
 * - Text configs: mutated models.config and BatchingParameters texts either parse or fail with
 *   `file:line:col: ` (ConfigError / BatchingConfigError), never another exception, never slowly.
 *
 * Traffic goes to loopback only; every request has a timeout; every run has a case count.
 */
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { request, type Dispatcher } from 'undici';
import { loadProtoRoot } from '../../common/protos.js';
import { ConfigError, parseServerConfig } from '../../gateway/config/model-config.js';
import { BatchingConfigError, parseBatchingParameters } from '../../common/batching-parameters.js';
import { GatewayProcess } from './gateway-process.js';
import { freePort, standardRepo } from './repo.js';

// ---------------------------------------------------------------------------------------------------
// Bookkeeping

export interface FuzzStats {
  cases: number;
  /** Cases the client itself refused to send (e.g. a header value undici will not write). */
  skipped: number;
  violations: string[];
  /** How many violations in all (only the first few are kept with their inputs). */
  violationCount: number;
  /** "REST 400", "gRPC INVALID_ARGUMENT", "config error", ... → count. */
  seen: Record<string, number>;
}

export function newStats(): FuzzStats {
  return { cases: 0, skipped: 0, violations: [], violationCount: 0, seen: {} };
}

const KEEP_VIOLATIONS = 20;

function violation(stats: FuzzStats, what: string): void {
  stats.violationCount++;
  if (stats.violations.length < KEEP_VIOLATIONS) stats.violations.push(what);
}

function see(stats: FuzzStats, key: string): void {
  stats.seen[key] = (stats.seen[key] ?? 0) + 1;
}

export function mergeStats(into: FuzzStats, from: FuzzStats): void {
  into.cases += from.cases;
  into.skipped += from.skipped;
  into.violationCount += from.violationCount;
  for (const v of from.violations) if (into.violations.length < KEEP_VIOLATIONS) into.violations.push(v);
  for (const [k, n] of Object.entries(from.seen)) into.seen[k] = (into.seen[k] ?? 0) + n;
}

/** A short printable form of an input for violation reports. */
export function show(value: unknown, max = 400): string {
  let s: string;
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) {
    const b = Buffer.from(value);
    s = `<${b.length} bytes ${b.subarray(0, max / 2).toString('hex')}${b.length > max / 2 ? '…' : ''}>`;
  } else {
    s = typeof value === 'string' || (typeof value === 'object' && value !== null) ? JSON.stringify(value) : String(value);
  }
  return s.length > max ? `${s.slice(0, max)}…(${s.length} chars)` : s;
}

/**
 * Runs `check` on `numRuns` values of `arb`, with `concurrency` independent seeded streams (seed,
 * seed+1, ...). Checks record their own violations; a check that throws is a violation too.
 */
/** A 32-bit seed for stream `k` of a run seeded `seed` (a multiply-xorshift mix of both). */
export function streamSeed(seed: number, k: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(k + 1, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x27d4eb2f);
  return (h ^ (h >>> 15)) | 0;
}

export async function runCases<T>(
  arb: fc.Arbitrary<T>,
  check: (value: T, stats: FuzzStats) => Promise<void> | void,
  options: { numRuns: number; seed: number; concurrency?: number; stats: FuzzStats; label: string },
): Promise<void> {
  const streams = Math.max(1, Math.min(options.concurrency ?? 1, options.numRuns));
  const per = Math.floor(options.numRuns / streams);
  await Promise.all(
    Array.from({ length: streams }, async (_, k) => {
      const runs = per + (k < options.numRuns % streams ? 1 : 0);
      if (runs === 0) return;
      await fc.assert(
        fc.asyncProperty(arb, async (value) => {
          options.stats.cases++;
          try {
            await check(value, options.stats);
          } catch (err) {
            violation(options.stats, `${options.label}: check threw ${(err as Error).stack ?? err} on ${show(value)}`);
          }
          return true;
        }),
        // Streams get well-separated seeds: with `seed + k`, runs with neighbouring seeds would share
        // all but one stream and so replay the same cases.
        { seed: streamSeed(options.seed, k), numRuns: runs, endOnFailure: true },
      );
    }),
  );
}

// ---------------------------------------------------------------------------------------------------
// REST: paths

export const FUZZ_MODELS = ['half_plus_two', 'add_sub', 'mlp', 'dtypes', 'broken'] as const;

/** Every HTTP status a /v1 route is documented to answer (README: REST API, Limits, Security). */
export const DOCUMENTED_REST_STATUSES = new Set([200, 400, 401, 404, 413, 429, 499, 501, 503, 504]);
/**
 * Statuses Node's HTTP server answers on its own before any route runs (documented in the README's
 * Limits: a request head over 16 KiB gets 431; a request line or header the parser rejects, 400), and
 * the interim `100 Continue` it sends to a request with `Expect: 100-continue` before the final answer.
 */
export const PROTOCOL_STATUSES = new Set([100, 400, 431]);

/** URL-safe characters plus the ones TF Serving's regexes care about, and percent-escape debris. */
const SEGMENT_UNITS = [
  ...'abcdefghijklmnopqrstuvwxyz_ABCXYZ0123456789-.~',
  ...'!$&\'()*+,;=@',
  '%', '%41', '%2F', '%2f', '%3A', '%00', '%zz', '%G1', '%C3%28', '%E2%82%AC', '%F0%9F%98%80', '%ED%A0%80', '%FF',
  ':', '/', '//', '?', '#', '[', ']', '|', '^', '`', '{', '}', '"', '<', '>', '\\',
];

const segmentArb = fc.string({ unit: fc.constantFrom(...SEGMENT_UNITS), maxLength: 24 });

const nameArb = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...FUZZ_MODELS) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'nope', 'MLP', 'Mlp', 'ml%70', '%6D%6C%70', 'mlp%', 'mlp%zz', '%C3%28', '%00', 'mlp%00', '%2F', '..', '.',
      '%2e%2e', 'a+b', '~', '%E2%82%AC', 'half_plus_two%20', 'half_plus_two%3Apredict', '__proto__', 'constructor',
    ),
  },
  { weight: 2, arbitrary: segmentArb },
);

const versionArb = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      '1', '2', '123', '00000123', '0', '3', '007', '9223372036854775807', '9223372036854775808', '18446744073709551616',
      '99999999999999999999999999999999', '-1', '1.0', '1e3', 'one', '', '+1', ' 1', '%31', '0x1',
    ),
  },
  { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 2n ** 70n }).map(String) },
  { weight: 1, arbitrary: segmentArb },
);

const labelArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('stable', 'canary', 'STABLE', 'nope', 'st%61ble', '%zz', '%C3%28', '', '1') },
  { weight: 1, arbitrary: segmentArb },
);

const verbArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('predict', 'classify', 'regress') },
  {
    weight: 2,
    arbitrary: fc.constantFrom('PREDICT', 'Predict', 'ClAsSiFy', 'predictx', '', 'predict:predict', 'metadata', 'multi_inference', 'reload'),
  },
  { weight: 1, arbitrary: segmentArb },
);

const modelPathArb = fc
  .tuple(
    fc.constantFrom('/v1/models/', '/v1/models/', '/v1/models/', '/V1/MODELS/', '/v1/Models/', '//v1/models/', '/v1//models/', '/v1/models//'),
    nameArb,
    fc.oneof(
      { weight: 3, arbitrary: fc.constant('') },
      { weight: 2, arbitrary: versionArb.map((v) => `/versions/${v}`) },
      { weight: 2, arbitrary: labelArb.map((l) => `/labels/${l}`) },
      { weight: 1, arbitrary: fc.tuple(versionArb, labelArb).map(([v, l]) => `/versions/${v}/labels/${l}`) },
      { weight: 1, arbitrary: fc.constantFrom('/VERSIONS/1', '/Labels/stable', '/versions/', '/labels/', '/versions', '/labels') },
    ),
    fc.oneof(
      { weight: 5, arbitrary: verbArb.map((v) => `:${v}`) },
      { weight: 2, arbitrary: fc.constantFrom('/metadata', '/METADATA', '', '/', '/labels', '/metadata/x', ':predict/x', '::predict', ':') },
      { weight: 1, arbitrary: segmentArb.map((s) => `/${s}`) },
    ),
  )
  .map(([prefix, name, selector, tail]) => `${prefix}${name}${selector}${tail}`);

const v2PathArb = fc.oneof(
  {
    weight: 5,
    arbitrary: fc
      .tuple(
        fc.constantFrom('/v2/models/', '/v2/models/', '/v2/models/', '/V2/models/', '/v2/Models/', '//v2/models/', '/v2//models/'),
        nameArb,
        fc.oneof(
          { weight: 3, arbitrary: fc.constant('') },
          { weight: 2, arbitrary: versionArb.map((v) => `/versions/${v}`) },
          { weight: 2, arbitrary: labelArb.map((l) => `/versions/${l}`) },
          { weight: 1, arbitrary: fc.constantFrom('/versions/', '/versions', '/labels/stable', '/VERSIONS/1') },
        ),
        fc.oneof(
          { weight: 4, arbitrary: fc.constantFrom('/infer', '/ready', '') },
          { weight: 1, arbitrary: fc.constantFrom('/INFER', '/infer/', '/metadata', '/', ':predict', '/generate', '/infer/x') },
          { weight: 1, arbitrary: segmentArb.map((s) => `/${s}`) },
        ),
      )
      .map(([prefix, name, selector, tail]) => `${prefix}${name}${selector}${tail}`),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '/v2', '/v2/', '/v2/health/live', '/v2/health/ready', '/v2/health', '/v2/health/x', '/v2/models', '/v2/models/',
      '/v2/repository/index', '/v2/models/stats', '/v2/systemsharedmemory/status', '/v2/cudasharedmemory/status', '/v2/trace/setting',
    ),
  },
);

const otherPathArb = fc.oneof(
  fc.constantFrom(
    '/', '/v1', '/v1/', '/v2/models/mlp:predict', '/healthz', '/readyz', '/v1/models', '/v1/models/', '/v1/config',
    '/v1/config:reload', '/v1/cluster', '/v1/models/mlp/labels', '/v1/models/nope/labels', '/monitoring/prometheus/metrics',
    '/favicon.ico', '/v1/models/mlp/versions/1/metadata', '*', '/%', '/v1/%zz', '/v1/models/%',
  ),
  segmentArb.map((s) => `/${s}`),
  fc.array(segmentArb, { maxLength: 6 }).map((parts) => `/v1/${parts.join('/')}`),
);

const queryArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant('') },
  { weight: 1, arbitrary: fc.constantFrom('?', '?a=b', '?signature_name=x', '?%zz', '?x=:predict', '?&&==') },
  { weight: 1, arbitrary: segmentArb.map((s) => `?${s}`) },
);

/** A path, sometimes far over Node's 16 KiB request-head limit. */
export const restPathArb = fc
  .tuple(
    fc.oneof({ weight: 5, arbitrary: modelPathArb }, { weight: 2, arbitrary: v2PathArb }, { weight: 1, arbitrary: otherPathArb }),
    queryArb,
    fc.oneof({ weight: 30, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(2000, 17000) }),
  )
  .map(([p, q, pad]) => (pad ? `${p}${'a'.repeat(pad)}` : p) + q);

const methodArb = fc.oneof(
  { weight: 10, arbitrary: fc.constant('POST') },
  { weight: 4, arbitrary: fc.constant('GET') },
  {
    weight: 3,
    arbitrary: fc.constantFrom('PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND', 'SEARCH', 'PURGE', 'MKCOL', 'LOCK', 'COPY', 'REPORT', 'NOTIFY'),
  },
);

// ---------------------------------------------------------------------------------------------------
// REST: bodies

/**
 * A JSON tree that can hold what JSON.stringify cannot write: raw number tokens (NaN, 1e400, 20-digit
 * integers, invalid forms), nesting far deeper than a JS stack, and long repeats.
 */
type J =
  | null
  | boolean
  | number
  | string
  | J[]
  | { [k: string]: J }
  | { __raw: string }
  | { __deep: number; open: '[' | '{"a":'; inner: J }
  | { __repeat: J; n: number };

const isObj = (v: J): v is { [k: string]: J } => v !== null && typeof v === 'object' && !Array.isArray(v);

const REPEAT_BYTES = 2 * 2 ** 20;

function emit(v: J, out: string[]): void {
  if (v === null || typeof v === 'boolean' || typeof v === 'number') {
    out.push(typeof v === 'number' && !Number.isFinite(v) ? String(v) : JSON.stringify(v));
  } else if (typeof v === 'string') {
    out.push(JSON.stringify(v));
  } else if (Array.isArray(v)) {
    out.push('[');
    v.forEach((x, i) => {
      if (i) out.push(',');
      emit(x, out);
    });
    out.push(']');
  } else if ('__raw' in v && typeof v.__raw === 'string') {
    out.push(v.__raw);
  } else if ('__deep' in v && typeof v.__deep === 'number') {
    const d = v as { __deep: number; open: string; inner: J };
    out.push(d.open.repeat(d.__deep));
    emit(d.inner, out);
    out.push((d.open === '[' ? ']' : '}').repeat(d.__deep));
  } else if ('__repeat' in v && typeof (v as { n?: unknown }).n === 'number') {
    const r = v as { __repeat: J; n: number };
    const one: string[] = [];
    emit(r.__repeat, one);
    const s = one.join('');
    // Repeats stay under about 2 MiB each (nested repeats would otherwise multiply).
    const n = Math.min(r.n, Math.floor(REPEAT_BYTES / (s.length + 1)));
    out.push('[', Array.from({ length: n }, () => s).join(','), ']');
  } else {
    out.push('{');
    Object.entries(v).forEach(([k, x], i) => {
      if (i) out.push(',');
      out.push(JSON.stringify(k), ':');
      emit(x, out);
    });
    out.push('}');
  }
}

export function emitJson(v: J): string {
  const out: string[] = [];
  emit(v, out);
  return out.join('');
}

const image = (seed: number) => Array.from({ length: 784 }, (_, i) => ((i * 7 + seed) % 17) / 17);

/** Valid bodies for the standard repository's models (and for classify/regress shapes). */
const VALID_BODIES: J[] = [
  { instances: [1.0, 2.0, 5.0] },
  { instances: [[1.0], [2.0]] },
  { inputs: [1.0, 2.0] },
  { inputs: 4 },
  { inputs: { x: [[6]] }, signature_name: 'serving_default' },
  { instances: [{ input_x: [1, 2], input_y: [10, 20] }, { input_x: [3, 4], input_y: [30, 40] }] },
  { inputs: { input_x: [[1, 2]], input_y: [[1, 1]] } },
  { instances: [image(1)] },
  { inputs: { images: [image(2), image(3)] } },
  {
    inputs: {
      in_float16: [0.5], in_float: [1.5], in_double: [0.1], in_int8: [-128], in_int16: [1], in_int32: [2],
      in_int64: [{ __raw: '9223372036854775807' }], in_uint8: [255], in_uint16: [1], in_uint32: [1],
      in_uint64: [{ __raw: '18446744073709551615' }], in_bool: [true], in_string: ['a', { b64: 'Ynl0ZXMh' }],
    },
  },
  { examples: [{ x: 1.0 }, { x: [2.0] }] },
  { signature_name: 'regress_x_to_y', examples: [{ x: 1 }], context: { y: 1 } },
  { instances: [{ b64: 'AAAA' }] },
];

/** Valid v2 infer bodies (JSON `data`) for the standard repository's models, by route. */
const VALID_V2_BODIES: Array<[route: string, body: J]> = [
  ['/v2/models/half_plus_two/infer', { id: 'a', inputs: [{ name: 'x', shape: [3], datatype: 'FP32', data: [1.0, 2.0, 5.0] }] }],
  ['/v2/models/half_plus_two/versions/123/infer', { inputs: [{ name: 'x', shape: [2, 1], datatype: 'FP32', data: [[1.0], [2.0]] }], outputs: [{ name: 'y' }] }],
  [
    '/v2/models/add_sub/infer',
    {
      inputs: [
        { name: 'input_x', shape: [1, 2], datatype: 'FP32', data: [1, 2] },
        { name: 'input_y', shape: [1, 2], datatype: 'FP32', data: [[10, 20]] },
      ],
      outputs: [{ name: 'result_sub', parameters: { binary_data: false } }],
      parameters: { binary_data_output: false },
    },
  ],
  ['/v2/models/mlp/versions/canary/infer', { inputs: [{ name: 'images', shape: [1, 784], datatype: 'FP32', data: image(4) }] }],
  ['/v2/models/mlp/versions/1/infer', { inputs: [{ name: 'images', shape: [2, 784], datatype: 'FP32', data: [image(5), image(6)] }] }],
  [
    '/v2/models/dtypes/infer',
    {
      inputs: [
        ['float16', 'FP16', 0.5], ['float', 'FP32', 1.5], ['double', 'FP64', 0.1], ['int8', 'INT8', -128], ['int16', 'INT16', 1],
        ['int32', 'INT32', 2], ['int64', 'INT64', { __raw: '9223372036854775807' }], ['uint8', 'UINT8', 255], ['uint16', 'UINT16', 1],
        ['uint32', 'UINT32', 1], ['uint64', 'UINT64', { __raw: '18446744073709551615' }], ['bool', 'BOOL', true], ['string', 'BYTES', 'é'],
      ].map(([n, dt, v]) => ({ name: `in_${n as string}`, shape: [1], datatype: dt as string, data: [v as J] })),
    },
  ],
];

const rawTokenArb: fc.Arbitrary<J> = fc
  .constantFrom(
    'NaN', 'Infinity', '-Infinity', '-NaN', 'nan', 'inf', 'Inf', '1e400', '-1e400', '1e-400', '-0', '0.0', '1.',
    '.5', '01', '0x10', '+1', '1e', '1e+', '--1', '123456789012345678901234567890', '-9223372036854775809',
    '18446744073709551616', '9007199254740993', '4.9e-324', '1.7976931348623157e309', 'true', 'null', 'undefined',
    '"\\ud800"', '"\\u00"', '"\\x41"', '"\u0000"', '"\\/"', '\'single\'', '[,]', '{,}', '[1,]', '{"a":1,}', '{"a"}', '{1:2}',
  )
  .map((t) => ({ __raw: t }));

const b64JunkArb: fc.Arbitrary<J> = fc
  .oneof(
    fc.constantFrom('', '=', '====', 'A', 'AB', 'ABC', 'A===', '!!!', 'Ynl0ZXMh\n', 'Ynl0 ZXMh', 'Ynl0ZXMh==', '\u00ff\u00fe', '_-_-', 'YQ'),
    fc.base64String({ maxLength: 40 }),
    fc.string({ maxLength: 20 }),
  )
  .chain((s) =>
    fc.constantFrom<J>({ b64: s }, { b64: s, extra: 1 }, { b64: 5 }, { b64: null }, { b64: [s] }, { B64: s }, [{ b64: s }], { inputs: { b64: s } }),
  );

/** Names that a lookup in a plain object would find on Object.prototype. */
const PROTOTYPE_NAMES = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__'] as const;

const leafArb: fc.Arbitrary<J> = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<J> },
  { weight: 1, arbitrary: fc.constantFrom<J>(...PROTOTYPE_NAMES) },
  { weight: 2, arbitrary: rawTokenArb },
  { weight: 1, arbitrary: b64JunkArb },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.constantFrom<J>([], {}, [[]], [{}], '', 'x', [1, 'a'], [[1, 2], [3]], [[1], [2, 3]], [true, 1.5]) },
);

type Mutation =
  | { op: 'replace'; at: number; value: J }
  | { op: 'deep'; at: number; depth: number; open: '[' | '{"a":' }
  | { op: 'repeat'; at: number; n: number }
  | { op: 'rename'; at: number; key: string }
  | { op: 'addKey'; at: number; key: string; value: J }
  | { op: 'drop'; at: number };

const keyArb = fc.oneof(
  fc.constantFrom('instances', 'inputs', 'signature_name', 'examples', 'context', 'x', 'input_x', 'images', 'b64', 'in_string', 'instance', 'Inputs', '', '__proto__', 'constructor'),
  fc.constantFrom('name', 'shape', 'datatype', 'data', 'parameters', 'outputs', 'id', 'binary_data_size', 'binary_data', 'binary_data_output'),
  fc.string({ maxLength: 8 }),
);

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('replace' as const), at: fc.nat(), value: leafArb }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('deep' as const),
      at: fc.nat(),
      depth: fc.constantFrom(2, 10, 64, 500, 5000, 100_001),
      open: fc.constantFrom<'[' | '{"a":'>('[', '{"a":'),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('repeat' as const), at: fc.nat(), n: fc.constantFrom(0, 2, 100, 5000, 60_000) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('rename' as const), at: fc.nat(), key: keyArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('addKey' as const), at: fc.nat(), key: keyArb, value: leafArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('drop' as const), at: fc.nat() }) },
);

/** Nodes of a plain tree in preorder, each with a setter that replaces it. */
function nodes(root: { v: J }): { get: () => J; set: (x: J) => void }[] {
  const out: { get: () => J; set: (x: J) => void }[] = [];
  const walk = (get: () => J, set: (x: J) => void, depth: number) => {
    out.push({ get, set });
    const v = get();
    if (depth > 8 || v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      // Long arrays (images) contribute a few elements only.
      const n = Math.min(v.length, 4);
      for (let i = 0; i < n; i++) walk(() => v[i] as J, (x) => (v[i] = x), depth + 1);
    } else if (!('__raw' in v) && !('__deep' in v) && !('__repeat' in v)) {
      for (const k of Object.keys(v)) walk(() => v[k] as J, (x) => (v[k] = x), depth + 1);
    }
  };
  walk(() => root.v, (x) => (root.v = x), 0);
  return out;
}

function applyMutation(root: { v: J }, m: Mutation): void {
  const all = nodes(root);
  const node = all[m.at % all.length]!;
  switch (m.op) {
    case 'replace':
      // Generated values may be shared constants: insert copies, or mutations would build cycles.
      node.set(structuredClone(m.value));
      return;
    case 'deep':
      node.set({ __deep: m.depth, open: m.open, inner: node.get() });
      return;
    case 'repeat':
      node.set({ __repeat: node.get(), n: m.n });
      return;
    case 'rename':
    case 'addKey':
    case 'drop': {
      const objs = all.map((n) => n.get()).filter((v): v is { [k: string]: J } => isObj(v) && !('__raw' in v) && !('__deep' in v) && !('__repeat' in v));
      const obj = objs[m.at % Math.max(1, objs.length)];
      if (!obj) return;
      const keys = Object.keys(obj);
      if (m.op === 'addKey') {
        Object.defineProperty(obj, m.key, { value: structuredClone(m.value), enumerable: true, configurable: true, writable: true });
        return;
      }
      const k = keys[m.at % Math.max(1, keys.length)];
      if (k === undefined) return;
      const value = obj[k] as J;
      delete obj[k];
      if (m.op === 'rename') Object.defineProperty(obj, m.key, { value, enumerable: true, configurable: true, writable: true });
    }
  }
}

type TextMutation =
  | { op: 'none' }
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'overwrite'; at: number; bytes: Uint8Array }
  | { op: 'prefix'; bytes: Uint8Array };

const textMutationArb: fc.Arbitrary<TextMutation> = fc.oneof(
  { weight: 8, arbitrary: fc.constant({ op: 'none' as const }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('overwrite' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('prefix' as const),
      bytes: fc.constantFrom(Uint8Array.of(0xef, 0xbb, 0xbf), Uint8Array.of(0xfe, 0xff), Uint8Array.of(0x20, 0x0a), Uint8Array.of(0)),
    }),
  },
);

function applyTextMutation(buf: Buffer, m: TextMutation): Buffer {
  const at = 'at' in m ? m.at % (buf.length + 1) : 0;
  switch (m.op) {
    case 'none':
      return buf;
    case 'truncate':
      return buf.subarray(0, at);
    case 'insert':
      return Buffer.concat([buf.subarray(0, at), m.bytes, buf.subarray(at)]);
    case 'overwrite': {
      const out = Buffer.from(buf);
      Buffer.from(m.bytes).copy(out, Math.min(at, Math.max(0, out.length - 1)));
      return out;
    }
    case 'prefix':
      return Buffer.concat([m.bytes, buf]);
  }
}

type Encoding =
  | { kind: 'plain' }
  | { kind: 'gzip' }
  | { kind: 'gzip-header-only' }
  | { kind: 'gzip-corrupt'; at: number; byte: number }
  | { kind: 'gzip-truncated'; at: number }
  | { kind: 'gzip-bomb'; mib: number }
  | { kind: 'other-header'; value: string };

const encodingArb: fc.Arbitrary<Encoding> = fc.oneof(
  { weight: 60, arbitrary: fc.constant({ kind: 'plain' as const }) },
  { weight: 15, arbitrary: fc.constant({ kind: 'gzip' as const }) },
  { weight: 10, arbitrary: fc.constant({ kind: 'gzip-header-only' as const }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('gzip-corrupt' as const), at: fc.nat(), byte: fc.nat(255) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('gzip-truncated' as const), at: fc.nat() }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('other-header' as const), value: fc.constantFrom('deflate', 'br', 'identity', 'gzip, deflate', 'x-gzip', 'GZIP', 'gzip, gzip', 'zstd', '') }) },
  // Inflates past TF's 100 MB cap (101 MiB) or just under it (8 MiB): rare, they cost the worker time.
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('gzip-bomb' as const), mib: fc.constantFrom(8, 101) }) },
);

const bombs = new Map<number, Buffer>();
function gzipBomb(mib: number): Buffer {
  let b = bombs.get(mib);
  if (!b) {
    // A valid JSON prefix, then spaces: inflates to `mib` MiB.
    b = gzipSync(Buffer.concat([Buffer.from('{"instances": [1.0]}'), Buffer.alloc(mib * 2 ** 20, 0x20)]), { level: 9 });
    bombs.set(mib, b);
  }
  return b;
}

export interface RestCase {
  method: string;
  path: string;
  body: Buffer | undefined;
  headers: Record<string, string>;
}

/** A body over the gateway's --max_request_bytes, which must get 413. */
export const oversizeBody = (limit: number) => fc.integer({ min: 1, max: 4096 }).map((extra) => Buffer.alloc(limit + extra, 0x20));

export function restBodyArb(maxRequestBytes: number): fc.Arbitrary<{ body: Buffer; encoding?: string }> {
  const fromValid = fc
    .tuple(fc.nat(VALID_BODIES.length - 1), fc.array(mutationArb, { maxLength: 3 }), textMutationArb, encodingArb)
    .map(([i, mutations, textMutation, enc]) => {
      const root = { v: structuredClone(VALID_BODIES[i]!) as J };
      for (const m of mutations) applyMutation(root, m);
      const text = applyTextMutation(Buffer.from(emitJson(root.v)), textMutation);
      switch (enc.kind) {
        case 'plain':
          return { body: text };
        case 'gzip':
          return { body: gzipSync(text), encoding: 'gzip' };
        case 'gzip-header-only':
          return { body: text, encoding: 'gzip' };
        case 'gzip-corrupt': {
          const z = gzipSync(text);
          z[enc.at % z.length] = enc.byte;
          return { body: z, encoding: 'gzip' };
        }
        case 'gzip-truncated': {
          const z = gzipSync(text);
          return { body: z.subarray(0, enc.at % z.length), encoding: 'gzip' };
        }
        case 'gzip-bomb':
          return { body: gzipBomb(enc.mib), encoding: 'gzip' };
        case 'other-header':
          return { body: text, encoding: enc.value };
      }
    });
  return fc.oneof(
    { weight: 200, arbitrary: fromValid },
    { weight: 20, arbitrary: fc.uint8Array({ maxLength: 2048 }).map((b) => ({ body: Buffer.from(b) })) },
    { weight: 10, arbitrary: fc.uint8Array({ maxLength: 512 }).map((b) => ({ body: Buffer.from(b), encoding: 'gzip' })) },
    { weight: 10, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }).map((s) => ({ body: Buffer.from(s) })) },
    { weight: 3, arbitrary: oversizeBody(maxRequestBytes).map((body) => ({ body })) },
  );
}

const headerValueArb = fc.string({ unit: fc.constantFrom(...'abcXYZ019 -_./;=:,+*"\'()'), maxLength: 40 });

/** Routes that reach a worker, so that half the bodies are judged by the worker's codec. */
const WORKER_ROUTES = [
  '/v1/models/half_plus_two:predict', '/v1/models/half_plus_two/versions/123:predict', '/v1/models/add_sub:predict',
  '/v1/models/mlp/labels/stable:predict', '/v1/models/mlp/versions/2:predict', '/v1/models/mlp:predict',
  '/v1/models/dtypes:predict', '/v1/models/half_plus_two:classify', '/v1/models/add_sub:regress',
];

export function restCaseArb(maxRequestBytes: number): fc.Arbitrary<RestCase> {
  const toWorker = fc
    .tuple(fc.constantFrom(...WORKER_ROUTES), restBodyArb(maxRequestBytes))
    .map(([path, body]): RestCase => ({
      method: 'POST',
      path,
      body: body.body,
      headers: body.encoding !== undefined ? { 'content-encoding': body.encoding } : {},
    }));
  return fc.oneof(toWorker, v2CaseArb(), anyRestCaseArb(maxRequestBytes));
}

/** A v2 body: a valid one, mutated; sometimes split into Triton's JSON header + binary section. */
function v2CaseArb(): fc.Arbitrary<RestCase> {
  return fc
    .tuple(
      fc.nat(VALID_V2_BODIES.length - 1),
      fc.array(mutationArb, { maxLength: 3 }),
      textMutationArb,
      fc.oneof(
        { weight: 3, arbitrary: fc.constant<{ kind: 'json' }>({ kind: 'json' }) },
        {
          weight: 2,
          arbitrary: fc.record({
            kind: fc.constant('binary' as const),
            blob: fc.uint8Array({ maxLength: 64 }),
            // The header's value: honest, off by some bytes, or not a number at all.
            skew: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: -40, max: 40 }) }),
            junk: fc.option(fc.constantFrom('', 'abc', '-1', '1e3', '99999999999', ' 12', '0x10', '4294967295'), { freq: 5, nil: undefined }),
          }),
        },
      ),
    )
    .map(([i, mutations, textMutation, mode]): RestCase => {
      const [path, valid] = VALID_V2_BODIES[i]!;
      const root = { v: structuredClone(valid) as J };
      const doc = root.v as { [k: string]: J };
      if (mode.kind === 'binary' && Array.isArray(doc.inputs)) {
        // The first input's data moves to the binary section (its size claimed as the blob's).
        const first = doc.inputs[0] as { [k: string]: J } | undefined;
        if (first !== undefined) {
          delete first.data;
          first.parameters = { binary_data_size: mode.blob.length };
        }
        doc.parameters = { binary_data_output: true };
      }
      for (const m of mutations) applyMutation(root, m);
      const text = applyTextMutation(Buffer.from(emitJson(root.v)), textMutation);
      if (mode.kind === 'json') return { method: 'POST', path, body: text, headers: { 'content-type': 'application/json' } };
      const headerLength = mode.junk ?? String(Math.max(0, text.length + mode.skew));
      return {
        method: 'POST',
        path,
        body: Buffer.concat([text, mode.blob]),
        headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': headerLength },
      };
    });
}

function anyRestCaseArb(maxRequestBytes: number): fc.Arbitrary<RestCase> {
  return fc
    .record({
      method: methodArb,
      path: restPathArb,
      body: fc.option(restBodyArb(maxRequestBytes), { freq: 6, nil: undefined }),
      contentType: fc.option(
        fc.oneof(fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'application/grpc'), headerValueArb),
        { nil: undefined },
      ),
      requestId: fc.option(fc.oneof(headerValueArb, fc.constant('x'.repeat(200))), { freq: 4, nil: undefined }),
      authorization: fc.option(fc.constantFrom('Bearer x', 'Bearer', 'Basic Zm9vOmJhcg==', ''), { freq: 8, nil: undefined }),
    })
    .map(({ method, path, body, contentType, requestId, authorization }) => {
      const headers: Record<string, string> = {};
      if (contentType !== undefined) headers['content-type'] = contentType;
      if (requestId !== undefined) headers['x-request-id'] = requestId;
      if (authorization !== undefined) headers.authorization = authorization;
      if (body?.encoding !== undefined) headers['content-encoding'] = body.encoding;
      // GET and HEAD bodies are rare in practice; keep a few for the parser's sake.
      const withBody = body && (method !== 'GET' && method !== 'HEAD' ? true : body.body.length % 7 === 0);
      return { method, path, body: withBody ? body.body : undefined, headers };
    });
}

/** libevent's 404 page, which the gateway sends for paths outside /v1/ (as TF Serving does). */
const NOT_FOUND_HTML_START = '<HTML><HEAD>';

export interface RestTarget {
  /** A pool on the gateway's origin: paths go out exactly as generated (no URL normalisation). */
  pool: Dispatcher;
  /** Client bound on one exchange. */
  timeoutMs: number;
}

/** Sends one case and checks the answer. */
export async function checkRestCase(target: RestTarget, c: RestCase, stats: FuzzStats): Promise<void> {
  const started = Date.now();
  // undici refuses these paths, and a Pool that refused one can stall the requests queued after it;
  // they are not sent (the raw TCP cases send such request lines).
  if (!c.path.startsWith('/') || /[^\u0021-\u00ff]/.test(c.path)) {
    stats.skipped++;
    see(stats, 'REST client-refused');
    return;
  }
  let status: number;
  let text: string;
  let contentType: string;
  try {
    const res = await target.pool.request({
      path: c.path,
      method: c.method as 'POST',
      body: c.body,
      headers: c.headers,
      headersTimeout: target.timeoutMs,
      bodyTimeout: target.timeoutMs,
      signal: AbortSignal.timeout(target.timeoutMs + 1000),
    });
    status = res.statusCode;
    contentType = String(res.headers['content-type'] ?? '');
    text = await res.body.text();
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code === 'UND_ERR_INVALID_ARG' || e.name === 'InvalidArgumentError') {
      stats.skipped++;
      see(stats, 'REST client-refused');
      return;
    }
    // A server that answers early (413) may close the connection while the body still uploads.
    if (c.body && c.body.length > 65536 && (e.code === 'UND_ERR_SOCKET' || e.code === 'EPIPE' || e.code === 'ECONNRESET')) {
      see(stats, 'REST closed-while-uploading');
      return;
    }
    violation(stats, `REST no answer after ${Date.now() - started} ms (${e.code ?? e.name}: ${e.message}) for ${c.method} ${show(c.path, 200)} ${show(c.headers)} body ${show(c.body ?? '')}`);
    return;
  }
  see(stats, `REST ${status}`);
  const rawPath = c.path.split('?')[0] as string;
  // /v1/ (TF Serving's API) and /v2 (the Open Inference Protocol's) answer errors as JSON.
  const v1 = /^\/v1\//i.test(rawPath) || /^\/v2(?:\/|$)/.test(rawPath);
  const where = `${c.method} ${show(c.path, 200)} ${show(c.headers, 200)} body ${show(c.body ?? '')}`;
  if (!DOCUMENTED_REST_STATUSES.has(status) && !PROTOCOL_STATUSES.has(status)) {
    violation(stats, `REST undocumented status ${status} ${show(text, 300)} for ${where}`);
    return;
  }
  if (status === 200 || c.method === 'HEAD' || c.method === 'OPTIONS' || status === 431) return;
  if (!v1) {
    // Outside /v1/: the HTML 404 by design, except the probes (/healthz, /readyz: 200 or 503).
    // --max_request_bytes holds for every path (413 before routing).
    const probe = /^\/(healthz|readyz)$/.test(rawPath) && (status === 200 || status === 503);
    if (status === 404 ? !text.startsWith(NOT_FOUND_HTML_START) : !probe && status !== 413) {
      violation(stats, `REST ${status} outside /v1 instead of the HTML 404: ${show(text)} for ${where}`);
    }
    return;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    violation(stats, `REST ${status} with a non-JSON body ${show(text, 300)} for ${where}`);
    return;
  }
  if (!contentType.startsWith('application/json')) violation(stats, `REST ${status} with content-type ${contentType} for ${where}`);
  // v2's readiness routes say "not ready" with 400 and their own body.
  const notReady = status === 400 && /^\/v2\/(health\/ready|models\/.*\/ready)$/.test(rawPath) && (parsed as { ready?: unknown } | null)?.ready === false;
  const error = (parsed as { error?: unknown } | null)?.error;
  if (typeof error !== 'string' && !notReady) violation(stats, `REST ${status} body without a string "error": ${show(text, 300)} for ${where}`);
  if (status === 500) violation(stats, `REST 500 ${show(text, 300)} for ${where}`);
}

// ---------------------------------------------------------------------------------------------------
// Raw TCP

export interface RawCase {
  bytes: Buffer;
}

const requestHeadArb = fc
  .tuple(
    fc.constantFrom('POST', 'GET', 'post', 'P0ST', 'GET GET', '', 'CONNECT', 'PRI'),
    fc.oneof(restPathArb, fc.constantFrom('*', 'http://127.0.0.1/v1/models/mlp', '', ' ', '/v1/models/mlp\t:predict')),
    fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/9', 'http/1.1', '', 'HTTP/1.1 extra'),
    fc.array(
      fc.oneof(
        fc.constantFrom(
          'Host: x', 'Content-Length: 5', 'Content-Length: -1', 'Content-Length: 99999999999999999999', 'Content-Length: 5, 6',
          'Transfer-Encoding: chunked', 'Transfer-Encoding: gzip, chunked', 'Content-Encoding: gzip', 'Expect: 100-continue',
          'Connection: close', 'Connection: upgrade', 'Upgrade: h2c', 'X: \u0001', ' folded: line', 'NoColon', ':empty',
          `X-Big: ${'b'.repeat(17000)}`,
        ),
        headerValueArb.map((v) => `X-Fuzz: ${v}`),
      ),
      { maxLength: 5 },
    ),
    fc.oneof(fc.constant(''), fc.constantFrom('{"instances": [1.0]}', '5\r\nhello\r\n0\r\n\r\n', 'zz\r\n', '\r\n\r\n'), fc.string({ maxLength: 40 })),
    fc.constantFrom('\r\n', '\n', '\r'),
  )
  .map(([method, path, version, headers, body, eol]) =>
    Buffer.from(`${method} ${path} ${version}${eol}${headers.join(eol)}${headers.length ? eol : ''}${eol}${body}`, 'latin1'),
  );

export const rawCaseArb: fc.Arbitrary<RawCase> = fc
  .oneof(
    { weight: 15, arbitrary: requestHeadArb },
    { weight: 5, arbitrary: fc.uint8Array({ maxLength: 1024 }).map((b) => Buffer.from(b)) },
    // An HTTP/2 preface on the REST port.
    { weight: 1, arbitrary: fc.constant(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')) },
  )
  .map((bytes) => ({ bytes }));

/**
 * Writes the bytes, half-closes, and waits for the server to finish with the connection. Whatever it
 * answers must start with a documented status; it must close within `timeoutMs`.
 */
export async function checkRawCase(host: string, port: number, c: RawCase, timeoutMs: number, stats: FuzzStats): Promise<void> {
  const answer = await new Promise<{ data: Buffer; closed: boolean; error?: string }>((resolve) => {
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean, error?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ data: Buffer.concat(chunks), closed, ...(error ? { error } : {}) });
    };
    const socket = net.connect({ host, port }, () => {
      socket.end(c.bytes);
    });
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', (err: Error & { code?: string }) => finish(true, err.code ?? err.message));
  });
  if (!answer.closed) {
    violation(stats, `TCP connection still open after ${timeoutMs} ms for ${show(c.bytes)} (got ${show(answer.data.toString('latin1'))})`);
    return;
  }
  const text = answer.data.toString('latin1');
  const statuses = [...text.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
  if (statuses.length === 0) {
    see(stats, answer.error ? `TCP closed (${answer.error})` : 'TCP closed, no answer');
    return;
  }
  if (statuses.at(-1)! < 200) violation(stats, `TCP only an interim ${statuses.at(-1)} answer for ${show(c.bytes)}: ${show(text, 300)}`);
  for (const s of statuses) {
    see(stats, `TCP ${s}`);
    if (!DOCUMENTED_REST_STATUSES.has(s) && !PROTOCOL_STATUSES.has(s)) {
      violation(stats, `TCP undocumented status ${s} for ${show(c.bytes)}: ${show(text, 300)}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// gRPC

const grpcRoot = loadProtoRoot([
  'tensorflow_serving/apis/prediction_service.proto',
  'tensorflow_serving/apis/model_service.proto',
  'grpc/health/v1/health.proto',
  'inference/grpc_service.proto',
]);
const T = (name: string) => grpcRoot.lookupType(name);

/** TF Serving's status codes for these services (plus UNAUTHENTICATED for the guarded reload). */
export const ALLOWED_GRPC_CODES = new Set([
  grpc.status.OK,
  grpc.status.INVALID_ARGUMENT,
  grpc.status.NOT_FOUND,
  grpc.status.FAILED_PRECONDITION,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.UNIMPLEMENTED,
  grpc.status.UNAVAILABLE,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.UNAUTHENTICATED,
]);

const GRPC_METHODS = {
  Predict: { path: '/tensorflow.serving.PredictionService/Predict', res: 'tensorflow.serving.PredictResponse' },
  Classify: { path: '/tensorflow.serving.PredictionService/Classify', res: 'tensorflow.serving.ClassificationResponse' },
  Regress: { path: '/tensorflow.serving.PredictionService/Regress', res: 'tensorflow.serving.RegressionResponse' },
  MultiInference: { path: '/tensorflow.serving.PredictionService/MultiInference', res: 'tensorflow.serving.MultiInferenceResponse' },
  GetModelMetadata: { path: '/tensorflow.serving.PredictionService/GetModelMetadata', res: 'tensorflow.serving.GetModelMetadataResponse' },
  GetModelStatus: { path: '/tensorflow.serving.ModelService/GetModelStatus', res: 'tensorflow.serving.GetModelStatusResponse' },
  HandleReloadConfigRequest: { path: '/tensorflow.serving.ModelService/HandleReloadConfigRequest', res: 'tensorflow.serving.ReloadConfigResponse' },
  Check: { path: '/grpc.health.v1.Health/Check', res: 'grpc.health.v1.HealthCheckResponse' },
  ModelInfer: { path: '/inference.GRPCInferenceService/ModelInfer', res: 'inference.ModelInferResponse' },
  ModelMetadata: { path: '/inference.GRPCInferenceService/ModelMetadata', res: 'inference.ModelMetadataResponse' },
  ModelReady: { path: '/inference.GRPCInferenceService/ModelReady', res: 'inference.ModelReadyResponse' },
  ServerLive: { path: '/inference.GRPCInferenceService/ServerLive', res: 'inference.ServerLiveResponse' },
  ServerReady: { path: '/inference.GRPCInferenceService/ServerReady', res: 'inference.ServerReadyResponse' },
  ServerMetadata: { path: '/inference.GRPCInferenceService/ServerMetadata', res: 'inference.ServerMetadataResponse' },
  Unknown: { path: '/tensorflow.serving.PredictionService/Nope', res: '' },
} as const;
type GrpcMethod = keyof typeof GRPC_METHODS;

export interface GrpcCase {
  method: GrpcMethod;
  bytes: Buffer;
  /** How the bytes were made, for reports. */
  what: string;
}

const int64Arb = fc.oneof(
  fc.constantFrom('0', '1', '2', '3', '123', '-1', '9223372036854775807', '-9223372036854775808'),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String),
);

const specArb = fc.record(
  {
    name: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...FUZZ_MODELS) }, { weight: 1, arbitrary: fc.constantFrom('', 'nope', 'MLP') }, { weight: 1, arbitrary: fc.string({ maxLength: 12 }) }),
    version: fc.record({ value: int64Arb }),
    version_label: fc.oneof(fc.constantFrom('stable', 'canary', '', 'nope'), fc.string({ maxLength: 8 })),
    signature_name: fc.oneof(
      fc.constantFrom('serving_default', '', 'nope', 'classify_x_to_y', 'regress_x_to_y', 'tensorflow/serving/predict', ...PROTOTYPE_NAMES),
      fc.string({ maxLength: 8 }),
    ),
  },
  { requiredKeys: [] },
);

const dimArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(0, 1, 2, 3, 10, 784) },
  { weight: 1, arbitrary: fc.constantFrom(-1, -2, 2 ** 31, 2 ** 40, 1e6, 268435457) },
  { weight: 1, arbitrary: fc.integer({ min: -5, max: 100_000 }) },
);

const tensorArb = fc.record(
  {
    dtype: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 23 }) }, { weight: 1, arbitrary: fc.constantFrom(101, 119, 9999, -1) }),
    tensor_shape: fc.record(
      {
        dim: fc.array(fc.record({ size: dimArb, name: fc.constantFrom('', 'batch') }, { requiredKeys: ['size'] }), { maxLength: 5 }),
        unknown_rank: fc.boolean(),
      },
      { requiredKeys: [] },
    ),
    version_number: fc.integer({ min: -1, max: 2 }),
    tensor_content: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
    half_val: fc.array(fc.integer({ min: -1, max: 70000 }), { maxLength: 8 }),
    float_val: fc.array(fc.float(), { maxLength: 8 }),
    double_val: fc.array(fc.double(), { maxLength: 8 }),
    int_val: fc.array(fc.integer(), { maxLength: 8 }),
    string_val: fc.array(fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b)), { maxLength: 4 }),
    int64_val: fc.array(int64Arb, { maxLength: 4 }),
    bool_val: fc.array(fc.boolean(), { maxLength: 4 }),
    uint32_val: fc.array(fc.nat(), { maxLength: 4 }),
    uint64_val: fc.array(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String), { maxLength: 4 }),
  },
  { requiredKeys: [] },
);

const inputNameArb = fc.oneof(
  fc.constantFrom('x', 'input_x', 'input_y', 'images', 'in_float', 'in_string', 'in_int64', 'in_bool', 'in_float16', 'in_uint64', 'inputs', ''),
  fc.string({ maxLength: 6 }),
);

const predictRequestArb = fc.record(
  {
    model_spec: specArb,
    inputs: fc.dictionary(inputNameArb, tensorArb, { maxKeys: 3 }),
    output_filter: fc.array(fc.oneof(fc.constantFrom('y', 'result_add', 'probabilities', 'out_float', ''), fc.string({ maxLength: 6 })), { maxLength: 3 }),
  },
  { requiredKeys: [] },
);

const metadataRequestArb = fc.record(
  {
    model_spec: specArb,
    metadata_field: fc.array(fc.oneof(fc.constant('signature_def'), fc.string({ maxLength: 10 })), { maxLength: 3 }),
  },
  { requiredKeys: [] },
);

const statusRequestArb = fc.record({ model_spec: specArb }, { requiredKeys: [] });

const V2_DATATYPES = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES'];

const v2NameArb = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...FUZZ_MODELS) }, { weight: 1, arbitrary: fc.constantFrom('', 'nope', 'MLP') }, { weight: 1, arbitrary: fc.string({ maxLength: 12 }) });
const v2VersionArb = fc.oneof(fc.constantFrom('', '', '1', '2', '123', '0', 'stable', 'canary', 'nope', '9223372036854775808', '-1', '__proto__'), fc.string({ maxLength: 8 }));

const v2ContentsArb = fc.record(
  {
    bool_contents: fc.array(fc.boolean(), { maxLength: 8 }),
    int_contents: fc.array(fc.integer(), { maxLength: 8 }),
    int64_contents: fc.array(int64Arb, { maxLength: 4 }),
    uint_contents: fc.array(fc.nat(), { maxLength: 8 }),
    uint64_contents: fc.array(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String), { maxLength: 4 }),
    fp32_contents: fc.array(fc.float(), { maxLength: 8 }),
    fp64_contents: fc.array(fc.double(), { maxLength: 8 }),
    bytes_contents: fc.array(fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b)), { maxLength: 4 }),
  },
  { requiredKeys: [] },
);

const v2InputArb = fc.record(
  {
    name: inputNameArb,
    datatype: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...V2_DATATYPES) }, { weight: 1, arbitrary: fc.constantFrom('', 'fp32', 'FP8', 'STRING') }),
    shape: fc.array(fc.oneof(fc.constantFrom('0', '1', '2', '3', '784', '-1'), int64Arb), { maxLength: 4 }),
    contents: v2ContentsArb,
  },
  { requiredKeys: [] },
);

const modelInferRequestArb = fc
  .record(
    {
      model_name: v2NameArb,
      model_version: v2VersionArb,
      id: fc.string({ maxLength: 8 }),
      inputs: fc.array(v2InputArb, { maxLength: 3 }),
      outputs: fc.array(fc.record({ name: fc.oneof(fc.constantFrom('y', 'result_add', 'probabilities', 'out_float', ''), fc.string({ maxLength: 6 })) }), { maxLength: 2 }),
      raw_input_contents: fc.array(fc.uint8Array({ maxLength: 32 }).map((b) => Buffer.from(b)), { maxLength: 3 }),
    },
    { requiredKeys: [] },
  )
  .map((m) => {
    // Raw and typed contents do not mix: keep one of the two, as clients send them.
    if (m.raw_input_contents?.length) for (const input of m.inputs ?? []) delete input.contents;
    return m;
  });

const v2ModelRequestArb = fc.record({ name: v2NameArb, version: v2VersionArb }, { requiredKeys: [] });

function encodeMessage(typeName: string, value: object): Buffer {
  const type = T(typeName);
  return Buffer.from(type.encode(type.fromObject(value)).finish());
}

const byteMutationArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant<TextMutation>({ op: 'none' }) },
  { weight: 1, arbitrary: textMutationArb },
);

export const grpcCaseArb: fc.Arbitrary<GrpcCase> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.tuple(predictRequestArb, byteMutationArb).map(([m, mut]) => ({
      method: 'Predict' as const,
      bytes: applyTextMutation(encodeMessage('tensorflow.serving.PredictRequest', m), mut),
      what: `PredictRequest ${JSON.stringify(m, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('hex') : v))} ${mut.op}`,
    })),
  },
  {
    weight: 2,
    arbitrary: fc.tuple(metadataRequestArb, byteMutationArb).map(([m, mut]) => ({
      method: 'GetModelMetadata' as const,
      bytes: applyTextMutation(encodeMessage('tensorflow.serving.GetModelMetadataRequest', m), mut),
      what: `GetModelMetadataRequest ${JSON.stringify(m)} ${mut.op}`,
    })),
  },
  {
    weight: 2,
    arbitrary: fc.tuple(statusRequestArb, byteMutationArb).map(([m, mut]) => ({
      method: 'GetModelStatus' as const,
      bytes: applyTextMutation(encodeMessage('tensorflow.serving.GetModelStatusRequest', m), mut),
      what: `GetModelStatusRequest ${JSON.stringify(m)} ${mut.op}`,
    })),
  },
  {
    weight: 3,
    arbitrary: fc.tuple(modelInferRequestArb, byteMutationArb).map(([m, mut]) => ({
      method: 'ModelInfer' as const,
      bytes: applyTextMutation(encodeMessage('inference.ModelInferRequest', m), mut),
      what: `ModelInferRequest ${JSON.stringify(m, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('hex') : v))} ${mut.op}`,
    })),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.constantFrom('ModelMetadata' as const, 'ModelReady' as const), v2ModelRequestArb, byteMutationArb).map(([method, m, mut]) => ({
      method,
      bytes: applyTextMutation(encodeMessage(`inference.${method}Request`, m), mut),
      what: `${method}Request ${JSON.stringify(m)} ${mut.op}`,
    })),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom(...(Object.keys(GRPC_METHODS) as GrpcMethod[])), fc.uint8Array({ maxLength: 512 }))
      .map(([method, b]) => ({ method, bytes: Buffer.from(b), what: 'raw bytes' })),
  },
);

/** A client that sends and receives bytes as they are, on any method path. */
export function rawGrpcClient(address: string): grpc.Client {
  return new grpc.Client(address, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1 });
}

export async function checkGrpcCase(client: grpc.Client, c: GrpcCase, deadlineMs: number, stats: FuzzStats): Promise<void> {
  const started = Date.now();
  const result = await new Promise<{ code: number; details: string; out?: Buffer }>((resolve) => {
    client.makeUnaryRequest<Buffer, Buffer>(
      GRPC_METHODS[c.method].path,
      (b) => b,
      (b) => b,
      c.bytes,
      new grpc.Metadata(),
      { deadline: Date.now() + deadlineMs },
      (err, out) => (err ? resolve({ code: err.code, details: err.details }) : resolve({ code: grpc.status.OK, details: '', out })),
    );
  });
  see(stats, `gRPC ${grpc.status[result.code] ?? result.code}`);
  const where = `${c.method} ${show(c.what, 300)} ${show(c.bytes, 200)}`;
  if (result.code === grpc.status.DEADLINE_EXCEEDED && Date.now() - started >= deadlineMs) {
    violation(stats, `gRPC no answer within the ${deadlineMs} ms deadline for ${where}`);
    return;
  }
  if (!ALLOWED_GRPC_CODES.has(result.code)) {
    violation(stats, `gRPC status ${grpc.status[result.code] ?? result.code} "${show(result.details, 300)}" for ${where}`);
    return;
  }
  const resType = GRPC_METHODS[c.method].res;
  if (result.out && resType) {
    try {
      T(resType).decode(result.out);
    } catch (err) {
      violation(stats, `gRPC OK answer does not decode as ${resType}: ${(err as Error).message} for ${where}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Text configs (models.config, BatchingParameters)

export const CONFIG_FILE = '/etc/modelgate/models.config';
export const BATCHING_FILE = '/etc/modelgate/batching.config';

const VALID_CONFIGS = [
  `model_config_list {
  config { name: "half_plus_two" base_path: "half_plus_two" model_platform: "onnx" }
  config { name: "add_sub", base_path: "add_sub", model_platform: "onnx" }
  config {
    name: 'mlp' base_path: 'mlp' model_platform: 'onnx'
    model_version_policy { all {} }
    version_labels { key: 'stable' value: 1 }
    version_labels { key: 'canary' value: 2 }
  }
  config { name: "dtypes" base_path: "/models/dtypes" model_platform: "onnx" }
}
`,
  `# README example
model_config_list {
  config {
    name: 'mlp'
    base_path: '/models/mlp'          # absolute, or relative to this file's folder
    model_platform: 'onnx'
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: 'stable' value: 1 }
    version_labels { key: 'canary' value: 2 }
  }
}
`,
  `model_config_list: {
  config: { name: "a"; base_path: "/m/a"; model_platform: "tensorflow"; model_version_policy: { latest: { num_versions: 2 } } },
  config: < name: "b" base_path: "b" model_platform: "onnx" model_version_policy < specific { versions: [1, 0x2, 03] } > >
}`,
  `model_config_list { config { name: "x\\x41\\101\\u00e9" base_path: "p" "q" model_platform: "onnx" version_labels: [{ key: "l" value: 7 }] } }`,
  '',
  'model_config_list {}',
];

const VALID_BATCHING = [
  `max_batch_size { value: 64 }
batch_timeout_micros { value: 2000 }
max_enqueued_batches { value: 8 }
num_batch_threads { value: 2 }
allowed_batch_sizes: [8, 16, 64]
pad_variable_length_inputs: true
`,
  `max_batch_size { value: 128 } enable_large_batch_splitting { value: true } max_execution_batch_size { value: 32 }
allowed_batch_sizes: 16 allowed_batch_sizes: 32 thread_pool_name { value: "pool" }`,
  'num_batch_threads: { value: 1 }; batch_timeout_micros: < value: 0 >',
  '',
];

const SNIPPETS = [
  '{', '}', '<', '>', '[', ']', ':', ';', ',', '#', "'", '"', '\\', '\n', '\r\n', ' ', '\t', '-', '--', '0x', '0X', '0',
  '08', '1e', '1e5', '.5', '1.', '5f', 'inf', '-inf', 'nan', 'true', 't', 'False', '\\x', '\\x4', '\\u12', '\\U0011ffff',
  '\\777', '\\400', '\\q', '9223372036854775807', '9223372036854775808', '-9223372036854775809', '18446744073709551616',
  '9007199254740993', '4294967296', '-1', '1 2', 'name', 'base_path', 'model_platform', 'model_version_policy', 'specific',
  'versions', 'latest', 'num_versions', 'all', 'version_labels', 'key', 'value', 'config', 'model_config_list',
  'custom_model_config', 'logging_config', 'type_url', 'log_collector_config', 'sampling_config', 'max_batch_size',
  'allowed_batch_sizes', 'enable_large_batch_splitting', 'max_execution_batch_size', 'num_batch_threads', 'thread_pool_name',
  'max_enqueued_batches', 'batch_timeout_micros', 'pad_variable_length_inputs', '[type.googleapis.com/x]', '[ext.field]',
  '\uFEFF', '\u0000', '\uD800', '\uDC00', '😀', 'é', '__proto__', 'constructor', 'hasOwnProperty', 'toString',
  '{ value: 0 }', '{ value: -1 }', '{}', 'onnx', 'tensorflow', '"onnx"', "'/'", '"a:b"', '""',
];

type ConfigMutation =
  | { op: 'delete'; at: number; len: number }
  | { op: 'insert'; at: number; text: string }
  | { op: 'replace'; at: number; len: number; text: string }
  | { op: 'duplicate'; at: number; len: number; to: number }
  | { op: 'truncate'; at: number };

const snippetArb = fc.oneof(
  { weight: 20, arbitrary: fc.constantFrom(...SNIPPETS) },
  { weight: 5, arbitrary: fc.string({ maxLength: 6 }) },
  { weight: 5, arbitrary: fc.string({ unit: 'binary', maxLength: 4 }) },
  { weight: 1, arbitrary: fc.constantFrom('{'.repeat(5000), '['.repeat(5000), 'a: '.repeat(2000), '"'.repeat(3), '#'.repeat(10_000)) },
);

const configMutationArb: fc.Arbitrary<ConfigMutation> = fc.oneof(
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 12 }) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), text: snippetArb }),
  fc.record({ op: fc.constant('replace' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 8 }), text: snippetArb }),
  fc.record({ op: fc.constant('duplicate' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 80 }), to: fc.nat() }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
);

function mutateText(text: string, m: ConfigMutation): string {
  const at = m.at % (text.length + 1);
  switch (m.op) {
    case 'delete':
      return text.slice(0, at) + text.slice(at + m.len);
    case 'insert':
      return text.slice(0, at) + m.text + text.slice(at);
    case 'replace':
      return text.slice(0, at) + m.text + text.slice(at + m.len);
    case 'duplicate': {
      const piece = text.slice(at, at + m.len);
      const to = m.to % (text.length + 1);
      return text.slice(0, to) + piece + text.slice(to);
    }
    case 'truncate':
      return text.slice(0, at);
  }
}

function textCaseArb(bases: string[]): fc.Arbitrary<string> {
  return fc
    .tuple(fc.nat(bases.length - 1), fc.array(configMutationArb, { minLength: 1, maxLength: 4 }))
    .map(([i, ms]) => ms.reduce(mutateText, bases[i] as string));
}

export const configTextArb = textCaseArb(VALID_CONFIGS);
export const batchingTextArb = textCaseArb(VALID_BATCHING);

/** Slower than this for one parse counts as a hang. */
export const PARSE_BOUND_MS = 1000;

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const CONFIG_PREFIX = new RegExp(`^${escapeRe(CONFIG_FILE)}:\\d+:\\d+: `);
const BATCHING_PREFIX = new RegExp(`^${escapeRe(BATCHING_FILE)}:\\d+:\\d+: `);

export function checkConfigText(text: string, stats: FuzzStats): void {
  const started = performance.now();
  try {
    parseServerConfig(text, CONFIG_FILE);
    see(stats, 'config parsed');
  } catch (err) {
    if (!(err instanceof ConfigError)) {
      violation(stats, `config: ${(err as Error)?.name} (not ConfigError): ${(err as Error)?.message} for ${show(text, 600)}`);
    } else if (!CONFIG_PREFIX.test(err.message)) {
      violation(stats, `config: ConfigError without file:line:col: ${show(err.message)} for ${show(text, 600)}`);
    } else {
      see(stats, 'config error');
    }
  }
  const ms = performance.now() - started;
  if (ms > PARSE_BOUND_MS) violation(stats, `config: parse took ${ms.toFixed(0)} ms for ${show(text, 600)}`);
}

export function checkBatchingText(text: string, stats: FuzzStats): void {
  const started = performance.now();
  try {
    parseBatchingParameters(text, BATCHING_FILE);
    see(stats, 'batching parsed');
  } catch (err) {
    if (!(err instanceof BatchingConfigError)) {
      violation(stats, `batching: ${(err as Error)?.name} (not BatchingConfigError): ${(err as Error)?.message} for ${show(text, 600)}`);
    } else if (!BATCHING_PREFIX.test(err.message)) {
      violation(stats, `batching: error without file:line:col: ${show(err.message)} for ${show(text, 600)}`);
    } else {
      see(stats, 'batching error');
    }
  }
  const ms = performance.now() - started;
  if (ms > PARSE_BOUND_MS) violation(stats, `batching: parse took ${ms.toFixed(0)} ms for ${show(text, 600)}`);
}

export type TextKind = 'config' | 'batching';

/** Runs the text fuzz synchronously (call it from a worker thread to bound a hang). */
export async function runTextFuzz(kind: TextKind, numRuns: number, seed: number, stats: FuzzStats, onCase?: (text: string) => void): Promise<void> {
  const check = kind === 'config' ? checkConfigText : checkBatchingText;
  await runCases(
    kind === 'config' ? configTextArb : batchingTextArb,
    (text, s) => {
      onCase?.(text);
      check(text, s);
    },
    { numRuns, seed, stats, label: kind },
  );
}

/**
 * Runs the text fuzz in a worker thread, so that a parse that never returns is caught: the worker
 * reports each case before parsing it, and a silence longer than `hangMs` ends it as a violation.
 */
export function runTextFuzzGuarded(kind: TextKind, numRuns: number, seed: number, hangMs = 10_000): Promise<FuzzStats> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./fuzz-text-worker.js', import.meta.url), { workerData: { kind, numRuns, seed } });
    let last = '';
    let timer: NodeJS.Timeout;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        void worker.terminate();
        const stats = newStats();
        violation(stats, `${kind}: no answer within ${hangMs} ms (hang) for ${show(last, 600)}`);
        resolve(stats);
      }, hangMs);
    };
    arm();
    worker.on('message', (m: { type: 'case'; text: string } | { type: 'done'; stats: FuzzStats }) => {
      if (m.type === 'case') {
        last = m.text;
        arm();
      } else {
        clearTimeout(timer);
        resolve(m.stats);
      }
    });
    worker.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// The gateway under fuzz: a child process serving the standard repository

/** --max_request_bytes of the fuzzed gateway: small, so 413 is cheap to reach. */
export const FUZZ_MAX_REQUEST_BYTES = 1 << 20;
/** Client bound on one REST exchange; the gateway's own bound (--rest_api_timeout_in_ms) is lower. */
export const FUZZ_CLIENT_TIMEOUT_MS = 20_000;

/** The path at which a fuzz gateway started with `monitoring` serves Prometheus metrics. */
export const FUZZ_METRICS_PATH = '/monitoring/prometheus/metrics';

export async function startFuzzGateway(options: { monitoring?: boolean } = {}): Promise<GatewayProcess> {
  const { dir, configFile } = await standardRepo();
  const extra: string[] = [];
  if (options.monitoring) {
    const monitoringFile = path.join(dir, 'monitoring.config');
    await writeFile(monitoringFile, `prometheus_config { enable: true path: "${FUZZ_METRICS_PATH}" }\n`);
    extra.push(`--monitoring_config_file=${monitoringFile}`);
  }
  return GatewayProcess.start({
    args: [
      ...extra,
      `--model_config_file=${configFile}`,
      `--max_request_bytes=${FUZZ_MAX_REQUEST_BYTES}`,
      '--rest_api_timeout_in_ms=10000',
      // Reloads are guarded, so random bodies on /v1/config:reload cannot replace the config (401).
      `--admin_token=fuzz-admin-${process.pid}`,
    ],
    restPort: await freePort(),
    grpcPort: await freePort(),
    waitForModels: ['half_plus_two', 'add_sub', 'mlp', 'dtypes'],
  });
}

/** Every model's versions and states, as one comparable string. */
export async function modelSnapshot(base: string): Promise<string> {
  const res = await request(`${base}/v1/models`, { headersTimeout: 5000, bodyTimeout: 5000 });
  const doc = (await res.body.json()) as { models: { name: string; model_version_status: { version: string; state: string; status: { error_code: string } }[]; labels: unknown }[] };
  return JSON.stringify(
    doc.models.map((m) => [m.name, m.model_version_status.map((s) => `${s.version}:${s.state}:${s.status.error_code}`), m.labels]),
  );
}

/** Worker pids by model/version, sorted: a restarted worker changes it. */
export function workerPids(gw: GatewayProcess): string {
  return gw
    .workers()
    .map((w) => `${w.model}/${w.version}:${w.pid}`)
    .sort()
    .join(' ');
}

export const MiB = 2 ** 20;
