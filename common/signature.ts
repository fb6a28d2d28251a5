/**
 * What a model version offers, as both sides of the worker protocol see it: TF's dtypes, and the
 * signatures a worker reports when it is ready (the gateway serves metadata from them).
 */

export type DType =
  | 'DT_FLOAT'
  | 'DT_DOUBLE'
  | 'DT_HALF'
  | 'DT_INT8'
  | 'DT_INT16'
  | 'DT_INT32'
  | 'DT_INT64'
  | 'DT_UINT8'
  | 'DT_UINT16'
  | 'DT_UINT32'
  | 'DT_UINT64'
  | 'DT_BOOL'
  | 'DT_STRING';

/** One side of a signature entry, as TF's TensorInfo: the graph tensor name, dtype and static shape. */
export interface TensorInfo {
  name: string;
  dtype: DType;
  /** null = unknown rank; -1 marks an unknown dimension. */
  shape: number[] | null;
}

export interface SignatureDef {
  inputs: Record<string, TensorInfo>;
  outputs: Record<string, TensorInfo>;
  methodName: string;
}

