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
 *   modelgate_mirror_requests_total{model, version, api, code}, modelgate_mirror_request_duration_seconds{model, version, api},
 *   modelgate_mirror_dropped_total{model, version, reason}   (mirroring, --traffic_config_file)
 * prom-client's default process series for the gateway process (process_resident_memory_bytes,
 * nodejs_heap_size_used_bytes, nodejs_external_memory_bytes, event loop lag, GC, …),
 * and every local worker's own series (batching queue depth, batch sizes), scraped from the worker
 * at collection time with `model` and `version` labels added.
 *
 * One registry per process: tests that start several gateways in one process share it.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { codeName } from '../common/errors.js';

export const registry = new Registry();
collectDefaultMetrics({ register: registry });

/** TF Serving's latency buckets are in microseconds; these span 50 µs to 60 s. */
const LATENCY_BUCKETS_US = [50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1e6, 5e6, 60e6];

/** One series of a request family: plain numbers, written on the request path without hashing. */
interface SeriesValues {
  readonly labels: Readonly<Record<string, string>>;
  count: number;
  sum: number;
  /** Per bucket (not cumulative), histograms only. */
  readonly buckets: Float64Array | undefined;
}

/**
 * A counter or histogram family for the per-request series. prom-client's own metrics hash the label
 * object on every `inc`/`observe` (and its bound children do too), which showed as several percent of
 * the gateway's CPU per request; here a caller binds a label set once and an observation is a few
 * number writes. The registry reads the family through the same `get()` shape prom-client's metrics
 * have, so the exposition text is the same.
 */
class RequestFamily {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly aggregator = 'sum';
  readonly #bounds: readonly number[] | undefined;
  readonly #series = new Map<string, SeriesValues>();

  constructor(name: string, help: string, bounds?: readonly number[]) {
    this.name = name;
    this.help = help;
    this.type = bounds ? 'histogram' : 'counter';
    this.#bounds = bounds;
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** The series for these label values (in the family's label order), created on first use. */
  bind(labels: Record<string, string>): SeriesValues {
    const key = Object.values(labels).join('\u0000');
    let series = this.#series.get(key);
    if (!series) {
      series = { labels, count: 0, sum: 0, buckets: this.#bounds ? new Float64Array(this.#bounds.length) : undefined };
      this.#series.set(key, series);
    }
    return series;
  }

  /** Adds one observation (a counter counts it; a histogram also buckets `value`). */
  observe(series: SeriesValues, value: number): void {
    series.count++;
    const buckets = series.buckets;
    if (!buckets) return;
    series.sum += value;
    const bounds = this.#bounds as readonly number[];
    for (let i = 0; i < bounds.length; i++) {
      if (value <= (bounds[i] as number)) {
        (buckets[i] as number)++;
        break;
      }
    }
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Array<{ labels: Record<string, string | number>; value: number; metricName?: string }> }> {
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName?: string }> = [];
    for (const s of this.#series.values()) {
      if (!s.buckets) {
        values.push({ labels: { ...s.labels }, value: s.count });
        continue;
      }
      let acc = 0;
      (this.#bounds as readonly number[]).forEach((le, i) => {
        acc += s.buckets![i] as number;
        values.push({ labels: { ...s.labels, le }, value: acc, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { ...s.labels, le: '+Inf' }, value: s.count, metricName: `${this.name}_bucket` });
      values.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.#series.clear();
  }
}

const tfRequestCount = new RequestFamily(':tensorflow:serving:request_count', 'The total number of requests.');

const tfRequestLatency = new RequestFamily(
  ':tensorflow:serving:request_latency',
  'Distribution of wall time (in microseconds) for Tensorflow Serving request.',
  LATENCY_BUCKETS_US,
);

const requests = new RequestFamily('modelgate_requests_total', 'Requests per model version, API, front door and TF status code.');

const duration = new RequestFamily(
  'modelgate_request_duration_seconds',
  'Request latency per model version, API and front door, in seconds.',
  LATENCY_BUCKETS_US.map((us) => us / 1e6),
);

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
  tfCount: SeriesValues;
  requests: SeriesValues;
  /** Latency series, for OK answers only. */
  tfLatency: SeriesValues | undefined;
  duration: SeriesValues | undefined;
}

/**
 * Series bound once per (model, version, api, front door, code). Only requests that reached a version
 * (a configured model) are kept here, so the map is bounded by what is configured; it is dropped if it
 * ever grows past MAX_BOUND_SERIES (models and versions come and go over a long life).
 */
const boundSeries = new Map<string, BoundSeries>();
const MAX_BOUND_SERIES = 10_000;

function bind(model: string, version: string, api: string, entrypoint: string, code: number): BoundSeries {
  const status = codeName(code);
  const ok = code === 0;
  return {
    tfCount: tfRequestCount.bind({ model_name: model, status }),
    requests: requests.bind({ model, version, api, entrypoint, code: status }),
    tfLatency: ok ? tfRequestLatency.bind({ model_name: model, API: api, entrypoint }) : undefined,
    duration: ok ? duration.bind({ model, version, api, entrypoint }) : undefined,
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
  tfRequestCount.observe(series.tfCount, 1);
  requests.observe(series.requests, 1);
  if (series.tfLatency) tfRequestLatency.observe(series.tfLatency, o.seconds * 1e6);
  if (series.duration) duration.observe(series.duration, o.seconds);
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

const mirrorRequests = new RequestFamily(
  'modelgate_mirror_requests_total',
  'Mirrored requests (--traffic_config_file) per model, version mirrored to, API and TF status code; their answers are discarded.',
);
const mirrorDuration = new RequestFamily(
  'modelgate_mirror_request_duration_seconds',
  'Latency of mirrored requests per model, version mirrored to and API, in seconds (all status codes).',
  LATENCY_BUCKETS_US.map((us) => us / 1e6),
);
const mirrorDropped = new RequestFamily(
  'modelgate_mirror_dropped_total',
  'Mirror copies not sent, per model, version and reason (inflight_limit: --mirror_max_inflight reached; unavailable: the version takes no requests).',
);

/** Mirror series bound once per (model, version, api, code) or (model, version, reason). */
const mirrorSeries = new Map<string, { count: SeriesValues; duration: SeriesValues | undefined }>();

/** One mirrored request's outcome. */
export function observeMirror(model: string, version: number, api: string, code: number, seconds: number): void {
  const key = `${model}\u0000${version}\u0000${api}\u0000${code}`;
  let s = mirrorSeries.get(key);
  if (!s) {
    if (mirrorSeries.size >= MAX_BOUND_SERIES) mirrorSeries.clear();
    const v = String(version);
    s = { count: mirrorRequests.bind({ model, version: v, api, code: codeName(code) }), duration: mirrorDuration.bind({ model, version: v, api }) };
    mirrorSeries.set(key, s);
  }
  mirrorRequests.observe(s.count, 1);
  mirrorDuration.observe(s.duration as SeriesValues, seconds);
}

/** One mirror copy dropped. */
export function countMirrorDrop(model: string, version: number, reason: 'inflight_limit' | 'unavailable'): void {
  const key = `drop\u0000${model}\u0000${version}\u0000${reason}`;
  let s = mirrorSeries.get(key);
  if (!s) {
    if (mirrorSeries.size >= MAX_BOUND_SERIES) mirrorSeries.clear();
    s = { count: mirrorDropped.bind({ model, version: String(version), reason }), duration: undefined };
    mirrorSeries.set(key, s);
  }
  mirrorDropped.observe(s.count, 1);
}
