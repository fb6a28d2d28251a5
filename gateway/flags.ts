/**
 * Command-line flags, named and defaulted as tensorflow_model_server's so scripts written for TF
 * Serving work unchanged (`--flag=value` or `--flag value`; booleans also as a bare `--flag`).
 * Flags that modelgate adds are marked "extension". An unknown flag is an error (TF Serving only warns,
 * which hides typos such as `--alow_version_labels...`).
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { commandsUsage } from './cli.js';

interface FlagSpec {
  kind: 'string' | 'int' | 'bool';
  default: string;
  help: string;
}

export const FLAG_SPECS = {
  port: { kind: 'int', default: '8500', help: 'gRPC API port (PredictionService, ModelService, Health); 0 disables it' },
  grpc_api_host: { kind: 'string', default: '0.0.0.0', help: 'extension: address the gRPC API binds to' },
  grpc_socket_path: { kind: 'string', default: '', help: 'also serve the gRPC API on this UNIX socket' },
  grpc_channel_arguments: {
    kind: 'string',
    default: '',
    help: 'gRPC server arguments, k=v,k=v (e.g. grpc.max_connection_age_ms=2000); integer values pass as ints',
  },
  grpc_max_message_size: {
    kind: 'int',
    default: '2147483647',
    help: 'extension: largest gRPC message received or sent, in bytes (TF Serving: INT32_MAX)',
  },
  enable_grpc_healthcheck_service: {
    kind: 'bool',
    default: 'true',
    help: 'serve grpc.health.v1.Health (TF Serving defaults to false)',
  },
  rest_api_port: { kind: 'int', default: '8501', help: 'REST API port; 0 disables REST' },
  rest_api_host: { kind: 'string', default: '0.0.0.0', help: 'extension: address the REST API binds to' },
  rest_api_timeout_in_ms: { kind: 'int', default: '30000', help: 'timeout for each REST request, in ms' },
  model_config_file: { kind: 'string', default: '', help: 'models.config (text-format ModelServerConfig)' },
  model_config_file_poll_wait_seconds: {
    kind: 'int',
    default: '0',
    help: 'also re-read the config every N s (it is watched for changes regardless); 0 = watch only',
  },
  watch_model_config_file: { kind: 'bool', default: 'true', help: 'extension: reload when the config file changes' },
  traffic_config_file: {
    kind: 'string',
    default: '',
    help: 'extension: text-format modelgate.traffic.TrafficConfig: label splits by weight and mirrors; watched and reloaded with the model config',
  },
  mirror_max_inflight: {
    kind: 'int',
    default: '16',
    help: 'extension: mirrored requests in flight at most (all models); further mirror copies are dropped and counted',
  },
  mirror_timeout_ms: { kind: 'int', default: '10000', help: 'extension: deadline of each mirrored request, in ms' },
  allow_version_labels_for_unavailable_models: {
    kind: 'bool',
    default: 'false',
    help: 'a new label may point at a version that is not AVAILABLE yet (otherwise it is held as pending)',
  },
  max_num_load_retries: { kind: 'int', default: '5', help: 'retries of a load that failed for a transient reason' },
  load_retry_interval_micros: { kind: 'int', default: '1000000', help: 'wait between load retries (TF: 60 s)' },
  model_name: { kind: 'string', default: 'default', help: 'single-model mode: the model name' },
  model_base_path: { kind: 'string', default: '', help: 'single-model mode: folder with numeric version folders' },
  model_platform: {
    kind: 'string',
    default: '',
    help: 'extension: single-model mode platform (tensorflow|onnx); default: onnx if model.onnx is present',
  },
  file_system_poll_wait_seconds: {
    kind: 'int',
    default: '1',
    help: 'poll base paths for new or removed versions every N s; 0 = once at start, <0 = never',
  },
  num_load_threads: { kind: 'int', default: '0', help: 'versions loading at once; 0 = number of CPUs' },
  tensorflow_intra_op_parallelism: { kind: 'int', default: '1', help: 'threads per op in each worker; 0 = auto' },
  tensorflow_inter_op_parallelism: { kind: 'int', default: '1', help: 'ops in parallel in each worker; 0 = auto' },
  worker_replicas: { kind: 'int', default: '1', help: 'extension: worker processes per model version' },
  worker_load_timeout_ms: { kind: 'int', default: '300000', help: 'extension: time a version may take to load' },
  worker_drain_timeout_ms: { kind: 'int', default: '30000', help: 'extension: in-flight deadline when unloading' },
  worker_connections: {
    kind: 'int',
    default: '1',
    help: 'extension: connections kept to each worker; requests are multiplexed, so 1 is enough unless bodies are huge',
  },
  rest_api_enable_cors_support: { kind: 'bool', default: 'false', help: 'add CORS headers to REST responses' },
  saved_model_tags: { kind: 'string', default: 'serve', help: 'MetaGraph tags to load, comma-separated' },
  enable_signature_method_name_check: {
    kind: 'bool',
    default: 'false',
    help: 'Classify/Regress require signatures whose method_name is classify/regress',
  },
  redis_url: {
    kind: 'string',
    default: '',
    help: 'extension: share routing state in Redis (redis://user:pass@host:port/db, rediss:// for TLS); env REDIS_URL',
  },
  redis_prefix: { kind: 'string', default: 'modelgate', help: 'extension: prefix of every Redis key' },
  gateway_id: { kind: 'string', default: '', help: 'extension: this gateway\'s id in Redis (default host-pid)' },
  writer_lease_ms: { kind: 'int', default: '2000', help: 'extension: writer lease; another gateway takes over after it' },
  worker_lease_ms: { kind: 'int', default: '2000', help: 'extension: endpoint lease; a silent worker leaves routing after it' },
  redis_resync_ms: { kind: 'int', default: '500', help: 'extension: re-read the shared view at least this often' },
  spawn_local_workers: {
    kind: 'bool',
    default: 'true',
    help: 'extension: start worker processes here (false: route only to workers registered in Redis)',
  },
  enable_batching: { kind: 'bool', default: 'false', help: 'batch predict/classify/regress runs in each worker' },
  batching_parameters_file: {
    kind: 'string',
    default: '',
    help: 'text-format BatchingParameters to batch with instead of the defaults (needs --enable_batching)',
  },
  enable_per_model_batching_parameters: {
    kind: 'bool',
    default: 'false',
    help: "with --enable_batching, a version folder's batching_params.pbtxt replaces the file's parameters (except the thread pool); versions without one are not batched",
  },
  monitoring_config_file: {
    kind: 'string',
    default: '',
    help: 'MonitoringConfig (text format); prometheus_config { enable: true } serves metrics on the REST port',
  },
  readiness_requires_all_models: {
    kind: 'bool',
    default: 'true',
    help: 'extension: /readyz needs every configured model AVAILABLE (false: any one)',
  },
  max_request_bytes: {
    kind: 'int',
    default: String(256 * 1024 * 1024),
    help: 'extension: largest request body (REST 413, gRPC RESOURCE_EXHAUSTED); gzip bodies may inflate to 100 MB',
  },
  max_json_depth: { kind: 'int', default: '100000', help: 'extension: deepest JSON nesting a worker parses' },
  max_tensor_elements: {
    kind: 'int',
    default: String(256 * 1024 * 1024),
    help: 'extension: most elements in one input tensor',
  },
  max_b64_bytes: {
    kind: 'int',
    default: String(64 * 1024 * 1024),
    help: 'extension: most bytes one {"b64": ...} JSON value may decode to',
  },
  max_inflight_per_version: {
    kind: 'int',
    default: '1024',
    help: 'extension: requests in flight per model version before 429 RESOURCE_EXHAUSTED; 0 = unbounded',
  },
  admin_token: {
    kind: 'string',
    default: '',
    help: 'extension: bearer token required by admin surfaces (config reload over REST and gRPC); env MODELGATE_ADMIN_TOKEN',
  },
  api_token: {
    kind: 'string',
    default: '',
    help: 'extension: bearer token required by inference, status and metadata; env MODELGATE_API_TOKEN',
  },
  rest_api_tls_cert: { kind: 'string', default: '', help: 'extension: PEM certificate file; REST serves HTTPS' },
  rest_api_tls_key: { kind: 'string', default: '', help: 'extension: PEM private key file for --rest_api_tls_cert' },
  ssl_config_file: {
    kind: 'string',
    default: '',
    help: 'SSLConfig (text format: server_key, server_cert, custom_ca, client_verify) for gRPC TLS',
  },
  load_on_demand: {
    kind: 'bool',
    default: 'false',
    help: "extension: a configured version's worker starts on its first request (status: START until then); default: load at once, as TF Serving",
  },
  max_loaded_versions: {
    kind: 'int',
    default: '0',
    help: 'extension: with --load_on_demand, versions loaded at once in this gateway; beyond it the least recently used idle one is unloaded; 0 = no limit',
  },
  standby_workers: {
    kind: 'int',
    default: '2',
    help: 'extension: with --load_on_demand, ONNX worker processes kept started with no model, so a first request skips the process start; with --max_loaded_versions only in room under the limit',
  },
  help: { kind: 'bool', default: 'false', help: 'print this help' },
} satisfies Record<string, FlagSpec>;

export type FlagName = keyof typeof FLAG_SPECS;
type FlagValue<K extends FlagName> = (typeof FLAG_SPECS)[K]['kind'] extends 'int'
  ? number
  : (typeof FLAG_SPECS)[K]['kind'] extends 'bool'
    ? boolean
    : string;
export type Flags = { [K in FlagName]: FlagValue<K> };

export class FlagError extends Error {}

export function parseFlags(argv: string[], env: NodeJS.ProcessEnv = process.env): Flags {
  const specs = FLAG_SPECS as Record<string, FlagSpec>;
  // A bare boolean flag means true; parseArgs wants a value for string-typed options.
  const args = argv.map((a) => {
    const m = /^--([a-z0-9_]+)$/.exec(a);
    return m && specs[m[1] as string]?.kind === 'bool' ? `${a}=true` : a;
  });
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      options: Object.fromEntries(Object.keys(specs).map((k) => [k, { type: 'string' as const }])),
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new FlagError(`${(err as Error).message}\n\n${usage()}`);
  }
  // The TF Serving docker image passes the model through MODEL_NAME / MODEL_BASE_PATH.
  if (values.model_name === undefined && env.MODEL_NAME) values.model_name = env.MODEL_NAME;
  if (values.redis_url === undefined && env.REDIS_URL) values.redis_url = env.REDIS_URL;
  if (values.admin_token === undefined && env.MODELGATE_ADMIN_TOKEN) values.admin_token = env.MODELGATE_ADMIN_TOKEN;
  if (values.api_token === undefined && env.MODELGATE_API_TOKEN) values.api_token = env.MODELGATE_API_TOKEN;
  if (values.model_base_path === undefined && env.MODEL_BASE_PATH) {
    values.model_base_path = `${env.MODEL_BASE_PATH.replace(/\/$/, '')}/${values.model_name ?? env.MODEL_NAME ?? 'model'}`;
  }
  const out: Record<string, string | number | boolean> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const raw = String(values[name] ?? spec.default);
    switch (spec.kind) {
      case 'int': {
        if (!/^-?\d+$/.test(raw)) throw new FlagError(`--${name} expects an integer, got "${raw}"`);
        out[name] = Number(raw);
        break;
      }
      case 'bool': {
        if (!/^(true|false|1|0)$/i.test(raw)) throw new FlagError(`--${name} expects true or false, got "${raw}"`);
        out[name] = /^(true|1)$/i.test(raw);
        break;
      }
      default:
        out[name] = raw;
    }
  }
  const flags = out as Flags;
  if (flags.max_loaded_versions < 0) throw new FlagError('--max_loaded_versions must be 0 (no limit) or more');
  if (flags.max_loaded_versions > 0 && !flags.load_on_demand) {
    throw new FlagError('--max_loaded_versions needs --load_on_demand (versions loaded at start-up are never evicted)');
  }
  if (flags.num_load_threads <= 0) flags.num_load_threads = os.availableParallelism();
  return flags;
}

export function usage(): string {
  const lines = Object.entries(FLAG_SPECS as Record<string, FlagSpec>).map(
    ([name, spec]) => `  --${name}=${spec.kind === 'string' ? '<string>' : spec.kind} (default: "${spec.default}")  ${spec.help}`,
  );
  return (
    'usage: modelgate [flags]                         run a gateway\n' +
    '       modelgate <command> [args] [--url URL]    ask a running gateway\n\n' +
    `${commandsUsage()}\nFlags:\n${lines.join('\n')}\n`
  );
}
