/**
 * A Runtime whose engine runs on its own thread (node:worker_threads), so that CPU-bound model
 * execution never blocks the worker process's event loop (the gateway's health checks, other
 * connections, timers).
 *
 * The thread (runtime-thread.ts) imports `spec.module`, calls its `spec.factory(spec.args)` to load
 * any Runtime, and then owns it: its state (e.g. variables) lives there across calls. This side is
 * a proxy with the same interface: signatures and backends arrive with the thread's `ready`
 * message; `run` posts the inputs (structured clone: typed arrays are copied, the caller keeps its
 * own) and resolves with the outputs (their buffers transferred back, not copied).
 *
 * Order: the thread runs requests one at a time in the order they were posted, so calls to a
 * stateful signature see each other's effects in call order.
 *
 * A thread may be started ahead of its model (`prestartThread`): it imports the runtime's module
 * while the process is still starting, and loads the model when `load` names it.
 *
 * If the thread dies while the runtime is open, pending and later calls fail with UNAVAILABLE and
 * `onExit` is called (the worker process exits so its supervisor restarts it).
 */
import { Worker } from 'node:worker_threads';
import { Code, ServingError } from '../../common/errors.js';
import type { SignatureDef, Tensor } from '../codec/tensor.js';
import type { Runtime } from './runtime.js';

export interface ThreadedRuntimeSpec {
  /** `file:` URL of the module that exports the factory. */
  module: string;
  /** Name of the exported `(args) => Promise<Runtime>` factory. */
  factory: string;
  /** Structured-cloneable arguments for the factory. */
  args: unknown;
}

export interface ThreadedRuntimeOptions {
  /** Called once if the thread ends while the runtime is open (not after `close()`). */
  onExit?: (err: Error) => void;
}

export interface SerializedError {
  name: string;
  message: string;
  code?: number;
}

export type ToThread =
  | { type: 'load'; spec: ThreadedRuntimeSpec }
  | { type: 'run'; id: number; signature: string; inputs: Record<string, Tensor>; outputs?: readonly string[] }
  | { type: 'close' };

export type FromThread =
  | { type: 'ready'; signatures: Record<string, SignatureDef>; backends: Record<string, string>; info: Record<string, unknown> }
  | { type: 'failed'; error: SerializedError }
  | { type: 'result'; id: number; outputs: Record<string, Tensor> }
  | { type: 'error'; id: number; error: SerializedError }
  | { type: 'closed' };

export function serializeError(err: unknown): SerializedError {
  if (err instanceof ServingError) return { name: err.name, message: err.message, code: err.code };
  if (err instanceof Error) return { name: err.name, message: err.message };
  return { name: 'Error', message: String(err) };
}

export function deserializeError(e: SerializedError): Error {
  if (e.code !== undefined) return new ServingError(e.code as ServingError['code'], e.message);
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}

const THREAD_ENTRY = new URL('./runtime-thread.js', import.meta.url);

/** What a prestarted thread is given: the module to import now; the spec comes with a `load` message. */
export interface ThreadPreload {
  preload: string;
}

/** Threads started ahead of their model, by module URL: each has imported (or is importing) it. */
const prestarted = new Map<string, { worker: Worker; exited: boolean }>();

/**
 * Starts a model thread that imports `module` (and runs its `prewarm` export, if any) before any
 * model is named, so that work overlaps whatever the process does meanwhile (its own imports,
 * flags, sockets). The next `ThreadedRuntime.load` of a spec with this module takes the thread over.
 * The thread does not keep the process alive until it is taken.
 */
export function prestartThread(module: string): void {
  if (prestarted.has(module)) return;
  const entry = { worker: new Worker(THREAD_ENTRY, { workerData: { preload: module } satisfies ThreadPreload }), exited: false };
  entry.worker.unref();
  entry.worker.once('error', () => {}); // a failed prestart only means the load starts a fresh thread
  entry.worker.once('exit', () => {
    entry.exited = true;
  });
  prestarted.set(module, entry);
}

/** Modules with a prestarted thread not yet taken by a load (for tests and diagnostics). */
export function prestartedModules(): string[] {
  return [...prestarted.keys()];
}

/** The prestarted thread for `spec.module`, told to load `spec`; or a new thread for it. */
function threadFor(spec: ThreadedRuntimeSpec): Worker {
  const entry = prestarted.get(spec.module);
  prestarted.delete(spec.module);
  if (entry && !entry.exited) {
    entry.worker.ref();
    entry.worker.postMessage({ type: 'load', spec } satisfies ToThread);
    return entry.worker;
  }
  return new Worker(THREAD_ENTRY, { workerData: spec });
}

interface Pending {
  resolve: (outputs: Record<string, Tensor>) => void;
  reject: (err: Error) => void;
}

export class ThreadedRuntime implements Runtime {
  readonly signatures: Record<string, SignatureDef>;
  readonly backends: Record<string, string>;
  /** Whatever the loaded runtime reports about itself (e.g. why signatures are not compiled). */
  readonly info: Record<string, unknown>;
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #nextId = 0;
  #dead: Error | undefined;
  #closing: Promise<void> | undefined;

  private constructor(worker: Worker, ready: Extract<FromThread, { type: 'ready' }>, options: ThreadedRuntimeOptions) {
    this.#worker = worker;
    this.signatures = ready.signatures;
    this.backends = ready.backends;
    this.info = ready.info;
    worker.on('message', (msg: FromThread) => {
      if (msg.type !== 'result' && msg.type !== 'error') return;
      const p = this.#pending.get(msg.id);
      if (!p) return;
      this.#pending.delete(msg.id);
      if (msg.type === 'result') p.resolve(msg.outputs);
      else p.reject(deserializeError(msg.error));
    });
    const died = (err: Error) => {
      if (this.#dead) return;
      this.#dead = err;
      for (const p of this.#pending.values()) p.reject(new ServingError(Code.UNAVAILABLE, err.message));
      this.#pending.clear();
      if (!this.#closing) options.onExit?.(err);
    };
    worker.on('error', (err) => died(new Error(`The model thread failed: ${err.message}`)));
    worker.on('exit', (code) => died(new Error(`The model thread exited (code ${code})`)));
  }

  /** Starts the thread and loads the runtime in it; rejects with the load's own error. */
  static load(spec: ThreadedRuntimeSpec, options: ThreadedRuntimeOptions = {}): Promise<ThreadedRuntime> {
    const worker = threadFor(spec);
    return new Promise<ThreadedRuntime>((resolve, reject) => {
      const cleanup = () => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      const onMessage = (msg: FromThread) => {
        if (msg.type === 'ready') {
          cleanup();
          resolve(new ThreadedRuntime(worker, msg, options));
        } else if (msg.type === 'failed') {
          cleanup();
          void worker.terminate();
          reject(deserializeError(msg.error));
        }
      };
      const onError = (err: Error) => {
        cleanup();
        void worker.terminate();
        reject(new ServingError(Code.INTERNAL, `The model thread failed while loading: ${err.message}`));
      };
      const onExit = (code: number) => {
        cleanup();
        reject(new ServingError(Code.INTERNAL, `The model thread exited while loading (code ${code})`));
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
  }

  run(signature: string, inputs: Record<string, Tensor>, outputs?: readonly string[]): Promise<Record<string, Tensor>> {
    if (this.#dead || this.#closing) {
      return Promise.reject(new ServingError(Code.UNAVAILABLE, this.#dead?.message ?? 'The model has been unloaded'));
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      const msg: ToThread = { type: 'run', id, signature, inputs, outputs };
      try {
        this.#worker.postMessage(msg);
      } catch (err) {
        this.#pending.delete(id);
        reject(new ServingError(Code.INTERNAL, `Could not pass the request to the model thread: ${(err as Error).message}`));
      }
    });
  }

  /** Waits for queued runs, closes the runtime in the thread, and ends the thread. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      if (this.#dead) {
        resolve();
        return;
      }
      const timer = setTimeout(() => void this.#worker.terminate(), 30_000);
      timer.unref();
      this.#worker.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      this.#worker.postMessage({ type: 'close' } satisfies ToThread);
    });
    return this.#closing;
  }
}
