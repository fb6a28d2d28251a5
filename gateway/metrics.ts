/**
 * The gateway's Prometheus metrics (prom-client), served at TF Serving's path
 * `/monitoring/prometheus/metrics` when `--monitoring_config_file` enables it.
 *
 * TF Serving's series, with its names (`/tensorflow/serving/request_count` → `:tensorflow:serving:request_count`):
 *   :tensorflow:serving:request_count{model_name, status}          counter
 *   :tensorflow:serving:request_latency{model_name, API, entrypoint} histogram, microseconds
 * modelgate's own:
 *   modelgate_requests_total{model, version, api, entrypoint, code}
 *   modelgate_request_duration_seconds{model, version, api, entrypoint}
 *   modelgate_worker_restarts_total{model, version}
 *   modelgate_config_reloads_total{result}
 *   modelgate_redis_connected, modelgate_model_versions{model, state}
 * prom-client's default process series for the gateway process (process_resident_memory_bytes,
 * nodejs_heap_size_used_bytes, nodejs_external_memory_bytes, event loop lag, GC, …),
 * and every local worker's own series (batching queue depth, batch sizes), scraped from the worker
 * at collection time with `model` and `version` labels added.
 *
 * One registry per process: tests that start several gateways in one process share it.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { codeName } from '../common/errors.js';

export const registry = new Registry();
collectDefaultMetrics({ register: registry });

/** TF Serving's latency buckets are in microseconds; these span 50 µs to 60 s. */
const LATENCY_BUCKETS_US = [50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1e6, 5e6, 60e6];

const tfRequestCount = new Counter({
  name: ':tensorflow:serving:request_count',
  help: 'The total number of requests.',
  labelNames: ['model_name', 'status'],
  registers: [registry],
});

const tfRequestLatency = new Histogram({
  name: ':tensorflow:serving:request_latency',
  help: 'Distribution of wall time (in microseconds) for Tensorflow Serving request.',
  labelNames: ['model_name', 'API', 'entrypoint'],
  buckets: LATENCY_BUCKETS_US,
  registers: [registry],
});

const requests = new Counter({
  name: 'modelgate_requests_total',
  help: 'Requests per model version, API, front door and TF status code.',
  labelNames: ['model', 'version', 'api', 'entrypoint', 'code'],
  registers: [registry],
});

const duration = new Histogram({
  name: 'modelgate_request_duration_seconds',
  help: 'Request latency per model version, API and front door, in seconds.',
  labelNames: ['model', 'version', 'api', 'entrypoint'],
  buckets: LATENCY_BUCKETS_US.map((us) => us / 1e6),
  registers: [registry],
});

export const workerRestarts = new Counter({
  name: 'modelgate_worker_restarts_total',
  help: 'Worker processes restarted after exiting or hanging.',
  labelNames: ['model', 'version'],
  registers: [registry],
});

export const modelLoads = new Counter({
  name: 'modelgate_model_loads_total',
  help: 'Model versions loaded into local workers, by reason: eager (default: at start-up, config change or new version folder) or on_demand (first request, or the next request after eviction).',
  labelNames: ['reason'],
  registers: [registry],
});

export const modelEvictions = new Counter({
  name: 'modelgate_model_evictions_total',
  help: 'Loaded model versions unloaded to stay within --max_loaded_versions (least recently used, nothing in flight).',
  registers: [registry],
});

export const configReloads = new Counter({
  name: 'modelgate_config_reloads_total',
  help: 'models.config reloads by result (ok, failed).',
  labelNames: ['result'],
  registers: [registry],
});

export const redisConnected = new Gauge({
  name: 'modelgate_redis_connected',
  help: '1 while the gateway is connected to the shared routing state in Redis (0 when embedded or away).',
  registers: [registry],
});

export const modelVersions = new Gauge({
  name: 'modelgate_model_versions',
  help: 'Model versions by state.',
  labelNames: ['model', 'state'],
  registers: [registry],
});

export interface RequestObservation {
  model: string;
  /** The served version, when the request got that far. */
  version: number | undefined;
  api: string;
  entrypoint: 'REST' | 'GRPC';
  /** TF error code number; 0 = OK. */
  code: number;
  seconds: number;
}

/**
 * Model names that match no configured model are labelled as the client sent them (as TF Serving
 * does) for the first MAX_UNKNOWN_MODEL_LABELS distinct ones, then all as OTHER_MODEL_LABEL: every
 * label value is a series held for the life of the process, so names from URLs must not grow the
 * registry without bound.
 */
export const MAX_UNKNOWN_MODEL_LABELS = 100;
export const OTHER_MODEL_LABEL = '__other__';
const unknownModelLabels = new Set<string>();
let isConfiguredModel: (name: string) => boolean = () => false;

/** How to tell a configured model (the gateway's routing table); set by the gateway at startup. */
export function setConfiguredModelCheck(check: (name: string) => boolean): void {
  isConfiguredModel = check;
}

function modelLabel(o: RequestObservation): string {
  if (o.version !== undefined || unknownModelLabels.has(o.model) || isConfiguredModel(o.model)) return o.model;
  if (unknownModelLabels.size >= MAX_UNKNOWN_MODEL_LABELS) return OTHER_MODEL_LABEL;
  unknownModelLabels.add(o.model);
  return o.model;
}

interface BoundSeries {
  tfCount: { inc(): void };
  requests: { inc(): void };
  /** Latency series, for OK answers only. */
  tfLatency: { observe(v: number): void } | undefined;
  duration: { observe(v: number): void } | undefined;
}

/**
 * Label sets bound once per (model, version, api, front door, code): prom-client hashes a label
 * object on every call otherwise. Only requests that reached a version (a configured model) are
 * bound, so the map is bounded by what is configured; it is dropped if it ever grows past
 * MAX_BOUND_SERIES (models and versions come and go over a long life).
 */
const boundSeries = new Map<string, BoundSeries>();
const MAX_BOUND_SERIES = 10_000;

function bind(model: string, version: string, api: string, entrypoint: string, code: number): BoundSeries {
  const status = codeName(code);
  const ok = code === 0;
  return {
    tfCount: tfRequestCount.labels({ model_name: model, status }),
    requests: requests.labels({ model, version, api, entrypoint, code: status }),
    tfLatency: ok ? tfRequestLatency.labels({ model_name: model, API: api, entrypoint }) : undefined,
    duration: ok ? duration.labels({ model, version, api, entrypoint }) : undefined,
  };
}

export function observeRequest(o: RequestObservation): void {
  let series: BoundSeries | undefined;
  if (o.version !== undefined) {
    const key = `${o.model}\u0000${o.version}\u0000${o.api}\u0000${o.entrypoint}\u0000${o.code}`;
    series = boundSeries.get(key);
    if (!series) {
      if (boundSeries.size >= MAX_BOUND_SERIES) boundSeries.clear();
      series = bind(o.model, String(o.version), o.api, o.entrypoint, o.code);
      boundSeries.set(key, series);
    }
  } else {
    series = bind(modelLabel(o), '', o.api, o.entrypoint, o.code);
  }
  series.tfCount.inc();
  series.requests.inc();
  if (o.code === 0) {
    series.tfLatency?.observe(o.seconds * 1e6);
    series.duration?.observe(o.seconds);
  }
}

/**
 * Adds `model` and `version` labels to every sample of a worker's exposition text, and drops its
 * HELP/TYPE lines for metric names already described (several workers export the same names).
 */
export function relabelWorkerMetrics(text: string, model: string, version: number, described: Set<string>): string {
  const labels = `model="${model.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}",version="${version}"`;
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    if (line.startsWith('#')) {
      const name = line.split(' ')[2] ?? '';
      const key = `${line.split(' ')[1]} ${name}`;
      if (described.has(key)) continue;
      described.add(key);
      out.push(line);
      continue;
    }
    const brace = line.indexOf('{');
    const space = line.indexOf(' ');
    out.push(
      brace !== -1 && brace < space
        ? `${line.slice(0, brace + 1)}${labels},${line.slice(brace + 1)}`
        : `${line.slice(0, space)}{${labels}}${line.slice(space)}`,
    );
  }
  return out.join('\n');
}
