import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Code, errorBody, ServingError } from '../../common/errors.js';
import { escapeJsonString } from '../../common/json-string.js';
import {
  decodeExamplesRequest,
  encodeClassifyResponse,
  parseExamplesRequest,
  encodeRegressResponse,
  type Feature,
} from '../../worker/codec/classify-regress-json.js';
import {
  JsonDecimal,
  isJsonInteger,
  isJsonObject,
  jsonTypeName,
  parseJson,
  type JsonValue,
} from '../../worker/codec/json-reader.js';
import {
  PrettyJsonWriter,
  formatFloat32,
  formatFloat64,
  formatRapidjsonDouble,
  jsonDebugString,
} from '../../worker/codec/json-writer.js';
import {
  base64Decode,
  decodePredictInputs,
  encodePredictResponse,
  parsePredictBody,
} from '../../worker/codec/predict-json.js';
import { halfFromNumber, halfToNumber, type DType, type SignatureDef, type Tensor } from '../../worker/codec/tensor.js';

// ---- helpers ----

function expectError(fn: () => unknown, message: string, code: number = Code.INVALID_ARGUMENT): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ServingError, `expected ServingError, got ${String(e)}`);
    assert.equal(e.message, message);
    assert.equal(e.code, code);
    return true;
  });
}

function parseError(text: string, message: string, offset: number): void {
  expectError(() => parseJson(text), `JSON Parse error: ${message} at offset: ${offset}`);
}

function signature(inputs: Record<string, [DType, (number[] | null)?]>): SignatureDef {
  const sig: SignatureDef = { inputs: {}, outputs: {}, methodName: 'tensorflow/serving/predict' };
  for (const [name, [dtype, shape]] of Object.entries(inputs)) {
    sig.inputs[name] = { name: `${name}:0`, dtype, shape: shape === undefined ? null : shape };
  }
  return sig;
}

function decode(body: string, sig: SignatureDef) {
  const { doc } = parsePredictBody(body);
  return decodePredictInputs(doc, sig);
}

/** Decodes `{"inputs": <value>}` for a single input `x` of `dtype` and returns the tensor. */
function decodeOne(value: string, dtype: DType): Tensor {
  return decode(`{"inputs": ${value}}`, signature({ x: [dtype] })).inputs.x;
}

function decodeError(body: string, sig: SignatureDef, message: string, code: number = Code.INVALID_ARGUMENT): void {
  expectError(() => decode(body, sig), message, code);
}

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('utf8');

/** Our parsed values as what JSON.parse would give, for differential checks. */
function toPlain(v: JsonValue): unknown {
  if (v instanceof JsonDecimal) return v.value;
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(toPlain);
  if (isJsonObject(v)) {
    const o: Record<string, unknown> = {};
    for (const k in v) o[k] = toPlain(v[k]);
    return o;
  }
  return v;
}

// ---- JSON reader ----

describe('json-reader', () => {
  it('keeps integer literals apart from decimal literals', () => {
    const v = parseJson('[1, 1.0, 1e2, 1.5, -0, -0.0, 0, 2.5e-3, 1E+2]') as JsonValue[];
    assert.equal(v[0], 1);
    assert.ok(v[1] instanceof JsonDecimal && v[1].value === 1);
    assert.ok(v[2] instanceof JsonDecimal && v[2].value === 100);
    assert.equal(v[3], 1.5);
    assert.ok(Object.is(v[4], 0), 'integer -0 reads as 0, like rapidjson int 0');
    assert.ok(v[5] instanceof JsonDecimal && Object.is(v[5].value, -0));
    assert.equal(v[6], 0);
    assert.equal(v[7], 0.0025);
    assert.ok(v[8] instanceof JsonDecimal && v[8].value === 100);
    assert.ok(isJsonInteger(v[0]) && !isJsonInteger(v[1]) && !isJsonInteger(v[3]));
  });

  it('keeps int64 and uint64 integers exact as bigint', () => {
    const v = parseJson(
      '[9007199254740991, -9007199254740991, 9007199254740992, 9223372036854775807, -9223372036854775808,' +
        ' 18446744073709551615, 18446744073709551616, -9223372036854775809, 123456789012345678901234567890]',
    ) as JsonValue[];
    assert.equal(v[0], 9007199254740991);
    assert.equal(v[1], -9007199254740991);
    assert.equal(v[2], 9007199254740992n);
    assert.equal(v[3], 9223372036854775807n);
    assert.equal(v[4], -9223372036854775808n);
    assert.equal(v[5], 18446744073709551615n);
    // Outside int64 and uint64 rapidjson stores a double.
    assert.ok(v[6] instanceof JsonDecimal && v[6].value === 18446744073709551616);
    assert.ok(v[7] instanceof JsonDecimal && v[7].value === -9223372036854775808);
    assert.ok(v[8] instanceof JsonDecimal && v[8].value === 1.2345678901234568e29);
  });

  it('accepts NaN, Infinity, -Infinity, Inf and -Inf as numbers', () => {
    const v = parseJson('[NaN, Infinity, -Infinity, Inf, -Inf, -NaN]') as number[];
    assert.ok(Number.isNaN(v[0]));
    assert.deepEqual(v.slice(1, 5), [Infinity, -Infinity, Infinity, -Infinity]);
    assert.ok(Number.isNaN(v[5]));
    assert.equal(jsonTypeName(v[0]), 'Number');
    assert.ok(!isJsonInteger(v[0]) && !isJsonInteger(v[1]));
  });

  it('parses strings: escapes, \\u escapes, surrogate pairs and raw UTF-8', () => {
    assert.equal(parseJson('"a\\"b\\\\c\\/d\\b\\f\\n\\r\\t"'), 'a"b\\c/d\b\f\n\r\t');
    assert.equal(parseJson('"\\u0041\\u00e9\\u20AC\\ud83d\\ude00\\u0000x"'), 'Aé€😀\u0000x');
    assert.equal(parseJson(Buffer.from('"héllo wörld ✓ 😀"')), 'héllo wörld ✓ 😀');
    assert.equal(parseJson('"a-long-ascii-string-that-is-not-short"'), 'a-long-ascii-string-that-is-not-short');
    assert.equal(parseJson('""'), '');
  });

  it('parses objects as null-prototype objects, safe for __proto__', () => {
    const v = parseJson('{"__proto__": {"polluted": true}, "constructor": 1, "a": [], "b": {}}');
    assert.ok(isJsonObject(v));
    assert.equal(Object.getPrototypeOf(v), null);
    assert.deepEqual(Object.keys(v), ['__proto__', 'constructor', 'a', 'b']);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.ok(isJsonObject(v.__proto__));
  });

  it('keeps the first of duplicate keys, as rapidjson FindMember does', () => {
    assert.deepEqual(toPlain(parseJson('{"a": 1, "a": 2}')), { a: 1 });
  });

  it('ignores data after the first complete value', () => {
    assert.deepEqual(toPlain(parseJson('{"instances": [[1,2],[3,4]]}X')), { instances: [[1, 2], [3, 4]] });
    assert.deepEqual(toPlain(parseJson('[1]] garbage {')), [1]);
    assert.equal(parseJson('1 2'), 1);
    assert.equal(parseJson('01'), 0);
    assert.equal(parseJson('truex'), true);
    assert.equal(parseJson('Infx'), Infinity);
  });

  it('skips a UTF-8 byte order mark and whitespace', () => {
    assert.deepEqual(toPlain(parseJson('\uFEFF [1]')), [1]);
    assert.deepEqual(toPlain(parseJson(' \t\r\n{ "a" : [ 1 , 2 ] } ')), { a: [1, 2] });
  });

  it('accepts Buffer, Uint8Array and string input', () => {
    const bytes = new TextEncoder().encode('{"x": [1.5]}');
    assert.deepEqual(toPlain(parseJson(bytes)), { x: [1.5] });
    assert.deepEqual(toPlain(parseJson(Buffer.from(bytes))), { x: [1.5] });
    assert.deepEqual(toPlain(parseJson('{"x": [1.5]}')), { x: [1.5] });
    // A view into a larger buffer reads only its own bytes.
    const big = Buffer.from('xx[7]yy');
    assert.deepEqual(toPlain(parseJson(big.subarray(2, 5))), [7]);
  });

  it('reports an empty document like TF Serving', () => {
    expectError(() => parseJson(''), 'JSON Parse error: The document is empty');
    expectError(() => parseJson(Buffer.alloc(0)), 'JSON Parse error: The document is empty');
    // Whitespace only is rapidjson's error, with its period and offset.
    parseError('   ', 'The document is empty.', 3);
    parseError('}', 'The document is empty.', 0);
  });

  it('reports rapidjson messages and offsets', () => {
    parseError('[1,]', 'Invalid value.', 3);
    parseError('{"a":}', 'Invalid value.', 5);
    parseError('[', 'Invalid value.', 1);
    parseError('[}', 'Invalid value.', 1);
    parseError('tru', 'Invalid value.', 3);
    parseError('nulx', 'Invalid value.', 3);
    parseError('fals', 'Invalid value.', 4);
    parseError('+1', 'Invalid value.', 0);
    parseError('-', 'Invalid value.', 1);
    parseError('[x]', 'Invalid value.', 1);
    parseError('Nax', 'Invalid value.', 2);
    parseError('Infinit', 'Invalid value.', 7);
    parseError('[1,2', "Missing a comma or ']' after an array element.", 4);
    parseError('[1 2]', "Missing a comma or ']' after an array element.", 3);
    parseError('[01]', "Missing a comma or ']' after an array element.", 2);
    parseError('[1}', "Missing a comma or ']' after an array element.", 2);
    parseError('"abc', 'Missing a closing quotation mark in string.', 4);
    parseError('["abc\u0000"]', 'Missing a closing quotation mark in string.', 5);
    parseError('"a\u0001"', 'Invalid encoding in string.', 2);
    parseError('{', 'Missing a name for object member.', 1);
    parseError('{1:2}', 'Missing a name for object member.', 1);
    parseError('{"a":1,}', 'Missing a name for object member.', 7);
    parseError('{"a" 1}', 'Missing a colon after a name of object member.', 5);
    parseError('{"a"', 'Missing a colon after a name of object member.', 4);
    parseError('{"a":1 "b":2}', "Missing a comma or '}' after an object member.", 7);
    parseError('{"a":1', "Missing a comma or '}' after an object member.", 6);
    parseError('"a\\x"', 'Invalid escape character in string.', 2);
    parseError('"\\u12G4"', 'Incorrect hex digit after \\u escape in string.', 1);
    parseError('"ab\\u12"', 'Incorrect hex digit after \\u escape in string.', 3);
    parseError('"\\ud800x"', 'The surrogate pair in string is invalid.', 1);
    parseError('"\\udc00"', 'The surrogate pair in string is invalid.', 1);
    parseError('"\\ud800\\u0041"', 'The surrogate pair in string is invalid.', 1);
    parseError('1.', 'Miss fraction part in number.', 2);
    parseError('[1.x]', 'Miss fraction part in number.', 3);
    parseError('1e', 'Miss exponent in number.', 2);
    parseError('[1e+x]', 'Miss exponent in number.', 4);
    parseError('1e309', 'Number too big to be stored in double.', 0);
    parseError('[1, -2e400]', 'Number too big to be stored in double.', 4);
    parseError('1.8e308', 'Number too big to be stored in double.', 0);
    parseError('1' + '0'.repeat(400), 'Number too big to be stored in double.', 0);
    assert.equal((parseJson('0.001e309') as JsonDecimal).value, 1e306);
    assert.equal(parseJson('1e-400') instanceof JsonDecimal, true);
  });

  it('treats a NUL byte as the end of input', () => {
    parseError('[1,\u0000]', 'Invalid value.', 3);
    assert.deepEqual(toPlain(parseJson('[1]\u0000[')), [1]);
  });

  it('handles 100000 levels of nesting without recursion', () => {
    const depth = 100000;
    const arrays = parseJson('['.repeat(depth) + ']'.repeat(depth));
    let v: JsonValue = arrays;
    let levels = 0;
    while (Array.isArray(v) && v.length > 0) {
      v = v[0];
      levels++;
    }
    assert.equal(levels, depth - 1);
    const objects = parseJson('{"a":'.repeat(depth) + '1' + '}'.repeat(depth));
    assert.ok(isJsonObject(objects));
    parseError('['.repeat(depth), 'Invalid value.', depth);
  });

  it('agrees with JSON.parse on random documents', () => {
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296;
    const ws = () => [' ', '', '\n', '\t ', ''][Math.floor(rnd() * 5)];
    const gen = (depth: number): string => {
      const r = rnd();
      if (depth > 4 || r < 0.4) {
        const s = rnd();
        if (s < 0.2) return String(Math.floor(rnd() * 2e6) - 1e6);
        if (s < 0.4) return String((rnd() - 0.5) * 10 ** Math.floor(rnd() * 40 - 20));
        if (s < 0.5) return (rnd() * 100).toFixed(Math.floor(rnd() * 8));
        if (s < 0.6) return JSON.stringify('s' + rnd().toString(36) + (rnd() < 0.3 ? '\u00e9\n"\\\u20ac' : ''));
        if (s < 0.7) return ['true', 'false', 'null'][Math.floor(rnd() * 3)];
        if (s < 0.8) return String(BigInt(Math.floor(rnd() * 2 ** 52)) * 4099n);
        return `${Math.floor(rnd() * 1000)}e${Math.floor(rnd() * 20 - 10)}`;
      }
      const n = Math.floor(rnd() * 5);
      if (r < 0.7) return '[' + ws() + Array.from({ length: n }, () => gen(depth + 1)).join(ws() + ',' + ws()) + ws() + ']';
      const keys = Array.from({ length: n }, (_, i) => JSON.stringify(`k${i}${rnd() < 0.2 ? '\u00fc' : ''}`));
      return '{' + keys.map((k) => k + ws() + ':' + ws() + gen(depth + 1)).join(',' + ws()) + ws() + '}';
    };
    for (let i = 0; i < 2000; i++) {
      const doc = gen(0);
      assert.deepEqual(toPlain(parseJson(Buffer.from(doc))), JSON.parse(doc), doc);
    }
  });

  it('parses a 784-float instance within a small factor of JSON.parse (benchmark, informational)', (t) => {
    let seed = 42;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296;
    const bodies: Record<string, Buffer> = {
      'float32 values, shortest repr': Buffer.from(
        JSON.stringify({ instances: [Array.from({ length: 784 }, () => Math.fround(rnd()))] }),
      ),
      'pixel/255 values': Buffer.from(
        JSON.stringify({ instances: [Array.from({ length: 784 }, () => Math.floor(rnd() * 256) / 255)] }),
      ),
      '6-digit decimals': Buffer.from(
        `{"instances": [[${Array.from({ length: 784 }, () => rnd().toFixed(6)).join(', ')}]]}`,
      ),
    };
    const time = (fn: () => unknown, n: number) => {
      const start = process.hrtime.bigint();
      for (let i = 0; i < n; i++) fn();
      return Number(process.hrtime.bigint() - start) / n;
    };
    for (const [name, body] of Object.entries(bodies)) {
      for (let i = 0; i < 1000; i++) {
        parseJson(body);
        JSON.parse(body.toString());
      }
      const ours = time(() => parseJson(body), 2000);
      const native = time(() => JSON.parse(body.toString()), 2000);
      const line =
        `json-reader benchmark [${name}, ${body.length} bytes]: parseJson ${(ours / 1000).toFixed(1)} us, ` +
        `JSON.parse(buf.toString()) ${(native / 1000).toFixed(1)} us, ratio ${(ours / native).toFixed(2)}x`;
      t.diagnostic(line);
      console.log(line);
    }
  });
});

// ---- JSON writer ----

describe('json-writer', () => {
  it('formats float32 like TF Serving (test vector from json_tensor.cc)', () => {
    const vectors: Array<[number, string]> = [
      [9000000, '9e+06'],
      [999999, '999999.0'],
      [0.5, '0.5'],
      [0.0003, '0.0003'],
      [0.00003, '3e-05'],
      [555557.5, '555557.5'],
      [3, '3.0'],
    ];
    for (const [v, s] of vectors) assert.equal(formatFloat32(v), s, String(v));
  });

  it('matches glibc %g / %.9g / %.17g with the round-trip rule (vectors from a C reference)', () => {
    const vectors: Array<['f32' | 'f64', number, string]> = [
      ['f32', 0.10000000149011612, '0.1'],
      ['f32', 0.20000000298023224, '0.2'],
      ['f32', 0.3333333432674408, '0.333333343'],
      ['f32', 123456.703125, '123456.703'],
      ['f32', 1234567, '1234567.0'],
      ['f32', 16777216, '16777216.0'],
      ['f32', 3.4028234663852886e38, '3.40282347e+38'],
      ['f32', 1.401298464324817e-45, '1.4013e-45'],
      ['f32', 1.000000013351432e-10, '1e-10'],
      ['f32', 0.0001234567753272131, '0.000123456775'],
      ['f32', 1048576.125, '1048576.12'], // exact tie at the 10th digit: glibc rounds to even
      ['f32', 1048576.375, '1048576.38'],
      ['f32', 12345650, '12345650.0'],
      ['f32', -2.5, '-2.5'],
      ['f32', 100, '100.0'],
      ['f32', 1000000, '1e+06'],
      ['f32', 999999.5, '999999.5'],
      ['f32', 65504, '65504.0'],
      ['f32', 0.30000001192092896, '0.3'],
      ['f64', 0.1, '0.1'],
      ['f64', 0.3333333333333333, '0.33333333333333331'],
      ['f64', 0.6666666666666666, '0.66666666666666663'],
      ['f64', 1e21, '1e+21'],
      ['f64', 1e-7, '1e-07'],
      ['f64', 5e-324, '4.94066e-324'],
      ['f64', 1.7976931348623157e308, '1.7976931348623157e+308'],
      ['f64', 123456789012345680, '1.2345678901234568e+17'],
      ['f64', 0.30000000000000004, '0.30000000000000004'],
      ['f64', 1234567, '1234567.0'],
      ['f64', 0.125, '0.125'],
      ['f64', 1e100, '1e+100'],
      ['f64', -1e-100, '-1e-100'],
      ['f64', 4503599627370496, '4503599627370496.0'],
    ];
    for (const [kind, v, s] of vectors) assert.equal(kind === 'f32' ? formatFloat32(v) : formatFloat64(v), s, `${kind} ${v}`);
  });

  it('writes non-finite values bare and keeps the sign of zero', () => {
    for (const f of [formatFloat32, formatFloat64]) {
      assert.equal(f(NaN), 'NaN');
      assert.equal(f(Infinity), 'Infinity');
      assert.equal(f(-Infinity), '-Infinity');
      assert.equal(f(-0), '-0.0');
      assert.equal(f(0), '0.0');
    }
    assert.equal(formatFloat32(1e39), 'Infinity'); // rounds to float32 first
  });

  it("formats doubles for debug strings like rapidjson's Writer", () => {
    assert.equal(formatRapidjsonDouble(1), '1.0');
    assert.equal(formatRapidjsonDouble(1.5), '1.5');
    assert.equal(formatRapidjsonDouble(1e21), '1e21');
    assert.equal(formatRapidjsonDouble(1e20), '100000000000000000000.0');
    assert.equal(formatRapidjsonDouble(1.5e-7), '1.5e-7');
    assert.equal(formatRapidjsonDouble(-0), '-0.0');
    assert.equal(formatRapidjsonDouble(NaN), undefined);
  });

  it('escapes strings like rapidjson', () => {
    assert.equal(escapeJsonString('a"b\\c/d'), '"a\\"b\\\\c/d"');
    assert.equal(escapeJsonString('\b\f\n\r\t'), '"\\b\\f\\n\\r\\t"');
    assert.equal(escapeJsonString('\u0001\u001f\u007f é'), '"\\u0001\\u001F\u007f é"');
  });

  it('writes error bodies with a 4-space indent', () => {
    assert.equal(errorBody('Servable not found for request: Latest(half)'), '{\n    "error": "Servable not found for request: Latest(half)"\n}');
    assert.equal(errorBody('Bad key: "key"'), '{\n    "error": "Bad key: \\"key\\""\n}');
  });

  it("lays out values like rapidjson's PrettyWriter", () => {
    const w = new PrettyJsonWriter();
    w.startObject();
    w.key('a');
    w.startArray();
    w.raw('1');
    w.startObject();
    w.endObject();
    w.startArray();
    w.endArray();
    w.endArray();
    w.key('b');
    w.singleLineArrays = true;
    w.startArray();
    w.raw('1');
    w.startObject();
    w.key('c');
    w.raw('2');
    w.endObject();
    w.endArray();
    w.singleLineArrays = false;
    w.endObject();
    assert.equal(
      w.out,
      '{\n    "a": [\n        1,\n        {},\n        []\n    ],\n    "b": [1, {\n            "c": 2\n        }]\n}',
    );
  });

  it('writes debug strings like JsonValueToDebugString, cut after 256 bytes', () => {
    assert.equal(jsonDebugString(parseJson('{"a": [1, 2.0, "x"], "b": {"c": null}}')), '{\n    "a": [1, 2.0, "x"],\n    "b": {\n        "c": null\n    }\n}');
    assert.equal(jsonDebugString(parseJson('"NaN"')), '"NaN"');
    assert.equal(jsonDebugString(parseJson('12345678901234567890')), '12345678901234567890');
    // rapidjson's writer refuses NaN/Infinity, so output stops there.
    assert.equal(jsonDebugString(parseJson('[1.5, NaN, 2]')), '[1.5, ');
    assert.equal(jsonDebugString(parseJson('NaN')), '');
    const long = jsonDebugString(parseJson(`[${Array.from({ length: 200 }, (_, i) => i).join(',')}]`));
    assert.ok(long.startsWith('[0, 1, 2,') && !long.endsWith(']'));
    assert.ok(Buffer.byteLength(long) >= 256 && Buffer.byteLength(long) < 260, long);
  });
});

// ---- float16 helpers ----

describe('float16 conversion', () => {
  it('round-trips every binary16 value and rounds ties to even', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const v = halfToNumber(bits);
      if (Number.isNaN(v)) continue;
      assert.equal(halfFromNumber(v), bits);
    }
    assert.equal(halfFromNumber(1 + 2 ** -11), 0x3c00); // halfway between 1 and the next half: even
    assert.equal(halfFromNumber(1 + 3 * 2 ** -11), 0x3c02);
    assert.equal(halfFromNumber(65519), 0x7bff);
    assert.equal(halfFromNumber(65520), 0x7c00);
    assert.equal(halfFromNumber(2 ** -25), 0); // half the smallest subnormal: even (0)
    assert.equal(halfFromNumber(3 * 2 ** -25), 2);
    assert.equal(halfFromNumber(-0), 0x8000);
    assert.equal(halfFromNumber(NaN) & 0x7e00, 0x7e00);
    assert.equal(halfFromNumber(-Infinity), 0xfc00);
  });
});

// ---- predict requests ----

describe('predict request decoding', () => {
  const x = signature({ x: ['DT_FLOAT'] });

  it('parsePredictBody requires an object and a string signature_name', () => {
    assert.equal(parsePredictBody('{"instances": [1]}').signatureName, undefined);
    assert.equal(parsePredictBody('{"signature_name": "predict_images", "instances": [1]}').signatureName, 'predict_images');
    expectError(() => parsePredictBody('[1, 2]'), 'JSON Value: [1, 2] Is not object');
    expectError(() => parsePredictBody('"x"'), 'JSON Value: "x" Is not object');
    expectError(() => parsePredictBody(''), 'JSON Parse error: The document is empty');
    expectError(
      () => parsePredictBody('{"signature_name": 5, "instances": [[1,2],[3,4],[5,6,7]]}'),
      'JSON Value: {\n    "signature_name": 5,\n    "instances": [[1, 2], [3, 4], [5, 6, 7]]\n} ' +
        "not formatted correctly. 'signature_name' key must be a string value.",
    );
    expectError(
      () => parsePredictBody('{"signature_name": null}'),
      `JSON Value: {\n    "signature_name": null\n} not formatted correctly. 'signature_name' key must be a string value.`,
    );
  });

  it('decodes the TF Serving examples', () => {
    let r = decode('{"instances":[1.0,2.0,5.0]}', x);
    assert.equal(r.format, 'row');
    assert.deepEqual(r.inputs.x.shape, [3]);
    assert.deepEqual(r.inputs.x.data, new Float32Array([1, 2, 5]));
    r = decode('{"instances":[[1.0],[2.0]]}', x);
    assert.deepEqual(r.inputs.x.shape, [2, 1]);
    assert.deepEqual(r.inputs.x.data, new Float32Array([1, 2]));
    r = decode('{"signature_name": "predict_images", "instances": [[1,2]]}', signature({ x: ['DT_INT32'] }));
    assert.deepEqual(r.inputs.x.shape, [1, 2]);
    assert.deepEqual(r.inputs.x.data, new Int32Array([1, 2]));
    r = decode('{"instances": [[1,2],[3,4],[5,6]]}X', signature({ x: ['DT_INT32'] }));
    assert.deepEqual(r.inputs.x.shape, [3, 2]);
    assert.deepEqual(r.inputs.x.data, new Int32Array([1, 2, 3, 4, 5, 6]));
  });

  it('handles deep nesting like TF (500000 levels in its test; 100000 here)', () => {
    const depth = 100000;
    const deep = '['.repeat(depth) + ']'.repeat(depth);
    const r = decode(`{"instances":[1], "nested":${deep}}`, signature({ x: ['DT_INT32'] }));
    assert.deepEqual(r.inputs.x.data, new Int32Array([1]));
    expectError(
      () => parsePredictBody(`{"signature_name":${deep}}`),
      `JSON Value: {\n    "signature_name": ${'['.repeat(232)} not formatted correctly. 'signature_name' key must be a string value.`,
    );
  });

  it('decodes every numeric dtype, with TF type and range rules', () => {
    assert.deepEqual(decodeOne('[1, 1.5, NaN, -Infinity, 1435774380, 1e39]', 'DT_FLOAT').data, new Float32Array([1, 1.5, NaN, -Infinity, 1435774336, Infinity]));
    assert.deepEqual(decodeOne('[1.7976931348623157e308, 2.2250738585072014e-308]', 'DT_FLOAT').data, new Float32Array([Infinity, 0]));
    assert.deepEqual(decodeOne('[0.1, 9007199254740993, 12345678901234567890]', 'DT_DOUBLE').data, new Float64Array([0.1, 9007199254740992, 12345678901234567000]));
    assert.deepEqual(decodeOne('[1, -2147483648, 2147483647]', 'DT_INT32').data, new Int32Array([1, -2147483648, 2147483647]));
    assert.deepEqual(decodeOne('[1, -128, 127]', 'DT_INT8').data, new Int8Array([1, -128, 127]));
    assert.deepEqual(decodeOne('[1, -32768, 32767]', 'DT_INT16').data, new Int16Array([1, -32768, 32767]));
    assert.deepEqual(decodeOne('[0, 255]', 'DT_UINT8').data, new Uint8Array([0, 255]));
    assert.deepEqual(decodeOne('[0, 65535]', 'DT_UINT16').data, new Uint16Array([0, 65535]));
    assert.deepEqual(decodeOne('[0, 4294967295]', 'DT_UINT32').data, new Uint32Array([0, 4294967295]));
    assert.deepEqual(
      decodeOne('[1, -9223372036854775808, 9223372036854775807, 9007199254740993]', 'DT_INT64').data,
      new BigInt64Array([1n, -9223372036854775808n, 9223372036854775807n, 9007199254740993n]),
    );
    assert.deepEqual(
      decodeOne('[0, 18446744073709551615, 9223372036854775808]', 'DT_UINT64').data,
      new BigUint64Array([0n, 18446744073709551615n, 9223372036854775808n]),
    );
    assert.deepEqual(decodeOne('[true, false]', 'DT_BOOL').data, new Uint8Array([1, 0]));
    assert.deepEqual(
      decodeOne('[1, 1.5, 65504, 1e5, 5.960464477539063e-8, -0.0, NaN]', 'DT_HALF').data,
      new Uint16Array([0x3c00, 0x3e00, 0x7bff, 0x7c00, 0x0001, 0x8000, 0x7e00]),
    );
  });

  it('rejects values of the wrong JSON type with TF messages', () => {
    const err = (value: string, dtype: DType, message: string) =>
      decodeError(`{"inputs": ${value}}`, signature({ x: [dtype] }), message);
    err('[1.0]', 'DT_INT32', 'JSON Value: 1.0 Type: Number is not of expected type: int32');
    err('[2147483648]', 'DT_INT32', 'JSON Value: 2147483648 Type: Number is not of expected type: int32');
    err('[1e2]', 'DT_INT8', 'JSON Value: 100.0 Type: Number is not of expected type: int8');
    err('[1.5]', 'DT_UINT8', 'JSON Value: 1.5 Type: Number is not of expected type: uint8');
    // Out of the dtype's range: TF Serving wraps silently; we refuse.
    err('[300]', 'DT_UINT8', 'JSON Value: 300 Type: Number is not of expected type: uint8');
    err('[-1]', 'DT_UINT8', 'JSON Value: -1 Type: Number is not of expected type: uint8');
    err('[200]', 'DT_INT8', 'JSON Value: 200 Type: Number is not of expected type: int8');
    err('[40000]', 'DT_INT16', 'JSON Value: 40000 Type: Number is not of expected type: int16');
    err('[65536]', 'DT_UINT16', 'JSON Value: 65536 Type: Number is not of expected type: uint16');
    err('[1.0]', 'DT_INT64', 'JSON Value: 1.0 Type: Number is not of expected type: int64');
    err('[9223372036854775808]', 'DT_INT64', 'JSON Value: 9223372036854775808 Type: Number is not of expected type: int64');
    err('[-1]', 'DT_UINT32', 'JSON Value: -1 Type: Number is not of expected type: uint32');
    err('[4294967296]', 'DT_UINT32', 'JSON Value: 4294967296 Type: Number is not of expected type: uint32');
    err('[-1]', 'DT_UINT64', 'JSON Value: -1 Type: Number is not of expected type: uint64');
    err('[18446744073709551616]', 'DT_UINT64', 'JSON Value: 18446744073709552000.0 Type: Number is not of expected type: uint64');
    err('[1]', 'DT_BOOL', 'JSON Value: 1 Type: Number is not of expected type: bool');
    err('[null]', 'DT_BOOL', 'JSON Value: null Type: Null is not of expected type: bool');
    err('["NaN"]', 'DT_FLOAT', 'JSON Value: "NaN" Type: String is not of expected type: float');
    err('[true]', 'DT_DOUBLE', 'JSON Value: true Type: True is not of expected type: double');
    err('[false]', 'DT_HALF', 'JSON Value: false Type: False is not of expected type: half');
    err('[1]', 'DT_STRING', 'JSON Value: 1 Type: Number is not of expected type: string');
    err('[{"a": 1}]', 'DT_FLOAT', 'JSON Value: {\n    "a": 1\n} Type: Object is not of expected type: float');
    err('[{"b64": "AA=="}]', 'DT_INT32', 'JSON Value: {\n    "b64": "AA=="\n} Type: Object is not of expected type: int32');
  });

  it('decodes strings as UTF-8 and {"b64": ...} objects with absl rules', () => {
    const t = decodeOne('["abc", "é✓", {"b64": "aGVsbG8="}, {"b64": "aGk"}, {"b64": " aGV sbG8= "}, {"b64": ""}]', 'DT_STRING');
    assert.deepEqual((t.data as Uint8Array[]).map(text), ['abc', 'é✓', 'hello', 'hi', 'hello', '']);
    assert.deepEqual(decodeOne('{"b64": "AAEC"}', 'DT_STRING').data, [new Uint8Array([0, 1, 2])]);
    const err = (value: string, message: string) => decodeError(`{"inputs": ${value}}`, signature({ x: ['DT_STRING'] }), message);
    err('[{"b64": "a"}]', 'Unable to base64 decode');
    err('[{"b64": "aGk="}, {"b64": "aGk=="}]', 'Unable to base64 decode');
    err('[{"b64": "a*=="}]', 'Unable to base64 decode');
    err('[{"b64": 5}]', 'JSON Value: {\n    "b64": 5\n} not formatted correctly for base64 data');
    err('[{"b64": "AA==", "x": 1}]', 'JSON Value: {\n    "b64": "AA==",\n    "x": 1\n} not formatted correctly for base64 data');
    err('[{"x": "y"}]', 'JSON Value: {\n    "x": "y"\n} not formatted correctly for base64 data');
  });

  it('implements absl::Base64Unescape padding rules', () => {
    const ok = (s: string, bytes: number[]) => assert.deepEqual(base64Decode(s), new Uint8Array(bytes), s);
    ok('QQ==', [65]);
    ok('QQ', [65]);
    ok('QUI=', [65, 66]);
    ok('QUI', [65, 66]);
    ok('QUJD', [65, 66, 67]);
    ok('QQ..', [65]);
    ok('Q Q = =\n', [65]);
    for (const bad of ['Q', 'QQ=', 'QUJD=', 'QQ==QQ==', 'QQ=x', 'Q-_=', 'Q\u0000==']) assert.equal(base64Decode(bad), null, bad);
  });

  it('row format: one input, values or lists per row', () => {
    const r = decode('{"instances": [[[1,2]],[[3,4]]]}', signature({ x: ['DT_INT32'] }));
    assert.deepEqual(r.inputs.x.shape, [2, 1, 2]);
    // b64 objects are values, not named rows.
    const s = decode('{"instances": [{"b64": "aGk="}, {"b64": "aGk="}]}', signature({ x: ['DT_STRING'] }));
    assert.deepEqual(s.inputs.x.shape, [2]);
    assert.deepEqual((s.inputs.x.data as Uint8Array[]).map(text), ['hi', 'hi']);
    // A single input may also be given as named rows.
    const n = decode('{"instances": [{"x": [1, 2]}, {"x": [3, 4]}]}', x);
    assert.deepEqual(n.inputs.x.shape, [2, 2]);
  });

  it('row format: several named inputs', () => {
    const sig = signature({ int_tensor: ['DT_INT32'], str_tensor: ['DT_STRING'], float_tensor: ['DT_FLOAT'] });
    const r = decode(
      `{"instances": [
        {"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"], "float_tensor": [1.0, NaN]},
        {"str_tensor": ["baz", "bat"], "int_tensor": [[7,8],[9,0],[1,2]], "float_tensor": [3.0, Infinity]}
      ]}`,
      sig,
    );
    assert.equal(r.format, 'row');
    assert.deepEqual(r.inputs.int_tensor.shape, [2, 3, 2]);
    assert.deepEqual(r.inputs.int_tensor.data, new Int32Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2]));
    assert.deepEqual(r.inputs.str_tensor.shape, [2, 2]);
    assert.deepEqual((r.inputs.str_tensor.data as Uint8Array[]).map(text), ['foo', 'bar', 'baz', 'bat']);
    assert.deepEqual(r.inputs.float_tensor.data, new Float32Array([1, NaN, 3, Infinity]));
  });

  it('row format: TF error messages', () => {
    const int = signature({ x: ['DT_INT32'] });
    const two = signature({ int_tensor: ['DT_INT32'], str_tensor: ['DT_STRING'] });
    decodeError(
      '{"instances": [[1,2],[3,4],[5,6,7]]}',
      int,
      "Failed to process element: 2 of 'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 2 but got: 3",
    );
    decodeError(
      '{"instances": [[1,2],[3,4],[[5,6]]]}',
      int,
      "Failed to process element: 2 of 'instances' list. Error: INVALID_ARGUMENT: Expecting shape [2] but got: [1,2]",
    );
    decodeError(
      '{"instances": [1, [1]]}',
      int,
      "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting shape [] but got: [1]",
    );
    decodeError(
      '{"instances": [[1,2],["a", "b"]]}',
      int,
      "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: \"a\" Type: String is not of expected type: int32",
    );
    decodeError(
      '{"instances": [{"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"]}, {"int_tensor": [[[7,8],[9,0],[1,2]]], "str_tensor": ["baz", "bat"]}]}',
      two,
      "Failed to process element: 1 key: int_tensor of 'instances' list. Error: INVALID_ARGUMENT: Expecting shape [3,2] but got: [1,3,2]",
    );
    decodeError(
      '{"instances": [{"int_tensor": [[1,2],[3,4],[5,6],[7,8]], "str_tensor": ["foo", "bar"]}, {"int_tensor": [[7,8],[9,0],[1,2]], "str_tensor": ["baz", "bat"]}]}',
      two,
      "Failed to process element: 1 key: int_tensor of 'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 8 but got: 6",
    );
    decodeError(
      '{"instances": [{"int_tensor": [1], "str_tensor": ["foo"]}, [1, 20, 30]]}',
      two,
      'Expecting object but got list at item 1 of input list',
    );
    decodeError(
      '{"instances": [["baz", "bar"], {"x": ["baz", "bat"]}]}',
      signature({ x: ['DT_STRING'] }),
      'Expecting value/list but got object at item 1 of input list',
    );
    decodeError(
      '{"instances": [[1, 2], [3, 4]]}',
      two,
      'instances is a plain list, but expecting list of objects as multiple input tensors required as per tensorinfo_map',
    );
    decodeError(
      '{"instances": [{"int_tensor": 1}]}',
      two,
      "Failed to process element: 0 of 'instances' list. JSON object: {\n    \"int_tensor\": 1\n} keys must be equal to: int_tensor,str_tensor",
    );
    decodeError(
      '{"instances": [{"int_tensor": 1, "str_tensor": "a", "other": 2}]}',
      two,
      "Failed to process element: 0 key: other of 'instances' list. Error: INVALID_ARGUMENT: JSON object: does not have named input: other",
    );
    decodeError(
      '{"instances": [{"int_tensor": 1.5, "str_tensor": "a"}]}',
      two,
      "Failed to process element: 0 key: int_tensor of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: 1.5 Type: Number is not of expected type: int32",
    );
  });

  it('shape inference follows element [0] and reports the three list/level errors', () => {
    const int = signature({ x: ['DT_INT32'] });
    decodeError('{"inputs": [[1,2],[3]]}', int, 'Encountered list at unexpected size: 1 at level: 1 expected size: 2');
    decodeError('{"inputs": [[1,2],[3,[4]]]}', int, 'Encountered list at unexpected level: 2 expected < 2');
    decodeError('{"inputs": [[1,2],3]}', int, 'JSON Value: 3 found at incorrect level: 2 in the JSON DOM. Expected at level: 2');
    decodeError('{"inputs": [[[1]],[[2],[3]]]}', int, 'Encountered list at unexpected size: 2 at level: 1 expected size: 1');
    decodeError('{"inputs": [[], [1]]}', int, 'Encountered list at unexpected size: 1 at level: 1 expected size: 0');
    decodeError(
      '{"instances": [[1,2],[3,[4]]]}',
      int,
      "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Encountered list at unexpected level: 1 expected < 1",
    );
  });

  it('does not allocate what a ragged list only claims', () => {
    const body = `{"inputs": [[${Array.from({ length: 100000 }, () => '0').join(',')}], 1, 2]}`;
    decodeError(body, signature({ x: ['DT_FLOAT'] }), 'JSON Value: 1 found at incorrect level: 2 in the JSON DOM. Expected at level: 2');
  });

  it('columnar format: single and multiple inputs', () => {
    let r = decode('{"inputs": 5}', signature({ x: ['DT_INT32'] }));
    assert.equal(r.format, 'columnar');
    assert.deepEqual(r.inputs.x.shape, []);
    assert.deepEqual(r.inputs.x.data, new Int32Array([5]));
    r = decode('{"inputs": []}', x);
    assert.deepEqual(r.inputs.x.shape, [0]);
    r = decode('{"inputs": [[]]}', x);
    assert.deepEqual(r.inputs.x.shape, [1, 0]);
    r = decode('{"inputs": {"b64": "aGk="}}', signature({ x: ['DT_STRING'] }));
    assert.deepEqual(r.inputs.x.shape, []);
    assert.deepEqual((r.inputs.x.data as Uint8Array[]).map(text), ['hi']);
    r = decode('{"inputs": {"x": [[1, 2]]}, "ignored": true}', x);
    assert.deepEqual(r.inputs.x.shape, [1, 2]);
    const two = signature({ a: ['DT_INT32'], b: ['DT_STRING'] });
    r = decode('{"inputs": {"a": [1, 2, 3], "b": [["x"], ["y"]], "extra": {"zzz": 1}}}', two);
    assert.deepEqual(r.inputs.a.shape, [3]);
    assert.deepEqual(r.inputs.b.shape, [2, 1]);
    assert.deepEqual(Object.keys(r.inputs).sort(), ['a', 'b']);
    decodeError('{"inputs": {"a": [1]}}', two, "Missing named input: b in 'inputs' object.");
    decodeError(
      '{"inputs": [1, 2]}',
      two,
      'inputs is a plain value/list, but expecting an object as multiple input tensors required as per tensorinfo_map',
    );
    decodeError(
      '{"inputs": {"b64": "aGk="}}',
      two,
      'inputs is a plain value/list, but expecting an object as multiple input tensors required as per tensorinfo_map',
    );
  });

  it('instances/inputs key rules', () => {
    decodeError(
      '{"instances": [1], "inputs": [1]}',
      x,
      "JSON Value: {\n    \"instances\": [1],\n    \"inputs\": [1]\n} Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist ",
    );
    decodeError('{"signature_name": "s"}', x, "Missing 'inputs' or 'instances' key");
    decodeError('{"instances": {"x": 1}}', x, "JSON Value: {\n    \"instances\": {\n        \"x\": 1\n    }\n} Expecting 'instances' to be an list/array");
    decodeError('{"instances": []}', x, "JSON Value: {\n    \"instances\": []\n} No values in 'instances' array");
    decodeError('{"instances": [1]}', signature({}), 'Failed to get input map for signature: DEFAULT');
    decodeError('{"signature_name": "sig", "instances": [1]}', signature({}), 'Failed to get input map for signature: sig');
  });

  it('leaves shape checks to the model, as TF Serving does', () => {
    // half_plus_two's signature says [-1,1], yet TF Serving feeds [3] to it: `x:0` is fed directly.
    const sig = signature({ x: ['DT_FLOAT', [-1, 2]] });
    assert.deepEqual(decode('{"instances": [[1, 2], [3, 4]]}', sig).inputs.x.shape, [2, 2]);
    assert.deepEqual(decode('{"instances": [1, 2]}', sig).inputs.x.shape, [2]);
    assert.deepEqual(decode('{"inputs": [[1, 2, 3]]}', sig).inputs.x.shape, [1, 3]);
    assert.deepEqual(decode('{"inputs": 1}', signature({ x: ['DT_FLOAT', []] })).inputs.x.shape, []);
  });
});

// ---- predict responses ----

describe('predict response encoding', () => {
  const f32 = (shape: number[], values: number[]): Tensor => ({ dtype: 'DT_FLOAT', shape, data: new Float32Array(values) });

  it('writes half_plus_two exactly as TF Serving does', () => {
    assert.equal(encodePredictResponse('row', { y: f32([3], [2.5, 3, 4.5]) }), '{\n    "predictions": [2.5, 3.0, 4.5\n    ]\n}');
    assert.equal(
      encodePredictResponse('columnar', { y: f32([3], [2.5, 3, 4.5]) }),
      '{\n    "outputs": [\n        2.5,\n        3.0,\n        4.5\n    ]\n}',
    );
  });

  it('row format: rows on one line each, named when there are several outputs', () => {
    assert.equal(
      encodePredictResponse('row', { y: f32([2, 2], [1, 2, 3, 4]) }),
      '{\n    "predictions": [[1.0, 2.0], [3.0, 4.0]\n    ]\n}',
    );
    assert.equal(
      encodePredictResponse('row', {
        scores: f32([2, 2], [0.25, 0.75, 0.5, 0.5]),
        classes: { dtype: 'DT_INT64', shape: [2], data: new BigInt64Array([9007199254740993n, -1n]) },
      }),
      '{\n    "predictions": [\n        {\n            "classes": 9007199254740993,\n            "scores": [0.25, 0.75]\n        },\n' +
        '        {\n            "classes": -1,\n            "scores": [0.5, 0.5]\n        }\n    ]\n}',
    );
    // Explicit output order; names without a tensor are skipped, unlisted tensors follow sorted.
    assert.equal(
      encodePredictResponse('row', { b: f32([1], [1]), a: f32([1], [2]) }, ['b', 'a']),
      '{\n    "predictions": [\n        {\n            "b": 1.0,\n            "a": 2.0\n        }\n    ]\n}',
    );
    assert.equal(
      encodePredictResponse('columnar', { c: f32([], [3]), b: f32([], [1]), a: f32([], [2]) }, ['zz', 'b']),
      '{\n    "outputs": {\n        "b": 1.0,\n        "a": 2.0,\n        "c": 3.0\n    }\n}',
    );
    assert.equal(encodePredictResponse('row', { y: f32([0, 3], []) }), '{\n    "predictions": []\n}');
  });

  it('columnar format: whole tensors, pretty-printed', () => {
    assert.equal(encodePredictResponse('columnar', { y: f32([], [1.5]) }), '{\n    "outputs": 1.5\n}');
    assert.equal(
      encodePredictResponse('columnar', {
        a: f32([2, 1], [1, 2]),
        b: { dtype: 'DT_BOOL', shape: [2], data: new Uint8Array([1, 0]) },
        c: { dtype: 'DT_INT32', shape: [0], data: new Int32Array(0) },
      }),
      '{\n    "outputs": {\n        "a": [\n            [\n                1.0\n            ],\n            [\n                2.0\n            ]\n        ],\n' +
        '        "b": [\n            true,\n            false\n        ],\n        "c": []\n    }\n}',
    );
  });

  it('writes every dtype', () => {
    const out = (t: Tensor, name = 'y') => encodePredictResponse('row', { [name]: t });
    assert.equal(out({ dtype: 'DT_DOUBLE', shape: [2], data: new Float64Array([0.1, 1 / 3]) }), '{\n    "predictions": [0.1, 0.33333333333333331\n    ]\n}');
    assert.equal(out({ dtype: 'DT_HALF', shape: [3], data: new Uint16Array([0x3c00, 0x3555, 0x7c00]) }), '{\n    "predictions": [1.0, 0.333251953, Infinity\n    ]\n}');
    assert.equal(out({ dtype: 'DT_INT8', shape: [2], data: new Int8Array([-128, 127]) }), '{\n    "predictions": [-128, 127\n    ]\n}');
    assert.equal(out({ dtype: 'DT_UINT32', shape: [1], data: new Uint32Array([4294967295]) }), '{\n    "predictions": [4294967295\n    ]\n}');
    assert.equal(
      out({ dtype: 'DT_UINT64', shape: [1], data: new BigUint64Array([18446744073709551615n]) }),
      '{\n    "predictions": [18446744073709551615\n    ]\n}',
    );
    const strings: Tensor = { dtype: 'DT_STRING', shape: [2], data: [Buffer.from('a"b\n'), Buffer.from('é')] };
    assert.equal(out(strings), '{\n    "predictions": ["a\\"b\\n", "é"\n    ]\n}');
    assert.equal(
      out({ dtype: 'DT_STRING', shape: [2], data: [new Uint8Array([0, 255]), new Uint8Array(0)] }, 'out_bytes'),
      '{\n    "predictions": [{\n            "b64": "AP8="\n        }, {\n            "b64": ""\n        }\n    ]\n}',
    );
  });

  it('reports TF errors', () => {
    expectError(() => encodePredictResponse('row', {}), 'Cannot convert empty tensor map to JSON');
    expectError(() => encodePredictResponse('row', { y: f32([], [1]) }), 'Tensor name: y has no shape information ');
    expectError(
      () => encodePredictResponse('row', { a: f32([2], [1, 2]), b: f32([3], [1, 2, 3]) }),
      'Tensor name: b has inconsistent batch size: 3 expecting: 2',
    );
  });
});

// ---- classify / regress ----

describe('classify and regress', () => {
  const req = (body: string, method: 'classify' | 'regress' = 'classify') =>
    decodeExamplesRequest(parsePredictBody(body).doc, method);
  const bytesOf = (f: Feature) => (f.kind === 'bytes' ? f.values.map(text) : undefined);

  it('decodes examples and context into features', () => {
    const r = req(`{
      "signature_name": "classify_x_to_y",
      "context": {"lang": "en", "ids": [1, 2]},
      "examples": [
        {"x": 80.0, "names": ["a", {"b64": "Yg=="}], "flags": [true, false], "big": -9223372036854775808,
         "f": [1.0, 2.5, NaN], "empty": [], "n": 1e2},
        {"x": [1.5, -Infinity]}
      ]}`);
    assert.equal(r.signatureName, 'classify_x_to_y');
    assert.ok(r.context);
    assert.deepEqual(bytesOf(r.context.lang), ['en']);
    assert.deepEqual(r.context.ids, { kind: 'int64', values: [1n, 2n] });
    const [e0, e1] = r.examples;
    assert.deepEqual(e0.x, { kind: 'float', values: [80] });
    assert.deepEqual(bytesOf(e0.names), ['a', 'b']);
    assert.deepEqual(e0.flags, { kind: 'int64', values: [1n, 0n] });
    assert.deepEqual(e0.big, { kind: 'int64', values: [-9223372036854775808n] });
    assert.deepEqual(e0.empty, { kind: 'none', values: [] });
    assert.deepEqual(e0.n, { kind: 'float', values: [100] });
    assert.deepEqual(e1.x, { kind: 'float', values: [1.5, -Infinity] });
    assert.equal(Object.getPrototypeOf(e0), null);
    // `1` first makes the feature int64, so 2.5 after it is a kind error.
    assert.throws(() => req('{"examples": [{"f": [1, 2.5]}]}'), /expecting type: int64/);
    // Floats are stored as float32.
    assert.deepEqual(req('{"examples": [{"x": 0.1}]}').examples[0].x, { kind: 'float', values: [Math.fround(0.1)] });
    const plain = parseExamplesRequest(Buffer.from('{"examples": [{"x": 1}]}'), 'regress');
    assert.deepEqual(plain.examples[0].x, { kind: 'int64', values: [1n] });
    assert.equal(plain.context, undefined);
    assert.equal(plain.signatureName, undefined);
  });

  it('reports TF errors', () => {
    const err = (body: string, message: string) => expectError(() => req(body), message);
    err('{"signature_name": 1, "examples": []}', "JSON Value: {\n    \"signature_name\": 1,\n    \"examples\": []\n} not formatted correctly. 'signature_name' key must be a string value.");
    err('{"instances": [1]}', "JSON Value: {\n    \"instances\": [1]\n} When method is classify, key 'examples' is expected and was not found");
    expectError(() => req('{}', 'regress'), "JSON Value: {} When method is classify, key 'examples' is expected and was not found");
    err('{"examples": {}}', "JSON Value: {\n    \"examples\": {}\n} Expecting 'examples' value to be an list/array");
    err('{"examples": []}', "JSON Value: {\n    \"examples\": []\n} 'examples' value is an empty array");
    err('{"examples": [1]}', 'Example must be JSON object but got JSON Number');
    err('{"examples": [[]]}', 'Example must be JSON object but got JSON Array');
    err('{"context": "x", "examples": [{}]}', 'Example must be JSON object but got JSON String');
    err('{"examples": [{"names": null}]}', 'Feature: names has element with unexpected JSON type: Null');
    err('{"examples": [{"names": [[1]]}]}', 'Feature: names has element with unexpected JSON type: Array');
    err('{"examples": [{"names": {"a": 1}}]}', 'Feature: names has element with unexpected JSON type: Object');
    err('{"examples": [{"names": [1, "a"]}]}', 'Unexpected element type in feature: names expecting type: int64');
    err('{"examples": [{"names": ["a", 1.5]}]}', 'Unexpected element type in feature: names expecting type: bytes');
    err('{"examples": [{"names": [1.5, true]}]}', 'Unexpected element type in feature: names expecting type: float');
    err('{"examples": [{"names": [1.5, {"b64": "AA=="}]}]}', 'Unexpected element type in feature: names expecting type: float');
    err('{"examples": [{"big": 18446744073709551615}]}', 'Feature: big has uint64_t element. Only int64_t is supported.');
    err('{"examples": [{"b": {"b64": "A"}}]}', 'Unable to base64 decode');
  });

  it('encodes results like TF Serving', () => {
    assert.equal(
      encodeClassifyResponse([
        [['a', 0.5], ['b', 0.25]],
        [['', 0]],
      ]),
      '{\n    "results": [[["a", 0.5], ["b", 0.25]], [["", 0.0]]\n    ]\n}',
    );
    assert.equal(encodeRegressResponse([1.5, 2, NaN, -Infinity]), '{\n    "results": [1.5, 2.0, NaN, -Infinity]\n}');
    assert.equal(encodeRegressResponse([0.1]), '{\n    "results": [0.1]\n}');
    expectError(() => encodeClassifyResponse([]), 'Cannot convert empty ClassificationResults to JSON');
    expectError(() => encodeRegressResponse([]), 'Cannot convert empty RegressionResults to JSON');
  });
});

describe('string outputs that are not UTF-8', () => {
  it('are written as {"b64": ...} with their exact bytes, never altered to U+FFFD', () => {
    const raw = Buffer.from([0xff, 0x00, 0x62, 0x69, 0x6e, 0xc3]);
    const out = encodePredictResponse('row', { s: { dtype: 'DT_STRING', shape: [2], data: [Buffer.from('ok'), raw] } });
    const parsed = JSON.parse(out) as { predictions: unknown[] };
    assert.deepEqual(parsed.predictions, ['ok', { b64: raw.toString('base64') }]);
    assert.ok(!out.includes('\ufffd') && !out.includes('\uFFFD'));
  });
});
