/**
 * Generates modelgate's example ONNX model repository, deterministically.
 *
 *   node dist/scripts/make-example-models.js [outDir]     (default outDir: <project root>/models)
 *
 * Layout written (TF Serving style `<base>/<model>/<version>/`):
 *   half_plus_two/1/model.onnx   y = 0.5 * x + 2, `x` has no shape (any rank)
 *   add_sub/1/model.onnx         result_add = input_x + input_y, result_sub = input_x - input_y, [batch,2]
 *   mlp/1/model.onnx             784 -> 256 -> 256 -> 10 MLP with ReLU + Softmax, weights seed 1
 *   mlp/2/model.onnx             same architecture, weights seed 2
 *
 * Files whose content is already identical are left alone; one line is printed per file written.
 * The generators are also exported for tests (including fixtures that are not part of the repo).
 */
import { mkdir, readFile, realpath, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type ElemTypeName, type Shape, floatAttr, graph, intAttr } from "./onnx-builder.js";

/** Symbolic name used for the unknown leading (batch) dimension of add_sub and mlp. */
export const BATCH_DIM = "batch";

export const MLP_INPUT_SIZE = 784;
export const MLP_HIDDEN_SIZE = 256;
export const MLP_OUTPUT_SIZE = 10;

// ---------------------------------------------------------------------------------------------
// Deterministic random numbers

/** mulberry32: a 32-bit-state PRNG returning floats in [0, 1). Integer ops only, so portable. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` values uniform in [-limit, limit). */
function uniform(rand: () => number, count: number, limit: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (rand() * 2 - 1) * limit;
  return out;
}

/** Glorot/Xavier-uniform weights for a [fanIn, fanOut] matrix. */
function glorotUniform(rand: () => number, fanIn: number, fanOut: number): Float32Array {
  return uniform(rand, fanIn * fanOut, Math.sqrt(6 / (fanIn + fanOut)));
}

// ---------------------------------------------------------------------------------------------
// Model generators

function halfPlusTwoGraph(shape: Shape) {
  return graph("half_plus_two")
    .input("x", "float", shape)
    .initializer("a", [0.5], [])
    .initializer("b", [2], [])
    .node("Mul", ["x", "a"], ["ax"], {}, { name: "mul_a" })
    .node("Add", ["ax", "b"], ["y"], {}, { name: "add_b" })
    .output("y", "float", shape);
}

/** y = 0.5 * x + 2 with float input `x` whose type has no shape, so any rank is accepted. */
export function makeHalfPlusTwo(): Uint8Array {
  return halfPlusTwoGraph(undefined).build({ docString: "y = 0.5 * x + 2" });
}

/** half_plus_two with a declared shape on `x` and `y` (e.g. `[]`, `[3]`, `["batch", 1]`, `[-1]`). */
export function makeHalfPlusTwoWithShape(shape: Shape): Uint8Array {
  return halfPlusTwoGraph(shape).build({ docString: "y = 0.5 * x + 2" });
}

/** result_add = input_x + input_y, result_sub = input_x - input_y, all float32 [batch, 2]. */
export function makeAddSub(): Uint8Array {
  const shape = [BATCH_DIM, 2];
  return graph("add_sub")
    .input("input_x", "float", shape)
    .input("input_y", "float", shape)
    .node("Add", ["input_x", "input_y"], ["result_add"], {}, { name: "add" })
    .node("Sub", ["input_x", "input_y"], ["result_sub"], {}, { name: "sub" })
    .output("result_add", "float", shape)
    .output("result_sub", "float", shape)
    .build({ docString: "result_add = input_x + input_y; result_sub = input_x - input_y" });
}

/**
 * An MLP images[batch,784] -> Gemm+ReLU (256) -> Gemm+ReLU (256) -> Gemm (10) -> Softmax ->
 * probabilities[batch,10]. Weights are Glorot-uniform and biases small uniform, from mulberry32(seed).
 * `hidden` changes the two hidden widths (the benches use 1024 for a compute-bound model).
 */
export function makeMlp(seed: number, hidden = MLP_HIDDEN_SIZE): Uint8Array {
  const rand = mulberry32(seed);
  const sizes = [MLP_INPUT_SIZE, hidden, hidden, MLP_OUTPUT_SIZE];
  const g = graph("mlp").input("images", "float", [BATCH_DIM, MLP_INPUT_SIZE]);
  let current = "images";
  for (let layer = 0; layer < sizes.length - 1; layer++) {
    const fanIn = sizes[layer]!;
    const fanOut = sizes[layer + 1]!;
    const w = `dense${layer + 1}/kernel`;
    const b = `dense${layer + 1}/bias`;
    g.initializer(w, glorotUniform(rand, fanIn, fanOut), [fanIn, fanOut]);
    g.initializer(b, uniform(rand, fanOut, 0.05), [fanOut]);
    const isLast = layer === sizes.length - 2;
    const pre = isLast ? "logits" : `dense${layer + 1}/pre`;
    g.node(
      "Gemm",
      [current, w, b],
      [pre],
      { alpha: floatAttr(1), beta: floatAttr(1), transA: intAttr(0), transB: intAttr(0) },
      { name: `dense${layer + 1}` },
    );
    if (!isLast) {
      const act = `dense${layer + 1}/relu`;
      g.node("Relu", [pre], [act], {}, { name: `relu${layer + 1}` });
      current = act;
    }
  }
  g.node("Softmax", ["logits"], ["probabilities"], { axis: intAttr(-1) }, { name: "softmax" });
  g.output("probabilities", "float", [BATCH_DIM, MLP_OUTPUT_SIZE]);
  return g.build({ docString: `784-${hidden}-${hidden}-10 MLP, mulberry32 seed ${seed}`, modelVersion: seed });
}

/** The dtypes covered by `makeAllDtypesIdentity`, in input/output order. */
export const ALL_IDENTITY_DTYPES = [
  "float16",
  "float",
  "double",
  "int8",
  "int16",
  "int32",
  "int64",
  "uint8",
  "uint16",
  "uint32",
  "uint64",
  "bool",
  "string",
] as const satisfies readonly ElemTypeName[];

export type IdentityDtype = (typeof ALL_IDENTITY_DTYPES)[number];

/**
 * Test fixture: inputs `in_<t>` of shape [unknown] (a Dimension with no value) for every dtype t in
 * `ALL_IDENTITY_DTYPES`, outputs `out_<t>` = Identity(in_<t>), plus `out_string_bytes` =
 * Identity(in_string).
 */
export function makeAllDtypesIdentity(): Uint8Array {
  const shape = [-1];
  const g = graph("all_dtypes_identity");
  for (const t of ALL_IDENTITY_DTYPES) g.input(`in_${t}`, t, shape);
  for (const t of ALL_IDENTITY_DTYPES) {
    g.node("Identity", [`in_${t}`], [`out_${t}`], {}, { name: `identity_${t}` });
  }
  g.node("Identity", ["in_string"], ["out_string_bytes"], {}, { name: "identity_string_bytes" });
  for (const t of ALL_IDENTITY_DTYPES) g.output(`out_${t}`, t, shape);
  g.output("out_string_bytes", "string", shape);
  return g.build({ docString: "Identity for every supported tensor dtype" });
}

// ---------------------------------------------------------------------------------------------
// Writing the repository

export interface ExampleModelFile {
  /** Path relative to the repository root, with `/` separators. */
  readonly relPath: string;
  readonly bytes: Uint8Array;
}

/** Every file of the example model repository, in a fixed order. */
export function exampleModelFiles(): ExampleModelFile[] {
  return [
    { relPath: "half_plus_two/1/model.onnx", bytes: makeHalfPlusTwo() },
    { relPath: "add_sub/1/model.onnx", bytes: makeAddSub() },
    { relPath: "mlp/1/model.onnx", bytes: makeMlp(1) },
    { relPath: "mlp/2/model.onnx", bytes: makeMlp(2) },
  ];
}

export interface WriteResult {
  readonly path: string;
  readonly written: boolean;
  readonly size: number;
}

async function sameContent(file: string, bytes: Uint8Array): Promise<boolean> {
  try {
    const existing = await readFile(file);
    return Buffer.compare(existing, bytes) === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

/**
 * Write the example repository under `outDir`, skipping files whose content is already identical.
 * `log` is called once per file actually written.
 */
export async function writeExampleModels(
  outDir: string,
  log: (line: string) => void = () => {},
): Promise<WriteResult[]> {
  const results: WriteResult[] = [];
  for (const { relPath, bytes } of exampleModelFiles()) {
    const file = path.join(outDir, ...relPath.split("/"));
    const written = !(await sameContent(file, bytes));
    if (written) {
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, bytes);
      log(`wrote ${file} (${bytes.length} bytes)`);
    }
    results.push({ path: file, written, size: bytes.length });
  }
  return results;
}

/** `<project root>/models`, the project root being two levels above dist/scripts/. */
export function defaultOutDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "models");
}

/** Whether the module at `moduleUrl` is the script node was started with (not one imported by it). */
export async function isMainModule(moduleUrl: string): Promise<boolean> {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return (await realpath(entry)) === (await realpath(fileURLToPath(moduleUrl)));
  } catch {
    return false;
  }
}

if (await isMainModule(import.meta.url)) {
  const outDir = path.resolve(process.argv[2] ?? defaultOutDir());
  try {
    await writeExampleModels(outDir, (line) => console.log(line));
  } catch (err) {
    console.error(`make-example-models: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}
