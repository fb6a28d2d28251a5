/**
 * Shared routing state in a real redis-server that the test starts on a free port: two gateways and
 * their workers on one Redis, a standalone worker registered by lease, writer failover, and Redis
 * going away under load. Traffic goes only to loopback; every wait is bounded.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { request } from 'undici';
import { startGateway, type Gateway } from '../../gateway/gateway.js';
import { graph } from '../../scripts/onnx-builder.js';
import { makeHalfPlusTwo } from '../../scripts/make-example-models.js';
import { LoadGenerator } from '../helpers/load.js';
import { RedisServer } from '../helpers/redis.js';
import { freePort, tempDir, testFlags, writeModel } from '../helpers/repo.js';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const silent = pino({ level: 'silent' });
const PREDICT = JSON.stringify({ instances: [1.0, 2.0] });

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await Promise.resolve().then(check).catch(() => false)) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** y = 0.5 * x + 3: version 2 of `m`, told apart from half_plus_two (version 1) by its answers. */
function makeHalfPlusThree(): Uint8Array {
  return graph('half_plus_three')
    .input('x', 'float', undefined)
    .initializer('a', [0.5], [])
    .initializer('b', [3], [])
    .node('Mul', ['x', 'a'], ['ax'])
    .node('Add', ['ax', 'b'], ['y'])
    .output('y', 'float', undefined)
    .build();
}

/** The predictions a gateway answers for PREDICT under `stable`, with the HTTP status. */
async function stablePredictions(base: string): Promise<{ status: number; predictions?: number[] }> {
  const r = await request(`${base}/v1/models/m/labels/stable:predict`, { method: 'POST', body: PREDICT });
  const body = (await r.body.json()) as { predictions?: number[] };
  return { status: r.statusCode, predictions: body.predictions };
}

async function getJson(url: string): Promise<any> {
  const res = await request(url);
  return res.body.json();
}

const config = (stable: number) => `model_config_list {
  config {
    name: "m" base_path: "m" model_platform: "onnx"
    model_version_policy { all {} }
    version_labels { key: "stable" value: ${stable} }
  }
  config { name: "remote_only" base_path: "remote_only" model_platform: "onnx" }
}
`;

function spawnProcess(script: string, args: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, [path.join(DIST, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`${script} did not become ready: ${seen}`)), 30_000);
    const onData = (d: Buffer) => {
      seen += d;
      if (/Exporting HTTP\/REST API|"type":"ready"/.test(seen)) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited (${code}): ${seen}`));
    });
  });
}

describe('shared routing state in Redis', () => {
  let redis: RedisServer;
  let dir: string;
  let configFile: string;
  let writer: ChildProcess;
  let writerPort: number;
  let follower: Gateway;
  let followerBase: string;
  const children: ChildProcess[] = [];

  before(async () => {
    redis = await RedisServer.start();
    dir = await tempDir();
    await writeModel(dir, 'm', '1', makeHalfPlusTwo());
    // Version 2 answers differently from version 1, so a prediction tells which version served it.
    await writeModel(dir, 'm', '2', makeHalfPlusThree());
    await mkdir(path.join(dir, 'remote_only'));
    configFile = path.join(dir, 'models.config');
    await writeFile(configFile, config(1));
    // The writer is a real process (so it can be killed -9); the follower runs in this process.
    writerPort = await freePort();
    writer = await spawnProcess('gateway/main.js', [
      `--model_config_file=${configFile}`,
      `--rest_api_port=${writerPort}`,
      '--rest_api_host=127.0.0.1',
      '--port=0',
      `--redis_url=${redis.url}`,
      '--gateway_id=writer',
    ]);
    children.push(writer);
    follower = await startGateway(
      await testFlags([`--model_config_file=${configFile}`, `--redis_url=${redis.url}`, '--gateway_id=follower']),
      silent,
    );
    followerBase = `http://127.0.0.1:${follower.restPort}`;
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await follower?.close();
    await redis?.stop();
  });

  test('one writer; the follower serves the writer\'s config and sees the whole fleet', async () => {
    const a = await getJson(`http://127.0.0.1:${writerPort}/v1/cluster`);
    const b = await getJson(`${followerBase}/v1/cluster`);
    assert.equal(a.is_writer, true);
    assert.equal(b.is_writer, false);
    assert.equal(b.writer, 'writer');
    const r = await request(`${followerBase}/v1/models/m/labels/stable:predict`, { method: 'POST', body: PREDICT });
    assert.equal(r.statusCode, 200, await r.body.text());
    const status = await getJson(`${followerBase}/v1/models/m`);
    assert.deepEqual(status.model_version_status.map((s: { state: string }) => s.state), ['AVAILABLE', 'AVAILABLE']);
  });

  test('a label change applied by the writer is served by the other gateway', async () => {
    const V1 = [2.5, 3.0];
    const V2 = [3.5, 4.0];
    assert.deepEqual(await stablePredictions(followerBase), { status: 200, predictions: V1 });
    const tmp = `${configFile}.tmp`;
    await writeFile(tmp, config(2));
    await rename(tmp, configFile);
    const writerMs = await until('writer moved stable', async () =>
      (await getJson(`http://127.0.0.1:${writerPort}/v1/models/m/labels/stable/metadata`)).model_spec.version === '2',
    );
    // The follower never read models.config: what it serves under `stable` came through Redis.
    const followerMs = await until('follower serves version 2 under stable', async () => (await stablePredictions(followerBase)).predictions?.[0] === V2[0]);
    assert.deepEqual(await stablePredictions(followerBase), { status: 200, predictions: V2 });
    assert.equal((await getJson(`${followerBase}/v1/models/m/labels/stable/metadata`)).model_spec.version, '2');
    assert.deepEqual(await stablePredictions(`http://127.0.0.1:${writerPort}`), { status: 200, predictions: V2 });
    console.log(`[redis] label change served: writer after ${writerMs} ms, follower after ${followerMs} ms (of the edit)`);
  });

  test('a standalone worker registers with a lease; killed, it leaves routing', async () => {
    const workerPort = await freePort();
    const vdir = path.join(dir, 'standalone', '1');
    await writeModel(path.join(dir, 'standalone-src'), 'x', '1', makeHalfPlusTwo());
    await mkdir(path.dirname(vdir), { recursive: true });
    await rename(path.join(dir, 'standalone-src', 'x', '1'), vdir);
    const worker = await spawnProcess('worker/main.js', [
      '--model_name=remote_only',
      '--model_version=7',
      '--model_platform=onnx',
      `--version_path=${vdir}`,
      `--port=${workerPort}`,
      `--redis_url=${redis.url}`,
      '--worker_lease_ms=1000',
    ]);
    children.push(worker);
    await until('the follower routes to the standalone worker', async () => {
      const r = await request(`${followerBase}/v1/models/remote_only/versions/7:predict`, { method: 'POST', body: PREDICT });
      return r.statusCode === 200 && (await r.body.json() as any).predictions.length === 2;
    });
    const status = await getJson(`http://127.0.0.1:${writerPort}/v1/models/remote_only`);
    assert.equal(status.model_version_status[0].version, '7');
    worker.kill('SIGKILL');
    const gone = await until('the standalone worker leaves routing', async () => {
      const r = await request(`${followerBase}/v1/models/remote_only/versions/7:predict`, { method: 'POST', body: PREDICT });
      await r.body.dump();
      return r.statusCode === 404;
    });
    console.log(`[redis] killed standalone worker left routing after ${gone} ms (lease 1000 ms)`);
  });

  test('killing the writer: the other gateway takes over and applies the file', async () => {
    assert.equal((await getJson(`${followerBase}/v1/cluster`)).writer, 'writer');
    writer.kill('SIGKILL');
    const took = await until('the follower becomes the writer', async () => (await getJson(`${followerBase}/v1/cluster`)).is_writer === true);
    console.log(`[redis] writer killed; follower became writer after ${took} ms (lease 2000 ms)`);
    const tmp = `${configFile}.tmp`;
    await writeFile(tmp, config(1));
    await rename(tmp, configFile);
    await until('the new writer applies the edit', async () =>
      (await getJson(`${followerBase}/v1/models/m/labels/stable/metadata`)).model_spec.version === '1',
    );
  });
  test('Redis going away under load fails no request; state resyncs when it returns', async () => {
    const load = new LoadGenerator(followerBase, () => ({ path: '/v1/models/m/labels/stable:predict', body: PREDICT }), 8, 60_000);
    await new Promise((r) => setTimeout(r, 300));
    await redis.stop();
    await until('the follower notices', async () => (await getJson(`${followerBase}/v1/cluster`)).redis_connected === false);
    await new Promise((r) => setTimeout(r, 1_000));
    await redis.start();
    const back = await until('state resynced after Redis returned', async () => {
      const c = await getJson(`${followerBase}/v1/cluster`);
      const s = await getJson(`${followerBase}/v1/models/m`);
      return c.redis_connected && c.desired !== null && s.model_version_status.length === 2;
    });
    await new Promise((r) => setTimeout(r, 300));
    const counts = await load.stop();
    console.log(`[redis] Redis outage: sent=${counts.sent} ok=${counts.ok} byStatus=${JSON.stringify(counts.byStatus)}; resynced ${back} ms after restart`);
    assert.ok(counts.sent > 0);
    assert.equal(counts.ok, counts.sent, counts.failures.join('\n'));
  });

});

test('Redis AUTH comes from the URL', async () => {
  const redis = await RedisServer.start('s3cret pass');
  const dir = await tempDir();
  await writeModel(dir, 'm', '1', makeHalfPlusTwo());
  const configFile = path.join(dir, 'models.config');
  await writeFile(configFile, 'model_config_list { config { name: "m" base_path: "m" model_platform: "onnx" } }');
  const gw = await startGateway(await testFlags([`--model_config_file=${configFile}`, `--redis_url=${redis.url}`]), silent);
  try {
    assert.equal(gw.shared?.connected, true);
    assert.equal(gw.shared?.isWriter, true);
    const r = await request(`http://127.0.0.1:${gw.restPort}/v1/models/m:predict`, { method: 'POST', body: PREDICT });
    assert.equal(r.statusCode, 200, await r.body.text());
  } finally {
    await gw.close();
    await redis.stop();
  }
});
