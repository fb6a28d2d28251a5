/**
 * The Open Inference Protocol's codec in the worker (worker/codec/v2-infer.ts) on its own: JSON and
 * raw data to tensors against a signature, the checks and their messages, and both encodings back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ServingError } from '../../common/errors.js';
import { loadProtoRoot } from '../../common/protos.js';
import type { SignatureDef } from '../../common/signature.js';
import { prepareRun, readGrpcRequest, readRestRequest, toRaw, writeGrpcResponse, writeRestResponse } from '../../worker/codec/v2-infer.js';
import { PREDICT_METHOD } from '../../worker/codec/tensor.js';

const SIG: SignatureDef = {
  inputs: {
    f: { name: 'f', dtype: 'DT_FLOAT', shape: [-1, 2] },
    h: { name: 'h', dtype: 'DT_HALF', shape: null },
    i8: { name: 'i8', dtype: 'DT_INT8', shape: [-1] },
    u64: { name: 'u64', dtype: 'DT_UINT64', shape: [-1] },
    s: { name: 's', dtype: 'DT_STRING', shape: [-1] },
  },
  outputs: { out: { name: 'out', dtype: 'DT_FLOAT', shape: [-1, 2] } },
  methodName: PREDICT_METHOD,
};

const rest = (inputs: object[], extra: object = {}) => readRestRequest(Buffer.from(JSON.stringify({ inputs, ...extra })), undefined);
const ok = [
  { name: 'f', shape: [2, 2], datatype: 'FP32', data: [[1, 2], [3, 4]] },
  { name: 'h', shape: [1], datatype: 'FP16', data: [0.5] },
  { name: 'i8', shape: [2], datatype: 'INT8', data: [-128, 127] },
  { name: 'u64', shape: [1], datatype: 'UINT64', data: [1] },
  { name: 's', shape: [1], datatype: 'BYTES', data: ['é'] },
];
const withInput = (name: string, replacement: object) => ok.map((x) => (x.name === name ? { ...x, ...replacement } : x));

function fails(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof ServingError && message.test(err.message), String(message));
}

test('JSON data, flat or nested, becomes tensors of the signature dtypes', () => {
  const run = prepareRun('m', SIG, rest(ok));
  assert.deepEqual([...(run.inputs.f!.data as Float32Array)], [1, 2, 3, 4]);
  assert.deepEqual([...(run.inputs.h!.data as Uint16Array)], [0x3800]);
  assert.deepEqual([...(run.inputs.i8!.data as Int8Array)], [-128, 127]);
  assert.deepEqual(Buffer.from((run.inputs.s!.data as Uint8Array[])[0]!).toString(), 'é');
  assert.deepEqual(run.outputs, ['out']);
  const big = readRestRequest(Buffer.from('{"inputs":[{"name":"u64","shape":[1],"datatype":"UINT64","data":[18446744073709551615]}]}'), undefined);
  const u64: SignatureDef = { inputs: { u64: SIG.inputs.u64! }, outputs: {}, methodName: PREDICT_METHOD };
  assert.deepEqual([...(prepareRun('m', u64, big).inputs.u64!.data as BigUint64Array)], [18446744073709551615n], 'exact, not via a double');
});

test('checks: names, datatypes, shapes, element counts, ranges, kinds of values', () => {
  fails(() => prepareRun('m', SIG, rest([...ok, { name: 'zz', shape: [1], datatype: 'FP32', data: [1] }])), /unexpected inference input 'zz' for model 'm'/);
  fails(() => prepareRun('m', SIG, rest(ok.slice(1))), /expected 5 inputs but got 4 inputs for model 'm'/);
  fails(() => prepareRun('m', SIG, rest(withInput('f', { datatype: 'FP64' }))), /inference input 'f' data-type is 'FP64', but model 'm' expects 'FP32'/);
  fails(() => prepareRun('m', SIG, rest(withInput('f', { datatype: 'FLOAT' }))), /invalid datatype 'FLOAT'/);
  fails(() => prepareRun('m', SIG, rest(withInput('f', { shape: [2, 3] }))), /unexpected shape for input 'f' for model 'm'. Expected \[-1,2\], got \[2,3\]/);
  fails(() => prepareRun('m', SIG, rest(withInput('f', { shape: [3, 2] }))), /input 'f' has 4 elements, but its shape \[3,2\] holds 6/);
  fails(() => prepareRun('m', SIG, rest(withInput('i8', { data: [128, 0] }))), /value 128 of input 'i8' is out of range for INT8/);
  fails(() => prepareRun('m', SIG, rest(withInput('i8', { data: [1.5, 0] }))), /expected an integer for INT8, got Number/);
  fails(() => prepareRun('m', SIG, rest(withInput('u64', { data: [-1] }))), /out of range for UINT64/);
  fails(() => prepareRun('m', SIG, rest(withInput('s', { data: [1] }))), /expected a string for BYTES/);
  fails(() => rest([{ name: 'f', shape: [-1], datatype: 'FP32', data: [] }]), /must be a list of non-negative integers/);
  fails(() => rest([{ name: 'f', shape: [1], datatype: 'FP32' }]), /neither 'data' nor 'binary_data_size'/);
  fails(() => readRestRequest(Buffer.from('{"inputs": 3}'), undefined), /must have an 'inputs' list/);
  fails(() => prepareRun('m', SIG, rest(ok, { outputs: [{ name: 'nope' }] })), /unexpected inference output 'nope'/);
});

test('binary section: sizes claimed in order, BYTES length-prefixed, leftovers and overruns refused', () => {
  const header = Buffer.from(JSON.stringify({
    inputs: [
      { name: 's', shape: [2], datatype: 'BYTES', parameters: { binary_data_size: 4 + 2 + 4 + 0 } },
      { name: 'i8', shape: [1], datatype: 'INT8', parameters: { binary_data_size: 1 } },
    ],
  }));
  const strings = Buffer.concat([Buffer.from([2, 0, 0, 0]), Buffer.from('hi'), Buffer.from([0, 0, 0, 0])]);
  const request = readRestRequest(Buffer.concat([header, strings, Buffer.from([0xff])]), header.length);
  const sig: SignatureDef = { inputs: { s: SIG.inputs.s!, i8: SIG.inputs.i8! }, outputs: {}, methodName: PREDICT_METHOD };
  const run = prepareRun('m', sig, request);
  assert.deepEqual((run.inputs.s!.data as Uint8Array[]).map((b) => Buffer.from(b).toString()), ['hi', '']);
  assert.deepEqual([...(run.inputs.i8!.data as Int8Array)], [-1]);
  fails(() => readRestRequest(Buffer.concat([header, strings, Buffer.from([1, 2])]), header.length), /1 bytes of binary data that no input claims/);
  fails(() => readRestRequest(Buffer.concat([header, strings]), header.length), /past the end of the body/);
  const bad = readRestRequest(Buffer.concat([header, Buffer.from([9, 0, 0, 0, 1, 2, 3, 4, 5, 6]), Buffer.from([1])]), header.length);
  fails(() => prepareRun('m', sig, bad), /ends inside an element/);
});

test('answers: REST JSON with binary outputs on request; gRPC typed or raw as the request came', () => {
  const request = rest(ok, { id: 'x', outputs: [{ name: 'out', parameters: { binary_data: true } }] });
  const run = prepareRun('m', SIG, request);
  const result = { out: { dtype: 'DT_FLOAT' as const, shape: [1, 2], data: Float32Array.of(1.5, -2) } };
  const { json, binary } = writeRestResponse('m', '7', request, run, result);
  assert.deepEqual(JSON.parse(json), {
    model_name: 'm', model_version: '7', id: 'x', outputs: [{ name: 'out', datatype: 'FP32', shape: [1, 2], parameters: { binary_data_size: 8 } }],
  });
  assert.deepEqual(Buffer.concat(binary), Buffer.from(toRaw(result.out)));

  const root = loadProtoRoot(['inference/grpc_service.proto']);
  const Req = root.lookupType('inference.ModelInferRequest');
  const Res = root.lookupType('inference.ModelInferResponse');
  const sig: SignatureDef = { inputs: { f: SIG.inputs.f! }, outputs: SIG.outputs, methodName: PREDICT_METHOD };
  for (const raw of [false, true]) {
    const msg = Req.encode(Req.fromObject({
      model_name: 'm',
      inputs: [{ name: 'f', datatype: 'FP32', shape: [1, 2], ...(raw ? {} : { contents: { fp32_contents: [1, 2] } }) }],
      ...(raw ? { raw_input_contents: [Buffer.from(Float32Array.of(1, 2).buffer)] } : {}),
    })).finish();
    const req = readGrpcRequest(msg);
    const r = prepareRun('m', sig, req);
    assert.deepEqual([...(r.inputs.f!.data as Float32Array)], [1, 2]);
    const out = Res.toObject(Res.decode(writeGrpcResponse('m', '7', req, r, result)), { longs: String }) as {
      model_version: string;
      outputs: Array<{ shape: string[]; contents?: { fp32_contents: number[] } }>;
      raw_output_contents?: Uint8Array[];
    };
    assert.equal(out.model_version, '7');
    assert.deepEqual(out.outputs[0]!.shape, ['1', '2']);
    if (raw) assert.deepEqual([...new Float32Array(Uint8Array.from(out.raw_output_contents![0]!).buffer)], [1.5, -2]);
    else assert.deepEqual(out.outputs[0]!.contents!.fp32_contents, [1.5, -2]);
  }
  // Raw and typed contents do not mix; raw entries must match the inputs one to one.
  const mixed = Req.encode(Req.fromObject({ inputs: [{ name: 'f', contents: { fp32_contents: [1] } }], raw_input_contents: [Buffer.alloc(4)] })).finish();
  fails(() => readGrpcRequest(mixed), /both contents and raw_input_contents/);
  const short = Req.encode(Req.fromObject({ inputs: [{ name: 'f' }, { name: 'g' }], raw_input_contents: [Buffer.alloc(4)] })).finish();
  fails(() => readGrpcRequest(short), /expected 2 raw_input_contents entries/);
});
