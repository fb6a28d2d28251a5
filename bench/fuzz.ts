/**
 * `npm run fuzz -- --cases=100000 [--seed=1] [--concurrency=4] [--write]`: the fuzz properties of
 * test/helpers/fuzz.ts at scale (issue 9 part 4), against a gateway child process with real workers
 * serving the standard test repository, on loopback.
 *
 * Cases are split REST 45%, raw TCP 5%, gRPC 30%, models.config 15%, BatchingParameters 5%. Prints
 * cases run, violations (with inputs), statuses seen, the gateway's memory round by round (below) and
 * its workers' RSS; with --write, a section of bench/RESULTS.md. Exits 1 on a violation, on a model
 * whose status changed, a worker that restarted, or gateway RSS peak growth above --rss_tolerance.
 */
import { parseArgs } from 'node:util';
import { Pool, request } from 'undici';
import {
  checkGrpcCase,
  checkRawCase,
  checkRestCase,
  FUZZ_CLIENT_TIMEOUT_MS,
  FUZZ_MAX_REQUEST_BYTES,
  FUZZ_METRICS_PATH,
  grpcCaseArb,
  mergeStats,
  MiB,
  modelSnapshot,
  newStats,
  rawCaseArb,
  rawGrpcClient,
  restCaseArb,
  runCases,
  runTextFuzzGuarded,
  startFuzzGateway,
  workerPids,
  type FuzzStats,
} from '../test/helpers/fuzz.js';
import { rssBytes } from '../test/helpers/gateway-process.js';
import { updateResults } from './results.js';

const { values: args } = parseArgs({
  options: {
    cases: { type: 'string', default: '10000' },
    seed: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '4' },
    rss_tolerance: { type: 'string', default: '0.05' },
    write: { type: 'boolean', default: false },
    only: { type: 'string', default: '' },
    gateway_node_options: { type: 'string', default: '' },
  },
});
const total = Number(args.cases);
const seed = Number(args.seed);
const concurrency = Number(args.concurrency);
const tolerance = Number(args.rss_tolerance);
if (!Number.isInteger(total) || total < 10 || !Number.isInteger(seed) || !(concurrency >= 1)) {
  process.stderr.write('usage: fuzz.js --cases=N (>= 10) [--seed=S] [--concurrency=C] [--rss_tolerance=0.05] [--only=rest|tcp|grpc|config|batching] [--gateway_node_options=...] [--write]\n');
  process.exit(2);
}

const families = ['rest', 'tcp', 'grpc', 'config', 'batching'] as const;
const only = args.only as (typeof families)[number] | '';
if (only && !families.includes(only)) {
  process.stderr.write(`--only takes one of ${families.join(', ')}\n`);
  process.exit(2);
}
const share = only
  ? { rest: 0, tcp: 0, grpc: 0, config: 0, batching: 0, [only]: total }
  : { rest: Math.round(total * 0.45), tcp: Math.round(total * 0.05), grpc: Math.round(total * 0.3), config: Math.round(total * 0.15), batching: 0 };
if (!only) share.batching = total - share.rest - share.tcp - share.grpc - share.config;

const fmt = (n: number | undefined) => (n === undefined ? 'gone' : `${(n / MiB).toFixed(1)} MiB`);
const log = (line: string) => process.stdout.write(`${line}\n`);
const started = Date.now();

// --gateway_node_options reaches the gateway (and its workers) as NODE_OPTIONS, e.g. a V8 heap cap.
if (args.gateway_node_options) process.env.NODE_OPTIONS = args.gateway_node_options;
const gw = await startFuzzGateway({ monitoring: true });
const results: Record<string, FuzzStats> = {};

/**
 * Memory is watched over a stationary load: the network cases run in ROUNDS rounds, each a slice of
 * every family (REST, raw TCP, gRPC) with its own seeds, so each round stresses the gateway alike and a
 * leak shows as growth from round to round. The gateway's RSS is read from /proc every 100 ms (its peak
 * per round is kept, so a transient spike is seen too) and its V8 heap and external memory from its own
 * Prometheus series at the end of each round. Rounds 1–2 are warm-up; the criterion compares the RSS
 * peak of the last two rounds with that of rounds 3–4.
 */
const ROUNDS = 10;
interface RoundMemory {
  round: number;
  rssPeak: number;
  rssEnd: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
}
const rounds: RoundMemory[] = [];
let peak = 0;
const sampler = setInterval(() => {
  peak = Math.max(peak, gw.rss() ?? 0);
}, 100);
sampler.unref();

async function gatewayHeap(): Promise<{ heapUsed: number; heapTotal: number; external: number }> {
  const text = await (await request(`${gw.base}${FUZZ_METRICS_PATH}`, { headersTimeout: 5000, bodyTimeout: 5000 })).body.text();
  const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
  return {
    heapUsed: metric('nodejs_heap_size_used_bytes'),
    heapTotal: metric('nodejs_heap_size_total_bytes'),
    external: metric('nodejs_external_memory_bytes'),
  };
}

let exitCode = 0;
try {
  const snapshotBefore = await modelSnapshot(gw.base);
  const pidsBefore = workerPids(gw);
  const rssAtStart = gw.rss() ?? 0;
  const workerRss = (when: string) => {
    const workers: Record<string, number | undefined> = {};
    for (const w of gw.workers()) workers[`${w.model}/${w.version}`] = rssBytes(w.pid);
    return { when, workers };
  };
  const workerSamples = [workerRss('at start')];
  const pool = new Pool(gw.base, { connections: concurrency });
  const target = { pool, timeoutMs: FUZZ_CLIENT_TIMEOUT_MS };
  const rest = newStats();
  const tcp = newStats();
  const grpcStats = newStats();
  const restArb = restCaseArb(FUZZ_MAX_REQUEST_BYTES);
  const client = rawGrpcClient(`127.0.0.1:${gw.grpcPort}`);
  const slice = (n: number, r: number) => Math.floor(n / ROUNDS) + (r < n % ROUNDS ? 1 : 0);
  try {
    for (let r = 0; r < ROUNDS; r++) {
      peak = gw.rss() ?? 0;
      const roundSeed = seed + 1000 * r;
      await runCases(restArb, (c, s) => checkRestCase(target, c, s), { numRuns: slice(share.rest, r), seed: roundSeed, concurrency, stats: rest, label: 'REST' });
      await runCases(rawCaseArb, (c, s) => checkRawCase('127.0.0.1', gw.restPort, c, 10_000, s), { numRuns: slice(share.tcp, r), seed: roundSeed + 7, concurrency, stats: tcp, label: 'TCP' });
      await runCases(grpcCaseArb, (c, s) => checkGrpcCase(client, c, FUZZ_CLIENT_TIMEOUT_MS, s), { numRuns: slice(share.grpc, r), seed: roundSeed + 11, concurrency, stats: grpcStats, label: 'gRPC' });
      const rssEnd = gw.rss() ?? 0;
      const heap = await gatewayHeap();
      rounds.push({ round: r + 1, rssPeak: Math.max(peak, rssEnd), rssEnd, ...heap });
      log(
        `round ${r + 1}/${ROUNDS}: ${rest.cases + tcp.cases + grpcStats.cases} network cases, ` +
          `${rest.violationCount + tcp.violationCount + grpcStats.violationCount} violations, ${((Date.now() - started) / 1000).toFixed(0)} s; ` +
          `gateway RSS peak ${fmt(rounds.at(-1)!.rssPeak)}, end ${fmt(rssEnd)}, JS heap ${fmt(heap.heapUsed)} of ${fmt(heap.heapTotal)}, external ${fmt(heap.external)}`,
      );
      if (r === 1) workerSamples.push(workerRss('after warm-up'));
    }
  } finally {
    client.close();
    await pool.close();
  }
  workerSamples.push(workerRss('at end'));
  if (share.rest) results.REST = rest;
  if (share.tcp) results['raw TCP'] = tcp;
  if (share.grpc) results.gRPC = grpcStats;

  if (share.config) results['models.config'] = await runTextFuzzGuarded('config', share.config, seed + 13);
  if (share.batching) results.BatchingParameters = await runTextFuzzGuarded('batching', share.batching, seed + 17);

  // The fleet is as it was: same statuses, same worker processes, gateway alive.
  const problems: string[] = [];
  if (!gw.alive) problems.push('the gateway exited');
  const snapshotAfter = await modelSnapshot(gw.base).catch((err: Error) => `unreachable: ${err.message}`);
  if (snapshotAfter !== snapshotBefore) problems.push(`model statuses changed:\n  before ${snapshotBefore}\n  after  ${snapshotAfter}`);
  const pidsAfter = workerPids(gw);
  if (pidsAfter !== pidsBefore) {
    const why = gw.tail.filter((l) => !l.includes('"msg":"request"')).slice(-8);
    problems.push(`worker processes changed (a restart):\n  before ${pidsBefore}\n  after  ${pidsAfter}\n  gateway log:\n    ${why.join('\n    ')}`);
  }
  const early = Math.max(...rounds.slice(2, 4).map((r) => r.rssPeak));
  const late = Math.max(...rounds.slice(-2).map((r) => r.rssPeak));
  const growth = late / early - 1;
  if (!(growth <= tolerance)) problems.push(`gateway RSS peak grew ${(growth * 100).toFixed(1)}% from rounds 3–4 to rounds ${ROUNDS - 1}–${ROUNDS} (tolerance ${tolerance * 100}%)`);

  const all = newStats();
  for (const s of Object.values(results)) mergeStats(all, s);
  const seconds = (Date.now() - started) / 1000;
  log('');
  log(`cases run: ${all.cases} (skipped by the client: ${all.skipped}) in ${seconds.toFixed(0)} s; violations: ${all.violationCount}`);
  for (const [name, s] of Object.entries(results)) {
    log(`  ${name}: ${s.cases} cases, ${s.violationCount} violations; seen ${JSON.stringify(s.seen)}`);
  }
  for (const v of all.violations) log(`VIOLATION ${v}`);
  for (const p of problems) log(`PROBLEM ${p}`);
  log(`gateway RSS: start ${fmt(rssAtStart)}, peak in rounds 3–4 ${fmt(early)}, peak in rounds ${ROUNDS - 1}–${ROUNDS} ${fmt(late)} (${(growth * 100).toFixed(1)}%)`);
  if (all.violationCount > 0 || problems.length > 0) exitCode = 1;

  if (args.write) {
    const statusTable = (s: FuzzStats) =>
      Object.entries(s.seen)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, n]) => `${k}: ${n}`)
        .join(', ');
    const body = [
      `${all.cases.toLocaleString('en')} cases (seed ${seed}, ${concurrency} concurrent streams) in ${seconds.toFixed(0)} s; ` +
        `**${all.violationCount} violations**; ${problems.length === 0 ? 'every model status and worker process unchanged at the end' : problems.join('; ')}.`,
      '',
      '| property family | cases | violations | answers seen |',
      '|---|---|---|---|',
      ...Object.entries(results).map(([name, s]) => `| ${name} | ${s.cases.toLocaleString('en')} | ${s.violationCount} | ${statusTable(s)} |`),
      '',
      '| round | gateway RSS peak | RSS at end of round | JS heap used | JS heap total (V8) | external memory |',
      '|---|---|---|---|---|---|',
      ...rounds.map((r) => `| ${r.round} | ${fmt(r.rssPeak)} | ${fmt(r.rssEnd)} | ${fmt(r.heapUsed)} | ${fmt(r.heapTotal)} | ${fmt(r.external)} |`),
      '',
      '| worker RSS | ' + workerSamples.map((w) => w.when).join(' | ') + ' |',
      '|---|' + workerSamples.map(() => '---|').join(''),
      ...Object.keys(workerSamples[0]!.workers).map((k) => `| ${k} | ${workerSamples.map((w) => fmt(w.workers[k])).join(' | ')} |`),
      '',
      `Gateway RSS at start ${fmt(rssAtStart)}; growth of the RSS peak from rounds 3–4 to rounds ${ROUNDS - 1}–${ROUNDS}: ` +
        `${(growth * 100).toFixed(1)}% (tolerance ${tolerance * 100}%). Each round runs a tenth of the REST, raw TCP and gRPC cases. REST statuses allowed on ` +
        '/v1 paths: 200, 400, 401, 404, 413, 429, 499, 501, 503, 504 (and 431 from Node\'s parser for a request head over 16 KiB); ' +
        'non-200 answers must be `{"error": string}` JSON. gRPC codes allowed: OK, INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, ' +
        'RESOURCE_EXHAUSTED, UNIMPLEMENTED, UNAVAILABLE, DEADLINE_EXCEEDED, UNAUTHENTICATED (reload is token-guarded here). ' +
        'Text configs must parse or fail with `file:line:col: `.',
      ...(all.violations.length ? ['', 'First violations:', '', ...all.violations.map((v) => `- ${v.replace(/\n/g, ' ')}`)] : []),
    ].join('\n');
    const section = only ? `Fuzzing: ${only} only${args.gateway_node_options ? `, gateway NODE_OPTIONS=${args.gateway_node_options}` : ''}` : 'Fuzzing';
    const command =
      `npm run fuzz -- --cases=${total}${seed !== 1 ? ` --seed=${seed}` : ''}${only ? ` --only=${only}` : ''}` +
      `${args.gateway_node_options ? ` --gateway_node_options=${args.gateway_node_options}` : ''} --write`;
    await updateResults(section, command, body);
  }
} finally {
  await gw.stop();
}
process.exit(exitCode);
