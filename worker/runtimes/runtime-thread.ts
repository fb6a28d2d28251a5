/**
 * Thread entry for ThreadedRuntime: loads a Runtime with the factory named in `workerData`, reports
 * `ready` (or `failed`), then runs requests strictly one after another in arrival order, and closes
 * the runtime and ends the thread on `close`. Output buffers are transferred, not copied.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Tensor } from '../codec/tensor.js';
import type { Runtime } from './runtime.js';
import { serializeError, type FromThread, type ThreadedRuntimeSpec, type ThreadPreload, type ToThread } from './threaded-runtime.js';

const port = parentPort!;
const data = workerData as ThreadedRuntimeSpec | ThreadPreload;

function post(msg: FromThread, transfer: ArrayBuffer[] = []): void {
  try {
    port.postMessage(msg, transfer);
  } catch {
    // Buffers that cannot be detached (e.g. owned by a native addon) are copied instead.
    port.postMessage(msg);
  }
}

/** Buffers of the outputs' typed arrays, each taken whole (views into a larger buffer are copied first). */
function transferables(outputs: Record<string, Tensor>): ArrayBuffer[] {
  const seen = new Set<ArrayBuffer>();
  for (const t of Object.values(outputs)) {
    if (Array.isArray(t.data)) continue;
    let d = t.data as Exclude<Tensor['data'], Uint8Array[]>;
    if (!(d.buffer instanceof ArrayBuffer) || d.byteOffset !== 0 || d.byteLength !== d.buffer.byteLength || seen.has(d.buffer)) {
      d = d.slice() as typeof d;
      t.data = d;
    }
    seen.add(d.buffer as ArrayBuffer);
  }
  return [...seen];
}

/**
 * Prestarted (`workerData.preload`): imports the module and runs its `prewarm` export while waiting
 * for the `load` message that names the model. Failures here are left for `load` to report.
 */
async function nextSpec(): Promise<ThreadedRuntimeSpec> {
  if (!('preload' in data)) return data;
  const spec = new Promise<ThreadedRuntimeSpec>((resolve) => {
    port.once('message', (msg: ToThread) => resolve((msg as Extract<ToThread, { type: 'load' }>).spec));
  });
  try {
    const mod = (await import(data.preload)) as { prewarm?: () => Promise<void> | void };
    await mod.prewarm?.();
  } catch {
    // load() imports the module again and reports what fails.
  }
  return spec;
}

async function load(spec: ThreadedRuntimeSpec): Promise<Runtime | undefined> {
  try {
    const mod = (await import(spec.module)) as Record<string, (args: unknown) => Promise<Runtime>>;
    const factory = mod[spec.factory];
    if (typeof factory !== 'function') throw new Error(`${spec.module} exports no function ${spec.factory}`);
    return await factory(spec.args);
  } catch (err) {
    post({ type: 'failed', error: serializeError(err) });
    port.close();
    return undefined;
  }
}

function serve(runtime: Runtime): void {
  const info = (runtime as unknown as { info?: Record<string, unknown> }).info ?? {};
  post({ type: 'ready', signatures: runtime.signatures, backends: runtime.backends, info });

  const handle = async (msg: ToThread): Promise<void> => {
    if (msg.type === 'run') {
      try {
        const outputs = await runtime.run(msg.signature, msg.inputs, msg.outputs);
        post({ type: 'result', id: msg.id, outputs }, transferables(outputs));
      } catch (err) {
        post({ type: 'error', id: msg.id, error: serializeError(err) });
      }
      return;
    }
    if (msg.type === 'close') {
      await runtime.close().catch(() => {});
      post({ type: 'closed' });
      port.close();
    }
  };
  let queue: Promise<void> = Promise.resolve();
  port.on('message', (msg: ToThread) => {
    queue = queue.then(() => handle(msg));
  });
}

const loaded = await load(await nextSpec());
if (loaded) serve(loaded);
