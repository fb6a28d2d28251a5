/**
 * The Open Inference Protocol ("KServe v2") side of our dtypes: one table from TF's dtypes to the
 * protocol's datatype names, and the per-element byte size of its raw (little-endian) encoding. The
 * gateway uses it for model metadata; the worker for decoding and encoding v2 tensors.
 */
import type { DType } from './signature.js';

export type V2Datatype =
  | 'BOOL'
  | 'UINT8'
  | 'UINT16'
  | 'UINT32'
  | 'UINT64'
  | 'INT8'
  | 'INT16'
  | 'INT32'
  | 'INT64'
  | 'FP16'
  | 'FP32'
  | 'FP64'
  | 'BYTES';

/** TF dtype → v2 datatype. Every DType we serve has one. */
export const V2_DATATYPE_OF: Readonly<Record<DType, V2Datatype>> = {
  DT_BOOL: 'BOOL',
  DT_UINT8: 'UINT8',
  DT_UINT16: 'UINT16',
  DT_UINT32: 'UINT32',
  DT_UINT64: 'UINT64',
  DT_INT8: 'INT8',
  DT_INT16: 'INT16',
  DT_INT32: 'INT32',
  DT_INT64: 'INT64',
  DT_HALF: 'FP16',
  DT_FLOAT: 'FP32',
  DT_DOUBLE: 'FP64',
  DT_STRING: 'BYTES',
};

/** v2 datatype → TF dtype (the inverse of V2_DATATYPE_OF). */
export const DTYPE_OF_V2: ReadonlyMap<string, DType> = new Map(
  (Object.entries(V2_DATATYPE_OF) as Array<[DType, V2Datatype]>).map(([dtype, v2]) => [v2, dtype]),
);

/** Bytes per element in the raw encoding; 0 for BYTES (each element is a u32 LE length + its bytes). */
export const V2_ELEMENT_BYTES: Readonly<Record<V2Datatype, number>> = {
  BOOL: 1,
  UINT8: 1,
  UINT16: 2,
  UINT32: 4,
  UINT64: 8,
  INT8: 1,
  INT16: 2,
  INT32: 4,
  INT64: 8,
  FP16: 2,
  FP32: 4,
  FP64: 8,
  BYTES: 0,
};

/** Triton's platform names for our model platforms (model metadata `platform`). */
export function v2Platform(platform: string | undefined): string {
  if (platform === 'onnx') return 'onnxruntime_onnx';
  if (platform === 'tensorflow') return 'tensorflow_savedmodel';
  return platform ?? '';
}

/** The extensions of the protocol this server speaks (server metadata `extensions`). */
export const V2_EXTENSIONS: readonly string[] = ['binary_tensor_data', 'version_labels'];
