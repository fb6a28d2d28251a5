/**
 * The only part of a request message the gateway decodes: its ModelSpec (tensorflow_serving/apis/
 * model.proto). It is read straight off the wire with a protobufjs Reader, skipping every other field,
 * so tensors and examples pass through as bytes (the gateway does little per request).
 */
import protobuf from 'protobufjs';
import { Code, ServingError } from '../../common/errors.js';
import type { RoutingTable, VersionRoute } from '../routing/routing-table.js';

export interface ModelSpecFields {
  name: string;
  /** Decimal version, when `version` was set (int64; may exceed JS's safe integers). */
  version: string | undefined;
  /** When `version_label` was set. */
  label: string | undefined;
  signatureName: string;
}

const WT_BYTES = 2;
const WT_VARINT = 0;

/** Decodes a ModelSpec message. Of the version oneof, the member last on the wire wins. */
export function decodeModelSpec(bytes: Uint8Array): ModelSpecFields {
  const spec: ModelSpecFields = { name: '', version: undefined, label: undefined, signatureName: '' };
  const r = protobuf.Reader.create(bytes);
  while (r.pos < r.len) {
    const tag = r.uint32();
    switch (tag) {
      case (1 << 3) | WT_BYTES:
        spec.name = r.string();
        break;
      case (2 << 3) | WT_BYTES: {
        // google.protobuf.Int64Value; a repeated occurrence merges into the previous one.
        const v = protobuf.Reader.create(r.bytes());
        let value = spec.version ?? '0';
        while (v.pos < v.len) {
          const vtag = v.uint32();
          if (vtag === ((1 << 3) | WT_VARINT)) value = v.int64().toString();
          else v.skipType(vtag & 7);
        }
        spec.version = value;
        spec.label = undefined;
        break;
      }
      case (3 << 3) | WT_BYTES:
        spec.signatureName = r.string();
        break;
      case (4 << 3) | WT_BYTES:
        spec.label = r.string();
        spec.version = undefined;
        break;
      default:
        r.skipType(tag & 7);
    }
  }
  return spec;
}

/**
 * The ModelSpec at `field` of a request message, or undefined when the field is absent. Repeated
 * occurrences of a message field merge, which is what decoding their concatenation does.
 */
export function peekModelSpec(message: Uint8Array, field = 1): ModelSpecFields | undefined {
  const parts: Uint8Array[] = [];
  const r = protobuf.Reader.create(message);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === ((field << 3) | WT_BYTES)) parts.push(r.bytes());
    else r.skipType(tag & 7);
  }
  if (parts.length === 0) return undefined;
  return decodeModelSpec(parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts));
}

/**
 * The ModelSpec a MultiInferenceRequest is routed by: its first task's (TF Serving's
 * GetModelSpecFromRequest), or an empty one when there is no task or the task has none.
 */
export function peekMultiInferenceSpec(message: Uint8Array): ModelSpecFields {
  const r = protobuf.Reader.create(message);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | WT_BYTES)) {
      return peekModelSpec(r.bytes()) ?? decodeModelSpec(new Uint8Array(0));
    }
    r.skipType(tag & 7);
  }
  return decodeModelSpec(new Uint8Array(0));
}

/** Reads a message, or fails as TF Serving does when a request cannot be parsed. */
export function parseRequest<T>(what: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof ServingError) throw err;
    throw new ServingError(Code.INVALID_ARGUMENT, `Could not parse ${what}: ${(err as Error).message}`);
  }
}

/** ServerCore::GetServableHandle's resolution of a ModelSpec, on the current routing snapshot. */
export function resolveModelSpec(table: RoutingTable, spec: ModelSpecFields, routingKey?: string): VersionRoute {
  if (!spec.name) throw new ServingError(Code.INVALID_ARGUMENT, 'ModelSpec has no name specified.');
  return table.resolve(spec.name, spec.version, spec.label, routingKey);
}
