/**
 * Protobuf TEXT FORMAT parser (the syntax of TF Serving's `models.config`), driven by protobufjs
 * reflection so one implementation serves every message type.
 *
 * Why hand-written: protobufjs parses `.proto` schemas and binary/JSON messages but has no text-format
 * support, and TF Serving configs are text format. This follows what protobuf's own TextFormat parser
 * accepts in practice, except that it is stricter about repeats (see below).
 *
 * Contract of `parseTextFormat(text, type, file)`:
 *  - Returns `value`, a plain object keyed by snake_case field names, holding only the fields the text
 *    sets (no defaults are filled in):
 *      string -> string; bytes -> Uint8Array; bool -> boolean; double/float -> number (float is not
 *      rounded to 32 bits; `inf`/`nan` give Infinity/NaN); 32-bit integers -> number;
 *      64-bit integers -> number, after checking the int64/uint64 range AND that the value is a safe
 *      JS integer (|v| <= 2^53-1); otherwise an "out of range" error (modelgate never needs more);
 *      enum -> the value's NAME (a number in the text is mapped to its name; unknown numbers are
 *      rejected); message -> nested plain object; repeated -> array; map -> plain object keyed by
 *      String(key), a missing key/value in an entry taking the type's default, a repeated key
 *      keeping the last entry (as protobuf does); oneof -> just the member that is set.
 *  - Returns `positions`: path -> 1-based line/col where that field's name token starts. Paths look
 *    like `model_config_list.config[1].base_path`, `...version_labels.stable` (the entry), and
 *    `...model_version_policy.specific.versions[0]`. A repeated field's own path points at its first
 *    occurrence; elements written in list form (`[a, b]`) point at the element itself.
 *  - Any syntax or type problem throws TextFormatError (file:line:col of the offending token, plus the
 *    field name where known). Unlike protobuf's default (last one wins), setting a non-repeated field
 *    twice is an error for message fields as well as scalars; a second member of a oneof is an error.
 *  - `[type.googleapis.com/...]` Any expansion and `[ext]` extension names are rejected; an Any field
 *    can still be written plainly as `{ type_url: "..." value: "..." }`.
 * Lexical forms: `#` comments; '...' / "..." strings with C escapes (\n \t \\ \' \" \xHH \NNN \uXXXX) and
 * adjacent-literal concatenation; integers in decimal, 0x hex or leading-0 octal; floats with optional
 * exponent and `f` suffix; a sign is written as `-` only (protobuf rejects `+`, so do we).
 * Columns count UTF-16 code units (identical to characters for ASCII files).
 */

import protobuf from 'protobufjs';

export interface SourcePos {
  line: number;
  col: number;
}

export class TextFormatError extends Error {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  /** Name of the field being parsed when the error occurred, if any. */
  readonly field?: string;
  /** Path (as used in `positions`) of that field, if any. */
  readonly path?: string;
  /** The message without the `file:line:col: ` prefix. */
  readonly detail: string;

  constructor(file: string, pos: SourcePos, detail: string, field?: string, path?: string) {
    super(`${file}:${pos.line}:${pos.col}: ${detail}`);
    this.name = 'TextFormatError';
    this.file = file;
    this.line = pos.line;
    this.col = pos.col;
    this.detail = detail;
    if (field !== undefined) this.field = field;
    if (path !== undefined) this.path = path;
  }
}

export interface ParsedMessage {
  value: Record<string, unknown>;
  positions: Map<string, SourcePos>;
}

export function parseTextFormat(text: string, type: protobuf.Type, file = '<input>'): ParsedMessage {
  const parser = new Parser(new Lexer(text, file), file);
  const value: Record<string, unknown> = {};
  const positions = new Map<string, SourcePos>();
  parser.parseBody(schemaOf(type), value, '', positions, null);
  return { value, positions };
}

// ---------------------------------------------------------------------------------------------------
// Tokenizer

type TokenKind = 'ident' | 'int' | 'float' | 'string' | 'symbol' | 'eof';

interface Token {
  kind: TokenKind;
  /** Raw source text (for strings: including the quotes). */
  text: string;
  line: number;
  col: number;
  /** Decoded bytes of a string literal. */
  bytes?: Uint8Array;
}

const utf8 = new TextEncoder();

const simpleEscapes: Record<string, number> = {
  a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92, "'": 39, '"': 34, '?': 63,
};

const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
const isHex = (c: string | undefined) => c !== undefined && /^[0-9a-fA-F]$/.test(c);
const isOctal = (c: string | undefined) => c !== undefined && c >= '0' && c <= '7';
const isIdentStart = (c: string | undefined) => c !== undefined && /^[A-Za-z_]$/.test(c);
const isIdentPart = (c: string | undefined) => c !== undefined && /^[A-Za-z0-9_]$/.test(c);

class Lexer {
  private i = 0;
  private line = 1;
  private col = 1;
  private lookahead: Token | undefined;

  constructor(
    private readonly src: string,
    private readonly file: string,
  ) {
    if (src.charCodeAt(0) === 0xfeff) this.i = 1; // byte-order mark
  }

  peek(): Token {
    return (this.lookahead ??= this.scan());
  }

  next(): Token {
    const tok = this.peek();
    this.lookahead = undefined;
    return tok;
  }

  private fail(pos: SourcePos, detail: string): never {
    throw new TextFormatError(this.file, pos, detail);
  }

  private advance(): string {
    const c = this.src[this.i++]!;
    if (c === '\n') {
      this.line++;
      this.col = 1;
    } else {
      this.col++;
    }
    return c;
  }

  private skipTrivia(): void {
    while (this.i < this.src.length) {
      const c = this.src[this.i]!;
      if (c === '#') {
        while (this.i < this.src.length && this.src[this.i] !== '\n') this.advance();
      } else if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\v' || c === '\f') {
        this.advance();
      } else {
        return;
      }
    }
  }

  private scan(): Token {
    this.skipTrivia();
    const start = this.i;
    const pos = { line: this.line, col: this.col };
    const c = this.src[this.i];
    if (c === undefined) return { kind: 'eof', text: '', ...pos };
    if (isIdentStart(c)) {
      while (isIdentPart(this.src[this.i])) this.advance();
      return { kind: 'ident', text: this.src.slice(start, this.i), ...pos };
    }
    if (isDigit(c) || (c === '.' && isDigit(this.src[this.i + 1]))) return this.scanNumber(pos);
    if (c === '"' || c === "'") return this.scanString(pos);
    this.advance();
    return { kind: 'symbol', text: c, ...pos };
  }

  private scanNumber(pos: SourcePos): Token {
    const start = this.i;
    const src = this.src;
    let isFloat = false;
    if (src[this.i] === '0' && (src[this.i + 1] === 'x' || src[this.i + 1] === 'X')) {
      this.advance();
      this.advance();
      if (!isHex(src[this.i])) this.fail(pos, '"0x" must be followed by hex digits.');
      while (isHex(src[this.i])) this.advance();
    } else {
      while (isDigit(src[this.i])) this.advance();
      if (src[this.i] === '.') {
        isFloat = true;
        this.advance();
        while (isDigit(src[this.i])) this.advance();
      }
      if (src[this.i] === 'e' || src[this.i] === 'E') {
        isFloat = true;
        this.advance();
        if (src[this.i] === '+' || src[this.i] === '-') this.advance();
        if (!isDigit(src[this.i])) this.fail(pos, '"e" must be followed by exponent.');
        while (isDigit(src[this.i])) this.advance();
      }
      if (src[this.i] === 'f' || src[this.i] === 'F') {
        isFloat = true;
        this.advance();
      }
      const text = src.slice(start, this.i);
      if (!isFloat && text.length > 1 && text[0] === '0' && ![...text].every(isOctal)) {
        this.fail(pos, 'Numbers starting with leading zero must be in octal.');
      }
    }
    if (isIdentPart(src[this.i]) || src[this.i] === '.') {
      this.fail(pos, `Malformed number "${src.slice(start, this.i + 1)}".`);
    }
    return { kind: isFloat ? 'float' : 'int', text: src.slice(start, this.i), ...pos };
  }

  private scanString(pos: SourcePos): Token {
    const start = this.i;
    const src = this.src;
    const quote = this.advance();
    const chunks: Uint8Array[] = [];
    let plain = '';
    const pushByte = (b: number) => {
      chunks.push(utf8.encode(plain), Uint8Array.of(b));
      plain = '';
    };
    for (;;) {
      const c = src[this.i];
      if (c === undefined) this.fail(pos, 'Unterminated string literal.');
      if (c === '\n') this.fail(pos, 'Unterminated string literal (strings cannot span lines).');
      if (c === quote) {
        this.advance();
        break;
      }
      if (c !== '\\') {
        plain += this.advance();
        continue;
      }
      const escPos = { line: this.line, col: this.col };
      this.advance();
      const e = src[this.i];
      if (e === undefined) this.fail(pos, 'Unterminated string literal.');
      if (Object.hasOwn(simpleEscapes, e)) {
        this.advance();
        pushByte(simpleEscapes[e]!);
      } else if (isOctal(e)) {
        let digits = '';
        while (digits.length < 3 && isOctal(src[this.i])) digits += this.advance();
        const v = parseInt(digits, 8);
        if (v > 0xff) this.fail(escPos, `Octal escape "\\${digits}" is out of range.`);
        pushByte(v);
      } else if (e === 'x' || e === 'X') {
        this.advance();
        let digits = '';
        while (digits.length < 2 && isHex(src[this.i])) digits += this.advance();
        if (digits === '') this.fail(escPos, 'Expected hex digits for escape sequence.');
        pushByte(parseInt(digits, 16));
      } else if (e === 'u' || e === 'U') {
        this.advance();
        const want = e === 'u' ? 4 : 8;
        let digits = '';
        while (digits.length < want && isHex(src[this.i])) digits += this.advance();
        const cp = parseInt(digits, 16);
        if (digits.length < want || cp > 0x10ffff) {
          this.fail(escPos, `Invalid Unicode escape "\\${e}${digits}" in string literal.`);
        }
        plain += String.fromCodePoint(cp);
      } else {
        this.fail(escPos, `Invalid escape sequence "\\${e === '\n' ? '\\n' : e}" in string literal.`);
      }
    }
    chunks.push(utf8.encode(plain));
    const size = chunks.reduce((n, ch) => n + ch.length, 0);
    const bytes = new Uint8Array(size);
    let off = 0;
    for (const ch of chunks) {
      bytes.set(ch, off);
      off += ch.length;
    }
    return { kind: 'string', text: src.slice(start, this.i), ...pos, bytes };
  }
}

// ---------------------------------------------------------------------------------------------------
// Schema view over protobufjs reflection (map entries get a synthetic two-field schema)

interface FieldInfo {
  name: string;
  kind: 'scalar' | 'enum' | 'message' | 'map';
  /** Scalar type name (`int64`, `string`, ...) for scalars; unused otherwise. */
  scalar: string;
  repeated: boolean;
  enumType?: protobuf.Enum;
  /** Message schema, or the entry schema for maps. */
  schema?: Schema;
  oneof?: { name: string; members: string[] };
}

interface Schema {
  fullName: string;
  field(name: string): FieldInfo | undefined;
}

const schemas = new WeakMap<protobuf.Type, Schema>();

function schemaOf(type: protobuf.Type): Schema {
  let schema = schemas.get(type);
  if (!schema) {
    const fields = new Map<string, FieldInfo>();
    const fullName = type.fullName.replace(/^\./, '');
    // Fields are converted lazily: message types may be recursive.
    schema = {
      fullName,
      field(name: string): FieldInfo | undefined {
        if (!Object.hasOwn(type.fields, name)) return undefined;
        let info = fields.get(name);
        if (!info) {
          info = fieldInfo(type.fields[name]!, fullName);
          fields.set(name, info);
        }
        return info;
      },
    };
    schemas.set(type, schema);
  }
  return schema;
}

function valueInfo(name: string, typeName: string, resolved: protobuf.ReflectionObject | null): FieldInfo {
  if (resolved instanceof protobuf.Type) {
    return { name, kind: 'message', scalar: '', repeated: false, schema: schemaOf(resolved) };
  }
  if (resolved instanceof protobuf.Enum) {
    return { name, kind: 'enum', scalar: '', repeated: false, enumType: resolved };
  }
  return { name, kind: 'scalar', scalar: typeName, repeated: false };
}

function fieldInfo(field: protobuf.Field, ownerName: string): FieldInfo {
  field.resolve();
  let info: FieldInfo;
  if (field.map) {
    const key = valueInfo('key', (field as unknown as protobuf.MapField).keyType, null);
    const value = valueInfo('value', field.type, field.resolvedType);
    const entryName = field.name.replace(/(?:^|_)([a-z])/g, (_m, ch: string) => ch.toUpperCase());
    const entry: Schema = {
      fullName: `${ownerName}.${entryName}Entry`,
      field: (name) => (name === 'key' ? key : name === 'value' ? value : undefined),
    };
    info = { name: field.name, kind: 'map', scalar: '', repeated: true, schema: entry };
  } else {
    info = { ...valueInfo(field.name, field.type, field.resolvedType), repeated: field.repeated };
  }
  if (field.partOf) info.oneof = { name: field.partOf.name, members: field.partOf.oneof };
  return info;
}

function defaultValue(f: FieldInfo): unknown {
  switch (f.kind) {
    case 'message':
      return {};
    case 'enum':
      return f.enumType!.valuesById[0] ?? Object.keys(f.enumType!.values)[0];
    default:
      if (f.scalar === 'string') return '';
      if (f.scalar === 'bytes') return new Uint8Array();
      if (f.scalar === 'bool') return false;
      return 0;
  }
}

// ---------------------------------------------------------------------------------------------------
// Parser

const INT_RANGES: Record<string, [bigint, bigint]> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  sint32: [-(2n ** 31n), 2n ** 31n - 1n],
  sfixed32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  sint64: [-(2n ** 63n), 2n ** 63n - 1n],
  sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
  fixed64: [0n, 2n ** 64n - 1n],
};
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

const TRUE_WORDS = new Set(['true', 'True', 't']);
const FALSE_WORDS = new Set(['false', 'False', 'f']);

const CLOSER: Record<string, string> = { '{': '}', '<': '>' };

function describe(tok: Token): string {
  if (tok.kind === 'eof') return 'end of input';
  if (tok.kind === 'string') return `string literal ${tok.text}`;
  return `"${tok.text}"`;
}

function joinPath(base: string, name: string): string {
  return base ? `${base}.${name}` : name;
}

/** Where a message body was opened, for unbalanced-delimiter errors. */
interface Opening {
  tok: Token;
  field: string;
  path: string;
}

class Parser {
  constructor(
    private readonly lx: Lexer,
    private readonly file: string,
  ) {}

  private fail(pos: SourcePos, detail: string, field?: string, path?: string): never {
    throw new TextFormatError(this.file, pos, detail, field, path);
  }

  /** Fails on `tok` with "Expected <what>, got <tok>" (or "Unexpected end of input: ..."). */
  private expected(what: string, tok: Token, field?: string, path?: string): never {
    const detail =
      tok.kind === 'eof' ? `Unexpected end of input: expected ${what}` : `Expected ${what}, got ${describe(tok)}`;
    this.fail(tok, detail, field, path);
  }

  private tryConsume(symbol: string): Token | undefined {
    const tok = this.lx.peek();
    return tok.kind === 'symbol' && tok.text === symbol ? this.lx.next() : undefined;
  }

  /**
   * Parses fields into `obj` until the matching closer (or end of input at top level, `open` = null).
   */
  parseBody(
    schema: Schema,
    obj: Record<string, unknown>,
    path: string,
    positions: Map<string, SourcePos>,
    open: Opening | null,
  ): void {
    const closer = open ? CLOSER[open.tok.text]! : null;
    for (;;) {
      const tok = this.lx.peek();
      if (tok.kind === 'eof') {
        if (!open) return;
        this.fail(
          tok,
          `Unexpected end of input: expected "${closer}" to close "${open.field}" opened at ${open.tok.line}:${open.tok.col}`,
          open.field,
          open.path,
        );
      }
      if (tok.kind === 'symbol' && (tok.text === '}' || tok.text === '>')) {
        this.lx.next();
        if (tok.text === closer) return;
        if (!open) this.fail(tok, `Unbalanced "${tok.text}": no open message to close`);
        this.fail(
          tok,
          `Expected "${closer}" to close "${open.field}" opened at ${open.tok.line}:${open.tok.col}, got "${tok.text}"`,
          open.field,
          open.path,
        );
      }
      this.parseField(schema, obj, path, positions);
      if (!this.tryConsume(';')) this.tryConsume(',');
    }
  }

  private parseField(
    schema: Schema,
    obj: Record<string, unknown>,
    path: string,
    positions: Map<string, SourcePos>,
  ): void {
    const nameTok = this.lx.next();
    if (nameTok.kind === 'symbol' && nameTok.text === '[') {
      this.fail(nameTok, 'Extension and Any expansion syntax ("[...]") is not supported');
    }
    if (nameTok.kind !== 'ident') this.expected('field name', nameTok);
    const name = nameTok.text;
    const f = schema.field(name);
    const fieldPath = joinPath(path, name);
    if (!f) this.fail(nameTok, `Message type "${schema.fullName}" has no field named "${name}".`, name, fieldPath);

    if (!f.repeated) {
      if (Object.hasOwn(obj, name)) {
        this.fail(nameTok, `Non-repeated field "${name}" is specified multiple times.`, name, fieldPath);
      }
      const other = f.oneof?.members.find((m) => m !== name && Object.hasOwn(obj, m));
      if (other !== undefined) {
        this.fail(
          nameTok,
          `Field "${name}" is specified along with field "${other}", another member of oneof "${f.oneof!.name}".`,
          name,
          fieldPath,
        );
      }
    }
    if (!positions.has(fieldPath)) positions.set(fieldPath, { line: nameTok.line, col: nameTok.col });

    const isMessage = f.kind === 'message' || f.kind === 'map';
    // ':' is optional before a message value and required before a scalar value.
    const colon = this.tryConsume(':');
    if (!colon && !isMessage) this.expected('":"', this.lx.peek(), name, fieldPath);

    const listOpen = this.tryConsume('[');
    if (listOpen && !f.repeated) {
      this.fail(listOpen, `Field "${name}" is not repeated; list syntax "[...]" is only allowed for repeated fields`, name, fieldPath);
    }
    if (!listOpen) {
      this.parseElement(f, obj, fieldPath, nameTok, positions);
      return;
    }
    if (this.tryConsume(']')) {
      obj[name] ??= f.kind === 'map' ? {} : [];
      return;
    }
    for (;;) {
      this.parseElement(f, obj, fieldPath, this.lx.peek(), positions);
      if (this.tryConsume(']')) return;
      if (!this.tryConsume(',')) this.expected('"," or "]"', this.lx.peek(), name, fieldPath);
    }
  }

  /** Parses one value of field `f` and stores it into `obj`; `at` is the position to record for it. */
  private parseElement(
    f: FieldInfo,
    obj: Record<string, unknown>,
    fieldPath: string,
    at: SourcePos,
    positions: Map<string, SourcePos>,
  ): void {
    const pos = { line: at.line, col: at.col };
    if (f.kind === 'map') {
      const entry: Record<string, unknown> = {};
      const scratch = new Map<string, SourcePos>();
      this.parseMessageValue(f, entry, fieldPath, scratch, fieldPath);
      const keyInfo = f.schema!.field('key')!;
      const valueInfo = f.schema!.field('value')!;
      const key = String(Object.hasOwn(entry, 'key') ? entry.key : defaultValue(keyInfo));
      const map = (obj[f.name] ??= {}) as Record<string, unknown>;
      const entryPath = `${fieldPath}.${key}`;
      if (Object.hasOwn(map, key)) {
        for (const p of [...positions.keys()]) if (p.startsWith(`${entryPath}.`)) positions.delete(p);
      }
      map[key] = Object.hasOwn(entry, 'value') ? entry.value : defaultValue(valueInfo);
      positions.set(entryPath, pos);
      for (const [p, sp] of scratch) {
        const prefix = `${fieldPath}.value.`;
        if (p.startsWith(prefix)) positions.set(`${entryPath}.${p.slice(prefix.length)}`, sp);
      }
      return;
    }

    let elementPath = fieldPath;
    let list: unknown[] | undefined;
    if (f.repeated) {
      list = (obj[f.name] ??= []) as unknown[];
      elementPath = `${fieldPath}[${list.length}]`;
      positions.set(elementPath, pos);
    }
    let value: unknown;
    if (f.kind === 'message') {
      const child: Record<string, unknown> = {};
      this.parseMessageValue(f, child, elementPath, positions, elementPath);
      value = child;
    } else {
      value = this.parseScalar(f, elementPath);
    }
    if (list) list.push(value);
    else obj[f.name] = value;
  }

  /** Parses `{ ... }` or `< ... >` into `target`. */
  private parseMessageValue(
    f: FieldInfo,
    target: Record<string, unknown>,
    path: string,
    positions: Map<string, SourcePos>,
    errorPath: string,
  ): void {
    const open = this.lx.next();
    if (open.kind !== 'symbol' || (open.text !== '{' && open.text !== '<')) {
      this.expected('"{" or "<"', open, f.name, errorPath);
    }
    this.parseBody(f.schema!, target, path, positions, { tok: open, field: f.name, path: errorPath });
  }

  private parseScalar(f: FieldInfo, path: string): unknown {
    if (f.kind === 'enum') return this.parseEnum(f, path);
    switch (f.scalar) {
      case 'string':
        return this.parseString(f, path);
      case 'bytes':
        return this.parseBytes(f, path);
      case 'bool':
        return this.parseBool(f, path);
      case 'double':
      case 'float':
        return this.parseFloat(f, path);
      default:
        return this.parseInteger(f, path);
    }
  }

  private parseString(f: FieldInfo, path: string): string {
    const first = this.lx.peek();
    const bytes = this.parseBytes(f, path);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      this.fail(first, `String field "${f.name}" is not valid UTF-8`, f.name, path);
    }
  }

  /** One or more adjacent string literals, concatenated. */
  private parseBytes(f: FieldInfo, path: string): Uint8Array {
    const tok = this.lx.next();
    if (tok.kind !== 'string') this.expected('string', tok, f.name, path);
    const parts = [tok.bytes!];
    while (this.lx.peek().kind === 'string') parts.push(this.lx.next().bytes!);
    if (parts.length === 1) return parts[0]!;
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }

  private parseBool(f: FieldInfo, path: string): boolean {
    const tok = this.lx.next();
    if (tok.kind === 'ident') {
      if (TRUE_WORDS.has(tok.text)) return true;
      if (FALSE_WORDS.has(tok.text)) return false;
    } else if (tok.kind === 'int') {
      const v = integerValue(tok.text);
      if (v === 0n || v === 1n) return v === 1n;
    } else {
      this.expected('boolean', tok, f.name, path);
    }
    this.fail(tok, `Invalid value for boolean field "${f.name}". Value: "${tok.text}".`, f.name, path);
  }

  private parseFloat(f: FieldInfo, path: string): number {
    const sign = this.tryConsume('-') ? -1 : 1;
    const tok = this.lx.next();
    if (tok.kind === 'int') {
      if (/^0[xX]/.test(tok.text)) this.expected('decimal number', tok, f.name, path);
      return sign * Number(tok.text); // a leading zero is read as decimal here, like protobuf
    }
    if (tok.kind === 'float') return sign * Number(tok.text.replace(/[fF]$/, ''));
    if (tok.kind === 'ident') {
      const word = tok.text.toLowerCase();
      if (word === 'inf' || word === 'infinity') return sign * Infinity;
      if (word === 'nan') return NaN;
    }
    this.expected('number', tok, f.name, path);
  }

  private parseInteger(f: FieldInfo, path: string): number {
    const minus = this.tryConsume('-');
    const tok = this.lx.next();
    if (tok.kind !== 'int') this.expected('integer', tok, f.name, path);
    const v = minus ? -integerValue(tok.text) : integerValue(tok.text);
    const at = minus ?? tok;
    const literal = `${minus ? '-' : ''}${tok.text}`;
    const range = INT_RANGES[f.scalar];
    if (!range) this.fail(at, `Unsupported field type "${f.scalar}"`, f.name, path);
    if (v < range[0] || v > range[1]) {
      this.fail(at, `Integer out of range for ${f.scalar} field "${f.name}": ${literal}`, f.name, path);
    }
    if (v > MAX_SAFE || v < -MAX_SAFE) {
      this.fail(
        at,
        `Integer out of range for ${f.scalar} field "${f.name}": ${literal} exceeds the exactly representable range (±2^53-1)`,
        f.name,
        path,
      );
    }
    return Number(v);
  }

  private parseEnum(f: FieldInfo, path: string): string {
    const e = f.enumType!;
    const minus = this.tryConsume('-');
    const tok = this.lx.next();
    if (tok.kind === 'ident' && !minus) {
      if (Object.hasOwn(e.values, tok.text)) return tok.text;
    } else if (tok.kind === 'int') {
      const n = Number(minus ? -integerValue(tok.text) : integerValue(tok.text));
      if (Object.hasOwn(e.valuesById, n)) return e.valuesById[n]!;
    } else {
      this.expected('enum value name or number', tok, f.name, path);
    }
    const literal = `${minus ? '-' : ''}${tok.text}`;
    this.fail(minus ?? tok, `Unknown enumeration value of "${literal}" for field "${f.name}".`, f.name, path);
  }
}

/** Value of an integer token: hex (0x..), octal (leading 0) or decimal. */
function integerValue(text: string): bigint {
  if (/^0[xX]/.test(text)) return BigInt(text);
  if (text.length > 1 && text.startsWith('0')) return BigInt(`0o${text.slice(1)}`);
  return BigInt(text);
}
