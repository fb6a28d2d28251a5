/**
 * Limits and access against a real gateway with real workers: body size (413), JSON depth and tensor
 * size, the per-version in-flight bound (429), bearer tokens on REST and gRPC, TLS on both front doors.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { loadProtoRoot } from '../../common/protos.js';
import { startGateway, type Gateway } from '../../gateway/gateway.js';
import { freePort, standardRepo, tempDir, testFlags } from '../helpers/repo.js';

const silent = pino({ level: 'silent' });

async function gateway(extra: string[]): Promise<{ gw: Gateway; base: string; dir: string }> {
  const { dir, configFile } = await standardRepo();
  const gw = await startGateway(await testFlags([`--model_config_file=${configFile}`, ...extra]), silent);
  return { gw, base: `http://127.0.0.1:${gw.restPort}`, dir };
}

async function post(url: string, body: string, headers?: Record<string, string>, dispatcher?: Agent) {
  const res = await request(url, { method: 'POST', body, headers, dispatcher });
  const text = await res.body.text();
  return { status: res.statusCode, text, json: JSON.parse(text) as { error?: string } };
}

test('limits: body size 413, JSON depth and tensor size 400, in-flight bound 429 — all in TF\'s error shape', async () => {
  const { gw, base } = await gateway([
    '--max_request_bytes=100000',
    '--max_json_depth=20',
    '--max_tensor_elements=1000',
    '--max_b64_bytes=1000',
    '--max_inflight_per_version=1',
  ]);
  try {
    const big = await post(`${base}/v1/models/half_plus_two:predict`, `{"instances": [${'1.0,'.repeat(30000)}1.0]}`);
    assert.equal(big.status, 413);
    assert.match(big.json.error!, /larger than the limit of 100000 bytes/);
    const deep = await post(`${base}/v1/models/half_plus_two:predict`, `{"instances": ${'['.repeat(50)}1${']'.repeat(50)}}`);
    assert.equal(deep.status, 400);
    assert.match(deep.json.error!, /nesting deeper than 20 levels/);
    const wide = await post(`${base}/v1/models/half_plus_two:predict`, `{"instances": [${'1.0,'.repeat(2000)}1.0]}`);
    assert.equal(wide.status, 400);
    assert.match(wide.json.error!, /Input tensor has 2001 elements; the limit is 1000/);
    // The same limits on the Open Inference Protocol's infer (elements counted from the shape).
    const v2Wide = await post(`${base}/v2/models/half_plus_two/infer`, `{"inputs":[{"name":"x","shape":[2001],"datatype":"FP32","data":[${'1,'.repeat(2000)}1]}]}`);
    assert.equal(v2Wide.status, 400);
    assert.match(v2Wide.json.error!, /Input tensor has 2001 elements; the limit is 1000/);
    const v2Deep = await post(`${base}/v2/models/half_plus_two/infer`, `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":${'['.repeat(50)}1${']'.repeat(50)}}]}`);
    assert.equal(v2Deep.status, 400);
    assert.match(v2Deep.json.error!, /nesting deeper than 20 levels/);
    const b64 = (n: number) =>
      JSON.stringify({
        inputs: {
          in_float16: [1], in_float: [1], in_double: [1], in_int8: [1], in_int16: [1], in_int32: [1], in_int64: [1],
          in_uint8: [1], in_uint16: [1], in_uint32: [1], in_uint64: [1], in_bool: [true],
          in_string: [{ b64: Buffer.alloc(n, 7).toString('base64') }],
        },
      });
    assert.equal((await post(`${base}/v1/models/dtypes:predict`, b64(1000))).status, 200);
    const longB64 = await post(`${base}/v1/models/dtypes:predict`, b64(1001));
    assert.equal(longB64.status, 400);
    assert.match(longB64.json.error!, /b64 value decodes to 1001 bytes; the limit is 1000 \(--max_b64_bytes\)/);
    // One request in flight per version: a burst gets fast 429s, never a queue without bound.
    const row = `[${new Array(784).fill('0.5').join(',')}]`;
    const body = `{"instances": [${row}]}`;
    const answers = await Promise.all(Array.from({ length: 16 }, () => post(`${base}/v1/models/mlp:predict`, body)));
    const statuses = answers.map((a) => a.status);
    assert.ok(statuses.every((s) => s === 200 || s === 429), statuses.join(','));
    assert.ok(statuses.includes(200));
    for (const a of answers.filter((x) => x.status === 429)) assert.match(a.json.error!, /Too many requests in flight for model mlp/);
    assert.equal((await post(`${base}/v1/models/half_plus_two:predict`, '{"instances": [1.0]}')).status, 200);
  } finally {
    await gw.close();
  }
});

test('bearer tokens: admin surfaces and inference, over REST and gRPC', async () => {
  const grpcPort = await freePort();
  const { gw, base } = await gateway(['--admin_token=adm1n', '--api_token=ap1', `--port=${grpcPort}`, '--grpc_api_host=127.0.0.1']);
  try {
    const none = await post(`${base}/v1/models/half_plus_two:predict`, '{"instances": [1.0]}');
    assert.equal(none.status, 401);
    assert.match(none.json.error!, /API token required/);
    const wrong = await post(`${base}/v1/models/half_plus_two:predict`, '{"instances": [1.0]}', { authorization: 'Bearer nope' });
    assert.equal(wrong.status, 401);
    const ok = await post(`${base}/v1/models/half_plus_two:predict`, '{"instances": [1.0]}', { authorization: 'Bearer ap1' });
    assert.equal(ok.status, 200);
    assert.equal((await request(`${base}/healthz`)).statusCode, 200, 'probes stay open');
    // Reload needs the admin token; the API token is not enough.
    assert.equal((await post(`${base}/v1/config:reload`, '', { authorization: 'Bearer ap1' })).status, 401);
    assert.equal((await post(`${base}/v1/config:reload`, '', { authorization: 'Bearer adm1n' })).status, 200);

    const root = loadProtoRoot(['tensorflow_serving/apis/model_service.proto']);
    const req = root.lookupType('tensorflow.serving.GetModelStatusRequest');
    const res = root.lookupType('tensorflow.serving.GetModelStatusResponse');
    const client = new grpc.Client(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure());
    const status = (token?: string) =>
      new Promise<{ code: number; states?: string[] }>((resolve) => {
        const md = new grpc.Metadata();
        if (token) md.set('authorization', `Bearer ${token}`);
        client.makeUnaryRequest(
          '/tensorflow.serving.ModelService/GetModelStatus',
          (m: object) => Buffer.from(req.encode(req.fromObject(m)).finish()),
          (b: Buffer) => res.toObject(res.decode(b), { enums: String }) as { model_version_status: Array<{ state: string }> },
          { model_spec: { name: 'half_plus_two' } },
          md,
          (err, out) => resolve(err ? { code: err.code } : { code: 0, states: out!.model_version_status.map((s) => s.state) }),
        );
      });
    assert.equal((await status()).code, grpc.status.UNAUTHENTICATED);
    assert.deepEqual(await status('ap1'), { code: 0, states: ['AVAILABLE'] });

    // The Open Inference Protocol: the same API token, but for its health checks.
    const v2Body = '{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}';
    assert.equal((await post(`${base}/v2/models/half_plus_two/infer`, v2Body)).status, 401);
    assert.equal((await post(`${base}/v2/models/half_plus_two/infer`, v2Body, { authorization: 'Bearer ap1' })).status, 200);
    assert.equal((await request(`${base}/v2/models/half_plus_two`)).statusCode, 401);
    assert.equal((await request(`${base}/v2/health/live`)).statusCode, 200, 'v2 health stays open');
    const v2 = (method: string, token?: string) =>
      new Promise<number>((resolve) => {
        const md = new grpc.Metadata();
        if (token) md.set('authorization', `Bearer ${token}`);
        client.makeUnaryRequest(`/inference.GRPCInferenceService/${method}`, (b: Buffer) => b, (b: Buffer) => b, Buffer.from([0x0a, 0x0d, ...Buffer.from('half_plus_two')]), md, (err) =>
          resolve(err ? err.code : 0),
        );
      });
    assert.equal(await v2('ServerLive'), 0);
    assert.equal(await v2('ModelMetadata'), grpc.status.UNAUTHENTICATED);
    assert.equal(await v2('ModelMetadata', 'ap1'), 0);
    assert.equal(await v2('ModelInfer'), grpc.status.UNAUTHENTICATED);
    client.close();
  } finally {
    await gw.close();
  }
});

test('TLS on REST (cert/key flags) and gRPC (TF\'s SSLConfig)', async () => {
  const dir = await tempDir();
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  const pemKey = await readFile(key, 'utf8');
  const pemCert = await readFile(cert, 'utf8');
  const sslConfig = path.join(dir, 'ssl.config');
  await writeFile(sslConfig, `server_key: ${JSON.stringify(pemKey)}\nserver_cert: ${JSON.stringify(pemCert)}\nclient_verify: false\n`);
  const grpcPort = await freePort();
  const { gw } = await gateway([
    `--rest_api_tls_cert=${cert}`,
    `--rest_api_tls_key=${key}`,
    `--ssl_config_file=${sslConfig}`,
    `--port=${grpcPort}`,
    '--grpc_api_host=127.0.0.1',
  ]);
  try {
    const agent = new Agent({ connect: { ca: pemCert } });
    const r = await post(`https://127.0.0.1:${gw.restPort}/v1/models/half_plus_two:predict`, '{"instances": [1.0]}', undefined, agent);
    assert.equal(r.status, 200, r.text);
    await agent.close();

    const root = loadProtoRoot(['tensorflow_serving/apis/model_service.proto']);
    const req = root.lookupType('tensorflow.serving.GetModelStatusRequest');
    const client = new grpc.Client(`localhost:${grpcPort}`, grpc.credentials.createSsl(Buffer.from(pemCert)));
    const code = await new Promise<number>((resolve) =>
      client.makeUnaryRequest(
        '/tensorflow.serving.ModelService/GetModelStatus',
        (m: object) => Buffer.from(req.encode(req.fromObject(m)).finish()),
        (b: Buffer) => b,
        { model_spec: { name: 'half_plus_two' } },
        (err) => resolve(err ? err.code : 0),
      ),
    );
    assert.equal(code, 0);
    client.close();
  } finally {
    await gw.close();
  }
});
