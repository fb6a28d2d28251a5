/**
 * Shared routing state in Redis: every key name and every script, in one module, used by gateways
 * (writer election, desired config, endpoint view) and by standalone workers (endpoint leases).
 *
 * Keys (all under one prefix, default `modelgate`):
 *   <p>:writer      string  the writer's gateway id; a lease (PX). Holding it = applying models.config.
 *   <p>:fence       string  the last fencing token handed out (monotonic, survives writer changes).
 *   <p>:desired     string  JSON DesiredState: {token, generation, config} published by the writer.
 *   <p>:endpoints   hash    endpoint id → JSON EndpointRecord (a worker serving one model version).
 *   <p>:leases      zset    endpoint id → lease expiry (ms since epoch).
 * Channel:
 *   <p>:events      "desired" | "endpoints": something changed; read it back (messages carry no state).
 *
 * Every multi-key change is one Lua script (atomic in Redis); each states its KEYS and ARGV.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { SignatureDef } from './signature.js';

export interface SharedKeys {
  writer: string;
  fence: string;
  desired: string;
  endpoints: string;
  leases: string;
  events: string;
}

export function sharedKeys(prefix = 'modelgate'): SharedKeys {
  return {
    writer: `${prefix}:writer`,
    fence: `${prefix}:fence`,
    desired: `${prefix}:desired`,
    endpoints: `${prefix}:endpoints`,
    leases: `${prefix}:leases`,
    events: `${prefix}:events`,
  };
}

/** One worker serving one model version, as the fleet sees it. */
export interface EndpointRecord {
  id: string;
  model: string;
  version: number;
  state: 'AVAILABLE' | 'UNLOADING';
  /** `http://host:port` for workers other gateways can reach; `unix:<path>` for a gateway's own. */
  url: string;
  /** The gateway that spawned it, or `standalone`. */
  owner: string;
  signatures: Record<string, SignatureDef>;
}

/**
 * Takes the writer lease if it is free.
 * KEYS[1] writer, KEYS[2] fence. ARGV[1] gateway id, ARGV[2] lease ms, ARGV[3] lowest acceptable token
 * (the highest this gateway has seen, so tokens stay monotonic even if Redis lost its data).
 * Returns the new fencing token, or 0 when another gateway holds the lease.
 */
export const ACQUIRE_WRITER = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local token = redis.call('INCR', KEYS[2])
  local floor = tonumber(ARGV[3])
  if token <= floor then
    token = floor + 1
    redis.call('SET', KEYS[2], token)
  end
  return token
end
return 0
`;

/**
 * Extends the writer lease if this gateway still holds it.
 * KEYS[1] writer. ARGV[1] gateway id, ARGV[2] lease ms. Returns 1 if renewed, 0 if lost.
 */
export const RENEW_WRITER = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`;

/**
 * Releases the writer lease if this gateway holds it. KEYS[1] writer. ARGV[1] gateway id.
 */
export const RELEASE_WRITER = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`;

/**
 * Publishes the desired state, fenced: only the lease holder may write.
 * KEYS[1] writer, KEYS[2] desired. ARGV[1] gateway id, ARGV[2] DesiredState JSON, ARGV[3] channel.
 * Returns 1 if written, 0 if this gateway is no longer the writer.
 */
export const PUBLISH_DESIRED = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[3], 'desired')
return 1
`;

/**
 * Registers or renews an endpoint lease; announces it when it is new or its record changed.
 * KEYS[1] endpoints, KEYS[2] leases. ARGV[1] id, ARGV[2] EndpointRecord JSON, ARGV[3] expiry ms,
 * ARGV[4] channel. Returns 1 if announced.
 */
export const REGISTER_ENDPOINT = `
local before = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
if before ~= ARGV[2] then
  redis.call('PUBLISH', ARGV[4], 'endpoints')
  return 1
end
return 0
`;

/**
 * Removes an endpoint. KEYS[1] endpoints, KEYS[2] leases. ARGV[1] id, ARGV[2] channel.
 */
export const REMOVE_ENDPOINT = `
local n = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if n > 0 then
  redis.call('PUBLISH', ARGV[2], 'endpoints')
end
return n
`;

/**
 * Drops endpoints whose lease expired. KEYS[1] endpoints, KEYS[2] leases. ARGV[1] now (ms),
 * ARGV[2] channel. Returns how many were dropped.
 */
export const SWEEP_ENDPOINTS = `
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, id in ipairs(expired) do
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
if #expired > 0 then
  redis.call('PUBLISH', ARGV[2], 'endpoints')
end
return #expired
`;

/**
 * Reads the whole shared view in one step, so a snapshot never mixes two generations.
 * KEYS[1] desired, KEYS[2] endpoints, KEYS[3] leases, KEYS[4] writer. ARGV[1] now (ms).
 * Returns {desired JSON or false, [id, record, expiry, ...] for live leases, writer id or false}.
 */
export const READ_VIEW = `
local desired = redis.call('GET', KEYS[1])
local records = redis.call('HGETALL', KEYS[2])
local live = {}
for i = 1, #records, 2 do
  local expiry = redis.call('ZSCORE', KEYS[3], records[i])
  if expiry and tonumber(expiry) > tonumber(ARGV[1]) then
    table.insert(live, records[i])
    table.insert(live, records[i + 1])
    table.insert(live, expiry)
  end
end
return {desired, live, redis.call('GET', KEYS[4])}
`;

export type RedisClient = Redis;

/**
 * A client from a redis:// or rediss:// URL (user, password and TLS come from the URL), that keeps
 * reconnecting forever and never queues commands while disconnected: callers on timers retry, and
 * nothing on the request path waits for Redis.
 */
export function connectRedis(url: string, extra: RedisOptions = {}): Redis {
  return new Redis(url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    retryStrategy: (times) => Math.min(50 * times, 500),
    ...extra,
  });
}

/** Registers the scripts as commands on a client. */
export function defineScripts(redis: Redis): void {
  redis.defineCommand('mgAcquireWriter', { numberOfKeys: 2, lua: ACQUIRE_WRITER });
  redis.defineCommand('mgRenewWriter', { numberOfKeys: 1, lua: RENEW_WRITER });
  redis.defineCommand('mgReleaseWriter', { numberOfKeys: 1, lua: RELEASE_WRITER });
  redis.defineCommand('mgPublishDesired', { numberOfKeys: 2, lua: PUBLISH_DESIRED });
  redis.defineCommand('mgRegisterEndpoint', { numberOfKeys: 2, lua: REGISTER_ENDPOINT });
  redis.defineCommand('mgRemoveEndpoint', { numberOfKeys: 2, lua: REMOVE_ENDPOINT });
  redis.defineCommand('mgSweepEndpoints', { numberOfKeys: 2, lua: SWEEP_ENDPOINTS });
  redis.defineCommand('mgReadView', { numberOfKeys: 4, lua: READ_VIEW });
}

/** The scripts as typed calls. */
export interface ScriptedRedis {
  mgAcquireWriter(writer: string, fence: string, id: string, leaseMs: number, floor: number): Promise<number>;
  mgRenewWriter(writer: string, id: string, leaseMs: number): Promise<number>;
  mgReleaseWriter(writer: string, id: string): Promise<number>;
  mgPublishDesired(writer: string, desired: string, id: string, json: string, channel: string): Promise<number>;
  mgRegisterEndpoint(endpoints: string, leases: string, id: string, json: string, expiry: number, channel: string): Promise<number>;
  mgRemoveEndpoint(endpoints: string, leases: string, id: string, channel: string): Promise<number>;
  mgSweepEndpoints(endpoints: string, leases: string, now: number, channel: string): Promise<number>;
  mgReadView(desired: string, endpoints: string, leases: string, writer: string, now: number): Promise<[string | null, string[], string | null]>;
}

export function scripted(redis: Redis): ScriptedRedis {
  return redis as unknown as ScriptedRedis;
}

/**
 * Keeps one endpoint's lease alive: registers now, renews every `leaseMs / 3`, re-registers after
 * Redis comes back (the record is rewritten in full, so a Redis that lost its data learns it again).
 */
export class EndpointLease {
  readonly #redis: Redis;
  readonly #keys: SharedKeys;
  readonly #leaseMs: number;
  #record: EndpointRecord;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(redis: Redis, keys: SharedKeys, record: EndpointRecord, leaseMs: number) {
    this.#redis = redis;
    this.#keys = keys;
    this.#record = record;
    this.#leaseMs = leaseMs;
  }

  start(): void {
    void this.#renew();
    this.#timer = setInterval(() => void this.#renew(), Math.max(100, Math.floor(this.#leaseMs / 3)));
    this.#timer.unref();
  }

  update(patch: Partial<EndpointRecord>): void {
    this.#record = { ...this.#record, ...patch };
    void this.#renew();
  }

  /** Stops renewing and removes the endpoint (best effort: an unreachable Redis lets it expire). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    const k = this.#keys;
    await scripted(this.#redis).mgRemoveEndpoint(k.endpoints, k.leases, this.#record.id, k.events).catch(() => 0);
  }

  async #renew(): Promise<void> {
    if (this.#stopped) return;
    const k = this.#keys;
    await scripted(this.#redis)
      .mgRegisterEndpoint(k.endpoints, k.leases, this.#record.id, JSON.stringify(this.#record), Date.now() + this.#leaseMs, k.events)
      .catch(() => 0);
  }
}
