/**
 * TF Serving's BatchingParameters (protos/tensorflow_serving/servables/tensorflow/session_bundle_config.proto)
 * read from text format and resolved into the options the batch scheduler runs with.
 *
 * Defaults are the scheduler's (TF's shared_batch_scheduler.h QueueOptions / Options), applied only to
 * fields the file leaves unset, as TF's GetQueueOptions does. The checks and their messages are TF's
 * (SharedBatchScheduler::Create / AddQueue, bundle_factory_util.cc, batching_session.cc), raised as
 * `BatchingConfigError` naming `file:line:col` of the field at fault (or of the file when the field
 * was left unset).
 *
 * The gateway reads `--batching_parameters_file` once at startup and hands the resolved options to
 * its workers; a worker with `--enable_per_model_batching_parameters` reads `batching_params.pbtxt`
 * from its version folder, taking only the thread pool fields from the global options (as TF does:
 * that pool is shared by every model).
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type protobuf from 'protobufjs';
import { loadProtoRoot } from './protos.js';
import { parseTextFormat, TextFormatError, type SourcePos } from './text-format.js';

/** The per-model file TF Serving looks for in a version (SavedModel) folder. */
export const PER_MODEL_BATCHING_FILE = 'batching_params.pbtxt';

export interface BatchingOptions {
  /** Largest task accepted (TF's input_batch_size_limit, from max_batch_size). */
  maxBatchSize: number;
  batchTimeoutMicros: number;
  /** Batches that may wait in one queue (batches being run do not count). */
  maxEnqueuedBatches: number;
  /** Batches run at once. */
  numBatchThreads: number;
  threadPoolName: string;
  enableLargeBatchSplitting: boolean;
  /** Largest batch run: max_execution_batch_size with splitting, else maxBatchSize. */
  maxExecutionBatchSize: number;
  /** Increasing; empty = run batches at their own size. */
  allowedBatchSizes: number[];
  padVariableLengthInputs: boolean;
}

export class BatchingConfigError extends Error {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  constructor(file: string, pos: SourcePos | undefined, detail: string) {
    super(`${pos ? `${file}:${pos.line}:${pos.col}` : file}: ${detail}`);
    this.name = 'BatchingConfigError';
    this.file = file;
    this.line = pos?.line ?? 0;
    this.col = pos?.col ?? 0;
  }
}

/** TF's defaults (shared_batch_scheduler.h). */
const DEFAULT_MAX_BATCH_SIZE = 1000;
const DEFAULT_MAX_ENQUEUED_BATCHES = 10;
const DEFAULT_THREAD_POOL_NAME = 'batch_threads';
/** The name TF Serving's server gives the pool when --enable_batching comes without a file. */
const SERVER_THREAD_POOL_NAME = 'model_server_batch_threads';

let cachedType: protobuf.Type | undefined;
function batchingParametersType(): protobuf.Type {
  cachedType ??= loadProtoRoot(['tensorflow_serving/servables/tensorflow/session_bundle_config.proto']).lookupType(
    'tensorflow.serving.BatchingParameters',
  );
  return cachedType;
}

/** `--enable_batching` without a parameters file: every default. */
export function defaultBatchingOptions(): BatchingOptions {
  return {
    maxBatchSize: DEFAULT_MAX_BATCH_SIZE,
    batchTimeoutMicros: 0,
    maxEnqueuedBatches: DEFAULT_MAX_ENQUEUED_BATCHES,
    numBatchThreads: os.availableParallelism(),
    threadPoolName: SERVER_THREAD_POOL_NAME,
    enableLargeBatchSplitting: false,
    maxExecutionBatchSize: DEFAULT_MAX_BATCH_SIZE,
    allowedBatchSizes: [],
    padVariableLengthInputs: false,
  };
}

/** Reads and resolves a BatchingParameters text file. Throws BatchingConfigError or an fs error. */
export async function loadBatchingParametersFile(file: string, threadPool?: ThreadPool): Promise<BatchingOptions> {
  const abs = path.resolve(file);
  return parseBatchingParameters(await readFile(abs, 'utf8'), abs, threadPool);
}

/** Thread pool fields that a per-model file does not override. */
export type ThreadPool = Pick<BatchingOptions, 'numBatchThreads' | 'threadPoolName'>;

/**
 * Parses BatchingParameters text and applies TF's defaults and checks. With `threadPool` (per-model
 * files), num_batch_threads and thread_pool_name come from it instead of the text.
 */
export function parseBatchingParameters(text: string, file: string, threadPool?: ThreadPool): BatchingOptions {
  let value: Record<string, unknown>;
  let positions: Map<string, SourcePos>;
  try {
    ({ value, positions } = parseTextFormat(text, batchingParametersType(), file));
  } catch (err) {
    if (err instanceof TextFormatError) throw new BatchingConfigError(file, err, err.detail);
    throw err;
  }
  const fail = (field: string, detail: string): never => {
    throw new BatchingConfigError(file, positions.get(field) ?? positions.get(field.replace(/\[\d+\]$/, '')), detail);
  };
  const wrapped = <T>(field: string, fallback: T): T => {
    const w = value[field] as { value?: T } | undefined;
    if (w === undefined) return fallback;
    // A wrapper written as `field {}` holds the type's default, as in protobuf.
    return (w.value ?? (typeof fallback === 'string' ? '' : typeof fallback === 'boolean' ? false : 0)) as T;
  };
  const set = (field: string) => value[field] !== undefined;

  const maxBatchSize = wrapped('max_batch_size', DEFAULT_MAX_BATCH_SIZE);
  const batchTimeoutMicros = wrapped('batch_timeout_micros', 0);
  const enableLargeBatchSplitting = wrapped('enable_large_batch_splitting', false);
  let maxEnqueuedBatches = wrapped('max_enqueued_batches', DEFAULT_MAX_ENQUEUED_BATCHES);
  const numBatchThreads = threadPool ? threadPool.numBatchThreads : wrapped('num_batch_threads', os.availableParallelism());
  const threadPoolName = threadPool ? threadPool.threadPoolName : wrapped('thread_pool_name', DEFAULT_THREAD_POOL_NAME);
  const maxExecutionBatchSize = enableLargeBatchSplitting
    ? wrapped('max_execution_batch_size', maxBatchSize)
    : maxBatchSize;
  const allowedBatchSizes = [...((value.allowed_batch_sizes as number[] | undefined) ?? [])];
  const padVariableLengthInputs = (value.pad_variable_length_inputs as boolean | undefined) ?? false;

  if (!threadPool && numBatchThreads < 1) {
    fail('num_batch_threads', `num_batch_threads must be positive; was ${numBatchThreads}`);
  }
  if (maxBatchSize <= 0) fail('max_batch_size', `input_batch_size_limit must be positive; was ${maxBatchSize}`);
  if (batchTimeoutMicros < 0) {
    fail('batch_timeout_micros', `batch_timeout_micros must be non-negative; was ${batchTimeoutMicros}`);
  }
  // TF rewrites 0 to 1 without splitting ("many existing models rely on it") and refuses it with.
  if (maxEnqueuedBatches === 0 && !enableLargeBatchSplitting) maxEnqueuedBatches = 1;
  if (maxEnqueuedBatches <= 0) {
    fail('max_enqueued_batches', `max_enqueued_batches must be positive; was ${maxEnqueuedBatches}`);
  }
  if (enableLargeBatchSplitting) {
    if (maxExecutionBatchSize <= 0) {
      fail('max_execution_batch_size', `max_execution_batch_size must be positive; was ${maxExecutionBatchSize}`);
    }
    if (maxBatchSize < maxExecutionBatchSize) {
      fail(
        set('max_execution_batch_size') ? 'max_execution_batch_size' : 'max_batch_size',
        'When enable_large_batch_splitting is true, input_batch_size_limit must be greater than or equal to ' +
          `max_execution_batch_size (${maxBatchSize} < ${maxExecutionBatchSize}).`,
      );
    }
  }
  if (allowedBatchSizes.length > 0) {
    for (let i = 1; i < allowedBatchSizes.length; i++) {
      if ((allowedBatchSizes[i] as number) <= (allowedBatchSizes[i - 1] as number)) {
        fail(`allowed_batch_sizes[${i}]`, 'allowed_batch_sizes entries must be monotonically increasing');
      }
    }
    const last = allowedBatchSizes.at(-1) as number;
    const lastField = `allowed_batch_sizes[${allowedBatchSizes.length - 1}]`;
    if (enableLargeBatchSplitting) {
      if (last !== maxExecutionBatchSize) {
        fail(
          lastField,
          `Last entry in allowed_batch_sizes must be equal to max_execution_batch_size; last entry was ${last}; ` +
            `expected ${maxExecutionBatchSize}`,
        );
      }
    } else if (last !== maxBatchSize) {
      fail(
        lastField,
        `Last entry in allowed_batch_sizes must match max_batch_size; last entry was ${last}; expected ${maxBatchSize}`,
      );
    }
    if ((allowedBatchSizes[0] as number) <= 0) {
      fail('allowed_batch_sizes[0]', `allowed_batch_sizes entries must be positive; was ${allowedBatchSizes[0]}`);
    }
  }
  return {
    maxBatchSize,
    batchTimeoutMicros,
    maxEnqueuedBatches,
    numBatchThreads,
    threadPoolName,
    enableLargeBatchSplitting,
    maxExecutionBatchSize,
    allowedBatchSizes,
    padVariableLengthInputs,
  };
}

/**
 * A version folder's own parameters (`--enable_per_model_batching_parameters`): its
 * batching_params.pbtxt with the global thread pool, or undefined when the folder has none (the
 * model is then not batched, as in TF Serving).
 */
export async function perModelBatchingOptions(versionDir: string, global: BatchingOptions): Promise<BatchingOptions | undefined> {
  const file = path.join(versionDir, PER_MODEL_BATCHING_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return parseBatchingParameters(text, file, global);
}
