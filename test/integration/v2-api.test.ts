/**
 * The Open Inference Protocol's paths through the gateway, with Node clients (the Python clients in
 * v2-python.test.ts cover the protocol itself): plain infer calls take the lean REST and gRPC paths,
 * others (a query string, a gzip-compressed gRPC message) go through Fastify or grpc-js with the same
 * answers; int64 extremes keep every digit on REST; gzip bodies work with the binary extension; a
 * SavedModel's serving_default serves v2 with batching on.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { request } from 'undici';
import { loadProtoRoot } from '../../common/protos.js';
import { startGateway, type Gateway } from '../../gateway/gateway.js';
import { fastUnaryStats } from '../../gateway/grpc/fast-unary.js';
import { leanRestStats } from '../../gateway/rest/lean-rest.js';
import { makeTfHalfPlusTwo, writeSavedModel } from '../../scripts/make-example-savedmodel.js';
import { freePort, standardRepo, tempDir, testFlags } from '../helpers/repo.js';

let gw: Gateway;
let base: string;
let address: string;

before(async () => {
  const { configFile } = await standardRepo();
  gw = await startGateway(
    await testFlags([`--model_config_file=${configFile}`, `--port=${await freePort()}`, '--grpc_api_host=127.0.0.1']),
    pino({ level: 'silent' }),
  );
  base = `http://127.0.0.1:${gw.restPort}`;
  address = `127.0.0.1:${gw.grpcPort}`;
});
after(async () => gw.close());

async function post(path: string, body: Buffer | string, headers: Record<string, string> = {}) {
  const res = await request(`${base}${path}`, { method: 'POST', body, headers });
  return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
}

const HALF = '{"id":"q","inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1,3]}]}';

test('REST infer: plain POSTs take the lean path; with a query string Fastify answers the same', async () => {
  const before = leanRestStats.requests;
  const lean = await post('/v2/models/half_plus_two/infer', HALF);
  assert.equal(leanRestStats.requests, before + 1);
  const viaFastify = await post('/v2/models/half_plus_two/infer?x=1', HALF);
  assert.equal(leanRestStats.requests, before + 1, 'a query string is left to Fastify');
  assert.equal(lean.status, 200);
  assert.deepEqual([viaFastify.status, viaFastify.body.toString()], [lean.status, lean.body.toString()]);
  assert.equal(lean.headers['content-type'], viaFastify.headers['content-type']);
  assert.deepEqual(JSON.parse(lean.body.toString()).outputs[0].data, [2.5, 3.5]);
  const missing = await post('/v2/models/nope/infer', HALF);
  const missingFastify = await post('/v2/models/nope/infer?x=1', HALF);
  assert.equal(missing.status, 404);
  assert.deepEqual(missingFastify.body.toString(), missing.body.toString());
});

test('REST infer: int64 and uint64 extremes keep every digit; gzip with the binary extension', async () => {
  const names = ['float16', 'float', 'double', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'bool', 'string'];
  const datatypes = ['FP16', 'FP32', 'FP64', 'INT8', 'INT16', 'INT32', 'INT64', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'BOOL', 'BYTES'];
  const data: Record<string, string> = { int64: '[-9223372036854775808,9223372036854775807]', uint64: '[0,18446744073709551615]', bool: '[true,false]', string: '["ä","b"]' };
  const inputs = names.map((n, i) => `{"name":"in_${n}","shape":[2],"datatype":"${datatypes[i]}","data":${data[n] ?? '[1,2]'}}`);
  const res = await post('/v2/models/dtypes/infer', `{"inputs":[${inputs.join(',')}],"outputs":[{"name":"out_int64"},{"name":"out_uint64"}]}`);
  assert.equal(res.status, 200, res.body.toString());
  const text = res.body.toString();
  assert.match(text, /"data":\[-9223372036854775808,9223372036854775807\]/);
  assert.match(text, /"data":\[0,18446744073709551615\]/);

  const header = Buffer.from('{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}],"parameters":{"binary_data_output":true}}');
  const body = gzipSync(Buffer.concat([header, Buffer.from(Float32Array.of(2, 4).buffer)]));
  const bin = await post('/v2/models/half_plus_two/infer', body, {
    'content-encoding': 'gzip',
    'inference-header-content-length': String(header.length),
  });
  assert.equal(bin.status, 200, bin.body.toString());
  assert.equal(bin.headers['content-type'], 'application/octet-stream');
  const n = Number(bin.headers['inference-header-content-length']);
  assert.deepEqual(JSON.parse(bin.body.subarray(0, n).toString()).outputs[0].parameters, { binary_data_size: 8 });
  assert.deepEqual([...new Float32Array(Uint8Array.from(bin.body.subarray(n)).buffer)], [3, 4]);
});

test('gRPC ModelInfer: plain calls take the lean path; gzip-compressed ones go through grpc-js with the same answer', async () => {
  const root = loadProtoRoot(['inference/grpc_service.proto']);
  const Req = root.lookupType('inference.ModelInferRequest');
  const Res = root.lookupType('inference.ModelInferResponse');
  const message = Buffer.from(
    Req.encode(Req.fromObject({ model_name: 'mlp', model_version: 'stable', inputs: [{ name: 'images', datatype: 'FP32', shape: [1, 784], contents: { fp32_contents: new Array(784).fill(0.5) } }] })).finish(),
  );
  const call = (client: grpc.Client, bytes: Buffer) =>
    new Promise<{ code: number; details?: string; out?: Buffer }>((resolve) =>
      client.makeUnaryRequest('/inference.GRPCInferenceService/ModelInfer', (b: Buffer) => b, (b: Buffer) => b, bytes, new grpc.Metadata(), (err, out) =>
        resolve(err ? { code: err.code, details: err.details } : { code: 0, out }),
      ),
    );
  const plainClient = new grpc.Client(address, grpc.credentials.createInsecure());
  const gzipClient = new grpc.Client(address, grpc.credentials.createInsecure(), { 'grpc.default_compression_algorithm': 2 });
  try {
    const before = fastUnaryStats.calls;
    const plain = await call(plainClient, message);
    assert.equal(fastUnaryStats.calls, before + 1);
    const compressed = await call(gzipClient, message);
    assert.equal(fastUnaryStats.calls, before + 1, 'a compressed call is left to grpc-js');
    assert.equal(plain.code, 0, plain.details);
    assert.deepEqual(compressed, plain);
    const doc = Res.toObject(Res.decode(plain.out as Buffer)) as { model_version: string; outputs: Array<{ contents: { fp32_contents: number[] } }> };
    assert.equal(doc.model_version, '1');
    assert.equal(doc.outputs[0]!.contents.fp32_contents.length, 10);
    const unknown = Buffer.from(Req.encode(Req.fromObject({ model_name: 'nope' })).finish());
    const a = await call(plainClient, unknown);
    assert.deepEqual(await call(gzipClient, unknown), a);
    assert.deepEqual(a, { code: grpc.status.NOT_FOUND, details: "Request for unknown model: 'nope' is not found" });
  } finally {
    plainClient.close();
    gzipClient.close();
  }
});

test('a SavedModel over v2 with batching: metadata from serving_default, concurrent infers batched and split back', async () => {
  const dir = await tempDir('modelgate-v2-sm-');
  await writeSavedModel(path.join(dir, 'tf_half_plus_two', '1'), makeTfHalfPlusTwo());
  await writeFile(path.join(dir, 'models.config'), 'model_config_list { config { name: "tf_half_plus_two" base_path: "tf_half_plus_two" model_platform: "tensorflow" } }\n');
  const sm = await startGateway(await testFlags([`--model_config_file=${path.join(dir, 'models.config')}`, '--enable_batching']), pino({ level: 'silent' }));
  try {
    const url = `http://127.0.0.1:${sm.restPort}/v2/models/tf_half_plus_two`;
    const meta = await request(url);
    assert.deepEqual(await meta.body.json(), {
      name: 'tf_half_plus_two',
      versions: ['1'],
      platform: 'tensorflow_savedmodel',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [-1] }],
    });
    const answers = await Promise.all(
      Array.from({ length: 16 }, async (_, i) => {
        const res = await request(`${url}/infer`, { method: 'POST', body: `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[${i}]}]}` });
        return ((await res.body.json()) as { outputs: Array<{ data: number[] }> }).outputs[0]!.data[0];
      }),
    );
    assert.deepEqual(answers, Array.from({ length: 16 }, (_, i) => i / 2 + 2));
  } finally {
    await sm.close();
  }
});
