/**
 * The worker's JSON writer: reproduces the bytes TF Serving writes with rapidjson's PrettyWriter
 * (4-space indent) and its `WriteDecimal` float formatting.
 *
 * PrettyWriter layout rules, which PrettyJsonWriter follows exactly:
 * - an object member starts on a new line, indented by the nesting depth × 4; `"key": value`;
 * - an array element starts on a new line too, unless single-line-array mode is on, where elements are
 *   separated by `, ` on one line; an object inside such an array still breaks lines;
 * - a non-empty container's closing bracket goes on its own line at the parent's indent, except `]` in
 *   single-line-array mode; empty containers are `[]` / `{}`.
 * TF switches single-line mode on and off around each row of a row-format response, which is why the
 * `predictions` list's closing `]` sits on its own line.
 *
 * Output is built by string concatenation (V8 ropes), one append per token, with no per-element objects.
 */
import type { JsonValue } from './json-reader.js';
import { JsonDecimal } from './json-reader.js';
import { escapeJsonString } from '../../common/json-string.js';

const INDENTS: string[] = [''];
function indent(depth: number): string {
  while (INDENTS.length <= depth) INDENTS.push(INDENTS[INDENTS.length - 1] + '    ');
  return INDENTS[depth];
}

export class PrettyJsonWriter {
  out = '';
  /** rapidjson's kFormatSingleLineArray, switchable between values as TF does. */
  singleLineArrays = false;
  private readonly inArray: boolean[] = [];
  private readonly counts: number[] = [];
  private depth = 0;

  /** Separator, newline and indent before a value or key, as PrettyWriter::PrettyPrefix writes them. */
  prefix(): void {
    const d = this.depth;
    if (d === 0) return;
    const i = d - 1;
    const count = this.counts[i];
    if (this.inArray[i]) {
      if (this.singleLineArrays) {
        if (count > 0) this.out += ', ';
      } else {
        this.out += count > 0 ? ',\n' + indent(d) : '\n' + indent(d);
      }
    } else if (count % 2 === 0) {
      this.out += count > 0 ? ',\n' + indent(d) : '\n' + indent(d);
    } else {
      this.out += ': ';
    }
    this.counts[i] = count + 1;
  }

  /** A number, `true`, `false`, `null` or other pre-formatted token. */
  raw(text: string): void {
    this.prefix();
    this.out += text;
  }

  string(s: string): void {
    this.prefix();
    this.out += escapeJsonString(s);
  }

  key(s: string): void {
    this.string(s);
  }

  startObject(): void {
    this.prefix();
    this.push(false);
    this.out += '{';
  }

  endObject(): void {
    if (this.pop() > 0) this.out += '\n' + indent(this.depth);
    this.out += '}';
  }

  startArray(): void {
    this.prefix();
    this.push(true);
    this.out += '[';
  }

  endArray(): void {
    if (this.pop() > 0 && !this.singleLineArrays) this.out += '\n' + indent(this.depth);
    this.out += ']';
  }

  private push(array: boolean): void {
    this.inArray[this.depth] = array;
    this.counts[this.depth] = 0;
    this.depth++;
  }

  private pop(): number {
    this.depth--;
    return this.counts[this.depth];
  }
}

// ---- Strings ----

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Bytes as JSON text when they are valid UTF-8, else undefined. (TF Serving writes the raw bytes into
 * the JSON string, which then is not valid JSON; decoding with replacement would answer OK with other
 * bytes. Callers write such values as `{"b64": ...}` instead.)
 */
export function bytesToText(bytes: Uint8Array): string | undefined {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Standard, padded base64 (absl::Base64Escape). */
export function base64Encode(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

// ---- Numbers ----

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

/** The exponent of the lowest set bit of a finite non-zero double: v = odd × 2^result. */
function lowestBitExponent(v: number): number {
  f64[0] = v;
  const lo = u32[0];
  const hi = u32[1];
  const biased = (hi >>> 20) & 0x7ff;
  const e0 = (biased === 0 ? 1 : biased) - 1075;
  if (lo !== 0) return e0 + 31 - Math.clz32(lo & -lo);
  const mantHi = (hi & 0xfffff) | (biased === 0 ? 0 : 0x100000);
  return e0 + 63 - Math.clz32(mantHi & -mantHi);
}

/**
 * C's `%.<P>g` for a finite double, as glibc prints it (exact value, ties to even).
 *
 * JS's toExponential rounds exact ties away from zero, so a tie is detected and undone: the exact
 * decimal expansion of odd × 2^e (e < 0) ends in a 5 at the 10^e digit, so the value sits exactly
 * halfway between two P-digit decimals when it has P+1 significant digits, i.e. when -e = P - X.
 * (With e >= 0 a tie would need more significant digits than a float or double mantissa holds.)
 */
export function formatG(v: number, precision: number): string {
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  const t = v.toExponential(precision - 1);
  let i = 0;
  let negative = false;
  if (t.charCodeAt(0) === 0x2d) {
    negative = true;
    i = 1;
  }
  const ePos = t.indexOf('e', i);
  let digits = precision === 1 ? t[i] : t[i] + t.slice(i + 2, ePos);
  const x = Number(t.slice(ePos + 1));
  let n = digits.length;
  const last = digits.charCodeAt(n - 1) - 0x30;
  if (last % 2 === 1) {
    const e = lowestBitExponent(v);
    if (e < 0 && -e === precision - x) digits = digits.slice(0, n - 1) + String(last - 1);
  }
  while (n > 1 && digits.charCodeAt(n - 1) === 0x30) n--;
  if (n < digits.length) digits = digits.slice(0, n);

  let body: string;
  if (x < -4 || x >= precision) {
    const ax = x < 0 ? -x : x;
    body = digits[0] + (n > 1 ? '.' + digits.slice(1) : '') + (x < 0 ? 'e-' : 'e+') + (ax < 10 ? '0' : '') + ax;
  } else if (x >= 0) {
    body = n > x + 1 ? digits.slice(0, x + 1) + '.' + digits.slice(x + 1) : digits + '0'.repeat(x + 1 - n);
  } else {
    body = '0.' + '0'.repeat(-x - 1) + digits;
  }
  return negative ? '-' + body : body;
}

function withPointZero(s: string): string {
  return s.indexOf('.') < 0 && s.indexOf('e') < 0 ? s + '.0' : s;
}

function nonFinite(v: number): string {
  return v !== v ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
}

const POW10: number[] = [];
for (let i = 0, p = 1; i <= 22; i++, p *= 10) POW10.push(p);

/** `%.<p>g` text for the decimal `r × 10^(x-p+1)`, r a p-digit integer; the caller adds the sign. */
function gText(r: number, p: number, x: number): string {
  let digits = String(r);
  let n = p;
  while (n > 1 && digits.charCodeAt(n - 1) === 0x30) n--;
  if (n < p) digits = digits.slice(0, n);
  if (x < -4 || x >= p) {
    const ax = x < 0 ? -x : x;
    return digits[0] + (n > 1 ? '.' + digits.slice(1) : '') + (x < 0 ? 'e-' : 'e+') + (ax < 10 ? '0' : '') + ax;
  }
  if (x >= 0) return n > x + 1 ? digits.slice(0, x + 1) + '.' + digits.slice(x + 1) : digits + '0'.repeat(x + 1 - n);
  return '0.' + '0'.repeat(-x - 1) + digits;
}

/**
 * `%.9g` of a float32 magnitude in [1e-4, 1e9), or undefined outside. There |a| × 10^(8-x) is exact in
 * binary (a 24-bit mantissa times 5^j with j <= 12 fits 53 bits), so rounding it to an integer is exact
 * too, with ties sent to even as glibc does.
 */
function float32G9(a: number): string | undefined {
  let x = Math.floor(Math.log10(a));
  for (let attempt = 0; attempt < 3; attempt++) {
    const j = 8 - x;
    if (j < 0 || j > 12) return undefined;
    const q = a * POW10[j];
    let r = Math.round(q);
    if (r - q === 0.5 && r % 2 === 1) r -= 1;
    if (r >= 1e9) {
      x++;
      continue;
    }
    if (r < 1e8) {
      x--;
      continue;
    }
    return gText(r, 9, x);
  }
  return undefined;
}

/**
 * `%g` (6 significant digits) of |v| if that text reads back as v, null if it does not, undefined when
 * |v| is outside the range this shortcut handles. Computed in binary:
 * r = round(|v| / 10^(x-5)) and r × 10^(x-5) are each one correctly rounded operation on exact operands,
 * so the candidate equals what parsing the text gives. A wrong r (only possible next to a decimal tie)
 * lies half a unit in the 6th digit away from v, which never reads back as v, so the answer is exact.
 */
function shortG6(a: number, single: boolean): string | null | undefined {
  let x = Math.floor(Math.log10(a));
  for (let attempt = 0; attempt < 2; attempt++) {
    const k = x - 5;
    if (k > 22 || k < -22) return undefined;
    const r = Math.round(k >= 0 ? a / POW10[k] : a * POW10[-k]);
    if (r >= 1e6) {
      x++;
      continue;
    }
    if (r < 1e5) {
      x--;
      continue;
    }
    const candidate = k >= 0 ? r * POW10[k] : r / POW10[-k];
    const back = single ? Math.fround(candidate) : candidate;
    return back === a ? gText(r, 6, x) : null;
  }
  return undefined;
}

/**
 * A float32 value as TF Serving's WriteDecimal<float> writes it: `%g` (6 significant digits) if that
 * reads back as the same float, else `%.9g`; `.0` appended when there is neither `.` nor `e`;
 * non-finite values as bare `NaN`, `Infinity`, `-Infinity`. The argument is rounded to float32 first.
 */
export function formatFloat32(value: number): string {
  const v = Math.fround(value);
  if (v - v !== 0) return nonFinite(v);
  if (Number.isInteger(v) && v < 1e6 && v > -1e6) return v === 0 && 1 / v < 0 ? '-0.0' : v + '.0';
  const a = v < 0 ? -v : v;
  const short = shortG6(a, true);
  if (short) return withPointZero(v < 0 ? '-' + short : short);
  if (short === null) {
    const long = float32G9(a);
    if (long !== undefined) return withPointZero(v < 0 ? '-' + long : long);
  }
  let s = short === null ? '' : formatG(v, 6);
  if (short === null || Math.fround(Number(s)) !== v) s = formatG(v, 9);
  return withPointZero(s);
}

/** A double as TF Serving's WriteDecimal<double> writes it (`%g`, else `%.17g`). */
export function formatFloat64(v: number): string {
  if (v - v !== 0) return nonFinite(v);
  if (Number.isInteger(v) && v < 1e6 && v > -1e6) return v === 0 && 1 / v < 0 ? '-0.0' : v + '.0';
  const short = shortG6(v < 0 ? -v : v, false);
  if (short) return withPointZero(v < 0 ? '-' + short : short);
  let s = short === null ? '' : formatG(v, 6);
  if (short === null || Number(s) !== v) s = formatG(v, 17);
  return withPointZero(s);
}

/**
 * A double as rapidjson's Writer::Double prints it (shortest digits; integral values get `.0`, exponents
 * have no `+`), or undefined for NaN/±Infinity, which that writer refuses.
 */
export function formatRapidjsonDouble(v: number): string | undefined {
  if (v - v !== 0) return undefined;
  if (v === 0) return 1 / v < 0 ? '-0.0' : '0.0';
  const s = String(v);
  const e = s.indexOf('e');
  if (e >= 0) return s.charCodeAt(e + 1) === 0x2b ? s.slice(0, e + 1) + s.slice(e + 2) : s;
  return s.indexOf('.') < 0 ? s + '.0' : s;
}

// ---- Debug strings of parsed values ----

/** TF Serving's kMaxJsonDebugStringBytes. */
export const MAX_DEBUG_STRING_BYTES = 256;

/**
 * A parsed value re-serialised for an error message, as TF Serving's JsonValueToDebugString does it:
 * PrettyWriter in single-line-array mode, stopping at the first token that would start once the output
 * has reached `maxBytes` (so a cut can leave the JSON unclosed). Like rapidjson, writing stops at a
 * non-finite decimal (after its separator), since its writer refuses NaN and Infinity.
 */
export function jsonDebugString(value: JsonValue, maxBytes = MAX_DEBUG_STRING_BYTES): string {
  const w = new PrettyJsonWriter();
  w.singleLineArrays = true;
  writeDebugValue(w, value, maxBytes);
  return w.out;
}

function inLimit(w: PrettyJsonWriter, maxBytes: number): boolean {
  return Buffer.byteLength(w.out) < maxBytes;
}

/** Returns false once writing stopped. Recursion depth is bounded: every level writes at least a byte. */
function writeDebugValue(w: PrettyJsonWriter, v: JsonValue, maxBytes: number): boolean {
  if (!inLimit(w, maxBytes)) return false;
  if (v === null) {
    w.raw('null');
  } else if (typeof v === 'boolean') {
    w.raw(v ? 'true' : 'false');
  } else if (typeof v === 'number' || v instanceof JsonDecimal) {
    const d = typeof v === 'number' ? v : v.value;
    const text = typeof v === 'number' && Number.isInteger(v) ? String(v) : formatRapidjsonDouble(d);
    if (text === undefined) {
      w.prefix();
      return false;
    }
    w.raw(text);
  } else if (typeof v === 'bigint') {
    w.raw(v.toString());
  } else if (typeof v === 'string') {
    w.string(v);
  } else if (Array.isArray(v)) {
    w.startArray();
    for (const e of v) if (!writeDebugValue(w, e, maxBytes)) return false;
    if (!inLimit(w, maxBytes)) return false;
    w.endArray();
  } else {
    w.startObject();
    for (const k in v) {
      if (!inLimit(w, maxBytes)) return false;
      w.key(k);
      if (!writeDebugValue(w, v[k], maxBytes)) return false;
    }
    if (!inLimit(w, maxBytes)) return false;
    w.endObject();
  }
  return true;
}
