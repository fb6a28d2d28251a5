/**
 * Forwarding one request to a worker of a resolved version: the single request path behind both
 * front doors (REST and gRPC). The caller resolves the route (`RoutingTable.resolve`); this module
 * picks the replica with the fewest requests in flight and sends the body bytes untouched as one
 * REQUEST frame of the worker protocol (gateway/fleet/worker-channel.ts).
 *
 * - A worker that goes away before answering (killed, crashed, stopping) never completed the request,
 *   so it is tried once more on another live replica.
 * - `deadline` bounds the whole exchange and reaches the worker with the frame, so it can refuse work
 *   the client has stopped waiting for. `cancel` fails the exchange at once (client gone) and tells
 *   the worker.
 * - Failures to reach a worker map onto TF Serving's codes: UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED.
 */
import { Code, ServingError, toServingError } from '../../common/errors.js';
import type { DecodedResponse } from '../../common/worker-protocol.js';
import type { Replica } from '../fleet/replica.js';
import { WorkerGoneError, type CancelSlot } from '../fleet/worker-channel.js';
import { RoutingTable, type VersionRoute } from './routing-table.js';

export interface WorkerRequest {
  /** The request kind (common/worker-protocol.ts `Kind`). */
  kind: number;
  body: Uint8Array;
  /** The body is gzip-compressed (REST `Content-Encoding: gzip`). */
  gzip?: boolean;
  /** Epoch ms by which the answer must be here; 0 or undefined = unbounded. */
  deadline?: number;
  requestId?: string;
  cancel?: CancelSlot | undefined;
}

/** The worker's answer: HTTP status, TF code and body (see the RESPONSE frame). */
export type WorkerAnswer = DecodedResponse;

let maxInFlightPerVersion = 0;

/** --max_inflight_per_version: requests one version may have in flight before new ones get 429; 0 = no cap. */
export function setMaxInFlightPerVersion(n: number): void {
  maxInFlightPerVersion = n;
}

/** The bounded queue per version: beyond the cap, fail fast instead of queueing without limit. */
function checkCapacity(route: VersionRoute): void {
  if (maxInFlightPerVersion <= 0) return;
  let inFlight = 0;
  for (const r of route.replicas) inFlight += r.inFlight;
  if (inFlight >= maxInFlightPerVersion) {
    throw new ServingError(
      Code.RESOURCE_EXHAUSTED,
      `Too many requests in flight for model ${route.model} version ${route.version} (limit ${maxInFlightPerVersion})`,
    );
  }
}

export function forwardToWorker(route: VersionRoute, request: WorkerRequest): Promise<WorkerAnswer> {
  return route.acquire && route.load ? forwardOnDemand(route, request) : forwardLoaded(route, request);
}

/** --load_on_demand: hold the loaded version, or wait (bounded by the deadline) for its one load. */
async function forwardOnDemand(route: VersionRoute, request: WorkerRequest): Promise<WorkerAnswer> {
  const held = route.acquire!() ?? (await route.load!(request.deadline));
  try {
    return await forwardLoaded(held.route, request);
  } finally {
    held.release();
  }
}

/**
 * A route whose metadata is known: a version loaded on demand that never loaded yet is loaded first
 * (an evicted version answers from its last load without loading).
 */
export async function routeWithMetadata(route: VersionRoute, deadline?: number): Promise<VersionRoute> {
  if (!route.load || route.metadataJson !== '') return route;
  const { route: loaded, release } = await route.load(deadline);
  release();
  return loaded;
}

async function forwardLoaded(route: VersionRoute, request: WorkerRequest): Promise<WorkerAnswer> {
  checkCapacity(route);
  let worker: Replica = RoutingTable.pick(route);
  for (let attempt = 0; ; attempt++) {
    const w = worker;
    w.inFlight++;
    try {
      return await w.channel.call({
        kind: request.kind,
        body: request.body,
        gzip: request.gzip,
        deadline: request.deadline,
        version: route.version,
        requestId: request.requestId,
        cancel: request.cancel,
      });
    } catch (err) {
      const other = attempt === 0 && isConnectionFailure(err) ? route.replicas.find((r) => r !== w) : undefined;
      if (!other) throw upstreamError(err);
      worker = other;
    } finally {
      w.inFlight--;
    }
  }
}

function isConnectionFailure(err: unknown): boolean {
  return err instanceof WorkerGoneError || (err instanceof ServingError && err.code === Code.UNAVAILABLE);
}

/** Maps a failure to reach the worker onto TF Serving's codes. */
export function upstreamError(err: unknown): ServingError {
  if (err instanceof WorkerGoneError) return new ServingError(Code.UNAVAILABLE, `Model worker is unavailable: ${err.message}`);
  return toServingError(err);
}
