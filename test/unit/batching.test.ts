/**
 * The batch scheduler against a fake Runtime (a seam we own): merging, splitting, padding, timeouts,
 * queue limits; and the BatchingParameters text format with TF's defaults and checks.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Code, ServingError } from '../../common/errors.js';
import type { SignatureDef, Tensor } from '../../worker/codec/tensor.js';
import type { Runtime } from '../../worker/runtimes/runtime.js';
import { BatchScheduler, type BatchingObserver } from '../../worker/batching/batch-scheduler.js';
import {
  BatchingConfigError,
  defaultBatchingOptions,
  parseBatchingParameters,
  type BatchingOptions,
} from '../../common/batching-parameters.js';
import { concatRows, padToShape, sliceRows } from '../../worker/batching/tensor-rows.js';

interface Call {
  sig: string;
  inputs: Record<string, Tensor>;
  outputs: readonly string[] | undefined;
}

/** Doubles `x` into `y` and echoes every input as `echo_<alias>`; runs can be held until released. */
class FakeRuntime implements Runtime {
  readonly signatures: Record<string, SignatureDef> = {};
  readonly backends = {};
  readonly calls: Call[] = [];
  running = 0;
  maxRunning = 0;
  fail: Error | undefined;
  #held: Array<() => void> = [];
  hold = false;

  async run(sig: string, inputs: Record<string, Tensor>, outputs?: readonly string[]): Promise<Record<string, Tensor>> {
    this.calls.push({ sig, inputs, outputs });
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      if (this.hold) await new Promise<void>((r) => this.#held.push(r));
      if (this.fail) throw this.fail;
      const out: Record<string, Tensor> = {};
      const x = inputs.x;
      if (x && x.dtype === 'DT_FLOAT') {
        out.y = { dtype: 'DT_FLOAT', shape: [...x.shape], data: (x.data as Float32Array).map((v) => v * 2) };
      }
      for (const [alias, t] of Object.entries(inputs)) out[`echo_${alias}`] = t;
      if (!outputs) return out;
      return Object.fromEntries(outputs.map((o) => [o, out[o] as Tensor]));
    } finally {
      this.running--;
    }
  }

  release(): void {
    const held = this.#held;
    this.#held = [];
    for (const r of held) r();
  }

  get heldCount(): number {
    return this.#held.length;
  }

  async close(): Promise<void> {}
}

const f32 = (shape: number[], values: number[]): Tensor => ({ dtype: 'DT_FLOAT', shape, data: Float32Array.from(values) });
const values = (t: Tensor | undefined): number[] => Array.from((t?.data ?? []) as Float32Array);
const tick = () => new Promise<void>((r) => setImmediate(r));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function options(overrides: Partial<BatchingOptions> = {}): BatchingOptions {
  const o = { ...defaultBatchingOptions(), numBatchThreads: 1, ...overrides };
  if (!('maxExecutionBatchSize' in overrides)) o.maxExecutionBatchSize = o.maxBatchSize;
  return o;
}

class RecordingObserver implements BatchingObserver {
  depths: number[] = [];
  batches: Array<{ rows: number; padded: number; tasks: number }> = [];
  queueDepth(tasks: number): void {
    this.depths.push(tasks);
  }
  batchStarted(rows: number, paddedRows: number, waits: readonly number[]): void {
    this.batches.push({ rows, padded: paddedRows, tasks: waits.length });
  }
}

describe('BatchScheduler', () => {
  test('concurrent tasks are merged along dimension 0, run once, and split back in order', async () => {
    const rt = new FakeRuntime();
    const s = new BatchScheduler(rt, options({ maxBatchSize: 32 }));
    const results = await Promise.all([
      s.run('serving_default', { x: f32([1, 2], [1, 2]) }),
      s.run('serving_default', { x: f32([2, 2], [3, 4, 5, 6]) }),
      s.run('serving_default', { x: f32([3, 2], [7, 8, 9, 10, 11, 12]) }),
    ]);
    assert.equal(rt.calls.length, 1);
    assert.deepEqual(rt.calls[0]?.inputs.x?.shape, [6, 2]);
    assert.deepEqual(results.map((r) => values(r.y)), [[2, 4], [6, 8, 10, 12], [14, 16, 18, 20, 22, 24]]);
    assert.deepEqual(results.map((r) => r.y?.shape), [[1, 2], [2, 2], [3, 2]]);
  });

  test('a batch of one task runs its own tensors untouched', async () => {
    const rt = new FakeRuntime();
    const s = new BatchScheduler(rt, options());
    const x = f32([2], [1, 2]);
    const r = await s.run('serving_default', { x });
    assert.equal(rt.calls[0]?.inputs.x, x);
    assert.deepEqual(values(r.y), [2, 4]);
  });

  test('different signatures, output filters, dtypes or row shapes go to separate batches', async () => {
    const rt = new FakeRuntime();
    const s = new BatchScheduler(rt, options());
    const results = await Promise.all([
      s.run('serving_default', { x: f32([1, 2], [1, 2]) }),
      s.run('serving_default', { x: f32([1, 3], [1, 2, 3]) }),
      s.run('other', { x: f32([1, 2], [1, 2]) }),
      s.run('serving_default', { x: f32([1, 2], [1, 2]) }, ['y']),
      s.run('serving_default', { x: { dtype: 'DT_INT32', shape: [1, 2], data: Int32Array.of(1, 2) } }),
      s.run('serving_default', { x: f32([1, 2], [5, 6]) }),
    ]);
    assert.equal(rt.calls.length, 5);
    const merged = rt.calls.find((c) => c.sig === 'serving_default' && c.inputs.x?.shape[0] === 2);
    assert.ok(merged, 'the two [*, 2] float tasks with no filter share a batch');
    assert.deepEqual(values(results[5]?.y), [10, 12]);
    assert.deepEqual(Object.keys(results[3] ?? {}), ['y']);
  });

  test('inputs are matched by alias whatever order they come in', async () => {
    const rt = new FakeRuntime();
    const s = new BatchScheduler(rt, options());
    const [a, b] = await Promise.all([
      s.run('serving_default', { x: f32([1], [1]), w: f32([1], [10]) }),
      s.run('serving_default', { w: f32([1], [20]), x: f32([1], [2]) }),
    ]);
    assert.equal(rt.calls.length, 1);
    assert.deepEqual(values(a?.echo_w), [10]);
    assert.deepEqual(values(b?.echo_w), [20]);
    assert.deepEqual(values(b?.y), [4]);
  });

  test('batches are padded up to the next allowed batch size with a copy of a row; padding rows are dropped', async () => {
    const rt = new FakeRuntime();
    const observer = new RecordingObserver();
    const s = new BatchScheduler(rt, options({ maxBatchSize: 8, allowedBatchSizes: [2, 4, 8] }), observer);
    const [a, b] = await Promise.all([
      s.run('serving_default', { x: f32([1], [1]) }),
      s.run('serving_default', { x: f32([2], [2, 3]) }),
    ]);
    assert.equal(rt.calls.length, 1);
    // TF pads with the first row of the last task in the batch.
    assert.deepEqual(values(rt.calls[0]?.inputs.x), [1, 2, 3, 2]);
    assert.deepEqual(values(a?.y), [2]);
    assert.deepEqual(values(b?.y), [4, 6]);
    assert.deepEqual(observer.batches, [{ rows: 3, padded: 4, tasks: 2 }]);
    // A single task is padded too.
    const c = await s.run('serving_default', { x: f32([3], [7, 8, 9]) });
    assert.deepEqual(values(rt.calls[1]?.inputs.x), [7, 8, 9, 7]);
    assert.deepEqual(values(c.y), [14, 16, 18]);
  });

  test('tasks that do not fit in the open batch start a new one', async () => {
    const rt = new FakeRuntime();
    const s = new BatchScheduler(rt, options({ maxBatchSize: 4 }));
    const results = await Promise.all([
      s.run('serving_default', { x: f32([3], [1, 2, 3]) }),
      s.run('serving_default', { x: f32([3], [4, 5, 6]) }),
      s.run('serving_default', { x: f32([1], [7]) }),
    ]);
    assert.deepEqual(rt.calls.map((c) => c.inputs.x?.shape[0]), [3, 4]);
    assert.deepEqual(results.map((r) => values(r.y)), [[2, 4, 6], [8, 10, 12], [14]]);
  });

  test('a task larger than max_batch_size is INVALID_ARGUMENT with TF message', async () => {
    const s = new BatchScheduler(new FakeRuntime(), options({ maxBatchSize: 2 }));
    await assert.rejects(s.run('serving_default', { x: f32([3], [1, 2, 3]) }), (err: unknown) => {
      assert.ok(err instanceof ServingError);
      assert.equal(err.code, Code.INVALID_ARGUMENT);
      assert.equal(err.message, 'Task size 3 is larger than maximum input batch size 2');
      return true;
    });
  });

  test('a full queue is UNAVAILABLE with TF message, and accepts again once a batch is taken', async () => {
    const rt = new FakeRuntime();
    rt.hold = true;
    const s = new BatchScheduler(rt, options({ maxBatchSize: 2, maxEnqueuedBatches: 1 }));
    const first = s.run('serving_default', { x: f32([2], [1, 2]) });
    await tick();
    assert.equal(rt.heldCount, 1, 'the first batch is running');
    const second = s.run('serving_default', { x: f32([2], [3, 4]) }); // fills the one open batch
    await assert.rejects(s.run('serving_default', { x: f32([1], [5]) }), (err: unknown) => {
      assert.ok(err instanceof ServingError);
      assert.equal(err.code, Code.UNAVAILABLE);
      assert.equal(err.message, 'The batch scheduling queue to which this task was submitted is full');
      return true;
    });
    rt.release();
    await first;
    await tick();
    rt.release();
    assert.deepEqual(values((await second).y), [6, 8]);
    rt.hold = false;
    assert.deepEqual(values((await s.run('serving_default', { x: f32([1], [5]) })).y), [10]);
  });

  test('with max_enqueued_batches 2, a second batch waits while the first runs', async () => {
    const rt = new FakeRuntime();
    rt.hold = true;
    const s = new BatchScheduler(rt, options({ maxBatchSize: 1, maxEnqueuedBatches: 2 }));
    const p = [s.run('serving_default', { x: f32([1], [1]) })];
    await tick();
    p.push(s.run('serving_default', { x: f32([1], [2]) }), s.run('serving_default', { x: f32([1], [3]) }));
    await assert.rejects(s.run('serving_default', { x: f32([1], [4]) }), /queue to which this task was submitted is full/);
    assert.equal(s.queuedTasks, 2);
    rt.hold = false;
    rt.release();
    assert.deepEqual((await Promise.all(p)).map((r) => values(r.y)), [[2], [4], [6]]);
  });

  test('num_batch_threads bounds the batches running at once', async () => {
    const rt = new FakeRuntime();
    rt.hold = true;
    const s = new BatchScheduler(rt, options({ maxBatchSize: 1, maxEnqueuedBatches: 10, numBatchThreads: 2 }));
    const p = [1, 2, 3, 4].map((v) => s.run('serving_default', { x: f32([1], [v]) }));
    await tick();
    await tick();
    assert.equal(rt.heldCount, 2);
    assert.equal(s.runningBatches, 2);
    assert.equal(s.queuedTasks, 2);
    rt.hold = false;
    rt.release();
    await tick();
    rt.release();
    assert.deepEqual((await Promise.all(p)).map((r) => values(r.y)), [[2], [4], [6], [8]]);
    assert.equal(rt.maxRunning, 2);
  });

  test('batch_timeout_micros holds a partial batch for company; a full batch goes at once', async () => {
    const rt = new FakeRuntime();
    const s = new BatchScheduler(rt, options({ maxBatchSize: 3, batchTimeoutMicros: 300_000 }));
    const a = s.run('serving_default', { x: f32([1], [1]) });
    await tick();
    await sleep(20);
    assert.equal(rt.calls.length, 0, 'a lone task waits for the timeout');
    const b = s.run('serving_default', { x: f32([1], [2]) });
    const [ra, rb] = await Promise.all([a, b]);
    assert.equal(rt.calls.length, 1);
    assert.deepEqual(rt.calls[0]?.inputs.x?.shape, [2]);
    assert.deepEqual([values(ra.y), values(rb.y)], [[2], [4]]);
    // Filling the batch does not wait for the timeout.
    const full = Promise.all([1, 2, 3].map((v) => s.run('serving_default', { x: f32([1], [v]) })));
    await tick();
    await tick();
    assert.equal(rt.calls.length, 2);
    assert.deepEqual(rt.calls[1]?.inputs.x?.shape, [3]);
    await full;
  });

  test('pad_variable_length_inputs pads dimensions past the first with the tensor first element', async () => {
    const rt = new FakeRuntime();
    const s = new BatchScheduler(rt, options({ padVariableLengthInputs: true }));
    const [a, b] = await Promise.all([
      s.run('serving_default', { x: f32([1, 2], [5, 6]) }),
      s.run('serving_default', { x: f32([2, 3], [1, 2, 3, 4, 5, 6]) }),
    ]);
    assert.equal(rt.calls.length, 1);
    assert.deepEqual(rt.calls[0]?.inputs.x?.shape, [3, 3]);
    assert.deepEqual(values(rt.calls[0]?.inputs.x), [5, 6, 5, 1, 2, 3, 4, 5, 6]);
    assert.deepEqual(a?.y?.shape, [1, 3]);
    assert.deepEqual(values(a?.y), [10, 12, 10]);
    assert.deepEqual(values(b?.y), [2, 4, 6, 8, 10, 12]);
    await assert.rejects(
      s.run('serving_default', { x: f32([1, 1, 1, 1, 1, 1, 1], [1]) }),
      /Only tensors with rank from 1 to 6 can be padded\./,
    );
  });

  test('enable_large_batch_splitting spreads a large task over batches and joins its outputs', async () => {
    const rt = new FakeRuntime();
    const s = new BatchScheduler(
      rt,
      options({ maxBatchSize: 10, maxExecutionBatchSize: 4, enableLargeBatchSplitting: true, maxEnqueuedBatches: 5 }),
    );
    const [small, large] = await Promise.all([
      s.run('serving_default', { x: f32([1], [100]) }),
      s.run('serving_default', { x: f32([9], [1, 2, 3, 4, 5, 6, 7, 8, 9]) }),
    ]);
    assert.deepEqual(rt.calls.map((c) => c.inputs.x?.shape[0]), [4, 4, 2]);
    assert.deepEqual(values(small?.y), [200]);
    assert.deepEqual(large?.y?.shape, [9]);
    assert.deepEqual(values(large?.y), [2, 4, 6, 8, 10, 12, 14, 16, 18]);
  });

  test('tasks that cannot be batched run on their own', async () => {
    const rt = new FakeRuntime();
    const s = new BatchScheduler(rt, options({ maxBatchSize: 1 }));
    const scalar = await s.run('serving_default', { x: f32([], [4]) });
    assert.deepEqual(values(scalar.y), [8]);
    await s.run('serving_default', { x: f32([2], [1, 2]), w: f32([3], [1, 2, 3]) });
    assert.equal(rt.calls.length, 2);
  });

  test('a failed run fails every task of its batch with the same error', async () => {
    const rt = new FakeRuntime();
    rt.fail = new ServingError(Code.INVALID_ARGUMENT, 'bad');
    const s = new BatchScheduler(rt, options());
    const settled = await Promise.allSettled([
      s.run('serving_default', { x: f32([1], [1]) }),
      s.run('serving_default', { x: f32([1], [2]) }),
    ]);
    assert.equal(rt.calls.length, 1);
    for (const r of settled) assert.equal(r.status === 'rejected' && (r.reason as Error).message, 'bad');
  });

  test('outputs that are not batch-major fail the batch as TF does', async () => {
    const rt = new FakeRuntime();
    const s = new BatchScheduler(rt, options());
    rt.run = async () => ({ z: f32([1], [0]) });
    const settled = await Promise.allSettled([
      s.run('serving_default', { x: f32([1], [1]) }),
      s.run('serving_default', { x: f32([1], [2]) }),
    ]);
    for (const r of settled) {
      assert.equal(r.status, 'rejected');
      assert.match(String((r as PromiseRejectedResult).reason), /0th dimension does not equal the sum/);
    }
  });

  test('close runs what is queued, then closes the runtime', async () => {
    const rt = new FakeRuntime();
    let closed = false;
    rt.close = async () => {
      closed = true;
    };
    const s = new BatchScheduler(rt, options({ batchTimeoutMicros: 10_000_000 }));
    const p = s.run('serving_default', { x: f32([1], [3]) });
    await tick();
    await s.close();
    assert.deepEqual(values((await p).y), [6]);
    assert.ok(closed);
  });
});

describe('tensor rows', () => {
  test('concat, pad and slice keep every dtype exact', () => {
    const i64: Tensor = { dtype: 'DT_INT64', shape: [2, 1], data: BigInt64Array.of(2n ** 62n, -1n) };
    const joined = concatRows([i64, { dtype: 'DT_INT64', shape: [1, 1], data: BigInt64Array.of(7n) }], 1);
    assert.deepEqual(Array.from(joined.data as BigInt64Array), [2n ** 62n, -1n, 7n, 7n]);
    const s1: Tensor = { dtype: 'DT_STRING', shape: [1, 2], data: [Uint8Array.of(1), Uint8Array.of(2)] };
    const s2: Tensor = { dtype: 'DT_STRING', shape: [1, 2], data: [Uint8Array.of(3), Uint8Array.of(4)] };
    const strings = concatRows([s1, s2], 1);
    assert.deepEqual(strings.shape, [3, 2]);
    assert.deepEqual((strings.data as Uint8Array[]).map((b) => b[0]), [1, 2, 3, 4, 3, 4]);
    assert.deepEqual((sliceRows(strings, 1, 2).data as Uint8Array[]).map((b) => b[0]), [3, 4]);
    const padded = padToShape({ dtype: 'DT_STRING', shape: [1, 1], data: [Uint8Array.of(9)] }, [1, 3]);
    assert.deepEqual((padded.data as Uint8Array[]).map((b) => b[0]), [9, 9, 9]);
    const cube = padToShape({ dtype: 'DT_INT32', shape: [1, 2, 2], data: Int32Array.of(1, 2, 3, 4) }, [1, 3, 3]);
    assert.deepEqual(Array.from(cube.data as Int32Array), [1, 2, 1, 3, 4, 1, 1, 1, 1]);
  });
});

describe('BatchingParameters', () => {
  test('wrapper-typed fields, defaults for unset fields', () => {
    const o = parseBatchingParameters(
      'max_batch_size { value: 128 }\nbatch_timeout_micros { value: 0 }\nmax_enqueued_batches { value: 1000000 }\n' +
        'num_batch_threads { value: 8 }\nallowed_batch_sizes: [8, 32, 128]\npad_variable_length_inputs: true\n',
      'batch.config',
    );
    assert.deepEqual(o, {
      maxBatchSize: 128,
      batchTimeoutMicros: 0,
      maxEnqueuedBatches: 1000000,
      numBatchThreads: 8,
      threadPoolName: 'batch_threads',
      enableLargeBatchSplitting: false,
      maxExecutionBatchSize: 128,
      allowedBatchSizes: [8, 32, 128],
      padVariableLengthInputs: true,
    });
    const d = parseBatchingParameters('', 'empty.config');
    assert.equal(d.maxBatchSize, 1000);
    assert.equal(d.maxEnqueuedBatches, 10);
    assert.equal(d.batchTimeoutMicros, 0);
    assert.ok(d.numBatchThreads >= 1);
    assert.equal(defaultBatchingOptions().threadPoolName, 'model_server_batch_threads');
  });

  test('a per-model file keeps the global thread pool', () => {
    const o = parseBatchingParameters('max_batch_size { value: 4 } num_batch_threads { value: 9 }', 'm/1/batching_params.pbtxt', {
      numBatchThreads: 2,
      threadPoolName: 'pool',
    });
    assert.equal(o.maxBatchSize, 4);
    assert.equal(o.numBatchThreads, 2);
    assert.equal(o.threadPoolName, 'pool');
  });

  test('max_enqueued_batches 0 means 1 without splitting, as in TF', () => {
    assert.equal(parseBatchingParameters('max_enqueued_batches {}', 'f').maxEnqueuedBatches, 1);
  });

  const bad: Array<[string, string, RegExp]> = [
    ['max_batch_size { value: 0 }', 'f:1:1', /input_batch_size_limit must be positive; was 0/],
    ['\n  batch_timeout_micros { value: -1 }', 'f:2:3', /batch_timeout_micros must be non-negative; was -1/],
    ['num_batch_threads { value: 0 }', 'f:1:1', /num_batch_threads must be positive; was 0/],
    ['max_batch_size { value: 8 }\nallowed_batch_sizes: 2\nallowed_batch_sizes: 4', 'f:3:1', /Last entry in allowed_batch_sizes must match max_batch_size; last entry was 4; expected 8/],
    ['allowed_batch_sizes: [4, 2, 1000]', 'f:1:26', /allowed_batch_sizes entries must be monotonically increasing/],
    ['allowed_batch_sizes: [10, 100]', 'f:1:27', /Last entry in allowed_batch_sizes must match max_batch_size; last entry was 100; expected 1000/],
    [
      'max_batch_size { value: 4 } enable_large_batch_splitting { value: true } max_execution_batch_size { value: 8 }',
      'f:1:74',
      /input_batch_size_limit must be greater than or equal to max_execution_batch_size/,
    ],
    ['max_batch_size { valu: 3 }', 'f:1:18', /has no field named "valu"/],
    ['max_batch_size: 3', 'f:1:17', /Expected "\{" or "<"/],
    ['max_batch_sizes { value: 3 }', 'f:1:1', /has no field named "max_batch_sizes"/],
  ];
  for (const [text, where, message] of bad) {
    test(`rejects ${JSON.stringify(text)} at ${where}`, () => {
      assert.throws(
        () => parseBatchingParameters(text, 'f'),
        (err: unknown) => {
          assert.ok(err instanceof BatchingConfigError, String(err));
          assert.ok(err.message.startsWith(`${where}: `), err.message);
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }
});
