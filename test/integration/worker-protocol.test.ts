/**
 * The gateway↔worker protocol (common/worker-protocol.ts): frame reading and write coalescing on
 * their own, then the gateway's WorkerChannel against the worker's real server on loopback TCP, with
 * a stand-in runtime whose runs the test holds and releases. Covers multiplexing with answers out of
 * order, deadlines, cancellation reaching queued work, a worker that vanishes mid-request, and the
 * plain-HTTP health check on the same port.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { gzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Code, ServingError } from '../../common/errors.js';
import { defaultBatchingOptions } from '../../common/batching-parameters.js';
import {
  CoalescingWriter,
  decodeRequest,
  encodeCancel,
  encodeRequestHead,
  encodeResponseHead,
  FrameReader,
  FrameType,
  Kind,
  V2_PREFIX_BYTES,
  type Frame,
} from '../../common/worker-protocol.js';
import { CancelSlot, WorkerChannel, WorkerGoneError } from '../../gateway/fleet/worker-channel.js';
import { BatchScheduler } from '../../worker/batching/batch-scheduler.js';
import { PREDICT_METHOD, type Tensor } from '../../worker/codec/tensor.js';
import type { Runtime } from '../../worker/runtimes/runtime.js';
import { createWorkerServer, type WorkerServer } from '../../worker/server.js';

describe('frames', () => {
  test('a frame reader gives the same frames however the bytes are cut', () => {
    const body = Buffer.from('{"instances": [1, 2]}');
    const bytes = Buffer.concat([
      encodeRequestHead(1, { kind: Kind.REST_PREDICT, flags: 0, timeoutMs: 250, version: 3, requestId: 'req-é' }, body.length),
      body,
      encodeCancel(1),
      encodeResponseHead(9, 429, Code.RESOURCE_EXHAUSTED, 0),
    ]);
    const read = (cuts: number[]): Frame[] => {
      const reader = new FrameReader();
      const frames: Frame[] = [];
      let at = 0;
      for (const cut of [...cuts, bytes.length]) {
        reader.push(bytes.subarray(at, cut), (f) => frames.push({ ...f, payload: Buffer.from(f.payload) }));
        at = cut;
      }
      return frames;
    };
    const whole = read([]);
    assert.deepEqual(whole.map((f) => [f.type, f.id]), [[FrameType.REQUEST, 1], [FrameType.CANCEL, 1], [FrameType.RESPONSE, 9]]);
    const req = decodeRequest(whole[0]!.payload);
    assert.deepEqual({ ...req, body: req.body.toString() }, {
      kind: Kind.REST_PREDICT,
      flags: 0,
      timeoutMs: 250,
      version: 3,
      requestId: 'req-é',
      body: body.toString(),
    });
    for (let i = 1; i < bytes.length; i++) assert.deepEqual(read([i]), whole, `cut at ${i}`);
    assert.deepEqual(read(Array.from({ length: bytes.length - 1 }, (_, i) => i + 1)), whole, 'one byte at a time');
  });

  test('a frame with an impossible length is refused', () => {
    const reader = new FrameReader(1024);
    const bad = Buffer.alloc(9);
    bad.writeUInt32LE(1 << 20, 0);
    assert.throws(() => reader.push(bad, () => {}), /bad frame length/);
  });

  test('writes made in one event-loop turn leave in one corked batch', async () => {
    const calls: string[] = [];
    const socket = {
      destroyed: false,
      cork: () => calls.push('cork'),
      uncork: () => calls.push('uncork'),
      write: (b: Uint8Array) => calls.push(`write ${b.length}`) > 0,
    };
    const writer = new CoalescingWriter(socket);
    writer.write(Buffer.alloc(3), Buffer.alloc(0));
    writer.write(Buffer.alloc(5));
    writer.write(Buffer.alloc(7));
    assert.deepEqual(calls, ['cork', 'write 3', 'write 5', 'write 7']);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(calls.slice(4), ['uncork']);
    writer.write(Buffer.alloc(1));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(calls.slice(5), ['cork', 'write 1', 'uncork']);
  });

  test('with maxFrames, a long turn sends every maxFrames frames instead of holding all to its end', async () => {
    const calls: string[] = [];
    const socket = {
      destroyed: false,
      cork: () => calls.push('cork'),
      uncork: () => calls.push('uncork'),
      write: () => calls.push('w') > 0,
    };
    const writer = new CoalescingWriter(socket, 3);
    for (let i = 0; i < 7; i++) writer.write(Buffer.alloc(1));
    // Frames 1-3 and 4-6 leave at once; frame 7 waits for the end of the turn.
    assert.deepEqual(calls, ['cork', 'w', 'w', 'w', 'uncork', 'cork', 'w', 'w', 'w', 'uncork', 'cork', 'w']);
    await new Promise((r) => setImmediate(r));
    assert.equal(calls.at(-1), 'uncork');
    // The count starts again in the next turn.
    calls.length = 0;
    writer.write(Buffer.alloc(1));
    writer.write(Buffer.alloc(1));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(calls, ['cork', 'w', 'w', 'uncork']);
  });
});

/** A runtime whose runs wait until the test releases them; y = x, row by row. */
class HeldRuntime implements Runtime {
  readonly signatures = {
    serving_default: {
      inputs: { x: { name: 'x:0', dtype: 'DT_FLOAT' as const, shape: [-1] } },
      outputs: { y: { name: 'y:0', dtype: 'DT_FLOAT' as const, shape: [-1] } },
      methodName: PREDICT_METHOD,
    },
  };
  readonly backends = {};
  hold = false;
  readonly held: Array<() => void> = [];
  /** The rows of x each run was given. */
  readonly runs: number[][] = [];

  async run(_sig: string, inputs: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    const x = inputs.x as Tensor;
    this.runs.push(Array.from(x.data as Float32Array));
    if (this.hold) await new Promise<void>((resolve) => this.held.push(resolve));
    return { y: { dtype: 'DT_FLOAT', shape: x.shape, data: Float32Array.from(x.data as Float32Array) } };
  }

  release(): void {
    for (const r of this.held.splice(0)) r();
  }

  async close(): Promise<void> {}
}

async function listen(runtime: Runtime): Promise<{ server: WorkerServer; port: number }> {
  const server = createWorkerServer({ runtime, maxBodyBytes: 1 << 20 });
  await new Promise<void>((resolve) => server.server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.server.address() as AddressInfo).port };
}

const predict = (x: number) => Buffer.from(`{"instances": [${x}]}`);
const predictions = (body: Buffer) => (JSON.parse(body.toString()) as { predictions: number[] }).predictions;

describe('WorkerChannel and the worker server', () => {
  const runtime = new HeldRuntime();
  let server: WorkerServer;
  let port: number;

  before(async () => ({ server, port } = await listen(runtime)));
  after(async () => server.drain(1000));

  test('many requests in flight on one connection, answered out of order, each to its caller', async () => {
    const channel = new WorkerChannel({ host: '127.0.0.1', port }, 1);
    let connections = 0;
    server.server.on('connection', () => connections++);
    runtime.hold = true;
    const calls = Array.from({ length: 200 }, (_, i) => channel.call({ kind: Kind.REST_PREDICT, body: predict(i), requestId: `r${i}` }));
    while (runtime.held.length < 200) await new Promise((r) => setTimeout(r, 5));
    runtime.hold = false;
    // Release in reverse order: the last request's answer is written first.
    for (const r of runtime.held.splice(0).reverse()) r();
    const answers = await Promise.all(calls);
    answers.forEach((a, i) => {
      assert.equal(a.status, 200);
      assert.equal(a.code, Code.OK);
      assert.deepEqual(predictions(a.body), [i]);
    });
    assert.equal(connections, 1);
    channel.close();
  });

  test('errors keep TF\'s shape: REST bodies as JSON, gRPC kinds as code and message', async () => {
    const channel = new WorkerChannel({ host: '127.0.0.1', port });
    const rest = await channel.call({ kind: Kind.REST_PREDICT, body: Buffer.from('{"instances": [1') });
    assert.equal(rest.status, 400);
    assert.equal(rest.code, Code.INVALID_ARGUMENT);
    assert.match(JSON.parse(rest.body.toString()).error, /JSON/);
    const grpc = await channel.call({ kind: Kind.GRPC_PREDICT, body: Buffer.from([0x0a, 0xff]) });
    assert.equal(grpc.code, Code.INVALID_ARGUMENT);
    assert.match(grpc.body.toString(), /^Could not parse PredictRequest/);
    const health = await channel.call({ kind: Kind.HEALTH, body: Buffer.alloc(0) });
    assert.deepEqual([health.status, health.body.toString()], [200, 'ok']);
    const metrics = await channel.call({ kind: Kind.METRICS, body: Buffer.alloc(0) });
    assert.equal(metrics.status, 200);
    channel.close();
  });

  test('V2 kinds: JSON and binary REST bodies (gzip covering only the client body), answers with the JSON length first', async () => {
    const channel = new WorkerChannel({ host: '127.0.0.1', port });
    const json = Buffer.from('{"id":"7","inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1,2]}]}');
    const plain = await channel.call({ kind: Kind.V2_REST_INFER, body: json, version: 3 });
    assert.equal(plain.status, 200);
    const jsonLength = plain.body.readUInt32LE(0);
    assert.equal(jsonLength, plain.body.length - V2_PREFIX_BYTES, 'no binary part');
    assert.deepEqual(JSON.parse(plain.body.subarray(V2_PREFIX_BYTES).toString()), {
      model_name: '', model_version: '3', id: '7', outputs: [{ name: 'y', datatype: 'FP32', shape: [2], data: [1.0, 2.0] }],
    });

    // Binary: u32 header length | gzip(JSON header + raw floats); one output asked for as binary.
    const header = Buffer.from('{"inputs":[{"name":"x","shape":[3],"datatype":"FP32","parameters":{"binary_data_size":12}}],"outputs":[{"name":"y","parameters":{"binary_data":true}}]}');
    const raw = Buffer.from(Float32Array.of(1.5, 2.5, -3).buffer);
    const prefix = Buffer.alloc(V2_PREFIX_BYTES);
    prefix.writeUInt32LE(header.length, 0);
    const binary = await channel.call({ kind: Kind.V2_REST_INFER_BINARY, body: Buffer.concat([prefix, gzipSync(Buffer.concat([header, raw]))]), gzip: true });
    assert.equal(binary.status, 200, binary.body.toString());
    const n = binary.body.readUInt32LE(0);
    const doc = JSON.parse(binary.body.subarray(V2_PREFIX_BYTES, V2_PREFIX_BYTES + n).toString()) as { outputs: Array<{ parameters: { binary_data_size: number } }> };
    assert.equal(doc.outputs[0]!.parameters.binary_data_size, 12);
    assert.deepEqual([...new Float32Array(Uint8Array.from(binary.body.subarray(V2_PREFIX_BYTES + n)).buffer)], [1.5, 2.5, -3]);

    // Errors keep the prefix (REST) or come as code and message (gRPC).
    const bad = await channel.call({ kind: Kind.V2_REST_INFER, body: Buffer.from('{"inputs": [') });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.readUInt32LE(0), bad.body.length - V2_PREFIX_BYTES);
    assert.match(JSON.parse(bad.body.subarray(V2_PREFIX_BYTES).toString()).error, /JSON Parse error/);
    const grpc = await channel.call({ kind: Kind.V2_GRPC_INFER, body: Buffer.from([0x2a, 0xff]) });
    assert.equal(grpc.code, Code.INVALID_ARGUMENT);
    assert.match(grpc.body.toString(), /^Could not parse ModelInferRequest/);
    channel.close();
  });

  test('a deadline fails the call in time without a timer per request, and the worker refuses expired work', async () => {
    const channel = new WorkerChannel({ host: '127.0.0.1', port });
    runtime.hold = true;
    const started = Date.now();
    await assert.rejects(channel.call({ kind: Kind.REST_PREDICT, body: predict(1), deadline: Date.now() + 60 }), (err: unknown) => {
      assert.ok(err instanceof ServingError);
      assert.equal(err.code, Code.DEADLINE_EXCEEDED);
      return true;
    });
    const took = Date.now() - started;
    assert.ok(took >= 55 && took < 2000, `failed after ${took} ms`);
    runtime.hold = false;
    runtime.release();
    // An already-expired deadline (timeoutMs 0 on the wire) is refused by the worker before running.
    const runsBefore = runtime.runs.length;
    const expired = await channel.call({ kind: Kind.REST_PREDICT, body: predict(2), deadline: Date.now() - 1 }).catch((e: unknown) => e);
    // Either the worker's answer or the gateway's sweep comes first; both say DEADLINE_EXCEEDED.
    if (expired instanceof ServingError) assert.equal(expired.code, Code.DEADLINE_EXCEEDED);
    else assert.deepEqual([(expired as { code: number }).code, (expired as { status: number }).status], [Code.DEADLINE_EXCEEDED, 504]);
    assert.equal(runtime.runs.length, runsBefore);
    channel.close();
  });

  test('a worker that goes away fails its pending calls as WorkerGoneError; the next call reconnects', async () => {
    const own = new HeldRuntime();
    const { server: doomed, port: doomedPort } = await listen(own);
    const channel = new WorkerChannel({ host: '127.0.0.1', port: doomedPort });
    own.hold = true;
    const pending = channel.call({ kind: Kind.REST_PREDICT, body: predict(5) });
    while (own.held.length === 0) await new Promise((r) => setTimeout(r, 5));
    await doomed.drain(0);
    await assert.rejects(pending, WorkerGoneError);
    await assert.rejects(channel.call({ kind: Kind.REST_PREDICT, body: predict(6) }), WorkerGoneError);
    channel.close();
  });

  test('the same port answers plain HTTP health checks', async () => {
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: '/healthz' }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        })
        .on('error', reject);
    });
    assert.deepEqual(answer, { status: 200, body: '{"status":"ok"}' });
  });
});

describe('cancellation reaches queued work', () => {
  test('a request cancelled while its batch waits is never run; the others are', async () => {
    const held = new HeldRuntime();
    const batching = new BatchScheduler(held, { ...defaultBatchingOptions(), maxBatchSize: 8, numBatchThreads: 1 });
    const { server, port } = await listen(batching);
    const channel = new WorkerChannel({ host: '127.0.0.1', port });
    held.hold = true;
    const first = channel.call({ kind: Kind.REST_PREDICT, body: predict(1) });
    while (held.held.length === 0) await new Promise((r) => setTimeout(r, 5));
    // The one batch thread is busy: these two wait in the queue.
    const slot = new CancelSlot();
    const cancelled = channel.call({ kind: Kind.REST_PREDICT, body: predict(2), cancel: slot });
    const kept = channel.call({ kind: Kind.REST_PREDICT, body: predict(3) });
    await new Promise((r) => setTimeout(r, 50));
    slot.cancel();
    await assert.rejects(cancelled, (err: unknown) => err instanceof ServingError && err.code === Code.CANCELLED);
    await new Promise((r) => setTimeout(r, 50)); // the CANCEL frame reaches the worker
    held.hold = false;
    held.release();
    assert.deepEqual(predictions((await first).body), [1]);
    assert.deepEqual(predictions((await kept).body), [3]);
    assert.deepEqual(held.runs, [[1], [3]]);
    channel.close();
    await server.drain(1000);
  });
});
