/**
 * TF Serving's predict JSON contract (`json_tensor.cc` FillPredictRequestFromJson / MakeJsonFromTensors):
 * request bodies in row ("instances") or columnar ("inputs") format to tensors, and output tensors back
 * to `{"predictions": ...}` / `{"outputs": ...}` bytes. Error messages are TF Serving's, word for word.
 *
 * Two deliberate extensions: DT_HALF inputs and outputs are converted (TF answers UNIMPLEMENTED /
 * "Failed to write JSON value"), and decoded inputs are checked against the signature's static shape
 * (TF leaves that to the graph).
 */
import { ServingError, codeName, invalidArgument, internal } from '../../common/errors.js';
import {
  JsonDecimal,
  isJsonObject,
  jsonTypeName,
  parseJson,
  type JsonObject,
  type JsonValue,
} from './json-reader.js';
import {
  PrettyJsonWriter,
  base64Encode,
  bytesToText,
  formatFloat32,
  formatFloat64,
  jsonDebugString,
} from './json-writer.js';
import {
  allocate,
  dtypeString,
  elementCount,
  halfFromNumber,
  halfToNumber,
  type DType,
  type SignatureDef,
  type Tensor,
  type TensorData,
} from './tensor.js';

export type PredictFormat = 'row' | 'columnar';

export interface PredictBody {
  doc: JsonObject;
  signatureName: string | undefined;
}

export interface PredictInputs {
  format: PredictFormat;
  inputs: Record<string, Tensor>;
}

// ---- Request: document level ----

/** Parses a request body whose top level must be an object (TF's ParseJson). */
export function parseRequestObject(body: Buffer | Uint8Array | string): JsonObject {
  const doc = parseJson(body);
  if (!isJsonObject(doc)) throw invalidArgument(`JSON Value: ${jsonDebugString(doc)} Is not object`);
  return doc;
}

/** The optional `signature_name`, which must be a string (TF's FillSignature). */
export function readSignatureName(doc: JsonObject): string | undefined {
  const name = doc.signature_name;
  if (name === undefined) return undefined;
  if (typeof name !== 'string') {
    throw invalidArgument(
      `JSON Value: ${jsonDebugString(doc)} not formatted correctly. 'signature_name' key must be a string value.`,
    );
  }
  return name;
}

/** Steps 1–4 of TF's predict processing: parse, require an object, read `signature_name`. */
export function parsePredictBody(body: Buffer | Uint8Array | string): PredictBody {
  const doc = parseRequestObject(body);
  return { doc, signatureName: readSignatureName(doc) };
}

function formatError(doc: JsonValue, message: string): ServingError {
  return invalidArgument(`JSON Value: ${jsonDebugString(doc)} ${message}`);
}

/** Input or output names in std::map / std::set order (bytewise). */
function sortedNames(names: Iterable<string>): string[] {
  return [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/**
 * Turns the `instances` or `inputs` of a parsed predict body into tensors with the signature's dtypes
 * (TF's steps 6 onward). The caller has already looked the signature up.
 */
export function decodePredictInputs(doc: JsonObject, signature: SignatureDef): PredictInputs {
  const names = sortedNames(Object.keys(signature.inputs));
  if (names.length === 0) {
    const name = typeof doc.signature_name === 'string' ? doc.signature_name : '';
    throw invalidArgument(`Failed to get input map for signature: ${name === '' ? 'DEFAULT' : name}`);
  }
  const instances = doc.instances;
  const columns = doc.inputs;
  let result: PredictInputs;
  if (instances !== undefined) {
    if (columns !== undefined) {
      throw formatError(doc, "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist ");
    }
    if (!Array.isArray(instances)) throw formatError(doc, "Expecting 'instances' to be an list/array");
    if (instances.length === 0) throw formatError(doc, "No values in 'instances' array");
    result = { format: 'row', inputs: decodeInstances(instances, signature, names) };
  } else if (columns !== undefined) {
    result = { format: 'columnar', inputs: decodeColumns(columns, signature, names) };
  } else {
    throw invalidArgument("Missing 'inputs' or 'instances' key");
  }
  // Shapes are the model's to check (onnxruntime and the interpreter both do), as in TF Serving:
  // a signature's declared shape does not stop `[1.0, 2.0]` reaching half_plus_two's `x:0`.
  return result;
}

// ---- Request: row format ----

/** `{"b64": "<string>"}` with exactly that one member (TF's IsValBase64Object). */
export function isBase64Object(v: JsonValue | undefined): v is JsonObject {
  if (!isJsonObject(v) || typeof v.b64 !== 'string') return false;
  let members = 0;
  for (const _ in v) members++;
  return members === 1;
}

/** An instances element that names its inputs: an object that is not a b64 value. */
function isElementObject(v: JsonValue): v is JsonObject {
  return isJsonObject(v) && !isBase64Object(v);
}

/** The rows of one input, batched into one buffer sized from the first row. */
interface RowBatch {
  dtype: DType;
  rowShape: number[];
  rowSize: number;
  data: TensorData;
}

function decodeInstances(instances: JsonValue[], signature: SignatureDef, names: string[]): Record<string, Tensor> {
  const first = instances[0];
  if (!isJsonObject(first) && names.length > 1) {
    throw invalidArgument(
      'instances is a plain list, but expecting list of objects as multiple input tensors required as per tensorinfo_map',
    );
  }
  const namedRows = isElementObject(first);
  const batchSize = instances.length;
  const batches = new Map<string, RowBatch>();

  for (let i = 0; i < batchSize; i++) {
    const element = instances[i];
    if (namedRows) {
      if (!isElementObject(element)) throw invalidArgument(`Expecting object but got list at item ${i} of input list`);
      let keyCount = 0;
      let allKnown = true;
      for (const key in element) {
        keyCount++;
        try {
          addRow(element[key], key, signature, batches, i, batchSize);
        } catch (e) {
          throw wrapElementError(`Failed to process element: ${i} key: ${key} of 'instances' list. Error: `, e);
        }
        if (!Object.hasOwn(signature.inputs, key)) allKnown = false;
      }
      if (keyCount !== names.length || !allKnown) {
        throw invalidArgument(
          `Failed to process element: ${i} of 'instances' list. JSON object: ${jsonDebugString(element)} ` +
            `keys must be equal to: ${names.join(',')}`,
        );
      }
    } else {
      if (isElementObject(element)) {
        throw invalidArgument(`Expecting value/list but got object at item ${i} of input list`);
      }
      try {
        addRow(element, names[0], signature, batches, i, batchSize);
      } catch (e) {
        throw wrapElementError(`Failed to process element: ${i} of 'instances' list. Error: `, e);
      }
    }
  }

  const tensors: Record<string, Tensor> = {};
  for (const [name, batch] of batches) {
    tensors[name] = { dtype: batch.dtype, shape: [batchSize, ...batch.rowShape], data: batch.data };
  }
  return tensors;
}

/** TF nests the inner status as `<CODE>: <message>` (absl::Status::ToString). */
function wrapElementError(prefix: string, e: unknown): ServingError {
  if (!(e instanceof ServingError)) throw e;
  return invalidArgument(`${prefix}${codeName(e.code)}: ${e.message}`);
}

/** One instance's value for one input (TF's AddInstanceItem). */
function addRow(
  item: JsonValue,
  name: string,
  signature: SignatureDef,
  batches: Map<string, RowBatch>,
  row: number,
  batchSize: number,
): void {
  if (!Object.hasOwn(signature.inputs, name)) {
    throw invalidArgument(`JSON object: does not have named input: ${name}`);
  }
  const dtype = signature.inputs[name].dtype;
  const shape = denseShape(item);
  const batch = batches.get(name);
  if (batch === undefined) {
    const rowSize = elementCount(shape);
    const data = allocateFor(item, shape, dtype, rowSize * batchSize);
    fillTensor(item, shape, dtype, data, 0);
    batches.set(name, { dtype, rowShape: shape, rowSize, data });
    return;
  }
  if (sameShape(shape, batch.rowShape)) {
    fillTensor(item, shape, dtype, batch.data, row * batch.rowSize);
    return;
  }
  // TF converts the row before comparing, so its conversion errors come first.
  const count = fillTensor(item, shape, dtype, allocateFor(item, shape, dtype, elementCount(shape)), 0);
  if (count !== batch.rowSize) throw invalidArgument(`Expecting tensor size: ${batch.rowSize} but got: ${count}`);
  throw invalidArgument(`Expecting shape ${shapeToString(batch.rowShape)} but got: ${shapeToString(shape)}`);
}

// ---- Request: columnar format ----

function decodeColumns(columns: JsonValue, signature: SignatureDef, names: string[]): Record<string, Tensor> {
  const tensors: Record<string, Tensor> = {};
  if (!isJsonObject(columns) || isBase64Object(columns)) {
    if (names.length > 1) {
      throw invalidArgument(
        'inputs is a plain value/list, but expecting an object as multiple input tensors required as per tensorinfo_map',
      );
    }
    tensors[names[0]] = decodeTensor(columns, signature.inputs[names[0]].dtype);
    return tensors;
  }
  for (const name of names) {
    const value = columns[name];
    if (value === undefined) throw invalidArgument(`Missing named input: ${name} in 'inputs' object.`);
    tensors[name] = decodeTensor(value, signature.inputs[name].dtype);
  }
  return tensors;
}

/** A JSON value (scalar or nested lists) as one tensor of `dtype`. */
export function decodeTensor(value: JsonValue, dtype: DType): Tensor {
  const shape = denseShape(value);
  const data = allocateFor(value, shape, dtype, elementCount(shape));
  fillTensor(value, shape, dtype, data, 0);
  return { dtype, shape, data };
}

// ---- Shapes ----

/**
 * TF's TensorShape::MaxDimensions(). Deeper JSON lists would make a tensor TF cannot hold (and the
 * answer's writer recurses once per dimension: 20,000 levels overflowed the stack, a 500).
 */
export const MAX_TENSOR_DIMS = 254;

/** TF's GetDenseTensorShape: the length of element [0] at each nesting level. */
function denseShape(value: JsonValue): number[] {
  const shape: number[] = [];
  let v = value;
  while (Array.isArray(v)) {
    if (shape.length === MAX_TENSOR_DIMS) {
      throw invalidArgument(`Input tensor has more than ${MAX_TENSOR_DIMS} dimensions (nested lists)`);
    }
    shape.push(v.length);
    if (v.length === 0) break;
    v = v[0];
  }
  return shape;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** TF's ShapeToString: `[a,b]`; `[?]` for an unknown rank. */
export function shapeToString(shape: readonly number[] | null): string {
  return shape === null ? '[?]' : `[${shape.join(',')}]`;
}

/**
 * The element count comes from following element [0], so ragged input can claim far more elements than
 * the document holds. Above a size where that matters, check the list structure before allocating; if
 * it is ragged, the fill is run into an empty buffer to raise TF's error in TF's order.
 */
const STRUCTURE_CHECK_THRESHOLD = 1 << 16;

const tensorLimits = { maxElements: 256 * 1024 * 1024, maxB64Bytes: 64 * 1024 * 1024 };

/**
 * Caps the elements of one decoded input tensor (--max_tensor_elements) and the decoded bytes of one
 * `{"b64": ...}` value (--max_b64_bytes).
 */
export function setTensorLimits(next: { maxElements?: number; maxB64Bytes?: number }): void {
  if (next.maxElements !== undefined) tensorLimits.maxElements = next.maxElements;
  if (next.maxB64Bytes !== undefined) tensorLimits.maxB64Bytes = next.maxB64Bytes;
}

/** The --max_tensor_elements cap on one decoded input tensor (also applied to v2 inputs). */
export function maxTensorElements(): number {
  return tensorLimits.maxElements;
}

function allocateFor(value: JsonValue, shape: number[], dtype: DType, count: number): TensorData {
  if (count > tensorLimits.maxElements) {
    throw invalidArgument(`Input tensor has ${count} elements; the limit is ${tensorLimits.maxElements}`);
  }
  if (count > STRUCTURE_CHECK_THRESHOLD && !isDense(value, shape)) {
    fillTensor(value, shape, dtype, dtype === 'DT_STRING' ? [] : allocate(dtype, 0), 0);
    throw internal('ragged JSON list passed the structure check'); // fillTensor throws first
  }
  return allocate(dtype, count);
}

function isDense(value: JsonValue, shape: number[]): boolean {
  const rank = shape.length;
  if (!Array.isArray(value)) return rank === 0;
  const lists: JsonValue[][] = [value];
  const next: number[] = [0];
  let depth = 0;
  while (depth >= 0) {
    const list = lists[depth];
    if (depth === rank - 1) {
      for (let i = 0; i < list.length; i++) if (Array.isArray(list[i])) return false;
      depth--;
      continue;
    }
    const i = next[depth];
    if (i === list.length) {
      depth--;
      continue;
    }
    next[depth] = i + 1;
    const child = list[i];
    if (!Array.isArray(child) || child.length !== shape[depth + 1]) return false;
    depth++;
    lists[depth] = child;
    next[depth] = 0;
  }
  return true;
}

// ---- Values ----

type LeafWriter = (v: JsonValue, data: TensorData, k: number) => void;

function typeError(v: JsonValue, dtype: DType): ServingError {
  return invalidArgument(
    `JSON Value: ${jsonDebugString(v)} Type: ${jsonTypeName(v)} is not of expected type: ${dtypeString[dtype]}`,
  );
}

/** rapidjson's GetDouble for a number value, or undefined for non-numbers. */
function numberOf(v: JsonValue): number | undefined {
  if (typeof v === 'number') return v;
  if (v instanceof JsonDecimal) return v.value;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const textEncoder = new TextEncoder();

/**
 * Integer ranges of the dtypes stored through int_val. TF Serving accepts any int32 literal and lets
 * narrower types wrap silently (300 becomes 44 in a uint8); we reject a value outside the dtype's
 * range with the type error instead. (TF's JSON table has no DT_UINT16; here it is read like DT_UINT8.)
 */
const INT_RANGE: Partial<Record<DType, readonly [number, number]>> = {
  DT_INT8: [-128, 127],
  DT_INT16: [-32768, 32767],
  DT_INT32: [-2147483648, 2147483647],
  DT_UINT8: [0, 255],
  DT_UINT16: [0, 65535],
};

/** TF's AddValueToTensor (plus b64 objects for DT_STRING, and float16), one writer per dtype. */
const leafWriters: Record<DType, LeafWriter> = {
  DT_FLOAT: floatLeaf('DT_FLOAT'),
  DT_DOUBLE: floatLeaf('DT_DOUBLE'),
  DT_HALF: (v, data, k) => {
    const d = numberOf(v);
    if (d === undefined) throw typeError(v, 'DT_HALF');
    (data as Uint16Array)[k] = halfFromNumber(d);
  },
  DT_INT8: int32Leaf('DT_INT8'),
  DT_INT16: int32Leaf('DT_INT16'),
  DT_INT32: int32Leaf('DT_INT32'),
  DT_UINT8: int32Leaf('DT_UINT8'),
  DT_UINT16: int32Leaf('DT_UINT16'),
  DT_UINT32: (v, data, k) => {
    if (typeof v !== 'number' || v >>> 0 !== v) throw typeError(v, 'DT_UINT32');
    (data as Uint32Array)[k] = v;
  },
  DT_INT64: (v, data, k) => {
    if (typeof v === 'number' && Number.isInteger(v)) (data as BigInt64Array)[k] = BigInt(v);
    else if (typeof v === 'bigint' && v >= INT64_MIN && v <= INT64_MAX) (data as BigInt64Array)[k] = v;
    else throw typeError(v, 'DT_INT64');
  },
  DT_UINT64: (v, data, k) => {
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0) (data as BigUint64Array)[k] = BigInt(v);
    else if (typeof v === 'bigint' && v >= 0n) (data as BigUint64Array)[k] = v;
    else throw typeError(v, 'DT_UINT64');
  },
  DT_BOOL: (v, data, k) => {
    if (typeof v !== 'boolean') throw typeError(v, 'DT_BOOL');
    (data as Uint8Array)[k] = v ? 1 : 0;
  },
  DT_STRING: (v, data, k) => {
    if (typeof v === 'string') (data as Uint8Array[])[k] = textEncoder.encode(v);
    else if (isJsonObject(v)) (data as Uint8Array[])[k] = decodeBase64Object(v);
    else throw typeError(v, 'DT_STRING');
  },
};

function floatLeaf(dtype: DType): LeafWriter {
  return (v, data, k) => {
    const d = numberOf(v);
    if (d === undefined) throw typeError(v, dtype);
    (data as Float32Array | Float64Array)[k] = d; // a Float32Array store rounds like TF's GetFloat
  };
}

/** rapidjson IsInt() (an integer literal, no decimal point), within the dtype's range. */
function int32Leaf(dtype: DType): LeafWriter {
  const [lo, hi] = INT_RANGE[dtype] as readonly [number, number];
  return (v, data, k) => {
    if (typeof v !== 'number' || (v | 0) !== v || v < lo || v > hi) throw typeError(v, dtype);
    (data as Int32Array)[k] = v;
  };
}

/**
 * TF's FillTensorProto: writes the leaves of `value` (whose shape was taken from element [0] at each
 * level) into `data` from `offset`, checking every list against that shape. Depth-first and iterative,
 * so errors come in TF's order and deep nesting cannot overflow the stack. Returns the leaf count.
 */
function fillTensor(value: JsonValue, shape: number[], dtype: DType, data: TensorData, offset: number): number {
  const write = leafWriters[dtype];
  const rank = shape.length;
  if (!Array.isArray(value)) {
    write(value, data, offset);
    return 1;
  }
  const numeric = dtype === 'DT_FLOAT' || dtype === 'DT_DOUBLE';
  const range = INT_RANGE[dtype];
  const int32 = range !== undefined;
  const lo = range?.[0] ?? 0;
  const hi = range?.[1] ?? 0;
  const lists: JsonValue[][] = [value];
  const next: number[] = [0];
  let depth = 0;
  let k = offset;
  while (depth >= 0) {
    const list = lists[depth];
    if (depth === rank - 1) {
      // Innermost lists hold the leaves. Plain numbers take a direct store.
      const typed = data as Float32Array;
      for (let i = 0; i < list.length; i++) {
        const v = list[i];
        if (numeric && typeof v === 'number') typed[k] = v;
        else if (int32 && typeof v === 'number' && (v | 0) === v && v >= lo && v <= hi) typed[k] = v;
        else if (Array.isArray(v)) throw invalidArgument(`Encountered list at unexpected level: ${rank} expected < ${rank}`);
        else write(v, data, k);
        k++;
      }
      depth--;
      continue;
    }
    const i = next[depth];
    if (i === list.length) {
      depth--;
      continue;
    }
    next[depth] = i + 1;
    const child = list[i];
    const level = depth + 1;
    if (!Array.isArray(child)) {
      throw invalidArgument(
        `JSON Value: ${jsonDebugString(child)} found at incorrect level: ${level + 1} in the JSON DOM. ` +
          `Expected at level: ${rank}`,
      );
    }
    if (child.length !== shape[level]) {
      throw invalidArgument(
        `Encountered list at unexpected size: ${child.length} at level: ${level} expected size: ${shape[level]}`,
      );
    }
    depth = level;
    lists[depth] = child;
    next[depth] = 0;
  }
  return k - offset;
}

// ---- base64 ----

const BASE64_VALUES = new Int8Array(256).fill(-1);
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  .split('')
  .forEach((ch, i) => (BASE64_VALUES[ch.charCodeAt(0)] = i));

function isAsciiSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

/** The bytes `base64Decode(text)` yields when `text` is valid: 6 bits per symbol, spaces and pads aside. */
function base64DecodedLength(text: string): number {
  let symbols = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x3d && c !== 0x2e && !isAsciiSpace(c)) symbols++;
  }
  return Math.floor((symbols * 6) / 8);
}

/**
 * absl::Base64Unescape's rules: standard alphabet; ASCII whitespace anywhere is skipped; the data may
 * end with no padding or with exactly the right padding (`=`, or `.`); after the first pad only pads and
 * whitespace may follow; a lone trailing sextet is an error. Returns null for invalid input.
 */
export function base64Decode(text: string): Uint8Array | null {
  const out = new Uint8Array(Math.floor((text.length * 3) / 4) + 3);
  let n = 0;
  let acc = 0;
  let sextets = 0;
  let i = 0;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const d = c < 256 ? BASE64_VALUES[c] : -1;
    if (d >= 0) {
      acc = (acc << 6) | d;
      if (++sextets === 4) {
        out[n++] = acc >>> 16;
        out[n++] = (acc >>> 8) & 0xff;
        out[n++] = acc & 0xff;
        acc = 0;
        sextets = 0;
      }
    } else if (c === 0x3d || c === 0x2e) {
      break;
    } else if (!isAsciiSpace(c)) {
      return null;
    }
  }
  let expectedPads = 0;
  if (sextets === 1) return null;
  if (sextets === 2) {
    out[n++] = (acc >>> 4) & 0xff;
    expectedPads = 2;
  } else if (sextets === 3) {
    out[n++] = (acc >>> 10) & 0xff;
    out[n++] = (acc >>> 2) & 0xff;
    expectedPads = 1;
  }
  let pads = 0;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x3d || c === 0x2e) pads++;
    else if (!isAsciiSpace(c)) return null;
  }
  if (pads !== 0 && pads !== expectedPads) return null;
  return out.slice(0, n);
}

/** TF's JsonDecodeBase64Object: `{"b64": "..."}` to bytes, at most --max_b64_bytes of them. */
export function decodeBase64Object(v: JsonObject): Uint8Array {
  if (!isBase64Object(v)) throw invalidArgument(`JSON Value: ${jsonDebugString(v)} not formatted correctly for base64 data`);
  const text = v.b64 as string;
  // Measured before decoding, so an oversize value is refused without allocating its bytes; the exact
  // count (a scan) only when the quick bound is over the limit.
  if (Math.ceil((text.length * 3) / 4) > tensorLimits.maxB64Bytes) {
    const bytes = base64DecodedLength(text);
    if (bytes > tensorLimits.maxB64Bytes) {
      throw invalidArgument(`b64 value decodes to ${bytes} bytes; the limit is ${tensorLimits.maxB64Bytes} (--max_b64_bytes)`);
    }
  }
  const bytes = base64Decode(text);
  if (bytes === null) throw invalidArgument('Unable to base64 decode');
  return bytes;
}

// ---- Response ----

/**
 * Output tensors as TF Serving's predict response bytes. Row format (`predictions`) needs every output
 * to have the same dim 0; columnar (`outputs`) writes whole tensors. With more than one output, each is
 * keyed by its alias, in `outputOrder` order, then bytewise order for the rest. DT_STRING outputs whose
 * alias ends in `_bytes` are written as `{"b64": ...}`.
 */
export function encodePredictResponse(
  format: PredictFormat,
  outputs: Record<string, Tensor>,
  outputOrder?: string[],
): string {
  // Outputs named in outputOrder come first, in that order (names without a tensor are skipped); any
  // others follow in bytewise order.
  const listed = (outputOrder ?? []).filter((name) => Object.hasOwn(outputs, name));
  const seen = new Set(listed);
  const names = [...listed, ...sortedNames(Object.keys(outputs).filter((name) => !seen.has(name)))];
  if (names.length === 0) throw invalidArgument('Cannot convert empty tensor map to JSON');
  return format === 'row' ? encodeRows(outputs, names) : encodeColumns(outputs, names);
}

function encodeRows(outputs: Record<string, Tensor>, names: string[]): string {
  let batchSize = -1;
  for (const name of names) {
    const shape = outputs[name].shape;
    if (shape.length === 0) throw invalidArgument(`Tensor name: ${name} has no shape information `);
    if (batchSize >= 0 && shape[0] !== batchSize) {
      throw invalidArgument(`Tensor name: ${name} has inconsistent batch size: ${shape[0]} expecting: ${batchSize}`);
    }
    batchSize = shape[0];
  }
  const writers = names.map((name) => new TensorValueWriter(outputs[name], isBytesOutput(name, outputs[name])));
  const w = new PrettyJsonWriter();
  w.startObject();
  w.key('predictions');
  w.startArray();
  const named = names.length > 1;
  for (let row = 0; row < batchSize; row++) {
    if (named) w.startObject();
    w.singleLineArrays = true;
    for (let j = 0; j < names.length; j++) {
      if (named) w.key(names[j]);
      writers[j].write(w, 1);
    }
    w.singleLineArrays = false;
    if (named) w.endObject();
  }
  w.endArray();
  w.endObject();
  return w.out;
}

function encodeColumns(outputs: Record<string, Tensor>, names: string[]): string {
  const w = new PrettyJsonWriter();
  w.startObject();
  w.key('outputs');
  const named = names.length > 1;
  if (named) w.startObject();
  for (const name of names) {
    if (named) w.key(name);
    new TensorValueWriter(outputs[name], isBytesOutput(name, outputs[name])).write(w, 0);
  }
  if (named) w.endObject();
  w.endObject();
  return w.out;
}

function isBytesOutput(name: string, tensor: Tensor): boolean {
  return tensor.dtype === 'DT_STRING' && name.endsWith('_bytes');
}

const bigIntText = (v: number | bigint) => v.toString();
const numberFormats: Partial<Record<DType, (v: number) => string>> = {
  DT_FLOAT: formatFloat32,
  DT_DOUBLE: formatFloat64,
  DT_HALF: (bits) => formatFloat32(halfToNumber(bits)),
  DT_BOOL: (v) => (v ? 'true' : 'false'),
};

/** Walks one tensor's values in order (TF's AddTensorValues), remembering where the next row starts. */
class TensorValueWriter {
  private offset = 0;
  private readonly format: ((v: number) => string) | undefined;

  constructor(
    private readonly tensor: Tensor,
    private readonly asBytes: boolean,
  ) {
    this.format =
      tensor.dtype === 'DT_STRING'
        ? undefined
        : (numberFormats[tensor.dtype] ?? (bigIntText as (v: number) => string));
    const expected = elementCount(tensor.shape);
    if (tensor.data.length !== expected) {
      throw internal(`Output tensor holds ${tensor.data.length} values for shape ${shapeToString(tensor.shape)}`);
    }
  }

  /** Writes the values of dimensions [dim, rank) at the current offset: one row, or the whole tensor. */
  write(w: PrettyJsonWriter, dim: number): void {
    const shape = this.tensor.shape;
    if (dim >= shape.length) {
      this.writeValue(w);
      return;
    }
    w.startArray();
    const n = shape[dim];
    if (dim === shape.length - 1 && this.format !== undefined) {
      const data = this.tensor.data as Float32Array;
      const format = this.format;
      const end = this.offset + n;
      for (let k = this.offset; k < end; k++) w.raw(format(data[k]));
      this.offset = end;
    } else {
      for (let i = 0; i < n; i++) this.write(w, dim + 1);
    }
    w.endArray();
  }

  private writeValue(w: PrettyJsonWriter): void {
    const k = this.offset++;
    if (this.format !== undefined) {
      w.raw(this.format((this.tensor.data as Float32Array)[k]));
      return;
    }
    const bytes = (this.tensor.data as Uint8Array[])[k] as Uint8Array;
    // Not valid UTF-8: written as {"b64": ...} (the same bytes in TF's binary form), never altered.
    const text = this.asBytes ? undefined : bytesToText(bytes);
    if (text === undefined) {
      w.startObject();
      w.key('b64');
      w.string(base64Encode(bytes));
      w.endObject();
    } else {
      w.string(text);
    }
  }
}

