/**
 * The Open Inference Protocol ("KServe v2") infer codec: REST JSON bodies (with Triton's binary tensor
 * data extension) and gRPC `inference.ModelInferRequest` messages to our `Tensor`s, checked against the
 * model's `serving_default` signature, and output tensors back to JSON (+ raw bytes) or to a
 * `ModelInferResponse`.
 *
 * Encodings of one tensor's elements (row-major, `shape`'s product of them):
 * - JSON `data`: a flat or nested list. BOOL true/false; integer types integer literals (int64 and
 *   uint64 exact, as the JSON reader keeps them); FP16/FP32/FP64 numbers; BYTES strings (UTF-8).
 * - raw (REST binary section, gRPC raw_input_contents / raw_output_contents): little-endian elements;
 *   BOOL one byte each; BYTES each element a u32 LE length and then its bytes.
 * - gRPC typed `contents`: the InferTensorContents field of the datatype (INT8..INT32 in int_contents,
 *   UINT8..UINT32 in uint_contents). FP16 has no typed field: inputs may come in fp32_contents (our
 *   extension) or raw; a response with an FP16 output puts every output in raw_output_contents.
 *
 * Messages are read and written with protobufjs's Reader/Writer directly (field numbers from
 * protos/inference/grpc_service.proto), as worker/grpc-api.ts does for TF Serving's messages.
 */
import protobuf from 'protobufjs';
import { invalidArgument } from '../../common/errors.js';
import { escapeJsonString } from '../../common/json-string.js';
import { DTYPE_OF_V2, V2_DATATYPE_OF, V2_ELEMENT_BYTES, type V2Datatype } from '../../common/v2-datatypes.js';
import { JsonDecimal, isJsonObject, jsonTypeName, parseJson, type JsonObject, type JsonValue } from './json-reader.js';
import { formatFloat32, formatFloat64 } from './json-writer.js';
import { maxTensorElements } from './predict-json.js';
import { allocate, elementCount, halfFromNumber, halfToNumber, type DType, type SignatureDef, type Tensor, type TensorData } from './tensor.js';

const WT_VARINT = 0;
const WT_BYTES = 2;

/** Where one input's elements are, before decoding. */
type Source =
  | { kind: 'json'; value: JsonValue }
  | { kind: 'raw'; bytes: Uint8Array }
  | { kind: 'contents'; contents: TypedContents }
  | { kind: 'none' };

export interface V2InputSpec {
  name: string;
  datatype: string;
  shape: number[];
  source: Source;
}

export interface V2OutputSpec {
  name: string;
  /** REST: `parameters.binary_data`; undefined = the request's default. */
  binary: boolean | undefined;
}

export interface V2Request {
  id: string | undefined;
  inputs: V2InputSpec[];
  /** undefined = every output of the signature. */
  outputs: V2OutputSpec[] | undefined;
  /** REST: request `parameters.binary_data_output`; gRPC: the request used raw_input_contents. */
  binaryByDefault: boolean;
}

/** The inputs a signature run takes, and the output aliases in answer order. */
export interface V2Run {
  inputs: Record<string, Tensor>;
  outputs: string[];
}

// ---------------------------------------------------------------------------------------------
// Checks against the signature

/** Checks the request's inputs against the signature and decodes them; `outputs` in answer order. */
export function prepareRun(model: string, signature: SignatureDef, request: V2Request): V2Run {
  const inputs: Record<string, Tensor> = Object.create(null) as Record<string, Tensor>;
  const expected = Object.keys(signature.inputs);
  for (const spec of request.inputs) {
    if (!Object.hasOwn(signature.inputs, spec.name)) {
      throw invalidArgument(`unexpected inference input '${spec.name}' for model '${model}'`);
    }
    if (Object.hasOwn(inputs, spec.name)) throw invalidArgument(`input '${spec.name}' is given more than once`);
    const info = signature.inputs[spec.name]!;
    const dtype = DTYPE_OF_V2.get(spec.datatype);
    if (dtype === undefined) throw invalidArgument(`invalid datatype '${spec.datatype}' for input '${spec.name}'`);
    if (dtype !== info.dtype) {
      throw invalidArgument(
        `inference input '${spec.name}' data-type is '${spec.datatype}', but model '${model}' expects '${V2_DATATYPE_OF[info.dtype]}'`,
      );
    }
    if (info.shape !== null && !shapeFits(spec.shape, info.shape)) {
      throw invalidArgument(
        `unexpected shape for input '${spec.name}' for model '${model}'. Expected ${shapeText(info.shape)}, got ${shapeText(spec.shape)}`,
      );
    }
    inputs[spec.name] = decodeInput(spec, dtype);
  }
  if (request.inputs.length !== expected.length) {
    throw invalidArgument(`expected ${expected.length} inputs but got ${request.inputs.length} inputs for model '${model}'`);
  }
  let outputs: string[];
  if (request.outputs === undefined || request.outputs.length === 0) {
    outputs = Object.keys(signature.outputs);
  } else {
    outputs = [];
    for (const o of request.outputs) {
      if (!Object.hasOwn(signature.outputs, o.name)) {
        throw invalidArgument(`unexpected inference output '${o.name}' for model '${model}'`);
      }
      outputs.push(o.name);
    }
  }
  return { inputs, outputs };
}

function shapeFits(shape: readonly number[], declared: readonly number[]): boolean {
  if (shape.length !== declared.length) return false;
  for (let i = 0; i < shape.length; i++) if (declared[i]! >= 0 && declared[i] !== shape[i]) return false;
  return true;
}

const shapeText = (shape: readonly number[]): string => `[${shape.join(',')}]`;

function decodeInput(spec: V2InputSpec, dtype: DType): Tensor {
  const count = elementCount(spec.shape);
  if (count > maxTensorElements()) {
    throw invalidArgument(`Input tensor has ${count} elements; the limit is ${maxTensorElements()}`);
  }
  const datatype = spec.datatype as V2Datatype;
  const src = spec.source;
  let data: TensorData;
  switch (src.kind) {
    case 'json':
      data = fromJson(spec, dtype, count, src.value);
      break;
    case 'raw':
      data = fromRaw(spec.name, datatype, dtype, spec.shape, count, src.bytes);
      break;
    case 'contents':
      data = fromContents(spec, dtype, count, src.contents);
      break;
    case 'none':
      throw invalidArgument(`input '${spec.name}' has no data`);
  }
  return { dtype, shape: spec.shape, data };
}

function countMismatch(spec: V2InputSpec, got: number, count: number): never {
  throw invalidArgument(
    `input '${spec.name}' has ${got} elements, but its shape ${shapeText(spec.shape)} holds ${count}`,
  );
}

// ---------------------------------------------------------------------------------------------
// JSON data

/** A flat or nested list's leaves in row-major order (an explicit stack: nesting depth is the client's). */
function flatten(value: JsonValue): JsonValue[] {
  if (!Array.isArray(value)) return [value];
  let flat = true;
  for (let i = 0; i < value.length; i++) {
    if (Array.isArray(value[i])) {
      flat = false;
      break;
    }
  }
  if (flat) return value;
  const out: JsonValue[] = [];
  const lists: JsonValue[][] = [value];
  const next: number[] = [0];
  while (lists.length > 0) {
    const top = lists.length - 1;
    const list = lists[top]!;
    const i = next[top]!;
    if (i === list.length) {
      lists.pop();
      next.pop();
      continue;
    }
    next[top] = i + 1;
    const v = list[i]!;
    if (Array.isArray(v)) {
      lists.push(v);
      next.push(0);
    } else {
      out.push(v);
    }
  }
  return out;
}

function badElement(spec: V2InputSpec, v: JsonValue, what: string): never {
  throw invalidArgument(`unable to parse 'data' of input '${spec.name}': expected ${what} for ${spec.datatype}, got ${jsonTypeName(v)}`);
}

const INT_RANGE: Partial<Record<DType, [number, number]>> = {
  DT_INT8: [-128, 127],
  DT_INT16: [-32768, 32767],
  DT_INT32: [-2147483648, 2147483647],
  DT_UINT8: [0, 255],
  DT_UINT16: [0, 65535],
  DT_UINT32: [0, 4294967295],
};

function fromJson(spec: V2InputSpec, dtype: DType, count: number, value: JsonValue): TensorData {
  const leaves = flatten(value);
  if (leaves.length !== count) countMismatch(spec, leaves.length, count);
  const data = allocate(dtype, count);
  switch (dtype) {
    case 'DT_BOOL': {
      const d = data as Uint8Array;
      for (let i = 0; i < count; i++) {
        const v = leaves[i]!;
        if (typeof v !== 'boolean') badElement(spec, v, 'true or false');
        d[i] = v ? 1 : 0;
      }
      return d;
    }
    case 'DT_STRING': {
      const d = data as Uint8Array[];
      for (let i = 0; i < count; i++) {
        const v = leaves[i]!;
        if (typeof v !== 'string') badElement(spec, v, 'a string');
        d[i] = Buffer.from(v, 'utf8');
      }
      return d;
    }
    case 'DT_INT64':
    case 'DT_UINT64': {
      const d = data as BigInt64Array | BigUint64Array;
      const min = dtype === 'DT_INT64' ? -(2n ** 63n) : 0n;
      const max = dtype === 'DT_INT64' ? 2n ** 63n - 1n : 2n ** 64n - 1n;
      for (let i = 0; i < count; i++) {
        const v = leaves[i]!;
        let b: bigint;
        if (typeof v === 'bigint') b = v;
        else if (typeof v === 'number' && Number.isInteger(v)) b = BigInt(v);
        else badElement(spec, v, 'an integer');
        if (b < min || b > max) throw invalidArgument(`value ${b} of input '${spec.name}' is out of range for ${spec.datatype}`);
        d[i] = b;
      }
      return d;
    }
    case 'DT_FLOAT':
    case 'DT_DOUBLE':
    case 'DT_HALF': {
      const d = data as Float32Array | Float64Array | Uint16Array;
      const half = dtype === 'DT_HALF';
      for (let i = 0; i < count; i++) {
        const v = leaves[i]!;
        let n: number;
        if (typeof v === 'number') n = v;
        else if (typeof v === 'bigint') n = Number(v);
        else if (v instanceof JsonDecimal) n = v.value;
        else badElement(spec, v, 'a number');
        d[i] = half ? halfFromNumber(n) : n;
      }
      return d;
    }
    default: {
      const d = data as Int8Array | Int16Array | Int32Array | Uint8Array | Uint16Array | Uint32Array;
      const [min, max] = INT_RANGE[dtype]!;
      for (let i = 0; i < count; i++) {
        const v = leaves[i]!;
        if (typeof v === 'bigint') throw invalidArgument(`value ${v} of input '${spec.name}' is out of range for ${spec.datatype}`);
        if (typeof v !== 'number' || !Number.isInteger(v)) badElement(spec, v, 'an integer');
        if (v < min || v > max) throw invalidArgument(`value ${v} of input '${spec.name}' is out of range for ${spec.datatype}`);
        d[i] = v;
      }
      return d;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Raw bytes

function fromRaw(name: string, datatype: V2Datatype, dtype: DType, shape: number[], count: number, bytes: Uint8Array): TensorData {
  if (datatype === 'BYTES') {
    const out: Uint8Array[] = [];
    const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let pos = 0;
    while (pos < view.length) {
      if (pos + 4 > view.length) throw invalidArgument(`raw data of input '${name}' ends inside an element's length`);
      const n = view.readUInt32LE(pos);
      pos += 4;
      if (pos + n > view.length) throw invalidArgument(`raw data of input '${name}' ends inside an element`);
      if (out.length === count) break;
      out.push(Uint8Array.prototype.slice.call(view, pos, pos + n));
      pos += n;
    }
    if (out.length !== count || pos !== view.length) {
      throw invalidArgument(
        `input '${name}' has ${out.length === count ? 'more than ' : ''}${out.length} BYTES elements in its raw data, but its shape ${shapeText(shape)} holds ${count}`,
      );
    }
    return out;
  }
  const size = V2_ELEMENT_BYTES[datatype];
  if (bytes.length !== count * size) {
    throw invalidArgument(
      `input '${name}' has ${bytes.length} bytes of raw data, but its shape ${shapeText(shape)} of ${datatype} needs ${count * size}`,
    );
  }
  const data = allocate(dtype, count) as Exclude<TensorData, Uint8Array[]>;
  new Uint8Array(data.buffer, data.byteOffset, data.byteLength).set(bytes);
  if (dtype === 'DT_BOOL') {
    const d = data as Uint8Array;
    for (let i = 0; i < count; i++) if (d[i] !== 0) d[i] = 1;
  }
  return data;
}

/** A tensor's elements in the raw encoding. */
export function toRaw(t: Tensor): Uint8Array {
  const data = t.data;
  if (Array.isArray(data)) {
    let total = 0;
    for (const e of data) total += 4 + e.length;
    const out = Buffer.allocUnsafe(total);
    let pos = 0;
    for (const e of data) {
      out.writeUInt32LE(e.length, pos);
      out.set(e, pos + 4);
      pos += 4 + e.length;
    }
    return out;
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

// ---------------------------------------------------------------------------------------------
// REST: JSON (+ binary section) in

function fieldError(message: string): never {
  throw invalidArgument(message);
}

function readShape(v: JsonValue | undefined, what: string): number[] {
  if (!Array.isArray(v)) fieldError(`${what} must have a 'shape' list`);
  const shape: number[] = [];
  for (const d of v) {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) fieldError(`'shape' of ${what} must be a list of non-negative integers`);
    shape.push(d);
  }
  return shape;
}

function readParameters(v: JsonValue | undefined, what: string): JsonObject | undefined {
  if (v === undefined) return undefined;
  if (!isJsonObject(v)) fieldError(`'parameters' of ${what} must be an object`);
  return v;
}

/**
 * Reads a REST infer request. `headerLength` is the client's `Inference-Header-Content-Length`
 * (undefined: the whole body is JSON); bytes after it are the inputs' binary data, in input order.
 */
export function readRestRequest(body: Buffer, headerLength: number | undefined): V2Request {
  if (headerLength !== undefined && headerLength > body.length) {
    fieldError(`Inference-Header-Content-Length ${headerLength} is larger than the body (${body.length} bytes)`);
  }
  const doc = parseJson(headerLength === undefined ? body : body.subarray(0, headerLength));
  if (!isJsonObject(doc)) fieldError('the infer request must be a JSON object');
  const id = doc.id;
  if (id !== undefined && typeof id !== 'string') fieldError("'id' must be a string");
  const params = readParameters(doc.parameters, 'the request');
  const rawInputs = doc.inputs;
  if (!Array.isArray(rawInputs)) fieldError("the infer request must have an 'inputs' list");
  let offset = headerLength ?? body.length;
  const inputs: V2InputSpec[] = [];
  for (const entry of rawInputs) {
    if (!isJsonObject(entry)) fieldError("each of 'inputs' must be an object");
    const name = entry.name;
    if (typeof name !== 'string') fieldError("each input must have a string 'name'");
    const what = `input '${name}'`;
    const datatype = entry.datatype;
    if (typeof datatype !== 'string') fieldError(`${what} must have a string 'datatype'`);
    const shape = readShape(entry.shape, what);
    const p = readParameters(entry.parameters, what);
    const binarySize = p?.binary_data_size;
    let source: Source;
    if (binarySize !== undefined) {
      if (typeof binarySize !== 'number' || !Number.isInteger(binarySize) || binarySize < 0) {
        fieldError(`'binary_data_size' of ${what} must be a non-negative integer`);
      }
      if (headerLength === undefined) fieldError(`${what} has 'binary_data_size' but the request has no Inference-Header-Content-Length`);
      if (entry.data !== undefined) fieldError(`${what} has both 'data' and 'binary_data_size'`);
      if (offset + binarySize > body.length) fieldError(`${what} has 'binary_data_size' ${binarySize}, past the end of the body`);
      source = { kind: 'raw', bytes: body.subarray(offset, offset + binarySize) };
      offset += binarySize;
    } else if (entry.data !== undefined) {
      source = { kind: 'json', value: entry.data };
    } else {
      fieldError(`${what} has neither 'data' nor 'binary_data_size'`);
    }
    inputs.push({ name, datatype, shape, source });
  }
  if (offset !== body.length) fieldError(`the body has ${body.length - offset} bytes of binary data that no input claims`);
  let outputs: V2OutputSpec[] | undefined;
  if (doc.outputs !== undefined) {
    if (!Array.isArray(doc.outputs)) fieldError("'outputs' must be a list");
    outputs = doc.outputs.map((o) => {
      if (!isJsonObject(o) || typeof o.name !== 'string') fieldError("each of 'outputs' must be an object with a string 'name'");
      const op = readParameters(o.parameters, `output '${o.name}'`);
      const binary = op?.binary_data;
      if (binary !== undefined && typeof binary !== 'boolean') fieldError(`'binary_data' of output '${o.name}' must be true or false`);
      return { name: o.name, binary };
    });
  }
  const byDefault = params?.binary_data_output;
  if (byDefault !== undefined && typeof byDefault !== 'boolean') fieldError("'binary_data_output' must be true or false");
  return { id, inputs, outputs, binaryByDefault: byDefault === true };
}

// ---------------------------------------------------------------------------------------------
// REST: JSON (+ binary section) out

function jsonData(t: Tensor): string {
  const data = t.data;
  const n = data.length;
  const parts = new Array<string>(n);
  switch (t.dtype) {
    case 'DT_BOOL':
      for (let i = 0; i < n; i++) parts[i] = (data as Uint8Array)[i] ? 'true' : 'false';
      break;
    case 'DT_STRING':
      for (let i = 0; i < n; i++) parts[i] = escapeJsonString(Buffer.from((data as Uint8Array[])[i]!).toString('utf8'));
      break;
    case 'DT_FLOAT':
      for (let i = 0; i < n; i++) parts[i] = formatFloat32((data as Float32Array)[i]!);
      break;
    case 'DT_DOUBLE':
      for (let i = 0; i < n; i++) parts[i] = formatFloat64((data as Float64Array)[i]!);
      break;
    case 'DT_HALF':
      for (let i = 0; i < n; i++) parts[i] = formatFloat32(halfToNumber((data as Uint16Array)[i]!));
      break;
    default:
      for (let i = 0; i < n; i++) parts[i] = String((data as Int32Array)[i]);
  }
  return `[${parts.join(',')}]`;
}

/**
 * The REST answer: the JSON document, and the binary section (outputs asked for with `binary_data`,
 * in output order), empty when none was.
 */
export function writeRestResponse(model: string, version: string, request: V2Request, run: V2Run, result: Record<string, Tensor>): { json: string; binary: Uint8Array[] } {
  const binaryByName = new Map<string, boolean | undefined>();
  for (const o of request.outputs ?? []) binaryByName.set(o.name, o.binary);
  let json = `{"model_name":${escapeJsonString(model)},"model_version":${escapeJsonString(version)}`;
  if (request.id !== undefined) json += `,"id":${escapeJsonString(request.id)}`;
  json += ',"outputs":[';
  const binary: Uint8Array[] = [];
  run.outputs.forEach((alias, i) => {
    const t = result[alias];
    if (!t) throw invalidArgument(`the model did not produce output '${alias}'`);
    if (i > 0) json += ',';
    json += `{"name":${escapeJsonString(alias)},"datatype":"${V2_DATATYPE_OF[t.dtype]}","shape":[${t.shape.join(',')}]`;
    if (binaryByName.get(alias) ?? request.binaryByDefault) {
      const raw = toRaw(t);
      binary.push(raw);
      json += `,"parameters":{"binary_data_size":${raw.length}}}`;
    } else {
      json += `,"data":${jsonData(t)}}`;
    }
  });
  json += ']}';
  return { json, binary };
}

// ---------------------------------------------------------------------------------------------
// gRPC: ModelInferRequest in

/** InferTensorContents as read, one list per field present. */
interface TypedContents {
  bools: boolean[];
  ints: number[];
  int64s: bigint[];
  uints: number[];
  uint64s: bigint[];
  fp32s: number[];
  fp64s: number[];
  bytes: Uint8Array[];
}

type Long = { toString(): string; toNumber(): number };
const longToNumber = (v: number | Long): number => (typeof v === 'number' ? v : v.toNumber());
const longToBigInt = (v: number | Long): bigint => BigInt(typeof v === 'number' ? v : v.toString());

/** Calls `read` once per element of a repeated scalar field, packed or not. */
function repeated(r: protobuf.Reader, wireType: number, read: () => void): void {
  if (wireType === WT_BYTES) {
    const end = r.uint32() + r.pos;
    while (r.pos < end) read();
  } else {
    read();
  }
}

function readContents(bytes: Uint8Array): TypedContents {
  const c: TypedContents = { bools: [], ints: [], int64s: [], uints: [], uint64s: [], fp32s: [], fp64s: [], bytes: [] };
  const r = protobuf.Reader.create(bytes);
  while (r.pos < r.len) {
    const tag = r.uint32();
    const wt = tag & 7;
    switch (tag >>> 3) {
      case 1: repeated(r, wt, () => c.bools.push(r.bool())); break;
      case 2: repeated(r, wt, () => c.ints.push(r.int32())); break;
      case 3: repeated(r, wt, () => c.int64s.push(longToBigInt(r.int64() as unknown as number | Long))); break;
      case 4: repeated(r, wt, () => c.uints.push(r.uint32())); break;
      case 5: repeated(r, wt, () => c.uint64s.push(longToBigInt(r.uint64() as unknown as number | Long))); break;
      case 6: repeated(r, wt, () => c.fp32s.push(r.float())); break;
      case 7: repeated(r, wt, () => c.fp64s.push(r.double())); break;
      case 8:
        if (wt !== WT_BYTES) r.skipType(wt);
        else c.bytes.push(r.bytes());
        break;
      default:
        r.skipType(wt);
    }
  }
  return c;
}

function fromContents(spec: V2InputSpec, dtype: DType, count: number, c: TypedContents): TensorData {
  let values: ArrayLike<number | bigint | boolean | Uint8Array>;
  switch (dtype) {
    case 'DT_BOOL': values = c.bools; break;
    case 'DT_INT8': case 'DT_INT16': case 'DT_INT32': values = c.ints; break;
    case 'DT_INT64': values = c.int64s; break;
    case 'DT_UINT8': case 'DT_UINT16': case 'DT_UINT32': values = c.uints; break;
    case 'DT_UINT64': values = c.uint64s; break;
    case 'DT_FLOAT': values = c.fp32s; break;
    case 'DT_DOUBLE': values = c.fp64s; break;
    case 'DT_STRING': values = c.bytes; break;
    case 'DT_HALF': {
      // FP16 has no typed field; we take fp32_contents (an extension), or raw_input_contents.
      if (c.fp32s.length !== count) countMismatch(spec, c.fp32s.length, count);
      const d = new Uint16Array(count);
      for (let i = 0; i < count; i++) d[i] = halfFromNumber(c.fp32s[i]!);
      return d;
    }
  }
  if (values.length !== count) countMismatch(spec, values.length, count);
  if (dtype === 'DT_STRING') return Array.from(values as Uint8Array[]);
  const data = allocate(dtype, count) as Exclude<TensorData, Uint8Array[]>;
  const range = INT_RANGE[dtype];
  for (let i = 0; i < count; i++) {
    const v = values[i] as number | bigint | boolean;
    if (range && ((v as number) < range[0] || (v as number) > range[1])) {
      throw invalidArgument(`value ${String(v)} of input '${spec.name}' is out of range for ${spec.datatype}`);
    }
    (data as unknown as Array<number | bigint>)[i] = typeof v === 'boolean' ? (v ? 1 : 0) : v;
  }
  return data;
}

/** A ModelInferRequest. Inputs come with typed contents, or every one of them in raw_input_contents. */
export function readGrpcRequest(body: Uint8Array): V2Request {
  const r = protobuf.Reader.create(body);
  let id: string | undefined;
  const inputs: V2InputSpec[] = [];
  const contents: Array<TypedContents | undefined> = [];
  const outputs: V2OutputSpec[] = [];
  const raw: Uint8Array[] = [];
  while (r.pos < r.len) {
    const tag = r.uint32();
    switch (tag) {
      case (3 << 3) | WT_BYTES:
        id = r.string();
        break;
      case (5 << 3) | WT_BYTES: {
        const t = protobuf.Reader.create(r.bytes());
        const spec: V2InputSpec = { name: '', datatype: '', shape: [], source: { kind: 'none' } };
        let typed: TypedContents | undefined;
        while (t.pos < t.len) {
          const ttag = t.uint32();
          switch (ttag >>> 3) {
            case 1: spec.name = t.string(); break;
            case 2: spec.datatype = t.string(); break;
            case 3: repeated(t, ttag & 7, () => spec.shape.push(longToNumber(t.int64() as unknown as number | Long))); break;
            case 5: typed = readContents(t.bytes()); break;
            default: t.skipType(ttag & 7);
          }
        }
        inputs.push(spec);
        contents.push(typed);
        break;
      }
      case (6 << 3) | WT_BYTES: {
        const t = protobuf.Reader.create(r.bytes());
        let name = '';
        while (t.pos < t.len) {
          const ttag = t.uint32();
          if (ttag === ((1 << 3) | WT_BYTES)) name = t.string();
          else t.skipType(ttag & 7);
        }
        outputs.push({ name, binary: undefined });
        break;
      }
      case (7 << 3) | WT_BYTES:
        raw.push(r.bytes());
        break;
      default:
        r.skipType(tag & 7);
    }
  }
  for (const spec of inputs) {
    for (const d of spec.shape) {
      if (!Number.isSafeInteger(d) || d < 0) fieldError(`'shape' of input '${spec.name}' must hold non-negative dimensions`);
    }
  }
  if (raw.length > 0) {
    if (raw.length !== inputs.length) {
      fieldError(`expected ${inputs.length} raw_input_contents entries, one per input, but got ${raw.length}`);
    }
    inputs.forEach((spec, i) => {
      if (contents[i] !== undefined) fieldError(`input '${spec.name}' has both contents and raw_input_contents`);
      spec.source = { kind: 'raw', bytes: raw[i]! };
    });
  } else {
    inputs.forEach((spec, i) => {
      const c = contents[i];
      if (c) spec.source = { kind: 'contents', contents: c };
    });
  }
  return { id, inputs, outputs, binaryByDefault: raw.length > 0 };
}

// ---------------------------------------------------------------------------------------------
// gRPC: ModelInferResponse out

function writeContents(w: protobuf.Writer, t: Tensor): void {
  const data = t.data;
  const n = data.length;
  w.uint32((5 << 3) | WT_BYTES).fork();
  if (t.dtype === 'DT_STRING') {
    for (const e of data as Uint8Array[]) w.uint32((8 << 3) | WT_BYTES).bytes(e);
    w.ldelim();
    return;
  }
  const packed = (field: number, write: (i: number) => void) => {
    if (n === 0) return;
    w.uint32((field << 3) | WT_BYTES).fork();
    for (let i = 0; i < n; i++) write(i);
    w.ldelim();
  };
  switch (t.dtype) {
    case 'DT_BOOL': packed(1, (i) => w.bool((data as Uint8Array)[i] !== 0)); break;
    case 'DT_INT8': case 'DT_INT16': case 'DT_INT32': packed(2, (i) => w.int32((data as Int32Array)[i]!)); break;
    case 'DT_INT64': packed(3, (i) => w.int64((data as BigInt64Array)[i]!.toString())); break;
    case 'DT_UINT8': case 'DT_UINT16': case 'DT_UINT32': packed(4, (i) => w.uint32((data as Uint32Array)[i]!)); break;
    case 'DT_UINT64': packed(5, (i) => w.uint64((data as BigUint64Array)[i]!.toString())); break;
    case 'DT_FLOAT': packed(6, (i) => w.float((data as Float32Array)[i]!)); break;
    case 'DT_DOUBLE': packed(7, (i) => w.double((data as Float64Array)[i]!)); break;
    default: break;
  }
  w.ldelim();
}

/**
 * The ModelInferResponse: outputs in raw_output_contents when the request sent raw inputs (tritonclient's
 * way) or any output is FP16 (which has no typed field), else in typed contents.
 */
export function writeGrpcResponse(model: string, version: string, request: V2Request, run: V2Run, result: Record<string, Tensor>): Uint8Array {
  const tensors = run.outputs.map((alias) => {
    const t = result[alias];
    if (!t) throw invalidArgument(`the model did not produce output '${alias}'`);
    return t;
  });
  const raw = request.binaryByDefault || tensors.some((t) => t.dtype === 'DT_HALF');
  const w = protobuf.Writer.create();
  w.uint32((1 << 3) | WT_BYTES).string(model);
  w.uint32((2 << 3) | WT_BYTES).string(version);
  if (request.id) w.uint32((3 << 3) | WT_BYTES).string(request.id);
  tensors.forEach((t, i) => {
    w.uint32((5 << 3) | WT_BYTES).fork();
    w.uint32((1 << 3) | WT_BYTES).string(run.outputs[i]!);
    w.uint32((2 << 3) | WT_BYTES).string(V2_DATATYPE_OF[t.dtype]);
    if (t.shape.length > 0) {
      w.uint32((3 << 3) | WT_BYTES).fork();
      for (const d of t.shape) w.int64(d);
      w.ldelim();
    }
    if (!raw) writeContents(w, t);
    w.ldelim();
  });
  if (raw) for (const t of tensors) w.uint32((6 << 3) | WT_BYTES).bytes(toRaw(t));
  return w.finish();
}
