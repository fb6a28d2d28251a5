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
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import type protobuf from 'protobufjs';
import { loadProtoRoot } from '../../common/protos.js';
import { request } from 'undici';
import { startGateway, type Gateway } from '../../gateway/gateway.js';
import { registry } from '../../gateway/metrics.js';
import { makeHalfPlusTwo } from '../../scripts/make-example-models.js';
import { workerProcesses } from '../helpers/gateway-process.js';
import { freePort, tempDir, testFlags, writeModel } from '../helpers/repo.js';

const silent = pino({ level: 'silent' });

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A repository with models a and b (half_plus_two, version 1 each); its models.config. */
async function twoModelRepo(): Promise<string> {
  const dir = await tempDir();
  for (const m of ['a', 'b']) await writeModel(dir, m, '1', makeHalfPlusTwo());
  const configFile = path.join(dir, 'models.config');
  await writeFile(
    configFile,
    'model_config_list {\n  config { name: "a" base_path: "a" model_platform: "onnx" }\n  config { name: "b" base_path: "b" model_platform: "onnx" }\n}\n',
  );
  return configFile;
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
    const configFile = await twoModelRepo();
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

describe('--load_on_demand over gRPC (real workers)', () => {
  type Msg = Record<string, any>;
  let gw: Gateway;
  let client: grpc.Client & Record<string, (...args: any[]) => any>;
  const workers = () => workerProcesses(process.pid);

  before(async () => {
    const configFile = await twoModelRepo();
    const port = await freePort();
    gw = await startGateway(
      await testFlags([`--model_config_file=${configFile}`, `--port=${port}`, '--grpc_api_host=127.0.0.1', '--load_on_demand', '--standby_workers=0']),
      silent,
    );
    // Workers of the gateways above may still be exiting.
    await until('no workers left from earlier tests', () => workers().length === 0);
    const root = loadProtoRoot(['tensorflow_serving/apis/prediction_service.proto', 'tensorflow_serving/apis/model_service.proto']);
    const def: Record<string, grpc.MethodDefinition<Msg, Msg>> = {};
    for (const service of ['tensorflow.serving.PredictionService', 'tensorflow.serving.ModelService']) {
      for (const m of root.lookupService(service).methodsArray) {
        const req = m.resolvedRequestType as protobuf.Type;
        const res = m.resolvedResponseType as protobuf.Type;
        def[m.name] = {
          path: `/${service}/${m.name}`,
          requestStream: false,
          responseStream: false,
          requestSerialize: (o: Msg) => Buffer.from(req.encode(req.fromObject(o)).finish()),
          requestDeserialize: (b: Buffer) => req.decode(b),
          responseSerialize: (o: Msg) => Buffer.from(res.encode(o).finish()),
          responseDeserialize: (b: Buffer) => res.toObject(res.decode(b), { longs: String, enums: String, oneofs: true }),
        };
      }
    }
    const Ctor = grpc.makeGenericClientConstructor(def as grpc.ServiceDefinition, 'both');
    client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as typeof client;
  });
  after(async () => {
    client?.close();
    await gw?.close();
  });

  const call = (method: string, request: Msg): Promise<Msg> =>
    new Promise((resolve, reject) =>
      client[method]!(request, new grpc.Metadata(), { deadline: Date.now() + 20_000 }, (err: grpc.ServiceError | null, out: Msg) =>
        err ? reject(err) : resolve(out),
      ),
    );

  it('GetModelStatus answers START without loading; concurrent Predicts share one load', async () => {
    const status = await call('GetModelStatus', { model_spec: { name: 'a' } });
    assert.deepEqual(status.model_version_status.map((v: Msg) => [v.version, v.state]), [['1', 'START']]);
    assert.equal(workers().length, 0);
    const outs = await Promise.all(
      Array.from({ length: 4 }, () =>
        call('Predict', { model_spec: { name: 'a' }, inputs: { x: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: 2 }] }, float_val: [1, 2] } } }),
      ),
    );
    for (const out of outs) assert.deepEqual(out.outputs.y.float_val, [2.5, 3]);
    assert.deepEqual(workers().map((w) => w.model), ['a']);
  });

  it('GetModelMetadata of a version never loaded loads it and answers its signatures', async () => {
    const out = await call('GetModelMetadata', { model_spec: { name: 'b' }, metadata_field: ['signature_def'] });
    assert.equal(out.model_spec.version.value, '1');
    assert.equal(out.metadata.signature_def.type_url, 'type.googleapis.com/tensorflow.serving.SignatureDefMap');
    assert.deepEqual(workers().map((w) => w.model).sort(), ['a', 'b']);
  });
});
