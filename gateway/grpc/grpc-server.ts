/**
 * The gRPC front door (TF Serving's port 8500): PredictionService, ModelService, the Open Inference
 * Protocol's GRPCInferenceService (inference-service.ts) and, optionally, the standard health service, on one @grpc/grpc-js server, insecure like TF Serving's default.
 *
 * Message size limits default to INT32_MAX both ways, as TF Serving's server sets them (clients keep
 * their own 4 MB default). `--grpc_channel_arguments` (`k=v,k=v`, integer-looking values as ints)
 * passes further server options and may override those limits (and channelz, off by default here).
 */
import path from 'node:path';
import {
  Server,
  ServerCredentials,
  status,
  type ChannelOptions,
  type sendUnaryData,
  type ServerUnaryCall,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { bearer, denied, type AccessTokens, type GrpcTls, type Surface } from '../access.js';
import type { Logger } from '../../common/logger.js';
import type { ConfigSource } from '../config/config-source.js';
import type { ModelManager } from '../manager/model-manager.js';
import { healthService, HealthState } from './health-service.js';
import { modelService } from './model-service.js';
import { PREDICTION_SERVICE, predictionHandlers, predictionService, unary } from './prediction-service.js';
import { INFERENCE_SERVICE, inferenceHandlers } from './inference-service.js';
import { installFastUnary, type UnaryHandler } from './fast-unary.js';
import { rawServiceDefinition } from './services.js';

export interface GrpcServerOptions {
  manager: ModelManager;
  configSource: ConfigSource;
  logger: Logger;
  host: string;
  /** TCP port; 0 = no TCP listener. */
  port: number;
  /** Also listen on this UNIX socket ('' = no). */
  socketPath: string;
  /** `--grpc_channel_arguments` text. */
  channelArguments: string;
  maxMessageSize: number;
  health: boolean;
  /** How long close() lets calls in flight finish before cutting them. */
  shutdownGraceMs?: number;
  /** Bearer tokens (--admin_token, --api_token); empty strings leave a surface open. */
  tokens?: AccessTokens;
  /** --ssl_config_file: TLS instead of plaintext. */
  tls?: GrpcTls;
  /** --readiness_requires_all_models, for the v2 ServerReady (as /readyz uses it). */
  readinessRequiresAllModels?: boolean;
}

/**
 * Puts every method of a service behind the access rules: a call without the right bearer token in
 * its `authorization` metadata ends with UNAUTHENTICATED before the method runs.
 */
function guarded(impl: UntypedServiceImplementation, tokens: AccessTokens | undefined, surfaceOf: (method: string) => Surface): UntypedServiceImplementation {
  if (!tokens || (!tokens.admin && !tokens.api)) return impl;
  const out: UntypedServiceImplementation = {};
  for (const [method, handler] of Object.entries(impl)) {
    const surface = surfaceOf(method);
    out[method] = ((call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      const header = call.metadata.get('authorization')[0];
      const reason = denied(surface, bearer(typeof header === 'string' ? header : header?.toString()), tokens);
      if (reason) {
        callback({ code: status.UNAUTHENTICATED, details: reason });
        return;
      }
      (handler as (c: typeof call, cb: typeof callback) => void)(call, callback);
    }) as UntypedServiceImplementation[string];
  }
  return out;
}

export interface GrpcFrontDoor {
  /** The bound TCP port, when listening on TCP. */
  readonly port: number | undefined;
  readonly health: HealthState;
  close(): Promise<void>;
}

/** Parses `k=v,k=v`; values that are integers become numbers, as TF Serving passes them. */
export function parseChannelArguments(text: string): ChannelOptions {
  const out: ChannelOptions = {};
  for (const part of text.split(',')) {
    const item = part.trim();
    if (!item) continue;
    const eq = item.indexOf('=');
    if (eq <= 0) throw new Error(`--grpc_channel_arguments: expected key=value, got "${item}"`);
    const key = item.slice(0, eq).trim();
    const value = item.slice(eq + 1).trim();
    out[key] = /^-?\d+$/.test(value) ? Number(value) : value;
  }
  return out;
}

function tcpAddress(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

function bind(server: Server, address: string, tls: GrpcTls | undefined): Promise<number> {
  const credentials = tls
    ? ServerCredentials.createSsl(tls.ca, [{ private_key: tls.key, cert_chain: tls.cert }], tls.clientVerify)
    : ServerCredentials.createInsecure();
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (err, port) => (err ? reject(err) : resolve(port)));
  });
}

export async function startGrpcServer(options: GrpcServerOptions): Promise<GrpcFrontDoor> {
  const server = new Server({
    // Channelz bookkeeping costs a few percent per call; nothing here serves channelz.
    'grpc.enable_channelz': 0,
    'grpc.max_receive_message_length': options.maxMessageSize,
    'grpc.max_send_message_length': options.maxMessageSize,
    ...parseChannelArguments(options.channelArguments),
  });
  const health = new HealthState();
  server.addService(
    rawServiceDefinition('tensorflow.serving.PredictionService'),
    guarded(predictionService(options.manager), options.tokens, () => 'api'),
  );
  server.addService(
    rawServiceDefinition('tensorflow.serving.ModelService'),
    guarded(modelService({ manager: options.manager, configSource: options.configSource }), options.tokens, (m) =>
      m === 'HandleReloadConfigRequest' ? 'admin' : 'api',
    ),
  );
  const v2Handlers = inferenceHandlers(options.manager, options.readinessRequiresAllModels ?? true);
  const v2Service: UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(v2Handlers)) v2Service[name] = unary(handler);
  server.addService(
    rawServiceDefinition(INFERENCE_SERVICE),
    guarded(v2Service, options.tokens, (m) => (m === 'ServerLive' || m === 'ServerReady' ? 'open' : 'api')),
  );
  if (options.health) server.addService(rawServiceDefinition('grpc.health.v1.Health'), healthService(health));

  let port: number | undefined;
  try {
    if (options.port !== 0) {
      port = await bind(server, tcpAddress(options.host, options.port), options.tls);
      options.logger.info(`Running gRPC ModelServer at ${tcpAddress(options.host, port)} ...`);
    }
    if (options.socketPath) {
      await bind(server, `unix:${path.resolve(options.socketPath)}`, options.tls);
      options.logger.info(`Running gRPC ModelServer at UNIX socket ${options.socketPath} ...`);
    }
  } catch (err) {
    server.forceShutdown();
    throw err;
  }
  const channelOptions = parseChannelArguments(options.channelArguments);
  const limit = (key: string) => {
    const v = channelOptions[key];
    return typeof v === 'number' ? v : options.maxMessageSize;
  };
  const fastPaths = installFastUnary(server, {
    methods: new Map([
      ...Object.entries(predictionHandlers(options.manager)).map(([m, h]): [string, UnaryHandler] => [`/${PREDICTION_SERVICE}/${m}`, h]),
      [`/${INFERENCE_SERVICE}/ModelInfer`, v2Handlers.ModelInfer as UnaryHandler],
    ]),
    maxReceiveMessageSize: limit('grpc.max_receive_message_length'),
    maxSendMessageSize: limit('grpc.max_send_message_length'),
    tokens: options.tokens,
    // grpc-js's own option name for it (a client-side option there); 4 MiB unless set.
    connectionWindowBytes: typeof channelOptions['grpc-node.flow_control_window'] === 'number' ? channelOptions['grpc-node.flow_control_window'] : 4 << 20,
  });
  if (fastPaths === 0) options.logger.warn('gRPC: the lean unary path could not be installed; every call goes through grpc-js');

  let closing: Promise<void> | undefined;
  return {
    port,
    health,
    close() {
      closing ??= new Promise<void>((resolve) => {
        health.set('NOT_SERVING');
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, options.shutdownGraceMs ?? 10_000);
        force.unref();
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      return closing;
    },
  };
}
