/**
 * The worker's half of TF Serving's gRPC PredictionService. The gateway has already resolved the model
 * spec and forwards the serialized request message untouched; this module decodes it, runs the
 * signature and answers with the serialized response message.
 *
 *   GRPC_PREDICT          PredictRequest         → PredictResponse
 *   GRPC_CLASSIFY         ClassificationRequest  → ClassificationResponse
 *   GRPC_REGRESS          RegressionRequest      → RegressionResponse
 *   GRPC_MULTI_INFERENCE  MultiInferenceRequest  → MultiInferenceResponse
 *
 * (request kinds of the worker protocol, common/worker-protocol.ts). The request frame carries the
 * version the gateway resolved (echoed in the response's model_spec) and what is left of the
 * client's deadline: work that has not started by then is refused with DEADLINE_EXCEEDED, and work of
 * a cancelled call with CANCELLED.
 *
 * Behaviour and messages follow TF Serving's predict_util.cc, classifier.cc, regressor.cc,
 * multi_inference.cc and util.cc, with two choices of ours: classify/regress insist on the signature's
 * method_name, as the REST routes do (TF's `--enable_signature_method_name_check`), and input dtypes
 * are checked against the signature before running, with the message TensorFlow's session gives.
 *
 * Messages are read and written with protobufjs's Reader/Writer directly: the gateway never decodes
 * tensors, and here only the fields that matter are decoded. Classify and Regress feed each
 * tf.Example's serialized bytes, exactly as they arrived, to the signature's DT_STRING input.
 */
import protobuf from 'protobufjs';
import { Code, invalidArgument, ServingError } from '../common/errors.js';
import { Kind } from '../common/worker-protocol.js';
import {
  decodeTensorProto,
  dataTypeName,
  dataTypeString,
  ForeignDTypeError,
  shapeDebugString,
  TensorProtoError,
  writeTensorProto,
} from './codec/tensor-proto.js';
import {
  CLASSIFY_METHOD,
  DEFAULT_SIGNATURE,
  dtypeNumber,
  REGRESS_METHOD,
  type SignatureDef,
  type Tensor,
  type TensorInfo,
} from './codec/tensor.js';
import { findSignature, type Runtime } from './runtimes/runtime.js';
import { checkDeadline, methodNameCheckEnabled, setMethodNameCheck, type CallContext } from './call-context.js';

export { checkDeadline, setMethodNameCheck, type CallContext };


/** Runs one gRPC-kind request on its serialized message; failures are thrown as ServingErrors. */
export function runGrpc(kind: number, runtime: Runtime, body: Uint8Array, ctx: CallContext): Promise<Uint8Array> {
  switch (kind) {
    case Kind.GRPC_PREDICT:
      return predict(runtime, body, ctx);
    case Kind.GRPC_CLASSIFY:
      return classifyOrRegress(runtime, body, ctx, CLASSIFY_METHOD);
    case Kind.GRPC_REGRESS:
      return classifyOrRegress(runtime, body, ctx, REGRESS_METHOD);
    case Kind.GRPC_MULTI_INFERENCE:
      return multiInference(runtime, body, ctx);
    default:
      return Promise.reject(new ServingError(Code.UNIMPLEMENTED, `Unknown worker request kind ${kind}`));
  }
}


// ---------------------------------------------------------------------------------------------
// Wire helpers

const WT_VARINT = 0;
const WT_BYTES = 2;
const WT_FIXED32 = 5;

interface SpecFields {
  name: string;
  signatureName: string;
}

/** The two ModelSpec fields the worker needs (name = 1, signature_name = 3). */
function readModelSpec(bytes: Uint8Array, into: SpecFields = { name: '', signatureName: '' }): SpecFields {
  const r = protobuf.Reader.create(bytes);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | WT_BYTES)) into.name = r.string();
    else if (tag === ((3 << 3) | WT_BYTES)) into.signatureName = r.string();
    else r.skipType(tag & 7);
  }
  return into;
}

/** Reads a message, or fails as a malformed request (what gRPC reports for an unparsable message). */
function parse<T>(what: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof ServingError) throw err;
    throw invalidArgument(`Could not parse ${what}: ${(err as Error).message}`);
  }
}

/** Writes a ModelSpec as TF Serving's MakeModelSpec fills it. */
function writeModelSpec(w: protobuf.Writer, field: number, name: string, signatureName: string, ctx: CallContext): void {
  w.uint32((field << 3) | WT_BYTES).fork();
  if (name) w.uint32((1 << 3) | WT_BYTES).string(name);
  if (ctx.version !== undefined) {
    w.uint32((2 << 3) | WT_BYTES).fork();
    if (ctx.version !== '0') w.uint32((1 << 3) | WT_VARINT).int64(ctx.version);
    w.ldelim();
  }
  w.uint32((3 << 3) | WT_BYTES).string(signatureName || DEFAULT_SIGNATURE);
  w.ldelim();
}

// ---------------------------------------------------------------------------------------------
// Predict

interface PredictRequestView {
  spec: SpecFields;
  /** alias → serialized TensorProto (a map entry repeated on the wire keeps the last). */
  inputs: Map<string, Uint8Array>;
  outputFilter: string[];
}

function readPredictRequest(body: Uint8Array): PredictRequestView {
  const view: PredictRequestView = { spec: { name: '', signatureName: '' }, inputs: new Map(), outputFilter: [] };
  const r = protobuf.Reader.create(body);
  while (r.pos < r.len) {
    const tag = r.uint32();
    switch (tag) {
      case (1 << 3) | WT_BYTES:
        readModelSpec(r.bytes(), view.spec);
        break;
      case (2 << 3) | WT_BYTES: {
        const entry = protobuf.Reader.create(r.bytes());
        let key = '';
        let value: Uint8Array = new Uint8Array(0);
        while (entry.pos < entry.len) {
          const etag = entry.uint32();
          if (etag === ((1 << 3) | WT_BYTES)) key = entry.string();
          else if (etag === ((2 << 3) | WT_BYTES)) value = entry.bytes();
          else entry.skipType(etag & 7);
        }
        view.inputs.set(key, value);
        break;
      }
      case (3 << 3) | WT_BYTES:
        view.outputFilter.push(r.string());
        break;
      default:
        r.skipType(tag & 7);
    }
  }
  return view;
}

const sortedKeys = (o: object | Map<string, unknown>): string[] =>
  (o instanceof Map ? [...o.keys()] : Object.keys(o)).sort(byteOrder);

/** std::set<std::string> order: bytewise. */
function byteOrder(a: string, b: string): number {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return Buffer.compare(x, y);
}

function setDifference(a: string[], b: Set<string>): string[] {
  return a.filter((x) => !b.has(x));
}

async function predict(runtime: Runtime, body: Uint8Array, ctx: CallContext): Promise<Uint8Array> {
  const request = parse('PredictRequest', () => readPredictRequest(body));
  const sigName = request.spec.signatureName || DEFAULT_SIGNATURE;
  const signature = findSignature(runtime, sigName);
  if (!signature) {
    throw new ServingError(Code.FAILED_PRECONDITION, `Serving signature key "${sigName}" not found.`);
  }
  const inputs = predictInputs(signature, request);
  const outputs = outputAliases(signature, request.outputFilter);
  checkDeadline(ctx);
  const result = await runtime.run(sigName, inputs, outputs, ctx);

  const w = protobuf.Writer.create();
  for (const alias of outputs) {
    const tensor = result[alias];
    if (!tensor) throw new ServingError(Code.UNKNOWN, 'Predict internal error');
    w.uint32((1 << 3) | WT_BYTES).fork();
    w.uint32((1 << 3) | WT_BYTES).string(alias);
    w.uint32((2 << 3) | WT_BYTES).fork();
    writeTensorProto(w, tensor);
    w.ldelim();
    w.ldelim();
  }
  writeModelSpec(w, 2, request.spec.name, sigName, ctx);
  return w.finish();
}

/** TF's VerifyRequestInputsSize, GetInputValues and the session's dtype check, in that order. */
function predictInputs(signature: SignatureDef, request: PredictRequestView): Record<string, Tensor> {
  const sigAliases = sortedKeys(signature.inputs);
  const reqAliases = sortedKeys(request.inputs);
  // Signatures here carry no default input values, so every input must be sent.
  if (reqAliases.length !== sigAliases.length) {
    const extra = setDifference(reqAliases, new Set(sigAliases));
    const missing = setDifference(sigAliases, new Set(reqAliases));
    throw invalidArgument(
      `input size does not match signature: ${reqAliases.length}!=${sigAliases.length} ` +
        `len({${reqAliases.join(',')}}) != len({${sigAliases.join(',')}}). ` +
        `Sent extra: {${extra.join(',')}}. Missing but required: {${missing.join(',')}}.`,
    );
  }
  const tensors: Record<string, Tensor> = {};
  const foreign = new Map<string, number>();
  for (const alias of sigAliases) {
    const info = signature.inputs[alias] as TensorInfo;
    const bytes = request.inputs.get(alias);
    if (bytes === undefined) {
      throw invalidArgument(
        `Signature input alias: ${alias}(feed name: ${info.name}) not found in request and no default value ` +
          `provided. Inputs expected to be in the request {${reqAliases.join(',')}}, or default input alias set: `,
      );
    }
    try {
      tensors[alias] = decodeTensorProto(bytes);
    } catch (err) {
      if (err instanceof ForeignDTypeError) foreign.set(alias, err.dtype);
      else if (err instanceof TensorProtoError) throw invalidArgument(`tensor parsing error: ${alias}`);
      else throw err;
    }
  }
  sigAliases.forEach((alias, i) => {
    const expected = (signature.inputs[alias] as TensorInfo).dtype;
    const got = foreign.get(alias) ?? dtypeNumber[(tensors[alias] as Tensor).dtype];
    if (got !== dtypeNumber[expected]) {
      throw invalidArgument(
        `Expects arg[${i}] to be ${dataTypeString(dtypeNumber[expected])} but ${dataTypeString(got)} is provided`,
      );
    }
  });
  return tensors;
}

/** The output aliases to fetch: the filter, validated as TF does, or every output of the signature. */
function outputAliases(signature: SignatureDef, filter: string[]): string[] {
  if (filter.length === 0) return Object.keys(signature.outputs);
  const seen = new Set<string>();
  for (const alias of filter) {
    if (!Object.hasOwn(signature.outputs, alias)) {
      throw invalidArgument(
        `output tensor alias not found in signature: ${alias} Outputs expected to be in the set ` +
          `{${sortedKeys(signature.outputs).join(',')}}.`,
      );
    }
    if (seen.has(alias)) throw invalidArgument(`duplicate output tensor alias: ${alias}`);
    seen.add(alias);
  }
  return filter;
}

// ---------------------------------------------------------------------------------------------
// Classify, Regress, MultiInference

/** Signature names and aliases TF Serving's classifier and regressor use (signature_constants.h). */
export const CLASSIFY_INPUTS = 'inputs';
export const CLASSIFY_OUTPUT_CLASSES = 'classes';
export const CLASSIFY_OUTPUT_SCORES = 'scores';
export const REGRESS_INPUTS = 'inputs';
export const REGRESS_OUTPUTS = 'outputs';

export interface ClassificationResult {
  /** One entry per example; each class has a label, a score, or both (as the signature outputs). */
  classifications: Array<{ classes: Array<{ label?: Uint8Array; score?: number }> }>;
}

export interface RegressionResult {
  regressions: number[];
}

/**
 * The examples of a tensorflow.serving.Input, each as the serialized tf.Example bytes that feed the
 * signature. With a context, each is the context's bytes followed by the example's, which protobuf
 * parses as the two merged (TF Serving's InputToSerializedExampleTensor).
 */
export function serializedExamples(input: Uint8Array | undefined): Uint8Array[] {
  if (!input) return [];
  let kind = 0;
  let examples: Uint8Array[] = [];
  let context: Uint8Array[] = [];
  const r = protobuf.Reader.create(input);
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    if ((field === 1 || field === 2) && (tag & 7) === WT_BYTES) {
      // A oneof: the last member on the wire wins; repeats of the same member merge.
      if (field !== kind) {
        examples = [];
        context = [];
        kind = field;
      }
      const list = protobuf.Reader.create(r.bytes());
      while (list.pos < list.len) {
        const ltag = list.uint32();
        if (ltag === ((1 << 3) | WT_BYTES)) examples.push(list.bytes());
        else if (field === 2 && ltag === ((2 << 3) | WT_BYTES)) context.push(list.bytes());
        else list.skipType(ltag & 7);
      }
    } else {
      r.skipType(tag & 7);
    }
  }
  if (kind !== 2 || context.length === 0) return examples;
  const ctxBytes = Buffer.concat(context);
  return examples.map((e) => Buffer.concat([ctxBytes, e]));
}

interface InferenceRequestView {
  spec: SpecFields;
  input: Uint8Array | undefined;
}

/** ClassificationRequest and RegressionRequest share their layout: model_spec = 1, input = 2. */
function readInferenceRequest(body: Uint8Array): InferenceRequestView {
  const view: InferenceRequestView = { spec: { name: '', signatureName: '' }, input: undefined };
  const r = protobuf.Reader.create(body);
  const inputs: Uint8Array[] = [];
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | WT_BYTES)) readModelSpec(r.bytes(), view.spec);
    else if (tag === ((2 << 3) | WT_BYTES)) inputs.push(r.bytes());
    else r.skipType(tag & 7);
  }
  // Repeated occurrences of a message field merge, which for bytes is concatenation.
  if (inputs.length > 0) view.input = inputs.length === 1 ? inputs[0] : Buffer.concat(inputs);
  return view;
}

function methodKind(method: string): string {
  return method === CLASSIFY_METHOD ? 'classification' : 'regression';
}

/** The classify or regress signature checks, as TF's PreProcessClassification/PreProcessRegression. */
function preProcess(signature: SignatureDef, method: string): { input: string; outputs: string[] } {
  if (methodNameCheckEnabled() && signature.methodName !== method) {
    throw invalidArgument(
      `Expected ${methodKind(method)} signature method_name to be ${method}. Was: ${signature.methodName}`,
    );
  }
  const inputs = Object.keys(signature.inputs);
  const outputs = Object.keys(signature.outputs);
  if (inputs.length !== 1) throw invalidArgument('Expected one input Tensor.');
  if (method === CLASSIFY_METHOD) {
    if (outputs.length !== 1 && outputs.length !== 2) {
      throw invalidArgument(`Expected one or two output Tensors, found ${outputs.length}`);
    }
    if (!Object.hasOwn(signature.inputs, CLASSIFY_INPUTS)) {
      throw invalidArgument(`No classification inputs found in SignatureDef: ${signatureDebugString(signature)}`);
    }
    const wanted = [CLASSIFY_OUTPUT_CLASSES, CLASSIFY_OUTPUT_SCORES].filter((o) => Object.hasOwn(signature.outputs, o));
    if (wanted.length === 0) {
      throw invalidArgument(
        `Expected classification signature outputs to contain at least one of "${CLASSIFY_OUTPUT_CLASSES}" or ` +
          `"${CLASSIFY_OUTPUT_SCORES}". Signature was: ${signatureDebugString(signature)}`,
      );
    }
    return { input: CLASSIFY_INPUTS, outputs: wanted };
  }
  if (outputs.length !== 1) throw invalidArgument('Expected one output Tensor.');
  if (!Object.hasOwn(signature.inputs, REGRESS_INPUTS)) {
    throw invalidArgument(`No regression inputs found in SignatureDef: ${signatureDebugString(signature)}`);
  }
  if (!Object.hasOwn(signature.outputs, REGRESS_OUTPUTS)) {
    throw invalidArgument(`No regression outputs found in SignatureDef: ${signatureDebugString(signature)}`);
  }
  return { input: REGRESS_INPUTS, outputs: [REGRESS_OUTPUTS] };
}

/** Runs a classify/regress signature on serialized examples; the session's dtype check first. */
async function runOnExamples(
  runtime: Runtime,
  sigName: string,
  signature: SignatureDef,
  plan: { input: string; outputs: string[] },
  examples: Uint8Array[],
  ctx: CallContext,
): Promise<Record<string, Tensor>> {
  const expected = (signature.inputs[plan.input] as TensorInfo).dtype;
  if (expected !== 'DT_STRING') {
    throw invalidArgument(`Expects arg[0] to be ${dataTypeString(dtypeNumber[expected])} but string is provided`);
  }
  checkDeadline(ctx);
  const tensor: Tensor = { dtype: 'DT_STRING', shape: [examples.length], data: examples };
  return runtime.run(sigName, { [plan.input]: tensor }, plan.outputs, ctx);
}

function checkMatrix(t: Tensor, dtype: 'DT_STRING' | 'DT_FLOAT', what: string, n: number): void {
  if (t.shape.length !== 2) {
    throw invalidArgument(`Expected Tensor shape: [batch_size num_classes] but got ${shapeDebugString(t.shape)}`);
  }
  if (t.dtype !== dtype) {
    throw invalidArgument(`Expected ${what} Tensor of ${dtype}. Got: ${dataTypeName(dtypeNumber[t.dtype])}`);
  }
  if (t.shape[0] !== n) throw invalidArgument(`Expected ${what} output batch size of ${n}. Got: ${t.shape[0]}`);
}

/** TF's PostProcessClassificationResult. */
export function classificationResult(outputs: Record<string, Tensor>, n: number): ClassificationResult {
  const classes = outputs[CLASSIFY_OUTPUT_CLASSES];
  const scores = outputs[CLASSIFY_OUTPUT_SCORES];
  if (classes) checkMatrix(classes, 'DT_STRING', 'classes', n);
  if (scores) checkMatrix(scores, 'DT_FLOAT', 'scores', n);
  if (classes && scores && classes.shape[1] !== scores.shape[1]) {
    throw invalidArgument(
      `Tensors class and score should match in dim_size(1). Got ${classes.shape[1]} vs. ${scores.shape[1]}`,
    );
  }
  const numClasses = (classes ?? scores)?.shape[1] ?? 0;
  const labels = classes?.data as Uint8Array[] | undefined;
  const values = scores?.data as Float32Array | undefined;
  const result: ClassificationResult = { classifications: [] };
  for (let i = 0; i < n; i++) {
    const row: ClassificationResult['classifications'][number] = { classes: [] };
    for (let c = 0; c < numClasses; c++) {
      const cls: { label?: Uint8Array; score?: number } = {};
      if (labels) cls.label = labels[i * numClasses + c] as Uint8Array;
      if (values) cls.score = values[i * numClasses + c] as number;
      row.classes.push(cls);
    }
    result.classifications.push(row);
  }
  return result;
}

/** TF's PostProcessRegressionResult. */
export function regressionResult(outputs: Record<string, Tensor>, n: number): RegressionResult {
  const t = outputs[REGRESS_OUTPUTS];
  if (!t) throw invalidArgument(`Could not find output tensor '${REGRESS_OUTPUTS}'`);
  if (!(t.shape.length === 1 || (t.shape.length === 2 && t.shape[1] === 1))) {
    throw invalidArgument(
      `Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got ${shapeDebugString(t.shape)}`,
    );
  }
  if (t.shape[0] !== n) throw invalidArgument(`Input batch size did not match output batch size: ${n} vs. ${t.shape[0]}`);
  if (t.dtype !== 'DT_FLOAT') {
    throw invalidArgument(`Expected output Tensor of DT_FLOAT.  Got: ${dataTypeName(dtypeNumber[t.dtype])}`);
  }
  const values = t.data as Float32Array;
  if (values.length !== n) throw invalidArgument(`Expected output batch size to be ${n}.  Got: ${values.length}`);
  return { regressions: Array.from(values) };
}

/**
 * The generic classify/regress path for any runtime whose signature has the classify or regress
 * method: serialized tf.Examples in, TF Serving's result out. Usable by other front ends (e.g. REST's
 * JSON examples, once serialized).
 */
export async function classifyExamples(
  runtime: Runtime,
  signatureName: string,
  examples: Uint8Array[],
  ctx: CallContext = { version: undefined, deadline: undefined },
): Promise<ClassificationResult> {
  const { sigName, signature } = inferenceSignature(runtime, signatureName);
  const plan = preProcess(signature, CLASSIFY_METHOD);
  if (examples.length === 0) throw invalidArgument('Input is empty.');
  const out = await runOnExamples(runtime, sigName, signature, plan, examples, ctx);
  return classificationResult(out, examples.length);
}

/** As `classifyExamples`, for regress signatures. */
export async function regressExamples(
  runtime: Runtime,
  signatureName: string,
  examples: Uint8Array[],
  ctx: CallContext = { version: undefined, deadline: undefined },
): Promise<RegressionResult> {
  const { sigName, signature } = inferenceSignature(runtime, signatureName);
  const plan = preProcess(signature, REGRESS_METHOD);
  if (examples.length === 0) throw invalidArgument('Input is empty.');
  const out = await runOnExamples(runtime, sigName, signature, plan, examples, ctx);
  return regressionResult(out, examples.length);
}

function inferenceSignature(runtime: Runtime, signatureName: string): { sigName: string; signature: SignatureDef } {
  const sigName = signatureName || DEFAULT_SIGNATURE;
  const signature = findSignature(runtime, sigName);
  if (!signature) throw invalidArgument(`No signature was found with the name: ${sigName}`);
  return { sigName, signature };
}

function writeClassificationResult(w: protobuf.Writer, result: ClassificationResult): void {
  for (const row of result.classifications) {
    w.uint32((1 << 3) | WT_BYTES).fork();
    for (const cls of row.classes) {
      w.uint32((1 << 3) | WT_BYTES).fork();
      if (cls.label && cls.label.length > 0) w.uint32((1 << 3) | WT_BYTES).bytes(cls.label);
      if (cls.score !== undefined && !Object.is(cls.score, 0)) w.uint32((2 << 3) | WT_FIXED32).float(cls.score);
      w.ldelim();
    }
    w.ldelim();
  }
}

function writeRegressionResult(w: protobuf.Writer, result: RegressionResult): void {
  for (const value of result.regressions) {
    w.uint32((1 << 3) | WT_BYTES).fork();
    if (!Object.is(value, 0)) w.uint32((1 << 3) | WT_FIXED32).float(value);
    w.ldelim();
  }
}

async function classifyOrRegress(runtime: Runtime, body: Uint8Array, ctx: CallContext, method: string): Promise<Uint8Array> {
  const what = method === CLASSIFY_METHOD ? 'ClassificationRequest' : 'RegressionRequest';
  const request = parse(what, () => readInferenceRequest(body));
  const examples = parse('Input', () => serializedExamples(request.input));
  const sigName = request.spec.signatureName;
  const w = protobuf.Writer.create();
  w.uint32((1 << 3) | WT_BYTES).fork();
  if (method === CLASSIFY_METHOD) {
    writeClassificationResult(w, await classifyExamples(runtime, sigName, examples, ctx));
  } else {
    writeRegressionResult(w, await regressExamples(runtime, sigName, examples, ctx));
  }
  w.ldelim();
  writeModelSpec(w, 2, request.spec.name, sigName, ctx);
  return w.finish();
}

interface TaskView {
  spec: SpecFields;
  method: string;
}

function readMultiInferenceRequest(body: Uint8Array): { tasks: TaskView[]; input: Uint8Array | undefined } {
  const tasks: TaskView[] = [];
  const inputs: Uint8Array[] = [];
  const r = protobuf.Reader.create(body);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | WT_BYTES)) {
      const task: TaskView = { spec: { name: '', signatureName: '' }, method: '' };
      const t = protobuf.Reader.create(r.bytes());
      while (t.pos < t.len) {
        const ttag = t.uint32();
        if (ttag === ((1 << 3) | WT_BYTES)) readModelSpec(t.bytes(), task.spec);
        else if (ttag === ((2 << 3) | WT_BYTES)) task.method = t.string();
        else t.skipType(ttag & 7);
      }
      tasks.push(task);
    } else if (tag === ((2 << 3) | WT_BYTES)) {
      inputs.push(r.bytes());
    } else {
      r.skipType(tag & 7);
    }
  }
  return { tasks, input: inputs.length === 0 ? undefined : Buffer.concat(inputs) };
}

/** TF Serving's TensorFlowMultiInferenceRunner::Infer: validate every task, run once per signature. */
async function multiInference(runtime: Runtime, body: Uint8Array, ctx: CallContext): Promise<Uint8Array> {
  const request = parse('MultiInferenceRequest', () => readMultiInferenceRequest(body));
  let modelName = '';
  const seen = new Set<string>();
  const plans = new Map<string, { signature: SignatureDef; plan: { input: string; outputs: string[] } }>();
  for (const task of request.tasks) {
    if (!task.spec.name) throw invalidArgument('Found ModelSpec with an empty model name.');
    if (!modelName) modelName = task.spec.name;
    else if (modelName !== task.spec.name) {
      throw invalidArgument('All ModelSpecs in a MultiInferenceRequest must access the same model name.');
    }
    const sigName = task.spec.signatureName || DEFAULT_SIGNATURE;
    if (seen.has(sigName)) throw invalidArgument(`Duplicate evaluation of signature: ${sigName}`);
    seen.add(sigName);
    const signature = findSignature(runtime, sigName);
    if (!signature) throw invalidArgument(`Requested signature not found in model graph: ${sigName}`);
    if (task.method !== CLASSIFY_METHOD && task.method !== REGRESS_METHOD) {
      throw new ServingError(Code.UNIMPLEMENTED, `Unsupported signature method_name: ${task.method}`);
    }
    plans.set(sigName, { signature, plan: preProcess(signature, task.method) });
  }
  const examples = parse('Input', () => serializedExamples(request.input));
  if (examples.length === 0) throw invalidArgument('Input is empty.');

  const outputs = new Map<string, Record<string, Tensor>>();
  for (const [sigName, { signature, plan }] of plans) {
    outputs.set(sigName, await runOnExamples(runtime, sigName, signature, plan, examples, ctx));
  }
  const w = protobuf.Writer.create();
  for (const task of request.tasks) {
    const sigName = task.spec.signatureName || DEFAULT_SIGNATURE;
    const out = outputs.get(sigName) as Record<string, Tensor>;
    w.uint32((1 << 3) | WT_BYTES).fork();
    writeModelSpec(w, 1, task.spec.name, task.spec.signatureName, ctx);
    if (task.method === CLASSIFY_METHOD) {
      w.uint32((2 << 3) | WT_BYTES).fork();
      writeClassificationResult(w, classificationResult(out, examples.length));
    } else {
      w.uint32((3 << 3) | WT_BYTES).fork();
      writeRegressionResult(w, regressionResult(out, examples.length));
    }
    w.ldelim();
    w.ldelim();
  }
  return w.finish();
}

// ---------------------------------------------------------------------------------------------
// SignatureDef::DebugString (protobuf text format), for TF's classify/regress messages

function textString(s: string): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    if (byte === 0x22) out += '\\"';
    else if (byte === 0x27) out += "\\'";
    else if (byte === 0x5c) out += '\\\\';
    else if (byte === 0x0a) out += '\\n';
    else if (byte === 0x0d) out += '\\r';
    else if (byte === 0x09) out += '\\t';
    else if (byte < 0x20 || byte >= 0x7f) out += `\\${byte.toString(8).padStart(3, '0')}`;
    else out += String.fromCharCode(byte);
  }
  return `"${out}"`;
}

function tensorInfoText(info: TensorInfo, indent: string): string {
  const i2 = `${indent}  `;
  let out = `${indent}name: ${textString(info.name)}\n${indent}dtype: ${info.dtype}\n${indent}tensor_shape {\n`;
  if (info.shape === null) {
    out += `${i2}unknown_rank: true\n`;
  } else {
    for (const d of info.shape) out += d === 0 ? `${i2}dim {\n${i2}}\n` : `${i2}dim {\n${i2}  size: ${d}\n${i2}}\n`;
  }
  return `${out}${indent}}\n`;
}

/** A SignatureDef as C++ `DebugString()` prints it (map entries sorted by key). */
export function signatureDebugString(signature: SignatureDef): string {
  let out = '';
  for (const side of ['inputs', 'outputs'] as const) {
    for (const alias of sortedKeys(signature[side])) {
      out += `${side} {\n  key: ${textString(alias)}\n  value {\n`;
      out += tensorInfoText(signature[side][alias] as TensorInfo, '    ');
      out += '  }\n}\n';
    }
  }
  if (signature.methodName) out += `method_name: ${textString(signature.methodName)}\n`;
  return out;
}
