/**
 * The worker process's handle on a SavedModel: the model loads and runs on its own thread, which
 * imports the TensorFlow runtime (index.ts); this module needs only the thread plumbing, so the
 * worker's main thread never imports the runtime or its protos.
 */
import { ThreadedRuntime, type ThreadedRuntimeOptions } from '../threaded-runtime.js';
import type { TensorFlowLoadOptions } from './tensorflow-runtime.js';
import type { ThreadLoadArgs } from './index.js';

/**
 * Loads a SavedModel on its own thread with the ONNX fast path on (unless `options.fastPath` is
 * false): what the worker process serves for the `tensorflow` platform.
 */
export function loadThreadedTensorFlowRuntime(
  versionDir: string,
  options: Omit<TensorFlowLoadOptions, 'log'>,
  threadOptions: ThreadedRuntimeOptions & { logFields?: Record<string, unknown>; quiet?: boolean } = {},
): Promise<ThreadedRuntime> {
  const args: ThreadLoadArgs = { versionDir, options: { fastPath: true, ...options }, logFields: threadOptions.logFields, quiet: threadOptions.quiet };
  return ThreadedRuntime.load({ module: new URL('./index.js', import.meta.url).href, factory: 'loadInThread', args }, threadOptions);
}
