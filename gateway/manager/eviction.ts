/**
 * --max_loaded_versions: which loaded versions to unload so one more can load. A pure function, so
 * the policy is tested from tables (test/unit/eviction.test.ts).
 *
 * Versions holding workers (LOADING, AVAILABLE, UNLOADING) count against the limit. Only AVAILABLE
 * versions with nothing in flight (requests sent to a worker, or requests waiting to use the version)
 * may be evicted, least recently used first (ties: the lower key). When there are not enough such
 * versions the load must wait (`blocked`): a version with requests in flight is never evicted.
 */
import { holdsWorkers, type VersionState } from './version-state.js';

export interface EvictionCandidate {
  /** `<model>:<version>`; also the tie-break order. */
  readonly key: string;
  readonly state: VersionState;
  /** Requests in flight on its workers plus requests waiting to use it. */
  readonly inFlight: number;
  /** Epoch ms of its last request (or of its load). */
  readonly lastUsed: number;
}

export interface EvictionPlan {
  /** Versions to unload now, least recently used first. */
  victims: string[];
  /** True when even after these there is no room yet: wait for a request to finish and plan again. */
  blocked: boolean;
}

/** Plans room for `incoming` more loaded versions under `limit` (0 = no limit). */
export function planEviction(versions: readonly EvictionCandidate[], limit: number, incoming = 1): EvictionPlan {
  if (limit <= 0) return { victims: [], blocked: false };
  const held = versions.filter((v) => holdsWorkers(v.state)).length;
  const need = held + incoming - limit;
  if (need <= 0) return { victims: [], blocked: false };
  const idle = versions
    .filter((v) => v.state === 'AVAILABLE' && v.inFlight === 0)
    .sort((a, b) => a.lastUsed - b.lastUsed || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const victims = idle.slice(0, need).map((v) => v.key);
  return { victims, blocked: victims.length < need };
}
