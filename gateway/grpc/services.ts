/**
 * gRPC service definitions built from our own .proto files (protos/), with identity serializers: every
 * handler receives the request message's bytes and returns the response message's bytes. Inference
 * requests thus cross the gateway undecoded; the small control-plane messages are decoded by their
 * handlers with the reflected types below.
 */
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { loadProtoRoot } from '../../common/protos.js';

export const PROTO_FILES = [
  'tensorflow_serving/apis/prediction_service.proto',
  'tensorflow_serving/apis/model_service.proto',
  'grpc/health/v1/health.proto',
  'inference/grpc_service.proto',
];

export function apiRoot(): protobuf.Root {
  return loadProtoRoot(PROTO_FILES);
}

export function apiType(name: string): protobuf.Type {
  return apiRoot().lookupType(name);
}

const identity = (b: Buffer): Buffer => b;

/** A grpc-js definition of `service` (fully qualified name) whose methods carry raw message bytes. */
export function rawServiceDefinition(service: string): ServiceDefinition {
  const svc = apiRoot().lookupService(service);
  const def: Record<string, MethodDefinition<Buffer, Buffer>> = {};
  for (const method of svc.methodsArray) {
    def[method.name] = {
      path: `/${svc.fullName.replace(/^\./, '')}/${method.name}`,
      requestStream: Boolean(method.requestStream),
      responseStream: Boolean(method.responseStream),
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
      originalName: method.name.charAt(0).toLowerCase() + method.name.slice(1),
    };
  }
  return def as ServiceDefinition;
}

/** Bytes of a Uint8Array as a Buffer, without copying. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
