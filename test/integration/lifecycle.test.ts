/**
 * Lifecycle under steady concurrent load, with real gateway and worker processes:
 *   (a) move a label between two versions 20 times by editing models.config
 *   (b) add and remove versions and models
 *   (c) kill -9 a worker: with one replica only fast 503s, with two none
 *   (d) write an invalid config, then a valid one
 * Each prints its counts. Load is bounded in time and count and goes only to loopback.
 */
import assert from 'node:assert/strict';
import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { request } from 'undici';
import { startGateway, type Gateway } from '../../gateway/gateway.js';
import { makeAddSub, makeHalfPlusTwo } from '../../scripts/make-example-models.js';
import { LoadGenerator } from '../helpers/load.js';
import { tempDir, testFlags, writeModel } from '../helpers/repo.js';

const silent = pino({ level: 'silent' });
const PREDICT = JSON.stringify({ instances: [1.0, 2.0] });

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await check()) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function getJson(url: string): Promise<any> {
  const res = await request(url);
  return res.body.json();
}

/** Writes a file the way editors do: write a temporary file, then rename it over the original. */
async function atomicWrite(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}

function report(name: string, counts: LoadGenerator['counts']): void {
  console.log(`[lifecycle] ${name}: sent=${counts.sent} ok=${counts.ok} byStatus=${JSON.stringify(counts.byStatus)}`);
}

async function gatewayFor(configFile: string, extra: string[] = []): Promise<{ gw: Gateway; base: string }> {
  const gw = await startGateway(await testFlags([`--model_config_file=${configFile}`, ...extra]), silent);
  return { gw, base: `http://127.0.0.1:${gw.restPort}` };
}

const labelConfig = (stable: number) => `model_config_list {
  config {
    name: "m" base_path: "m" model_platform: "onnx"
    model_version_policy { all {} }
    version_labels { key: "stable" value: ${stable} }
  }
}
`;

test('(a) moving a label 20 times under load fails no request', async () => {
  const dir = await tempDir();
  await writeModel(dir, 'm', '1', makeHalfPlusTwo());
  await writeModel(dir, 'm', '2', makeHalfPlusTwo());
  const configFile = path.join(dir, 'models.config');
  await writeFile(configFile, labelConfig(1));
  const { gw, base } = await gatewayFor(configFile);
  try {
    const load = new LoadGenerator(base, () => ({ path: '/v1/models/m/labels/stable:predict', body: PREDICT }), 8, 60_000);
    const took: number[] = [];
    for (let i = 0; i < 20; i++) {
      const target = i % 2 === 0 ? 2 : 1;
      await atomicWrite(configFile, labelConfig(target));
      took.push(
        await until(`stable → ${target}`, async () => (await getJson(`${base}/v1/models/m/labels`)).labels.stable === String(target)),
      );
    }
    const counts = await load.stop();
    report('(a) label flips', counts);
    console.log(`[lifecycle] (a) label visible after edit: max ${Math.max(...took)} ms over 20 edits`);
    assert.ok(counts.sent > 0);
    assert.equal(counts.ok, counts.sent, counts.failures.join('\n'));
  } finally {
    await gw.close();
  }
});

test('(b) adding and removing versions and models fails no request', async () => {
  const dir = await tempDir();
  await writeModel(dir, 'a', '1', makeHalfPlusTwo());
  const configFile = path.join(dir, 'models.config');
  const withB = (b: boolean) => `model_config_list {
  config { name: "a" base_path: "a" model_platform: "onnx" }
  ${b ? 'config { name: "b" base_path: "b" model_platform: "onnx" }' : ''}
}
`;
  await writeFile(configFile, withB(false));
  await writeModel(dir, 'b', '1', makeAddSub());
  const { gw, base } = await gatewayFor(configFile);
  try {
    const load = new LoadGenerator(base, () => ({ path: '/v1/models/a:predict', body: PREDICT }), 8, 60_000);
    const versionsOf = async (m: string) =>
      ((await getJson(`${base}/v1/models/${m}`)).model_version_status ?? []) as Array<{ version: string; state: string }>;

    // A new version folder: latest moves to 2, then version 1 unloads.
    await writeModel(dir, 'a', '2', makeHalfPlusTwo());
    await until('a/2 AVAILABLE and a/1 END', async () => {
      const s = await versionsOf('a');
      return s.some((v) => v.version === '2' && v.state === 'AVAILABLE') && s.some((v) => v.version === '1' && v.state === 'END');
    });
    // Removing it again brings version 1 back before version 2 unloads.
    await rm(path.join(dir, 'a', '2'), { recursive: true });
    await until('a/1 AVAILABLE and a/2 END', async () => {
      const s = await versionsOf('a');
      return s.some((v) => v.version === '1' && v.state === 'AVAILABLE') && s.some((v) => v.version === '2' && v.state === 'END');
    });
    // A new model in the config loads; removed again, it ends.
    await atomicWrite(configFile, withB(true));
    await until('b AVAILABLE', async () => (await versionsOf('b')).some((v) => v.state === 'AVAILABLE'));
    const b = await request(`${base}/v1/models/b:predict`, {
      method: 'POST',
      body: JSON.stringify({ inputs: { input_x: [[1, 2]], input_y: [[3, 4]] } }),
    });
    assert.equal(b.statusCode, 200, await b.body.text());
    await atomicWrite(configFile, withB(false));
    await until('b END', async () => (await versionsOf('b')).every((v) => v.state === 'END'));
    const counts = await load.stop();
    report('(b) versions and models', counts);
    assert.ok(counts.sent > 0);
    assert.equal(counts.ok, counts.sent, counts.failures.join('\n'));
  } finally {
    await gw.close();
  }
});

for (const replicas of [1, 2]) {
  test(`(c) kill -9 a worker with ${replicas} replica(s)`, async () => {
    const dir = await tempDir();
    await writeModel(dir, 'k', '1', makeHalfPlusTwo());
    const configFile = path.join(dir, 'models.config');
    await writeFile(configFile, 'model_config_list { config { name: "k" base_path: "k" model_platform: "onnx" } }');
    const { gw, base } = await gatewayFor(configFile, [`--worker_replicas=${replicas}`]);
    try {
      // Answers by status in each phase: before the kill, while the replacement starts, after it serves.
      type Phase = 'before' | 'outage' | 'after';
      let phase: Phase = 'before';
      const answers: Record<Phase, Record<string, number>> = { before: {}, outage: {}, after: {} };
      const total = (p: Phase) => Object.values(answers[p]).reduce((a, b) => a + b, 0);
      const concurrency = 8;
      const load = new LoadGenerator(base, () => ({ path: '/v1/models/k:predict', body: PREDICT }), concurrency, 60_000, (status) => {
        answers[phase][status] = (answers[phase][status] ?? 0) + 1;
      });
      await until('the load is being served', () => (answers.before['200'] ?? 0) >= 20);
      const victim = gw.manager.table.resolve('k').replicas[0];
      phase = 'outage';
      process.kill(victim?.pid as number, 'SIGKILL');
      await until('a new worker serves', () => {
        const live = gw.manager.table.resolve('k').replicas;
        return live.length === replicas && !live.includes(victim!);
      });
      const outageAnswers = total('outage');
      phase = 'after';
      await until('the replacement has answered', () => total('after') >= 40);
      const counts = await load.stop();
      report(`(c) kill -9 with ${replicas} replica(s)`, counts);
      const detail = `${JSON.stringify(answers)}\n${counts.failures.join('\n')}`;
      assert.ok(counts.sent > 0 && counts.sent === total('before') + total('outage') + total('after'), detail);
      assert.deepEqual(Object.keys(answers.before), ['200'], detail);
      // Requests went on during the outage: the kill was under load, not between requests.
      assert.ok(outageAnswers > 0, detail);
      if (replicas === 1) {
        // Only 200s and fast 503s (never a timeout, status 0), each 503 in TF Serving's error shape.
        for (const p of ['outage', 'after'] as const) {
          assert.ok(Object.keys(answers[p]).every((st) => st === '200' || st === '503'), detail);
        }
        for (const f of counts.failures) assert.match(f, /^503 \{\n {4}"error": /);
        // Once the replacement serves, requests succeed again: at most the ones already in flight
        // when it came up can still have been refused.
        assert.ok((answers.after['200'] ?? 0) >= total('after') - concurrency, detail);
      } else {
        assert.equal(counts.ok, counts.sent, detail);
      }
    } finally {
      await gw.close();
    }
  });
}

test('(d) an invalid config changes nothing; a valid one then applies', async () => {
  const dir = await tempDir();
  await writeModel(dir, 'm', '1', makeHalfPlusTwo());
  await writeModel(dir, 'm', '2', makeHalfPlusTwo());
  const configFile = path.join(dir, 'models.config');
  await writeFile(configFile, labelConfig(1));
  const { gw, base } = await gatewayFor(configFile);
  try {
    const load = new LoadGenerator(base, () => ({ path: '/v1/models/m/labels/stable:predict', body: PREDICT }), 8, 60_000);
    await atomicWrite(configFile, 'model_config_list { config { name: "m" base_path: "m" model_platfrm: "onnx" } }\n');
    const status = await (async () => {
      let s: any;
      await until('the reload error is visible', async () => {
        s = await getJson(`${base}/v1/config`);
        return s.reloads.failed >= 1;
      });
      return s;
    })();
    assert.match(status.last_error.error, /models\.config:1:\d+: .*no field named "model_platfrm"/);
    assert.equal((await getJson(`${base}/v1/models/m/labels`)).labels.stable, '1');
    // Explicit reload over REST reports the same error and changes nothing either.
    const bad = await request(`${base}/v1/config:reload`, { method: 'POST' });
    assert.equal(bad.statusCode, 400);
    assert.match(((await bad.body.json()) as { error: string }).error, /model_platfrm/);
    await atomicWrite(configFile, labelConfig(2));
    await until('stable → 2', async () => (await getJson(`${base}/v1/models/m/labels`)).labels.stable === '2');
    const good = await request(`${base}/v1/config:reload`, { method: 'POST' });
    assert.deepEqual(await good.body.json(), { status: { error_code: 'OK', error_message: '' } });
    const counts = await load.stop();
    report('(d) invalid then valid config', counts);
    assert.equal(counts.ok, counts.sent, counts.failures.join('\n'));
  } finally {
    await gw.close();
  }
});

test('a label naming a version that is not loaded yet is pending until it is', async () => {
  const dir = await tempDir();
  await writeModel(dir, 'p', '1', makeHalfPlusTwo());
  const configFile = path.join(dir, 'models.config');
  const cfg = (stable: number) => `model_config_list { config {
  name: "p" base_path: "p" model_platform: "onnx" model_version_policy { all {} }
  version_labels { key: "stable" value: ${stable} } } }`;
  await writeFile(configFile, cfg(1));
  const { gw, base } = await gatewayFor(configFile);
  try {
    await atomicWrite(configFile, cfg(2));
    await until('stable pending on 2', async () => {
      const l = await getJson(`${base}/v1/models/p/labels`);
      return l.pending_labels.stable === '2' && l.labels.stable === '1';
    });
    await writeModel(dir, 'p', '2', makeHalfPlusTwo());
    await until('stable → 2', async () => {
      const l = await getJson(`${base}/v1/models/p/labels`);
      return l.labels.stable === '2' && Object.keys(l.pending_labels).length === 0;
    });
  } finally {
    await gw.close();
  }
});
