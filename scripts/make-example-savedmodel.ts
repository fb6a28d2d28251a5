/**
 * Generates the example repository's TensorFlow SavedModel, deterministically, without TensorFlow:
 *
 *   node dist/scripts/make-example-savedmodel.js [outDir]     (default outDir: <project root>/models)
 *
 * writes `tf_half_plus_two/1/` (saved_model.pb + a variables/ checkpoint with a = 0.5, b = 2):
 *   serving_default   x float32 [-1] → y = a·x + b
 *   regress_x_to_y    serialized tf.Examples {x: float} → outputs [-1]       (ParseExampleV2)
 *   classify_x_to_y   serialized tf.Examples {x: float} → scores [-1, 1]     (ParseExampleV2)
 *
 * The layout is TF2's (resource variables, signature functions, a restore function; see
 * worker/runtimes/tensorflow/saved-model-writer.ts). The other generators here (a Keras-like Dense
 * MLP and a small conv net) feed tests and `bench/savedmodel.ts`; they are not part of the repository.
 * Files whose content is already identical are left alone; one line is printed per file written.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  attr,
  SavedModelBuilder,
  savedModelFileList,
  tensors,
  type FunctionBuilder,
  type SavedModelFiles,
} from '../worker/runtimes/tensorflow/saved-model-writer.js';
import { defaultOutDir, isMainModule, mulberry32 } from './make-example-models.js';

const PREDICT = 'tensorflow/serving/predict';
const F32 = attr.type('DT_FLOAT');

/** Dense float features parsed from serialized tf.Examples with ParseExampleV2 (no defaults: required). */
function parseDenseFloats(f: FunctionBuilder, serialized: string, keys: string[], shapes: number[][]): string[] {
  const empty = f.const(tensors.str([], [0]), 'ParseExample/Const');
  const names = f.const(tensors.str([], [0]), 'ParseExample/names');
  const dense = f.const(tensors.str(keys, [keys.length]), 'ParseExample/dense_keys');
  const defaults = keys.map(() => f.const(tensors.f32([], [0]), 'ParseExample/Const'));
  return f.node('ParseExampleV2', [serialized, names, empty, dense, empty, ...defaults], {
    Tdense: attr.types(keys.map(() => 'DT_FLOAT')),
    dense_shapes: attr.shapes(shapes),
    num_sparse: attr.int(0),
    sparse_types: attr.types([]),
    ragged_value_types: attr.types([]),
    ragged_split_types: attr.types([]),
  }, { name: 'ParseExample/ParseExampleV2', outArg: 'dense_values', outputs: keys.length });
}

/** half_plus_two as TF Serving's test model defines it, in TF2 layout. */
export function makeTfHalfPlusTwo(): SavedModelFiles {
  const m = new SavedModelBuilder();
  const a = m.variable('a', tensors.f32([0.5], []));
  const b = m.variable('b', tensors.f32([2], []));
  const halfPlusTwo = (f: FunctionBuilder, x: string, read: (v: typeof a) => string) =>
    f.op('AddV2', [f.op('Mul', [read(a), x], { T: F32 }), read(b)], { T: F32 });
  m.signature('serving_default', {
    method: PREDICT,
    inputs: { x: { dtype: 'DT_FLOAT', shape: [-1] } },
    outputs: { y: { dtype: 'DT_FLOAT', shape: [-1] } },
    body: (f, { x }, read) => ({ y: halfPlusTwo(f, x!, read) }),
  });
  m.signature('regress_x_to_y', {
    method: 'tensorflow/serving/regress',
    inputs: { inputs: { dtype: 'DT_STRING', shape: [-1] } },
    outputs: { outputs: { dtype: 'DT_FLOAT', shape: [-1] } },
    body: (f, { inputs }, read) => {
      const [x] = parseDenseFloats(f, inputs!, ['x'], [[]]);
      return { outputs: halfPlusTwo(f, x!, read) };
    },
  });
  m.signature('classify_x_to_y', {
    method: 'tensorflow/serving/classify',
    inputs: { inputs: { dtype: 'DT_STRING', shape: [-1] } },
    outputs: { scores: { dtype: 'DT_FLOAT', shape: [-1, 1] } },
    body: (f, { inputs }, read) => {
      const [x] = parseDenseFloats(f, inputs!, ['x'], [[1]]);
      return { scores: halfPlusTwo(f, x!, read) };
    },
  });
  return m.build();
}

// ------------------------------------------------------------------------------------------------
// Keras-like models for tests and benchmarks

function glorot(rand: () => number, shape: number[], fanIn: number, fanOut: number) {
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  const n = shape.reduce((p, q) => p * q, 1);
  return tensors.f32(Array.from({ length: n }, () => (rand() * 2 - 1) * limit), shape);
}

function smallUniform(rand: () => number, n: number, limit = 0.05) {
  return tensors.f32(Array.from({ length: n }, () => (rand() * 2 - 1) * limit), [n]);
}

/**
 * A Keras Sequential of Dense layers, as `model.save` exports it: `dense_input` [-1, sizes[0]] →
 * MatMul + BiasAdd (+ Relu; Softmax on the last layer) → `dense_<n>` [-1, sizes.at(-1)].
 */
export function makeDenseMlp(sizes: number[], seed: number): SavedModelFiles {
  const rand = mulberry32(seed);
  const m = new SavedModelBuilder();
  const layers = sizes.slice(1).map((out, i) => {
    const prefix = i === 0 ? 'dense' : `dense_${i}`;
    return { prefix, kernel: m.variable(`${prefix}/kernel`, glorot(rand, [sizes[i]!, out], sizes[i]!, out)), bias: m.variable(`${prefix}/bias`, smallUniform(rand, out)) };
  });
  const last = layers[layers.length - 1]!.prefix;
  m.signature('serving_default', {
    method: PREDICT,
    inputs: { dense_input: { dtype: 'DT_FLOAT', shape: [-1, sizes[0]!] } },
    outputs: { [last]: { dtype: 'DT_FLOAT', shape: [-1, sizes[sizes.length - 1]!] } },
    body: (f, { dense_input }, read) => {
      let h = dense_input!;
      layers.forEach((l, i) => {
        const mm = f.op('MatMul', [h, read(l.kernel)], { T: F32, transpose_a: attr.bool(false), transpose_b: attr.bool(false) }, { name: `${l.prefix}/MatMul` });
        h = f.op('BiasAdd', [mm, read(l.bias)], { T: F32, data_format: attr.str('NHWC') }, { name: `${l.prefix}/BiasAdd` });
        h = i < layers.length - 1 ? f.op('Relu', [h], { T: F32 }, { name: `${l.prefix}/Relu` }) : f.op('Softmax', [h], { T: F32 }, { name: `${l.prefix}/Softmax` });
      });
      return { [last]: h };
    },
  });
  return m.build();
}

/**
 * A small Keras-like conv net on 28×28×1 images: Conv2D 3×3×16 SAME + ReLU → MaxPool 2 → Conv2D
 * 3×3×32 VALID + ReLU → MaxPool 2 → Flatten (Shape/StridedSlice/Pack/Reshape, as older Keras lowers it)
 * → Dense 10 → Softmax.
 */
export function makeConvNet(seed: number): SavedModelFiles {
  const rand = mulberry32(seed);
  const m = new SavedModelBuilder();
  const k1 = m.variable('conv2d/kernel', glorot(rand, [3, 3, 1, 16], 9, 144));
  const b1 = m.variable('conv2d/bias', smallUniform(rand, 16));
  const k2 = m.variable('conv2d_1/kernel', glorot(rand, [3, 3, 16, 32], 144, 288));
  const b2 = m.variable('conv2d_1/bias', smallUniform(rand, 32));
  const kd = m.variable('dense/kernel', glorot(rand, [6 * 6 * 32, 10], 1152, 10));
  const bd = m.variable('dense/bias', smallUniform(rand, 10));
  const I32 = attr.type('DT_INT32');
  m.signature('serving_default', {
    method: PREDICT,
    inputs: { conv2d_input: { dtype: 'DT_FLOAT', shape: [-1, 28, 28, 1] } },
    outputs: { dense: { dtype: 'DT_FLOAT', shape: [-1, 10] } },
    body: (f, { conv2d_input }, read) => {
      const conv = (x: string, k: typeof k1, b: typeof b1, padding: string, name: string) => {
        const c = f.op('Conv2D', [x, read(k)], {
          T: F32, strides: attr.ints([1, 1, 1, 1]), padding: attr.str(padding), data_format: attr.str('NHWC'),
          dilations: attr.ints([1, 1, 1, 1]), explicit_paddings: attr.ints([]), use_cudnn_on_gpu: attr.bool(true),
        }, { name: `${name}/Conv2D` });
        return f.op('Relu', [f.op('BiasAdd', [c, read(b)], { T: F32, data_format: attr.str('NHWC') }, { name: `${name}/BiasAdd` })], { T: F32 }, { name: `${name}/Relu` });
      };
      const pool = (x: string, name: string) =>
        f.op('MaxPool', [x], { T: F32, ksize: attr.ints([1, 2, 2, 1]), strides: attr.ints([1, 2, 2, 1]), padding: attr.str('VALID'), data_format: attr.str('NHWC') }, { name });
      let h = pool(conv(conv2d_input!, k1, b1, 'SAME', 'conv2d'), 'max_pooling2d/MaxPool');
      h = pool(conv(h, k2, b2, 'VALID', 'conv2d_1'), 'max_pooling2d_1/MaxPool');
      const shape = f.op('Shape', [h], { T: F32, out_type: I32 }, { name: 'flatten/Shape' });
      const i32 = (v: number[]) => f.const(tensors.i32(v, [v.length]), 'flatten/strided_slice/stack');
      const batch = f.op('StridedSlice', [shape, i32([0]), i32([1]), i32([1])], {
        T: I32, Index: I32, begin_mask: attr.int(0), end_mask: attr.int(0), ellipsis_mask: attr.int(0), new_axis_mask: attr.int(0), shrink_axis_mask: attr.int(1),
      }, { name: 'flatten/strided_slice' });
      const target = f.op('Pack', [batch, f.const(tensors.i32([-1], []), 'flatten/Reshape/shape/1')], { T: I32, N: attr.int(2), axis: attr.int(0) }, { name: 'flatten/Reshape/shape' });
      h = f.op('Reshape', [h, target], { T: F32, Tshape: I32 }, { name: 'flatten/Reshape' });
      const mm = f.op('MatMul', [h, read(kd)], { T: F32, transpose_a: attr.bool(false), transpose_b: attr.bool(false) }, { name: 'dense/MatMul' });
      const logits = f.op('BiasAdd', [mm, read(bd)], { T: F32, data_format: attr.str('NHWC') }, { name: 'dense/BiasAdd' });
      return { dense: f.op('Softmax', [logits], { T: F32 }, { name: 'dense/Softmax' }) };
    },
  });
  return m.build();
}

// ------------------------------------------------------------------------------------------------
// Writing

async function sameContent(file: string, bytes: Uint8Array): Promise<boolean> {
  try {
    return Buffer.compare(await readFile(file), bytes) === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Writes a SavedModel into `dir` (created if needed), skipping files whose content is identical. */
export async function writeSavedModel(dir: string, files: SavedModelFiles, log: (line: string) => void = () => {}): Promise<void> {
  for (const { relPath, bytes } of savedModelFileList(files)) {
    const file = path.join(dir, ...relPath.split('/'));
    if (await sameContent(file, bytes)) continue;
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, bytes);
    log(`wrote ${file} (${bytes.length} bytes)`);
  }
}

/** The SavedModels of the example repository: folder (relative, `/`-separated) → files. */
export function exampleSavedModels(): Array<{ relDir: string; files: SavedModelFiles }> {
  return [{ relDir: 'tf_half_plus_two/1', files: makeTfHalfPlusTwo() }];
}

if (await isMainModule(import.meta.url)) {
  const outDir = path.resolve(process.argv[2] ?? defaultOutDir());
  try {
    for (const { relDir, files } of exampleSavedModels()) {
      await writeSavedModel(path.join(outDir, ...relDir.split('/')), files, (line) => console.log(line));
    }
  } catch (err) {
    console.error(`make-example-savedmodel: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}
