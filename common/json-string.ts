/**
 * JSON strings as TF Serving writes them (rapidjson's Writer), shared by the gateway's error bodies
 * and the worker's response writer.
 */

/** Control characters that JSON.stringify writes as lowercase `\u00xx`; rapidjson uses uppercase hex. */
const HEX_ESCAPED_CONTROL = /[\u0000-\u0007\u000b\u000e-\u001f]/;
const HEX = '0123456789ABCDEF';

/**
 * A quoted JSON string as rapidjson's Writer escapes it: `"` and `\`, `\b \f \n \r \t`, other control
 * characters as `\u00XX` (uppercase); `/`, DEL and non-ASCII are written as they are.
 */
export function escapeJsonString(s: string): string {
  if (!HEX_ESCAPED_CONTROL.test(s)) return JSON.stringify(s);
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20) {
      out += c === 0x22 ? '\\"' : c === 0x5c ? '\\\\' : s[i];
    } else if (c === 0x08) out += '\\b';
    else if (c === 0x09) out += '\\t';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0c) out += '\\f';
    else if (c === 0x0d) out += '\\r';
    else out += '\\u00' + HEX[c >> 4] + HEX[c & 15];
  }
  return out + '"';
}
