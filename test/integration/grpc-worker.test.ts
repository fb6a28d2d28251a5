/**
 * The worker's gRPC request kinds (worker/grpc-api.ts) over its real server and the worker protocol
 * (raw frames written here, not the gateway's client), with a stand-in runtime
 * that has classify and regress signatures (the SavedModel runtime will have real ones), plus the
 * TensorProto codec on its own.
 */
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type protobuf from 'protobufjs';
import { loadProtoRoot } from '../../common/protos.js';
import { decodeTensorProto, encodeTensorProto } from '../../worker/codec/tensor-proto.js';
import {
  CLASSIFY_METHOD,
  PREDICT_METHOD,
  REGRESS_METHOD,
  type DType,
  type SignatureDef,
  type Tensor,
  type TensorInfo,
} from '../../worker/codec/tensor.js';
import { setMethodNameCheck, signatureDebugString } from '../../worker/grpc-api.js';
import type { Runtime } from '../../worker/runtimes/runtime.js';
import { createWorkerServer, type WorkerServer } from '../../worker/server.js';
import {
  decodeResponse,
  encodeRequestHead,
  FrameReader,
  Kind,
  NO_DEADLINE,
  PREFACE,
} from '../../common/worker-protocol.js';

const root = loadProtoRoot(['tensorflow_serving/apis/prediction_service.proto']);
const T = (name: string) => root.lookupType(name);
const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, bytes: Buffer, oneofs: true };

const info = (name: string, dtype: DType, shape: number[] | null): TensorInfo => ({ name, dtype, shape });
const SIGNATURES: Record<string, SignatureDef> = {
  serving_default: {
    inputs: { inputs: info('examples:0', 'DT_STRING', [-1]) },
    outputs: { classes: info('classes:0', 'DT_STRING', [-1, 2]), scores: info('scores:0', 'DT_FLOAT', [-1, 2]) },
    methodName: CLASSIFY_METHOD,
  },
  scores_only: {
    inputs: { inputs: info('examples:0', 'DT_STRING', [-1]) },
    outputs: { scores: info('scores:0', 'DT_FLOAT', [-1, 2]) },
    methodName: CLASSIFY_METHOD,
  },
  regress: {
    inputs: { inputs: info('examples:0', 'DT_STRING', [-1]) },
    outputs: { outputs: info('value:0', 'DT_FLOAT', [-1, 1]) },
    methodName: REGRESS_METHOD,
  },
  regress_misnamed: {
    inputs: { inputs: info('examples:0', 'DT_STRING', [-1]) },
    outputs: { value: info('value:0', 'DT_FLOAT', [-1, 1]) },
    methodName: REGRESS_METHOD,
  },
  regress_int_input: {
    inputs: { inputs: info('ids:0', 'DT_INT64', null) },
    outputs: { outputs: info('value:0', 'DT_FLOAT', [-1]) },
    methodName: REGRESS_METHOD,
  },
  classify_bad_shape: {
    inputs: { inputs: info('examples:0', 'DT_STRING', [-1]) },
    outputs: { scores: info('scores:0', 'DT_FLOAT', [-1]) },
    methodName: CLASSIFY_METHOD,
  },
  echo: {
    inputs: { s: info('s:0', 'DT_STRING', [-1]) },
    outputs: { s: info('s:0', 'DT_STRING', [-1]) },
    methodName: PREDICT_METHOD,
  },
};

const runs: Array<{ signature: string; examples: Msg[] }> = [];
type Msg = Record<string, any>;

/** Reads feature `x` (a float) of each fed tf.Example: classes lo/hi with scores 1-x/x; regression 2x. */
const runtime: Runtime = {
  signatures: SIGNATURES,
  backends: {},
  async run(signature, inputs, outputs) {
    if (signature === 'echo') return { s: inputs.s as Tensor };
    const examples = ((inputs.inputs as Tensor).data as Uint8Array[]).map((b) =>
      T('tensorflow.Example').toObject(T('tensorflow.Example').decode(b), TO_OBJECT),
    );
    runs.push({ signature, examples });
    const xs = examples.map((e) => e.features?.feature?.x?.float_list?.value?.[0] ?? 0);
    const n = xs.length;
    const out: Record<string, Tensor> = {};
    for (const alias of outputs ?? []) {
      if (alias === 'classes') {
        out.classes = { dtype: 'DT_STRING', shape: [n, 2], data: xs.flatMap(() => [Buffer.from('lo'), Buffer.from('hi')]) };
      } else if (alias === 'scores') {
        const shape = signature === 'classify_bad_shape' ? [n] : [n, 2];
        const data = signature === 'classify_bad_shape' ? Float32Array.from(xs) : Float32Array.from(xs.flatMap((x) => [1 - x, x]));
        out.scores = { dtype: 'DT_FLOAT', shape, data };
      } else if (alias === 'outputs') {
        out.outputs = { dtype: 'DT_FLOAT', shape: [n, 1], data: Float32Array.from(xs, (x) => 2 * x) };
      }
    }
    return out;
  },
  async close() {},
};

let server: WorkerServer;
let port: number;

before(async () => {
  server = createWorkerServer({ runtime, maxBodyBytes: 64 * 1024 * 1024 });
  await new Promise<void>((resolve) => server.server.listen(0, '127.0.0.1', resolve));
  port = (server.server.address() as AddressInfo).port;
});

after(async () => {
  await server.drain(1000);
});

interface Answer {
  status: number;
  code: number | undefined;
  body: Buffer;
}

const KINDS: Record<string, number> = {
  '/grpc/predict': Kind.GRPC_PREDICT,
  '/grpc/classify': Kind.GRPC_CLASSIFY,
  '/grpc/regress': Kind.GRPC_REGRESS,
  '/grpc/multi_inference': Kind.GRPC_MULTI_INFERENCE,
};

/** One REQUEST frame on a fresh connection, and the RESPONSE to it. */
function frameCall(kind: number, body: Uint8Array, head: { version?: number; timeoutMs?: number } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const reader = new FrameReader();
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) =>
      reader.push(chunk, (frame) => {
        assert.equal(frame.id, 7);
        const r = decodeResponse(frame.payload);
        socket.destroy();
        resolve({ status: r.status, code: r.code, body: Buffer.from(r.body) });
      }),
    );
    const frameHead = encodeRequestHead(
      7,
      { kind, flags: 0, timeoutMs: head.timeoutMs ?? NO_DEADLINE, version: head.version ?? NaN, requestId: 'test' },
      body.length,
    );
    socket.write(Buffer.concat([PREFACE, frameHead, body]));
  });
}

async function post(route: string, type: string, message: Msg, head: { version?: number; timeoutMs?: number } = { version: 7 }): Promise<Answer> {
  const t = T(type);
  return frameCall(KINDS[route] as number, t.encode(t.fromObject(message)).finish(), head);
}

async function ok(route: string, reqType: string, resType: string, message: Msg): Promise<Msg> {
  const answer = await post(route, reqType, message);
  assert.equal(answer.status, 200, answer.body.toString());
  return T(resType).toObject(T(resType).decode(answer.body), TO_OBJECT);
}

async function fails(route: string, reqType: string, message: Msg): Promise<{ code: number; message: string }> {
  const answer = await post(route, reqType, message);
  assert.notEqual(answer.status, 200);
  assert.ok(answer.code !== undefined && answer.code !== 0, 'a TF code');
  return { code: answer.code, message: answer.body.toString('utf8') };
}

const example = (x: number, extra: Msg = {}) => ({ features: { feature: { x: { float_list: { value: [x] } }, ...extra } } });

describe('Classify and Regress: serialized tf.Examples into the signature', () => {
  test('classes and scores become ClassificationResult, in example order', async () => {
    const out = await ok('/grpc/classify', 'tensorflow.serving.ClassificationRequest', 'tensorflow.serving.ClassificationResponse', {
      model_spec: { name: 'm' },
      input: { example_list: { examples: [example(0.25), example(1)] } },
    });
    assert.deepEqual(out.model_spec, { name: 'm', version: { value: '7' }, version_choice: 'version', signature_name: 'serving_default' });
    assert.deepEqual(out.result.classifications, [
      { classes: [{ label: 'lo', score: 0.75 }, { label: 'hi', score: 0.25 }] },
      { classes: [{ label: 'lo' }, { label: 'hi', score: 1 }] },
    ]);
    assert.deepEqual(runs.at(-1)!.examples.map((e) => e.features.feature.x.float_list.value), [[0.25], [1]]);
  });

  test('a context is merged into every example; a scores-only signature gives scores only', async () => {
    const out = await ok('/grpc/classify', 'tensorflow.serving.ClassificationRequest', 'tensorflow.serving.ClassificationResponse', {
      model_spec: { name: 'm', signature_name: 'scores_only' },
      input: {
        example_list_with_context: {
          examples: [example(0.5)],
          context: { features: { feature: { c: { bytes_list: { value: [Buffer.from('ctx')] } } } } },
        },
      },
    });
    assert.deepEqual(out.result.classifications, [{ classes: [{ score: 0.5 }, { score: 0.5 }] }]);
    assert.equal(out.model_spec.signature_name, 'scores_only');
    const fed = runs.at(-1)!.examples[0];
    assert.deepEqual(fed.features.feature.c.bytes_list.value, [Buffer.from('ctx')]);
    assert.deepEqual(fed.features.feature.x.float_list.value, [0.5]);
  });

  test('regress: outputs [batch, 1] become RegressionResult', async () => {
    const out = await ok('/grpc/regress', 'tensorflow.serving.RegressionRequest', 'tensorflow.serving.RegressionResponse', {
      model_spec: { name: 'm', signature_name: 'regress' },
      input: { example_list: { examples: [example(1.5), example(-2)] } },
    });
    assert.deepEqual(out.result.regressions, [{ value: 3 }, { value: -4 }]);
    assert.deepEqual(out.model_spec, { name: 'm', version: { value: '7' }, version_choice: 'version', signature_name: 'regress' });
  });

  test('TF\'s errors: method, signature shape, empty input, dtype, result shape', async () => {
    const input = { example_list: { examples: [example(1)] } };
    // The method-name check runs only with --enable_signature_method_name_check.
    setMethodNameCheck(true);
    try {
      assert.deepEqual(
        await fails('/grpc/regress', 'tensorflow.serving.RegressionRequest', { model_spec: { name: 'm' }, input }),
        {
          code: 3,
          message: 'Expected regression signature method_name to be tensorflow/serving/regress. Was: tensorflow/serving/classify',
        },
      );
    } finally {
      setMethodNameCheck(false);
    }
    assert.deepEqual(
      await fails('/grpc/regress', 'tensorflow.serving.RegressionRequest', { model_spec: { name: 'm', signature_name: 'regress_misnamed' }, input }),
      { code: 3, message: `No regression outputs found in SignatureDef: ${signatureDebugString(SIGNATURES.regress_misnamed!)}` },
    );
    assert.deepEqual(
      await fails('/grpc/classify', 'tensorflow.serving.ClassificationRequest', { model_spec: { name: 'm' }, input: { example_list: {} } }),
      { code: 3, message: 'Input is empty.' },
    );
    assert.deepEqual(await fails('/grpc/classify', 'tensorflow.serving.ClassificationRequest', { model_spec: { name: 'm' } }), {
      code: 3,
      message: 'Input is empty.',
    });
    assert.deepEqual(
      await fails('/grpc/regress', 'tensorflow.serving.RegressionRequest', { model_spec: { name: 'm', signature_name: 'regress_int_input' }, input }),
      { code: 3, message: 'Expects arg[0] to be int64 but string is provided' },
    );
    assert.deepEqual(
      await fails('/grpc/classify', 'tensorflow.serving.ClassificationRequest', { model_spec: { name: 'm', signature_name: 'classify_bad_shape' }, input }),
      { code: 3, message: 'Expected Tensor shape: [batch_size num_classes] but got [1]' },
    );
    assert.deepEqual(
      await fails('/grpc/classify', 'tensorflow.serving.ClassificationRequest', { model_spec: { name: 'm', signature_name: 'nope' }, input }),
      { code: 3, message: 'No signature was found with the name: nope' },
    );
  });

  test('SignatureDef debug string is protobuf text format', () => {
    assert.equal(
      signatureDebugString(SIGNATURES.regress_int_input!),
      'inputs {\n  key: "inputs"\n  value {\n    name: "ids:0"\n    dtype: DT_INT64\n    tensor_shape {\n      unknown_rank: true\n    }\n  }\n}\n' +
        'outputs {\n  key: "outputs"\n  value {\n    name: "value:0"\n    dtype: DT_FLOAT\n    tensor_shape {\n      dim {\n        size: -1\n      }\n    }\n  }\n}\n' +
        'method_name: "tensorflow/serving/regress"\n',
    );
  });
});

describe('MultiInference', () => {
  const input = { example_list: { examples: [example(0.5), example(2)] } };
  const task = (name: string, method: string, signature_name = '') => ({ model_spec: { name, signature_name }, method_name: method });

  test('one result per task, in task order, each with its model spec', async () => {
    runs.length = 0;
    const out = await ok('/grpc/multi_inference', 'tensorflow.serving.MultiInferenceRequest', 'tensorflow.serving.MultiInferenceResponse', {
      tasks: [task('m', REGRESS_METHOD, 'regress'), task('m', CLASSIFY_METHOD)],
      input,
    });
    assert.equal(out.results.length, 2);
    assert.deepEqual(out.results[0].model_spec, { name: 'm', version: { value: '7' }, version_choice: 'version', signature_name: 'regress' });
    assert.deepEqual(out.results[0].regression_result.regressions, [{ value: 1 }, { value: 4 }]);
    assert.equal(out.results[0].result, 'regression_result');
    assert.equal(out.results[1].model_spec.signature_name, 'serving_default');
    assert.deepEqual(out.results[1].classification_result.classifications[1], {
      classes: [{ label: 'lo', score: -1 }, { label: 'hi', score: 2 }],
    });
    assert.deepEqual(runs.map((r) => r.signature).sort(), ['regress', 'serving_default']);
  });

  test('TF\'s task checks', async () => {
    const cases: Array<[Msg[], number, string]> = [
      [[task('', CLASSIFY_METHOD)], 3, 'Found ModelSpec with an empty model name.'],
      [[task('m', CLASSIFY_METHOD), task('n', REGRESS_METHOD, 'regress')], 3, 'All ModelSpecs in a MultiInferenceRequest must access the same model name.'],
      [[task('m', CLASSIFY_METHOD), task('m', CLASSIFY_METHOD, 'serving_default')], 3, 'Duplicate evaluation of signature: serving_default'],
      [[task('m', CLASSIFY_METHOD, 'nope')], 3, 'Requested signature not found in model graph: nope'],
      [[task('m', 'tensorflow/serving/predict')], 12, 'Unsupported signature method_name: tensorflow/serving/predict'],
    ];
    for (const [tasks, code, message] of cases) {
      assert.deepEqual(await fails('/grpc/multi_inference', 'tensorflow.serving.MultiInferenceRequest', { tasks, input }), { code, message });
    }
    assert.deepEqual(
      await fails('/grpc/multi_inference', 'tensorflow.serving.MultiInferenceRequest', { tasks: [task('m', CLASSIFY_METHOD)] }),
      { code: 3, message: 'Input is empty.' },
    );
  });
});

describe('worker route plumbing', () => {
  test('an exhausted deadline is refused before running; without a version the spec has none', async () => {
    runs.length = 0;
    const input = { example_list: { examples: [example(1)] } };
    const late = await post('/grpc/classify', 'tensorflow.serving.ClassificationRequest', { model_spec: { name: 'm' }, input }, { timeoutMs: 0 });
    assert.equal(late.status, 504);
    assert.equal(late.code, 4);
    assert.equal(late.body.toString(), 'Deadline Exceeded');
    assert.equal(runs.length, 0);
    const answer = await post('/grpc/classify', 'tensorflow.serving.ClassificationRequest', { model_spec: { name: 'm' }, input }, { timeoutMs: 60000 });
    assert.equal(answer.status, 200);
    const out = T('tensorflow.serving.ClassificationResponse').toObject(T('tensorflow.serving.ClassificationResponse').decode(answer.body), TO_OBJECT);
    assert.deepEqual(out.model_spec, { name: 'm', signature_name: 'serving_default' });
  });

  test('strings: tensor_content list and the fill rule', async () => {
    const content = Buffer.concat([Buffer.from([1, 0, 3]), Buffer.from('a'), Buffer.from([0xff, 0x00, 0x80])]);
    const out = await ok('/grpc/predict', 'tensorflow.serving.PredictRequest', 'tensorflow.serving.PredictResponse', {
      model_spec: { name: 'm', signature_name: 'echo' },
      inputs: { s: { dtype: 'DT_STRING', tensor_shape: { dim: [{ size: 3 }] }, tensor_content: content } },
    });
    assert.deepEqual(out.outputs.s.string_val, [Buffer.from('a'), Buffer.alloc(0), Buffer.from([0xff, 0x00, 0x80])]);
    const filled = await ok('/grpc/predict', 'tensorflow.serving.PredictRequest', 'tensorflow.serving.PredictResponse', {
      model_spec: { name: 'm', signature_name: 'echo' },
      inputs: { s: { dtype: 'DT_STRING', tensor_shape: { dim: [{ size: 2 }, { size: 2 }] }, string_val: [Buffer.from('z')] } },
    });
    assert.deepEqual(filled.outputs.s.string_val, Array(4).fill(Buffer.from('z')));
    const bad = await fails('/grpc/predict', 'tensorflow.serving.PredictRequest', {
      model_spec: { name: 'm', signature_name: 'echo' },
      inputs: { s: { dtype: 'DT_STRING', tensor_shape: { dim: [{ size: 2 }] }, tensor_content: Buffer.from([1, 1, 0x61]) } },
    });
    assert.deepEqual(bad, { code: 3, message: 'tensor parsing error: s' });
  });

  test('an unparsable request is INVALID_ARGUMENT', async () => {
    const res = await frameCall(Kind.GRPC_PREDICT, Buffer.from([0x0a, 0xff]));
    assert.equal(res.status, 400);
    assert.equal(res.code, 3);
    assert.match(res.body.toString(), /^Could not parse PredictRequest/);
  });
});

describe('TensorProto codec', () => {
  const samples: Tensor[] = [
    { dtype: 'DT_FLOAT', shape: [2, 2], data: new Float32Array([1, -2, 3.5, NaN]) },
    { dtype: 'DT_DOUBLE', shape: [1], data: new Float64Array([-0]) },
    { dtype: 'DT_HALF', shape: [2], data: new Uint16Array([0x3c00, 0xfc00]) },
    { dtype: 'DT_INT8', shape: [2], data: new Int8Array([-1, 127]) },
    { dtype: 'DT_INT16', shape: [1], data: new Int16Array([-300]) },
    { dtype: 'DT_INT32', shape: [], data: new Int32Array([-5]) },
    { dtype: 'DT_INT64', shape: [3], data: new BigInt64Array([-1n, 2n ** 40n, -(2n ** 63n)]) },
    { dtype: 'DT_UINT8', shape: [1], data: new Uint8Array([200]) },
    { dtype: 'DT_UINT16', shape: [1], data: new Uint16Array([65535]) },
    { dtype: 'DT_UINT32', shape: [1], data: new Uint32Array([4294967295]) },
    { dtype: 'DT_UINT64', shape: [2], data: new BigUint64Array([2n ** 64n - 1n, 0n]) },
    { dtype: 'DT_BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
    { dtype: 'DT_STRING', shape: [2], data: [Buffer.from('x'), Buffer.alloc(0)] },
    { dtype: 'DT_FLOAT', shape: [0, 3], data: new Float32Array(0) },
  ];
  const plain = (t: Tensor) => ({
    dtype: t.dtype,
    shape: t.shape,
    data: Array.isArray(t.data) ? t.data.map((b) => Buffer.from(b).toString('hex')) : Array.from(t.data as ArrayLike<unknown>, String),
  });

  test('round trips through typed fields and through tensor_content for every dtype', () => {
    for (const t of samples) {
      assert.deepEqual(plain(decodeTensorProto(encodeTensorProto(t))), plain(t), t.dtype);
      assert.deepEqual(plain(decodeTensorProto(encodeTensorProto(t, { content: true }))), plain(t), `${t.dtype} content`);
    }
  });

  test('reads unpacked repeated values too (proto2-style writers)', () => {
    const type = T('tensorflow.TensorProto');
    // float_val written unpacked: tag (5<<3|5) per value.
    const head = Buffer.from(type.encode(type.fromObject({ dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: 2 }] } })).finish());
    const v = Buffer.alloc(10);
    v[0] = (5 << 3) | 5;
    v.writeFloatLE(1.5, 1);
    v[5] = (5 << 3) | 5;
    v.writeFloatLE(-3, 6);
    assert.deepEqual(Array.from(decodeTensorProto(Buffer.concat([head, v])).data as Float32Array), [1.5, -3]);
  });
});
