/**
 * Worker process entry: loads one model version, serves it on a Unix socket or a TCP port, and
 * reports to the gateway that spawned it over the IPC channel:
 *   → {type: 'ready', signatures, backends}   once the model is loaded and the socket listens
 *   → {type: 'failed', code, message}         when the load fails (then the process exits 1)
 * SIGTERM (or the gateway going away) stops accepting, lets in-flight requests finish, and exits 0.
 *
 * Standalone (a compose service, a Kubernetes pod, another host): run it with `--port`, the model's
 * flags and `--redis_url`; it then registers `http://<advertise_host>:<port>` for its model version
 * in the shared routing state with a lease it renews, and every gateway on that Redis routes to it.
 * It learns what to load from its own flags (`--model_name`, `--model_version`, `--version_path`,
 * `--model_platform`).
 */
// First: a tensorflow worker's model thread starts importing while this process starts up.
import './runtimes/tensorflow/prestart.js';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { Code, ServingError } from '../common/errors.js';
import { OnnxRuntime } from './runtimes/onnx-runtime.js';
import { loadThreadedTensorFlowRuntime } from './runtimes/tensorflow/index.js';
import type { Runtime } from './runtimes/runtime.js';
import { setMethodNameCheck } from './grpc-api.js';
import { createWorkerServer } from './server.js';
import { setJsonLimits } from './codec/json-reader.js';
import { setTensorLimits } from './codec/predict-json.js';
import { BatchScheduler } from './batching/batch-scheduler.js';
import {
  BatchingConfigError,
  defaultBatchingOptions,
  perModelBatchingOptions,
  type BatchingOptions,
} from './batching/batching-parameters.js';
import { batchingMetrics, setWorkerLabels } from './metrics.js';
import { connectRedis, defineScripts, EndpointLease, sharedKeys } from '../common/shared-state.js';

export type WorkerMessage =
  | { type: 'ready'; signatures: Runtime['signatures']; backends: Runtime['backends']; loadMillis: number }
  | { type: 'failed'; code: number; message: string };

const { values: flags } = parseArgs({
  options: {
    model_name: { type: 'string' },
    model_version: { type: 'string' },
    model_platform: { type: 'string', default: 'onnx' },
    version_path: { type: 'string' },
    socket_path: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    intra_op_threads: { type: 'string', default: '1' },
    inter_op_threads: { type: 'string', default: '1' },
    max_body_bytes: { type: 'string', default: String(256 * 1024 * 1024) },
    drain_timeout_ms: { type: 'string', default: '30000' },
    saved_model_tags: { type: 'string', default: 'serve' },
    max_json_depth: { type: 'string', default: '100000' },
    max_tensor_elements: { type: 'string', default: String(256 * 1024 * 1024) },
    max_b64_bytes: { type: 'string', default: String(64 * 1024 * 1024) },
    enable_signature_method_name_check: { type: 'string', default: 'false' },
    redis_url: { type: 'string', default: process.env.REDIS_URL ?? '' },
    redis_prefix: { type: 'string', default: 'modelgate' },
    advertise_host: { type: 'string' },
    worker_lease_ms: { type: 'string', default: '2000' },
    enable_batching: { type: 'string', default: 'false' },
    /** The gateway's resolved --batching_parameters_file (BatchingOptions as JSON); empty = defaults. */
    batching_options: { type: 'string', default: '' },
    enable_per_model_batching_parameters: { type: 'string', default: 'false' },
  },
  strict: true,
});

function report(msg: WorkerMessage): void {
  if (process.send) process.send(msg);
  else console.log(JSON.stringify(msg.type === 'ready' ? { type: 'ready', loadMillis: msg.loadMillis } : msg));
}

async function loadRuntime(): Promise<Runtime> {
  const options = { intraOpThreads: Number(flags.intra_op_threads), interOpThreads: Number(flags.inter_op_threads) };
  switch (flags.model_platform) {
    case 'onnx':
      return OnnxRuntime.load(flags.version_path as string, options);
    case 'tensorflow':
      // The model runs on its own thread; if that thread dies, exit so the gateway restarts us.
      return loadThreadedTensorFlowRuntime(
        flags.version_path as string,
        { ...options, tags: (flags.saved_model_tags as string).split(',').filter(Boolean) },
        { logFields: { model: flags.model_name, version: flags.model_version }, onExit: () => process.exit(1) },
      );
    default:
      throw new ServingError(Code.UNIMPLEMENTED, `Model platform ${flags.model_platform} is not supported yet`);
  }
}

/** With --enable_batching, runs go through a BatchScheduler (per-model parameters when asked for). */
async function withBatching(runtime: Runtime): Promise<Runtime> {
  if (flags.enable_batching !== 'true') return runtime;
  const global: BatchingOptions = flags.batching_options
    ? (JSON.parse(flags.batching_options) as BatchingOptions)
    : defaultBatchingOptions();
  let options: BatchingOptions | undefined = global;
  if (flags.enable_per_model_batching_parameters === 'true') {
    try {
      options = await perModelBatchingOptions(flags.version_path as string, global);
    } catch (err) {
      await runtime.close();
      if (err instanceof BatchingConfigError) throw new ServingError(Code.INVALID_ARGUMENT, err.message);
      throw err;
    }
  }
  if (!options) return runtime;
  return new BatchScheduler(runtime, options, batchingMetrics(options.threadPoolName));
}

async function main(): Promise<void> {
  if (!flags.version_path || (!flags.socket_path && !flags.port)) {
    throw new ServingError(Code.INVALID_ARGUMENT, 'worker needs --version_path and --socket_path or --port');
  }
  setMethodNameCheck(flags.enable_signature_method_name_check === 'true');
  setJsonLimits({ maxDepth: Number(flags.max_json_depth) });
  setTensorLimits({ maxElements: Number(flags.max_tensor_elements), maxB64Bytes: Number(flags.max_b64_bytes) });
  const started = performance.now();
  setWorkerLabels(flags.model_name ?? '', flags.model_version ?? '');
  const runtime = await withBatching(await loadRuntime());
  const server = createWorkerServer({ runtime, maxBodyBytes: Number(flags.max_body_bytes) });
  if (flags.socket_path) {
    await rm(flags.socket_path, { force: true });
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(flags.socket_path, resolve));
  } else {
    await new Promise<void>((resolve, reject) =>
      server.once('error', reject).listen(Number(flags.port), flags.host, resolve),
    );
  }
  report({ type: 'ready', signatures: runtime.signatures, backends: runtime.backends, loadMillis: performance.now() - started });
  const lease = flags.redis_url && flags.port ? register(runtime) : undefined;

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    // Leave routing first, then drain what is already on its way.
    void lease?.stop();
    server.close(() => {
      runtime.close().finally(() => process.exit(0));
    });
    server.closeIdleConnections();
    // Connections still busy past the deadline are cut so a stuck request cannot keep the worker alive.
    setTimeout(() => {
      server.closeAllConnections();
      process.exit(0);
    }, Number(flags.drain_timeout_ms)).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('disconnect', stop);
}

/** Registers this standalone worker in the shared routing state and keeps its lease. */
function register(runtime: Runtime): EndpointLease {
  const redis = connectRedis(flags.redis_url as string);
  redis.on('error', () => {}); // reconnects on its own; the lease is renewed once Redis is back
  defineScripts(redis);
  const host = flags.advertise_host ?? (flags.host === '0.0.0.0' ? os.hostname() : (flags.host as string));
  const url = `http://${host}:${flags.port}`;
  const lease = new EndpointLease(
    redis,
    sharedKeys(flags.redis_prefix),
    {
      id: `standalone/${host}:${flags.port}/${flags.model_name}/${flags.model_version}`,
      model: flags.model_name as string,
      version: Number(flags.model_version),
      state: 'AVAILABLE',
      url,
      owner: 'standalone',
      signatures: runtime.signatures,
    },
    Number(flags.worker_lease_ms),
  );
  lease.start();
  return lease;
}

main().catch((err: unknown) => {
  const code = err instanceof ServingError ? err.code : Code.UNKNOWN;
  const message = err instanceof Error ? err.message : String(err);
  report({ type: 'failed', code, message });
  // Give the IPC message time to flush before exiting.
  setTimeout(() => process.exit(1), 50);
});
