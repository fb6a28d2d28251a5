/**
 * gateway/manager/routes.ts from tables: which versions a request can reach in each state, eager and
 * on demand, with the fleet's replicas merged in; and the supervisor's backoff.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Replica } from '../../gateway/fleet/replica.js';
import { buildModelRoute, type LocalVersionView } from '../../gateway/manager/routes.js';
import { restartDelay } from '../../gateway/manager/supervisor.js';
import type { VersionState } from '../../gateway/manager/version-state.js';

const replica = (name: string) => ({ name, inFlight: 0 }) as unknown as Replica;
const local = (version: number, state: VersionState, unloaded = false): LocalVersionView => ({
  version,
  state,
  unloaded,
  replicas: state === 'AVAILABLE' ? [replica(`local${version}`)] : [],
  metadataJson: state === 'AVAILABLE' ? `{"v":${version}}` : '',
  signatures: {},
});
const hooks = () => ({ acquire: () => undefined, load: () => Promise.reject(new Error('not in this test')) });
const versions: LocalVersionView[] = [
  local(1, 'AVAILABLE'),
  local(2, 'IDLE'),
  local(3, 'LOADING'),
  local(4, 'UNLOADING'),
  local(5, 'END'),
  local(6, 'IDLE', true),
  local(7, 'START'),
];

describe('buildModelRoute', () => {
  const cases: Array<{ name: string; onDemand: boolean; routable: number[]; withHooks: number[] }> = [
    { name: 'eager: only AVAILABLE versions route', onDemand: false, routable: [1], withHooks: [] },
    {
      name: 'on demand: loaded and not-loaded versions route (not failed, not removed), all with hooks',
      onDemand: true,
      routable: [4, 3, 2, 1],
      withHooks: [4, 3, 2, 1],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { route } = buildModelRoute({
        name: 'm',
        local: versions,
        remote: undefined,
        configuredLabels: {},
        previousLabels: new Map(),
        allowUnavailableLabels: false,
        onDemand: c.onDemand ? hooks : undefined,
      });
      assert.deepEqual(route.available.map((r) => r.version), c.routable);
      assert.deepEqual(route.available.filter((r) => r.load && r.acquire).map((r) => r.version), c.withHooks);
      for (const r of route.available) assert.equal(r.replicas.length, r.version === 1 ? 1 : 0);
    });
  }

  it('labels resolve to versions that load on demand; eager keeps them pending', () => {
    for (const onDemand of [false, true]) {
      const { labels } = buildModelRoute({
        name: 'm',
        local: versions,
        remote: undefined,
        configuredLabels: { stable: 1, canary: 2 },
        previousLabels: new Map(),
        allowUnavailableLabels: false,
        onDemand: onDemand ? hooks : undefined,
      });
      assert.deepEqual(Object.fromEntries(labels.active), onDemand ? { stable: 1, canary: 2 } : { stable: 1 });
      assert.deepEqual(Object.fromEntries(labels.pending), onDemand ? {} : { canary: 2 });
    }
  });

  it('a version served elsewhere and not loaded here routes there, without hooks', () => {
    const remote = new Map([
      [1, { replicas: [replica('remote1')], signatures: {}, metadataJson: '{"remote":1}' }],
      [2, { replicas: [replica('remote2')], signatures: {}, metadataJson: '{"remote":2}' }],
    ]);
    const { route } = buildModelRoute({
      name: 'm',
      local: versions,
      remote,
      configuredLabels: {},
      previousLabels: new Map(),
      allowUnavailableLabels: false,
      onDemand: hooks,
    });
    const v1 = route.byVersion.get(1)!;
    const v2 = route.byVersion.get(2)!;
    assert.deepEqual(v1.replicas.map((r) => (r as unknown as { name: string }).name), ['local1', 'remote1']);
    assert.ok(v1.acquire && v1.load, 'loaded here: held against eviction');
    assert.equal(v1.metadataJson, '{"v":1}');
    assert.deepEqual(v2.replicas.map((r) => (r as unknown as { name: string }).name), ['remote2']);
    assert.equal(v2.load, undefined);
    assert.equal(v2.metadataJson, '{"remote":2}');
  });
});

describe('restartDelay', () => {
  it('doubles from 100 ms up to 10 s', () => {
    assert.deepEqual([0, 1, 2, 3, 6, 7, 20].map(restartDelay), [100, 200, 400, 800, 6400, 10_000, 10_000]);
  });
});
