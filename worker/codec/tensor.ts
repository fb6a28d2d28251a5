/**
 * The worker's in-memory tensor and signature shapes, shared by the codecs (JSON, TensorProto) and the
 * runtimes (onnx, tensorflow). A runtime converts to and from its engine's tensor type at its edge.
 *
 * Data layout per dtype (row-major, length = product of shape):
 *   DT_FLOAT Float32Array · DT_DOUBLE Float64Array · DT_HALF Uint16Array (IEEE binary16 bit patterns)
 *   DT_INT8 Int8Array · DT_INT16 Int16Array · DT_INT32 Int32Array · DT_INT64 BigInt64Array
 *   DT_UINT8 Uint8Array · DT_UINT16 Uint16Array · DT_UINT32 Uint32Array · DT_UINT64 BigUint64Array
 *   DT_BOOL Uint8Array (0/1) · DT_STRING Uint8Array[] (raw bytes, as TensorFlow strings are bytes)
 */

import type { DType } from '../../common/signature.js';

export type { DType, SignatureDef, TensorInfo } from '../../common/signature.js';

export type TensorData =
  | Float32Array
  | Float64Array
  | Uint16Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint32Array
  | BigUint64Array
  | Uint8Array[];

export interface Tensor {
  dtype: DType;
  shape: number[];
  data: TensorData;
}

export const PREDICT_METHOD = 'tensorflow/serving/predict';
export const CLASSIFY_METHOD = 'tensorflow/serving/classify';
export const REGRESS_METHOD = 'tensorflow/serving/regress';
export const DEFAULT_SIGNATURE = 'serving_default';

/** TensorFlow's DataTypeString names, used in TF Serving's error messages. */
export const dtypeString: Record<DType, string> = {
  DT_FLOAT: 'float',
  DT_DOUBLE: 'double',
  DT_HALF: 'half',
  DT_INT8: 'int8',
  DT_INT16: 'int16',
  DT_INT32: 'int32',
  DT_INT64: 'int64',
  DT_UINT8: 'uint8',
  DT_UINT16: 'uint16',
  DT_UINT32: 'uint32',
  DT_UINT64: 'uint64',
  DT_BOOL: 'bool',
  DT_STRING: 'string',
};

/** `tensorflow.DataType` enum numbers (framework/types.proto). */
export const dtypeNumber: Record<DType, number> = {
  DT_FLOAT: 1,
  DT_DOUBLE: 2,
  DT_INT32: 3,
  DT_UINT8: 4,
  DT_INT16: 5,
  DT_INT8: 6,
  DT_STRING: 7,
  DT_INT64: 9,
  DT_BOOL: 10,
  DT_UINT16: 17,
  DT_HALF: 19,
  DT_UINT32: 22,
  DT_UINT64: 23,
};

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Allocates zeroed storage for `count` elements of `dtype`. */
export function allocate(dtype: DType, count: number): TensorData {
  switch (dtype) {
    case 'DT_FLOAT': return new Float32Array(count);
    case 'DT_DOUBLE': return new Float64Array(count);
    case 'DT_HALF': return new Uint16Array(count);
    case 'DT_INT8': return new Int8Array(count);
    case 'DT_INT16': return new Int16Array(count);
    case 'DT_INT32': return new Int32Array(count);
    case 'DT_INT64': return new BigInt64Array(count);
    case 'DT_UINT8': return new Uint8Array(count);
    case 'DT_UINT16': return new Uint16Array(count);
    case 'DT_UINT32': return new Uint32Array(count);
    case 'DT_UINT64': return new BigUint64Array(count);
    case 'DT_BOOL': return new Uint8Array(count);
    case 'DT_STRING': return new Array<Uint8Array>(count).fill(new Uint8Array(0));
  }
}

const halfScratch = new Float64Array(1);
const halfScratchWords = new Uint32Array(halfScratch.buffer);

/** Rounds a non-negative double to an integer, ties to even. */
function roundHalfEven(q: number): number {
  const f = Math.floor(q);
  const diff = q - f;
  return diff > 0.5 || (diff === 0.5 && f % 2 === 1) ? f + 1 : f;
}

/**
 * IEEE binary16 bits (as stored in DT_HALF data) for a number: round to nearest, ties to even, straight
 * from the double (no intermediate float32 rounding). Handles subnormals, overflow to ±Infinity, -0 and
 * NaN (a quiet NaN, 0x7e00, with the sign kept).
 */
export function halfFromNumber(x: number): number {
  halfScratch[0] = x;
  const sign = (halfScratchWords[1] >>> 16) & 0x8000;
  if (x !== x) return sign | 0x7e00;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00; // 65504 is the largest half; 65520 is halfway to 2^16
  if (a < 6.103515625e-5) {
    // Subnormal range (below 2^-14): units of 2^-24. 1024 units rounds up to the smallest normal.
    return sign | roundHalfEven(a * 16777216);
  }
  halfScratch[0] = a;
  let exponent = ((halfScratchWords[1] >>> 20) & 0x7ff) - 1023;
  let mantissa = roundHalfEven((a / 2 ** exponent - 1) * 1024);
  if (mantissa === 1024) {
    mantissa = 0;
    exponent++;
  }
  return sign | ((exponent + 15) << 10) | mantissa;
}

/** The number an IEEE binary16 bit pattern holds. */
export function halfToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 5.960464477539063e-8; // 2^-24
  if (exponent === 31) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}
