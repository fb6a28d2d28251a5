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
// First: a tensorflow worker's model thread starts importing while this process starts up (for any
// other platform this imports only the light thread plumbing and does nothing).
import './runtimes/tensorflow/prestart.js';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import { Code, ServingError } from '../common/errors.js';
import { parseWorkerArgs, type AssignMessage, type WorkerFlags, type WorkerMessage } from '../common/worker-protocol.js';
import type { Runtime } from './runtimes/runtime.js';
import { setMethodNameCheck } from './call-context.js';
import { createWorkerServer } from './server.js';
import { setJsonLimits } from './codec/json-reader.js';
import { setTensorLimits } from './codec/predict-json.js';
import type { BatchingOptions } from '../common/batching-parameters.js';
import type { EndpointLease } from '../common/shared-state.js';
// Lean workers: what only some workers use is imported when it is used (the platform's runtime,
// batching, prom-client, the Redis client), so an idle ONNX worker holds no TensorFlow runtime, no
// TF protos and no Redis client. docs/architecture.md lists what each worker imports.

let flags = ((): WorkerFlags => {
  try {
    return parseWorkerArgs(process.argv.slice(2), process.env);
  } catch (err) {
    console.error(`modelgate-worker: ${(err as Error).message}`);
    process.exit(2);
  }
})();

function report(msg: WorkerMessage): void {
  if (process.send) process.send(msg);
  else console.log(JSON.stringify(msg.type === 'ready' ? { type: 'ready', loadMillis: msg.loadMillis } : msg));
}

async function loadRuntime(): Promise<Runtime> {
  const options = { intraOpThreads: flags.intra_op_threads, interOpThreads: flags.inter_op_threads };
  switch (flags.model_platform) {
    case 'onnx': {
      const { OnnxRuntime } = await import('./runtimes/onnx-runtime.js');
      return OnnxRuntime.load(flags.version_path, options);
    }
    case 'tensorflow': {
      // The model runs on its own thread; if that thread dies, exit so the gateway restarts us.
      const { loadThreadedTensorFlowRuntime } = await import('./runtimes/tensorflow/threaded.js');
      return loadThreadedTensorFlowRuntime(
        flags.version_path,
        { ...options, tags: flags.saved_model_tags.split(',').filter(Boolean) },
        { logFields: { model: flags.model_name, version: flags.model_version }, onExit: () => process.exit(1) },
      );
    }
    default:
      throw new ServingError(Code.UNIMPLEMENTED, `Model platform ${flags.model_platform} is not supported yet`);
  }
}

/** With --enable_batching, runs go through a BatchScheduler (per-model parameters when asked for). */
async function withBatching(runtime: Runtime): Promise<Runtime> {
  if (!flags.enable_batching) return runtime;
  const [{ BatchScheduler }, { BatchingConfigError, defaultBatchingOptions, perModelBatchingOptions }, { batchingMetrics, setWorkerLabels }] =
    await Promise.all([import('./batching/batch-scheduler.js'), import('../common/batching-parameters.js'), import('./metrics.js')]);
  const global: BatchingOptions = (flags.batching_options as BatchingOptions | undefined) ?? defaultBatchingOptions();
  let options: BatchingOptions | undefined = global;
  if (flags.enable_per_model_batching_parameters) {
    try {
      options = await perModelBatchingOptions(flags.version_path, global);
    } catch (err) {
      await runtime.close();
      if (err instanceof BatchingConfigError) throw new ServingError(Code.INVALID_ARGUMENT, err.message);
      throw err;
    }
  }
  if (!options) return runtime;
  setWorkerLabels(flags.model_name, String(flags.model_version));
  return new BatchScheduler(runtime, options, batchingMetrics(options.threadPoolName));
}

async function main(): Promise<void> {
  if (!flags.standby && (!flags.version_path || (!flags.socket_path && flags.port < 0))) {
    throw new ServingError(Code.INVALID_ARGUMENT, 'worker needs --version_path and --socket_path or --port');
  }
  setMethodNameCheck(flags.enable_signature_method_name_check);
  setJsonLimits({ maxDepth: flags.max_json_depth });
  setTensorLimits({ maxElements: flags.max_tensor_elements, maxB64Bytes: flags.max_b64_bytes });
  let serving: Awaited<ReturnType<typeof serve>> | undefined;
  if (flags.standby) {
    // A standby worker: the runtime's imports done, no model yet; the gateway assigns one.
    const started = performance.now();
    const { prewarmOnnx } = await import('./runtimes/onnx-runtime.js');
    await prewarmOnnx({ intraOpThreads: flags.intra_op_threads, interOpThreads: flags.inter_op_threads });
    report({ type: 'ready', signatures: {}, backends: {}, loadMillis: performance.now() - started });
  } else {
    serving = await serve();
  }
  const lease = flags.redis_url && !flags.socket_path && serving ? await register(serving.runtime, serving.port) : undefined;

  let stopping = false;
  // Reuse by the gateway (AssignMessage): stop serving this model, serve another on a new socket.
  let assigning: Promise<void> = Promise.resolve();
  process.on('message', (msg: AssignMessage) => {
    if (msg?.type !== 'assign' || (!flags.socket_path && !flags.standby)) return;
    assigning = assigning.then(async () => {
      if (stopping) return;
      const previous = serving;
      if (previous) {
        await previous.worker.drain(flags.drain_timeout_ms);
        await previous.runtime.close();
        await rm(flags.socket_path, { force: true });
      }
      flags = {
        ...flags,
        standby: false,
        model_platform: 'onnx',
        model_name: msg.model_name,
        model_version: msg.model_version,
        version_path: msg.version_path,
        socket_path: msg.socket_path,
      };
      try {
        serving = await serve();
      } catch (err) {
        fail(err);
      }
    });
  });
  const stop = () => {
    if (stopping) return;
    stopping = true;
    // Leave routing first, then drain what is already on its way.
    void lease?.stop();
    // Requests still running past the deadline are cut so a stuck one cannot keep the worker alive.
    void assigning
      .then(() => serving?.worker.drain(flags.drain_timeout_ms))
      .then(() => serving?.runtime.close())
      .finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('disconnect', stop);
}

/** Loads the model the flags name, listens, and reports ready. */
async function serve(): Promise<{ runtime: Runtime; worker: ReturnType<typeof createWorkerServer>; port: number }> {
  const started = performance.now();
  const runtime = await withBatching(await loadRuntime());
  const worker = createWorkerServer({
    runtime,
    maxBodyBytes: flags.max_body_bytes,
    modelName: flags.model_name,
    metricsLabels: { modelName: flags.model_name, modelVersion: String(flags.model_version) },
  });
  const server = worker.server;
  if (flags.socket_path) {
    await rm(flags.socket_path, { force: true });
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(flags.socket_path, resolve));
  } else {
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(flags.port, flags.host, resolve));
  }
  report({ type: 'ready', signatures: runtime.signatures, backends: runtime.backends, loadMillis: performance.now() - started });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : flags.port;
  return { runtime, worker, port };
}

/** Registers this standalone worker in the shared routing state and keeps its lease. */
async function register(runtime: Runtime, port: number): Promise<EndpointLease> {
  const { connectRedis, defineScripts, EndpointLease, sharedKeys } = await import('../common/shared-state.js');
  const redis = connectRedis(flags.redis_url);
  redis.on('error', () => {}); // reconnects on its own; the lease is renewed once Redis is back
  defineScripts(redis);
  const host = flags.advertise_host || (flags.host === '0.0.0.0' ? os.hostname() : flags.host);
  const url = `http://${host}:${port}`;
  const lease = new EndpointLease(
    redis,
    sharedKeys(flags.redis_prefix),
    {
      id: `standalone/${host}:${port}/${flags.model_name}/${flags.model_version}`,
      model: flags.model_name,
      version: flags.model_version,
      state: 'AVAILABLE',
      url,
      owner: 'standalone',
      signatures: runtime.signatures,
    },
    flags.worker_lease_ms,
  );
  lease.start();
  return lease;
}

main().catch(fail);

function fail(err: unknown): void {
  const code = err instanceof ServingError ? err.code : Code.UNKNOWN;
  const message = err instanceof Error ? err.message : String(err);
  report({ type: 'failed', code, message });
  // Give the IPC message time to flush before exiting.
  setTimeout(() => process.exit(1), 50);
}
