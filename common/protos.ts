/**
 * Loads modelgate's own `.proto` files (under `<repo>/protos/`) into protobufjs reflection roots.
 *
 * Files and their imports are named relative to the protos directory, e.g.
 * `tensorflow_serving/config/model_server_config.proto`. Field names keep their snake_case spelling
 * (`keepCase`) so reflected names match the text format and TF Serving's JSON. Imports of
 * `google/protobuf/*.proto` are served by protobufjs's bundled well-known types (same layout as ours).
 */

import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/** Absolute path of `<repo>/protos` (this module runs from `<repo>/dist/common/protos.js`). */
export const PROTOS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'protos');

/**
 * Roots a SavedModel worker needs on every load (reading the model, its checkpoint, compiling the
 * fast path). `npm run build` stores each as protobufjs JSON (`writePrecompiledRoots`), which loads
 * several times faster than parsing the `.proto` text in each model thread.
 */
export const PRECOMPILED_ROOTS: readonly string[][] = [
  ['tensorflow/core/protobuf/saved_model.proto'],
  ['tensorflow/core/protobuf/tensor_bundle.proto'],
  ['onnx/onnx.proto'],
];

/** `<repo>/dist/protos-json`: build output, never committed. */
const PRECOMPILED_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'protos-json');

interface PrecompiledRoot {
  /** Every `.proto` file the root was parsed from (relative to PROTOS_DIR) → sha256 of its text. */
  sources: Record<string, string>;
  root: protobuf.INamespace;
}

const precompiledFile = (files: string[]) => path.join(PRECOMPILED_DIR, `${files.join('+').replace(/[^A-Za-z0-9_+-]/g, '_')}.json`);
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** The stored root for `files`, or undefined when there is none or a source `.proto` has changed since. */
function readPrecompiled(files: string[]): protobuf.Root | undefined {
  let stored: PrecompiledRoot;
  try {
    stored = JSON.parse(readFileSync(precompiledFile(files), 'utf8')) as PrecompiledRoot;
    for (const [file, hash] of Object.entries(stored.sources)) if (sha256(path.join(PROTOS_DIR, file)) !== hash) return undefined;
  } catch {
    return undefined;
  }
  return protobuf.Root.fromJSON(stored.root);
}

/** Writes PRECOMPILED_ROOTS as JSON (the build runs it); returns the files written. */
export function writePrecompiledRoots(): string[] {
  mkdirSync(PRECOMPILED_DIR, { recursive: true });
  return PRECOMPILED_ROOTS.map((files) => {
    const root = parseRoot(files);
    const sources: Record<string, string> = {};
    for (const file of root.files) {
      // Well-known types come from protobufjs itself, not from PROTOS_DIR.
      const rel = path.relative(PROTOS_DIR, file);
      if (!rel.startsWith('..') && !path.isAbsolute(rel)) sources[rel] = sha256(file);
    }
    const out = precompiledFile(files);
    writeFileSync(out, JSON.stringify({ sources, root: root.toJSON() } satisfies PrecompiledRoot));
    return out;
  });
}

function parseRoot(files: string[]): protobuf.Root {
  const root = new protobuf.Root();
  // Every name, whether a top-level file or an import inside a file, resolves under PROTOS_DIR.
  root.resolvePath = (_origin: string, target: string): string =>
    path.isAbsolute(target) ? target : path.join(PROTOS_DIR, target);
  root.loadSync(files, { keepCase: true });
  return root;
}

const cache = new Map<string, protobuf.Root>();

/**
 * Returns a resolved Root holding `files` (paths relative to PROTOS_DIR, or absolute) and their
 * imports. Roots are cached per file list; callers must not mutate them.
 */
export function loadProtoRoot(files: string[]): protobuf.Root {
  const key = files.join('\n');
  const cached = cache.get(key);
  if (cached) return cached;

  const root = readPrecompiled(files) ?? parseRoot(files);
  root.resolveAll();
  cache.set(key, root);
  return root;
}
