/**
 * What a worker needs from a model runtime: its signatures, and a way to run one.
 * A runtime owns its engine's tensors; at this boundary everything is our `Tensor`.
 */
import type { SignatureDef, Tensor } from '../codec/tensor.js';

export interface Runtime {
  /** Signature name → definition, fixed after load. */
  readonly signatures: Record<string, SignatureDef>;
  /** Which engine runs each signature (e.g. `onnxruntime`), for metadata and logs. */
  readonly backends: Record<string, string>;
  /**
   * Runs a signature. `inputs` are keyed by signature input alias and already match the
   * signature's dtypes; the result is keyed by output alias (only `outputs`, when given).
   */
  run(signature: string, inputs: Record<string, Tensor>, outputs?: readonly string[], ctx?: RunContext): Promise<Record<string, Tensor>>;
  /**
   * Throws the ServingError `run` would raise for inputs the engine cannot take as they are (checked
   * by `run` too). Batching calls it before queueing, so one bad request fails alone, not its batch.
   */
  checkInputs?(signature: string, inputs: Record<string, Tensor>): void;
  close(): Promise<void>;
}

/**
 * What a run knows of its request: a runtime that queues work (the batch scheduler) drops a task whose
 * client has gone (`cancelled`, set by a CANCEL frame) or whose deadline (epoch ms) has passed before
 * it starts, instead of computing an answer nobody waits for.
 */
export interface RunContext {
  readonly cancelled?: boolean | undefined;
  readonly deadline?: number | undefined;
}

/**
 * A signature by a name the client chose. An own-property lookup: a plain `signatures[name]` would
 * answer `toString`, `constructor` or `__proto__` with Object.prototype's members.
 */
export function findSignature(runtime: Pick<Runtime, 'signatures'>, name: string): SignatureDef | undefined {
  return Object.hasOwn(runtime.signatures, name) ? runtime.signatures[name] : undefined;
}

export interface RuntimeOptions {
  /** Threads for one op; 0 lets the engine choose. */
  intraOpThreads: number;
  interOpThreads: number;
}
