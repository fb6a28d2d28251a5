/**
 * The routing table: an immutable snapshot of what can serve requests right now.
 *
 * The manager builds a new table on every change and swaps it in with one assignment; the request path
 * only reads the current table and never waits for anything (docs/architecture.md: never wait on the request path). Resolution
 * follows TF Serving's rules and messages:
 *   - unknown model, or a version not AVAILABLE → NOT_FOUND `Servable not found for request: ...`
 *   - unknown label → INVALID_ARGUMENT `Unrecognized servable version label: <label>`
 *   - no version given → the highest AVAILABLE version (`Latest(<name>)`)
 * A label split in the traffic file (traffic-split.ts) replaces the label's single target while one
 * of its versions takes requests; requests pinned to a version number, or to the latest, are never split.
 */
import { Code, ServingError } from '../../common/errors.js';
import type { SignatureDef } from '../../common/signature.js';
import type { Replica } from '../fleet/replica.js';
import { pickSplit, type MirrorRoute, type SplitRoute } from './traffic-split.js';

export interface VersionRoute {
  readonly model: string;
  readonly version: number;
  /** Ready replicas; empty while every replica is restarting. */
  readonly replicas: readonly Replica[];
  /** The `GET .../metadata` body for this version, built once at load. */
  readonly metadataJson: string;
  /** The version's signatures as its worker reported them at load (gRPC GetModelMetadata). */
  readonly signatures: Readonly<Record<string, SignatureDef>>;
  /** The model's configured platform (`onnx`, `tensorflow`), for v2 model metadata. */
  readonly platform?: string;
  /**
   * --load_on_demand only. `acquire`: if the version is loaded now, holds it for one request (it is not
   * evicted until `release`) and gives its current route; otherwise undefined, and `load` makes it
   * AVAILABLE (or waits for the load under way) within `deadline`, then does the same. Both mark the
   * version used (least-recently-used eviction).
   */
  readonly acquire?: () => HeldRoute | undefined;
  readonly load?: (deadline: number | undefined) => Promise<HeldRoute>;
}

/** A route held for one request (see VersionRoute.acquire). */
export interface HeldRoute {
  readonly route: VersionRoute;
  readonly release: () => void;
}

export interface ModelRoute {
  readonly name: string;
  /** AVAILABLE versions, highest first. */
  readonly available: readonly VersionRoute[];
  readonly byVersion: ReadonlyMap<number, VersionRoute>;
  readonly labels: ReadonlyMap<string, number>;
  /** label → its weighted split (--traffic_config_file); empty when none. */
  readonly splits: ReadonlyMap<string, SplitRoute>;
  /** label → the version a share of its requests is copied to; empty when none. */
  readonly mirrors: ReadonlyMap<string, MirrorRoute>;
}

/** The empty map of a model without splits or mirrors. */
export const NO_TRAFFIC_RULES: ReadonlyMap<string, never> = new Map<string, never>();

export class RoutingTable {
  readonly generation: number;
  readonly #models: ReadonlyMap<string, ModelRoute>;

  constructor(generation: number, models: ReadonlyMap<string, ModelRoute>) {
    this.generation = generation;
    this.#models = models;
  }

  static empty(): RoutingTable {
    return new RoutingTable(0, new Map());
  }

  /**
   * Resolves a request's model spec. `version` is the decimal string from the URL or proto (it may
   * exceed JS's safe integers, in which case nothing can match it). `key` is the request's routing key
   * (`x-modelgate-routing-key`): a split label sends one key to one version while the weights stand.
   */
  resolve(name: string, version?: string, label?: string, key?: string): VersionRoute {
    const model = this.#models.get(name);
    if (label !== undefined) {
      if (model !== undefined && model.splits.size !== 0) {
        const split = model.splits.get(label);
        const picked = split && pickSplit(split, key);
        if (picked) return picked;
        // No version of the split takes requests: the label as configured, if it is.
        if (split && !model.labels.has(label)) throw splitUnavailable(name, split);
      }
      const v = model?.labels.get(label);
      if (v === undefined) {
        throw new ServingError(Code.INVALID_ARGUMENT, `Unrecognized servable version label: ${label}`);
      }
      return this.#specific(model, name, v, String(v));
    }
    if (version !== undefined) {
      return this.#specific(model, name, Number(version), version);
    }
    const latest = model?.available[0];
    if (!latest) throw new ServingError(Code.NOT_FOUND, `Servable not found for request: Latest(${name})`);
    return latest;
  }

  #specific(model: ModelRoute | undefined, name: string, v: number, shown: string): VersionRoute {
    const route = Number.isSafeInteger(v) ? model?.byVersion.get(v) : undefined;
    if (!route) throw new ServingError(Code.NOT_FOUND, `Servable not found for request: Specific(${name}, ${shown})`);
    return route;
  }

  /** Picks the replica with the fewest requests in flight. */
  static pick(route: VersionRoute): Replica {
    const replicas = route.replicas;
    if (replicas.length === 0) {
      throw new ServingError(
        Code.UNAVAILABLE,
        `Servable ${route.model} version ${route.version} is not available: its worker is restarting`,
      );
    }
    let best = replicas[0] as Replica;
    for (let i = 1; i < replicas.length; i++) {
      const r = replicas[i] as Replica;
      if (r.inFlight < best.inFlight) best = r;
    }
    return best;
  }

  /** A model's routes (undefined when not configured): its AVAILABLE versions and labels. */
  model(name: string): ModelRoute | undefined {
    return this.#models.get(name);
  }

  /** Whether `name` is a model of this table (configured, whatever its versions' states). */
  has(name: string): boolean {
    return this.#models.has(name);
  }

  modelNames(): string[] {
    return [...this.#models.keys()];
  }
}

/** No version of a split takes requests, and the label has no configured target to fall back on. */
export function splitUnavailable(name: string, split: SplitRoute): ServingError {
  const versions = split.view.map((v) => v.version).join(', ');
  return new ServingError(
    Code.UNAVAILABLE,
    `Servable ${name} label ${split.label} is not available: no version of its split (${versions}) is available`,
  );
}
