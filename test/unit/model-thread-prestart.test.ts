/**
 * A model thread started ahead of its model (threaded-runtime.ts prestartThread, triggered by
 * worker/runtimes/tensorflow/prestart.ts for `--model_platform=tensorflow` workers): the next load of
 * that module takes the thread over and serves as a fresh thread would; a prestart whose import
 * failed still reports the load's own error; and a real worker process serves a SavedModel with it.
 */
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { prestartedModules, prestartThread, ThreadedRuntime } from '../../worker/runtimes/threaded-runtime.js';
import { loadThreadedTensorFlowRuntime } from '../../worker/runtimes/tensorflow/index.js';
import { platformFlag, TENSORFLOW_THREAD_MODULE } from '../../worker/runtimes/tensorflow/prestart.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const TF_HALF_PLUS_TWO = path.join(ROOT, 'models/tf_half_plus_two/1');
const OPTS = { intraOpThreads: 1, interOpThreads: 1 };

describe('model thread started ahead of its model', () => {
  it('reads --model_platform in both flag spellings', () => {
    assert.equal(platformFlag(['--model_name=m', '--model_platform=tensorflow']), 'tensorflow');
    assert.equal(platformFlag(['--model_platform', 'tensorflow', '--port=0']), 'tensorflow');
    assert.equal(platformFlag(['--model_platform=onnx']), 'onnx');
    assert.equal(platformFlag(['--model_name=m']), undefined);
  });

  it('the next load of the module takes the prestarted thread and serves from it', async () => {
    prestartThread(TENSORFLOW_THREAD_MODULE);
    prestartThread(TENSORFLOW_THREAD_MODULE); // a second call keeps the one thread
    assert.deepEqual(prestartedModules(), [TENSORFLOW_THREAD_MODULE]);
    const rt = await loadThreadedTensorFlowRuntime(TF_HALF_PLUS_TWO, OPTS, { quiet: true });
    try {
      assert.deepEqual(prestartedModules(), []);
      const out = await rt.run('serving_default', { x: { dtype: 'DT_FLOAT', shape: [3], data: Float32Array.of(1, 2, 5) } });
      assert.deepEqual(Array.from(out.y!.data as Float32Array), [2.5, 3, 4.5]);
    } finally {
      await rt.close();
    }
  });

  it('a prestart whose module fails to import still reports the load error', async () => {
    const broken = `data:text/javascript,${encodeURIComponent('throw new Error("no such runtime here")')}`;
    prestartThread(broken);
    await assert.rejects(ThreadedRuntime.load({ module: broken, factory: 'load', args: {} }), /no such runtime here/);
    assert.deepEqual(prestartedModules(), []);
  });

  it('a tensorflow worker process (prestarting its thread) loads and reports ready', async () => {
    const main = path.join(ROOT, 'dist/worker/main.js');
    const msg = await new Promise<{ type: string; backends?: Record<string, string>; code?: number; message?: string }>((resolve, reject) => {
      const child = fork(main, ['--model_name=t', '--model_version=1', '--model_platform', 'tensorflow', `--version_path=${TF_HALF_PLUS_TWO}`, '--port=0'], {
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        serialization: 'advanced',
      });
      child.once('message', (m) => {
        child.kill('SIGKILL');
        resolve(m as never);
      });
      child.once('error', reject);
    });
    assert.equal(msg.type, 'ready', msg.message);
    assert.equal(msg.backends?.serving_default, 'onnxruntime');
  });
});

