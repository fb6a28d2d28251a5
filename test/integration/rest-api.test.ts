/**
 * TF Serving's REST contract (tf-serving.md §1) against a real gateway with real worker processes,
 * over real HTTP on loopback.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { pino } from 'pino';
import { request } from 'undici';
import { startGateway, type Gateway } from '../../gateway/gateway.js';
import { leanRestStats } from '../../gateway/rest/lean-rest.js';
import { standardRepo, testFlags } from '../helpers/repo.js';

let gw: Gateway;
let base: string;

interface Reply {
  status: number;
  text: string;
  json: any;
  contentType: string | undefined;
}

async function call(method: 'GET' | 'POST' | 'PUT' | 'OPTIONS', path: string, body?: string | Buffer, headers?: Record<string, string>): Promise<Reply> {
  const res = await request(`${base}${path}`, { method, body, headers });
  const text = await res.body.text();
  let json: unknown;
  try {
    json = JSON.parse(text.replace(/\bNaN\b/g, '"NaN"').replace(/-?\bInfinity\b/g, (m) => `"${m}"`));
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, text, json, contentType: res.headers['content-type'] as string | undefined };
}

const post = (path: string, body: unknown, headers?: Record<string, string>) =>
  call('POST', path, typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body), headers);

before(async () => {
  const { configFile } = await standardRepo();
  const flags = await testFlags([`--model_config_file=${configFile}`]);
  gw = await startGateway(flags, pino({ level: 'silent' }));
  base = `http://127.0.0.1:${gw.restPort}`;
});

after(async () => {
  await gw?.close();
});

describe('predict', () => {
  test('half_plus_two, row format, exact TF Serving bytes', async () => {
    const r = await post('/v1/models/half_plus_two:predict', { instances: [1.0, 2.0, 5.0] });
    assert.equal(r.status, 200);
    assert.equal(r.contentType, 'application/json');
    assert.equal(r.text, '{\n    "predictions": [2.5, 3.0, 4.5\n    ]\n}');
  });

  test('half_plus_two, nested instances and columnar inputs', async () => {
    const rows = await post('/v1/models/half_plus_two:predict', { instances: [[1.0], [2.0]] });
    assert.deepEqual(rows.json, { predictions: [[2.5], [3.0]] });
    const cols = await post('/v1/models/half_plus_two:predict', { inputs: [1.0, 2.0] });
    assert.deepEqual(cols.json, { outputs: [2.5, 3.0] });
    const scalar = await post('/v1/models/half_plus_two:predict', { inputs: 4 });
    assert.deepEqual(scalar.json, { outputs: 4.0 });
    const named = await post('/v1/models/half_plus_two:predict', { inputs: { x: [[6]] }, signature_name: 'serving_default' });
    assert.deepEqual(named.json, { outputs: [[5.0]] });
  });

  test('version path with leading zeros and version 123', async () => {
    const r = await post('/v1/models/half_plus_two/versions/123:predict', { instances: [1.0] });
    assert.deepEqual(r.json, { predictions: [2.5] });
    const z = await post('/v1/models/half_plus_two/versions/00123:predict', { instances: [1.0] });
    assert.deepEqual(z.json, { predictions: [2.5] });
  });

  test('add_sub: two inputs, two outputs, both formats', async () => {
    const rows = await post('/v1/models/add_sub:predict', {
      instances: [
        { input_x: [1, 2], input_y: [10, 20] },
        { input_x: [3, 4], input_y: [30, 40] },
      ],
    });
    assert.equal(rows.status, 200, rows.text);
    assert.deepEqual(rows.json, {
      predictions: [
        { result_add: [11, 22], result_sub: [-9, -18] },
        { result_add: [33, 44], result_sub: [-27, -36] },
      ],
    });
    const cols = await post('/v1/models/add_sub:predict', { inputs: { input_x: [[1, 2]], input_y: [[1, 1]], extra: 1 } });
    assert.deepEqual(cols.json, { outputs: { result_add: [[2, 3]], result_sub: [[0, 1]] } });
  });

  test('mlp: labels stable and canary reach versions 1 and 2', async () => {
    const image = Array.from({ length: 784 }, (_, i) => (i % 17) / 17);
    const body = { instances: [image] };
    const stable = await post('/v1/models/mlp/labels/stable:predict', body);
    const canary = await post('/v1/models/mlp/labels/canary:predict', body);
    const v1 = await post('/v1/models/mlp/versions/1:predict', body);
    const latest = await post('/v1/models/mlp:predict', body);
    const v2 = await post('/v1/models/mlp/versions/2:predict', body);
    assert.equal(stable.status, 200, stable.text);
    assert.deepEqual(stable.json, v1.json);
    assert.deepEqual(canary.json, v2.json);
    assert.deepEqual(latest.json, v2.json);
    assert.notDeepEqual(v1.json, v2.json);
    const probs = stable.json.predictions[0] as number[];
    assert.equal(probs.length, 10);
    assert.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-5);
  });

  test('every dtype round-trips through an identity model', async () => {
    const inputs = {
      in_float16: [0.5, -2, 65504],
      in_float: [1.5, -0.25, 3],
      in_double: [0.1, 1e300, -5],
      in_int8: [-128, 0, 127],
      in_int16: [-32768, 1, 32767],
      in_int32: [-2147483648, 2, 2147483647],
      in_int64: [-1, 0, 1],
      in_uint8: [0, 128, 255],
      in_uint16: [0, 1, 65535],
      in_uint32: [0, 1, 4294967295],
      in_uint64: [0, 1, 2],
      in_bool: [true, false, true],
      in_string: ['a', { b64: Buffer.from('bytes!').toString('base64') }, ''],
    };
    const r = await post('/v1/models/dtypes:predict', { inputs });
    assert.equal(r.status, 200, r.text);
    const out = r.json.outputs;
    assert.deepEqual(out.out_float16, [0.5, -2, 65504]);
    assert.deepEqual(out.out_float, [1.5, -0.25, 3]);
    assert.deepEqual(out.out_double, [0.1, 1e300, -5]);
    assert.deepEqual(out.out_int8, [-128, 0, 127]);
    assert.deepEqual(out.out_int16, [-32768, 1, 32767]);
    assert.deepEqual(out.out_int32, [-2147483648, 2, 2147483647]);
    assert.deepEqual(out.out_int64, [-1, 0, 1]);
    assert.deepEqual(out.out_uint8, [0, 128, 255]);
    assert.deepEqual(out.out_uint16, [0, 1, 65535]);
    assert.deepEqual(out.out_uint32, [0, 1, 4294967295]);
    assert.deepEqual(out.out_uint64, [0, 1, 2]);
    assert.deepEqual(out.out_bool, [true, false, true]);
    assert.deepEqual(out.out_string, ['a', 'bytes!', '']);
    // Outputs whose alias ends in _bytes come back base64-encoded.
    assert.deepEqual(out.out_string_bytes, [
      { b64: Buffer.from('a').toString('base64') },
      { b64: Buffer.from('bytes!').toString('base64') },
      { b64: '' },
    ]);
    // int64 beyond 2^53 keeps every digit.
    const big = await post('/v1/models/dtypes:predict', `{"inputs": {${Object.entries(inputs)
      .map(([k, v]) => `"${k}": ${k === 'in_int64' ? '[9223372036854775807, -9223372036854775808, 0]' : k === 'in_uint64' ? '[18446744073709551615, 0, 1]' : JSON.stringify(v)}`)
      .join(', ')}}}`);
    assert.equal(big.status, 200, big.text);
    assert.match(big.text, /9223372036854775807/);
    assert.match(big.text, /-9223372036854775808/);
    assert.match(big.text, /18446744073709551615/);
  });

  test('NaN and Infinity are accepted and written bare', async () => {
    const r = await post('/v1/models/half_plus_two:predict', '{"instances": [NaN, Infinity, -Infinity]}');
    assert.equal(r.status, 200, r.text);
    assert.match(r.text, /\[NaN, Infinity, -Infinity/);
  });

  test('gzip request bodies are decompressed', async () => {
    const r = await post('/v1/models/half_plus_two:predict', gzipSync(JSON.stringify({ instances: [2.0] })), {
      'content-encoding': 'gzip',
    });
    assert.deepEqual(r.json, { predictions: [3.0] });
  });

  test('trailing bytes after the JSON document are ignored', async () => {
    const r = await post('/v1/models/half_plus_two:predict', '{"instances": [1.0]} trailing garbage');
    assert.deepEqual(r.json, { predictions: [2.5] });
  });
});

describe('the lean inference path (lean-rest.ts)', () => {
  test('plain predicts take it; odd ones go through Fastify with the same answer and headers', async () => {
    const body = { instances: [1.0, 2.0, 5.0] };
    const before = leanRestStats.requests;
    const res = await request(`${base}/v1/models/half_plus_two:predict`, { method: 'POST', body: JSON.stringify(body), headers: { 'x-request-id': 'lean-1' } });
    const lean = { status: res.statusCode, type: res.headers['content-type'], id: res.headers['x-request-id'], text: await res.body.text() };
    assert.equal(leanRestStats.requests, before + 1);
    // A query string and an upper-case verb are left to Fastify's route.
    const viaFastify = await request(`${base}/v1/models/half_plus_two:predict?x=1`, { method: 'POST', body: JSON.stringify(body), headers: { 'x-request-id': 'lean-1' } });
    const slow = { status: viaFastify.statusCode, type: viaFastify.headers['content-type'], id: viaFastify.headers['x-request-id'], text: await viaFastify.body.text() };
    assert.equal(leanRestStats.requests, before + 1);
    assert.deepEqual(slow, lean);
    assert.deepEqual(lean, { status: 200, type: 'application/json', id: 'lean-1', text: '{\n    "predictions": [2.5, 3.0, 4.5\n    ]\n}' });
    const upper = await post('/v1/models/half_plus_two:PREDICT', body);
    assert.equal(upper.status, 400);
    assert.equal(leanRestStats.requests, before + 1);
    // Errors from the lean path keep TF's shape and status.
    const missing = await post('/v1/models/nope:predict', body);
    assert.deepEqual([missing.status, missing.json], [404, { error: 'Servable not found for request: Latest(nope)' }]);
    assert.equal(leanRestStats.requests, before + 2);
  });

  test('a chunked body over --max_request_bytes is refused with 413 in TF\'s shape', async () => {
    const limit = 1024;
    const { configFile } = await standardRepo();
    const small = await startGateway(await testFlags([`--model_config_file=${configFile}`, `--max_request_bytes=${limit}`]), pino({ level: 'silent' }));
    try {
      // No Content-Length: the size is only known as the chunks arrive.
      const body = Readable.from([Buffer.alloc(512, 0x20), Buffer.alloc(512, 0x20), Buffer.alloc(512, 0x20)]);
      const res = await request(`http://127.0.0.1:${small.restPort}/v1/models/half_plus_two:predict`, { method: 'POST', body });
      assert.equal(res.statusCode, 413);
      assert.deepEqual(await res.body.json(), { error: `Request body is larger than the limit of ${limit} bytes` });
    } finally {
      await small.close();
    }
  });
});

describe('status and metadata', () => {
  test('status JSON exactly as TF Serving prints it', async () => {
    const r = await call('GET', '/v1/models/half_plus_two');
    assert.equal(r.status, 200);
    assert.equal(
      r.text,
      '{\n "model_version_status": [\n  {\n   "version": "123",\n   "state": "AVAILABLE",\n   "status": {\n' +
        '    "error_code": "OK",\n    "error_message": ""\n   }\n  }\n ]\n}\n',
    );
  });

  test('status of several versions is sorted by descending version; one version; label lists all', async () => {
    const all = await call('GET', '/v1/models/mlp');
    assert.deepEqual(
      all.json.model_version_status.map((s: { version: string }) => s.version),
      ['2', '1'],
    );
    const one = await call('GET', '/v1/models/mlp/versions/1');
    assert.deepEqual(one.json.model_version_status.map((s: { version: string }) => s.version), ['1']);
    const label = await call('GET', '/v1/models/mlp/labels/stable');
    assert.equal(label.json.model_version_status.length, 2);
  });

  test('metadata nests the SignatureDefMap as TF Serving does', async () => {
    const r = await call('GET', '/v1/models/half_plus_two/metadata');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.model_spec, { name: 'half_plus_two', signature_name: '', version: '123' });
    const sig = r.json.metadata.signature_def.signature_def.serving_default;
    assert.equal(sig.method_name, 'tensorflow/serving/predict');
    assert.deepEqual(sig.inputs.x, { dtype: 'DT_FLOAT', tensor_shape: { dim: [], unknown_rank: true }, name: 'x' });
    const mlp = await call('GET', '/v1/models/mlp/labels/stable/metadata');
    assert.equal(mlp.json.model_spec.version, '1');
    assert.deepEqual(mlp.json.metadata.signature_def.signature_def.serving_default.inputs.images.tensor_shape, {
      dim: [
        { size: '-1', name: '' },
        { size: '784', name: '' },
      ],
      unknown_rank: false,
    });
  });

  test('a corrupt model.onnx ends as END with an error; other models keep serving', async () => {
    const r = await call('GET', '/v1/models/broken');
    assert.equal(r.status, 200);
    const [s] = r.json.model_version_status;
    assert.equal(s.state, 'END');
    assert.notEqual(s.status.error_code, 'OK');
    assert.match(s.status.error_message, /not a valid ONNX model|onnxruntime could not load/);
    const p = await post('/v1/models/broken:predict', { instances: [1] });
    assert.equal(p.status, 404);
    assert.deepEqual(p.json, { error: 'Servable not found for request: Latest(broken)' });
    const ok = await post('/v1/models/half_plus_two:predict', { instances: [1.0] });
    assert.equal(ok.status, 200);
  });
});

/** A valid columnar body for the dtypes model, with some inputs replaced (1.0 is kept as written). */
function dtypesBody(replace: Record<string, unknown>): string {
  const inputs: Record<string, unknown> = {
    in_float16: [1], in_float: [1], in_double: [1], in_int8: [1], in_int16: [1], in_int32: [1], in_int64: [1],
    in_uint8: [1], in_uint16: [1], in_uint32: [1], in_uint64: [1], in_bool: [true], in_string: ['s'],
    ...replace,
  };
  const text = JSON.stringify({ inputs });
  return 'in_int32' in replace ? text.replace('"in_int32":[1]', '"in_int32":[1.0]') : text;
}

describe('errors in TF Serving shape', () => {
  const cases: Array<[string, 'GET' | 'POST' | 'PUT', string, string | undefined, number, string]> = [
    ['unknown model', 'POST', '/v1/models/nope:predict', '{"instances":[1]}', 404, 'Servable not found for request: Latest(nope)'],
    ['unknown version', 'POST', '/v1/models/half_plus_two/versions/7:predict', '{"instances":[1]}', 404, 'Servable not found for request: Specific(half_plus_two, 7)'],
    ['unknown label', 'POST', '/v1/models/mlp/labels/prod:predict', '{"instances":[1]}', 400, 'Unrecognized servable version label: prod'],
    ['version beyond int64', 'POST', '/v1/models/mlp/versions/18446744073709551615:predict', '{}', 400, 'Failed to convert version: 18446744073709551615 to numeric.'],
    ['status of unknown model', 'GET', '/v1/models/nope', undefined, 404, 'Could not find any versions of model nope'],
    ['status of unknown version', 'GET', '/v1/models/mlp/versions/9', undefined, 404, 'Could not find version 9 of model mlp'],
    ['metadata of unknown model', 'GET', '/v1/models/nope/metadata', undefined, 404, 'Servable not found for request: Latest(nope)'],
    ['method name is case-sensitive', 'POST', '/v1/models/half_plus_two:Predict', '{}', 400, 'Malformed request: POST /v1/models/half_plus_two:Predict'],
    ['unsupported method', 'PUT', '/v1/models/half_plus_two', '{}', 400, 'Malformed request: PUT /v1/models/half_plus_two'],
    ['trailing slash', 'GET', '/v1/models/half_plus_two/', undefined, 400, 'Malformed request: GET /v1/models/half_plus_two/'],
    ['empty body', 'POST', '/v1/models/half_plus_two:predict', '', 400, 'JSON Parse error: The document is empty'],
    ['invalid JSON', 'POST', '/v1/models/half_plus_two:predict', '{"instances": [1,', 400, 'JSON Parse error: Invalid value. at offset: 17'],
    ['not an object', 'POST', '/v1/models/half_plus_two:predict', '[1]', 400, 'Is not object'],
    ['neither key', 'POST', '/v1/models/half_plus_two:predict', '{"foo": 1}', 400, "Missing 'inputs' or 'instances' key"],
    ['both keys', 'POST', '/v1/models/half_plus_two:predict', '{"inputs": 1, "instances": [1]}', 400, "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist "],
    ['wrong dtype', 'POST', '/v1/models/half_plus_two:predict', '{"instances": ["a"]}', 400, 'is not of expected type: float'],
    ['unknown signature', 'POST', '/v1/models/half_plus_two:predict', '{"signature_name": "nope", "instances": [1]}', 400, 'Serving signature name: "nope" not found in signature def'],
    ['signature named like a prototype member', 'POST', '/v1/models/half_plus_two:predict', '{"signature_name": "toString", "instances": [1]}', 400, 'Serving signature name: "toString" not found in signature def'],
    ['signature named __proto__', 'POST', '/v1/models/half_plus_two:predict', '{"signature_name": "__proto__", "instances": [1]}', 400, 'Serving signature name: "__proto__" not found in signature def'],
    ['classify signature named constructor', 'POST', '/v1/models/half_plus_two:classify', '{"signature_name": "constructor", "examples": [{"x": 1}]}', 400, 'No signature was found with the name: constructor'],
    ['int input given a decimal', 'POST', '/v1/models/dtypes:predict', dtypesBody({ in_int32: [1.0] }), 400, 'JSON Value: 1.0 Type: Number is not of expected type: int32'],
    ['bool input given 1', 'POST', '/v1/models/dtypes:predict', dtypesBody({ in_bool: [1] }), 400, 'is not of expected type: bool'],
    ['uint8 input out of range', 'POST', '/v1/models/dtypes:predict', dtypesBody({ in_uint8: [256] }), 400, 'uint8'],
    ['bad base64', 'POST', '/v1/models/dtypes:predict', dtypesBody({ in_string: [{ b64: '***' }] }), 400, 'Unable to base64 decode'],
    [
      'b64 bytes the ONNX runtime cannot carry unchanged',
      'POST',
      '/v1/models/dtypes:predict',
      dtypesBody({ in_string: [{ b64: Buffer.from([0xff, 0x00, 0x62, 0x69, 0x6e, 0xc3]).toString('base64') }] }),
      400,
      "Input 'in_string' element 0 cannot be passed to the ONNX model unchanged: it holds a NUL byte (at byte 1)",
    ],
    ['b64 bytes that are not UTF-8', 'POST', '/v1/models/dtypes:predict', dtypesBody({ in_string: [{ b64: '/w==' }] }), 400, 'it is not valid UTF-8'],
    ['ragged rows', 'POST', '/v1/models/add_sub:predict', '{"instances": [{"input_x": [1,2], "input_y": [1,2]}, {"input_x": [1], "input_y": [1,2]}]}', 400, 'Expecting tensor size'],
    ['missing named input', 'POST', '/v1/models/add_sub:predict', '{"inputs": {"input_x": [[1,2]]}}', 400, "Missing named input: input_y in 'inputs' object."],
    ['wrong shape for the graph', 'POST', '/v1/models/add_sub:predict', '{"inputs": {"input_x": [[1,2,3]], "input_y": [[1,2,3]]}}', 400, 'input_x'],
  ];
  for (const [name, method, path, body, status, message] of cases) {
    test(name, async () => {
      const r = await call(method, path, body);
      assert.equal(r.status, status, r.text);
      assert.equal(r.contentType, 'application/json');
      assert.equal(typeof r.json?.error, 'string', r.text);
      assert.ok((r.json.error as string).includes(message), `${r.json.error} should contain ${message}`);
    });
  }

  test('paths outside /v1 get the HTML 404', async () => {
    const r = await call('GET', '/');
    assert.equal(r.status, 404);
    assert.match(r.text, /404 Not Found/);
  });

  test('CORS preflight needs an Origin', async () => {
    assert.equal((await call('OPTIONS', '/v1/models/half_plus_two:predict', undefined, { origin: 'https://x.example' })).status, 200);
    assert.equal((await call('OPTIONS', '/v1/models/half_plus_two:predict')).status, 400);
  });

  test('after every bad request above, everything still serves', async () => {
    const r = await post('/v1/models/add_sub:predict', { inputs: { input_x: [[1, 1]], input_y: [[2, 2]] } });
    assert.deepEqual(r.json, { outputs: { result_add: [[3, 3]], result_sub: [[-1, -1]] } });
    const s = await call('GET', '/v1/models/half_plus_two');
    assert.equal(s.json.model_version_status[0].state, 'AVAILABLE');
  });
});

describe('supervision', () => {
  test('a killed worker is restarted and its version serves again', async () => {
    const route = gw.manager.table.resolve('half_plus_two');
    const pid = route.replicas[0]?.pid as number;
    process.kill(pid, 'SIGKILL');
    const deadline = Date.now() + 20_000;
    let served = false;
    while (Date.now() < deadline) {
      const r = await post('/v1/models/half_plus_two:predict', { instances: [1.0] });
      assert.ok(r.status === 200 || r.status === 404 || r.status === 503, `unexpected ${r.status} ${r.text}`);
      const now = gw.manager.table.resolve.bind(gw.manager.table);
      if (r.status === 200) {
        try {
          const newPid = now('half_plus_two').replicas[0]?.pid;
          if (newPid !== pid) {
            served = true;
            break;
          }
        } catch {
          // not routed yet
        }
      }
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.ok(served, 'version served again by a new worker');
  });
});
