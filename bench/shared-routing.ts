/**
 * Shared routing state targets (issue: Redis), measured with a real redis-server on loopback:
 *   1. a label change is visible on every gateway: p99 under 100 ms after the writer applies it
 *      (50 edits; two gateways in this process, one writer);
 *   2. routing lookups cost the same with 1 and 1,000 configured models (the request path reads an
 *      in-memory snapshot; Redis is never on it).
 *
 *   npm run build && node dist/bench/shared-routing.js [--write]
 */
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import { parseFlags } from '../gateway/flags.js';
import { startGateway, type Gateway } from '../gateway/gateway.js';
import { NO_TRAFFIC_RULES, RoutingTable, type ModelRoute, type VersionRoute } from '../gateway/routing/routing-table.js';
import { makeHalfPlusTwo } from '../scripts/make-example-models.js';
import { RedisServer } from '../test/helpers/redis.js';
import { freePort, tempDir, writeModel } from '../test/helpers/repo.js';
import { percentile, updateResults } from './results.js';

const EDITS = 50;

const labelConfig = (stable: number) => `model_config_list { config {
  name: "m" base_path: "m" model_platform: "onnx" model_version_policy { all {} }
  version_labels { key: "stable" value: ${stable} } } }
`;

async function labelPropagation(): Promise<number[]> {
  const redis = await RedisServer.start();
  const dir = await tempDir('modelgate-bench-');
  await writeModel(dir, 'm', '1', makeHalfPlusTwo());
  await writeModel(dir, 'm', '2', makeHalfPlusTwo());
  const configFile = path.join(dir, 'models.config');
  await writeFile(configFile, labelConfig(1));
  const start = async (id: string): Promise<Gateway> =>
    startGateway(
      parseFlags(
        [`--model_config_file=${configFile}`, `--rest_api_port=${await freePort()}`, '--rest_api_host=127.0.0.1', '--port=0', `--redis_url=${redis.url}`, `--gateway_id=${id}`],
        {},
      ),
      pino({ level: 'silent' }),
    );
  const a = await start('a');
  const b = await start('b');
  const [writer, follower] = a.shared?.isWriter ? [a, b] : [b, a];
  const delays: number[] = [];
  try {
    for (let i = 0; i < EDITS; i++) {
      const target = i % 2 === 0 ? 2 : 1;
      await writeFile(`${configFile}.tmp`, labelConfig(target));
      await rename(`${configFile}.tmp`, configFile);
      // Poll both snapshots tightly: the writer's apply, then the follower's.
      while (writer.manager.labels('m')?.active.get('stable') !== target) await new Promise((r) => setImmediate(r));
      const applied = performance.now();
      while (follower.manager.labels('m')?.active.get('stable') !== target) await new Promise((r) => setImmediate(r));
      delays.push(performance.now() - applied);
    }
  } finally {
    await a.close();
    await b.close();
    await redis.stop();
  }
  return delays;
}

/** Nanoseconds per `resolve` (label, version and latest alternately) on a table of `n` models. */
function lookupCost(n: number): number {
  const models = new Map<string, ModelRoute>();
  for (let i = 0; i < n; i++) {
    const name = `model_${i}`;
    const routes: VersionRoute[] = [1, 2].map((version) => ({
      model: name,
      version,
      replicas: [],
      metadataJson: '',
      signatures: {},
    }));
    models.set(name, {
      name,
      available: [...routes].reverse(),
      byVersion: new Map(routes.map((r) => [r.version, r])),
      labels: new Map([['stable', 1]]),
      splits: NO_TRAFFIC_RULES,
      mirrors: NO_TRAFFIC_RULES,
    });
  }
  const table = new RoutingTable(1, models);
  const names = Array.from({ length: 1024 }, (_, i) => `model_${i % n}`);
  const rounds = 2_000_000;
  let sink = 0;
  for (let i = 0; i < 200_000; i++) sink += table.resolve(names[i & 1023] as string).version; // warm up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) {
    const name = names[i & 1023] as string;
    const k = i % 3;
    sink += (k === 0 ? table.resolve(name) : k === 1 ? table.resolve(name, '2') : table.resolve(name, undefined, 'stable')).version;
  }
  const ns = Number(process.hrtime.bigint() - t0) / rounds;
  if (sink === 42) console.log('');
  return ns;
}

async function main(): Promise<void> {
  const delays = await labelPropagation();
  const sizes = [1, 100, 1000, 10000];
  const costs = sizes.map(lookupCost);
  const one = costs[0] as number;
  const thousand = costs[2] as number;
  const section = [
    '| what | p50 | p99 | max | target | |',
    '|---|---|---|---|---|---|',
    `| label change: writer applied → follower serving (${EDITS} edits) | ${percentile(delays, 50).toFixed(1)} ms | ${percentile(delays, 99).toFixed(1)} ms | ${Math.max(...delays).toFixed(1)} ms | < 100 ms p99 | ${percentile(delays, 99) < 100 ? 'met' : 'missed'} |`,
    '',
    '| routing lookup (resolve: latest, version, label) | 1 model | 100 models | 1,000 models | 10,000 models | 1,000 / 1 |',
    '|---|---|---|---|---|---|',
    `| ns per lookup | ${costs.map((c) => c.toFixed(0)).join(' | ')} | ${(thousand / one).toFixed(2)} |`,
    '',
    'The follower learns of a change by Redis pub/sub, reads the whole view in one Lua script, and swaps',
    'its routing snapshot; requests only ever read that in-memory snapshot (two Map lookups), so a lookup',
    'is O(1) in the number of models. Differences between columns are tens of ns (JIT warm-up and CPU',
    'cache: one hot entry versus many), against a request that takes hundreds of µs.',
  ].join('\n');
  console.log(section);
  if (process.argv.includes('--write')) {
    await updateResults('Shared routing state (Redis)', 'node dist/bench/shared-routing.js --write', section);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
