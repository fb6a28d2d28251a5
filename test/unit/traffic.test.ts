/**
 * The traffic file (gateway/config/traffic-config.ts) and weighted label routing and mirroring
 * (gateway/routing/traffic-split.ts, mirror.ts) over routing tables built from fake replicas:
 * shares, stickiness, consistency on a weight change, unavailable versions, pinned versions, and a
 * mirror target that never answers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Code } from '../../common/errors.js';
import type { ServerConfig } from '../../gateway/config/model-config.js';
import { parseTrafficConfig, trafficByModel, type TrafficConfig } from '../../gateway/config/traffic-config.js';
import type { Replica } from '../../gateway/fleet/replica.js';
import { buildModelRoute, type LocalVersionView } from '../../gateway/manager/routes.js';
import type { VersionState } from '../../gateway/manager/version-state.js';
import { registry } from '../../gateway/metrics.js';
import { forwardToWorker } from '../../gateway/routing/forward.js';
import { mirrorRequest, mirrorsInFlight, setMirrorLimits } from '../../gateway/routing/mirror.js';
import { RoutingTable, type ModelRoute } from '../../gateway/routing/routing-table.js';
import { resolveV2 } from '../../gateway/routing/v2-model.js';
import { trafficView } from '../../gateway/rest/admin-api.js';

const MODELS: ServerConfig = {
  source: '/cfg/models.config',
  models: [
    { name: 'mlp', basePath: '/m', platform: 'onnx', policy: { kind: 'all' }, labels: { stable: 1, canary: 2 } },
    { name: 'other', basePath: '/o', platform: 'onnx', policy: { kind: 'all' }, labels: {} },
  ],
};

const parse = (text: string): TrafficConfig => parseTrafficConfig(text, '/cfg/traffic.config', MODELS);

/** A replica whose calls answer at once (or never, with `hang`), recording the versions called. */
function fakeReplica(name: string, calls: number[], hang = false): Replica {
  return {
    name,
    inFlight: 0,
    channel: {
      call: (c: { version: number }) => {
        calls.push(c.version);
        return hang ? new Promise(() => {}) : Promise.resolve({ status: 200, code: 0, body: Buffer.from(`{"v":${c.version}}`) });
      },
    },
  } as unknown as Replica;
}

function tableOf(
  traffic: TrafficConfig | undefined,
  states: Record<number, VersionState>,
  options: { calls?: number[]; hang?: number[]; previous?: ModelRoute } = {},
): RoutingTable {
  const calls = options.calls ?? [];
  const local: LocalVersionView[] = Object.entries(states).map(([v, state]) => ({
    version: Number(v),
    state,
    unloaded: false,
    replicas: state === 'AVAILABLE' ? [fakeReplica(`r${v}`, calls, options.hang?.includes(Number(v)))] : [],
    metadataJson: '{}',
    signatures: {},
  }));
  const { route } = buildModelRoute({
    name: 'mlp',
    local,
    remote: undefined,
    configuredLabels: { stable: 1, canary: 2 },
    previousLabels: new Map(),
    allowUnavailableLabels: false,
    traffic: trafficByModel(traffic).get('mlp'),
    previous: options.previous,
  });
  return new RoutingTable(1, new Map([['mlp', route]]));
}

const split = (weights: Record<number, number>, label = 'stable') =>
  parse(
    `label_split { model_name: 'mlp' label: '${label}' ${Object.entries(weights)
      .map(([k, v]) => `version_weights { key: ${k} value: ${v} }`)
      .join(' ')} }`,
  );

function shares(table: RoutingTable, n: number, key?: (i: number) => string): Map<number, number> {
  const counts = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const v = table.resolve('mlp', undefined, 'stable', key?.(i)).version;
    counts.set(v, (counts.get(v) ?? 0) + 1);
  }
  return counts;
}

describe('traffic file', () => {
  it('parses the issue example', () => {
    const t = parse(`
      label_split {
        model_name: 'mlp'
        label: 'stable'
        version_weights { key: 1 value: 90 }
        version_weights { key: 2 value: 10 }
      }
      mirror { model_name: 'mlp' label: 'stable' to_version: 3 percent: 20 }
    `);
    assert.deepEqual(t.splits, [{ model: 'mlp', label: 'stable', weights: [{ version: 1, weight: 90 }, { version: 2, weight: 10 }] }]);
    assert.deepEqual(t.mirrors, [{ model: 'mlp', label: 'stable', toVersion: 3, percent: 20 }]);
  });

  const bad: Array<[string, string, RegExp]> = [
    ['syntax', `label_split { model_name: 'mlp' labl: 'x' }`, /^\/cfg\/traffic\.config:1:33: .*no field named "labl"/],
    ['unknown model', `label_split {\n  model_name: 'mpl' label: 'stable' version_weights { key: 1 value: 1 } }`, /traffic\.config:2:3: label_split\[0\]\.model_name: model 'mpl' is not in the model config/],
    ['no weights', `label_split { model_name: 'mlp' label: 'stable' }`, /label_split\[0\]\.version_weights: a split needs at least one/],
    ['zero total', `label_split { model_name: 'mlp' label: 'stable' version_weights { key: 1 value: 0 } }`, /the weights sum to 0/],
    ['version 0', `label_split { model_name: 'mlp' label: 'stable' version_weights { key: 0 value: 5 } }`, /version must be >= 1/],
    ['negative weight', `label_split { model_name: 'mlp' label: 'stable' version_weights { key: 1 value: -5 } }`, /traffic\.config:1:/],
    ['twice', `label_split { model_name: 'mlp' label: 'a' version_weights { key: 1 value: 1 } }\nlabel_split { model_name: 'mlp' label: 'a' version_weights { key: 2 value: 1 } }`, /:2:1: label_split\[1\]: label 'a' of model 'mlp' is split more than once/],
    ['bad label', `label_split { model_name: 'mlp' label: 'a/b' version_weights { key: 1 value: 1 } }`, /label_split\[0\]\.label: must be non-empty/],
    ['mirror percent', `mirror { model_name: 'mlp' label: 'stable' to_version: 3 percent: 0 }`, /mirror\[0\]\.percent: percent must be > 0 and <= 100, got 0/],
    ['mirror percent over', `mirror { model_name: 'mlp' label: 'stable' to_version: 3 percent: 101 }`, /percent must be > 0 and <= 100/],
    ['mirror version', `mirror { model_name: 'mlp' label: 'stable' percent: 5 }`, /mirror\[0\]\.to_version: to_version must be >= 1/],
    ['mirror label', `mirror { model_name: 'mlp' label: 'nope' to_version: 3 percent: 5 }`, /model 'mlp' has no version label 'nope'/],
  ];
  for (const [name, text, message] of bad) {
    it(`refuses ${name} with file:line:col`, () => {
      assert.throws(() => parse(text), (err: Error) => {
        assert.match(err.message, message);
        return true;
      });
    });
  }

  it('a mirror may name a label that only the file splits', () => {
    const t = parse(`label_split { model_name: 'mlp' label: 'new' version_weights { key: 2 value: 1 } }
                     mirror { model_name: 'mlp' label: 'new' to_version: 3 percent: 100 }`);
    assert.equal(t.mirrors.length, 1);
  });
});

describe('weighted label routing', () => {
  it('80/20 over 2,000 requests lands within ±3 points (no key), and exactly with the sequence', () => {
    const table = tableOf(split({ 1: 80, 2: 20 }), { 1: 'AVAILABLE', 2: 'AVAILABLE' });
    const counts = shares(table, 2000);
    const pct = (100 * (counts.get(2) ?? 0)) / 2000;
    assert.ok(Math.abs(pct - 20) <= 3, `canary got ${pct}%`);
    assert.ok(Math.abs(pct - 20) <= 0.5, `the low-discrepancy sequence is near exact: ${pct}%`);
  });

  it('80/20 over 2,000 distinct routing keys lands within ±3 points', () => {
    const table = tableOf(split({ 1: 80, 2: 20 }), { 1: 'AVAILABLE', 2: 'AVAILABLE' });
    const counts = shares(table, 2000, (i) => `user-${i}`);
    const pct = (100 * (counts.get(2) ?? 0)) / 2000;
    assert.ok(Math.abs(pct - 20) <= 3, `canary got ${pct}%`);
  });

  it('a key keeps its version while the weights stand, and 10% → 20% moves only about 10% of keys, all to the canary', () => {
    const at10 = tableOf(split({ 1: 90, 2: 10 }), { 1: 'AVAILABLE', 2: 'AVAILABLE' });
    const at20 = tableOf(split({ 1: 80, 2: 20 }), { 1: 'AVAILABLE', 2: 'AVAILABLE' });
    const n = 5000;
    let moved = 0;
    for (let i = 0; i < n; i++) {
      const key = `session-${i}`;
      const before = at10.resolve('mlp', undefined, 'stable', key).version;
      for (let j = 0; j < 3; j++) assert.equal(at10.resolve('mlp', undefined, 'stable', key).version, before);
      const after = at20.resolve('mlp', undefined, 'stable', key).version;
      if (after !== before) {
        moved++;
        assert.equal(before, 1, 'keys move only to the version whose weight rose');
        assert.equal(after, 2);
      }
    }
    const pct = (100 * moved) / n;
    assert.ok(pct > 7 && pct < 13, `moved ${pct}% of keys`);
  });

  it('a version that is not AVAILABLE gets no traffic; its share goes to the others and the view says so', () => {
    const t = split({ 1: 50, 2: 30, 3: 20 });
    const table = tableOf(t, { 1: 'AVAILABLE', 2: 'LOADING', 3: 'AVAILABLE' });
    const counts = shares(table, 1000);
    assert.equal(counts.get(2), undefined);
    assert.ok(Math.abs((counts.get(3) ?? 0) - 286) <= 5, `v3 got ${counts.get(3)}`);
    const view = trafficView(table.model('mlp'));
    assert.deepEqual(
      view.splits.stable?.versions.map((v) => [v.version, v.effective_percent, v.available]),
      [['1', 71.43, true], ['2', 0, false], ['3', 28.57, true]],
    );
    assert.match(view.splits.stable?.note ?? '', /version 2 not available: its share goes to the others/);
    // Keys of available versions stay where they were when another version comes back.
    const all = tableOf(t, { 1: 'AVAILABLE', 2: 'AVAILABLE', 3: 'AVAILABLE' });
    for (let i = 0; i < 500; i++) {
      const key = `k${i}`;
      const now = all.resolve('mlp', undefined, 'stable', key).version;
      if (now !== 2) assert.equal(table.resolve('mlp', undefined, 'stable', key).version, now);
    }
  });

  it('with no version of the split available, the label routes as configured; a split-only label is UNAVAILABLE', () => {
    const table = tableOf(split({ 2: 1, 3: 1 }), { 1: 'AVAILABLE', 2: 'LOADING' });
    assert.equal(table.resolve('mlp', undefined, 'stable').version, 1);
    const only = tableOf(split({ 2: 1 }, 'blue'), { 1: 'AVAILABLE', 2: 'LOADING' });
    assert.throws(() => only.resolve('mlp', undefined, 'blue'), (e: { code: number; message: string }) => {
      assert.equal(e.code, Code.UNAVAILABLE);
      assert.match(e.message, /label blue is not available: no version of its split \(2\) is available/);
      return true;
    });
  });

  it('pinned version numbers and the latest are never split; other labels are untouched; removing the split restores the label', () => {
    const table = tableOf(split({ 1: 1, 2: 1 }), { 1: 'AVAILABLE', 2: 'AVAILABLE' });
    for (let i = 0; i < 50; i++) {
      assert.equal(table.resolve('mlp', '1').version, 1);
      assert.equal(table.resolve('mlp').version, 2);
      assert.equal(table.resolve('mlp', undefined, 'canary').version, 2);
    }
    const plain = tableOf(undefined, { 1: 'AVAILABLE', 2: 'AVAILABLE' });
    for (let i = 0; i < 50; i++) assert.equal(plain.resolve('mlp', undefined, 'stable').version, 1);
  });

  it('v2 versions/<label> is split too, with the key; numbers are not', () => {
    const table = tableOf(split({ 1: 80, 2: 20 }), { 1: 'AVAILABLE', 2: 'AVAILABLE' });
    let two = 0;
    for (let i = 0; i < 1000; i++) if (resolveV2(table, 'mlp', 'stable').version === 2) two++;
    assert.ok(Math.abs(two - 200) <= 5);
    const k = resolveV2(table, 'mlp', 'stable', 'alice').version;
    assert.equal(table.resolve('mlp', undefined, 'stable', 'alice').version, k);
    assert.equal(resolveV2(table, 'mlp', '1').version, 1);
  });

  it('the no-key sequence carries over a rebuild of the routes', () => {
    const t = split({ 1: 50, 2: 50 });
    let table = tableOf(t, { 1: 'AVAILABLE', 2: 'AVAILABLE' });
    const seen: number[] = [];
    for (let i = 0; i < 100; i++) {
      seen.push(table.resolve('mlp', undefined, 'stable').version);
      table = tableOf(t, { 1: 'AVAILABLE', 2: 'AVAILABLE' }, { previous: table.model('mlp') });
    }
    const twos = seen.filter((v) => v === 2).length;
    assert.ok(twos >= 45 && twos <= 55, `v2 got ${twos} of 100 across rebuilds`);
  });
});

describe('mirroring', () => {
  const mirrorText = (percent: number) =>
    parse(`mirror { model_name: 'mlp' label: 'stable' to_version: 3 percent: ${percent} }`);

  it('copies exactly percent of the label requests to the mirror version, never pinned ones; answers are the live ones', async () => {
    const calls: number[] = [];
    const table = tableOf(mirrorText(20), { 1: 'AVAILABLE', 3: 'AVAILABLE' }, { calls });
    const bodies: string[] = [];
    for (let i = 0; i < 100; i++) {
      const route = table.resolve('mlp', undefined, 'stable');
      const answer = forwardToWorker(route, { kind: 1, body: Buffer.from('x') });
      mirrorRequest(table, 'mlp', 'stable', route, 'predict', 1, Buffer.from('x'));
      bodies.push((await answer).body.toString());
    }
    assert.ok(bodies.every((b) => b === '{"v":1}'));
    await new Promise((r) => setImmediate(r));
    assert.equal(calls.filter((v) => v === 3).length, 20);
    assert.equal(calls.filter((v) => v === 1).length, 100);
    const text = await registry.metrics();
    assert.match(text, /modelgate_mirror_requests_total\{model="mlp",version="3",api="predict",code="OK"\} 20/);
    assert.match(text, /modelgate_mirror_request_duration_seconds_count\{model="mlp",version="3",api="predict"\} 20/);
  });

  it('a mirror target that never answers does not slow the live path: copies beyond the in-flight limit are dropped and counted', async () => {
    setMirrorLimits(4, 60_000);
    try {
      const calls: number[] = [];
      const table = tableOf(mirrorText(100), { 1: 'AVAILABLE', 3: 'AVAILABLE' }, { calls, hang: [3] });
      for (let i = 0; i < 50; i++) {
        const route = table.resolve('mlp', undefined, 'stable');
        const answer = forwardToWorker(route, { kind: 1, body: Buffer.from('x') });
        mirrorRequest(table, 'mlp', 'stable', route, 'regress', 1, Buffer.from('x'));
        // The live answer comes with nothing from the hung version: it would never resolve otherwise.
        assert.equal((await answer).body.toString(), '{"v":1}');
      }
      assert.equal(mirrorsInFlight(), 4);
      const text = await registry.metrics();
      assert.match(text, /modelgate_mirror_dropped_total\{model="mlp",version="3",reason="inflight_limit"\} 46/);
    } finally {
      setMirrorLimits(16, 10_000);
    }
  });

  it('a mirror version that is not available is dropped and counted; the view says so', async () => {
    const table = tableOf(mirrorText(100), { 1: 'AVAILABLE', 3: 'LOADING' });
    mirrorRequest(table, 'mlp', 'stable', table.resolve('mlp', undefined, 'stable'), 'predict', 1, Buffer.from('x'));
    assert.match(await registry.metrics(), /modelgate_mirror_dropped_total\{model="mlp",version="3",reason="unavailable"\} 1/);
    assert.deepEqual(trafficView(table.model('mlp')).mirrors, { stable: { to_version: '3', percent: 100, available: false } });
  });
});
