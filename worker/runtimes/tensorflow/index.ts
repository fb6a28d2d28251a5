/** The `tensorflow` platform runtime and the helpers the worker needs around it. */
import { loadProtoRoot, PRECOMPILED_ROOTS } from '../../../common/protos.js';
import { TensorFlowRuntime, type TensorFlowLoadOptions } from './tensorflow-runtime.js';

export { TensorFlowRuntime, INTERPRETER_BACKEND, type TensorFlowLoadOptions } from './tensorflow-runtime.js';
export { ONNX_BACKEND } from './fast-path.js';
export { serializeExamples, decodeExample, type Example, type Feature } from './example.js';
export { signatureDefsJson, DEFAULT_TAGS } from './saved-model.js';

export interface ThreadLoadArgs {
  versionDir: string;
  options: Omit<TensorFlowLoadOptions, 'log'>;
  /** Fields added to every log line (e.g. model and version). */
  logFields?: Record<string, unknown>;
  /** No log lines. */
  quiet?: boolean;
}

/** Run by a prestarted model thread (threaded-runtime.ts) before its model is named: the protobuf roots every load reads. */
export function prewarm(): void {
  for (const files of PRECOMPILED_ROOTS) loadProtoRoot(files);
}

/**
 * Factory run inside the model thread (see threaded-runtime.ts). Logs with the project's logger: why a
 * signature stays on the interpreter at info, a compiled signature at debug (the gateway already logs
 * every signature's backend when the version becomes available). The logger is imported after the
 * load, so a cold thread's load does not wait for it.
 */
export async function loadInThread(args: ThreadLoadArgs): Promise<TensorFlowRuntime> {
  const lines: Array<[string, Record<string, unknown>]> = [];
  const runtime = await TensorFlowRuntime.load(args.versionDir, { ...args.options, log: (msg, fields) => lines.push([msg, fields]) });
  if (!args.quiet && lines.length > 0) {
    void import('../../../common/logger.js').then(({ logger }) => {
      const log = logger.child(args.logFields ?? {});
      for (const [msg, fields] of lines) {
        if (fields.reason) log.info(fields, msg);
        else log.debug(fields, msg);
      }
    });
  }
  return runtime;
}

export { loadThreadedTensorFlowRuntime } from './threaded.js';
