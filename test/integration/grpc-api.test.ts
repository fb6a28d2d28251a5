/**
 * TF Serving's gRPC contract (tf-serving.md §2) against a real gateway with real worker processes, over
 * real HTTP/2 on loopback, with a @grpc/grpc-js client built from our own protos/.
 */
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import type protobuf from 'protobufjs';
import { loadProtoRoot } from '../../common/protos.js';
import { startGateway, type Gateway } from '../../gateway/gateway.js';
import { fastUnaryStats } from '../../gateway/grpc/fast-unary.js';
import { freePort, standardRepo, testFlags } from '../helpers/repo.js';

const root = loadProtoRoot([
  'tensorflow_serving/apis/prediction_service.proto',
  'tensorflow_serving/apis/model_service.proto',
  'grpc/health/v1/health.proto',
]);

type Msg = Record<string, any>;
type Client = grpc.Client & Record<string, (...args: any[]) => any>;

const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, bytes: Buffer, oneofs: true };

/** A client whose methods take and return plain objects, (de)serialized with protobufjs from protos/. */
function makeClient(service: string, address: string, options: grpc.ChannelOptions = {}): Client {
  const svc = root.lookupService(service);
  const def: Record<string, grpc.MethodDefinition<Msg, Msg>> = {};
  for (const m of svc.methodsArray) {
    const req = m.resolvedRequestType as protobuf.Type;
    const res = m.resolvedResponseType as protobuf.Type;
    def[m.name] = {
      path: `/${service}/${m.name}`,
      requestStream: Boolean(m.requestStream),
      responseStream: Boolean(m.responseStream),
      requestSerialize: (o: Msg) => Buffer.from(req.encode(req.fromObject(o)).finish()),
      requestDeserialize: (b: Buffer) => req.decode(b),
      responseSerialize: (o: Msg) => Buffer.from(res.encode(o).finish()),
      responseDeserialize: (b: Buffer) => res.toObject(res.decode(b), TO_OBJECT),
    };
  }
  const Ctor = grpc.makeGenericClientConstructor(def as grpc.ServiceDefinition, service);
  return new Ctor(address, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': -1,
    ...options,
  }) as unknown as Client;
}

interface CallError {
  code: number;
  details: string;
}

function call(client: Client, method: string, request: Msg, options: grpc.CallOptions = {}): Promise<Msg> {
  return new Promise((resolve, reject) => {
    client[method]!(request, new grpc.Metadata(), options, (err: grpc.ServiceError | null, out: Msg) =>
      err ? reject(err) : resolve(out),
    );
  });
}

async function callError(client: Client, method: string, request: Msg, options: grpc.CallOptions = {}): Promise<CallError> {
  try {
    const out = await call(client, method, request, options);
    assert.fail(`expected ${method} to fail, got ${JSON.stringify(out)}`);
  } catch (err) {
    const e = err as grpc.ServiceError;
    if (e.code === undefined) throw err;
    return { code: e.code, details: e.details };
  }
}

let gw: Gateway;
let address: string;
let predictionService: Client;
let modelService: Client;
let health: Client;
let configFile: string;
let repoDir: string;

before(async () => {
  ({ dir: repoDir, configFile } = await standardRepo());
  const port = await freePort();
  const flags = await testFlags([`--model_config_file=${configFile}`, `--port=${port}`, '--grpc_api_host=127.0.0.1']);
  gw = await startGateway(flags, pino({ level: 'silent' }));
  assert.equal(gw.grpcPort, port);
  address = `127.0.0.1:${gw.grpcPort}`;
  predictionService = makeClient('tensorflow.serving.PredictionService', address);
  modelService = makeClient('tensorflow.serving.ModelService', address);
  health = makeClient('grpc.health.v1.Health', address);
});

after(async () => {
  predictionService?.close();
  modelService?.close();
  health?.close();
  await gw?.close();
});

const floats = (shape: number[], values: number[]): Msg => ({
  dtype: 'DT_FLOAT',
  tensor_shape: { dim: shape.map((size) => ({ size })) },
  float_val: values,
});

const dims = (t: Msg): number[] => (t.tensor_shape?.dim ?? []).map((d: Msg) => Number(d.size ?? 0));

describe('Predict', () => {
  test('half_plus_two with float_val: typed outputs and the model spec TF fills in', async () => {
    const out = await call(predictionService, 'Predict', {
      model_spec: { name: 'half_plus_two' },
      inputs: { x: floats([3], [1, 2, 5]) },
    });
    assert.deepEqual(Object.keys(out.outputs), ['y']);
    assert.equal(out.outputs.y.dtype, 'DT_FLOAT');
    assert.deepEqual(dims(out.outputs.y), [3]);
    assert.deepEqual(out.outputs.y.float_val, [2.5, 3, 4.5]);
    assert.equal(out.outputs.y.tensor_content, undefined);
    assert.deepEqual(out.model_spec, {
      name: 'half_plus_two',
      version: { value: '123' },
      version_choice: 'version',
      signature_name: 'serving_default',
    });
  });

  test('tensor_content input, explicit signature name, scalar shape', async () => {
    const content = Buffer.from(new Float32Array([4, 6]).buffer);
    const out = await call(predictionService, 'Predict', {
      model_spec: { name: 'half_plus_two', signature_name: 'serving_default' },
      inputs: { x: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: 2 }, { size: 1 }] }, tensor_content: content } },
    });
    assert.deepEqual(dims(out.outputs.y), [2, 1]);
    assert.deepEqual(out.outputs.y.float_val, [4, 5]);
    const scalar = await call(predictionService, 'Predict', {
      model_spec: { name: 'half_plus_two' },
      inputs: { x: { dtype: 'DT_FLOAT', tensor_shape: {}, float_val: [8] } },
    });
    assert.deepEqual(dims(scalar.outputs.y), []);
    assert.deepEqual(scalar.outputs.y.float_val, [6]);
  });

  test('fill rule: one value fills the shape, a short list repeats its last value, none gives zeros', async () => {
    const one = await call(predictionService, 'Predict', {
      model_spec: { name: 'half_plus_two' },
      inputs: { x: floats([2, 2], [3]) },
    });
    assert.deepEqual(dims(one.outputs.y), [2, 2]);
    assert.deepEqual(one.outputs.y.float_val, [3.5, 3.5, 3.5, 3.5]);
    const short = await call(predictionService, 'Predict', {
      model_spec: { name: 'half_plus_two' },
      inputs: { x: floats([4], [1, 2]) },
    });
    assert.deepEqual(short.outputs.y.float_val, [2.5, 3, 3, 3]);
    const none = await call(predictionService, 'Predict', {
      model_spec: { name: 'half_plus_two' },
      inputs: { x: floats([2], []) },
    });
    assert.deepEqual(none.outputs.y.float_val, [2, 2]);
    const extra = await call(predictionService, 'Predict', {
      model_spec: { name: 'half_plus_two' },
      inputs: { x: floats([2], [1, 2, 3]) },
    });
    assert.deepEqual(extra.outputs.y.float_val, [2.5, 3]);
  });

  test('add_sub: output_filter picks outputs; bad and duplicate aliases fail as in TF', async () => {
    const inputs = { input_x: floats([1, 2], [1, 2]), input_y: floats([1, 2], [10, 20]) };
    const all = await call(predictionService, 'Predict', { model_spec: { name: 'add_sub' }, inputs });
    assert.deepEqual(Object.keys(all.outputs).sort(), ['result_add', 'result_sub']);
    assert.deepEqual(all.outputs.result_add.float_val, [11, 22]);
    assert.deepEqual(all.outputs.result_sub.float_val, [-9, -18]);
    const one = await call(predictionService, 'Predict', {
      model_spec: { name: 'add_sub' },
      inputs,
      output_filter: ['result_sub'],
    });
    assert.deepEqual(Object.keys(one.outputs), ['result_sub']);
    assert.deepEqual(one.outputs.result_sub.float_val, [-9, -18]);
    assert.deepEqual(
      await callError(predictionService, 'Predict', { model_spec: { name: 'add_sub' }, inputs, output_filter: ['nope'] }),
      {
        code: grpc.status.INVALID_ARGUMENT,
        details: 'output tensor alias not found in signature: nope Outputs expected to be in the set {result_add,result_sub}.',
      },
    );
    assert.deepEqual(
      await callError(predictionService, 'Predict', {
        model_spec: { name: 'add_sub' },
        inputs,
        output_filter: ['result_add', 'result_add'],
      }),
      { code: grpc.status.INVALID_ARGUMENT, details: 'duplicate output tensor alias: result_add' },
    );
  });

  test('version and version_label select the servable; the response names it', async () => {
    const images = floats([1, 784], Array.from({ length: 784 }, (_, i) => (i % 7) / 7));
    const v1 = await call(predictionService, 'Predict', { model_spec: { name: 'mlp', version: { value: 1 } }, inputs: { images } });
    const v2 = await call(predictionService, 'Predict', { model_spec: { name: 'mlp', version: { value: 2 } }, inputs: { images } });
    assert.equal(v1.model_spec.version.value, '1');
    assert.equal(v2.model_spec.version.value, '2');
    assert.equal(v1.outputs.probabilities.float_val.length, 10);
    assert.notDeepEqual(v1.outputs.probabilities.float_val, v2.outputs.probabilities.float_val);
    const latest = await call(predictionService, 'Predict', { model_spec: { name: 'mlp' }, inputs: { images } });
    assert.equal(latest.model_spec.version.value, '2');
    const stable = await call(predictionService, 'Predict', {
      model_spec: { name: 'mlp', version_label: 'stable' },
      inputs: { images },
    });
    assert.equal(stable.model_spec.version.value, '1');
    assert.deepEqual(stable.outputs.probabilities.float_val, v1.outputs.probabilities.float_val);
    const canary = await call(predictionService, 'Predict', {
      model_spec: { name: 'mlp', version_label: 'canary' },
      inputs: { images },
    });
    assert.equal(canary.model_spec.version.value, '2');
    assert.deepEqual(
      await callError(predictionService, 'Predict', { model_spec: { name: 'mlp', version_label: 'nope' }, inputs: { images } }),
      { code: grpc.status.INVALID_ARGUMENT, details: 'Unrecognized servable version label: nope' },
    );
    assert.deepEqual(
      await callError(predictionService, 'Predict', { model_spec: { name: 'mlp', version: { value: 3 } }, inputs: { images } }),
      { code: grpc.status.NOT_FOUND, details: 'Servable not found for request: Specific(mlp, 3)' },
    );
    assert.deepEqual(
      await callError(predictionService, 'Predict', { model_spec: { name: 'mlp', version: { value: -1 } }, inputs: { images } }),
      { code: grpc.status.NOT_FOUND, details: 'Servable not found for request: Specific(mlp, -1)' },
    );
  });

  test('request errors carry TF codes and messages', async () => {
    const x = floats([1], [1]);
    const cases: Array<[Msg, number, string]> = [
      [{ inputs: { x } }, grpc.status.INVALID_ARGUMENT, 'Missing ModelSpec'],
      [{ model_spec: {}, inputs: { x } }, grpc.status.INVALID_ARGUMENT, 'ModelSpec has no name specified.'],
      [{ model_spec: { name: 'nope' }, inputs: { x } }, grpc.status.NOT_FOUND, 'Servable not found for request: Latest(nope)'],
      [{ model_spec: { name: 'broken' }, inputs: { x } }, grpc.status.NOT_FOUND, 'Servable not found for request: Latest(broken)'],
      [
        { model_spec: { name: 'half_plus_two', signature_name: 'nope' }, inputs: { x } },
        grpc.status.FAILED_PRECONDITION,
        'Serving signature key "nope" not found.',
      ],
      // Names of Object.prototype members are names like any other (found by the fuzzer: was INTERNAL).
      [
        { model_spec: { name: 'half_plus_two', signature_name: 'toString' }, inputs: { x } },
        grpc.status.FAILED_PRECONDITION,
        'Serving signature key "toString" not found.',
      ],
      [
        { model_spec: { name: 'half_plus_two', signature_name: '__proto__' }, inputs: { x } },
        grpc.status.FAILED_PRECONDITION,
        'Serving signature key "__proto__" not found.',
      ],
      [
        { model_spec: { name: 'add_sub' }, inputs: { input_x: x } },
        grpc.status.INVALID_ARGUMENT,
        'input size does not match signature: 1!=2 len({input_x}) != len({input_x,input_y}). ' +
          'Sent extra: {}. Missing but required: {input_y}.',
      ],
      [
        { model_spec: { name: 'add_sub' }, inputs: { input_x: x, input_z: x } },
        grpc.status.INVALID_ARGUMENT,
        'Signature input alias: input_y(feed name: input_y) not found in request and no default value provided. ' +
          'Inputs expected to be in the request {input_x,input_z}, or default input alias set: ',
      ],
      [
        { model_spec: { name: 'half_plus_two' }, inputs: { x, z: x } },
        grpc.status.INVALID_ARGUMENT,
        'input size does not match signature: 2!=1 len({x,z}) != len({x}). Sent extra: {z}. Missing but required: {}.',
      ],
      [
        { model_spec: { name: 'half_plus_two' }, inputs: { x: { dtype: 'DT_INT32', tensor_shape: { dim: [{ size: 1 }] }, int_val: [1] } } },
        grpc.status.INVALID_ARGUMENT,
        'Expects arg[0] to be float but int32 is provided',
      ],
      [
        { model_spec: { name: 'half_plus_two' }, inputs: { x: { dtype: 'DT_COMPLEX64', tensor_shape: { dim: [{ size: 1 }] }, scomplex_val: [1, 0] } } },
        grpc.status.INVALID_ARGUMENT,
        'Expects arg[0] to be float but complex64 is provided',
      ],
      [
        { model_spec: { name: 'half_plus_two' }, inputs: { x: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: 2 }] }, tensor_content: Buffer.alloc(4) } } },
        grpc.status.INVALID_ARGUMENT,
        'tensor parsing error: x',
      ],
      [
        { model_spec: { name: 'half_plus_two' }, inputs: { x: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: -1 }] }, float_val: [1] } } },
        grpc.status.INVALID_ARGUMENT,
        'tensor parsing error: x',
      ],
      [
        { model_spec: { name: 'half_plus_two' }, inputs: { x: { dtype: 'DT_FLOAT', tensor_shape: { unknown_rank: true }, float_val: [1] } } },
        grpc.status.INVALID_ARGUMENT,
        'tensor parsing error: x',
      ],
      [
        { model_spec: { name: 'half_plus_two' }, inputs: { x: { tensor_shape: { dim: [{ size: 1 }] }, float_val: [1] } } },
        grpc.status.INVALID_ARGUMENT,
        'tensor parsing error: x',
      ],
    ];
    for (const [request, code, details] of cases) {
      assert.deepEqual(await callError(predictionService, 'Predict', request), { code, details }, JSON.stringify(request));
    }
  });

  test('messages over 1024 bytes are cut and marked ...TRUNCATED', async () => {
    const name = 'n'.repeat(2000);
    const err = await callError(predictionService, 'Predict', { model_spec: { name }, inputs: {} });
    assert.equal(err.code, grpc.status.NOT_FOUND);
    const full = `Servable not found for request: Latest(${name})`;
    assert.equal(err.details, `${full.slice(0, 1024)}...TRUNCATED`);
  });

  test('a request larger than gRPC clients\' 4 MB default is accepted (server limit INT32_MAX)', async () => {
    const rows = 1400; // 1400 * 784 floats = 4.4 MB
    const content = Buffer.alloc(rows * 784 * 4);
    const out = await call(predictionService, 'Predict', {
      model_spec: { name: 'mlp' },
      inputs: { images: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: rows }, { size: 784 }] }, tensor_content: content } },
    });
    assert.deepEqual(dims(out.outputs.probabilities), [rows, 10]);
  });
});

/** Values for every dtype of the `dtypes` model: the typed-field form and the tensor_content bytes. */
const DTYPE_CASES: Array<{ t: string; dtype: string; field: string; values: unknown[]; content: Buffer }> = [
  { t: 'float16', dtype: 'DT_HALF', field: 'half_val', values: [0x3c00, 0xc000, 0x7bff], content: le(new Uint16Array([0x3c00, 0xc000, 0x7bff])) },
  { t: 'float', dtype: 'DT_FLOAT', field: 'float_val', values: [1.5, -2.25, 3.4028234663852886e38], content: le(new Float32Array([1.5, -2.25, 3.4028234663852886e38])) },
  { t: 'double', dtype: 'DT_DOUBLE', field: 'double_val', values: [1e-300, -0.5, 12345.6789], content: le(new Float64Array([1e-300, -0.5, 12345.6789])) },
  { t: 'int8', dtype: 'DT_INT8', field: 'int_val', values: [-128, 0, 127], content: le(new Int8Array([-128, 0, 127])) },
  { t: 'int16', dtype: 'DT_INT16', field: 'int_val', values: [-32768, 1, 32767], content: le(new Int16Array([-32768, 1, 32767])) },
  { t: 'int32', dtype: 'DT_INT32', field: 'int_val', values: [-2147483648, 0, 2147483647], content: le(new Int32Array([-2147483648, 0, 2147483647])) },
  {
    t: 'int64',
    dtype: 'DT_INT64',
    field: 'int64_val',
    values: ['-9223372036854775808', '1', '9223372036854775807'],
    content: le(new BigInt64Array([-(2n ** 63n), 1n, 2n ** 63n - 1n])),
  },
  { t: 'uint8', dtype: 'DT_UINT8', field: 'int_val', values: [0, 128, 255], content: le(new Uint8Array([0, 128, 255])) },
  { t: 'uint16', dtype: 'DT_UINT16', field: 'int_val', values: [0, 40000, 65535], content: le(new Uint16Array([0, 40000, 65535])) },
  { t: 'uint32', dtype: 'DT_UINT32', field: 'uint32_val', values: [0, 3000000000, 4294967295], content: le(new Uint32Array([0, 3000000000, 4294967295])) },
  {
    t: 'uint64',
    dtype: 'DT_UINT64',
    field: 'uint64_val',
    values: ['0', '9223372036854775808', '18446744073709551615'],
    content: le(new BigUint64Array([0n, 2n ** 63n, 2n ** 64n - 1n])),
  },
  { t: 'bool', dtype: 'DT_BOOL', field: 'bool_val', values: [true, false, true], content: Buffer.from([1, 0, 1]) },
  {
    t: 'string',
    dtype: 'DT_STRING',
    field: 'string_val',
    values: [Buffer.from('hello'), Buffer.from(''), Buffer.from('héllo ✓')],
    content: Buffer.concat([Buffer.from([5, 0, 10]), Buffer.from('hello'), Buffer.from('héllo ✓')]),
  },
];

function le(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

describe('Predict: every dtype', () => {
  const expectOutputs = (out: Msg) => {
    for (const c of DTYPE_CASES) {
      const t = out.outputs[`out_${c.t}`];
      assert.ok(t, `out_${c.t}`);
      assert.equal(t.dtype, c.dtype, c.t);
      assert.deepEqual(dims(t), [3], c.t);
      assert.deepEqual(t[c.field], c.values, c.t);
      assert.equal(t.tensor_content, undefined, c.t);
    }
    assert.deepEqual(out.outputs.out_string_bytes.string_val, DTYPE_CASES.at(-1)!.values);
  };

  test('typed *_val fields in, typed fields out', async () => {
    const inputs = Object.fromEntries(
      DTYPE_CASES.map((c) => [`in_${c.t}`, { dtype: c.dtype, tensor_shape: { dim: [{ size: 3 }] }, [c.field]: c.values }]),
    );
    expectOutputs(await call(predictionService, 'Predict', { model_spec: { name: 'dtypes' }, inputs }));
  });

  test('tensor_content (little-endian; strings as a length-prefixed list) in, typed fields out', async () => {
    const inputs = Object.fromEntries(
      DTYPE_CASES.map((c) => [`in_${c.t}`, { dtype: c.dtype, tensor_shape: { dim: [{ size: 3 }] }, tensor_content: c.content }]),
    );
    expectOutputs(await call(predictionService, 'Predict', { model_spec: { name: 'dtypes' }, inputs }));
  });

  test('string bytes the ONNX runtime cannot carry unchanged are INVALID_ARGUMENT naming the input, never OK', async () => {
    const inputs = Object.fromEntries(
      DTYPE_CASES.map((c) => [`in_${c.t}`, { dtype: c.dtype, tensor_shape: { dim: [{ size: 3 }] }, [c.field]: c.values }]),
    );
    for (const bad of [Buffer.from([0xff, 0x00, 0x62, 0x69, 0x6e, 0xc3]), Buffer.from('a\0b'), Buffer.from([0xc3])]) {
      inputs.in_string = { dtype: 'DT_STRING', tensor_shape: { dim: [{ size: 3 }] }, string_val: [Buffer.from('ok'), bad, Buffer.from('')] };
      const err = await callError(predictionService, 'Predict', { model_spec: { name: 'dtypes' }, inputs });
      assert.equal(err.code, grpc.status.INVALID_ARGUMENT, err.details);
      assert.match(err.details, /^Input 'in_string' element 1 cannot be passed to the ONNX model unchanged: it (holds a NUL byte|is not valid UTF-8)/);
    }
  });

  test('one typed value fills the shape, for every dtype', async () => {
    const inputs = Object.fromEntries(
      DTYPE_CASES.map((c) => [`in_${c.t}`, { dtype: c.dtype, tensor_shape: { dim: [{ size: 3 }] }, [c.field]: [c.values[2]] }]),
    );
    const out = await call(predictionService, 'Predict', { model_spec: { name: 'dtypes' }, inputs });
    for (const c of DTYPE_CASES) {
      assert.deepEqual(out.outputs[`out_${c.t}`][c.field], [c.values[2], c.values[2], c.values[2]], c.t);
    }
  });
});

describe('Classify, Regress, MultiInference', () => {
  const example = { features: { feature: { x: { float_list: { value: [1] } } } } };
  const input = { example_list: { examples: [example] } };

  test('an ONNX predict signature is not a classify or regress signature', async () => {
    // Without --enable_signature_method_name_check (TF's default) the signature's shape decides.
    const classify = await callError(predictionService, 'Classify', { model_spec: { name: 'half_plus_two' }, input });
    assert.equal(classify.code, grpc.status.INVALID_ARGUMENT);
    assert.match(classify.details, /^No classification inputs found in SignatureDef: /);
    const regress = await callError(predictionService, 'Regress', { model_spec: { name: 'half_plus_two' }, input });
    assert.equal(regress.code, grpc.status.INVALID_ARGUMENT);
    assert.match(regress.details, /^No regression inputs found in SignatureDef: /);
    assert.deepEqual(
      await callError(predictionService, 'Classify', { model_spec: { name: 'half_plus_two', signature_name: 'nope' }, input }),
      { code: grpc.status.INVALID_ARGUMENT, details: 'No signature was found with the name: nope' },
    );
    assert.deepEqual(await callError(predictionService, 'Classify', { input }), {
      code: grpc.status.INVALID_ARGUMENT,
      details: 'Missing ModelSpec',
    });
  });

  // Checks that need a model with classify/regress signatures are in grpc-worker.test.ts.
  test('MultiInference validates its tasks as TF does', async () => {
    const task = (name: string, method: string, signature_name = '') => ({ model_spec: { name, signature_name }, method_name: method });
    assert.deepEqual(await callError(predictionService, 'MultiInference', { tasks: [], input }), {
      code: grpc.status.INVALID_ARGUMENT,
      details: 'ModelSpec has no name specified.',
    });
    assert.deepEqual(
      await callError(predictionService, 'MultiInference', { tasks: [task('half_plus_two', 'tensorflow/serving/predict')], input }),
      { code: grpc.status.UNIMPLEMENTED, details: 'Unsupported signature method_name: tensorflow/serving/predict' },
    );
    assert.deepEqual(
      await callError(predictionService, 'MultiInference', { tasks: [task('half_plus_two', 'tensorflow/serving/regress', 'a')], input }),
      { code: grpc.status.INVALID_ARGUMENT, details: 'Requested signature not found in model graph: a' },
    );
    const multi = await callError(predictionService, 'MultiInference', {
      tasks: [task('half_plus_two', 'tensorflow/serving/classify')],
      input,
    });
    assert.equal(multi.code, grpc.status.INVALID_ARGUMENT);
    assert.match(multi.details, /^No classification inputs found in SignatureDef: /);
  });
});

describe('GetModelMetadata', () => {
  test('signature_def packed as a SignatureDefMap in an Any', async () => {
    const out = await call(predictionService, 'GetModelMetadata', {
      model_spec: { name: 'add_sub' },
      metadata_field: ['signature_def'],
    });
    assert.deepEqual(out.model_spec, { name: 'add_sub', version: { value: '1' }, version_choice: 'version' });
    const any = out.metadata.signature_def;
    assert.equal(any.type_url, 'type.googleapis.com/tensorflow.serving.SignatureDefMap');
    const mapType = root.lookupType('tensorflow.serving.SignatureDefMap');
    const map = mapType.toObject(mapType.decode(any.value), { ...TO_OBJECT, defaults: false });
    const info = (name: string) => ({
      name,
      dtype: 'DT_FLOAT',
      tensor_shape: { dim: [{ size: '-1' }, { size: '2' }] },
      encoding: 'name',
    });
    assert.deepEqual(map, {
      signature_def: {
        serving_default: {
          inputs: { input_x: info('input_x'), input_y: info('input_y') },
          outputs: { result_add: info('result_add'), result_sub: info('result_sub') },
          method_name: 'tensorflow/serving/predict',
        },
      },
    });
  });

  test('labels and versions resolve; unknown-rank shapes say so', async () => {
    const out = await call(predictionService, 'GetModelMetadata', {
      model_spec: { name: 'mlp', version_label: 'stable' },
      metadata_field: ['signature_def'],
    });
    assert.equal(out.model_spec.version.value, '1');
    const hpt = await call(predictionService, 'GetModelMetadata', {
      model_spec: { name: 'half_plus_two', version: { value: 123 } },
      metadata_field: ['signature_def'],
    });
    const mapType = root.lookupType('tensorflow.serving.SignatureDefMap');
    const map = mapType.toObject(mapType.decode(hpt.metadata.signature_def.value), { ...TO_OBJECT, defaults: false }) as Msg;
    assert.deepEqual(map.signature_def.serving_default.inputs.x.tensor_shape, { unknown_rank: true });
  });

  test('TF\'s errors', async () => {
    const cases: Array<[Msg, number, string]> = [
      [{ metadata_field: ['signature_def'] }, grpc.status.INVALID_ARGUMENT, 'Missing ModelSpec'],
      [{ model_spec: { name: 'add_sub' } }, grpc.status.INVALID_ARGUMENT, 'GetModelMetadataRequest must specify at least one metadata_field'],
      [
        { model_spec: { name: 'add_sub' }, metadata_field: ['signature_def', 'graph'] },
        grpc.status.INVALID_ARGUMENT,
        'Metadata field graph is not supported',
      ],
      [{ model_spec: { name: 'nope' }, metadata_field: ['signature_def'] }, grpc.status.NOT_FOUND, 'Servable not found for request: Latest(nope)'],
      [{ model_spec: {}, metadata_field: ['signature_def'] }, grpc.status.INVALID_ARGUMENT, 'ModelSpec has no name specified.'],
    ];
    for (const [request, code, details] of cases) {
      assert.deepEqual(await callError(predictionService, 'GetModelMetadata', request), { code, details }, JSON.stringify(request));
    }
  });
});

describe('GetModelStatus', () => {
  test('every version, highest first; one version; failed loads with their error', async () => {
    const all = await call(modelService, 'GetModelStatus', { model_spec: { name: 'mlp' } });
    assert.deepEqual(all.model_version_status, [
      { version: '2', state: 'AVAILABLE', status: {} },
      { version: '1', state: 'AVAILABLE', status: {} },
    ]);
    const one = await call(modelService, 'GetModelStatus', { model_spec: { name: 'mlp', version: { value: 1 } } });
    assert.deepEqual(one.model_version_status, [{ version: '1', state: 'AVAILABLE', status: {} }]);
    // A label does not narrow the answer (TF looks only at the version).
    const labelled = await call(modelService, 'GetModelStatus', { model_spec: { name: 'mlp', version_label: 'stable' } });
    assert.equal(labelled.model_version_status.length, 2);
    const broken = await call(modelService, 'GetModelStatus', { model_spec: { name: 'broken' } });
    assert.equal(broken.model_version_status[0].state, 'END');
    assert.equal(broken.model_version_status[0].status.error_code, 'DATA_LOSS');
    assert.match(broken.model_version_status[0].status.error_message, /not a valid ONNX model/);
  });

  test('TF\'s errors', async () => {
    assert.deepEqual(await callError(modelService, 'GetModelStatus', {}), {
      code: grpc.status.INVALID_ARGUMENT,
      details: 'Missing ModelSpec',
    });
    assert.deepEqual(await callError(modelService, 'GetModelStatus', { model_spec: { name: 'nope' } }), {
      code: grpc.status.NOT_FOUND,
      details: 'Could not find any versions of model nope',
    });
    assert.deepEqual(await callError(modelService, 'GetModelStatus', { model_spec: { name: 'mlp', version: { value: 9 } } }), {
      code: grpc.status.NOT_FOUND,
      details: 'Could not find version 9 of model mlp',
    });
  });
});

describe('Health', () => {
  test('Check, List and Watch report SERVING for "", ModelService and PredictionService', async () => {
    for (const service of ['', 'ModelService', 'PredictionService']) {
      assert.deepEqual(await call(health, 'Check', { service }), { status: 'SERVING' }, service);
    }
    assert.equal((await callError(health, 'Check', { service: 'nope' })).code, grpc.status.NOT_FOUND);
    const list = await call(health, 'List', {});
    assert.deepEqual(list.statuses, {
      '': { status: 'SERVING' },
      ModelService: { status: 'SERVING' },
      PredictionService: { status: 'SERVING' },
    });
    const stream = health.Watch!({ service: 'PredictionService' }) as grpc.ClientReadableStream<Msg>;
    const first = await new Promise<Msg>((resolve, reject) => {
      stream.once('data', resolve);
      stream.once('error', reject);
    });
    assert.deepEqual(first, { status: 'SERVING' });
    stream.on('error', () => {});
    stream.cancel();
  });
});

describe('deadlines', () => {
  test('a generous deadline succeeds; an exceeded one fails with DEADLINE_EXCEEDED and frees the worker', async () => {
    const ok = await call(
      predictionService,
      'Predict',
      { model_spec: { name: 'half_plus_two' }, inputs: { x: floats([1], [1]) } },
      { deadline: Date.now() + 30_000 },
    );
    assert.deepEqual(ok.outputs.y.float_val, [2.5]);

    const rows = 4000;
    const request = {
      model_spec: { name: 'mlp' },
      inputs: { images: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: rows }, { size: 784 }] }, tensor_content: Buffer.alloc(rows * 784 * 4) } },
    };
    const err = await callError(predictionService, 'Predict', request, { deadline: Date.now() + 5 });
    assert.equal(err.code, grpc.status.DEADLINE_EXCEEDED);
    const worker = gw.manager.table.resolve('mlp').replicas[0]!;
    const until = Date.now() + 5000;
    while (worker.inFlight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.equal(worker.inFlight, 0);
    // The gateway and the worker keep serving.
    const again = await call(predictionService, 'Predict', { model_spec: { name: 'half_plus_two' }, inputs: { x: floats([1], [3]) } });
    assert.deepEqual(again.outputs.y.float_val, [3.5]);
  });
});

describe('the lean unary path (fast-unary.ts)', () => {
  test('a connection may send 4 MiB before its first WINDOW_UPDATE, not HTTP/2\'s 64 KiB', async () => {
    const session = http2.connect(`http://${address}`);
    try {
      // The server's WINDOW_UPDATE for the connection follows its SETTINGS; wait for both to arrive.
      const until = Date.now() + 5000;
      while ((session.state.remoteWindowSize ?? 0) < 4 << 20 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      assert.ok((session.state.remoteWindowSize ?? 0) >= 4 << 20, `window ${session.state.remoteWindowSize}`);
    } finally {
      session.close();
    }
  });

  test('plain calls take it; gzip-compressed calls go through grpc-js and get the same answer', async () => {
    const request = { model_spec: { name: 'half_plus_two' }, inputs: { x: floats([2], [1, 3]) } };
    const before = fastUnaryStats.calls;
    const plain = await call(predictionService, 'Predict', request);
    assert.equal(fastUnaryStats.calls, before + 1, 'a plain Predict is served by the lean path');
    const gzip = makeClient('tensorflow.serving.PredictionService', address, { 'grpc.default_compression_algorithm': 2 });
    try {
      const compressed = await call(gzip, 'Predict', request);
      assert.equal(fastUnaryStats.calls, before + 1, 'a compressed Predict is left to grpc-js');
      assert.deepEqual(compressed, plain);
      assert.deepEqual(plain.outputs.y.float_val, [2.5, 3.5]);
      // Errors read the same both ways.
      const missing = { model_spec: { name: 'nope' }, inputs: { x: floats([1], [1]) } };
      assert.deepEqual(await callError(gzip, 'Predict', missing), await callError(predictionService, 'Predict', missing));
    } finally {
      gzip.close();
    }
  });

  test('a call the client cancels frees its place on the worker at once', async () => {
    const rows = 4000;
    const request = {
      model_spec: { name: 'mlp' },
      inputs: { images: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: rows }, { size: 784 }] }, tensor_content: Buffer.alloc(rows * 784 * 4) } },
    };
    const worker = gw.manager.table.resolve('mlp').replicas[0]!;
    const pending = new Promise<grpc.ServiceError>((resolve) => {
      const c = predictionService.Predict!(request, new grpc.Metadata(), {}, (err: grpc.ServiceError | null) => resolve(err as grpc.ServiceError));
      const started = Date.now();
      const poll = setInterval(() => {
        if (worker.inFlight > 0 || Date.now() - started > 5000) {
          clearInterval(poll);
          c.cancel();
        }
      }, 1);
    });
    assert.equal((await pending).code, grpc.status.CANCELLED);
    const until = Date.now() + 2000;
    while (worker.inFlight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    assert.equal(worker.inFlight, 0);
    const again = await call(predictionService, 'Predict', { model_spec: { name: 'half_plus_two' }, inputs: { x: floats([1], [3]) } });
    assert.deepEqual(again.outputs.y.float_val, [3.5]);
  });
});

describe('HandleReloadConfigRequest', () => {
  const base = (name: string) => path.join(repoDir, name);
  const config = (models: Msg[]) => ({ config: { model_config_list: { config: models } } });
  const standard = () => [
    { name: 'half_plus_two', base_path: base('half_plus_two'), model_platform: 'onnx' },
    { name: 'add_sub', base_path: 'add_sub', model_platform: 'onnx' },
    {
      name: 'mlp',
      base_path: base('mlp'),
      model_platform: 'onnx',
      model_version_policy: { all: {} },
      version_labels: { stable: 1, canary: 2 },
    },
    { name: 'dtypes', base_path: base('dtypes'), model_platform: 'onnx' },
    { name: 'broken', base_path: base('broken'), model_platform: 'onnx' },
  ];

  test('only model_config_list is accepted; invalid configs change nothing', async () => {
    assert.deepEqual(
      await callError(modelService, 'HandleReloadConfigRequest', {
        config: { custom_model_config: { type_url: 'type.googleapis.com/x', value: Buffer.alloc(0) } },
      }),
      {
        code: grpc.status.INVALID_ARGUMENT,
        details:
          'ServerModelConfig type not supported by HandleReloadConfigRequest. Only ModelConfigList is currently supported',
      },
    );
    assert.equal((await callError(modelService, 'HandleReloadConfigRequest', {})).code, grpc.status.INVALID_ARGUMENT);
    const dup = await callError(
      modelService,
      'HandleReloadConfigRequest',
      config([...standard(), { name: 'mlp', base_path: base('mlp'), model_platform: 'onnx' }]),
    );
    assert.equal(dup.code, grpc.status.INVALID_ARGUMENT);
    assert.match(dup.details, /Illegal to list model mlp multiple times in config list/);
    assert.equal((await call(modelService, 'GetModelStatus', { model_spec: { name: 'add_sub' } })).model_version_status[0].state, 'AVAILABLE');
  });

  test('a new config applies before the call returns: moved label, new model, relative base path', async () => {
    const models = standard();
    models[2]!.version_labels = { stable: 2, canary: 2 };
    models.push({ name: 'half_plus_two_copy', base_path: 'half_plus_two', model_platform: 'onnx' });
    const out = await call(modelService, 'HandleReloadConfigRequest', { ...config(models), metric_names: ['some_counter'] });
    assert.deepEqual(out, { status: {}, metric: [{ name: 'some_counter', int64_value_increase: '0', value_increase: 'int64_value_increase' }] });
    const copy = await call(predictionService, 'Predict', {
      model_spec: { name: 'half_plus_two_copy' },
      inputs: { x: floats([1], [2]) },
    });
    assert.deepEqual(copy.outputs.y.float_val, [3]);
    const images = floats([1, 784], [0.5]);
    const stable = await call(predictionService, 'Predict', { model_spec: { name: 'mlp', version_label: 'stable' }, inputs: { images } });
    assert.equal(stable.model_spec.version.value, '2');
  });

  test('a new model that fails to load fails the reload with TF\'s UNKNOWN message', async () => {
    const err = await callError(
      modelService,
      'HandleReloadConfigRequest',
      config([...standard(), { name: 'broken_too', base_path: base('broken'), model_platform: 'onnx' }]),
    );
    assert.equal(err.code, grpc.status.UNKNOWN);
    assert.match(
      err.details,
      /^1 model\(s\) did not become available: \{\{\{name: broken_too version: 1\} due to error: DATA_LOSS: .*not a valid ONNX model.*\}, \}$/,
    );
    // Back to the standard repository.
    const out = await call(modelService, 'HandleReloadConfigRequest', config(standard()));
    assert.deepEqual(out.status, {});
    const stable = await call(predictionService, 'Predict', {
      model_spec: { name: 'mlp', version_label: 'stable' },
      inputs: { images: floats([1, 784], [0.5]) },
    });
    assert.equal(stable.model_spec.version.value, '1');
  });
});
