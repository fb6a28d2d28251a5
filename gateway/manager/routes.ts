/**
 * Builds one model's part of the routing table from the manager's state: a pure function, so what a
 * request can reach in each state is stated (and tested) in one place.
 *
 * - AVAILABLE local versions route to their replicas (a version whose replicas are all restarting
 *   stays routable with none: requests get a fast 503).
 * - With --load_on_demand, versions that are not loaded (IDLE, LOADING, being evicted) route too,
 *   with no replicas and the hooks the request path waits on (`acquire`, `load`); loaded versions get
 *   the hooks as well, so a request holds its version against eviction.
 * - Versions served elsewhere in the fleet (the shared view) add their replicas; a version served
 *   elsewhere and not loaded here routes there without loading it here.
 * - Labels resolve against every routable version (version-labels.ts).
 * - Label splits and mirrors of the traffic file become routes over the same versions
 *   (routing/traffic-split.ts); their cursors carry over from the previous build.
 */
import type { SignatureDef } from '../../common/signature.js';
import type { Replica } from '../fleet/replica.js';
import type { ModelTraffic } from '../config/traffic-config.js';
import { NO_TRAFFIC_RULES, type HeldRoute, type ModelRoute, type VersionRoute } from '../routing/routing-table.js';
import { buildMirrorRoute, buildSplitRoute, type MirrorRoute, type SplitRoute } from '../routing/traffic-split.js';
import { resolveLabels, type LabelState } from './version-labels.js';
import type { VersionState } from './version-state.js';

export interface LocalVersionView {
  readonly version: number;
  readonly state: VersionState;
  /** Being unloaded for good (no longer desired). */
  readonly unloaded: boolean;
  readonly replicas: readonly Replica[];
  readonly metadataJson: string;
  readonly signatures: Readonly<Record<string, SignatureDef>>;
}

export interface RemoteVersionView {
  readonly replicas: readonly Replica[];
  readonly signatures: Readonly<Record<string, SignatureDef>>;
  readonly metadataJson: string;
}

export interface OnDemandHooks {
  acquire: () => HeldRoute | undefined;
  load: (deadline: number | undefined) => Promise<HeldRoute>;
}

export interface ModelRouteInput {
  name: string;
  /** The model's configured platform (`onnx`, `tensorflow`), for v2 model metadata. */
  platform?: string | undefined;
  local: Iterable<LocalVersionView>;
  remote: ReadonlyMap<number, RemoteVersionView> | undefined;
  configuredLabels: Readonly<Record<string, number>>;
  previousLabels: ReadonlyMap<string, number>;
  allowUnavailableLabels: boolean;
  /** --load_on_demand: the hooks of a local version; absent with eager loading. */
  onDemand?: ((version: number) => OnDemandHooks) | undefined;
  /** The model's splits and mirrors (--traffic_config_file). */
  traffic?: ModelTraffic | undefined;
  /** The model's previous route, whose split and mirror cursors carry over. */
  previous?: ModelRoute | undefined;
}

export function buildModelRoute(input: ModelRouteInput): { route: ModelRoute; labels: LabelState } {
  const { name, onDemand } = input;
  const platform = input.platform === undefined ? {} : { platform: input.platform };
  const byVersion = new Map<number, VersionRoute>();
  for (const v of input.local) {
    const notLoaded = v.state === 'IDLE' || v.state === 'LOADING' || v.state === 'UNLOADING';
    if (v.state !== 'AVAILABLE' && !(onDemand && notLoaded && !v.unloaded)) continue;
    byVersion.set(v.version, {
      model: name,
      version: v.version,
      replicas: v.state === 'AVAILABLE' ? v.replicas : [],
      metadataJson: v.metadataJson,
      signatures: v.signatures,
      ...platform,
      ...(onDemand ? onDemand(v.version) : {}),
    });
  }
  for (const [version, rv] of input.remote ?? []) {
    const local = byVersion.get(version);
    const localLoaded = local !== undefined && local.replicas.length > 0;
    byVersion.set(version, {
      model: name,
      version,
      replicas: local ? [...local.replicas, ...rv.replicas] : rv.replicas,
      metadataJson: local?.metadataJson || rv.metadataJson,
      signatures: local?.metadataJson ? local.signatures : rv.signatures,
      ...platform,
      ...(localLoaded && local.acquire && local.load ? { acquire: local.acquire, load: local.load } : {}),
    });
  }
  const labels = resolveLabels(input.configuredLabels, input.previousLabels, (v) => byVersion.has(v), input.allowUnavailableLabels);
  const available = [...byVersion.values()].sort((a, b) => b.version - a.version);
  let splits: ReadonlyMap<string, SplitRoute> = NO_TRAFFIC_RULES;
  let mirrors: ReadonlyMap<string, MirrorRoute> = NO_TRAFFIC_RULES;
  const traffic = input.traffic;
  if (traffic && traffic.splits.size > 0) {
    const m = new Map<string, SplitRoute>();
    for (const [label, config] of traffic.splits) m.set(label, buildSplitRoute(config, byVersion, input.previous?.splits.get(label)?.cursor));
    splits = m;
  }
  if (traffic && traffic.mirrors.size > 0) {
    const m = new Map<string, MirrorRoute>();
    for (const [label, config] of traffic.mirrors) m.set(label, buildMirrorRoute(config, byVersion, input.previous?.mirrors.get(label)?.cursor));
    mirrors = m;
  }
  return { route: { name, available, byVersion, labels: labels.active, splits, mirrors }, labels };
}
