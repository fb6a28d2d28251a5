/**
 * Chaos and soak (issue 9 part 5): `npm run chaos -- --minutes=10 [--replicas=2] [--redis] [--write]`.
 *
 * On loopback only: a models repository with a few models, optionally a redis-server, and two
 * gateways (child processes, `--worker_replicas=R`) under steady load (bounded concurrency and rate,
 * every request with a timeout). For the whole run, every `--chaos_interval_s` one event, picked by a
 * seeded generator:
 *   - kill -9 a random worker (found as a child of its gateway in /proc), only while another replica
 *     of its version is alive in that gateway, so a request always has somewhere to go;
 *   - move the labels (stable/canary swap between versions 1 and 2) in models.config;
 *   - add or remove a model nobody sends load to;
 *   - write an invalid models.config (which must change nothing), put back a valid one shortly after;
 *   - with --redis, restart Redis (empty).
 * At the end it prints requests sent, failures by status, worker restarts, latency percentiles, and the
 * RSS growth of every process (gateways, workers that lived through the run, Redis) from /proc, and
 * exits 1 when a target is missed: no failed request with two or more replicas, RSS growth under
 * --rss_tolerance (5%) for every process, comparing the peak of the first and of the last fifth of
 * the run after warm-up (RSS saws up and down with garbage collection). `--chaos_interval_s=0` runs
 * the load alone.
 */
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { percentile, updateResults } from '../bench/results.js';
import { GatewayProcess, childProcesses, rssBytes } from '../test/helpers/gateway-process.js';
import { RedisServer } from '../test/helpers/redis.js';
import { freePort, tempDir, writeModel } from '../test/helpers/repo.js';
import { makeAddSub, makeHalfPlusTwo, makeMlp, mulberry32 } from './make-example-models.js';

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    replicas: { type: 'string', default: '2' },
    redis: { type: 'boolean', default: false },
    rps: { type: 'string', default: '60' },
    concurrency: { type: 'string', default: '6' },
    chaos_interval_s: { type: 'string', default: '4' },
    warmup_s: { type: 'string', default: '' },
    timeout_ms: { type: 'string', default: '10000' },
    rss_tolerance: { type: 'string', default: '0.05' },
    seed: { type: 'string', default: '1' },
    write: { type: 'boolean', default: false },
  },
});
const minutes = Number(args.minutes);
const replicas = Number(args.replicas);
const rpsPerGateway = Number(args.rps);
const concurrency = Number(args.concurrency);
const chaosIntervalMs = Number(args.chaos_interval_s) * 1000;
const runMs = minutes * 60_000;
// RSS is measured after warm-up (a quarter of the run, at least 60 s, at most 3 min): V8's heap keeps
// growing towards its working size for the first minute or so under load.
const warmupMs = args.warmup_s ? Number(args.warmup_s) * 1000 : Math.min(180_000, Math.max(60_000, runMs / 4));
const timeoutMs = Number(args.timeout_ms);
const rssTolerance = Number(args.rss_tolerance);
if (!(minutes > 0) || !(replicas >= 1) || !(rpsPerGateway > 0) || !(concurrency >= 1) || !(chaosIntervalMs >= 0) || warmupMs >= runMs) {
  process.stderr.write('usage: chaos-soak.js --minutes=M [--replicas=2] [--redis] [--rps=60] [--concurrency=6] [--chaos_interval_s=4 (0: load only)] [--warmup_s=S] [--write]\n');
  process.exit(2);
}

const random = mulberry32(Number(args.seed));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
const log = (line: string) => process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = 2 ** 20;
const t0 = Date.now();

// --- the repository and its config -----------------------------------------------------------------

const dir = await tempDir('modelgate-chaos-');
await writeModel(dir, 'half_plus_two', '1', makeHalfPlusTwo());
await writeModel(dir, 'add_sub', '1', makeAddSub());
await writeModel(dir, 'mlp', '1', makeMlp(1));
await writeModel(dir, 'mlp', '2', makeMlp(2));
await writeModel(dir, 'extra', '1', makeHalfPlusTwo());
const configFile = path.join(dir, 'models.config');
const monitoringFile = path.join(dir, 'monitoring.config');
await writeFile(monitoringFile, 'prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }\n');

let stableVersion = 1;
let withExtra = false;
function configText(): string {
  return `model_config_list {
  config { name: "half_plus_two" base_path: "half_plus_two" model_platform: "onnx" }
  config { name: "add_sub" base_path: "add_sub" model_platform: "onnx" }
  config {
    name: "mlp" base_path: "mlp" model_platform: "onnx"
    model_version_policy { all {} }
    version_labels { key: "stable" value: ${stableVersion} }
    version_labels { key: "canary" value: ${3 - stableVersion} }
  }
${withExtra ? '  config { name: "extra" base_path: "extra" model_platform: "onnx" }\n' : ''}}
`;
}
/** Write-and-rename, as editors save. */
async function saveConfig(text: string): Promise<void> {
  const tmp = `${configFile}.tmp-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, configFile);
}
await saveConfig(configText());

// --- processes -----------------------------------------------------------------------------------

let redis: RedisServer | undefined;
if (args.redis) redis = await RedisServer.start();
const gateways: GatewayProcess[] = [];
const stopAll = async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  await redis?.stop();
};
process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));
// A failure of this script itself must not leave its gateways and workers running.
const fail = (err: unknown) => {
  process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  void stopAll().finally(() => process.exit(1));
};
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);

for (let i = 0; i < 2; i++) {
  gateways.push(
    await GatewayProcess.start({
      args: [
        `--model_config_file=${configFile}`,
        `--worker_replicas=${replicas}`,
        `--monitoring_config_file=${monitoringFile}`,
        `--rest_api_timeout_in_ms=${timeoutMs}`,
        ...(redis ? [`--redis_url=${redis.url}`, `--gateway_id=chaos-gw-${i}`] : []),
      ],
      restPort: await freePort(),
      waitForModels: ['half_plus_two', 'add_sub', 'mlp'],
    }),
  );
}
log(`gateways ${gateways.map((g) => `pid ${g.pid} on :${g.restPort}`).join(', ')}; ${replicas} replica(s); ${redis ? `redis on :${redis.port}` : 'no redis'}`);

// --- load ---------------------------------------------------------------------------------------

const image = Array.from({ length: 784 }, (_, i) => (i % 13) / 13);
const TARGETS = [
  { path: '/v1/models/half_plus_two:predict', body: '{"instances": [1.0, 2.0, 5.0]}', weight: 4 },
  { path: '/v1/models/add_sub:predict', body: '{"inputs": {"input_x": [[1, 2]], "input_y": [[10, 20]]}}', weight: 3 },
  { path: '/v1/models/mlp/labels/stable:predict', body: JSON.stringify({ instances: [image] }), weight: 1 },
  { path: '/v1/models/mlp/labels/canary:predict', body: JSON.stringify({ instances: [image] }), weight: 1 },
  { path: '/v1/models/mlp:predict', body: JSON.stringify({ instances: [image] }), weight: 1 },
];
const weighted = TARGETS.flatMap((t) => Array.from({ length: t.weight }, () => t));

interface Counts {
  sent: number;
  byStatus: Record<string, number>;
  failures: string[];
  latenciesMs: number[];
}
const counts: Counts = { sent: 0, byStatus: {}, failures: [], latenciesMs: [] };
let stopping = false;
const loadStart = Date.now();
const loadEnd = loadStart + runMs;
// A hard cap on requests, far above what the rate allows, so the loops are bounded in count too.
const maxRequests = Math.ceil(rpsPerGateway * 2 * (runMs / 1000) * 1.5) + 1000;

async function loadLoop(gw: GatewayProcess, pool: Pool, k: number): Promise<void> {
  const interval = (1000 * concurrency) / rpsPerGateway;
  let next = Date.now() + (k * interval) / concurrency;
  while (!stopping && Date.now() < loadEnd && counts.sent < maxRequests) {
    const wait = next - Date.now();
    if (wait > 0) await sleep(wait);
    next += interval;
    const t = pick(weighted);
    counts.sent++;
    const started = performance.now();
    let status = 0;
    let text = '';
    try {
      const res = await pool.request({
        path: t.path,
        method: 'POST',
        body: t.body,
        headersTimeout: timeoutMs + 2000,
        bodyTimeout: timeoutMs + 2000,
        signal: AbortSignal.timeout(timeoutMs + 3000),
      });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      text = `${(err as { code?: string }).code ?? ''} ${(err as Error).message}`;
    }
    const ms = performance.now() - started;
    counts.latenciesMs.push(ms);
    counts.byStatus[status] = (counts.byStatus[status] ?? 0) + 1;
    if (status !== 200 && counts.failures.length < 30) {
      counts.failures.push(`gw${gateways.indexOf(gw)} ${t.path} → ${status} ${text.replace(/\s+/g, ' ').slice(0, 200)}`);
    }
  }
}

const pools = gateways.map((g) => new Pool(g.base, { connections: concurrency }));
const loops = gateways.flatMap((g, i) => Array.from({ length: concurrency }, (_, k) => loadLoop(g, pools[i] as Pool, k)));

// --- RSS sampling --------------------------------------------------------------------------------

interface Sample {
  t: number;
  rss: number;
}
const samples = new Map<number, { name: string; samples: Sample[] }>();
function sampleAll(): void {
  const now = Date.now();
  const add = (pid: number, name: string) => {
    const rss = rssBytes(pid);
    if (rss === undefined) return;
    let entry = samples.get(pid);
    if (!entry) samples.set(pid, (entry = { name, samples: [] }));
    entry.samples.push({ t: now, rss });
  };
  gateways.forEach((g, i) => {
    add(g.pid, `gateway ${i}`);
    for (const w of g.workers()) add(w.pid, `gw${i} worker ${w.model}/${w.version}`);
  });
  for (const c of childProcesses(process.pid)) if (c.argv[0]?.includes('redis-server')) add(c.pid, 'redis-server');
}
// Each gateway's V8 heap in use, from its own metrics: RSS also moves with how large V8 lets its heap
// grow, so the lowest heap-in-use sample of a period (right after a collection: what is live) tells a
// leak from a larger heap.
const heapSamples: Array<Array<{ t: number; used: number }>> = [];
function sampleHeaps(): void {
  gateways.forEach((g, i) => {
    const t = Date.now();
    fetch(`http://127.0.0.1:${g.restPort}/monitoring/prometheus/metrics`, { signal: AbortSignal.timeout(4000) })
      .then((res) => res.text())
      .then((text) => {
        const used = Number(/^nodejs_heap_size_used_bytes (\S+)/m.exec(text)?.[1]);
        if (Number.isFinite(used)) (heapSamples[i] ??= []).push({ t, used });
      })
      .catch(() => {});
  });
}
sampleAll();
sampleHeaps();
const sampler = setInterval(() => {
  sampleAll();
  sampleHeaps();
}, 5_000);

// --- chaos ---------------------------------------------------------------------------------------

const events: Record<string, number> = {};
let kills = 0;
const count = (name: string) => (events[name] = (events[name] ?? 0) + 1);

async function killWorker(): Promise<void> {
  const gi = Math.floor(random() * gateways.length);
  const gw = gateways[gi] as GatewayProcess;
  const workers = gw.workers();
  // With replicas, only a worker whose version has another live replica in this gateway.
  const spare = workers.filter((w) => workers.filter((o) => o.model === w.model && o.version === w.version).length >= 2);
  const victim = replicas >= 2 ? spare.length ? pick(spare) : undefined : workers.length ? pick(workers) : undefined;
  if (!victim) {
    count('kill skipped (no spare replica)');
    return;
  }
  try {
    process.kill(victim.pid, 'SIGKILL');
    kills++;
    count('kill -9 worker');
    log(`kill -9 gw${gi} worker ${victim.model}/${victim.version} pid ${victim.pid}`);
  } catch {
    // gone already
  }
}

async function flipLabels(): Promise<void> {
  stableVersion = 3 - stableVersion;
  await saveConfig(configText());
  count('label flip');
  log(`labels: stable → ${stableVersion}, canary → ${3 - stableVersion}`);
}

async function toggleExtra(): Promise<void> {
  withExtra = !withExtra;
  await saveConfig(configText());
  count(withExtra ? 'add model' : 'remove model');
  log(`${withExtra ? 'added' : 'removed'} model "extra"`);
}

let invalidPending = false;
async function invalidConfig(): Promise<void> {
  if (invalidPending) return;
  invalidPending = true;
  await saveConfig(`${configText()}\nmodel_config_list { config { name: "broken" base_pth: "x" } }\n`);
  count('invalid config');
  log('invalid models.config written');
  setTimeout(() => {
    void saveConfig(configText()).then(() => {
      invalidPending = false;
      log('valid models.config restored');
    });
  }, 1500);
}

async function restartRedis(): Promise<void> {
  if (!redis) return;
  await redis.stop();
  await sleep(1000);
  await redis.start();
  count('redis restart');
  log('redis restarted (empty)');
}

const actions: [number, () => Promise<void>][] = [
  [4, killWorker],
  [3, flipLabels],
  [1, toggleExtra],
  [1, invalidConfig],
  ...(redis ? ([[1, restartRedis]] as [number, () => Promise<void>][]) : []),
];
const actionList = actions.flatMap(([w, f]) => Array.from({ length: w }, () => f));

async function chaosLoop(): Promise<void> {
  // Chaos starts after a short calm, and stops a few seconds before the load so the end state settles.
  await sleep(Math.min(5_000, warmupMs / 2));
  while (chaosIntervalMs > 0 && !stopping && Date.now() < loadEnd - 5_000) {
    try {
      await pick(actionList)();
    } catch (err) {
      log(`chaos action failed: ${(err as Error).message}`);
    }
    await sleep(Math.min(chaosIntervalMs * (0.5 + random()), Math.max(0, loadEnd - Date.now())));
  }
}
const chaos = chaosLoop();

const progress = setInterval(() => {
  const failed = counts.sent - (counts.byStatus['200'] ?? 0);
  log(`${counts.sent} requests, ${failed} failed; gateways RSS ${gateways.map((g) => `${((g.rss() ?? 0) / MiB).toFixed(0)} MiB`).join(', ')}`);
}, 30_000);

await Promise.all(loops);
stopping = true;
await chaos;
clearInterval(progress);
clearInterval(sampler);
sampleAll();

// --- results -------------------------------------------------------------------------------------

async function restartsOf(gw: GatewayProcess): Promise<number> {
  try {
    const res = await (pools[gateways.indexOf(gw)] as Pool).request({ path: '/monitoring/prometheus/metrics', method: 'GET', headersTimeout: 5000, bodyTimeout: 5000 });
    const text = await res.body.text();
    let n = 0;
    for (const m of text.matchAll(/^modelgate_worker_restarts_total\{[^}]*\} (\d+(?:\.\d+)?)$/gm)) n += Number(m[1]);
    return n;
  } catch {
    return NaN;
  }
}
const restarts = await Promise.all(gateways.map(restartsOf));
const gatewaysAlive = gateways.map((g) => g.alive);
await Promise.all(pools.map((p) => p.close()));

const warmEnd = loadStart + warmupMs;
interface Growth {
  name: string;
  pid: number;
  from: number;
  to: number;
  growth: number;
}
const growth: Growth[] = [];
for (const [pid, { name, samples: s }] of samples) {
  // Processes that lived from the end of warm-up to the end of the run. RSS saws up and down with
  // garbage collection, so growth compares peaks: the highest sample in the first fifth of the
  // measured period against the highest in the last fifth.
  const last = s.at(-1);
  if (!last || s[0]!.t > warmEnd || last.t < loadEnd - 10_000) continue;
  const window = Math.max(15_000, (last.t - warmEnd) / 5);
  const peak = (from: number, to: number) => Math.max(...s.filter((x) => x.t >= from && x.t <= to).map((x) => x.rss));
  const from = peak(warmEnd, warmEnd + window);
  const to = peak(last.t - window, last.t);
  if (!Number.isFinite(from) || !Number.isFinite(to)) continue;
  growth.push({ name, pid, from, to, growth: to / from - 1 });
}
growth.sort((a, b) => b.growth - a.growth);

/** Per gateway: the lowest V8 heap in use in the first and in the last fifth after warm-up. */
const heapLive = heapSamples.map((hs, i) => {
  const end = hs.at(-1)?.t ?? warmEnd;
  const window = Math.max(15_000, (end - warmEnd) / 5);
  const low = (from: number, to: number) => Math.min(...hs.filter((x) => x.t >= from && x.t <= to).map((x) => x.used));
  return { name: `gateway ${i}`, from: low(warmEnd, warmEnd + window), to: low(end - window, end) };
});
const heapLine = heapLive
  .filter((h) => Number.isFinite(h.from) && Number.isFinite(h.to))
  .map((h) => `${h.name} ${(h.from / 2 ** 20).toFixed(1)} → ${(h.to / 2 ** 20).toFixed(1)} MiB`)
  .join(', ');

const sent = counts.sent;
const ok = counts.byStatus['200'] ?? 0;
const failed = sent - ok;
const p = (q: number) => percentile(counts.latenciesMs, q);
// Not Math.max(...latencies): spreading a long run's 100k+ samples overflows the call stack.
const maxLatency = counts.latenciesMs.reduce((m, x) => (x > m ? x : m), 0);
const seconds = (Date.now() - loadStart) / 1000;
const worst = growth[0];
const gatewayGrowth = growth.filter((g) => g.name.startsWith('gateway'));
const problems: string[] = [];
if (replicas >= 2 && failed > 0) problems.push(`${failed} failed requests (target 0 with ${replicas} replicas)`);
for (const g of growth) if (g.growth >= rssTolerance) problems.push(`${g.name} (pid ${g.pid}) RSS grew ${(g.growth * 100).toFixed(1)}% (target < ${rssTolerance * 100}%)`);
if (gatewaysAlive.some((a) => !a)) problems.push('a gateway exited');

const fmt = (b: number) => `${(b / MiB).toFixed(1)} MiB`;
const statusList = Object.entries(counts.byStatus)
  .sort(([a], [b]) => Number(a) - Number(b))
  .map(([s, n]) => `${s === '0' ? 'no answer' : s}: ${n}`)
  .join(', ');
const lines = [
  `${minutes} min, 2 gateways × ${replicas} replica(s)${redis ? ', Redis' : ''}; load ${rpsPerGateway} req/s per gateway (${concurrency} concurrent each, ${timeoutMs} ms timeout)`,
  `requests sent: ${sent} (${(sent / seconds).toFixed(0)}/s), ok: ${ok}, failed: ${failed}${failed ? ` (${statusList})` : ''}`,
  `latency ms: p50 ${p(50).toFixed(1)}, p99 ${p(99).toFixed(1)}, max ${maxLatency.toFixed(1)}`,
  `chaos: ${Object.entries(events).map(([k, n]) => `${k} ×${n}`).join(', ')}`,
  `worker restarts (gateway metrics): ${restarts.map((r, i) => `gw${i} ${r}`).join(', ')}; kill -9 sent: ${kills}`,
  `RSS growth (peak of the last fifth vs the first fifth after a ${(warmupMs / 1000).toFixed(0)} s warm-up; ${growth.length} processes that lived through): ` +
    `gateways ${gatewayGrowth.map((g) => `${g.name} ${fmt(g.from)} → ${fmt(g.to)} (${(g.growth * 100).toFixed(1)}%)`).join(', ')}; ` +
    `largest ${worst ? `${worst.name} ${(worst.growth * 100).toFixed(1)}%` : 'n/a'}`,
  `V8 heap in use, lowest sample of the first vs the last fifth after warm-up (what is live): ${heapLine}`,
];
process.stdout.write(`\n${lines.join('\n')}\n`);
for (const g of growth) process.stdout.write(`  ${g.name.padEnd(32)} pid ${String(g.pid).padEnd(8)} ${fmt(g.from)} → ${fmt(g.to)} (${(g.growth * 100).toFixed(1)}%)\n`);
for (const f of counts.failures) process.stdout.write(`FAILED ${f}\n`);
for (const pr of problems) process.stdout.write(`MISSED ${pr}\n`);
process.stdout.write(problems.length === 0 ? 'all targets met\n' : `${problems.length} target(s) missed\n`);

if (args.write) {
  const name = `Chaos and soak${redis ? ' (Redis)' : ''}`;
  const command = `npm run chaos -- --minutes=${minutes} --replicas=${replicas}${redis ? ' --redis' : ''} --write`;
  const body = [
    '| what | result | target | |',
    '|---|---|---|---|',
    `| requests sent | ${sent.toLocaleString('en')} (${(sent / seconds).toFixed(0)}/s over 2 gateways) | | |`,
    `| failed requests | ${failed}${failed ? ` (${statusList})` : ''} | 0 with ≥ 2 replicas | ${replicas < 2 ? 'n/a' : failed === 0 ? 'met' : 'missed'} |`,
    `| latency p50 / p99 / max | ${p(50).toFixed(1)} / ${p(99).toFixed(1)} / ${maxLatency.toFixed(1)} ms | | |`,
    `| worker restarts | ${restarts.reduce((a, b) => a + b, 0)} (kill -9 sent: ${kills}) | | |`,
    `| largest RSS growth after warm-up | ${worst ? `${(worst.growth * 100).toFixed(1)}% (${worst.name})` : 'n/a'} | < ${rssTolerance * 100}% | ${growth.every((g) => g.growth < rssTolerance) ? 'met' : 'missed'} |`,
    ...gatewayGrowth.map((g) => `| ${g.name} RSS | ${fmt(g.from)} → ${fmt(g.to)} (${(g.growth * 100).toFixed(1)}%) | < ${rssTolerance * 100}% | ${g.growth < rssTolerance ? 'met' : 'missed'} |`),
    ...heapLive
      .filter((h) => Number.isFinite(h.from) && Number.isFinite(h.to))
      .map((h) => `| ${h.name} V8 heap in use (lowest sample, first → last fifth) | ${fmt(h.from)} → ${fmt(h.to)} | | |`),
    '',
    `Chaos events (one every ~${chaosIntervalMs / 1000} s, seeded): ${Object.entries(events).map(([k, n]) => `${k} ×${n}`).join(', ')}. ` +
      `Load: ${rpsPerGateway} req/s per gateway, ${concurrency} concurrent, predict on half_plus_two, add_sub and mlp (stable, canary, latest). ` +
      `RSS from /proc/<pid>/status VmRSS every 5 s; growth = peak of the last fifth of the run after a ${(warmupMs / 1000).toFixed(0)} s warm-up vs the peak of the first fifth, for every process that lived until the end ` +
      `(${growth.length}: gateways, workers never killed${redis ? ', Redis if never restarted' : ''}).`,
    ...(counts.failures.length ? ['', 'First failures:', '', ...counts.failures.slice(0, 10).map((f) => `- ${f}`)] : []),
  ].join('\n');
  await updateResults(name, command, body);
}

await stopAll();
process.exit(problems.length === 0 ? 0 : 1);
