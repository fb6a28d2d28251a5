/**
 * String tensors are bytes, and no runtime may answer with bytes other than the ones it was given or
 * its model produced:
 * - ONNX (onnxruntime-node carries strings as NUL-terminated UTF-8 text): inputs it would alter are
 *   refused with INVALID_ARGUMENT naming the input; valid UTF-8 passes unchanged; an output that may
 *   stand for bytes the model holds but onnxruntime-node replaced is refused with DATA_LOSS;
 * - TensorFlow SavedModels (our interpreter, directly and on its model thread) keep arbitrary bytes,
 *   NUL included, through Identity and StringJoin; string signatures never take the ONNX fast path.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { Code, ServingError } from '../../common/errors.js';
import type { Tensor } from '../../worker/codec/tensor.js';
import { OnnxRuntime } from '../../worker/runtimes/onnx-runtime.js';
import { loadThreadedTensorFlowRuntime, TensorFlowRuntime } from '../../worker/runtimes/tensorflow/index.js';
import { attr, SavedModelBuilder } from '../../worker/runtimes/tensorflow/saved-model-writer.js';
import { graph } from '../../scripts/onnx-builder.js';
import { writeSavedModel } from '../../scripts/make-example-savedmodel.js';

const OPTS = { intraOpThreads: 1, interOpThreads: 1 };
/** The bytes of the issue: not UTF-8, a NUL inside, a cut-off sequence at the end. */
const BINARY = Uint8Array.from([0xff, 0x00, 0x62, 0x69, 0x6e, 0xc3]);
const utf8 = (s: string) => new TextEncoder().encode(s);
const strings = (values: Uint8Array[]): Tensor => ({ dtype: 'DT_STRING', shape: [values.length], data: values });
const hex = (t: Tensor | undefined) => (t!.data as Uint8Array[]).map((b) => Buffer.from(b).toString('hex'));

const temps: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'modelgate-strings-'));
  temps.push(dir);
  return dir;
}
after(async () => {
  for (const d of temps) await rm(d, { recursive: true, force: true });
});

async function onnxModel(bytes: Uint8Array): Promise<OnnxRuntime> {
  const dir = path.join(await tempDir(), '1');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'model.onnx'), bytes);
  return OnnxRuntime.load(dir, OPTS);
}

/** `y = Identity(x)` and `z = Identity(c)` for a string initializer `c` holding `constant`. */
function stringModel(constant: Uint8Array[]): Uint8Array {
  const g = graph('strings');
  g.input('x', 'string', [-1]);
  g.tensorInitializer({ name: 'c', dims: [constant.length], data_type: 8, string_data: constant });
  g.node('Identity', ['x'], ['y']);
  g.node('Identity', ['c'], ['z']);
  g.output('y', 'string', [-1]);
  g.output('z', 'string', [constant.length]);
  return g.build();
}

describe('ONNX string tensors', () => {
  it('valid UTF-8 goes through unchanged', async () => {
    const rt = await onnxModel(stringModel([utf8('plain')]));
    const sent = [utf8('hello'), utf8(''), utf8('héllo ✓ \u{1F600}'), utf8('\uFFFD')];
    const out = await rt.run('serving_default', { x: strings(sent) });
    assert.deepEqual(hex(out.y), hex(strings(sent)));
    await rt.close();
  });

  it('bytes onnxruntime-node would alter are refused with INVALID_ARGUMENT naming the input', async () => {
    const rt = await onnxModel(stringModel([utf8('plain')]));
    const cases: Array<[Uint8Array, RegExp]> = [
      [BINARY, /NUL byte \(at byte 1\)/],
      [utf8('a\0b'), /NUL byte \(at byte 1\)/],
      [Uint8Array.from([0x61, 0xff, 0xfe]), /not valid UTF-8/],
      [Uint8Array.from([0xc3]), /not valid UTF-8/],
    ];
    for (const [bytes, reason] of cases) {
      const inputs = { x: strings([utf8('fine'), bytes]) };
      for (const attempt of [() => rt.run('serving_default', inputs), async () => rt.checkInputs('serving_default', inputs)]) {
        await assert.rejects(attempt, (err: unknown) => {
          assert.ok(err instanceof ServingError, String(err));
          assert.equal(err.code, Code.INVALID_ARGUMENT);
          assert.match(err.message, /^Input 'x' element 1 /);
          assert.match(err.message, reason);
          return true;
        });
      }
    }
    await rt.close();
  });

  it('a model holding bytes that are not UTF-8: an output onnxruntime-node replaced is DATA_LOSS, not OK', async () => {
    const rt = await onnxModel(stringModel([BINARY]));
    await assert.rejects(rt.run('serving_default', { x: strings([utf8('a')]) }, ['z']), (err: unknown) => {
      assert.ok(err instanceof ServingError, String(err));
      assert.equal(err.code, Code.DATA_LOSS);
      assert.match(err.message, /^Output 'z' element 0 .*initializer c/);
      return true;
    });
    // Outputs with no U+FFFD cannot have been altered, and still answer.
    assert.deepEqual(hex((await rt.run('serving_default', { x: strings([utf8('a')]) }, ['y'])).y), ['61']);
    await rt.close();
  });

  it('a model holding NULs in valid UTF-8 returns them intact', async () => {
    const rt = await onnxModel(stringModel([utf8('a\0b'), utf8('\0')]));
    assert.deepEqual(hex((await rt.run('serving_default', { x: strings([utf8('a')]) }, ['z'])).z), ['610062', '00']);
    await rt.close();
  });
});

describe('SavedModel string tensors (interpreter)', () => {
  /** `same = Identity(s)`, `joined = StringJoin(s, "\xfe\0")` with separator "|". */
  async function stringSavedModel(): Promise<string> {
    const m = new SavedModelBuilder();
    m.signature('serving_default', {
      method: 'tensorflow/serving/predict',
      inputs: { s: { dtype: 'DT_STRING', shape: [-1] } },
      outputs: { same: { dtype: 'DT_STRING', shape: [-1] }, joined: { dtype: 'DT_STRING', shape: [-1] } },
      body: (f, { s }) => {
        const suffix = f.const({ dtype: 'DT_STRING', shape: [], data: [Uint8Array.from([0xfe, 0x00])] }, 'suffix');
        return {
          same: f.op('Identity', [s!], { T: attr.type('DT_STRING') }),
          joined: f.op('StringJoin', [s!, suffix], { N: attr.int(2), separator: attr.str('|') }),
        };
      },
    });
    const dir = path.join(await tempDir(), '1');
    await writeSavedModel(dir, m.build());
    return dir;
  }

  const sent = [BINARY, utf8(''), Uint8Array.from([0, 0, 0x80])];
  const expected = {
    same: sent.map((b) => Buffer.from(b).toString('hex')),
    joined: sent.map((b) => `${Buffer.from(b).toString('hex')}7cfe00`),
  };

  it('keeps arbitrary bytes, NUL included, and stays off the ONNX fast path', async () => {
    const dir = await stringSavedModel();
    const rt = await TensorFlowRuntime.load(dir, { ...OPTS, fastPath: true });
    assert.equal(rt.backends.serving_default, 'interpreter');
    assert.match(rt.fastPathReport.serving_default!, /strings/);
    const out = await rt.run('serving_default', { s: strings(sent) });
    assert.deepEqual({ same: hex(out.same), joined: hex(out.joined) }, expected);
    await rt.close();
  });

  it('keeps them on the model thread too (what a worker serves)', async () => {
    const dir = await stringSavedModel();
    const rt = await loadThreadedTensorFlowRuntime(dir, OPTS, { quiet: true });
    try {
      const out = await rt.run('serving_default', { s: strings(sent) });
      assert.deepEqual({ same: hex(out.same), joined: hex(out.joined) }, expected);
    } finally {
      await rt.close();
    }
  });
});
