/**
 * The worker's JSON reader: parses request bodies the way TF Serving's rapidjson setup does
 * (`kParseIterativeFlag | kParseNanAndInfFlag | kParseStopWhenDoneFlag`, UTF-8, no comments):
 *
 * - `NaN`, `Inf`, `Infinity` (each optionally signed) are numbers;
 * - parsing stops after the first complete value, so trailing bytes are ignored;
 * - nesting depth is bounded only by memory (explicit container stack, no recursion);
 * - a NUL byte ends the input, as rapidjson's memory stream reads it;
 * - errors are INVALID_ARGUMENT `JSON Parse error: <rapidjson English message> at offset: <byte offset>`,
 *   with rapidjson's messages and offsets. An empty body is TF's own check, `JSON Parse error: The
 *   document is empty` (no period, no offset); whitespace only reaches rapidjson, which says
 *   `The document is empty. at offset: <n>`.
 *
 * Value representation (chosen for the hot path: large arrays of numbers stay plain JS numbers):
 *
 * | JSON                                          | JS                                   |
 * |-----------------------------------------------|--------------------------------------|
 * | integer literal within ±(2^53-1)              | number (Number.isInteger is true)    |
 * | integer literal in int64 ∪ uint64 range       | bigint                               |
 * | integer literal outside both (rapidjson: double) | JsonDecimal                       |
 * | decimal literal (`.`/exponent) with an integral value | JsonDecimal                  |
 * | decimal literal with a fractional value, NaN, ±Inf | number (Number.isInteger is false) |
 * | string                                        | string (decoded from UTF-8)          |
 * | object                                        | null-prototype object                |
 * | array                                         | array                                |
 *
 * So a plain number that passes Number.isInteger always came from an integer literal, which is the
 * distinction TF needs (int dtypes reject `1.0`; tf.Example puts `1` in int64_list and `1.0` in
 * float_list). `-0` as an integer literal reads as 0, as rapidjson stores it as int 0.
 *
 * Known differences from rapidjson: decimals are rounded correctly (rapidjson's default mode can be one
 * ulp off); invalid UTF-8 inside strings becomes U+FFFD (rapidjson passes the bytes through); for
 * duplicate object keys the first one is kept (as rapidjson's FindMember sees it), and JS orders
 * integer-like keys first when iterating.
 */
import { invalidArgument } from '../../common/errors.js';

/** A decimal JSON literal (or an integer literal too large for int64/uint64) whose value is integral. */
export class JsonDecimal {
  constructor(readonly value: number) {}
}

export type JsonValue = null | boolean | number | bigint | string | JsonDecimal | JsonValue[] | JsonObject;
/** A parsed JSON object. It has no prototype, so keys like `__proto__` are plain data. */
export interface JsonObject {
  [key: string]: JsonValue;
}

/** rapidjson's `GetParseError_En` messages for the errors this reader can produce. */
export const ParseMessage = {
  documentEmpty: 'The document is empty.',
  valueInvalid: 'Invalid value.',
  objectMissName: 'Missing a name for object member.',
  objectMissColon: 'Missing a colon after a name of object member.',
  objectMissCommaOrCurlyBracket: "Missing a comma or '}' after an object member.",
  arrayMissCommaOrSquareBracket: "Missing a comma or ']' after an array element.",
  stringUnicodeEscapeInvalidHex: 'Incorrect hex digit after \\u escape in string.',
  stringUnicodeSurrogateInvalid: 'The surrogate pair in string is invalid.',
  stringEscapeInvalid: 'Invalid escape character in string.',
  stringMissQuotationMark: 'Missing a closing quotation mark in string.',
  stringInvalidEncoding: 'Invalid encoding in string.',
  numberTooBig: 'Number too big to be stored in double.',
  numberMissFraction: 'Miss fraction part in number.',
  numberMissExponent: 'Miss exponent in number.',
} as const;

// Byte values.
const TAB = 0x09, LF = 0x0a, CR = 0x0d, SPACE = 0x20, QUOTE = 0x22, PLUS = 0x2b, COMMA = 0x2c, MINUS = 0x2d,
  DOT = 0x2e, ZERO = 0x30, ONE = 0x31, NINE = 0x39, COLON = 0x3a, UPPER_E = 0x45, UPPER_I = 0x49, UPPER_N = 0x4e,
  LBRACKET = 0x5b, BACKSLASH = 0x5c, RBRACKET = 0x5d, LOWER_E = 0x65, LBRACE = 0x7b, RBRACE = 0x7d;

const POW10: number[] = [];
for (let i = 0, p = 1; i <= 22; i++, p *= 10) POW10.push(p);
const MAX_EXACT_MANTISSA = 9007199254740992; // 2^53
const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

// Parser state. Module-level so the hot helpers stay small and monomorphic; parseJson is not re-entrant
// and resets these before it returns or throws.
const EMPTY = Buffer.alloc(0);
let src: Buffer = EMPTY;
let end = 0;
let pos = 0;
let scratch: Buffer = Buffer.allocUnsafe(256);

function fail(message: string, offset: number): never {
  throw invalidArgument(`JSON Parse error: ${message} at offset: ${offset}`);
}

/** The byte at `p`, or 0 past the end (rapidjson's stream returns NUL there too). */
function byteAt(p: number): number {
  return p < end ? src[p] : 0;
}

function skipWhitespace(): void {
  let p = pos;
  while (p < end) {
    const c = src[p];
    if (c !== SPACE && c !== LF && c !== CR && c !== TAB) break;
    p++;
  }
  pos = p;
}

/** Tokens that cannot start a value: after `[`, `,` or `:` rapidjson reports them as `Invalid value.`. */
function cannotStartValue(c: number): boolean {
  return c === 0 || c === RBRACKET || c === RBRACE || c === COMMA || c === COLON;
}

function toBuffer(input: Buffer | Uint8Array | string): Buffer {
  if (typeof input === 'string') return Buffer.from(input, 'utf8');
  if (Buffer.isBuffer(input)) return input;
  return Buffer.from(input.buffer, input.byteOffset, input.byteLength);
}

const limits = { maxDepth: 100_000 };

/**
 * Caps JSON nesting (--max_json_depth). TF Serving's reader has no cap (a test nests 500,000 levels);
 * ours defaults to 100,000, far past any tensor's rank, so a hostile body cannot make the worker build
 * an arbitrarily deep structure.
 */
export function setJsonLimits(next: { maxDepth?: number }): void {
  if (next.maxDepth !== undefined) limits.maxDepth = next.maxDepth;
}

function tooDeep(): never {
  throw invalidArgument(`JSON Parse error: nesting deeper than ${limits.maxDepth} levels at offset: ${pos}`);
}

/** Parses one JSON document; see the module comment for the value representation and error format. */
export function parseJson(input: Buffer | Uint8Array | string): JsonValue {
  const buf = toBuffer(input);
  if (buf.length === 0) throw invalidArgument('JSON Parse error: The document is empty');
  src = buf;
  end = buf.length;
  pos = 0;
  try {
    // rapidjson's UTF-8 memory stream drops each byte of a BOM independently.
    if (byteAt(pos) === 0xef) pos++;
    if (byteAt(pos) === 0xbb) pos++;
    if (byteAt(pos) === 0xbf) pos++;
    return parseDocument();
  } finally {
    src = EMPTY;
    end = 0;
    if (scratch.length > 1 << 20) scratch = Buffer.allocUnsafe(256); // don't pin a huge escaped string
  }
}

function parseDocument(): JsonValue {
  skipWhitespace();
  let c = byteAt(pos);
  if (cannotStartValue(c)) fail(ParseMessage.documentEmpty, pos);

  // The container being filled, and its parents. For objects, `key` is the member being parsed.
  const parents: Array<JsonValue[] | JsonObject> = [];
  const parentKeys: string[] = [];
  let array: JsonValue[] | null = null;
  let object: JsonObject | null = null;
  let key = '';
  let value: JsonValue;

  outer: for (;;) {
    // A value starts at `pos` (whitespace skipped, first byte known to be a value token).
    c = src[pos];
    if (c === LBRACKET) {
      pos++;
      skipWhitespace();
      c = byteAt(pos);
      if (c === RBRACKET) {
        pos++;
        value = [];
      } else {
        if (cannotStartValue(c)) fail(ParseMessage.valueInvalid, pos);
        if (array !== null || object !== null) {
          parents.push((array ?? object)!);
          parentKeys.push(key);
          if (parents.length > limits.maxDepth) tooDeep();
        }
        array = [];
        object = null;
        continue;
      }
    } else if (c === LBRACE) {
      pos++;
      skipWhitespace();
      if (byteAt(pos) === RBRACE) {
        pos++;
        value = Object.create(null) as JsonObject;
      } else {
        const name = parseMemberName();
        if (array !== null || object !== null) {
          parents.push((array ?? object)!);
          parentKeys.push(key);
          if (parents.length > limits.maxDepth) tooDeep();
        }
        object = Object.create(null) as JsonObject;
        array = null;
        key = name;
        continue;
      }
    } else {
      value = parseScalar(c);
    }

    // A value is complete: store it, then close as many containers as the input closes.
    for (;;) {
      if (array !== null) {
        array.push(value);
        if (!continueArray(array)) continue outer;
        value = array;
      } else if (object !== null) {
        if (!(key in object)) object[key] = value;
        skipWhitespace();
        c = byteAt(pos);
        if (c === COMMA) {
          pos++;
          skipWhitespace();
          key = parseMemberName();
          continue outer;
        }
        if (c !== RBRACE) fail(ParseMessage.objectMissCommaOrCurlyBracket, pos);
        pos++;
        value = object;
      } else {
        return value; // StopWhenDone: whatever follows the root value is ignored.
      }
      // Pop to the parent container.
      const parent = parents.pop();
      if (parent === undefined) {
        array = null;
        object = null;
      } else if (Array.isArray(parent)) {
        array = parent;
        object = null;
        parentKeys.pop();
      } else {
        object = parent;
        array = null;
        key = parentKeys.pop()!;
      }
    }
  }
}

/**
 * After an array element: reads `, element` pairs while the elements are numbers (the hot path for
 * tensors), then either consumes the closing `]` (returns true) or stops at the start of a
 * non-number element (returns false).
 */
function continueArray(array: JsonValue[]): boolean {
  for (;;) {
    skipWhitespace();
    let c = byteAt(pos);
    if (c === COMMA) {
      pos++;
      skipWhitespace();
      c = byteAt(pos);
      if ((c >= ZERO && c <= NINE) || c === MINUS) {
        array.push(parseNumber());
        continue;
      }
      if (cannotStartValue(c)) fail(ParseMessage.valueInvalid, pos);
      return false;
    }
    if (c !== RBRACKET) fail(ParseMessage.arrayMissCommaOrSquareBracket, pos);
    pos++;
    return true;
  }
}

/**
 * At `pos` (whitespace skipped) expects `"name"`, `:` and the start of a value; leaves `pos` at the value.
 */
function parseMemberName(): string {
  if (byteAt(pos) !== QUOTE) fail(ParseMessage.objectMissName, pos);
  const name = parseString();
  skipWhitespace();
  if (byteAt(pos) !== COLON) fail(ParseMessage.objectMissColon, pos);
  pos++;
  skipWhitespace();
  if (cannotStartValue(byteAt(pos))) fail(ParseMessage.valueInvalid, pos);
  return name;
}

function parseScalar(c: number): JsonValue {
  switch (c) {
    case QUOTE:
      return parseString();
    case 0x74: // t
      parseLiteral('rue');
      return true;
    case 0x66: // f
      parseLiteral('alse');
      return false;
    case 0x6e: // n
      parseLiteral('ull');
      return null;
    default:
      return parseNumber();
  }
}

/** After the first letter of `true`/`false`/`null`; rapidjson reports the offset of the first mismatch. */
function parseLiteral(rest: string): void {
  let p = pos + 1;
  for (let i = 0; i < rest.length; i++, p++) {
    if (byteAt(p) !== rest.charCodeAt(i)) fail(ParseMessage.valueInvalid, p);
  }
  pos = p;
}

function isDigit(c: number): boolean {
  return c >= ZERO && c <= NINE;
}

function parseNumber(): JsonValue {
  const start = pos;
  let p = pos;
  let c = p < end ? src[p] : 0;
  let minus = false;
  if (c === MINUS) {
    minus = true;
    c = ++p < end ? src[p] : 0;
  }
  const intStart = p;
  let mantissa = 0; // exact while <= 2^53 (it only grows)
  if (c === ZERO) {
    c = ++p < end ? src[p] : 0;
  } else if (c >= ONE && c <= NINE) {
    do {
      mantissa = mantissa * 10 + (c - ZERO);
      c = ++p < end ? src[p] : 0;
    } while (c >= ZERO && c <= NINE);
  } else if (c === UPPER_N || c === UPPER_I) {
    pos = p;
    return parseNanOrInfinity(minus);
  } else {
    fail(ParseMessage.valueInvalid, p);
  }
  const intEnd = p;

  let decimal = false;
  let fracDigits = 0;
  if (c === DOT) {
    c = ++p < end ? src[p] : 0;
    if (!isDigit(c)) fail(ParseMessage.numberMissFraction, p);
    decimal = true;
    do {
      mantissa = mantissa * 10 + (c - ZERO);
      fracDigits++;
      c = ++p < end ? src[p] : 0;
    } while (c >= ZERO && c <= NINE);
  }
  let exponent = 0;
  if (c === LOWER_E || c === UPPER_E) {
    decimal = true;
    c = ++p < end ? src[p] : 0;
    let expMinus = false;
    if (c === PLUS) {
      c = ++p < end ? src[p] : 0;
    } else if (c === MINUS) {
      expMinus = true;
      c = ++p < end ? src[p] : 0;
    }
    if (!isDigit(c)) fail(ParseMessage.numberMissExponent, p);
    do {
      exponent = exponent * 10 + (c - ZERO);
      c = ++p < end ? src[p] : 0;
    } while (c >= ZERO && c <= NINE);
    if (expMinus) {
      exponent = -exponent;
    } else if (exponent > 308 && exponent > 308 - rapidjsonFractionExponent(minus, intStart, intEnd, fracDigits)) {
      // rapidjson rejects a positive exponent above 308 minus the fraction digits it kept.
      fail(ParseMessage.numberTooBig, start);
    }
  }
  pos = p;

  if (!decimal) {
    if (mantissa < MAX_EXACT_MANTISSA) return minus ? 0 - mantissa : mantissa;
    return bigIntegerLiteral(start, p);
  }

  let value: number;
  const scale = exponent - fracDigits;
  if (mantissa <= MAX_EXACT_MANTISSA && scale >= -22 && scale <= 22) {
    // Exact mantissa and exact power of ten: one correctly rounded operation.
    value = scale >= 0 ? mantissa * POW10[scale] : mantissa / POW10[-scale];
    if (minus) value = -value;
  } else {
    value = Number(src.toString('latin1', start, p));
  }
  if (value === Infinity || value === -Infinity) fail(ParseMessage.numberTooBig, start);
  return Number.isInteger(value) ? new JsonDecimal(value) : value;
}

/** An integer literal that may not fit a double exactly: int64/uint64 stay exact as bigint. */
function bigIntegerLiteral(start: number, stop: number): JsonValue {
  const text = src.toString('latin1', start, stop);
  const big = BigInt(text);
  if (big >= INT64_MIN && big <= UINT64_MAX) {
    return big >= -9007199254740991n && big <= 9007199254740991n ? Number(big) : big;
  }
  // Outside int64 and uint64 rapidjson stores a double.
  const value = Number(text);
  if (!Number.isFinite(value)) fail(ParseMessage.numberTooBig, start);
  return new JsonDecimal(value);
}

/**
 * rapidjson's `expFrac` for a number with a positive exponent: minus the count of fraction digits it
 * folded into the significand (it stops after 17 significant digits, and ignores the fraction when the
 * integer part already overflowed 64 bits). Only consulted when the exponent exceeds 308.
 */
function rapidjsonFractionExponent(minus: boolean, intStart: number, intEnd: number, fracDigits: number): number {
  const intText = src.toString('latin1', intStart, intEnd);
  let significand = BigInt(intText);
  if (significand > (minus ? 2n ** 63n : UINT64_MAX)) return 0;
  let significantDigits = intText.length - 1;
  let expFrac = 0;
  let p = intEnd + 1;
  const fracEnd = p + fracDigits;
  for (; p < fracEnd; p++) {
    if (significand > 9007199254740991n) break;
    significand = significand * 10n + BigInt(src[p] - ZERO);
    expFrac--;
    if (significand !== 0n) significantDigits++;
  }
  let d = Number(significand);
  for (; p < fracEnd; p++) {
    if (significantDigits < 17) {
      d = d * 10 + (src[p] - ZERO);
      expFrac--;
      if (d > 0) significantDigits++;
    }
  }
  return expFrac;
}

/** `NaN`, `Inf` or `Infinity` at `pos` (after an optional minus, which NaN ignores). */
function parseNanOrInfinity(minus: boolean): number {
  let p = pos;
  let value: number | undefined;
  if (src[p] === UPPER_N) {
    p++;
    if (byteAt(p) === 0x61 /* a */) {
      p++;
      if (byteAt(p) === UPPER_N) {
        p++;
        value = NaN;
      }
    }
  } else {
    p++; // I
    if (byteAt(p) === 0x6e /* n */) {
      p++;
      if (byteAt(p) === 0x66 /* f */) {
        p++;
        value = minus ? -Infinity : Infinity;
        if (byteAt(p) === 0x69 /* i */) {
          p++;
          for (const ch of [0x6e, 0x69, 0x74, 0x79] /* nity */) {
            if (byteAt(p) !== ch) fail(ParseMessage.valueInvalid, p);
            p++;
          }
        }
      }
    }
  }
  if (value === undefined) fail(ParseMessage.valueInvalid, p);
  pos = p;
  return value;
}

/** Parses the string starting at the quote at `pos`. */
function parseString(): string {
  const start = pos + 1;
  let p = start;
  let ascii = true;
  for (;;) {
    if (p >= end) fail(ParseMessage.stringMissQuotationMark, p);
    const c = src[p];
    if (c === QUOTE) break;
    if (c === BACKSLASH) return parseEscapedString(start, p);
    if (c < SPACE) fail(c === 0 ? ParseMessage.stringMissQuotationMark : ParseMessage.stringInvalidEncoding, p);
    if (c >= 0x80) ascii = false;
    p++;
  }
  pos = p + 1;
  if (ascii) {
    const n = p - start;
    if (n <= 12) {
      let s = '';
      for (let i = start; i < p; i++) s += String.fromCharCode(src[i]);
      return s;
    }
    return src.toString('latin1', start, p);
  }
  return src.toString('utf8', start, p);
}

function ensureScratch(size: number): void {
  if (scratch.length < size) scratch = Buffer.allocUnsafe(Math.max(size, scratch.length * 2));
}

const SIMPLE_ESCAPES: Record<number, number> = {
  0x22: 0x22, 0x5c: 0x5c, 0x2f: 0x2f, 0x62: 0x08, 0x66: 0x0c, 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09,
};

/** The slow path of parseString: unescapes into the scratch buffer, then decodes UTF-8 once. */
function parseEscapedString(start: number, firstEscape: number): string {
  // Unescaped output is never longer than the input it came from.
  ensureScratch(end - start);
  const out = scratch;
  let n = firstEscape - start;
  src.copy(out, 0, start, firstEscape);
  let p = firstEscape;
  for (;;) {
    if (p >= end) fail(ParseMessage.stringMissQuotationMark, p);
    const c = src[p];
    if (c === QUOTE) break;
    if (c === BACKSLASH) {
      const escapeOffset = p;
      const e = byteAt(p + 1);
      const simple = SIMPLE_ESCAPES[e];
      if (simple !== undefined) {
        out[n++] = simple;
        p += 2;
        continue;
      }
      if (e !== 0x75 /* u */) fail(ParseMessage.stringEscapeInvalid, escapeOffset);
      let codepoint = readHex4(p + 2, escapeOffset);
      p += 6;
      if (codepoint >= 0xd800 && codepoint <= 0xdfff) {
        if (codepoint > 0xdbff || byteAt(p) !== BACKSLASH || byteAt(p + 1) !== 0x75) {
          fail(ParseMessage.stringUnicodeSurrogateInvalid, escapeOffset);
        }
        const low = readHex4(p + 2, escapeOffset);
        if (low < 0xdc00 || low > 0xdfff) fail(ParseMessage.stringUnicodeSurrogateInvalid, escapeOffset);
        codepoint = (((codepoint - 0xd800) << 10) | (low - 0xdc00)) + 0x10000;
        p += 6;
      }
      n = putUtf8(out, n, codepoint);
      continue;
    }
    if (c < SPACE) fail(c === 0 ? ParseMessage.stringMissQuotationMark : ParseMessage.stringInvalidEncoding, p);
    out[n++] = c;
    p++;
  }
  pos = p + 1;
  return out.toString('utf8', 0, n);
}

function readHex4(p: number, escapeOffset: number): number {
  let value = 0;
  for (let i = 0; i < 4; i++) {
    const c = byteAt(p + i);
    let digit: number;
    if (c >= ZERO && c <= NINE) digit = c - ZERO;
    else if (c >= 0x41 && c <= 0x46) digit = c - 0x41 + 10;
    else if (c >= 0x61 && c <= 0x66) digit = c - 0x61 + 10;
    else fail(ParseMessage.stringUnicodeEscapeInvalidHex, escapeOffset);
    value = (value << 4) | digit;
  }
  return value;
}

function putUtf8(out: Buffer, n: number, cp: number): number {
  if (cp < 0x80) {
    out[n++] = cp;
  } else if (cp < 0x800) {
    out[n++] = 0xc0 | (cp >> 6);
    out[n++] = 0x80 | (cp & 0x3f);
  } else if (cp < 0x10000) {
    out[n++] = 0xe0 | (cp >> 12);
    out[n++] = 0x80 | ((cp >> 6) & 0x3f);
    out[n++] = 0x80 | (cp & 0x3f);
  } else {
    out[n++] = 0xf0 | (cp >> 18);
    out[n++] = 0x80 | ((cp >> 12) & 0x3f);
    out[n++] = 0x80 | ((cp >> 6) & 0x3f);
    out[n++] = 0x80 | (cp & 0x3f);
  }
  return n;
}

// ---- Helpers for consumers of parsed values ----

export type JsonTypeName = 'Null' | 'False' | 'True' | 'Object' | 'Array' | 'String' | 'Number';

/** rapidjson's type names as TF Serving prints them in error messages. */
export function jsonTypeName(v: JsonValue): JsonTypeName {
  if (v === null) return 'Null';
  switch (typeof v) {
    case 'boolean':
      return v ? 'True' : 'False';
    case 'number':
    case 'bigint':
      return 'Number';
    case 'string':
      return 'String';
    default:
      if (v instanceof JsonDecimal) return 'Number';
      return Array.isArray(v) ? 'Array' : 'Object';
  }
}

/** True for JSON objects (not arrays, not numbers). */
export function isJsonObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof JsonDecimal);
}

export function isJsonNumber(v: JsonValue | undefined): v is number | bigint | JsonDecimal {
  return typeof v === 'number' || typeof v === 'bigint' || v instanceof JsonDecimal;
}

/** True when the value came from an integer literal (rapidjson's `IsInt64() || IsUint64()`). */
export function isJsonInteger(v: JsonValue | undefined): v is number | bigint {
  return typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v));
}

/** The numeric value as a double (rapidjson's GetDouble). */
export function jsonNumberValue(v: number | bigint | JsonDecimal): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  return v.value;
}
