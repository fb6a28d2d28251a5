/**
 * Mirroring (--traffic_config_file `mirror`): a share of a label's requests is also sent to another
 * version, beside the real request. The copy never delays or fails the real one: it is sent after the
 * real request has been routed, nothing waits for it, its answer is discarded, and its outcome is only
 * counted (metrics: modelgate_mirror_*). Mirrored work is bounded: beyond --mirror_max_inflight copies
 * in flight (all models), new copies are dropped and counted, so a slow or hung candidate holds at most
 * that many calls, each ended by --mirror_timeout_ms. A request already served by the mirror's version
 * is not copied to it again.
 */
import { Code, toServingError } from '../../common/errors.js';
import { countMirrorDrop, observeMirror } from '../metrics.js';
import { forwardToWorker } from './forward.js';
import type { RoutingTable, VersionRoute } from './routing-table.js';
import { mirrorThis } from './traffic-split.js';

let maxInFlight = 16;
let timeoutMs = 10_000;
let inFlight = 0;

/** --mirror_max_inflight and --mirror_timeout_ms. */
export function setMirrorLimits(max: number, timeout: number): void {
  maxInFlight = max;
  timeoutMs = timeout;
}

/** Mirror copies in flight now (for tests). */
export function mirrorsInFlight(): number {
  return inFlight;
}

/**
 * Copies the request to the label's mirror version when the label is mirrored and this request is in
 * its share. Returns at once; never throws.
 */
export function mirrorRequest(
  table: RoutingTable,
  name: string,
  label: string,
  served: VersionRoute,
  api: string,
  kind: number,
  body: Uint8Array,
  gzip = false,
): void {
  const model = table.model(name);
  if (model === undefined || model.mirrors.size === 0) return;
  const mirror = model.mirrors.get(label);
  if (mirror === undefined || !mirrorThis(mirror) || mirror.toVersion === served.version) return;
  const target = mirror.target;
  if (target === undefined) {
    countMirrorDrop(name, mirror.toVersion, 'unavailable');
    return;
  }
  if (inFlight >= maxInFlight) {
    countMirrorDrop(name, mirror.toVersion, 'inflight_limit');
    return;
  }
  inFlight++;
  const started = performance.now();
  const done = (code: number) => {
    inFlight--;
    observeMirror(name, mirror.toVersion, api, code, (performance.now() - started) / 1000);
  };
  forwardToWorker(target, { kind, body, gzip, deadline: timeoutMs > 0 ? Date.now() + timeoutMs : 0 }).then(
    (answer) => done(answer.code),
    (err: unknown) => done(toServingError(err).code ?? Code.UNKNOWN),
  );
}
