/**
 * Dynamic batching in the worker, as TF Serving's BatchingSession over a SharedBatchScheduler does it.
 *
 * `BatchScheduler` is itself a `Runtime`: it wraps the model's runtime, and every `run` becomes a task.
 * Tasks that can run together share a queue: same signature, same requested outputs, and per input the
 * same dtype and row shape (with pad_variable_length_inputs, the same rank: shorter dimensions are
 * padded). A queue holds batches; the last one is open and takes tasks while they fit in
 * max_batch_size. Up to num_batch_threads batches run at once; a free slot takes a queue's front closed
 * batch, or its open batch once that is full or its oldest task has waited batch_timeout_micros
 * (0: at once, though tasks that arrive in the same turn of the event loop still go together). Queues
 * are served round-robin.
 *
 * A batch's inputs are concatenated along dimension 0, padded with copies of a row up to the next
 * allowed batch size, run once, and each output is split back along dimension 0 (rows of padding are
 * dropped). A batch of one task with no padding runs the task's own tensors, unchanged.
 *
 * Errors, with TF's messages: a task larger than max_batch_size is INVALID_ARGUMENT; a task that does
 * not fit while the queue already holds max_enqueued_batches batches is UNAVAILABLE. With
 * enable_large_batch_splitting, a task larger than the room left in the open batch is split across
 * batches and its outputs joined again.
 *
 * Differences from TF, so that batching never changes what a request gets: a task TF would refuse
 * (an input with no dimensions, inputs whose first dimensions differ, or no inputs) or an empty one
 * runs on its own, unbatched, as it would without batching; and tasks whose rows differ in shape go to
 * different queues instead of failing together.
 */
import { Code, invalidArgument, ServingError, unavailable } from '../../common/errors.js';
import type { Tensor } from '../codec/tensor.js';
import type { RunContext, Runtime } from '../runtimes/runtime.js';
import type { BatchingOptions } from '../../common/batching-parameters.js';
import { concatRows, padToShape, sliceRows } from './tensor-rows.js';

/** Where the scheduler reports what it does (worker/metrics.ts; nothing in unit tests). */
export interface BatchingObserver {
  /** Tasks waiting in queues (not yet in a running batch). */
  queueDepth(tasks: number): void;
  /** One batch about to run: rows from tasks, rows after padding, and each task's wait in µs. */
  batchStarted(rows: number, paddedRows: number, waitsMicros: readonly number[]): void;
}

type Outputs = Record<string, Tensor>;

interface Task {
  sigName: string;
  outputs: readonly string[] | undefined;
  /** Input alias → tensor, aliases in sorted order. */
  inputs: Outputs;
  /** Rows (dimension 0 of every input). */
  size: number;
  /** performance.now() when enqueued. */
  enqueuedAt: number;
  ctx: RunContext | undefined;
  settle(result: Outputs | Error): void;
}

interface Batch {
  tasks: Task[];
  size: number;
}

interface Queue {
  key: string;
  /** The last batch is open; the others are closed and wait for a slot. */
  batches: Batch[];
  /** performance.now() when the open batch got its first task. */
  openedAt: number;
}

const TOO_FULL = 'The batch scheduling queue to which this task was submitted is full';

export class BatchScheduler implements Runtime {
  readonly signatures: Runtime['signatures'];
  readonly backends: Runtime['backends'];
  readonly options: BatchingOptions;
  readonly #runtime: Runtime;
  readonly #observer: BatchingObserver | undefined;
  readonly #queues = new Map<string, Queue>();
  #running = 0;
  #waiting = 0;
  #pumpQueued = false;
  #timer: NodeJS.Timeout | undefined;
  #timerDue = Infinity;
  #closing = false;
  #idle: (() => void) | undefined;

  constructor(runtime: Runtime, options: BatchingOptions, observer?: BatchingObserver) {
    this.#runtime = runtime;
    this.signatures = runtime.signatures;
    this.backends = runtime.backends;
    this.options = options;
    this.#observer = observer;
  }

  /** Tasks waiting in queues. */
  get queuedTasks(): number {
    return this.#waiting;
  }

  /** Batches running now. */
  get runningBatches(): number {
    return this.#running;
  }

  run(sigName: string, inputs: Outputs, outputs?: readonly string[], ctx?: RunContext): Promise<Outputs> {
    const aliases = Object.keys(inputs).sort();
    const size = batchSize(inputs, aliases);
    if (size === undefined || size === 0 || this.#closing) return this.#runtime.run(sigName, inputs, outputs);
    try {
      this.#runtime.checkInputs?.(sigName, inputs);
    } catch (err) {
      return Promise.reject(err);
    }
    const { maxBatchSize } = this.options;
    if (size > maxBatchSize) {
      return Promise.reject(invalidArgument(`Task size ${size} is larger than maximum input batch size ${maxBatchSize}`));
    }
    let key = `${sigName}\0${outputs === undefined ? '*' : outputs.join('\u0001')}`;
    const sorted: Outputs = {};
    for (const alias of aliases) {
      const t = inputs[alias] as Tensor;
      sorted[alias] = t;
      if (this.options.padVariableLengthInputs) {
        if (t.shape.length > 6) return Promise.reject(invalidArgument('Only tensors with rank from 1 to 6 can be padded.'));
        key += `\0${alias}\u0001${t.dtype}\u0001${t.shape.length}`;
      } else {
        key += `\0${alias}\u0001${t.dtype}\u0001${t.shape.slice(1).join(',')}`;
      }
    }
    return new Promise<Outputs>((resolve, reject) => {
      const task: Task = {
        sigName,
        outputs,
        inputs: sorted,
        size,
        enqueuedAt: performance.now(),
        ctx,
        settle: (r) => (r instanceof Error ? reject(r) : resolve(r)),
      };
      try {
        this.#enqueue(key, task);
      } catch (err) {
        reject(err);
      }
    });
  }

  /** Stops batching new tasks, runs what is queued, waits for running batches, closes the runtime. */
  async close(): Promise<void> {
    this.#closing = true;
    this.#pump();
    if (this.#running > 0 || this.#waiting > 0) await new Promise<void>((resolve) => (this.#idle = resolve));
    clearTimeout(this.#timer);
    await this.#runtime.close();
  }

  // ------------------------------------------------------------------------------------------
  // Queues

  #enqueue(key: string, task: Task): void {
    const { maxEnqueuedBatches, maxExecutionBatchSize, enableLargeBatchSplitting } = this.options;
    let queue = this.#queues.get(key);
    if (!queue) {
      queue = { key, batches: [{ tasks: [], size: 0 }], openedAt: 0 };
      this.#queues.set(key, queue);
    }
    const open = () => queue.batches[queue.batches.length - 1] as Batch;
    let pieces: Task[];
    if (!enableLargeBatchSplitting) {
      if (open().size + task.size > maxExecutionBatchSize && queue.batches.length >= maxEnqueuedBatches) {
        this.#dropIfEmpty(queue);
        throw unavailable(TOO_FULL);
      }
      pieces = [task];
    } else {
      const capacity = (maxEnqueuedBatches - queue.batches.length) * maxExecutionBatchSize + (maxExecutionBatchSize - open().size);
      if (task.size > capacity) {
        this.#dropIfEmpty(queue);
        throw unavailable(TOO_FULL);
      }
      const room = maxExecutionBatchSize - open().size;
      pieces = task.size <= room ? [task] : splitTask(task, room, maxExecutionBatchSize);
    }
    for (const piece of pieces) {
      if (open().size + piece.size > maxExecutionBatchSize) queue.batches.push({ tasks: [], size: 0 });
      const batch = open();
      if (batch.tasks.length === 0) queue.openedAt = piece.enqueuedAt;
      batch.tasks.push(piece);
      batch.size += piece.size;
      this.#waiting++;
    }
    this.#observer?.queueDepth(this.#waiting);
    if (!this.#pumpQueued) {
      // Pump once the current turn of the event loop is done, so tasks arriving together batch together.
      this.#pumpQueued = true;
      setImmediate(() => {
        this.#pumpQueued = false;
        this.#pump();
      });
    }
  }

  #dropIfEmpty(queue: Queue): void {
    if (queue.batches.length === 1 && (queue.batches[0] as Batch).tasks.length === 0) this.#queues.delete(queue.key);
  }

  /** A batch ready to run from `queue`, if any (removing it from the queue). */
  #take(queue: Queue, now: number): Batch | undefined {
    if (queue.batches.length >= 2) return queue.batches.shift();
    const open = queue.batches[0] as Batch;
    if (open.tasks.length === 0) {
      this.#queues.delete(queue.key);
      return undefined;
    }
    const due = queue.openedAt + this.options.batchTimeoutMicros / 1000;
    if (this.#closing || open.size >= this.options.maxExecutionBatchSize || now >= due) {
      this.#queues.delete(queue.key);
      return open;
    }
    this.#armTimer(due);
    return undefined;
  }

  #armTimer(due: number): void {
    if (this.#timer !== undefined && due >= this.#timerDue) return;
    clearTimeout(this.#timer);
    this.#timerDue = due;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerDue = Infinity;
      this.#pump();
    }, Math.max(0, due - performance.now()));
  }

  /** Fills free slots with ready batches, taking queues in turn. */
  #pump(): void {
    const threads = this.options.numBatchThreads;
    while (this.#running < threads && this.#queues.size > 0) {
      const now = performance.now();
      let started = false;
      // Map iteration is insertion order; a queue that gave a batch moves to the back (round-robin).
      for (const queue of [...this.#queues.values()]) {
        if (this.#running >= threads) break;
        const batch = this.#take(queue, now);
        if (!batch) continue;
        if (this.#queues.get(queue.key) === queue) {
          this.#queues.delete(queue.key);
          this.#queues.set(queue.key, queue);
        }
        started = true;
        this.#start(batch, now);
      }
      if (!started) break;
    }
    if (this.#running === 0 && this.#waiting === 0) {
      const idle = this.#idle;
      this.#idle = undefined;
      idle?.();
    }
  }

  #start(batch: Batch, now: number): void {
    this.#waiting -= batch.tasks.length;
    dropAbandoned(batch);
    if (batch.tasks.length === 0) {
      this.#observer?.queueDepth(this.#waiting);
      return;
    }
    this.#running++;
    const padded = paddedSize(this.options.allowedBatchSizes, batch.size);
    if (this.#observer) {
      this.#observer.queueDepth(this.#waiting);
      this.#observer.batchStarted(batch.size, padded, batch.tasks.map((t) => (now - t.enqueuedAt) * 1000));
    }
    this.#process(batch, padded).finally(() => {
      this.#running--;
      this.#pump();
    });
  }

  async #process(batch: Batch, padded: number): Promise<void> {
    const tasks = batch.tasks;
    const first = tasks[0] as Task;
    try {
      if (tasks.length === 1 && padded === batch.size) {
        first.settle(await this.#runtime.run(first.sigName, first.inputs, first.outputs));
        return;
      }
      const merged = this.#mergeInputs(tasks, padded - batch.size);
      const out = await this.#runtime.run(first.sigName, merged, first.outputs);
      const split = splitOutputs(out, tasks, padded);
      tasks.forEach((t, i) => t.settle(split[i] as Outputs));
    } catch (err) {
      const e = err instanceof Error ? err : new ServingError(Code.INTERNAL, String(err));
      for (const t of tasks) t.settle(e);
    }
  }

  #mergeInputs(tasks: readonly Task[], padRows: number): Outputs {
    const merged: Outputs = {};
    for (const alias of Object.keys((tasks[0] as Task).inputs)) {
      let parts = tasks.map((t) => t.inputs[alias] as Tensor);
      if (this.options.padVariableLengthInputs) {
        const max = (parts[0] as Tensor).shape.slice();
        for (const p of parts) for (let d = 1; d < max.length; d++) max[d] = Math.max(max[d] as number, p.shape[d] as number);
        parts = parts.map((p) => padToShape(p, max));
      }
      merged[alias] = concatRows(parts, padRows);
    }
    return merged;
  }
}

/** Dimension 0 shared by every input, or undefined when the task cannot be batched. */
function batchSize(inputs: Outputs, aliases: readonly string[]): number | undefined {
  let size: number | undefined;
  for (const alias of aliases) {
    const shape = (inputs[alias] as Tensor).shape;
    if (shape.length === 0) return undefined;
    if (size === undefined) size = shape[0];
    else if (shape[0] !== size) return undefined;
  }
  return size;
}

/** TF's RoundToLowestAllowedBatchSize. */
export function paddedSize(allowed: readonly number[], size: number): number {
  for (const a of allowed) if (a >= size) return a;
  return size;
}

/** Splits a task into a piece filling `room`, then pieces of at most `max` rows; outputs are re-joined. */
function splitTask(task: Task, room: number, max: number): Task[] {
  const sizes: number[] = [];
  let left = task.size;
  if (room > 0) {
    sizes.push(room);
    left -= room;
  }
  for (; left > 0; left -= max) sizes.push(Math.min(max, left));
  const results: Outputs[] = new Array(sizes.length);
  let pending = sizes.length;
  let failed = false;
  let begin = 0;
  return sizes.map((size, i) => {
    const inputs: Outputs = {};
    for (const [alias, t] of Object.entries(task.inputs)) inputs[alias] = sliceRows(t, begin, begin + size);
    begin += size;
    return {
      sigName: task.sigName,
      outputs: task.outputs,
      inputs,
      size,
      enqueuedAt: task.enqueuedAt,
      ctx: task.ctx,
      settle: (r: Outputs | Error) => {
        if (failed) return;
        if (r instanceof Error) {
          failed = true;
          task.settle(r);
          return;
        }
        results[i] = r;
        if (--pending > 0) return;
        const joined: Outputs = {};
        for (const alias of Object.keys(results[0] as Outputs)) {
          joined[alias] = concatRows(results.map((o) => o[alias] as Tensor));
        }
        task.settle(joined);
      },
    };
  });
}

/** TF's SplitOutputTensors: each output's rows go back to the tasks, in order; padding rows are dropped. */
function splitOutputs(out: Outputs, tasks: readonly Task[], padded: number): Outputs[] {
  const split: Outputs[] = tasks.map(() => ({}));
  for (const [alias, tensor] of Object.entries(out)) {
    if (tensor.shape.length === 0) {
      throw new ServingError(Code.FAILED_PRECONDITION, 'Batched output tensor has 0 dimensions');
    }
    if (tensor.shape[0] !== padded) {
      throw new ServingError(
        Code.FAILED_PRECONDITION,
        "Batched output tensor's 0th dimension does not equal the sum of the 0th dimension sizes of the input tensors",
      );
    }
    let begin = 0;
    tasks.forEach((t, i) => {
      (split[i] as Outputs)[alias] = sliceRows(tensor, begin, begin + t.size);
      begin += t.size;
    });
  }
  return split;
}

/** Settles the tasks whose client has gone or whose deadline has passed, and takes them out of `batch`. */
function dropAbandoned(batch: Batch): void {
  let now = 0;
  const live: Task[] = [];
  for (const t of batch.tasks) {
    const ctx = t.ctx;
    if (ctx?.cancelled) {
      t.settle(new ServingError(Code.CANCELLED, 'Cancelled'));
    } else if (ctx?.deadline !== undefined && ctx.deadline <= (now ||= Date.now())) {
      t.settle(new ServingError(Code.DEADLINE_EXCEEDED, 'Deadline Exceeded'));
    } else {
      live.push(t);
    }
  }
  if (live.length === batch.tasks.length) return;
  batch.tasks = live;
  batch.size = live.reduce((n, t) => n + t.size, 0);
}
