/**
 * The model manager driven from tables with fake replicas (the replica factory is the seam): eager
 * loading as before, --load_on_demand and --max_loaded_versions. Version folders are real (the manager
 * lists them); workers are not. Real worker processes: test/integration/load-on-demand.test.ts.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { Code, ServingError } from '../../common/errors.js';
import { parseServerConfig } from '../../gateway/config/model-config.js';
import type { WorkerChannel, WorkerCall } from '../../gateway/fleet/worker-channel.js';
import type { ReadyInfo, WorkerSpec } from '../../gateway/fleet/worker-process.js';
import { ModelManager, type ManagedReplica } from '../../gateway/manager/model-manager.js';
import { forwardToWorker } from '../../gateway/routing/forward.js';
import { tempDir, writeModel } from '../helpers/repo.js';

const silent = pino({ level: 'silent' });

/** A deferred: a promise and its resolve. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

interface Behaviour {
  /** start() waits for this. */
  loadGate?: Promise<void>;
  /** start() rejects with this. */
  failWith?: ServingError;
  /** Each call waits for this before answering. */
  callGate?: Promise<void>;
}

class FakeReplica extends EventEmitter implements ManagedReplica {
  readonly spec: WorkerSpec;
  inFlight = 0;
  stopped = false;
  readonly channel: WorkerChannel;
  readonly #b: Behaviour;

  constructor(spec: WorkerSpec, b: Behaviour) {
    super();
    this.spec = spec;
    this.#b = b;
    this.channel = {
      call: async (c: WorkerCall) => {
        await this.#b.callGate;
        return { status: 200, code: 0, body: Buffer.from(`${spec.model}:${spec.version}:${c.body.length}`) };
      },
    } as unknown as WorkerChannel;
  }

  async start(): Promise<ReadyInfo> {
    await this.#b.loadGate;
    if (this.#b.failWith) throw this.#b.failWith;
    return {
      signatures: { serving_default: { inputs: {}, outputs: {}, methodName: 'tensorflow/serving/predict' } },
      backends: {},
      loadMillis: 1,
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
  }

  /** Set on replicas that may be handed over (ONNX workers): the harness's `reuse` flag. */
  handedOver = false;
  reuseFrom: FakeReplica | undefined;
  reassignable = false;
  readonly onReassign?: (next: FakeReplica) => void;
}

/** A manager over fake replicas; `behaviour(model)` decides how each model's replicas act. */
class Harness {
  readonly started: FakeReplica[] = [];
  readonly manager: ModelManager;
  behaviours = new Map<string, Behaviour>();

  constructor(flags: { loadOnDemand?: boolean; maxLoadedVersions?: number } = {}, reuse = false) {
    this.manager = new ModelManager({
      logger: silent,
      replicas: 1,
      loadConcurrency: 2,
      maxLoadRetries: 0,
      loadRetryIntervalMs: 10,
      allowUnavailableLabels: false,
      worker: { loadTimeoutMs: 1000, drainTimeoutMs: 1000, intraOpThreads: 1, connections: 1, savedModelTags: 'serve', methodNameCheck: false },
      ...flags,
      createReplica: (spec) => this.#make(spec, undefined, reuse),
    });
  }

  #make(spec: WorkerSpec, from: FakeReplica | undefined, reuse: boolean): FakeReplica {
    const r = new FakeReplica(spec, this.behaviours.get(spec.model) ?? {});
    r.reuseFrom = from;
    if (reuse) {
      (r as ManagedReplica).reassign = (next: WorkerSpec) => {
        r.handedOver = true;
        r.stopped = true; // no longer serves its own model
        return this.#make(next, r, reuse);
      };
    }
    this.started.push(r);
    return r;
  }

  startsOf(model: string, version?: number): FakeReplica[] {
    return this.started.filter((r) => r.spec.model === model && (version === undefined || r.spec.version === version));
  }

  predict(model: string, opts: { version?: string; label?: string; deadline?: number } = {}): Promise<string> {
    const route = this.manager.table.resolve(model, opts.version, opts.label);
    return forwardToWorker(route, { kind: 1, body: Buffer.from('{}'), deadline: opts.deadline }).then((a) => a.body.toString());
  }
}

/** A repository: each model a folder with the given versions; `extra` config text per model. */
async function repo(models: Record<string, { versions: number[]; extra?: string }>): Promise<string> {
  const dir = await tempDir();
  let text = 'model_config_list {\n';
  for (const [name, m] of Object.entries(models)) {
    for (const v of m.versions) await writeModel(dir, name, String(v), 'fake');
    text += `  config { name: "${name}" base_path: "${name}" model_platform: "onnx" ${m.extra ?? ''} }\n`;
  }
  text += '}\n';
  const file = path.join(dir, 'models.config');
  await writeFile(file, text);
  return file;
}

const config = async (file: string, text?: string) => {
  if (text !== undefined) await writeFile(file, text);
  const { readFile } = await import('node:fs/promises');
  return parseServerConfig(await readFile(file, 'utf8'), file);
};

const harnesses: Harness[] = [];
function harness(flags?: { loadOnDemand?: boolean; maxLoadedVersions?: number }, reuse = false): Harness {
  const h = new Harness(flags, reuse);
  harnesses.push(h);
  return h;
}
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.manager.shutdown();
});

describe('model manager, default flags (eager, as before)', () => {
  it('loads every configured version at once and routes without load hooks', async () => {
    const file = await repo({ a: { versions: [1] }, b: { versions: [1, 2], extra: 'model_version_policy { all {} }' } });
    const h = harness();
    await h.manager.applyConfig(await config(file));
    assert.deepEqual(h.started.map((r) => `${r.spec.model}:${r.spec.version}`).sort(), ['a:1', 'b:1', 'b:2']);
    assert.deepEqual(h.manager.status('b').map((s) => s.state), ['AVAILABLE', 'AVAILABLE']);
    const route = h.manager.table.resolve('b');
    assert.equal(route.version, 2);
    assert.equal(route.load, undefined);
    assert.equal(route.acquire, undefined);
    assert.equal(await h.predict('a'), 'a:1:2');
  });
});

describe('model manager, --load_on_demand', () => {
  it('knows configured versions at once, loads none, and says so in status', async () => {
    const file = await repo({ a: { versions: [1, 2], extra: 'model_version_policy { all {} } version_labels { key: "stable" value: 1 }' } });
    const h = harness({ loadOnDemand: true });
    await h.manager.applyConfig(await config(file));
    assert.equal(h.started.length, 0);
    const status = h.manager.status('a');
    assert.deepEqual(status.map((s) => [s.version, s.state, s.status.error_code]), [['2', 'START', 'OK'], ['1', 'START', 'OK']]);
    assert.match(status[0]!.status.error_message, /loads on its first request/);
    assert.equal(h.manager.table.resolve('a').version, 2);
    assert.equal(h.manager.table.resolve('a', undefined, 'stable').version, 1);
    assert.equal(h.manager.labels('a')?.active.get('stable'), 1);
  });

  it('concurrent first requests share one load, then all run', async () => {
    const file = await repo({ a: { versions: [1] } });
    const h = harness({ loadOnDemand: true });
    const load = gate();
    h.behaviours.set('a', { loadGate: load.promise });
    await h.manager.applyConfig(await config(file));
    const answers = Array.from({ length: 6 }, () => h.predict('a'));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(h.startsOf('a').length, 1);
    assert.equal(h.manager.status('a')[0]!.state, 'LOADING');
    load.open();
    assert.deepEqual(await Promise.all(answers), Array(6).fill('a:1:2'));
    assert.equal(h.startsOf('a').length, 1);
    assert.equal(h.manager.status('a')[0]!.state, 'AVAILABLE');
    // Later requests hold the loaded version directly.
    const held = h.manager.table.resolve('a').acquire?.();
    assert.ok(held);
    held.release();
    assert.equal(await h.predict('a'), 'a:1:2');
    assert.equal(h.startsOf('a').length, 1);
  });

  it('a load failure answers every waiting request with the load error, and status reports it', async () => {
    const file = await repo({ bad: { versions: [1] } });
    const h = harness({ loadOnDemand: true });
    const load = gate();
    h.behaviours.set('bad', { loadGate: load.promise, failWith: new ServingError(Code.INVALID_ARGUMENT, 'onnxruntime could not load model.onnx: garbage') });
    await h.manager.applyConfig(await config(file));
    const answers = Array.from({ length: 4 }, () => h.predict('bad').then(() => 'ok', (e: ServingError) => `${e.code}:${e.message}`));
    await new Promise((r) => setTimeout(r, 20));
    load.open();
    assert.deepEqual(await Promise.all(answers), Array(4).fill(`${Code.INVALID_ARGUMENT}:onnxruntime could not load model.onnx: garbage`));
    assert.equal(h.startsOf('bad').length, 1);
    const [status] = h.manager.status('bad');
    assert.deepEqual([status!.state, status!.status.error_code], ['END', 'INVALID_ARGUMENT']);
    assert.match(status!.status.error_message, /garbage/);
  });

  it('a waiting request gives up at its deadline; the load goes on for the others', async () => {
    const file = await repo({ a: { versions: [1] } });
    const h = harness({ loadOnDemand: true });
    const load = gate();
    h.behaviours.set('a', { loadGate: load.promise });
    await h.manager.applyConfig(await config(file));
    const patient = h.predict('a');
    await assert.rejects(h.predict('a', { deadline: Date.now() + 30 }), (e: ServingError) => e.code === Code.DEADLINE_EXCEEDED);
    load.open();
    assert.equal(await patient, 'a:1:2');
    assert.equal(h.startsOf('a').length, 1);
  });
});

describe('model manager, --max_loaded_versions', () => {
  it('evicts the least recently used version, never one with requests in flight', async () => {
    const file = await repo({ a: { versions: [1] }, b: { versions: [1] }, c: { versions: [1] } });
    const h = harness({ loadOnDemand: true, maxLoadedVersions: 2 });
    const busy = gate();
    await h.manager.applyConfig(await config(file));
    h.behaviours.set('a', { callGate: busy.promise });
    const aInFlight = h.predict('a'); // a loads first (least recently used) and stays in flight
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(await h.predict('b'), 'b:1:2');
    assert.equal(await h.predict('c'), 'c:1:2'); // full: a is older but busy, so b goes
    const [a] = h.startsOf('a');
    const [b] = h.startsOf('b');
    assert.equal(a!.stopped, false);
    assert.equal(b!.stopped, true);
    assert.deepEqual(h.manager.status('b').map((s) => s.state), ['START']);
    assert.match(h.manager.status('b')[0]!.status.error_message, /max_loaded_versions/);
    busy.open();
    assert.equal(await aInFlight, 'a:1:2');
    // b comes back on demand; now a is the least recently used idle version.
    assert.equal(await h.predict('b'), 'b:1:2');
    assert.equal(h.startsOf('b').length, 2);
    assert.equal(a!.stopped, true);
    const loaded = ['a', 'b', 'c'].filter((m) => h.manager.status(m)[0]!.state === 'AVAILABLE');
    assert.deepEqual(loaded, ['b', 'c']);
  });

  it('a request whose route was resolved before its version was evicted still succeeds (it reloads)', async () => {
    const file = await repo({ a: { versions: [1] }, b: { versions: [1] } });
    const h = harness({ loadOnDemand: true, maxLoadedVersions: 1 });
    await h.manager.applyConfig(await config(file));
    assert.equal(await h.predict('a'), 'a:1:2');
    const stale = h.manager.table.resolve('a'); // loaded when resolved
    assert.equal(await h.predict('b'), 'b:1:2'); // evicts a
    assert.equal(h.startsOf('a')[0]!.stopped, true);
    const answer = await forwardToWorker(stale, { kind: 1, body: Buffer.from('{}') });
    assert.equal(answer.body.toString(), 'a:1:2');
    assert.equal(h.startsOf('a').length, 2);
  });

  it('hands an evicted worker over to the incoming version when it can (one eviction, worker reusable)', async () => {
    const file = await repo({ a: { versions: [1] }, b: { versions: [1] }, c: { versions: [1] } });
    const h = harness({ loadOnDemand: true, maxLoadedVersions: 2 }, true);
    await h.manager.applyConfig(await config(file));
    assert.equal(await h.predict('a'), 'a:1:2');
    assert.equal(await h.predict('b'), 'b:1:2');
    assert.equal(await h.predict('c'), 'c:1:2'); // a is evicted; its worker now serves c
    const [a] = h.startsOf('a');
    const [c] = h.startsOf('c');
    assert.equal(a!.handedOver, true);
    assert.equal(c!.reuseFrom, a);
    assert.equal(h.manager.status('a')[0]!.state, 'START');
    assert.equal(h.started.filter((r) => !r.stopped).length, 2);
    assert.equal(await h.predict('a'), 'a:1:2'); // and back: b's worker serves a
    assert.equal(h.startsOf('a')[1]!.reuseFrom, h.startsOf('b')[0]);
  });

  it('when every loaded version is busy, a load waits for one to finish instead of evicting it', async () => {
    const file = await repo({ a: { versions: [1] }, b: { versions: [1] } });
    const h = harness({ loadOnDemand: true, maxLoadedVersions: 1 });
    const busy = gate();
    await h.manager.applyConfig(await config(file));
    h.behaviours.set('a', { callGate: busy.promise });
    const aInFlight = h.predict('a');
    await new Promise((r) => setTimeout(r, 20));
    const bAnswer = h.predict('b');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(h.startsOf('b').length, 0);
    assert.equal(h.startsOf('a')[0]!.stopped, false);
    busy.open();
    assert.equal(await aInFlight, 'a:1:2');
    assert.equal(await bAnswer, 'b:1:2');
    assert.equal(h.startsOf('a')[0]!.stopped, true);
  });

  it('a label pointing at an evicted version reloads it on demand; labels move as with eager loading', async () => {
    const file = await repo({ m: { versions: [1, 2], extra: 'model_version_policy { all {} } version_labels { key: "stable" value: 1 }' } });
    const h = harness({ loadOnDemand: true, maxLoadedVersions: 1 });
    await h.manager.applyConfig(await config(file));
    assert.equal(await h.predict('m', { label: 'stable' }), 'm:1:2');
    assert.equal(await h.predict('m', { version: '2' }), 'm:2:2'); // evicts v1
    assert.equal(h.startsOf('m', 1)[0]!.stopped, true);
    assert.equal(h.manager.table.resolve('m', undefined, 'stable').version, 1);
    assert.equal(await h.predict('m', { label: 'stable' }), 'm:1:2'); // reloads v1, evicts v2
    assert.equal(h.startsOf('m', 1).length, 2);
    assert.equal(h.startsOf('m', 2)[0]!.stopped, true);
    // Move the label to v2 (not loaded): it moves at once, since v2 loads on demand.
    const moved = (await config(file)).models.map((m) => ({ ...m, labels: { stable: 2 } }));
    await h.manager.applyConfig({ ...(await config(file)), models: moved });
    assert.equal(h.manager.table.resolve('m', undefined, 'stable').version, 2);
    assert.equal(await h.predict('m', { label: 'stable' }), 'm:2:2');
    // ...and back (rollback).
    await h.manager.applyConfig(await config(file));
    assert.equal(h.manager.table.resolve('m', undefined, 'stable').version, 1);
    assert.equal(await h.predict('m', { label: 'stable' }), 'm:1:2');
  });

  it('never holds more loaded versions than the limit under concurrent first requests', async () => {
    const models: Record<string, { versions: number[] }> = {};
    for (let i = 0; i < 12; i++) models[`m${i}`] = { versions: [1] };
    const file = await repo(models);
    const h = harness({ loadOnDemand: true, maxLoadedVersions: 3 });
    await h.manager.applyConfig(await config(file));
    let maxLive = 0;
    const live = () => h.started.filter((r) => !r.stopped).length;
    const requests = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 12; i++) {
        requests.push(h.predict(`m${(i * 5 + round) % 12}`).then((body) => {
          maxLive = Math.max(maxLive, live());
          return body;
        }));
      }
    }
    const bodies = await Promise.all(requests);
    assert.equal(bodies.length, 36);
    assert.ok(maxLive <= 3, `at most 3 live replicas, saw ${maxLive}`);
    assert.ok(live() <= 3);
  });
});
