/**
 * Weighted label routing and mirroring, as parts of the routing snapshot (pure apart from two
 * cursors carried across snapshots).
 *
 * A split's *candidates* are its versions that can take a request now (routable, with a replica or
 * loadable on demand) and have a weight > 0; a version that is not gets no share, and the others'
 * shares grow in proportion. A request's version:
 *   - with a routing key: weighted rendezvous hashing. Each candidate v scores -ln(u(key, v)) / w_v with
 *     u a hash of (key, v) in (0, 1), and the lowest score wins. A key keeps its version while the
 *     weights stand; when weights change, only keys that must move do (raising one version's weight
 *     moves keys to it from the others and never between the others; a version leaving the split or
 *     becoming unavailable sends only its own keys elsewhere).
 *   - without: a low-discrepancy sequence (the golden-ratio sequence over the cumulative weights), so
 *     the shares are exact to within a few requests and deterministic, with no random numbers.
 * A mirror copies `percent` of a label's requests: an accumulator adds `percent` per request and
 * mirrors each time it passes 100, so the share is exact.
 */
import type { LabelSplitConfig, MirrorConfig } from '../config/traffic-config.js';
import type { VersionRoute } from './routing-table.js';

/** State a split or mirror keeps across routing snapshots (so a rebuild does not restart the sequence). */
export interface TrafficCursor {
  value: number;
}

export interface SplitVersionView {
  version: number;
  /** Weight as configured. */
  weight: number;
  /** Whether it takes its share now. */
  available: boolean;
  /** Share of the label's requests it gets now, in percent (0 when not available). */
  effectivePercent: number;
}

export interface SplitRoute {
  readonly label: string;
  /** Versions that take requests now, with their weights (> 0). */
  readonly candidates: readonly VersionRoute[];
  readonly weights: readonly number[];
  /** Running sums of `weights`; the last is the total. */
  readonly cumulative: Float64Array;
  readonly cursor: TrafficCursor;
  /** Every configured version of the split, for status. */
  readonly view: readonly SplitVersionView[];
}

export interface MirrorRoute {
  readonly label: string;
  readonly toVersion: number;
  readonly percent: number;
  /** The version requests are copied to, when it is routable now. */
  readonly target: VersionRoute | undefined;
  readonly cursor: TrafficCursor;
}

/** Whether a routed version can take a request now (a replica, or a load on demand). */
export function takesRequests(route: VersionRoute | undefined): route is VersionRoute {
  return route !== undefined && (route.replicas.length > 0 || route.load !== undefined);
}

export function buildSplitRoute(
  config: LabelSplitConfig,
  byVersion: ReadonlyMap<number, VersionRoute>,
  cursor: TrafficCursor | undefined,
): SplitRoute {
  const candidates: VersionRoute[] = [];
  const weights: number[] = [];
  let total = 0;
  for (const { version, weight } of config.weights) {
    const route = byVersion.get(version);
    if (weight > 0 && takesRequests(route)) {
      candidates.push(route);
      weights.push(weight);
      total += weight;
    }
  }
  const cumulative = new Float64Array(weights.length);
  let acc = 0;
  weights.forEach((w, i) => (cumulative[i] = acc += w));
  const view = config.weights.map(({ version, weight }) => {
    const available = takesRequests(byVersion.get(version));
    return { version, weight, available, effectivePercent: available && total > 0 ? (100 * weight) / total : 0 };
  });
  return { label: config.label, candidates, weights, cumulative, cursor: cursor ?? { value: 0 }, view };
}

export function buildMirrorRoute(
  config: MirrorConfig,
  byVersion: ReadonlyMap<number, VersionRoute>,
  cursor: TrafficCursor | undefined,
): MirrorRoute {
  const route = byVersion.get(config.toVersion);
  return {
    label: config.label,
    toVersion: config.toVersion,
    percent: config.percent,
    target: takesRequests(route) ? route : undefined,
    cursor: cursor ?? { value: 0 },
  };
}

const GOLDEN = 0.6180339887498949;
const TWO_32 = 4294967296;

/** The version of a split for one request; undefined when no version of the split takes requests. */
export function pickSplit(split: SplitRoute, key: string | undefined): VersionRoute | undefined {
  const n = split.candidates.length;
  if (n <= 1) return split.candidates[0];
  if (key === undefined || key.length === 0) {
    const cursor = split.cursor;
    const x = (cursor.value + GOLDEN) % 1;
    cursor.value = x;
    const target = x * (split.cumulative[n - 1] as number);
    for (let i = 0; i < n - 1; i++) if (target < (split.cumulative[i] as number)) return split.candidates[i];
    return split.candidates[n - 1];
  }
  const h = hashKey(key);
  let best = 0;
  let bestScore = Infinity;
  for (let i = 0; i < n; i++) {
    const u = (mix(h, (split.candidates[i] as VersionRoute).version) + 0.5) / TWO_32;
    const score = -Math.log(u) / (split.weights[i] as number);
    if (score < bestScore) {
      bestScore = score;
      best = i;
    }
  }
  return split.candidates[best];
}

/** Whether this request of the mirrored label is copied (exactly `percent` of them). */
export function mirrorThis(mirror: MirrorRoute): boolean {
  const cursor = mirror.cursor;
  cursor.value += mirror.percent;
  if (cursor.value < 100) return false;
  cursor.value -= 100;
  return true;
}

/** FNV-1a over the key's UTF-16 code units. */
export function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A key's hash mixed with a version: MurmurHash3's 32-bit finaliser, uniform in [0, 2^32). */
function mix(h: number, version: number): number {
  let x = (h ^ Math.imul(version | 0, 0x9e3779b1) ^ Math.imul((version / TWO_32) | 0, 0x85ebca6b)) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}
