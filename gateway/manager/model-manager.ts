/**
 * The model manager: converges running workers towards the desired state, keeps each version's
 * public state (TF Serving's START → LOADING → AVAILABLE → UNLOADING → END), and publishes a new
 * routing table after every change.
 *
 * Desired state is recomputed from scratch on every reconcile (config + the folders on disk, through
 * the pure version policy); omission means unload. Switches preserve availability: versions that
 * are no longer aspired unload only once every aspired version has settled (AVAILABLE or failed),
 * so `latest` never points at nothing during a rollout.
 *
 * Workers that die unexpectedly are restarted with exponential backoff; while a version has no live
 * replica it leaves the routing table, so requests fail fast with 404/503 instead of hanging.
 *
 * With --load_on_demand a configured version starts IDLE (version-state.ts) and stays routable: its
 * route carries a `load` hook that the request path (routing/forward.ts) awaits, so the first request
 * and every request arriving meanwhile share one load. With --max_loaded_versions a load first makes
 * room by evicting least recently used idle versions (eviction.ts), which go back to IDLE.
 *
 * Worker processes are made by `createReplica` (default: a WorkerProcess), so tests can drive the
 * manager with fake replicas.
 */
import { Code, codeName, ServingError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { SignatureDef } from '../../common/signature.js';
import type { ModelConfig, ServerConfig } from '../config/model-config.js';
import { WorkerProcess, type ReadyInfo, type WorkerOptions, type WorkerSpec } from '../fleet/worker-process.js';
import { RemoteReplica, type Replica } from '../fleet/replica.js';
import type { EndpointRecord } from '../../common/shared-state.js';
import { aspiredVersions } from '../repository/version-policy.js';
import { isVersionComplete, listVersionFolders } from '../repository/version-folders.js';
import { RoutingTable, type ModelRoute, type VersionRoute } from '../routing/routing-table.js';
import type { LabelState } from './version-labels.js';
import { buildModelRoute } from './routes.js';
import { trafficByModel, type ModelTraffic } from '../config/traffic-config.js';
import { modelEvictions, modelLoads } from '../metrics.js';
import { Supervisor, type ManagedReplica } from './supervisor.js';
import { StandbyPool } from './standby-pool.js';
import { metadataJson } from '../rest/metadata-json.js';
import { holdsWorkers, servableState, transition, type ServableState, type VersionState } from './version-state.js';
import { planEviction, type EvictionCandidate } from './eviction.js';

export type { ServableState } from './version-state.js';
export { metadataJson } from '../rest/metadata-json.js';

export type { ManagedReplica } from './supervisor.js';

export interface ModelVersionStatus {
  version: string;
  state: ServableState;
  status: { error_code: string; error_message: string };
}

export interface ManagerOptions {
  worker: WorkerOptions;
  /** Worker processes per model version. */
  replicas: number;
  /** Versions loading at once. */
  loadConcurrency: number;
  /** Extra load attempts after a failure that may be transient (--max_num_load_retries). */
  maxLoadRetries: number;
  loadRetryIntervalMs: number;
  /** --allow_version_labels_for_unavailable_models */
  allowUnavailableLabels: boolean;
  /** Spawn local worker processes (false: route only to workers found in the shared view). */
  spawnLocal?: boolean;
  /** Connections to each remote worker. */
  remoteConnections?: number;
  /** Called after every routing table swap. */
  onChange?: () => void;
  logger: Logger;
  /** --load_on_demand: configured versions load on their first request. */
  loadOnDemand?: boolean;
  /** --max_loaded_versions (with loadOnDemand): versions holding workers at once; 0 = no limit. */
  maxLoadedVersions?: number;
  /**
   * --standby_workers (with loadOnDemand): ONNX worker processes kept started with no model, so an
   * on-demand load that cannot reuse an evicted worker skips the process start.
   */
  standbyWorkers?: number;
  /** Makes a local replica; default: a WorkerProcess with `worker` options. */
  createReplica?: (spec: WorkerSpec) => ManagedReplica;
}

/** A version some other process serves, from the shared (Redis) view. */
interface RemoteVersion {
  replicas: RemoteReplica[];
  signatures: Record<string, SignatureDef>;
  metadataJson: string;
}

interface ServableVersion {
  readonly model: string;
  readonly version: number;
  readonly path: string;
  state: VersionState;
  error: ServingError | undefined;
  /** Live, ready replicas. */
  replicas: ManagedReplica[];
  info: ReadyInfo | undefined;
  metadataJson: string;
  /** True once unloading was asked for: a version that ended this way may be loaded again. */
  unloaded: boolean;
  restartAttempts: number;
  /** Epoch ms of the last request routed to it (or of its load): the LRU order for eviction. */
  lastUsed: number;
  /** Requests waiting for its on-demand load or using it after one (never evicted while > 0). */
  waiting: number;
  /** The on-demand load (or eviction then load) requests share, while one runs. */
  demand: Promise<void> | undefined;
  /** The eviction under way, if any. */
  evicting: Promise<void> | undefined;
  /** Times it was evicted (status says so while it is IDLE again). */
  evictions: number;
  /** Counts its loads: a replica lost in one load is not restarted in the next. */
  generation: number;
}

interface ModelEntry {
  readonly name: string;
  /** undefined once the model is removed from the config (its END statuses stay queryable). */
  config: ModelConfig | undefined;
  readonly versions: Map<number, ServableVersion>;
  labels: LabelState;
  /** False until the base path has been listed once. */
  scanned: boolean;
  /** Serialises reconciles of one model. */
  reconciling: Promise<void>;
}

/** A new version folder must stay unchanged this long before it loads. */
const SETTLE_MS = 200;
/** ...unless its model file is still missing after this long: then it loads and reports the error. */
const GIVE_UP_MS = 30_000;
const LOAD_PROGRESS_MS = 5_000;

export class ModelManager {
  readonly #options: ManagerOptions;
  readonly #models = new Map<string, ModelEntry>();
  readonly #pendingLoads = new Set<Promise<void>>();
  #table = RoutingTable.empty();
  /** The current table's routes, by model (reused across publishes). */
  readonly #routes = new Map<string, ModelRoute>();
  /** Models whose routes changed and are published at the end of this event-loop turn. */
  readonly #dirty = new Set<ModelEntry>();
  #generation = 0;
  /** The traffic file's splits and mirrors, by model. */
  #traffic = new Map<string, ModelTraffic>();
  #activeLoads = 0;
  readonly #loadQueue: Array<() => void> = [];
  #shuttingDown = false;
  /** model → version → replicas other processes serve (shared view). */
  #remote = new Map<string, Map<number, RemoteVersion>>();
  #remoteById = new Map<string, RemoteReplica>();
  /** Every endpoint in the shared view, for fleet-wide status. */
  #fleet: EndpointRecord[] = [];
  /** --standby_workers (undefined without --load_on_demand). */
  readonly #standby: StandbyPool | undefined;

  readonly #createReplica: (spec: WorkerSpec) => ManagedReplica;
  readonly #supervisor: Supervisor;

  constructor(options: ManagerOptions) {
    this.#options = options;
    this.#createReplica = options.createReplica ?? ((spec) => new WorkerProcess(spec, options.worker));
    const want = options.loadOnDemand ? (options.standbyWorkers ?? 0) : 0;
    this.#standby =
      want > 0 && options.spawnLocal !== false
        ? new StandbyPool({
            want,
            concurrency: options.loadConcurrency,
            create: () => this.#createReplica({ model: '', version: 0, platform: 'onnx', versionPath: '', standby: true }),
            mayStart: (inPool) => {
              if (this.#shuttingDown || ![...this.#models.values()].some((e) => e.config?.platform === 'onnx')) return false;
              const limit = options.maxLoadedVersions ?? 0;
              return limit <= 0 || this.#heldVersions() + inPool < limit;
            },
            logger: options.logger,
          })
        : undefined;
    this.#supervisor = new Supervisor({
      createReplica: this.#createReplica,
      logger: options.logger,
      onChange: (target) => {
        const entry = this.#models.get(target.model);
        if (entry) this.#publish(entry);
      },
    });
  }

  /** --load_on_demand is on. */
  get loadOnDemand(): boolean {
    return this.#options.loadOnDemand === true;
  }

  /** The current routing snapshot. Cheap; call it per request. */
  get table(): RoutingTable {
    return this.#table;
  }

  /**
   * Makes `config` the desired state and reconciles every model. With `wait` (the default) it
   * resolves once every load this started has settled (AVAILABLE or END), as TF Serving's
   * ReloadConfig waits for new models; file-watch reloads don't wait.
   */
  async applyConfig(config: ServerConfig, wait = true): Promise<void> {
    this.#traffic = trafficByModel(config.traffic);
    const wanted = new Set(config.models.map((m) => m.name));
    for (const model of config.models) {
      let entry = this.#models.get(model.name);
      if (!entry) {
        entry = {
          name: model.name,
          config: model,
          versions: new Map(),
          labels: { active: new Map(), pending: new Map() },
          scanned: false,
          reconciling: Promise.resolve(),
        };
        this.#models.set(model.name, entry);
      }
      entry.config = model;
    }
    for (const entry of this.#models.values()) {
      if (!wanted.has(entry.name)) entry.config = undefined;
    }
    this.#publish();
    const reconciles = Promise.all([...this.#models.values()].map((e) => this.#reconcile(e)));
    // Standby workers start once the config is in force, so they never delay serving it.
    void reconciles.then(() => this.#standby?.fill());
    if (!wait) return;
    await reconciles;
    this.#flushPublish();
    await this.settled();
  }

  /** Re-reads every model's base path and converges (the file-system poll). */
  async reconcileAll(): Promise<void> {
    await Promise.all([...this.#models.values()].filter((e) => e.config).map((e) => this.#reconcile(e)));
  }

  /** Names of the models in the config in force. */
  configuredModels(): string[] {
    return [...this.#models.values()].filter((e) => e.config).map((e) => e.name);
  }

  /** The base paths of configured models (what the repository watcher follows). */
  basePaths(): string[] {
    return [...this.#models.values()].flatMap((e) => (e.config ? [e.config.basePath] : []));
  }

  /** A model's current splits and mirrors (routing snapshot), or undefined if it is not configured. */
  traffic(name: string): Pick<ModelRoute, 'splits' | 'mirrors'> | undefined {
    return this.#models.get(name)?.config ? this.#table.model(name) : undefined;
  }

  /** Active and pending labels of a model, or undefined if it is not configured. */
  labels(name: string): LabelState | undefined {
    const entry = this.#models.get(name);
    return entry?.config ? entry.labels : undefined;
  }

  /** Resolves when no load is in progress. */
  async settled(): Promise<void> {
    while (this.#pendingLoads.size > 0) await Promise.allSettled([...this.#pendingLoads]);
  }

  /**
   * GetModelStatus: every known version of the model, highest first, or one version. Errors use TF
   * Serving's messages (`Could not find any versions of model <n>`, `Could not find version <v> of model <n>`).
   */
  status(name: string, version?: string): ModelVersionStatus[] {
    const entry = this.#models.get(name);
    const byVersion = new Map<number, ModelVersionStatus>();
    for (const sv of entry?.versions.values() ?? []) byVersion.set(sv.version, statusOf(sv));
    // Versions served elsewhere in the fleet (shared view) count as AVAILABLE when this gateway
    // has no better news of its own.
    for (const rec of this.#fleet) {
      if (rec.model !== name || rec.state !== 'AVAILABLE') continue;
      const local = byVersion.get(rec.version);
      if (!local || local.state !== 'AVAILABLE') {
        byVersion.set(rec.version, {
          version: String(rec.version),
          state: 'AVAILABLE',
          status: { error_code: 'OK', error_message: '' },
        });
      }
    }
    const versions = [...byVersion.entries()].sort(([a], [b]) => b - a).map(([, s]) => s);
    if (versions.length === 0) {
      throw new ServingError(Code.NOT_FOUND, `Could not find any versions of model ${name}`);
    }
    if (version !== undefined) {
      const one = versions.find((v) => v.version === version.replace(/^0+(?=\d)/, ''));
      if (!one) throw new ServingError(Code.NOT_FOUND, `Could not find version ${version} of model ${name}`);
      return [one];
    }
    return versions;
  }

  /**
   * Takes the fleet's endpoints from the shared view. Workers other processes serve and this gateway
   * can reach (http URLs) join routing; every endpoint counts for status.
   */
  setFleetView(records: readonly EndpointRecord[], selfId: string): void {
    this.#fleet = [...records];
    const remote = new Map<string, Map<number, RemoteVersion>>();
    const keep = new Set<string>();
    for (const rec of records) {
      if (rec.owner === selfId || rec.state !== 'AVAILABLE' || !rec.url.startsWith('http')) continue;
      let replica = this.#remoteById.get(rec.id);
      if (!replica || replica.url !== rec.url) {
        void replica?.close();
        replica = new RemoteReplica(rec.id, rec.url, this.#options.remoteConnections ?? 16);
        this.#remoteById.set(rec.id, replica);
      }
      keep.add(rec.id);
      let versions = remote.get(rec.model);
      if (!versions) remote.set(rec.model, (versions = new Map()));
      let rv = versions.get(rec.version);
      if (!rv) {
        rv = { replicas: [], signatures: rec.signatures, metadataJson: metadataJson(rec.model, rec.version, rec.signatures) };
        versions.set(rec.version, rv);
      }
      rv.replicas.push(replica);
    }
    for (const [id, replica] of this.#remoteById) {
      if (!keep.has(id)) {
        this.#remoteById.delete(id);
        // Let requests already on their way finish before the pool closes.
        setTimeout(() => void replica.close(), 30_000).unref();
      }
    }
    this.#remote = remote;
    this.#publish();
  }

  /** This gateway's live local workers, per AVAILABLE version (what it registers in the shared view). */
  localReplicas(): Array<{ model: string; version: number; worker: ManagedReplica; signatures: Record<string, SignatureDef> }> {
    const out = [];
    for (const entry of this.#models.values()) {
      for (const sv of entry.versions.values()) {
        if (sv.state !== 'AVAILABLE') continue;
        for (const worker of sv.replicas) {
          out.push({ model: entry.name, version: sv.version, worker, signatures: sv.info?.signatures ?? {} });
        }
      }
    }
    return out;
  }

  /** Stops every worker (draining in-flight requests first). */
  async shutdown(): Promise<void> {
    this.#shuttingDown = true;
    const standbys = this.#standby?.close();
    await this.settled();
    const stops: Promise<void>[] = standbys ? [standbys] : [];
    for (const entry of this.#models.values()) {
      for (const sv of entry.versions.values()) {
        for (const w of sv.replicas) stops.push(w.stop());
        sv.replicas = [];
        if (sv.state !== 'END') sv.state = 'END'; // every state may end at shutdown
      }
    }
    this.#publish();
    await Promise.allSettled(stops);
  }

  // Implementation details follow.

  #reconcile(entry: ModelEntry): Promise<void> {
    entry.reconciling = entry.reconciling.then(() => this.#reconcileNow(entry)).catch((err: unknown) => {
      this.#options.logger.error({ model: entry.name, err }, 'reconcile failed');
    });
    return entry.reconciling;
  }

  async #reconcileNow(entry: ModelEntry): Promise<void> {
    if (this.#shuttingDown) return;
    const { logger } = this.#options;
    const config = entry.config;
    let onDisk = new Map<number, string>();
    if (config) {
      try {
        const found = await listVersionFolders(config.basePath);
        onDisk = found.versions;
        for (const dup of found.duplicates) {
          logger.warn({ model: entry.name, ignored: dup }, 'Duplicate version directories detected');
        }
      } catch (err) {
        logger.warn(
          { model: entry.name, basePath: config.basePath, err: (err as Error).message },
          `Could not find base path ${config.basePath} for servable ${entry.name}`,
        );
      }
      if (onDisk.size === 0) {
        logger.warn(
          `No versions of servable ${entry.name} found under base path ${config.basePath}. ` +
            `Did you forget to name your leaf directory as a number (eg. '/1/')?`,
        );
      }
    }
    const desired = config ? aspiredVersions(config.policy, onDisk.keys()) : [];
    const desiredSet = new Set(desired);

    if (this.#options.spawnLocal === false) return;
    const firstLook = !entry.scanned;
    entry.scanned = true;
    let added = false;
    for (const v of desired) {
      const sv = entry.versions.get(v);
      if (sv && !(sv.state === 'END' && sv.unloaded)) continue;
      const dir = onDisk.get(v) as string;
      // Folders present at the first look load at once, as TF Serving does at startup. Folders that
      // appear later may still be being copied: load them once their contents have settled.
      if (!firstLook && !(await isVersionComplete(dir, config!.platform, SETTLE_MS, GIVE_UP_MS))) {
        logger.debug({ model: entry.name, version: v }, 'Version folder still changing; waiting');
        continue;
      }
      if (this.#options.loadOnDemand) {
        // Known at once, loaded on its first request.
        entry.versions.set(v, newVersion(entry.name, v, dir, 'IDLE'));
        added = true;
      } else {
        this.#startLoad(entry, v, dir);
      }
    }
    // A thousand models' first reconciles finish together: one table swap for all of them.
    if (added) this.#publishSoon(entry);

    const allSettled = desired.every((v) => {
      const state = entry.versions.get(v)?.state;
      return state === 'AVAILABLE' || state === 'END' || state === 'IDLE';
    });
    if (!allSettled) return;
    const unloads: Promise<void>[] = [];
    for (const sv of entry.versions.values()) {
      if (
        !desiredSet.has(sv.version) &&
        (sv.state === 'AVAILABLE' || sv.state === 'LOADING' || sv.state === 'IDLE' || sv.state === 'UNLOADING') &&
        !sv.unloaded
      ) {
        unloads.push(this.#unload(entry, sv));
      }
    }
    // Unloads drain in the background; the routing table already excludes them.
    void Promise.allSettled(unloads);
  }

  #startLoad(entry: ModelEntry, version: number, path: string): void {
    const sv = newVersion(entry.name, version, path, 'START');
    entry.versions.set(version, sv);
    const load = this.#load(entry, sv, 'eager').finally(() => {
      this.#pendingLoads.delete(load);
      void this.#reconcile(entry);
    });
    this.#pendingLoads.add(load);
  }

  async #load(entry: ModelEntry, sv: ServableVersion, reason: 'eager' | 'on_demand'): Promise<void> {
    const { logger } = this.#options;
    const config = entry.config as ModelConfig;
    const queued = Date.now();
    // A load slot (--num_load_threads) bounds process starts. Eager loads take one first, as always;
    // on-demand loads only when they start a process (reusing an evicted or standby worker is cheap,
    // and must not queue behind slow starts).
    const onDemand = reason === 'on_demand';
    let slot = false;
    if (!onDemand) {
      await this.#acquireLoadSlot();
      slot = true;
    }
    try {
      const room = await this.#makeRoom(entry, sv);
      if (!room.ok) {
        transition(sv, 'END');
        return;
      }
      modelLoads.inc({ reason });
      const spec: WorkerSpec = { model: entry.name, version: sv.version, platform: config.platform, versionPath: sv.path };
      const standby = room.reuse ? undefined : reason === 'on_demand' && config.platform === 'onnx' ? await this.#standby?.take() : undefined;
      const reuse = room.reuse ?? standby;
      const worker = room.reuse ? 'evicted' : standby ? 'standby' : 'new';
      if (!slot && (!reuse || Math.max(1, this.#options.replicas) > 1)) {
        await this.#acquireLoadSlot();
        slot = true;
      }
      logger.info({ model: entry.name, version: sv.version, path: sv.path, reason, worker, waitedMs: Date.now() - queued }, 'Loading servable version');
      const workers = Array.from({ length: Math.max(1, this.#options.replicas) }, (_, i) =>
        i === 0 && reuse?.reassign ? reuse.reassign(spec) : this.#createReplica(spec),
      );
      const loadStarted = Date.now();
      // A large model can take a while: say so every few seconds, so a slow load is not a silent one.
      const progress = setInterval(() => {
        logger.info(
          { model: entry.name, version: sv.version, elapsedMs: Date.now() - loadStarted },
          'Still loading servable version',
        );
      }, LOAD_PROGRESS_MS);
      progress.unref();
      let results = await Promise.allSettled(workers.map((w) => w.start())).finally(() => clearInterval(progress));
      for (let attempt = 1; attempt <= this.#options.maxLoadRetries; attempt++) {
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (!failed || !isTransient(failed.reason) || this.#shuttingDown || sv.unloaded) break;
        logger.warn(
          { model: entry.name, version: sv.version, attempt, error: (failed.reason as Error).message },
          'Loading servable version failed; retrying',
        );
        await Promise.allSettled(workers.map((w) => w.stop()));
        await new Promise((r) => setTimeout(r, this.#options.loadRetryIntervalMs));
        workers.splice(0, workers.length, ...workers.map((w) => this.#createReplica(w.spec)));
        results = await Promise.allSettled(workers.map((w) => w.start()));
      }
      const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failure || this.#shuttingDown || sv.unloaded) {
        await Promise.allSettled(workers.map((w) => w.stop()));
        const err = failure?.reason;
        sv.error =
          err instanceof ServingError ? err : new ServingError(Code.UNKNOWN, String((err as Error)?.message ?? err));
        if (!failure) sv.error = undefined;
        transition(sv, 'END');
        if (failure) {
          logger.error(
            { model: entry.name, version: sv.version, error: sv.error?.message },
            'Loading servable version failed',
          );
        }
        return;
      }
      const info = (results[0] as PromiseFulfilledResult<ReadyInfo>).value;
      sv.info = info;
      sv.metadataJson = metadataJson(entry.name, sv.version, info.signatures);
      sv.replicas = workers;
      const generation = ++sv.generation;
      const stillWanted = () => !this.#shuttingDown && !sv.unloaded && sv.state === 'AVAILABLE' && sv.generation === generation;
      for (const w of workers) this.#supervisor.watch(sv, w, stillWanted);
      sv.lastUsed = Date.now();
      transition(sv, 'AVAILABLE');
      logger.info(
        { model: entry.name, version: sv.version, loadMillis: Math.round(info.loadMillis), backends: info.backends },
        'Successfully loaded servable version',
      );
      this.#publish(entry);
    } finally {
      if (slot) this.#releaseLoadSlot();
    }
  }

  async #unload(entry: ModelEntry, sv: ServableVersion): Promise<void> {
    sv.unloaded = true;
    if (sv.state === 'LOADING' || sv.state === 'START') return; // #load notices `unloaded` and ends it.
    if (sv.state === 'IDLE') {
      transition(sv, 'END');
      this.#publish(entry);
      return;
    }
    if (sv.state === 'UNLOADING') {
      // Being evicted: it ends instead of going back to IDLE.
      await sv.evicting;
      return;
    }
    transition(sv, 'UNLOADING');
    this.#publish(entry);
    this.#options.logger.info({ model: entry.name, version: sv.version }, 'Unloading servable version');
    const started = Date.now();
    const replicas = sv.replicas;
    sv.replicas = [];
    await Promise.allSettled(replicas.map((w) => w.stop()));
    transition(sv, 'END');
    this.#options.logger.info(
      { model: entry.name, version: sv.version, unloadMillis: Date.now() - started },
      'Done unloading servable version',
    );
  }

  /** Publishes `entry` at the end of this turn of the event loop, with any others changed meanwhile. */
  #publishSoon(entry: ModelEntry): void {
    this.#dirty.add(entry);
    if (this.#dirty.size === 1) setImmediate(() => this.#flushPublish());
  }

  #flushPublish(): void {
    if (this.#dirty.size === 0) return;
    const entries = [...this.#dirty];
    this.#dirty.clear();
    this.#publish(...entries);
  }

  /**
   * Rebuilds the routes of `only` (every model when none is given), then swaps in a new table. Routes
   * of other models are reused, so a load or an eviction among a thousand models rebuilds one.
   */
  #publish(...only: ModelEntry[]): void {
    const entries = only.length > 0 ? only : [...this.#models.values()];
    const previous = only.length > 0 ? this.#routes : new Map(this.#routes);
    if (only.length === 0) this.#routes.clear();
    for (const entry of entries) {
      const route = entry.config ? this.#modelRoute(entry, entry.config, previous.get(entry.name)) : undefined;
      if (route) this.#routes.set(entry.name, route);
      else this.#routes.delete(entry.name);
    }
    this.#table = new RoutingTable(++this.#generation, new Map(this.#routes));
    this.#options.onChange?.();
  }

  /** Recomputes a configured model's labels and builds its routes from current state. */
  #modelRoute(entry: ModelEntry, config: ModelConfig, previous: ModelRoute | undefined): ModelRoute {
    const { route, labels } = buildModelRoute({
      name: entry.name,
      platform: config.platform,
      local: [...entry.versions.values()].map((sv) => ({
        version: sv.version,
        state: sv.state,
        unloaded: sv.unloaded,
        replicas: sv.replicas,
        metadataJson: sv.metadataJson,
        signatures: sv.info?.signatures ?? {},
      })),
      remote: this.#remote.get(entry.name),
      configuredLabels: config.labels,
      previousLabels: entry.labels.active,
      allowUnavailableLabels: this.#options.allowUnavailableLabels,
      onDemand: this.#options.loadOnDemand
        ? (version) => {
            const sv = entry.versions.get(version)!;
            return { acquire: () => this.#acquire(entry, sv), load: (deadline) => this.#awaitLoad(entry, sv, deadline) };
          }
        : undefined,
      traffic: this.#traffic.get(entry.name),
      previous,
    });
    entry.labels = labels;
    return route;
  }


  /** On demand, version loaded: holds it (no eviction) for one request and gives its current route. */
  #acquire(entry: ModelEntry, sv: ServableVersion): { route: VersionRoute; release: () => void } | undefined {
    if (sv.state !== 'AVAILABLE') return undefined;
    const route = this.#table.resolve(entry.name, String(sv.version));
    sv.lastUsed = Date.now();
    sv.waiting++;
    let held = true;
    return {
      route,
      release: () => {
        if (held) {
          held = false;
          sv.waiting--;
        }
      },
    };
  }

  /**
   * On demand: resolves with the version's route once it is AVAILABLE, loading it if no load is under
   * way (one load, shared by every request waiting for it), bounded by `deadline`. `release` ends the
   * request's hold on the version (it cannot be evicted until then).
   */
  async #awaitLoad(
    entry: ModelEntry,
    sv: ServableVersion,
    deadline: number | undefined,
  ): Promise<{ route: VersionRoute; release: () => void }> {
    sv.waiting++;
    let held = true;
    const release = () => {
      if (held) {
        held = false;
        sv.waiting--;
      }
    };
    try {
      sv.lastUsed = Date.now();
      if (sv.state !== 'AVAILABLE') await withDeadline(this.#demand(entry, sv), deadline, entry.name, sv.version);
      if (sv.state !== 'AVAILABLE') {
        throw sv.error ?? new ServingError(Code.UNAVAILABLE, `Servable ${entry.name} version ${sv.version} could not be loaded`);
      }
      return { route: this.#table.resolve(entry.name, String(sv.version)), release };
    } catch (err) {
      release();
      throw err;
    }
  }

  /** The one on-demand load of `sv` (after its eviction, if one is under way). */
  #demand(entry: ModelEntry, sv: ServableVersion): Promise<void> {
    sv.demand ??= (async () => {
      try {
        if (sv.evicting) await sv.evicting;
        if (sv.state === 'IDLE' && !sv.unloaded && !this.#shuttingDown) {
          sv.error = undefined;
          const load = this.#load(entry, sv, 'on_demand');
          this.#pendingLoads.add(load);
          try {
            await load;
          } finally {
            this.#pendingLoads.delete(load);
            this.#publish(entry);
          }
        }
        if (sv.state !== 'AVAILABLE') {
          throw sv.error ?? new ServingError(Code.UNAVAILABLE, `Servable ${entry.name} version ${sv.version} is not available`);
        }
      } finally {
        sv.demand = undefined;
      }
    })();
    return sv.demand;
  }

  /**
   * Moves `incoming` to LOADING once it may load (false: it must not, the gateway is stopping or the
   * version was unloaded). With --max_loaded_versions it first unloads least recently used idle
   * versions until it fits (eviction.ts), waiting while every loaded version has requests in flight.
   * The room check and the move to LOADING happen with no await between them, so concurrent loads
   * never both take the last slot.
   */
  async #makeRoom(
    _incomingEntry: ModelEntry,
    incoming: ServableVersion,
  ): Promise<{ ok: boolean; reuse?: ManagedReplica | undefined }> {
    const limit = this.#options.loadOnDemand ? (this.#options.maxLoadedVersions ?? 0) : 0;
    let waitingSince: number | undefined;
    for (;;) {
      if (this.#shuttingDown || incoming.unloaded) return { ok: false };
      if (limit <= 0) {
        transition(incoming, 'LOADING');
        return { ok: true };
      }
      const byKey = new Map<string, [ModelEntry, ServableVersion]>();
      const candidates: EvictionCandidate[] = [];
      for (const entry of this.#models.values()) {
        for (const sv of entry.versions.values()) {
          if (sv === incoming) continue;
          const key = `${entry.name}:${sv.version}`;
          byKey.set(key, [entry, sv]);
          let inFlight = sv.waiting;
          for (const r of sv.replicas) inFlight += r.inFlight;
          candidates.push({ key, state: sv.state, inFlight, lastUsed: sv.lastUsed });
        }
      }
      const plan = planEviction(candidates, limit);
      if (plan.victims.length === 0 && !plan.blocked) {
        transition(incoming, 'LOADING');
        return { ok: true };
      }
      if (plan.victims.length === 1 && !plan.blocked) {
        // One victim, an ONNX worker like the incoming one: hand its process over instead of
        // stopping it and starting another (no await, so the slot passes straight to `incoming`).
        const [entry, victim] = byKey.get(plan.victims[0]!)!;
        const reuse = this.#reusable(_incomingEntry, entry, victim);
        if (reuse) {
          this.#options.logger.info(
            { model: entry.name, version: victim.version, idleMs: Date.now() - victim.lastUsed, for: { model: _incomingEntry.name, version: incoming.version }, limit, reuse: true },
            'Evicting least recently used servable version',
          );
          modelEvictions.inc();
          transition(victim, 'UNLOADING');
          victim.replicas = [];
          victim.evictions++;
          victim.restartAttempts = 0;
          transition(victim, victim.unloaded ? 'END' : 'IDLE');
          transition(incoming, 'LOADING');
          this.#publish(entry, _incomingEntry);
          return { ok: true, reuse };
        }
      }
      const evictions = plan.victims.map((key) => {
        const [entry, victim] = byKey.get(key)!;
        this.#options.logger.info(
          {
            model: entry.name,
            version: victim.version,
            idleMs: Date.now() - victim.lastUsed,
            for: { model: _incomingEntry.name, version: incoming.version },
            limit,
          },
          'Evicting least recently used servable version',
        );
        modelEvictions.inc();
        return this.#evict(entry, victim);
      });
      if (evictions.length > 0) {
        await Promise.allSettled(evictions);
        continue;
      }
      if (waitingSince === undefined) {
        waitingSince = Date.now();
        this.#options.logger.warn(
          { model: _incomingEntry.name, version: incoming.version, limit },
          'Every loaded servable version has requests in flight; waiting to make room',
        );
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Versions holding workers now (what --max_loaded_versions counts). */
  #heldVersions(): number {
    let held = 0;
    for (const entry of this.#models.values()) for (const sv of entry.versions.values()) if (holdsWorkers(sv.state)) held++;
    return held;
  }

  /** The victim's one worker, if it may be handed over to the incoming version (both ONNX, one replica each). */
  #reusable(incomingEntry: ModelEntry, victimEntry: ModelEntry, victim: ServableVersion): ManagedReplica | undefined {
    if (Math.max(1, this.#options.replicas) !== 1 || victim.replicas.length !== 1) return undefined;
    if (incomingEntry.config?.platform !== 'onnx' || victimEntry.config?.platform !== 'onnx') return undefined;
    const replica = victim.replicas[0]!;
    return replica.reassign ? replica : undefined;
  }

  /** Unloads an idle AVAILABLE version to make room; it goes back to IDLE (or END if no longer configured). */
  #evict(entry: ModelEntry, sv: ServableVersion): Promise<void> {
    transition(sv, 'UNLOADING');
    sv.evicting = (async () => {
      this.#publish(entry);
      const replicas = sv.replicas;
      sv.replicas = [];
      await Promise.allSettled(replicas.map((w) => w.stop()));
      sv.evictions++;
      sv.restartAttempts = 0;
      if (sv.state === 'UNLOADING') transition(sv, sv.unloaded || this.#shuttingDown ? 'END' : 'IDLE');
      this.#options.logger.info({ model: entry.name, version: sv.version }, 'Evicted servable version');
      this.#publish(entry);
    })().finally(() => {
      sv.evicting = undefined;
    });
    return sv.evicting;
  }

  async #acquireLoadSlot(): Promise<void> {
    if (this.#activeLoads < Math.max(1, this.#options.loadConcurrency)) {
      this.#activeLoads++;
      return;
    }
    await new Promise<void>((resolve) => this.#loadQueue.push(resolve));
  }

  #releaseLoadSlot(): void {
    const next = this.#loadQueue.shift();
    if (next) next();
    else this.#activeLoads--;
  }
}

/** Load failures worth retrying: a crashed or stuck worker, not a corrupt, missing or unsupported model. */
function isTransient(err: unknown): boolean {
  if (!(err instanceof ServingError)) return true;
  return err.code === Code.UNKNOWN || err.code === Code.DEADLINE_EXCEEDED || err.code === Code.UNAVAILABLE;
}

function newVersion(model: string, version: number, path: string, state: 'START' | 'IDLE'): ServableVersion {
  return {
    model,
    version,
    path,
    state,
    error: undefined,
    replicas: [],
    info: undefined,
    metadataJson: '',
    unloaded: false,
    restartAttempts: 0,
    lastUsed: 0,
    waiting: 0,
    demand: undefined,
    evicting: undefined,
    evictions: 0,
    generation: 0,
  };
}

/** Waits for `p` until `deadline` (epoch ms; undefined or 0 = no bound). */
async function withDeadline(p: Promise<void>, deadline: number | undefined, model: string, version: number): Promise<void> {
  if (!deadline) return p;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new ServingError(Code.DEADLINE_EXCEEDED, `Deadline exceeded while loading servable ${model} version ${version}`)),
      Math.max(0, deadline - Date.now()),
    );
  });
  try {
    await Promise.race([p, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** What status says of a version that waits for a request (TF's START with a plain message). */
const IDLE_MESSAGE = 'Not loaded: loads on its first request (--load_on_demand)';
const EVICTED_MESSAGE = 'Unloaded to stay within --max_loaded_versions: loads again on its next request';

function statusOf(sv: ServableVersion): ModelVersionStatus {
  if (sv.state === 'IDLE') {
    return {
      version: String(sv.version),
      state: servableState(sv.state),
      status: { error_code: 'OK', error_message: sv.evictions > 0 ? EVICTED_MESSAGE : IDLE_MESSAGE },
    };
  }
  if (sv.state === 'AVAILABLE' && sv.replicas.length === 0) {
    // Every replica died and is being restarted: not available, but not ended either.
    return {
      version: String(sv.version),
      state: 'LOADING',
      status: { error_code: 'UNAVAILABLE', error_message: 'Worker process exited; restarting' },
    };
  }
  const err = sv.error;
  return {
    version: String(sv.version),
    state: servableState(sv.state),
    status: { error_code: err ? codeName(err.code) : 'OK', error_message: err ? err.message : '' },
  };
}
