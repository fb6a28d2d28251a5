/**
 * Progressive rollouts (--traffic_config_file) against real gateways and real worker processes over
 * loopback: a label split by weight over REST and gRPC, sticky routing keys, `x-modelgate-version`, a
 * weight edit applied under load with no failed request, an invalid file keeping the last good split,
 * an unavailable version taking no share, mirroring, the labels views (REST and CLI), and two gateways
 * on one real redis-server applying the same split. Every wait is bounded.
 */
import assert from 'node:assert/strict';
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import type protobuf from 'protobufjs';
import { Pool, request } from 'undici';
import { loadProtoRoot } from '../../common/protos.js';
import { runCli } from '../../gateway/cli.js';
import { startGateway, type Gateway } from '../../gateway/gateway.js';
import { registry } from '../../gateway/metrics.js';
import { leanRestStats } from '../../gateway/rest/lean-rest.js';
import { graph } from '../../scripts/onnx-builder.js';
import { LoadGenerator } from '../helpers/load.js';
import { RedisServer } from '../helpers/redis.js';
import { freePort, tempDir, testFlags, writeModel } from '../helpers/repo.js';

const silent = pino({ level: 'silent' });
const PREDICT = JSON.stringify({ instances: [0.0] });

/** y = 0.5 x + b: version b-1 of `m`, so an answer names the version that computed it (x = 0 → b). */
function halfPlus(b: number): Uint8Array {
  return graph(`half_plus_${b}`)
    .input('x', 'float', undefined)
    .initializer('a', [0.5], [])
    .initializer('b', [b], [])
    .node('Mul', ['x', 'a'], ['ax'])
    .node('Add', ['ax', 'b'], ['y'])
    .output('y', 'float', undefined)
    .build();
}
const versionOfPrediction = (p: number) => p - 1;

const MODELS = `model_config_list {
  config {
    name: "m" base_path: "m" model_platform: "onnx"
    model_version_policy { all {} }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 2 }
  }
}
`;
const split = (weights: Record<number, number>, extra = '') =>
  `label_split {\n  model_name: 'm'\n  label: 'stable'\n${Object.entries(weights)
    .map(([k, v]) => `  version_weights { key: ${k} value: ${v} }\n`)
    .join('')}}\n${extra}`;

/** Writes as editors do: a temporary file renamed over the old one. Returns the time of the save. */
async function save(file: string, text: string): Promise<number> {
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
  return performance.now();
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await Promise.resolve().then(check).catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function getJson(url: string): Promise<any> {
  const res = await request(url);
  return res.body.json();
}

interface Answer {
  status: number;
  header: string | undefined;
  version: number | undefined;
}

async function predict(pool: Pool, key?: string, path = '/v1/models/m/labels/stable:predict'): Promise<Answer> {
  const res = await pool.request({
    path,
    method: 'POST',
    body: PREDICT,
    headers: key === undefined ? {} : { 'x-modelgate-routing-key': key },
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  const body = (await res.body.json()) as { predictions?: number[] };
  const p = body.predictions?.[0];
  return { status: res.statusCode, header: res.headers['x-modelgate-version'] as string | undefined, version: p === undefined ? undefined : versionOfPrediction(p) };
}

/** Sends `n` requests, `concurrency` at a time; returns each answer. */
async function many(pool: Pool, n: number, concurrency: number, key?: (i: number) => string): Promise<Answer[]> {
  const out: Answer[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await predict(pool, key?.(i));
      }
    }),
  );
  return out;
}

const root = loadProtoRoot(['tensorflow_serving/apis/prediction_service.proto']);
const predictRequest = root.lookupType('tensorflow.serving.PredictRequest');
const predictResponse = root.lookupType('tensorflow.serving.PredictResponse');

function grpcPredict(client: grpc.Client, label: string, key?: string): Promise<{ version: number; y: number }> {
  const metadata = new grpc.Metadata();
  if (key !== undefined) metadata.set('x-modelgate-routing-key', key);
  const body = predictRequest.fromObject({
    model_spec: { name: 'm', version_label: label },
    inputs: { x: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: 1 }] }, float_val: [0] } },
  });
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      '/tensorflow.serving.PredictionService/Predict',
      (o: protobuf.Message) => Buffer.from(predictRequest.encode(o).finish()),
      (b: Buffer) => predictResponse.toObject(predictResponse.decode(b), { longs: Number }),
      body,
      metadata,
      {},
      (err, out) => {
        if (err || !out) return reject(err);
        const o = out as { model_spec: { version: { value: number } }; outputs: { y: { float_val: number[] } } };
        resolve({ version: o.model_spec.version.value, y: o.outputs.y.float_val[0] as number });
      },
    ),
  );
}

describe('traffic splits on one gateway', () => {
  let dir: string;
  let trafficFile: string;
  let gw: Gateway;
  let base: string;
  let pool: Pool;
  let client: grpc.Client;

  before(async () => {
    dir = await tempDir();
    for (const v of [1, 2, 3]) await writeModel(dir, 'm', String(v), halfPlus(v + 1));
    await writeFile(path.join(dir, 'models.config'), MODELS);
    trafficFile = path.join(dir, 'traffic.config');
    await writeFile(trafficFile, split({ 1: 80, 2: 20 }));
    const grpcPort = await freePort();
    gw = await startGateway(
      await testFlags([
        `--model_config_file=${path.join(dir, 'models.config')}`,
        `--traffic_config_file=${trafficFile}`,
        `--port=${grpcPort}`,
        '--grpc_api_host=127.0.0.1',
      ]),
      silent,
    );
    base = `http://127.0.0.1:${gw.restPort}`;
    pool = new Pool(base, { connections: 8 });
    client = new grpc.Client(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure());
  });

  after(async () => {
    client?.close();
    await pool?.close();
    await gw?.close();
  });

  test('80/20 over 2,000 REST requests lands within ±3 points; x-modelgate-version names the version that answered', async () => {
    const lean = leanRestStats.requests;
    const answers = await many(pool, 2000, 8);
    assert.ok(answers.every((a) => a.status === 200));
    assert.ok(answers.every((a) => a.header === String(a.version)), 'the header matches the version that computed the answer');
    const canary = (100 * answers.filter((a) => a.version === 2).length) / 2000;
    assert.ok(Math.abs(canary - 20) <= 3, `version 2 got ${canary}%`);
    assert.equal(answers.filter((a) => a.version === 3).length, 0);
    assert.ok(leanRestStats.requests - lean >= 2000, 'served by the lean path');
    // Pinned versions and other labels are never split.
    for (let i = 0; i < 20; i++) {
      assert.equal((await predict(pool, undefined, '/v1/models/m/versions/1:predict')).version, 1);
      assert.equal((await predict(pool, undefined, '/v1/models/m/labels/canary:predict')).header, '2');
    }
  });

  test('the Fastify path (a query string) and v2 versions/<label> honour the split and the key', async () => {
    const viaFastify = await Promise.all(Array.from({ length: 200 }, () => predict(pool, undefined, '/v1/models/m/labels/stable:predict?x=1')));
    const two = viaFastify.filter((a) => a.version === 2).length;
    assert.ok(two >= 30 && two <= 50, `version 2 got ${two} of 200`);
    assert.ok(viaFastify.every((a) => a.header === String(a.version)));
    const keyed = await predict(pool, 'user-7');
    const v2 = await request(`${base}/v2/models/m/versions/stable/infer`, {
      method: 'POST',
      headers: { 'x-modelgate-routing-key': 'user-7' },
      body: JSON.stringify({ inputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [0] }] }),
    });
    const out = (await v2.body.json()) as { model_version: string };
    assert.equal(out.model_version, String(keyed.version));
  });

  test('sticky keys keep their version over REST and gRPC (fast path and grpc-js) alike', async () => {
    const seen = new Map<string, number>();
    for (let i = 0; i < 100; i++) {
      const key = `user-${i}`;
      const a = await predict(pool, key);
      seen.set(key, a.version as number);
      for (let j = 0; j < 2; j++) assert.equal((await predict(pool, key)).version, a.version, key);
      const g = await grpcPredict(client, 'stable', key);
      assert.equal(g.version, a.version, `gRPC ${key}`);
      assert.equal(versionOfPrediction(g.y), g.version);
    }
    const canary = [...seen.values()].filter((v) => v === 2).length;
    assert.ok(canary >= 8 && canary <= 35, `${canary} of 100 keys on version 2`);
  });

  test('a weight edit applies within 300 ms of the save with 0 failed requests under load', async () => {
    await save(trafficFile, split({ 1: 100 }));
    await until('only version 1 serves stable', async () => (await many(pool, 20, 4)).every((a) => a.version === 1));
    let firstV2: number | undefined;
    const load = new LoadGenerator(base, () => ({ path: '/v1/models/m/labels/stable:predict', body: PREDICT }), 4, 15_000, (status, body) => {
      if (status === 200 && firstV2 === undefined && versionOfPrediction(JSON.parse(body).predictions[0]) === 2) firstV2 = performance.now();
    });
    await new Promise((r) => setTimeout(r, 200));
    const saved = await save(trafficFile, split({ 1: 50, 2: 50 }));
    await until('an answer from version 2', () => firstV2 !== undefined, 5_000);
    await new Promise((r) => setTimeout(r, 200));
    const counts = await load.stop();
    const ms = (firstV2 as number) - saved;
    console.log(`[traffic] weight edit: first answer from the new version ${ms.toFixed(1)} ms after the save; ${counts.sent} requests, ${counts.ok} ok`);
    assert.deepEqual(counts.failures, []);
    assert.equal(counts.ok, counts.sent);
    assert.ok(ms < 300, `applied after ${ms} ms`);
  });

  test('an invalid file keeps the last good split, and the error shows in GET /v1/config', async () => {
    await save(trafficFile, split({ 1: 100 }));
    await until('only version 1', async () => (await many(pool, 20, 4)).every((a) => a.version === 1));
    const before = (await getJson(`${base}/v1/config`)).reloads.failed as number;
    await save(trafficFile, `label_split {\n  model_name: 'm'\n  label: 'stable'\n  version_weights { key: 2 value: -1 }\n}\n`);
    await until('the failed reload is recorded', async () => (await getJson(`${base}/v1/config`)).reloads.failed > before);
    const status = await getJson(`${base}/v1/config`);
    assert.match(status.last_error.error, /traffic\.config:4:/);
    assert.equal(status.traffic_source, trafficFile);
    assert.deepEqual(status.traffic, { label_splits: 1, mirrors: 0 });
    assert.ok((await many(pool, 50, 4)).every((a) => a.version === 1), 'the last good split stays in force');
    // POST /v1/config:reload re-reads both files and reports the traffic file's error.
    const reload = await request(`${base}/v1/config:reload`, { method: 'POST' });
    assert.equal(reload.statusCode, 400);
    assert.match(((await reload.body.json()) as { error: string }).error, /traffic\.config:4:\d+: /);
  });

  test('a version that is not AVAILABLE gets no traffic; status says so; removing the split restores the label', async () => {
    await save(trafficFile, split({ 1: 50, 9: 50 }));
    await until('the split with version 9 is in force', async () => (await getJson(`${base}/v1/models/m/labels`)).splits.stable?.versions.length === 2);
    assert.ok((await many(pool, 100, 4)).every((a) => a.version === 1));
    const labels = await getJson(`${base}/v1/models/m/labels`);
    assert.deepEqual(labels.splits.stable.versions, [
      { version: '1', weight: 50, effective_percent: 100, available: true },
      { version: '9', weight: 50, effective_percent: 0, available: false },
    ]);
    assert.match(labels.splits.stable.note, /version 9 not available/);
    await save(trafficFile, '');
    await until('no split', async () => Object.keys((await getJson(`${base}/v1/models/m/labels`)).splits).length === 0);
    assert.ok((await many(pool, 50, 4)).every((a) => a.version === 1 && a.header === '1'));
  });

  test('mirroring: answers stay the live version\'s; mirror latency and status are counted per version', async () => {
    await save(trafficFile, split({ 1: 1 }, `mirror { model_name: 'm' label: 'stable' to_version: 3 percent: 50 }\n`));
    await until('the mirror is in force', async () => (await getJson(`${base}/v1/models/m/labels`)).mirrors.stable !== undefined);
    const answers = await many(pool, 200, 4);
    assert.ok(answers.every((a) => a.status === 200 && a.version === 1 && a.header === '1'));
    await grpcPredict(client, 'stable');
    await grpcPredict(client, 'stable');
    const metrics = () => registry.metrics();
    await until('mirror counts', async () => /modelgate_mirror_requests_total\{model="m",version="3",api="predict",code="OK"\} 101/.test(await metrics()));
    assert.match(await metrics(), /modelgate_mirror_request_duration_seconds_count\{model="m",version="3",api="predict"\} 101/);
    // The live requests are counted with the version that served them.
    assert.match(await metrics(), /modelgate_requests_total\{model="m",version="1",api="predict",entrypoint="REST",code="OK"\} \d+/);
  });

  test('a mirror target that hangs (its worker stopped) holds up no live request; copies beyond the limit are dropped', async () => {
    await save(trafficFile, split({ 1: 1 }, `mirror { model_name: 'm' label: 'stable' to_version: 3 percent: 100 }\n`));
    await until('the 100% mirror is in force', async () => (await getJson(`${base}/v1/models/m/labels`)).mirrors.stable?.percent === 100);
    const dropped = async () => {
      let n = 0;
      for (const m of (await registry.metrics()).matchAll(/modelgate_mirror_dropped_total\{model="m",version="3",reason="[a-z_]+"\} (\d+)/g)) n += Number(m[1]);
      return n;
    };
    const droppedBefore = await dropped();
    const pid = gw.manager.table.resolve('m', '3').replicas[0]?.pid;
    assert.ok(pid, 'version 3 has a local worker');
    process.kill(pid, 'SIGSTOP'); // a real hang: the process takes frames and never answers
    try {
      // Every live request gets its answer from version 1 although each one's copy goes to the stopped
      // worker: were the live path waiting on copies, it would stop at the first.
      const answers = await many(pool, 100, 4);
      assert.ok(answers.every((a) => a.status === 200 && a.version === 1 && a.header === '1'), JSON.stringify(answers.find((a) => a.version !== 1)));
      // At most --mirror_max_inflight (16) copies wait on it; the rest are dropped and counted (or, once the
      // supervisor has replaced the stopped worker, counted as sent to an unavailable version).
      assert.ok((await dropped()) - droppedBefore >= 1, 'copies beyond the limit are dropped');
    } finally {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // already replaced by the supervisor
      }
    }
    await save(trafficFile, split({ 1: 80, 2: 20 }));
    await until('version 3 serves again', async () => (await predict(pool, undefined, '/v1/models/m/versions/3:predict')).version === 3);
  });

  test('GET /v1/models/<m>/labels and `modelgate labels <m>` show splits and mirrors with effective weights', async () => {
    await save(trafficFile, split({ 1: 90, 2: 10 }, `mirror { model_name: 'm' label: 'stable' to_version: 3 percent: 20 }\n`));
    await until('the 90/10 split', async () => (await getJson(`${base}/v1/models/m/labels`)).splits.stable?.versions[0].weight === 90);
    const labels = await getJson(`${base}/v1/models/m/labels`);
    assert.deepEqual(labels, {
      labels: { canary: '2', stable: '1' },
      pending_labels: {},
      splits: {
        stable: {
          versions: [
            { version: '1', weight: 90, effective_percent: 90, available: true },
            { version: '2', weight: 10, effective_percent: 10, available: true },
          ],
        },
      },
      mirrors: { stable: { to_version: '3', percent: 20, available: true } },
    });
    let text = '';
    const out = new Writable({ write: (chunk, _e, cb) => ((text += chunk), cb()) });
    assert.equal(await runCli(['labels', 'm', `--url=${base}`], out), 0);
    assert.match(text, /MODEL\s+LABEL\s+VERSION\s+PENDING\s+MIRROR/);
    assert.match(text, /m\s+stable\s+1:90% 2:10%\s+3:20%/);
    assert.match(text, /m\s+canary\s+2/);
    const listed = (await getJson(`${base}/v1/models`)).models[0];
    assert.equal(listed.splits.stable.versions[1].effective_percent, 10);
  });
});

describe('traffic splits on two gateways sharing Redis', () => {
  let redis: RedisServer;
  let a: Gateway;
  let b: Gateway;

  before(async () => {
    redis = await RedisServer.start();
    const dir = await tempDir();
    for (const v of [1, 2]) await writeModel(dir, 'm', String(v), halfPlus(v + 1));
    await writeFile(path.join(dir, 'models.config'), MODELS);
    const trafficFile = path.join(dir, 'traffic.config');
    await writeFile(trafficFile, split({ 1: 70, 2: 30 }));
    const flags = (id: string) => [
      `--model_config_file=${path.join(dir, 'models.config')}`,
      `--traffic_config_file=${trafficFile}`,
      `--redis_url=${redis.url}`,
      `--gateway_id=${id}`,
    ];
    a = await startGateway(await testFlags(flags('a')), silent);
    b = await startGateway(await testFlags(flags('b')), silent);
  });

  after(async () => {
    await b?.close();
    await a?.close();
    await redis?.stop();
  });

  test('both apply the same split: the same keys go to the same versions on either gateway', async () => {
    const pa = new Pool(`http://127.0.0.1:${a.restPort}`, { connections: 4 });
    const pb = new Pool(`http://127.0.0.1:${b.restPort}`, { connections: 4 });
    try {
      const ready = async (p: Pool) => (await predict(p)).status === 200;
      await until('both serve', async () => (await ready(pa)) && (await ready(pb)));
      for (const g of [a, b]) {
        const labels = await getJson(`http://127.0.0.1:${g.restPort}/v1/models/m/labels`);
        assert.deepEqual(labels.splits.stable.versions.map((v: { effective_percent: number }) => v.effective_percent), [70, 30]);
      }
      let two = 0;
      for (let i = 0; i < 200; i++) {
        const key = `k${i}`;
        const va = (await predict(pa, key)).version;
        assert.equal((await predict(pb, key)).version, va, key);
        if (va === 2) two++;
      }
      assert.ok(two >= 40 && two <= 80, `${two} of 200 keys on version 2`);
    } finally {
      await pa.close();
      await pb.close();
    }
  });
});
