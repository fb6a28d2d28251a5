/**
 * One local worker process serving one model version, and the channel (worker protocol) the gateway
 * uses to reach it.
 *
 * Lifecycle: `start()` forks `worker/main.js`, which loads the model and listens on a Unix socket in
 * this gateway's run directory; it resolves when the worker reports ready (or rejects on failure, exit
 * or the load timeout). `stop()` sends SIGTERM and waits for the exit, escalating to SIGKILL after
 * the deadline. An exit that nobody asked for is emitted as `'exit'` so the supervisor can react.
 *
 * `inFlight` counts requests the gateway has sent and not yet finished; the router picks the replica
 * with the fewest, and draining waits for it to reach zero.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Code, ServingError } from '../../common/errors.js';
import type { Platform } from '../config/model-config.js';
import { Kind, workerArgs, type AssignMessage, type WorkerMessage } from '../../common/worker-protocol.js';
import type { SignatureDef } from '../../common/signature.js';
import type { BatchingOptions } from '../../common/batching-parameters.js';
import { WorkerChannel } from './worker-channel.js';

const WORKER_MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../worker/main.js');

/**
 * V8 flags of workers that are one of many (`smallHeap`, with --load_on_demand). A worker's heap is
 * small and short-lived per request, so the young generation is capped at 1 MB semi-spaces (V8's
 * default grows them to 16 MB after traffic, memory each idle worker then keeps). The old generation is
 * left at V8's default so big requests (a 4000×784 float tensor as JSON) still fit. Measured with 10
 * workers of a tiny ONNX model: idle, 24 → 23 MB PSS each; after 100 predicts of 4,000 floats each,
 * 38.6 → 32.6 MB, and 24.5 MB after 15 s idle (V8's memory reducer gives the rest back on its own).
 * The cap costs throughput under load (more scavenges: in bench/serving.ts a worker's CPU per request
 * rose 21 → 25 µs for tiny REST, 20 → 34 µs for tiny gRPC, 67 → 105 µs for the batched 784-1024-1024-10
 * MLP), so eagerly loaded workers, which serve the traffic of few models, keep V8's defaults.
 */
export const SMALL_HEAP_EXEC_ARGV: readonly string[] = ['--max-semi-space-size=1'];

const HEALTH_INTERVAL_MS = 250;
const HEALTH_TIMEOUT_MS = 500;
const HEALTH_FAILURES = 2;
/**
 * How long a worker may go without answering a health check before it counts as hung. Not shorter:
 * a worker's thread busy with one large request (parsing megabytes of JSON, say) answers nothing
 * meanwhile, and killing it would fail every request it holds (the fuzz run saw exactly that with
 * 2 × 500 ms). A stopped or deadlocked worker is still replaced within a few seconds.
 */
const HUNG_AFTER_MS = 3000;
const EMPTY = new Uint8Array(0);

let runDir: string | undefined;
let socketCounter = 0;

/** A private directory for this gateway's worker sockets, removed when the process exits. */
function socketPath(): string {
  if (!runDir) {
    runDir = mkdtempSync(path.join(os.tmpdir(), 'modelgate-'));
    const dir = runDir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return path.join(runDir, `w${++socketCounter}.sock`);
}

export interface WorkerSpec {
  model: string;
  version: number;
  platform: Platform;
  versionPath: string;
  /** A standby worker (--load_on_demand): no model yet; `reassign` gives it one. */
  standby?: boolean;
}

export interface WorkerOptions {
  loadTimeoutMs: number;
  /** Run with a small young generation (many workers, little traffic each: --load_on_demand). */
  smallHeap?: boolean;
  /** Deadline for in-flight requests when stopping, before the worker is killed. */
  drainTimeoutMs: number;
  intraOpThreads: number;
  /** Multiplexed connections the gateway keeps to this worker (--worker_connections). */
  connections: number;
  /** --saved_model_tags, comma-separated. */
  savedModelTags: string;
  /** --enable_signature_method_name_check */
  methodNameCheck: boolean;
  /** Input limits the worker enforces (--max_json_depth, --max_tensor_elements, --max_b64_bytes, --max_request_bytes). */
  limits?: { maxJsonDepth: number; maxTensorElements: number; maxB64Bytes: number; maxBodyBytes: number };
  /** --enable_batching: the resolved batching parameters, and whether version folders may override them. */
  batching?: { options: BatchingOptions; perModel: boolean };
}

export interface ReadyInfo {
  signatures: Record<string, SignatureDef>;
  backends: Record<string, string>;
  loadMillis: number;
}

export class WorkerProcess extends EventEmitter {
  readonly spec: WorkerSpec;
  readonly socketPath: string;
  inFlight = 0;
  #child: ChildProcess | undefined;
  #channel: WorkerChannel | undefined;
  #stopping = false;
  #healthTimer: NodeJS.Timeout | undefined;
  #healthFailures = 0;
  #lastHealthy = 0;
  readonly #options: WorkerOptions;

  constructor(spec: WorkerSpec, options: WorkerOptions) {
    super();
    this.spec = spec;
    this.#options = options;
    this.socketPath = socketPath();
  }

  get channel(): WorkerChannel {
    if (!this.#channel) throw new ServingError(Code.UNAVAILABLE, 'worker is not ready');
    return this.#channel;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  start(): Promise<ReadyInfo> {
    const { spec } = this;
    const o = this.#options;
    const adopted = this.#adopted;
    if (adopted) {
      this.#adopted = undefined;
      this.#reused = true;
      const ready = this.#attach(adopted);
      const assign: AssignMessage = {
        type: 'assign',
        model_name: spec.model,
        model_version: spec.version,
        version_path: spec.versionPath,
        socket_path: this.socketPath,
      };
      adopted.send(assign);
      return ready;
    }
    const child = fork(
      WORKER_MAIN,
      workerArgs({
        model_name: spec.model,
        model_version: spec.version,
        model_platform: spec.platform,
        version_path: spec.versionPath,
        socket_path: this.socketPath,
        ...(spec.standby ? { standby: true } : {}),
        intra_op_threads: o.intraOpThreads,
        drain_timeout_ms: o.drainTimeoutMs,
        saved_model_tags: o.savedModelTags,
        enable_signature_method_name_check: o.methodNameCheck,
        ...(o.limits
          ? {
              max_json_depth: o.limits.maxJsonDepth,
              max_tensor_elements: o.limits.maxTensorElements,
              max_b64_bytes: o.limits.maxB64Bytes,
              max_body_bytes: o.limits.maxBodyBytes,
            }
          : {}),
        ...(o.batching
          ? {
              enable_batching: true,
              batching_options: o.batching.options,
              enable_per_model_batching_parameters: o.batching.perModel,
            }
          : {}),
      }),
      { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced', execArgv: [...process.execArgv, ...(o.smallHeap ? SMALL_HEAP_EXEC_ARGV : [])] },
    );
    return this.#attach(child);
  }

  /**
   * Hands this worker's process over to another model version (ONNX only; the manager calls it for
   * an evicted version with nothing in flight): this object lets go of the process without stopping
   * it, and the returned one tells it to serve `spec` on a new socket. `start()` on the result
   * resolves when the process reports ready with the new model. Skips a process start (about 0.3 s
   * of CPU) per load under --max_loaded_versions.
   */
  reassign(spec: WorkerSpec): WorkerProcess {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null || this.#stopping) {
      return new WorkerProcess(spec, this.#options);
    }
    this.#stopping = true;
    clearInterval(this.#healthTimer);
    child.removeAllListeners('message');
    child.removeAllListeners('exit');
    this.#channel?.close();
    this.#channel = undefined;
    this.#child = undefined;
    const next = new WorkerProcess(spec, this.#options);
    next.#adopted = child;
    return next;
  }

  #adopted: ChildProcess | undefined;

  /** For a process taken over with `reassign`: whether it reuses a running process. */
  get reused(): boolean {
    return this.#adopted !== undefined || this.#reused;
  }
  #reused = false;

  #attach(child: ChildProcess): Promise<ReadyInfo> {
    this.#child = child;
    return new Promise<ReadyInfo>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        settle(new ServingError(Code.DEADLINE_EXCEEDED, `Loading timed out after ${this.#options.loadTimeoutMs} ms`));
        child.kill('SIGKILL');
      }, this.#options.loadTimeoutMs);
      const settle = (result: ReadyInfo | ServingError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (result instanceof ServingError) reject(result);
        else resolve(result);
      };
      child.on('message', (msg: WorkerMessage) => {
        if (msg.type === 'ready') {
          if (this.spec.standby) {
            // Nothing to reach yet: no channel and no health checks until a model is assigned.
            settle({ signatures: msg.signatures, backends: msg.backends, loadMillis: msg.loadMillis });
            return;
          }
          this.#channel = new WorkerChannel({ path: this.socketPath }, this.#options.connections);
          settle({ signatures: msg.signatures, backends: msg.backends, loadMillis: msg.loadMillis });
          this.#startHealthChecks();
        } else if (msg.type === 'failed') {
          settle(new ServingError(msg.code as ServingError['code'], msg.message));
        }
      });
      child.on('exit', (code, signal) => {
        const reason = signal ? `signal ${signal}` : `code ${code}`;
        clearInterval(this.#healthTimer);
        settle(new ServingError(Code.UNKNOWN, `Worker process exited during load (${reason})`));
        this.#channel?.destroy();
        this.#channel = undefined;
        if (!this.#stopping) this.emit('exit', reason);
      });
    });
  }

  /**
   * A worker that stops answering its health check (HEALTH_FAILURES in a row, each bounded by
   * HEALTH_TIMEOUT_MS, and none answered for HUNG_AFTER_MS) is killed, so its exit goes through the
   * normal restart path.
   */
  #startHealthChecks(): void {
    this.#healthFailures = 0;
    this.#lastHealthy = Date.now();
    this.#healthTimer = setInterval(() => {
      const channel = this.#channel;
      if (!channel || this.#stopping) return;
      channel
        .call({ kind: Kind.HEALTH, body: EMPTY, deadline: Date.now() + HEALTH_TIMEOUT_MS })
        .then((res) => {
          if (res.status !== 200) throw new Error(`health check answered ${res.status}`);
          this.#healthFailures = 0;
          this.#lastHealthy = Date.now();
        })
        .catch(() => {
          if (this.#stopping) return;
          if (++this.#healthFailures >= HEALTH_FAILURES && Date.now() - this.#lastHealthy >= HUNG_AFTER_MS) {
            this.#child?.kill('SIGKILL');
          }
        });
    }, HEALTH_INTERVAL_MS);
    this.#healthTimer.unref();
  }

  /** Waits (up to the drain deadline) for in-flight requests, then stops the process. */
  async stop(): Promise<void> {
    if (this.#adopted) {
      // Taken over but never started: the process still runs, so stop it.
      this.#child = this.#adopted;
      this.#adopted = undefined;
    }
    if (this.#stopping) return;
    this.#stopping = true;
    clearInterval(this.#healthTimer);
    const deadline = Date.now() + this.#options.drainTimeoutMs;
    while (this.inFlight > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const child = this.#child;
    this.#channel?.close();
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const killTimer = setTimeout(() => child.kill('SIGKILL'), this.#options.drainTimeoutMs);
      child.once('exit', () => {
        clearTimeout(killTimer);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }
}
