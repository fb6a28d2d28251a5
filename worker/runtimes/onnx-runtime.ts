/**
 * The `onnx` platform: `<version folder>/model.onnx`, run by onnxruntime-node.
 *
 * The `serving_default` signature is derived from the graph: one input per graph input that is not an
 * initializer, one output per graph output, aliases equal to the ONNX names, TF dtype names, -1 for
 * unknown dimensions. Shapes come from the graph's own TypeProto rather than onnxruntime's metadata,
 * because only the TypeProto tells "no shape given" (any rank, reported as unknown_rank) from a scalar.
 *
 * Strings: onnxruntime-node takes and gives string elements as JS strings. Going in, each one is
 * UTF-8 encoded and handed to onnxruntime as a NUL-terminated C string, so bytes that are not valid
 * UTF-8, or that hold a NUL, cannot reach the model intact: such an input is refused with
 * INVALID_ARGUMENT naming the input (`checkInputs`), never altered. Coming out, a string's length is
 * kept (NULs survive) but bytes that are not valid UTF-8 become U+FFFD. Outputs can only hold such
 * bytes if the model itself carries them (a string initializer or attribute); for those models an
 * output string holding U+FFFD is refused with DATA_LOSS rather than answered with other bytes.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import ort from 'onnxruntime-node';
import protobuf from 'protobufjs';
import { loadProtoRoot } from '../../common/protos.js';
import { Code, failedPrecondition, invalidArgument, ServingError } from '../../common/errors.js';
import {
  DEFAULT_SIGNATURE,
  PREDICT_METHOD,
  type DType,
  type SignatureDef,
  type Tensor,
  type TensorInfo,
} from '../codec/tensor.js';
import type { Runtime, RuntimeOptions } from './runtime.js';

/** ONNX TensorProto.DataType → our dtype; types we cannot serve are absent. */
const ONNX_TO_DTYPE: Record<number, DType> = {
  1: 'DT_FLOAT',
  2: 'DT_UINT8',
  3: 'DT_INT8',
  4: 'DT_UINT16',
  5: 'DT_INT16',
  6: 'DT_INT32',
  7: 'DT_INT64',
  8: 'DT_STRING',
  9: 'DT_BOOL',
  10: 'DT_HALF',
  11: 'DT_DOUBLE',
  12: 'DT_UINT32',
  13: 'DT_UINT64',
};

const ONNX_TYPE_NAMES: Record<number, string> = {
  0: 'UNDEFINED', 14: 'COMPLEX64', 15: 'COMPLEX128', 16: 'BFLOAT16', 17: 'FLOAT8E4M3FN', 18: 'FLOAT8E4M3FNUZ',
  19: 'FLOAT8E5M2', 20: 'FLOAT8E5M2FNUZ', 21: 'UINT4', 22: 'INT4', 23: 'FLOAT4E2M1',
};

const DTYPE_TO_ORT: Record<DType, ort.Tensor.Type> = {
  DT_FLOAT: 'float32',
  DT_DOUBLE: 'float64',
  DT_HALF: 'float16',
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

interface GraphValue {
  name: string;
  elemType: number;
  /** null when the TypeProto has no shape (any rank). */
  shape: number[] | null;
}

interface GraphIo {
  inputs: Map<string, GraphValue>;
  outputs: Map<string, GraphValue>;
  initializers: Set<string>;
  /** Where the model holds string bytes that are not valid UTF-8 (an initializer or attribute), if anywhere. */
  nonUtf8Strings?: string;
}

const textDecoder = new TextDecoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const textEncoder = new TextEncoder();
const REPLACEMENT_CHARACTER = '\uFFFD';

function isUtf8(bytes: Uint8Array): boolean {
  try {
    strictUtf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Why `bytes` cannot be handed to onnxruntime-node unchanged, or undefined when they can. */
export function ortStringProblem(bytes: Uint8Array): string | undefined {
  const nul = bytes.indexOf(0);
  if (nul >= 0) return `it holds a NUL byte (at byte ${nul})`;
  if (!isUtf8(bytes)) return 'it is not valid UTF-8';
  return undefined;
}

export class OnnxRuntime implements Runtime {
  readonly signatures: Record<string, SignatureDef>;
  readonly backends: Record<string, string> = { [DEFAULT_SIGNATURE]: 'onnxruntime' };
  readonly #session: ort.InferenceSession;
  readonly #inputNames: Map<string, string>;
  readonly #outputNames: Map<string, string>;
  readonly #nonUtf8Strings: string | undefined;

  private constructor(session: ort.InferenceSession, signature: SignatureDef, nonUtf8Strings: string | undefined) {
    this.#session = session;
    this.#nonUtf8Strings = nonUtf8Strings;
    this.signatures = { [DEFAULT_SIGNATURE]: signature };
    this.#inputNames = new Map(Object.entries(signature.inputs).map(([alias, info]) => [alias, info.name]));
    this.#outputNames = new Map(Object.entries(signature.outputs).map(([alias, info]) => [alias, info.name]));
  }

  static async load(versionDir: string, options: RuntimeOptions): Promise<OnnxRuntime> {
    const file = path.join(versionDir, 'model.onnx');
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (err) {
      throw new ServingError(5, `Could not read ${file}: ${(err as Error).message}`);
    }
    let io: GraphIo;
    try {
      io = readGraphIo(bytes);
    } catch (err) {
      throw new ServingError(15, `${file} is not a valid ONNX model: ${(err as Error).message}`);
    }
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes, {
        intraOpNumThreads: options.intraOpThreads,
        interOpNumThreads: options.interOpThreads,
        graphOptimizationLevel: 'all',
      });
    } catch (err) {
      throw invalidArgument(`onnxruntime could not load ${file}: ${(err as Error).message}`);
    }
    const signature: SignatureDef = { inputs: {}, outputs: {}, methodName: PREDICT_METHOD };
    for (const name of session.inputNames) {
      signature.inputs[name] = tensorInfo(io.inputs.get(name), name, 'input');
    }
    for (const name of session.outputNames) {
      signature.outputs[name] = tensorInfo(io.outputs.get(name), name, 'output');
    }
    return new OnnxRuntime(session, signature, io.nonUtf8Strings);
  }

  /** Refuses string inputs onnxruntime-node would alter (see the file comment). */
  checkInputs(_signatureName: string, inputs: Record<string, Tensor>): void {
    for (const [alias, tensor] of Object.entries(inputs)) {
      if (tensor.dtype !== 'DT_STRING') continue;
      const data = tensor.data as Uint8Array[];
      for (let i = 0; i < data.length; i++) {
        const problem = ortStringProblem(data[i]!);
        if (problem) {
          throw invalidArgument(
            `Input '${alias}' element ${i} cannot be passed to the ONNX model unchanged: ${problem}, ` +
              'and onnxruntime-node only carries strings as UTF-8 text without NUL bytes',
          );
        }
      }
    }
  }

  async run(
    signatureName: string,
    inputs: Record<string, Tensor>,
    outputs?: readonly string[],
  ): Promise<Record<string, Tensor>> {
    if (signatureName !== DEFAULT_SIGNATURE) {
      throw failedPrecondition(`Serving signature key "${signatureName}" not found.`);
    }
    this.checkInputs(signatureName, inputs);
    const feeds: Record<string, ort.Tensor> = {};
    for (const [alias, tensor] of Object.entries(inputs)) {
      const name = this.#inputNames.get(alias);
      if (name === undefined) throw invalidArgument(`input tensor alias not found in signature: ${alias}`);
      feeds[name] = toOrt(tensor);
    }
    const aliases = outputs ?? [...this.#outputNames.keys()];
    const fetches = aliases.map((a) => this.#outputNames.get(a) as string);
    let result: ort.InferenceSession.ReturnType;
    try {
      result = await this.#session.run(feeds, fetches);
    } catch (err) {
      // onnxruntime reports shape and type mismatches found while running as plain errors.
      throw invalidArgument(String((err as Error).message ?? err));
    }
    const out: Record<string, Tensor> = {};
    try {
      for (let i = 0; i < aliases.length; i++) {
        const t = result[fetches[i] as string] as ort.Tensor;
        const alias = aliases[i] as string;
        if (this.#nonUtf8Strings !== undefined && t.type === 'string') {
          const at = (t.data as string[]).findIndex((s) => s.includes(REPLACEMENT_CHARACTER));
          if (at >= 0) {
            throw new ServingError(
              Code.DATA_LOSS,
              `Output '${alias}' element ${at} holds U+FFFD where the model may have produced bytes that are not ` +
                `valid UTF-8 (${this.#nonUtf8Strings}); onnxruntime-node does not return such bytes unchanged`,
            );
          }
        }
        out[alias] = fromOrt(t, this.signatures[DEFAULT_SIGNATURE]!.outputs[alias]!.dtype);
      }
    } finally {
      for (const f of fetches) (result[f] as ort.Tensor | undefined)?.dispose?.();
    }
    return out;
  }

  async close(): Promise<void> {
    await this.#session.release();
  }
}

function tensorInfo(value: GraphValue | undefined, name: string, side: string): TensorInfo {
  if (!value) throw new ServingError(3, `graph ${side} ${name} has no type information`);
  const dtype = ONNX_TO_DTYPE[value.elemType];
  if (!dtype) {
    const typeName = ONNX_TYPE_NAMES[value.elemType] ?? `type ${value.elemType}`;
    throw new ServingError(12, `graph ${side} ${name} has element type ${typeName}, which modelgate cannot serve`);
  }
  return { name, dtype, shape: value.shape };
}

function toOrt(t: Tensor): ort.Tensor {
  const type = DTYPE_TO_ORT[t.dtype];
  if (t.dtype === 'DT_STRING') {
    const strings = (t.data as Uint8Array[]).map((b) => textDecoder.decode(b));
    return new ort.Tensor('string', strings, t.shape);
  }
  if (t.dtype === 'DT_BOOL') {
    return new ort.Tensor('bool', t.data as Uint8Array, t.shape);
  }
  return new ort.Tensor(type, t.data as Exclude<Tensor['data'], Uint8Array[]>, t.shape);
}

function fromOrt(t: ort.Tensor, dtype: DType): Tensor {
  const shape = t.dims.map(Number);
  if (dtype === 'DT_STRING') {
    return { dtype, shape, data: (t.data as string[]).map((s) => textEncoder.encode(s)) };
  }
  if (dtype === 'DT_BOOL') {
    const d = t.data as Uint8Array | boolean[];
    return { dtype, shape, data: d instanceof Uint8Array ? d : Uint8Array.from(d, (b) => (b ? 1 : 0)) };
  }
  return { dtype, shape, data: t.data as Tensor['data'] };
}

// ---------------------------------------------------------------------------------------------
// Reading a graph's inputs and outputs without decoding its weights.

let valueInfoType: protobuf.Type | undefined;

/**
 * Walks ModelProto → GraphProto with a raw protobuf reader, decoding only `input` (11), `output` (12)
 * and the names of `initializer` (5) entries, so a large model's weights are skipped, not copied.
 */
export function readGraphIo(bytes: Uint8Array): GraphIo {
  valueInfoType ??= loadProtoRoot(['onnx/onnx.proto']).lookupType('onnx.ValueInfoProto');
  const io: GraphIo = { inputs: new Map(), outputs: new Map(), initializers: new Set() };
  const model = protobuf.Reader.create(bytes);
  let sawGraph = false;
  while (model.pos < model.len) {
    const tag = model.uint32();
    if (tag >>> 3 === 7 && (tag & 7) === 2) {
      sawGraph = true;
      const graphBytes = model.bytes();
      const graph = protobuf.Reader.create(graphBytes);
      while (graph.pos < graph.len) {
        const gtag = graph.uint32();
        const field = gtag >>> 3;
        if ((field === 11 || field === 12) && (gtag & 7) === 2) {
          const vi = valueInfoType.decode(graph.bytes()) as unknown as OnnxValueInfo;
          (field === 11 ? io.inputs : io.outputs).set(vi.name, graphValue(vi));
        } else if (field === 5 && (gtag & 7) === 2) {
          const tensor = graph.bytes();
          const name = initializerName(tensor);
          if (name) io.initializers.add(name);
          if (io.nonUtf8Strings === undefined && tensorHasNonUtf8(tensor)) io.nonUtf8Strings = `initializer ${name ?? '(unnamed)'}`;
        } else if (field === 1 && (gtag & 7) === 2) {
          const node = graph.bytes();
          if (io.nonUtf8Strings === undefined && nodeHasNonUtf8(node)) io.nonUtf8Strings = `an attribute of node ${nodeName(node)}`;
        } else if (field === 15 && (gtag & 7) === 2) {
          if (io.nonUtf8Strings === undefined && sparseHasNonUtf8(graph.bytes())) io.nonUtf8Strings = 'a sparse initializer';
        } else {
          graph.skipType(gtag & 7);
        }
      }
    } else {
      model.skipType(tag & 7);
    }
  }
  if (!sawGraph) throw new Error('the model has no graph');
  return io;
}

interface OnnxValueInfo {
  name: string;
  type?: {
    tensor_type?: {
      elem_type?: number;
      shape?: { dim?: Array<{ dim_value?: number | protobuf.Long; dim_param?: string }> };
    };
  };
}

function graphValue(vi: OnnxValueInfo): GraphValue {
  const tt = vi.type?.tensor_type;
  const shape = tt?.shape
    ? (tt.shape.dim ?? []).map((d) => (Object.hasOwn(d, 'dim_value') ? toNumber(d.dim_value!) : -1))
    : null;
  return { name: vi.name, elemType: tt?.elem_type ?? 0, shape };
}

function toNumber(v: number | protobuf.Long): number {
  return typeof v === 'number' ? v : Number(String(v));
}

function initializerName(tensorBytes: Uint8Array): string | undefined {
  const r = protobuf.Reader.create(tensorBytes);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === 8 && (tag & 7) === 2) return r.string();
    r.skipType(tag & 7);
  }
  return undefined;
}

// String bytes a model carries itself (initializers, node attributes, nested graphs), read with the raw
// reader: only string fields are decoded. Field numbers are onnx.proto's: GraphProto node 1,
// initializer 5, sparse_initializer 15; NodeProto name 3, attribute 5; AttributeProto s 4, t 5, g 6,
// strings 9, tensors 10, graphs 11, sparse_tensor 22, sparse_tensors 23; TensorProto string_data 6;
// SparseTensorProto values 1.

type Scan = (bytes: Uint8Array) => boolean;

/** True when any length-delimited field of `bytes` numbered in `checks` fails its check. */
function anyField(bytes: Uint8Array, checks: Record<number, Scan>): boolean {
  const r = protobuf.Reader.create(bytes);
  while (r.pos < r.len) {
    const tag = r.uint32();
    const check = checks[tag >>> 3];
    if (check && (tag & 7) === 2) {
      if (check(r.bytes())) return true;
    } else {
      r.skipType(tag & 7);
    }
  }
  return false;
}

const notUtf8: Scan = (b) => !isUtf8(b);
const tensorHasNonUtf8: Scan = (b) => anyField(b, { 6: notUtf8 });
const sparseHasNonUtf8: Scan = (b) => anyField(b, { 1: tensorHasNonUtf8 });
const attributeHasNonUtf8: Scan = (b) =>
  anyField(b, {
    4: notUtf8, 5: tensorHasNonUtf8, 6: subgraphHasNonUtf8, 9: notUtf8, 10: tensorHasNonUtf8, 11: subgraphHasNonUtf8,
    22: sparseHasNonUtf8, 23: sparseHasNonUtf8,
  });
const nodeHasNonUtf8: Scan = (b) => anyField(b, { 5: attributeHasNonUtf8 });
function subgraphHasNonUtf8(b: Uint8Array): boolean {
  return anyField(b, { 1: nodeHasNonUtf8, 5: tensorHasNonUtf8, 15: sparseHasNonUtf8 });
}

function nodeName(node: Uint8Array): string {
  const r = protobuf.Reader.create(node);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === 3 && (tag & 7) === 2) return r.string() || '(unnamed)';
    r.skipType(tag & 7);
  }
  return '(unnamed)';
}

/**
 * Run by a standby worker (--standby) before it is given a model: the onnx.proto root and a first
 * session (onnxruntime sets up its environment then), on a one-node Identity model built here, so the
 * assigned model's load pays neither.
 */
export async function prewarmOnnx(options: RuntimeOptions): Promise<void> {
  const root = loadProtoRoot(['onnx/onnx.proto']);
  valueInfoType ??= root.lookupType('onnx.ValueInfoProto');
  const valueInfo = (name: string) => ({ name, type: { tensor_type: { elem_type: 1, shape: { dim: [{ dim_value: 1 }] } } } });
  const Model = root.lookupType('onnx.ModelProto');
  const bytes = Model.encode(
    Model.fromObject({
      ir_version: 8,
      opset_import: [{ domain: '', version: 13 }],
      graph: { name: 'prewarm', node: [{ op_type: 'Identity', input: ['x'], output: ['y'] }], input: [valueInfo('x')], output: [valueInfo('y')] },
    }),
  ).finish();
  const session = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: options.intraOpThreads,
    interOpNumThreads: options.interOpThreads,
    graphOptimizationLevel: 'all',
  });
  await session.run({ x: new ort.Tensor('float32', Float32Array.of(1), [1]) });
  await session.release();
}
