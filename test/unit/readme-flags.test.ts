/**
 * The README's flag table is FLAG_SPECS, written by scripts/docs-flags.ts: a flag added, renamed or
 * re-described in gateway/flags.ts without `npm run docs:flags` fails here.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { FLAG_SPECS } from '../../gateway/flags.js';
import { flagTable, readmePath, withFlagTable } from '../../scripts/docs-flags.js';

test('README.md flag table matches FLAG_SPECS (run npm run docs:flags after changing flags)', async () => {
  const readme = await readFile(readmePath(), 'utf8');
  assert.equal(withFlagTable(readme), readme);
});

test('the generated table has one row per flag, saved_model_tags included', () => {
  const table = flagTable();
  const rows = table.split('\n').slice(2);
  assert.deepEqual(
    rows.map((r) => /^\| `--([a-z0-9_]+)` \|/.exec(r)?.[1]),
    Object.keys(FLAG_SPECS),
  );
  assert.match(table, /^\| `--saved_model_tags` \| `serve` \| string \| /m);
  // A pipe inside a help text stays inside its cell.
  assert.ok(rows.every((r) => r.split(/(?<!\\)\|/).length === 6), rows.find((r) => r.split(/(?<!\\)\|/).length !== 6));
});
