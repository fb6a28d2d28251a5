/**
 * TF Serving's Prometheus endpoint on the REST port: `--monitoring_config_file` names a text-format
 * `tensorflow.serving.MonitoringConfig`; with `prometheus_config { enable: true }` the metrics are
 * served at its `path` (default `/monitoring/prometheus/metrics`) for any method, as `text/plain`.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadProtoRoot } from '../../common/protos.js';
import { Kind } from '../../common/worker-protocol.js';
import type { WorkerChannel } from '../fleet/worker-channel.js';
import { parseTextFormat } from '../../common/text-format.js';
import type { ModelManager } from '../manager/model-manager.js';
import { modelVersions, redisConnected, registry, relabelWorkerMetrics } from '../metrics.js';
import type { SharedRouting } from '../routing/shared-routing.js';

export const DEFAULT_METRICS_PATH = '/monitoring/prometheus/metrics';

export interface PrometheusConfig {
  enable: boolean;
  path: string;
}

/** Reads a MonitoringConfig file; errors carry file:line:col like models.config's. */
export async function loadMonitoringConfig(file: string): Promise<PrometheusConfig> {
  const type = loadProtoRoot(['tensorflow_serving/config/monitoring_config.proto']).lookupType('tensorflow.serving.MonitoringConfig');
  const abs = path.resolve(file);
  const { value } = parseTextFormat(await readFile(abs, 'utf8'), type, abs);
  const prom = (value.prometheus_config ?? {}) as { enable?: boolean; path?: string };
  return { enable: prom.enable === true, path: prom.path || DEFAULT_METRICS_PATH };
}

export interface MonitoringApiOptions {
  manager: ModelManager;
  shared: SharedRouting | undefined;
  path: string;
}

const WORKER_SCRAPE_TIMEOUT_MS = 500;

/** A worker's own exposition text, or '' if it has none or does not answer in time. */
async function scrape(channel: WorkerChannel): Promise<string> {
  try {
    const res = await channel.call({ kind: Kind.METRICS, body: new Uint8Array(0), deadline: Date.now() + WORKER_SCRAPE_TIMEOUT_MS });
    return res.status === 200 ? res.body.toString('utf8') : '';
  } catch {
    return '';
  }
}

export async function monitoringApi(app: FastifyInstance, { manager, shared, path: metricsPath }: MonitoringApiOptions): Promise<void> {
  app.route({
    method: ['GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'],
    url: metricsPath,
    handler: async (_req, reply) => {
      redisConnected.set(shared?.connected ? 1 : 0);
      modelVersions.reset();
      for (const name of manager.configuredModels()) {
        try {
          for (const s of manager.status(name)) modelVersions.inc({ model: name, state: s.state });
        } catch {
          // a model with no versions yet has nothing to count
        }
      }
      const own = await registry.metrics();
      const described = new Set<string>();
      const replicas = manager.localReplicas();
      const texts = await Promise.all(replicas.map(({ worker }) => scrape(worker.channel)));
      const workers = texts.map((text, i) =>
        text ? relabelWorkerMetrics(text, replicas[i]!.model, replicas[i]!.version, described) : '',
      );
      const body = [own.trimEnd(), ...workers.filter(Boolean)].join('\n') + '\n';
      void reply.code(200).header('content-type', 'text/plain; version=0.0.4').send(Buffer.from(body));
    },
  });
}
