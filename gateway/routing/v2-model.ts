/**
 * What the Open Inference Protocol ("KServe v2") asks of the gateway itself, shared by its REST and
 * gRPC front doors: resolving `<model>[/versions/<v>]` on the routing snapshot, server and model
 * readiness, and the server and model metadata documents (from the signatures the gateway already
 * holds; TF dtypes become v2 datatypes through common/v2-datatypes.ts).
 *
 * Versions: `<v>` all digits is a version number; anything else is a version label (our extension:
 * `versions/canary` routes like TF Serving's `/labels/canary`); no version is TF Serving's default,
 * the latest AVAILABLE version. Unknown models, versions and labels are NOT_FOUND, with Triton's
 * wording ("Request for unknown model: ...").
 */
import { createRequire } from 'node:module';
import { Code, ServingError } from '../../common/errors.js';
import type { TensorInfo } from '../../common/signature.js';
import { V2_DATATYPE_OF, V2_EXTENSIONS, v2Platform } from '../../common/v2-datatypes.js';
import type { ModelManager } from '../manager/model-manager.js';
import { splitUnavailable, type RoutingTable, type VersionRoute } from './routing-table.js';
import { pickSplit } from './traffic-split.js';

const pkg = createRequire(import.meta.url)('../../../package.json') as { version: string };

export const V2_SERVER_NAME = 'modelgate';
export const V2_SERVER_VERSION = pkg.version;
export const DEFAULT_SIGNATURE = 'serving_default';

export interface V2ServerMetadata {
  name: string;
  version: string;
  extensions: readonly string[];
}

export const V2_SERVER_METADATA: V2ServerMetadata = { name: V2_SERVER_NAME, version: V2_SERVER_VERSION, extensions: V2_EXTENSIONS };

/** Resolves a v2 model name and optional version (number or label) to a route; `key`: the routing key. */
export function resolveV2(table: RoutingTable, name: string, version: string | undefined, key?: string): VersionRoute {
  const model = table.model(name);
  if (!model) throw new ServingError(Code.NOT_FOUND, `Request for unknown model: '${name}' is not found`);
  if (version === undefined || version === '') {
    const latest = model.available[0];
    if (!latest) throw new ServingError(Code.UNAVAILABLE, `Model '${name}' has no available versions`);
    return latest;
  }
  let number: number | undefined;
  if (/^\d+$/.test(version)) number = Number(version);
  else {
    // A split label (--traffic_config_file) picks among its versions, as TF Serving's label routes do.
    const split = model.splits.size !== 0 ? model.splits.get(version) : undefined;
    if (split) {
      const picked = pickSplit(split, key);
      if (picked) return picked;
      if (!model.labels.has(version)) throw splitUnavailable(name, split);
    }
    number = model.labels.get(version);
  }
  const route = number !== undefined && Number.isSafeInteger(number) ? model.byVersion.get(number) : undefined;
  if (!route) throw new ServingError(Code.NOT_FOUND, `Request for unknown model: '${name}' version ${version} is not found`);
  return route;
}

/** Whether the server is ready: by the same rule as `/readyz` (--readiness_requires_all_models). */
export function serverReady(manager: ModelManager, requireAllModels: boolean): boolean {
  const models = manager.configuredModels();
  let notReady = 0;
  for (const name of models) {
    if (!manager.table.model(name)?.available.length) notReady++;
  }
  return requireAllModels ? notReady === 0 : notReady < models.length || models.length === 0;
}

/**
 * Whether a model (version) is ready: it resolves and a replica can take requests. An unknown model,
 * version or label throws NOT_FOUND, as infer would; a model with no available version is not ready.
 */
export function modelReady(table: RoutingTable, name: string, version: string | undefined): boolean {
  try {
    return resolveV2(table, name, version).replicas.length > 0;
  } catch (err) {
    if (err instanceof ServingError && err.code === Code.NOT_FOUND) throw err;
    return false;
  }
}

export interface V2TensorMetadata {
  name: string;
  datatype: string;
  shape: number[];
}

export interface V2ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: V2TensorMetadata[];
  outputs: V2TensorMetadata[];
}

const side = (infos: Readonly<Record<string, TensorInfo>>): V2TensorMetadata[] =>
  Object.entries(infos).map(([alias, info]) => ({
    name: alias,
    datatype: V2_DATATYPE_OF[info.dtype],
    // Unknown rank has no v2 spelling; it is shown as one unknown dimension.
    shape: info.shape === null ? [-1] : info.shape.map((d) => (d < 0 ? -1 : d)),
  }));

/** Model metadata of a resolved version; `versions` lists every AVAILABLE version of the model. */
export function modelMetadata(table: RoutingTable, route: VersionRoute): V2ModelMetadata {
  const sig = Object.hasOwn(route.signatures, DEFAULT_SIGNATURE) ? route.signatures[DEFAULT_SIGNATURE] : undefined;
  const model = table.model(route.model);
  return {
    name: route.model,
    versions: (model?.available ?? [route]).map((r) => String(r.version)),
    platform: v2Platform(route.platform),
    inputs: sig ? side(sig.inputs) : [],
    outputs: sig ? side(sig.outputs) : [],
  };
}
