/**
 * Imported first by the worker entry point: a worker started with `--model_platform=tensorflow`
 * starts its model thread at once, so the thread's imports (the TensorFlow runtime, protobufjs,
 * onnxruntime-node) and protobuf roots overlap the process's own start-up instead of following it.
 * Imports only the light thread plumbing; anything else is a no-op.
 */
import { prestartThread } from '../threaded-runtime.js';

/** The value of `--model_platform` in `argv` (`--model_platform=x` or `--model_platform x`). */
export function platformFlag(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--model_platform=')) return a.slice('--model_platform='.length);
    if (a === '--model_platform') return argv[i + 1];
  }
  return undefined;
}

/** The module loadThreadedTensorFlowRuntime runs in its thread (index.ts, beside this file). */
export const TENSORFLOW_THREAD_MODULE = new URL('./index.js', import.meta.url).href;

if (platformFlag(process.argv.slice(2)) === 'tensorflow') prestartThread(TENSORFLOW_THREAD_MODULE);
