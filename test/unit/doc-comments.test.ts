/**
 * Doc comments sit on the declaration they describe: checked with the TypeScript parser for the ones
 * that had drifted (json-reader's parseJson comment sat on a constant).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import ts from 'typescript';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Top-level declaration name → the text of its doc comment ('' when it has none). */
async function docComments(relPath: string): Promise<Map<string, string>> {
  const text = await readFile(path.join(ROOT, relPath), 'utf8');
  const file = ts.createSourceFile(relPath, text, ts.ScriptTarget.Latest, true);
  const out = new Map<string, string>();
  for (const statement of file.statements) {
    const names = ts.isVariableStatement(statement)
      ? statement.declarationList.declarations.map((d) => d.name.getText(file))
      : 'name' in statement && statement.name ? [(statement.name as ts.Identifier).getText(file)] : [];
    const docs = ts.getJSDocCommentsAndTags(statement).map((d) => d.getText(file));
    for (const name of names) out.set(name, docs.join('\n'));
  }
  return out;
}

test('json-reader: parseJson carries its own doc comment, and the depth limit does not', async () => {
  const docs = await docComments('worker/codec/json-reader.ts');
  assert.match(docs.get('parseJson') ?? '', /Parses one JSON document/);
  assert.doesNotMatch(docs.get('limits') ?? '', /Parses one JSON document/);
  assert.match(docs.get('setJsonLimits') ?? '', /Caps JSON nesting/);
});

test('grpc-api: preProcess carries the classify/regress checks comment, and methodNameCheck does not', async () => {
  const docs = await docComments('worker/grpc-api.ts');
  assert.match(docs.get('preProcess') ?? '', /classify or regress signature checks/);
  assert.doesNotMatch(docs.get('methodNameCheck') ?? '', /signature checks/);
});
