/**
 * Writes the README's flag table from `FLAG_SPECS` (gateway/flags.ts), so the two cannot drift:
 * `npm run docs:flags` rewrites the lines between the marker comments; `--check` only reports
 * (exit 1) when README.md differs from what it would write.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FLAG_SPECS } from '../gateway/flags.js';
import { isMainModule } from './make-example-models.js';

export const BEGIN_MARKER = '<!-- flags:begin (generated from FLAG_SPECS by `npm run docs:flags`; edit gateway/flags.ts) -->';
export const END_MARKER = '<!-- flags:end -->';

/** Text as a Markdown table cell: pipes escaped, so `tensorflow|onnx` stays in one cell. */
const cell = (text: string) => text.replace(/\|/g, '\\|');

/** The table: one row per flag, in FLAG_SPECS order. */
export function flagTable(): string {
  const rows = Object.entries(FLAG_SPECS as Record<string, { kind: string; default: string; help: string }>).map(
    ([name, spec]) => `| \`--${name}\` | ${spec.default === '' ? '' : `\`${cell(spec.default)}\``} | ${spec.kind} | ${cell(spec.help)} |`,
  );
  return ['| flag | default | type | |', '|---|---|---|---|', ...rows].join('\n');
}

/** `readme` with the text between the markers replaced by the table; throws if a marker is missing. */
export function withFlagTable(readme: string): string {
  const begin = readme.indexOf(BEGIN_MARKER);
  const end = readme.indexOf(END_MARKER);
  if (begin < 0 || end < begin) throw new Error(`README.md needs the markers ${BEGIN_MARKER} and ${END_MARKER}, in that order`);
  return `${readme.slice(0, begin + BEGIN_MARKER.length)}\n${flagTable()}\n${readme.slice(end)}`;
}

export function readmePath(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'README.md');
}

if (await isMainModule(import.meta.url)) {
  const file = readmePath();
  const before = await readFile(file, 'utf8');
  const after = withFlagTable(before);
  if (process.argv.includes('--check')) {
    if (after !== before) {
      process.stderr.write(`${file}: the flag table differs from FLAG_SPECS; run npm run docs:flags\n`);
      process.exitCode = 1;
    }
  } else if (after !== before) {
    await writeFile(file, after);
    process.stdout.write(`rewrote the flag table in ${file}\n`);
  }
}
