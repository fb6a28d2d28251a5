/**
 * --load_on_demand and --max_loaded_versions with a real gateway and real worker processes over
 * loopback: versions answer status before any load, the first requests share one worker, the least
 * recently used idle version is evicted and comes back on its next request (also through a label),
 * and a broken model's waiting requests all get its load error.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { request } from 'undici';
import { startGateway, type Gateway } from '../../gateway/gateway.js';
import { registry } from '../../gateway/metrics.js';
import { makeHalfPlusTwo } from '../../scripts/make-example-models.js';
import { workerProcesses } from '../helpers/gateway-process.js';
import { tempDir, testFlags, writeModel } from '../helpers/repo.js';

const silent = pino({ level: 'silent' });

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('--load_on_demand --max_loaded_versions=2 --standby_workers=0 (real workers)', () => {
  let gw: Gateway;
  let base: string;
  const workers = () => workerProcesses(process.pid);
  const workersOf = (model: string) => workers().filter((w) => w.model === model);

  before(async () => {
    const dir = await tempDir();
    for (const m of ['a', 'b', 'c']) await writeModel(dir, m, '1', makeHalfPlusTwo());
    await writeModel(dir, 'm', '1', makeHalfPlusTwo());
    await writeModel(dir, 'm', '2', makeHalfPlusTwo());
    await writeModel(dir, 'broken', '1', 'this is not an onnx model');
    const configFile = path.join(dir, 'models.config');
    await writeFile(
      configFile,
      `model_config_list {
  config { name: "a" base_path: "a" model_platform: "onnx" }
  config { name: "b" base_path: "b" model_platform: "onnx" }
  config { name: "c" base_path: "c" model_platform: "onnx" }
  config { name: "broken" base_path: "broken" model_platform: "onnx" }
  config {
    name: "m" base_path: "m" model_platform: "onnx"
    model_version_policy { all {} }
    version_labels { key: "stable" value: 1 }
  }
}
`,
    );
    gw = await startGateway(
      await testFlags([`--model_config_file=${configFile}`, '--load_on_demand', '--max_loaded_versions=2', '--standby_workers=0', '--file_system_poll_wait_seconds=0']),
      silent,
    );
    base = `http://127.0.0.1:${gw.restPort}`;
  });
  after(async () => {
    await gw?.close();
  });

  const predict = async (target: string) => {
    const res = await request(`${base}/v1/models/${target}:predict`, { method: 'POST', body: JSON.stringify({ instances: [1, 2] }) });
    return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
  };
  const status = async (model: string) => {
    const res = await request(`${base}/v1/models/${model}`);
    assert.equal(res.statusCode, 200);
    return ((await res.body.json()) as { model_version_status: Array<{ version: string; state: string; status: { error_code: string; error_message: string } }> }).model_version_status;
  };

  it('lists every configured version and answers status before loading any', async () => {
    assert.equal(workers().length, 0);
    const s = await status('a');
    assert.deepEqual(s.map((v) => [v.version, v.state, v.status.error_code]), [['1', 'START', 'OK']]);
    assert.match(s[0]!.status.error_message, /loads on its first request/);
    const list = await request(`${base}/v1/models`);
    assert.equal(list.statusCode, 200);
    const text = await list.body.text();
    for (const m of ['a', 'b', 'c', 'm', 'broken']) assert.ok(text.includes(`"${m}"`), `${m} listed: ${text}`);
    const ready = await request(`${base}/readyz`);
    await ready.body.dump();
    assert.equal(ready.statusCode, 200);
    assert.equal(workers().length, 0);
  });

  it('concurrent first requests share one worker and all succeed', async () => {
    const answers = await Promise.all(Array.from({ length: 6 }, () => predict('a')));
    for (const a of answers) assert.deepEqual(a, { status: 200, body: { predictions: [2.5, 3] } });
    assert.equal(workersOf('a').length, 1);
    assert.equal((await status('a'))[0]!.state, 'AVAILABLE');
  });

  const states = async () =>
    Object.fromEntries(await Promise.all(['a', 'b', 'c'].map(async (m) => [m, (await status(m))[0]!.state] as const)));

  it('evicts the least recently used version at the limit, and reloads it on its next request', async () => {
    const pidsBefore = workers().map((w) => w.pid);
    assert.equal((await predict('b')).status, 200);
    assert.equal((await predict('c')).status, 200); // a is least recently used: evicted first
    assert.deepEqual(await states(), { a: 'START', b: 'AVAILABLE', c: 'AVAILABLE' });
    assert.match((await status('a'))[0]!.status.error_message, /max_loaded_versions/);
    await until('at most 2 workers', () => workers().length <= 2);
    assert.deepEqual(await predict('a'), { status: 200, body: { predictions: [2.5, 3] } });
    assert.deepEqual(await states(), { a: 'AVAILABLE', b: 'START', c: 'AVAILABLE' });
    await until('at most 2 workers', () => workers().length <= 2);
    // The evicted version's worker process is handed over to the incoming one (ONNX): no new process
    // for c or for a's reload, only the one b needed.
    const pidsAfter = workers().map((w) => w.pid);
    assert.ok(pidsAfter.includes(pidsBefore[0]!), `a's first worker process still serves: ${pidsBefore} → ${pidsAfter}`);
  });

  it('a label pointing at an evicted version reloads it on demand', async () => {
    const mState = async () => (await status('m')).map((v) => `${v.version}:${v.state}`);
    assert.equal((await predict('m/labels/stable')).status, 200);
    assert.deepEqual(await mState(), ['2:START', '1:AVAILABLE']);
    assert.equal((await predict('b')).status, 200);
    assert.equal((await predict('c')).status, 200);
    assert.deepEqual(await mState(), ['2:START', '1:START']);
    assert.deepEqual(await predict('m/labels/stable'), { status: 200, body: { predictions: [2.5, 3] } });
    assert.deepEqual(await mState(), ['2:START', '1:AVAILABLE']);
    assert.ok(workers().length <= 2);
  });

  it('a load failure answers every waiting request with the load error', async () => {
    const answers = await Promise.all(Array.from({ length: 4 }, () => predict('broken')));
    const first = answers[0]!;
    assert.equal(first.status, 500); // DATA_LOSS: the file is not an ONNX model
    assert.match(String(first.body.error), /not a valid ONNX model/);
    for (const a of answers) assert.deepEqual(a, first);
    const s = await status('broken');
    assert.equal(s[0]!.state, 'END');
    assert.equal(s[0]!.status.error_code, 'DATA_LOSS');
    assert.equal(s[0]!.status.error_message, first.body.error);
    // Later requests find no servable, as with a version that failed to load at start-up.
    assert.equal((await predict('broken')).status, 404);
  });

  it('counts loads by reason and evictions', async () => {
    const text = await registry.metrics();
    assert.match(text, /modelgate_model_loads_total\{reason="on_demand"\} [1-9]/);
    assert.match(text, /modelgate_model_evictions_total [1-9]/);
  });
});

describe('--load_on_demand with a standby worker (real workers)', () => {
  let gw: Gateway;
  let base: string;
  const workers = () => workerProcesses(process.pid);

  before(async () => {
    const dir = await tempDir();
    for (const m of ['a', 'b']) await writeModel(dir, m, '1', makeHalfPlusTwo());
    const configFile = path.join(dir, 'models.config');
    await writeFile(
      configFile,
      `model_config_list {
  config { name: "a" base_path: "a" model_platform: "onnx" }
  config { name: "b" base_path: "b" model_platform: "onnx" }
}
`,
    );
    gw = await startGateway(
      await testFlags([`--model_config_file=${configFile}`, '--load_on_demand', '--standby_workers=1', '--file_system_poll_wait_seconds=0']),
      silent,
    );
    base = `http://127.0.0.1:${gw.restPort}`;
  });
  after(async () => {
    await gw?.close();
  });

  it('a first request takes the standby process, and another standby starts in its place', async () => {
    await until('one standby worker', () => workers().length === 1);
    const [standby] = workers();
    for (const m of ['a', 'b']) {
      const res = await request(`${base}/v1/models/${m}:predict`, { method: 'POST', body: JSON.stringify({ instances: [1, 2] }) });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(await res.body.json(), { predictions: [2.5, 3] });
    }
    // a took the first standby; b the replacement started meanwhile (or a fresh process); one more stands by.
    await until('two loaded and one standby', () => workers().length === 3);
    assert.ok(workers().some((w) => w.pid === standby!.pid), 'the standby process serves a model now');
  });
});
