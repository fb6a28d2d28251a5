/**
 * Extensions to TF Serving's REST API for operators (documented in the README):
 *
 *   GET  /v1/config                    the config in force, reload counts, the last reload and last error
 *   POST /v1/config:reload             TF's HandleReloadConfigRequest over REST: an empty body re-reads
 *                                      --model_config_file; a body is text-format ModelServerConfig to
 *                                      apply instead. Answers after new versions have loaded, with
 *                                      ReloadConfigResponse's `status`, or 400 `{"error"}` (nothing changed).
 *   GET  /v1/models/<name>/labels      active labels, labels pending on a version that is loading, and the
 *                                      traffic file's splits (effective shares) and mirrors
 *   GET  /v1/cluster                   this gateway's id, and with Redis: writer, connectivity, generation
 *   GET  /v1/models                    every configured model with its version statuses and labels
 *                                      (TF Serving answers 400 "Missing model name"; its issue #795)
 *   GET  /healthz                      liveness: 200 while the gateway process serves
 *   GET  /readyz                       readiness: 200 when every configured model has an AVAILABLE
 *                                      version (--readiness_requires_all_models=false: any model), else 503
 *                                      (TF Serving's issues #671, #1754)
 */
import type { FastifyInstance } from 'fastify';
import { Code, errorBody, httpStatus } from '../../common/errors.js';
import type { ConfigSource } from '../config/config-source.js';
import type { ModelManager } from '../manager/model-manager.js';
import type { ModelRoute } from '../routing/routing-table.js';
import type { SharedRouting } from '../routing/shared-routing.js';

export interface AdminApiOptions {
  manager: ModelManager;
  configSource: ConfigSource;
  shared: SharedRouting | undefined;
  gatewayId: string;
  /** Ready only when every configured model has an AVAILABLE version (else: when any has). */
  readinessRequiresAllModels: boolean;
}

/** Configured models with no AVAILABLE version (fleet-wide). */
export function modelsNotReady(manager: ModelManager): string[] {
  return manager.configuredModels().filter((name) => {
    try {
      // --load_on_demand: a version waiting for its first request (START, not failed) counts as ready.
      return !manager.status(name).some((s) => s.state === 'AVAILABLE' || (manager.loadOnDemand && s.state === 'START'));
    } catch {
      return true;
    }
  });
}

const json = (value: unknown) => JSON.stringify(value, null, 1) + '\n';

export async function adminApi(
  app: FastifyInstance,
  { manager, configSource, shared, gatewayId, readinessRequiresAllModels }: AdminApiOptions,
): Promise<void> {
  app.get('/healthz', async (_req, reply) => {
    void reply.type('application/json').send(json({ status: 'ok' }));
  });

  app.get('/readyz', async (_req, reply) => {
    const models = manager.configuredModels();
    const notReady = modelsNotReady(manager);
    const ready = readinessRequiresAllModels ? notReady.length === 0 : notReady.length < models.length || models.length === 0;
    void reply
      .code(ready ? 200 : 503)
      .type('application/json')
      .send(json({ status: ready ? 'ready' : 'not ready', models_not_ready: notReady }));
  });

  app.get('/v1/models', async (_req, reply) => {
    const models = manager
      .configuredModels()
      .sort()
      .map((name) => {
        let versions: unknown[] = [];
        try {
          versions = manager.status(name);
        } catch {
          // configured, no versions yet
        }
        const labels = manager.labels(name);
        const asObject = (m: ReadonlyMap<string, number> | undefined) =>
          Object.fromEntries([...(m ?? [])].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, String(v)]));
        return {
          name,
          model_version_status: versions,
          labels: asObject(labels?.active),
          pending_labels: asObject(labels?.pending),
          ...trafficView(manager.traffic(name)),
        };
      });
    void reply.type('application/json').send(json({ models }));
  });

  app.get('/v1/cluster', async (_req, reply) => {
    const body = shared
      ? {
          gateway_id: gatewayId,
          mode: 'redis',
          redis_connected: shared.connected,
          is_writer: shared.isWriter,
          writer: shared.writer ?? null,
          desired: shared.lastDesired
            ? { token: shared.lastDesired.token, generation: shared.lastDesired.generation, writer: shared.lastDesired.writer }
            : null,
          routing_generation: manager.table.generation,
        }
      : { gateway_id: gatewayId, mode: 'embedded', routing_generation: manager.table.generation };
    void reply.type('application/json').send(json(body));
  });

  app.get('/v1/config', async (_req, reply) => {
    void reply.type('application/json').send(json(configSource.status()));
  });

  app.post('/v1/config::reload', async (req, reply) => {
    const body = req.body instanceof Buffer ? req.body.toString('utf8') : '';
    const result = body.trim()
      ? await configSource.reloadFromText(body, 'rest', true)
      : await configSource.reloadFromFile('rest');
    if (!result.ok) {
      void reply.code(httpStatus(Code.INVALID_ARGUMENT)).type('application/json').send(errorBody(result.error ?? ''));
      return;
    }
    void reply.type('application/json').send(json({ status: { error_code: 'OK', error_message: '' } }));
  });

  app.get<{ Params: { name: string } }>('/v1/models/:name/labels', async (req, reply) => {
    const labels = manager.labels(req.params.name);
    if (!labels) {
      void reply
        .code(httpStatus(Code.NOT_FOUND))
        .type('application/json')
        .send(errorBody(`Could not find any versions of model ${req.params.name}`));
      return;
    }
    const asObject = (m: ReadonlyMap<string, number>) =>
      Object.fromEntries([...m].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, String(v)]));
    const traffic = manager.traffic(req.params.name);
    void reply
      .type('application/json')
      .send(json({ labels: asObject(labels.active), pending_labels: asObject(labels.pending), ...trafficView(traffic) }));
  });
}

export interface SplitView {
  versions: Array<{ version: string; weight: number; effective_percent: number; available: boolean }>;
  /** Set when a version of the split takes no share now. */
  note?: string;
}

/**
 * A model's splits and mirrors as `GET /v1/models/<m>/labels` shows them: each split version's
 * configured weight and effective share (a version that takes no requests has 0 and the others grow).
 */
export function trafficView(traffic: Pick<ModelRoute, 'splits' | 'mirrors'> | undefined): {
  splits: Record<string, SplitView>;
  mirrors: Record<string, { to_version: string; percent: number; available: boolean }>;
} {
  const splits: Record<string, SplitView> = {};
  for (const [label, split] of [...(traffic?.splits ?? [])].sort(([a], [b]) => a.localeCompare(b))) {
    const versions = split.view.map((v) => ({
      version: String(v.version),
      weight: v.weight,
      effective_percent: Math.round(v.effectivePercent * 100) / 100,
      available: v.available,
    }));
    const down = split.view.filter((v) => !v.available).map((v) => v.version);
    const view: SplitView = { versions };
    if (down.length === split.view.length) view.note = `no version of the split is available; the label routes as configured, if it is`;
    else if (down.length > 0) view.note = `version${down.length > 1 ? 's' : ''} ${down.join(', ')} not available: ${down.length > 1 ? 'their shares go' : 'its share goes'} to the others`;
    splits[label] = view;
  }
  const mirrors: Record<string, { to_version: string; percent: number; available: boolean }> = {};
  for (const [label, m] of [...(traffic?.mirrors ?? [])].sort(([a], [b]) => a.localeCompare(b))) {
    mirrors[label] = { to_version: String(m.toVersion), percent: m.percent, available: m.target !== undefined };
  }
  return { splits, mirrors };
}
