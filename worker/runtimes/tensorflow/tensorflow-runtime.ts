/**
 * The `tensorflow` platform: a SavedModel version folder run by our own TypeScript interpreter
 * (no TensorFlow library). Loading follows TF's SavedModel loader:
 *
 *   1. read `saved_model.pb`, select the MetaGraph by tags (default {"serve"});
 *   2. check every signature, the restore op and the init op only use ops we implement — otherwise
 *      the load fails with UNIMPLEMENTED naming the op and node;
 *   3. restore variables by running the graph's own restore op (`saver_def.restore_op_name`) with
 *      `saver_def.filename_tensor_name` fed `<dir>/variables/variables`, plus the asset feeds;
 *   4. run the init op (`__saved_model_init_op` / `saved_model_main_op` / `legacy_init_op`) with the
 *      asset paths fed.
 *
 * A run feeds the signature's input tensors and fetches its output tensors; variables persist
 * across runs (stateful signatures such as a counter work).
 *
 * With `fastPath`, each signature without state and without strings is also frozen, compiled to
 * ONNX and run on onnxruntime once it agreed with the interpreter on probe batches (fast-path.ts);
 * `backends` says which engine runs each signature and `fastPathReport` why one stays on the
 * interpreter. A compiled run that onnxruntime rejects (e.g. a shape the graph cannot take) is
 * retried on the interpreter, which gives TF's answer or TF's error.
 *
 * Everything here is synchronous CPU work or onnxruntime's synchronous native run: the worker runs
 * it on its own thread (threaded-runtime.ts).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Code, ServingError, failedPrecondition, invalidArgument } from '../../../common/errors.js';
import { dtypeString, type SignatureDef, type Tensor } from '../../codec/tensor.js';
import { findSignature, type Runtime, type RuntimeOptions } from '../runtime.js';
import { compileSignature, fromOrtTensor, ONNX_BACKEND, toOrtTensor, type CompiledSignature } from './fast-path.js';
import { VARIABLE_OPS, WRITE_OPS } from './freeze.js';
import { Interpreter } from './interpreter.js';
import { assetFeeds, convertSignatures, DEFAULT_TAGS, initOpName, readMetaGraph } from './saved-model.js';
import { toTensor, type TfTensor } from './tf-tensor.js';

export const INTERPRETER_BACKEND = 'interpreter';

const enc = new TextEncoder();

function stringScalar(s: string): TfTensor {
  return { dtype: 'DT_STRING', shape: [], data: [enc.encode(s)] };
}

function copyTensor(t: Tensor): Tensor {
  const data = Array.isArray(t.data) ? t.data.map((b) => b.slice()) : t.data.slice();
  return { dtype: t.dtype, shape: t.shape.slice(), data: data as Tensor['data'] };
}

export interface TensorFlowLoadOptions extends RuntimeOptions {
  /** MetaGraph tag set to load; default ["serve"]. */
  tags?: string[];
  /** Compile signatures without state to ONNX (default false: everything on the interpreter). */
  fastPath?: boolean;
  /** Keep the compiled ONNX bytes for `onnxModel()` (benchmarks); by default only the session keeps the weights. */
  keepOnnxModels?: boolean;
  /** Receives one line per signature about its backend (and why it is not compiled). */
  log?: (message: string, fields: Record<string, unknown>) => void;
}

export class TensorFlowRuntime implements Runtime {
  readonly signatures: Record<string, SignatureDef>;
  readonly backends: Record<string, string>;
  /** Signatures present in the SavedModel that cannot be served, with the reason. */
  readonly skippedSignatures: Record<string, string>;
  /** The TensorFlow version that wrote the MetaGraph (informational). */
  readonly tensorflowVersion: string;
  /** For signatures left on the interpreter while the fast path was on: why. */
  readonly fastPathReport: Record<string, string> = {};
  #interpreter: Interpreter | undefined;
  readonly #compiled = new Map<string, CompiledSignature>();

  private constructor(interpreter: Interpreter, signatures: Record<string, SignatureDef>, skipped: Record<string, string>, tfVersion: string) {
    this.#interpreter = interpreter;
    this.signatures = signatures;
    this.skippedSignatures = skipped;
    this.tensorflowVersion = tfVersion;
    this.backends = Object.fromEntries(Object.keys(signatures).map((k) => [k, INTERPRETER_BACKEND]));
  }

  /** What a load found out, for logs (sent along by the threaded runtime). */
  get info(): Record<string, unknown> {
    return { fastPathReport: this.fastPathReport, skippedSignatures: this.skippedSignatures, tensorflowVersion: this.tensorflowVersion };
  }

  /** The compiled ONNX model of a signature on the fast path (loaded with `keepOnnxModels`). */
  onnxModel(signature: string): Uint8Array | undefined {
    return this.#compiled.get(signature)?.model;
  }

  /** Compiles every signature that has no state and no strings (see fast-path.ts). */
  async #compileSignatures(options: TensorFlowLoadOptions): Promise<void> {
    const interpreter = this.#interpreter!;
    const reach = new Map<string, Array<{ op: string; node: string; where: string }>>();
    for (const [key, sig] of Object.entries(this.signatures)) {
      reach.set(key, interpreter.reachableNodes(Object.values(sig.inputs).map((i) => i.name), Object.values(sig.outputs).map((o) => o.name)));
    }
    const writers = [...reach].filter(([, nodes]) => nodes.some((n) => WRITE_OPS.has(n.op))).map(([key]) => key);
    for (const [key, sig] of Object.entries(this.signatures)) {
      const nodes = reach.get(key)!;
      const write = nodes.find((n) => WRITE_OPS.has(n.op));
      let reason: string | undefined;
      if (write) {
        reason = `it has state: it writes variables (${write.op} node '${write.node}' in ${write.where})`;
      } else if (writers.length > 0 && nodes.some((n) => VARIABLE_OPS.has(n.op))) {
        reason = `it reads variables that signature '${writers[0]}' writes`;
      } else {
        const result = await compileSignature(interpreter, key, sig, options);
        if (result.compiled) {
          if (!options.keepOnnxModels) result.compiled.model = undefined;
          this.#compiled.set(key, result.compiled);
          this.backends[key] = ONNX_BACKEND;
        }
        reason = result.reason;
      }
      if (reason) this.fastPathReport[key] = reason;
      options.log?.(
        reason ? `Signature '${key}' runs on the interpreter: ${reason}` : `Signature '${key}' runs on onnxruntime (compiled from the frozen graph)`,
        { signature: key, backend: this.backends[key], ...(reason ? { reason } : {}) },
      );
    }
  }

  static async load(versionDir: string, options: TensorFlowLoadOptions): Promise<TensorFlowRuntime> {
    const tags = options.tags && options.tags.length > 0 ? options.tags : DEFAULT_TAGS;
    const mg = readMetaGraph(versionDir, tags);
    const interpreter = new Interpreter(mg.graph_def ?? {}, mg.meta_info_def?.stripped_op_list?.op ?? []);
    const { signatures, skipped } = convertSignatures(mg);

    const assets = new Map<string, TfTensor>();
    for (const [name, file] of assetFeeds(mg, versionDir)) assets.set(name, stringScalar(file));
    const prefix = path.join(versionDir, 'variables', 'variables');
    const saver = mg.saver_def;
    const restore = existsSync(`${prefix}.index`) && saver?.restore_op_name ? saver : undefined;
    const initOp = initOpName(mg);

    // Check everything we will run before doing any work.
    for (const [key, sig] of Object.entries(signatures)) {
      try {
        interpreter.prepare(
          Object.values(sig.inputs).map((i) => i.name),
          Object.values(sig.outputs).map((o) => o.name),
          [],
        );
      } catch (err) {
        throw prefixed(err, `Signature '${key}': `);
      }
    }
    const restoreFeeds = new Map(assets);
    if (restore) {
      if (!restore.filename_tensor_name) throw new ServingError(Code.INVALID_ARGUMENT, 'The SavedModel saver has no filename tensor');
      restoreFeeds.set(restore.filename_tensor_name, stringScalar(prefix));
      interpreter.prepare([...restoreFeeds.keys()], [], [restore.restore_op_name!]);
    }
    if (initOp) interpreter.prepare([...assets.keys()], [], [initOp]);

    if (restore) {
      try {
        interpreter.run(restoreFeeds, [], [restore.restore_op_name!]);
      } catch (err) {
        throw prefixed(err, `Restoring variables from ${prefix} failed: `);
      } finally {
        interpreter.releaseCheckpoints();
      }
    }
    if (initOp) {
      try {
        interpreter.run(assets, [], [initOp]);
      } catch (err) {
        throw prefixed(err, `Running the init op '${initOp}' failed: `);
      }
    }
    const runtime = new TensorFlowRuntime(interpreter, signatures, skipped, mg.meta_info_def?.tensorflow_version ?? '');
    if (options.fastPath) await runtime.#compileSignatures(options);
    return runtime;
  }

  async run(signatureName: string, inputs: Record<string, Tensor>, outputs?: readonly string[]): Promise<Record<string, Tensor>> {
    const interpreter = this.#interpreter;
    if (!interpreter) throw new ServingError(Code.UNAVAILABLE, 'The model has been unloaded');
    const sig = findSignature(this, signatureName);
    if (!sig) throw failedPrecondition(`Serving signature key "${signatureName}" not found.`);
    const feeds = new Map<string, TfTensor>();
    let i = 0;
    for (const [alias, tensor] of Object.entries(inputs)) {
      const info = sig.inputs[alias];
      if (!info) {
        throw invalidArgument(`input tensor alias not found in signature: ${alias}. Inputs expected to be in the set {${Object.keys(sig.inputs).join(',')}}.`);
      }
      if (tensor.dtype !== info.dtype) {
        throw invalidArgument(`Expects arg[${i}] to be ${dtypeString[info.dtype]} but ${dtypeString[tensor.dtype]} is provided`);
      }
      feeds.set(info.name, tensor as TfTensor);
      i++;
    }
    const aliases = outputs ?? Object.keys(sig.outputs);
    const fetches = aliases.map((alias) => {
      const info = sig.outputs[alias];
      if (!info) {
        throw invalidArgument(`output tensor alias not found in signature: ${alias} Outputs expected to be in the set {${Object.keys(sig.outputs).join(',')}}.`);
      }
      return info.name;
    });
    const compiled = this.#compiled.get(signatureName);
    if (compiled && feeds.size === compiled.inputs.size) {
      const result = await this.#runCompiled(compiled, sig, inputs, aliases);
      if (result) return result;
    }
    const values = interpreter.run(feeds, fetches);
    const out: Record<string, Tensor> = {};
    aliases.forEach((alias, k) => {
      let t: Tensor;
      try {
        t = toTensor(values[k]!, `output '${alias}'`);
      } catch (err) {
        throw new ServingError(Code.UNIMPLEMENTED, (err as Error).message);
      }
      out[alias] = copyTensor(t);
    });
    return out;
  }

  /** A run on onnxruntime; undefined when onnxruntime refuses it (the interpreter then runs it). */
  async #runCompiled(compiled: CompiledSignature, sig: SignatureDef, inputs: Record<string, Tensor>, aliases: readonly string[]): Promise<Record<string, Tensor> | undefined> {
    const names = aliases.map((a) => compiled.outputs.get(a)!);
    let result: Awaited<ReturnType<typeof compiled.session.run>>;
    try {
      const feeds: Record<string, ReturnType<typeof toOrtTensor>> = {};
      for (const [alias, t] of Object.entries(inputs)) feeds[compiled.inputs.get(alias)!] = toOrtTensor(t);
      result = await compiled.session.run(feeds, names);
    } catch {
      return undefined;
    }
    const out: Record<string, Tensor> = {};
    aliases.forEach((alias, i) => {
      out[alias] = fromOrtTensor(result[names[i]!] as Parameters<typeof fromOrtTensor>[0], sig.outputs[alias]!.dtype);
    });
    return out;
  }

  /**
   * Fetches arbitrary graph tensors (variables are read, nothing is fed). For diagnostics and tests,
   * e.g. to check what the init op assigned; not part of the serving API.
   */
  async inspect(tensorNames: string[], feeds: Record<string, Tensor> = {}): Promise<Tensor[]> {
    const interpreter = this.#interpreter;
    if (!interpreter) throw new ServingError(Code.UNAVAILABLE, 'The model has been unloaded');
    const values = interpreter.run(new Map(Object.entries(feeds) as Array<[string, TfTensor]>), tensorNames);
    return values.map((v, i) => copyTensor(toTensor(v, tensorNames[i]!)));
  }

  async close(): Promise<void> {
    this.#interpreter?.releaseCheckpoints();
    this.#interpreter = undefined;
    const sessions = [...this.#compiled.values()].map((c) => c.session);
    this.#compiled.clear();
    await Promise.allSettled(sessions.map((s) => s.release()));
  }
}

function prefixed(err: unknown, prefix: string): ServingError {
  if (err instanceof ServingError) return new ServingError(err.code, prefix + err.message);
  return new ServingError(Code.INTERNAL, prefix + (err instanceof Error ? err.message : String(err)));
}
