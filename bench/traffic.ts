/**
 * What a label split (--traffic_config_file) costs the gateway.
 *
 *  1. Routing cost (in process, ns per lookup): `RoutingTable.resolve` of a plain label, of a split
 *     label without a routing key (the low-discrepancy sequence), of a split label with a routing key
 *     (weighted rendezvous over the split's versions), and of a pinned version of a split model.
 *  2. Serving throughput (wrk, REST predict of half_plus_two under `labels/stable`, c=32): a gateway
 *     whose `stable` is a plain label (version 1); one whose `stable` is split 999999/1 over versions 1
 *     and 2 (every request runs the split lookup and lands on version 1's worker, like the plain
 *     label's: the like-for-like comparison); and one split 50/50 (two workers). Each also with an
 *     `x-modelgate-routing-key` header from 10,007 keys (a wrk `request` function, the same on all, so
 *     the key rows compare with each other). All gateways hold both versions. Rounds alternate the
 *     variants; a cell is the median of its rounds. Gateway CPU per request comes from /proc (user +
 *     system of the gateway process only).
 *
 *   npm run build && node dist/bench/traffic.js [--seconds=4] [--rounds=3] [--write]
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ServerConfig } from '../gateway/config/model-config.js';
import { parseTrafficConfig, trafficByModel } from '../gateway/config/traffic-config.js';
import type { Replica } from '../gateway/fleet/replica.js';
import { buildModelRoute } from '../gateway/manager/routes.js';
import { RoutingTable } from '../gateway/routing/routing-table.js';
import { makeHalfPlusTwo } from '../scripts/make-example-models.js';
import { freePort, tempDir, writeModel } from '../test/helpers/repo.js';
import { percentile, updateResults } from './results.js';

const run = promisify(execFile);
const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=').slice(1).join('=');
const SECONDS = Number(arg('seconds') ?? 4);
const ROUNDS = Number(arg('rounds') ?? 3);

// ---------------------------------------------------------------------------------------------------
// 1. Routing cost

function routingTable(withSplit: boolean): RoutingTable {
  const models: ServerConfig = {
    source: 'bench',
    models: [{ name: 'm', basePath: '/m', platform: 'onnx', policy: { kind: 'all' }, labels: { stable: 1 } }],
  };
  const traffic = withSplit
    ? parseTrafficConfig(
        `label_split { model_name: 'm' label: 'stable' version_weights { key: 1 value: 90 } version_weights { key: 2 value: 10 } }`,
        'bench',
        models,
      )
    : undefined;
  const replica = { inFlight: 0 } as unknown as Replica;
  const { route } = buildModelRoute({
    name: 'm',
    local: [1, 2].map((version) => ({ version, state: 'AVAILABLE' as const, unloaded: false, replicas: [replica], metadataJson: '{}', signatures: {} })),
    remote: undefined,
    configuredLabels: { stable: 1 },
    previousLabels: new Map(),
    allowUnavailableLabels: false,
    traffic: trafficByModel(traffic).get('m'),
  });
  return new RoutingTable(1, new Map([['m', route]]));
}

function nsPerLookup(lookup: (i: number) => number): number {
  const n = 2_000_000;
  const samples: number[] = [];
  let sink = 0;
  for (let round = 0; round < 7; round++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < n; i++) sink += lookup(i);
    samples.push(Number(process.hrtime.bigint() - started) / n);
  }
  if (sink === -1) console.log(sink);
  return percentile(samples.slice(2), 50);
}

function routingCost(): Array<[string, number]> {
  const plain = routingTable(false);
  const split = routingTable(true);
  const keys = Array.from({ length: 1024 }, (_, i) => `user-${i * 7919}`);
  return [
    ['plain label (`labels/stable` → 1)', nsPerLookup(() => plain.resolve('m', undefined, 'stable').version)],
    ['split label, no routing key (90/10)', nsPerLookup(() => split.resolve('m', undefined, 'stable').version)],
    ['split label, routing key (90/10, rendezvous)', nsPerLookup((i) => split.resolve('m', undefined, 'stable', keys[i & 1023]).version)],
    ['pinned version of a split model (`versions/1`)', nsPerLookup(() => split.resolve('m', '1').version)],
  ];
}

// ---------------------------------------------------------------------------------------------------
// 2. Serving throughput

const WRK_SCRIPT = `wrk.method = "POST"
wrk.body = '{"instances": [1.0, 2.0, 5.0]}'
if os.getenv("ROUTING_KEYS") then
  local n = 0
  request = function()
    n = n + 1
    wrk.headers["x-modelgate-routing-key"] = "user-" .. (n % 10007)
    return wrk.format()
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout + e.status))
end
`;

interface Cell {
  rps: number;
  p50ms: number;
  p99ms: number;
  errors: number;
  cpuUsPerRequest: number;
}

/** user + system CPU seconds of a process, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function wrk(url: string, script: string, pid: number, keys: boolean): Promise<Cell> {
  const cpu0 = cpuSeconds(pid);
  const env = keys ? { ...process.env, ROUTING_KEYS: '1' } : process.env;
  const { stdout } = await run('wrk', ['-t1', '-c32', `-d${SECONDS}s`, '--timeout', '10s', '-s', script, url], { env, maxBuffer: 1 << 20 });
  const cpu = cpuSeconds(pid) - cpu0;
  const m = /RESULT (\d+) (\d+) (\d+) (\d+) (\d+)/.exec(stdout);
  if (!m) throw new Error(`unexpected wrk output: ${stdout}`);
  const [, requests, durationUs, p50, p99, errors] = m.map(Number) as number[];
  return {
    rps: requests! / (durationUs! / 1e6),
    p50ms: p50! / 1000,
    p99ms: p99! / 1000,
    errors: errors!,
    cpuUsPerRequest: (cpu * 1e6) / requests!,
  };
}

async function startGateway(dir: string, extra: string[]): Promise<{ url: string; child: ChildProcess }> {
  const rest = await freePort();
  const child = spawn(
    process.execPath,
    [path.join(DIST, 'gateway/main.js'), `--model_config_file=${path.join(dir, 'models.config')}`, `--rest_api_port=${rest}`, '--rest_api_host=127.0.0.1', '--port=0', ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } },
  );
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`gateway did not start: ${seen}`)), 60_000);
    const onData = (d: Buffer) => {
      seen += d;
      if (/Exporting HTTP\/REST API/.test(seen)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
  });
  return { url: `http://127.0.0.1:${rest}/v1/models/half_plus_two/labels/stable:predict`, child };
}

const SAME_WORKER = 'split 999999/1 (same worker as plain)';

async function serving(): Promise<Array<[string, Cell]>> {
  const dir = await tempDir('modelgate-bench-traffic-');
  for (const v of ['1', '2']) await writeModel(dir, 'half_plus_two', v, makeHalfPlusTwo());
  await writeFile(
    path.join(dir, 'models.config'),
    `model_config_list { config { name: "half_plus_two" base_path: "half_plus_two" model_platform: "onnx"
       model_version_policy { all {} } version_labels { key: "stable" value: 1 } } }\n`,
  );
  await writeFile(
    path.join(dir, 'traffic.config'),
    `label_split { model_name: 'half_plus_two' label: 'stable' version_weights { key: 1 value: 50 } version_weights { key: 2 value: 50 } }\n`,
  );
  // Like for like: the whole split lookup on every request, all but one in a million to version 1,
  // the plain label's worker.
  await writeFile(
    path.join(dir, 'traffic-one-worker.config'),
    `label_split { model_name: 'half_plus_two' label: 'stable' version_weights { key: 1 value: 999999 } version_weights { key: 2 value: 1 } }\n`,
  );
  const script = path.join(dir, 'post.lua');
  await writeFile(script, WRK_SCRIPT);
  const plain = await startGateway(dir, []);
  const split = await startGateway(dir, [`--traffic_config_file=${path.join(dir, 'traffic.config')}`]);
  const oneWorker = await startGateway(dir, [`--traffic_config_file=${path.join(dir, 'traffic-one-worker.config')}`]);
  const variants: Array<[string, { url: string; child: ChildProcess }, boolean]> = [
    ['plain label', plain, false],
    [SAME_WORKER, oneWorker, false],
    ['plain label + routing key header', plain, true],
    [`${SAME_WORKER} + routing key`, oneWorker, true],
    ['split 50/50', split, false],
    ['split 50/50 + routing key (10,007 keys)', split, true],
  ];
  const rounds = new Map<string, Cell[]>(variants.map(([name]) => [name, []]));
  try {
    for (const [, gw, keys] of variants) await wrk(gw.url, script, gw.child.pid!, keys); // warm-up
    for (let r = 0; r < ROUNDS; r++) {
      for (const [name, gw, keys] of variants) rounds.get(name)!.push(await wrk(gw.url, script, gw.child.pid!, keys));
    }
  } finally {
    for (const gw of [plain, split, oneWorker]) gw.child.kill('SIGINT');
  }
  const median = (cells: Cell[], f: (c: Cell) => number) => percentile(cells.map(f), 50);
  return variants.map(([name]) => {
    const cells = rounds.get(name)!;
    return [
      name,
      {
        rps: median(cells, (c) => c.rps),
        p50ms: median(cells, (c) => c.p50ms),
        p99ms: median(cells, (c) => c.p99ms),
        errors: cells.reduce((s, c) => s + c.errors, 0),
        cpuUsPerRequest: median(cells, (c) => c.cpuUsPerRequest),
      },
    ];
  });
}

const cost = routingCost();
const cells = await serving();
const base = cells[0]![1];
const cellOf = (name: string) => cells.find(([n]) => n === name)![1];
const costOf = (prefix: string) => cost.find(([n]) => n.startsWith(prefix))![1];
const lines = [
  'Routing cost of one lookup (`RoutingTable.resolve`, median of 5 runs of 2,000,000 lookups):',
  '',
  '| lookup | ns |',
  '|---|---|',
  ...cost.map(([name, ns]) => `| ${name} | ${ns.toFixed(1)} |`),
  '',
  `Serving throughput, REST predict of half_plus_two under \`labels/stable\`, wrk c=32, ${SECONDS} s × ${ROUNDS} rounds (medians). All gateways hold versions 1 and 2. "split 999999/1" runs the whole split lookup on every request but sends all but one in a million to version 1, the plain label's worker: the like-for-like comparison. "split 50/50" sends half to version 2, so its requests reach two workers where the plain label's reach one (on 2 shared cores that moves req/s either way). "+ routing key" rows set \`x-modelgate-routing-key\` per request from a wrk Lua \`request\` function (which costs wrk itself throughput), so compare them with each other.`,
  '',
  '| variant | req/s | vs plain | p50 ms | p99 ms | gateway CPU µs/req | errors |',
  '|---|---|---|---|---|---|---|',
  ...cells.map(
    ([name, c]) =>
      `| ${name} | ${c.rps.toFixed(0)} | ${(c.rps / base.rps).toFixed(2)}x | ${c.p50ms.toFixed(2)} | ${c.p99ms.toFixed(2)} | ${c.cpuUsPerRequest.toFixed(1)} | ${c.errors} |`,
  ),
  '',
  `Reading: a split lookup costs ${(costOf('split label, no routing key') - costOf('plain label')).toFixed(0)} ns more than a plain label's, ` +
    `${(costOf('split label, routing key') - costOf('plain label')).toFixed(0)} ns more with a routing key, against a request of tens of µs. ` +
    `Split to the plain label's worker (the like-for-like row): ${(cellOf(SAME_WORKER).rps / base.rps).toFixed(2)}x the plain label's req/s, ` +
    `gateway CPU ${cellOf(SAME_WORKER).cpuUsPerRequest.toFixed(1)} vs ${base.cpuUsPerRequest.toFixed(1)} µs per request. The 50/50 rows spread the ` +
    `requests over two workers on the same 2 cores, which moves req/s either way from run to run.`,
];
console.log(lines.join('\n'));
if (process.argv.includes('--write')) {
  await updateResults(
    'Traffic splits',
    `npm run build && node dist/bench/traffic.js --seconds=${SECONDS} --rounds=${ROUNDS} --write`,
    lines.join('\n'),
  );
}
process.exit(0);
