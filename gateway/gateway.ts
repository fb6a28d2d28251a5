/**
 * Wires one gateway: config (file watch, or the writer's desired state in Redis with --redis_url) →
 * manager (and its workers) → REST and gRPC front doors. `startGateway` is what
 * the CLI runs and what integration tests start in-process (workers are still real processes).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import { logger as rootLogger, type Logger } from '../common/logger.js';
import { loadConfigFile, singleModelConfig, type Platform, type ServerConfig } from './config/model-config.js';
import type { Flags } from './flags.js';
import { ModelManager } from './manager/model-manager.js';
import { listVersionFolders } from './repository/version-folders.js';
import { ConfigSource } from './config/config-source.js';
import { RepositoryPoller } from './repository/repository-poller.js';
import { startGrpcServer, type GrpcFrontDoor } from './grpc/grpc-server.js';
import { adminApi } from './rest/admin-api.js';
import { restAccess } from './rest/access-hooks.js';
import { loadSslConfig, type AccessTokens } from './access.js';
import { setMaxInFlightPerVersion } from './routing/forward.js';
import { setMirrorLimits } from './routing/mirror.js';
import { loadTrafficFile } from './config/traffic-config.js';
import { setConfiguredModelCheck } from './metrics.js';
import { readFile } from 'node:fs/promises';
import { loadMonitoringConfig, monitoringApi } from './rest/monitoring-api.js';
import { SharedRouting } from './routing/shared-routing.js';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import type { EndpointRecord } from '../common/shared-state.js';
import { sendClientError, sendFrameworkError, tfServingApi } from './rest/tf-serving-api.js';
import { installLeanRest } from './rest/lean-rest.js';
import {
  defaultBatchingOptions,
  loadBatchingParametersFile,
  type BatchingOptions,
} from '../common/batching-parameters.js';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const EXAMPLE_CONFIG = path.join(PROJECT_ROOT, 'config', 'models.config');

export interface Gateway {
  manager: ModelManager;
  rest: FastifyInstance | undefined;
  /** The bound REST port (useful with --rest_api_port=0 in tests). */
  restPort: number | undefined;
  /** The gRPC front door, unless --port=0 and no --grpc_socket_path. */
  grpc: GrpcFrontDoor | undefined;
  /** The bound gRPC port (useful with a port chosen by the test). */
  grpcPort: number | undefined;
  configSource: ConfigSource;
  /** The shared routing state, with --redis_url. */
  shared: SharedRouting | undefined;
  close(): Promise<void>;
}

/** The config the flags ask for: a file, a single model, or the example repository. */
export async function configFromFlags(flags: Flags): Promise<ServerConfig> {
  if (flags.model_config_file) return loadConfigFile(flags.model_config_file);
  if (flags.model_base_path) {
    const platform = (flags.model_platform || (await detectPlatform(flags.model_base_path))) as Platform;
    if (platform !== 'onnx' && platform !== 'tensorflow') {
      throw new Error(`--model_platform must be "tensorflow" or "onnx", got "${platform}"`);
    }
    return singleModelConfig(flags.model_name, flags.model_base_path, platform);
  }
  return loadConfigFile(EXAMPLE_CONFIG);
}

/** onnx when the newest version folder holds model.onnx, else tensorflow (TF Serving's only platform). */
async function detectPlatform(basePath: string): Promise<Platform> {
  try {
    const { versions } = await listVersionFolders(basePath);
    const newest = [...versions.keys()].sort((a, b) => b - a)[0];
    if (newest !== undefined && existsSync(path.join(versions.get(newest) as string, 'model.onnx'))) return 'onnx';
  } catch {
    // A missing base path is reported by the manager, as TF Serving reports it.
  }
  return 'tensorflow';
}

/**
 * TF Serving's batching flags: the parameters file is read and checked once, here, so a bad file
 * stops startup with file:line:col; workers get the resolved options.
 */
export async function batchingFromFlags(flags: Flags): Promise<{ options: BatchingOptions; perModel: boolean } | undefined> {
  if (!flags.enable_batching) {
    if (flags.batching_parameters_file) {
      throw new Error(
        'server_options.batching_parameters_file is set without setting server_options.enable_batching to true.',
      );
    }
    return undefined;
  }
  const options = flags.batching_parameters_file
    ? await loadBatchingParametersFile(flags.batching_parameters_file)
    : defaultBatchingOptions();
  return { options, perModel: flags.enable_per_model_batching_parameters };
}

export async function startGateway(flags: Flags, log: Logger = rootLogger): Promise<Gateway> {
  const batching = await batchingFromFlags(flags);
  const config = await configFromFlags(flags);
  // A bad traffic file stops startup, as a bad models.config does (file:line:col).
  if (flags.traffic_config_file) config.traffic = await loadTrafficFile(flags.traffic_config_file, config);
  setMirrorLimits(flags.mirror_max_inflight, flags.mirror_timeout_ms);
  const monitoring = flags.monitoring_config_file ? await loadMonitoringConfig(flags.monitoring_config_file) : undefined;
  const tokens: AccessTokens = { admin: flags.admin_token, api: flags.api_token };
  setMaxInFlightPerVersion(flags.max_inflight_per_version);
  const gatewayId = flags.gateway_id || `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  let shared: SharedRouting | undefined;
  const manager = new ModelManager({
    logger: log,
    replicas: flags.worker_replicas,
    loadConcurrency: flags.num_load_threads,
    maxLoadRetries: flags.max_num_load_retries,
    loadRetryIntervalMs: flags.load_retry_interval_micros / 1000,
    allowUnavailableLabels: flags.allow_version_labels_for_unavailable_models,
    spawnLocal: flags.spawn_local_workers,
    loadOnDemand: flags.load_on_demand,
    maxLoadedVersions: flags.max_loaded_versions,
    standbyWorkers: flags.standby_workers,
    remoteConnections: flags.worker_connections,
    // With shared state, this gateway's workers are registered so every gateway sees the fleet.
    onChange: () => shared?.syncEndpoints(localEndpoints()),
    worker: {
      loadTimeoutMs: flags.worker_load_timeout_ms,
      smallHeap: flags.load_on_demand,
      drainTimeoutMs: flags.worker_drain_timeout_ms,
      intraOpThreads: flags.tensorflow_intra_op_parallelism,
      connections: flags.worker_connections,
      savedModelTags: flags.saved_model_tags,
      methodNameCheck: flags.enable_signature_method_name_check,
      limits: {
        maxJsonDepth: flags.max_json_depth,
        maxTensorElements: flags.max_tensor_elements,
        maxB64Bytes: flags.max_b64_bytes,
        maxBodyBytes: flags.max_request_bytes,
      },
      ...(batching ? { batching } : {}),
    },
  });
  // Request metrics label unknown model names only up to a bound (gateway/metrics.ts).
  setConfiguredModelCheck((name) => manager.table.has(name));
  const localEndpoints = (): EndpointRecord[] =>
    manager.localReplicas().map(({ model, version, worker, signatures }) => ({
      id: `${gatewayId}/${model}/${version}/${worker.pid}`,
      model,
      version,
      state: 'AVAILABLE',
      url: `unix:${worker.socketPath}`,
      owner: gatewayId,
      signatures,
    }));

  const file = flags.model_config_file || (flags.model_base_path ? undefined : EXAMPLE_CONFIG);
  const configSource = new ConfigSource({
    manager,
    logger: log,
    file,
    trafficFile: flags.traffic_config_file || undefined,
    initial: config,
    watch: flags.watch_model_config_file,
    pollSeconds: flags.model_config_file_poll_wait_seconds,
    // The writer publishes before applying; a follower's reload fails (it does not own the config).
    apply: async (next, wait) => {
      if (shared) await shared.publishDesired(next);
      await manager.applyConfig(next, wait);
    },
  });

  if (flags.redis_url) {
    shared = new SharedRouting({
      url: flags.redis_url,
      prefix: flags.redis_prefix,
      gatewayId,
      leaseMs: flags.writer_lease_ms,
      resyncMs: flags.redis_resync_ms,
      logger: log,
    });
    const s = shared;
    s.on('desired', (desired: { writer: string; config: ServerConfig }) => {
      if (desired.writer === gatewayId) return; // applied already, by the reload that published it
      configSource.adopt(desired.config);
      void manager.applyConfig(desired.config, false);
    });
    s.on('endpoints', (records: EndpointRecord[]) => manager.setFleetView(records, gatewayId));
    s.on('role', (isWriter: boolean) => {
      if (isWriter) {
        // The new writer owns the file from now on: follow it and publish what it says.
        configSource.start();
        void configSource.reloadFromFile('became writer');
      } else {
        void configSource.close();
      }
    });
    await s.start();
    // A follower starts from the writer's desired state if there is one; until then it serves nothing.
    const desired = s.lastDesired;
    if (desired && desired.writer !== gatewayId) await manager.applyConfig(desired.config);
    else if (s.isWriter) {
      await configSource.reloadFromFile('startup', true);
      // Also wait for the loads when the reload above folded into one already queued.
      await manager.applyConfig(configSource.current);
    }
  } else {
    // Like TF Serving, load the initial models before opening the ports.
    await manager.applyConfig(config);
    configSource.start();
    await configSource.ready();
  }
  const poller = new RepositoryPoller(manager, flags.file_system_poll_wait_seconds);
  poller.start();

  let grpc: GrpcFrontDoor | undefined;
  if (flags.port !== 0 || flags.grpc_socket_path) {
    grpc = await startGrpcServer({
      manager,
      configSource,
      logger: log,
      host: flags.grpc_api_host,
      port: flags.port,
      socketPath: flags.grpc_socket_path,
      channelArguments: flags.grpc_channel_arguments,
      maxMessageSize: flags.grpc_max_message_size,
      health: flags.enable_grpc_healthcheck_service,
      readinessRequiresAllModels: flags.readiness_requires_all_models,
      tokens,
      tls: flags.ssl_config_file ? await loadSslConfig(flags.ssl_config_file) : undefined,
    });
  }

  let rest: FastifyInstance | undefined;
  let restPort: number | undefined;
  let closing = false;
  if (flags.rest_api_port !== 0) {
    const https =
      flags.rest_api_tls_cert || flags.rest_api_tls_key
        ? { cert: await readFile(flags.rest_api_tls_cert), key: await readFile(flags.rest_api_tls_key) }
        : null;
    rest = Fastify({
      logger: false,
      bodyLimit: flags.max_request_bytes,
      return503OnClosing: true,
      https,
      // Paths whose escapes do not decode are answered like every other path, not with Fastify's JSON.
      frameworkErrors: (err, request, reply) => sendFrameworkError(err, request, reply),
      clientErrorHandler: sendClientError,
    });
    restAccess(rest, tokens, monitoring?.enable ? monitoring.path : undefined);
    // Bodies stay raw bytes for every route: predict bodies go to workers untouched.
    rest.removeAllContentTypeParsers();
    rest.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    // TF Serving ignores Content-Type; Fastify would answer 415 to one that is not a valid media type
    // (`Content-Type: json`, an empty one) before any parser runs. Nothing here reads it, so drop it.
    rest.addHook('onRequest', (request, _reply, done) => {
      delete request.headers['content-type'];
      done();
    });
    if (flags.rest_api_enable_cors_support) {
      rest.addHook('onSend', async (_req, reply) => {
        void reply.header('access-control-allow-origin', '*');
        void reply.header('access-control-allow-methods', 'POST, GET');
        void reply.header('access-control-allow-headers', 'Content-Type');
      });
    }
    await rest.register(tfServingApi, {
      manager,
      timeoutMs: flags.rest_api_timeout_in_ms,
      logger: log,
      readinessRequiresAllModels: flags.readiness_requires_all_models,
    });
    await rest.register(adminApi, {
      manager,
      configSource,
      shared,
      gatewayId,
      readinessRequiresAllModels: flags.readiness_requires_all_models,
    });
    if (monitoring?.enable) await rest.register(monitoringApi, { manager, shared, path: monitoring.path });
    await rest.ready();
    const lean = installLeanRest(rest.server, {
      manager,
      timeoutMs: flags.rest_api_timeout_in_ms,
      logger: log,
      tokens,
      maxBodyBytes: flags.max_request_bytes,
      cors: flags.rest_api_enable_cors_support,
      isClosing: () => closing,
    });
    if (!lean) log.warn('REST: the lean inference path could not be installed; every request goes through Fastify');
    await rest.listen({ port: flags.rest_api_port, host: flags.rest_api_host });
    const addr = rest.server.address();
    restPort = typeof addr === 'object' && addr ? addr.port : flags.rest_api_port;
    log.info(`Exporting HTTP/REST API at:localhost:${restPort} ...`);
  }

  return {
    manager,
    rest,
    restPort,
    grpc,
    grpcPort: grpc?.port,
    configSource,
    shared,
    async close() {
      closing = true;
      await poller.stop();
      await configSource.close();
      await grpc?.close();
      if (rest) {
        // Stop accepting, let requests in flight finish, and close each keep-alive connection as soon
        // as it goes idle (Node closes only those idle at the moment close() starts).
        const closing = rest.close();
        const server = rest.server;
        const sweep = setInterval(() => server.closeIdleConnections(), 50);
        await closing.finally(() => clearInterval(sweep));
      }
      await shared?.close();
      await manager.shutdown();
    },
  };
}
