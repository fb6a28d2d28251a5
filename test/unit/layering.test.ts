/**
 * The gateway and the worker share only common/: no module under gateway/ imports from worker/, none
 * under worker/ imports from gateway/, and common/ imports from neither (the worker protocol's
 * contract lives in common/worker-protocol.ts).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sources(rel));
    else if (entry.name.endsWith('.ts')) out.push(rel);
  }
  return out;
}

/** The top-level folders a source file imports from (relative imports only). */
function importedFolders(file: string): Set<string> {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  const folders = new Set<string>();
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
    const target = path.normalize(path.join(path.dirname(file), m[1] as string));
    folders.add(target.split(path.sep)[0] as string);
  }
  return folders;
}

test('gateway/, worker/ and common/ import across only through common/', () => {
  const forbidden: Record<string, string[]> = { gateway: ['worker'], worker: ['gateway'], common: ['gateway', 'worker'] };
  const violations: string[] = [];
  for (const [dir, banned] of Object.entries(forbidden)) {
    for (const file of sources(dir)) {
      for (const folder of importedFolders(file)) if (banned.includes(folder)) violations.push(`${file} imports from ${folder}/`);
    }
  }
  assert.deepEqual(violations, []);
});
