/**
 * The Open Inference Protocol's gRPC service, `inference.GRPCInferenceService` (our copy of its .proto:
 * protos/inference/grpc_service.proto), on the same server as TF Serving's services.
 *
 * ServerLive, ServerReady, ModelReady, ServerMetadata and ModelMetadata are answered here from state
 * the gateway holds (gateway/routing/v2-model.ts). ModelInfer reads only `model_name` (1) and
 * `model_version` (2) off the wire, resolves them like the REST routes (a version number, a version
 * label, or none = latest) and forwards the request bytes untouched to a worker (kind V2_GRPC_INFER).
 * Failures are gRPC statuses of their TF codes: an unknown model is NOT_FOUND, as Triton answers.
 */
import protobuf from 'protobufjs';
import { Code, ServingError } from '../../common/errors.js';
import { Kind } from '../../common/worker-protocol.js';
import type { ModelManager } from '../manager/model-manager.js';
import { observeRequest } from '../metrics.js';
import { forwardToWorker } from '../routing/forward.js';
import { mirrorRequest } from '../routing/mirror.js';
import { modelMetadata, modelReady, resolveV2, serverReady, V2_SERVER_METADATA } from '../routing/v2-model.js';
import type { UnaryHandler } from './fast-unary.js';
import { parseRequest } from './model-spec.js';
import { apiType } from './services.js';
import { workerError } from './status.js';

export const INFERENCE_SERVICE = 'inference.GRPCInferenceService';

const WT_BYTES = 2;

/** Fields 1 (name / model_name) and 2 (version / model_version) of a request; the last occurrence wins. */
export function peekNameVersion(message: Uint8Array): { name: string; version: string } {
  const out = { name: '', version: '' };
  const r = protobuf.Reader.create(message);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | WT_BYTES)) out.name = r.string();
    else if (tag === ((2 << 3) | WT_BYTES)) out.version = r.string();
    else r.skipType(tag & 7);
  }
  return out;
}

const encode = (type: string, value: object): Uint8Array => {
  const t = apiType(type);
  return t.encode(t.fromObject(value)).finish();
};

/** GRPCInferenceService's methods as bytes → bytes handlers, by method name. */
export function inferenceHandlers(manager: ModelManager, readinessRequiresAllModels = true): Record<string, UnaryHandler> {
  const serverMetadata = encode('inference.ServerMetadataResponse', V2_SERVER_METADATA);
  return {
    ServerLive: async () => encode('inference.ServerLiveResponse', { live: true }),
    ServerReady: async () => encode('inference.ServerReadyResponse', { ready: serverReady(manager, readinessRequiresAllModels) }),
    ModelReady: async (request) => {
      const { name, version } = parseRequest('ModelReadyRequest', () => peekNameVersion(request));
      return encode('inference.ModelReadyResponse', { ready: modelReady(manager.table, name, version) });
    },
    ServerMetadata: async () => serverMetadata,
    ModelMetadata: async (request) => {
      const { name, version } = parseRequest('ModelMetadataRequest', () => peekNameVersion(request));
      const table = manager.table;
      return encode('inference.ModelMetadataResponse', modelMetadata(table, resolveV2(table, name, version)));
    },
    ModelInfer: async (request, call) => {
      const { name, version: versionText } = parseRequest('ModelInferRequest', () => peekNameVersion(request));
      const started = performance.now();
      let version: number | undefined;
      let code: number = Code.UNKNOWN;
      try {
        const table = manager.table;
        const route = resolveV2(table, name, versionText, call.routingKey);
        version = route.version;
        if (call.deadline !== 0 && call.deadline <= Date.now()) throw new ServingError(Code.DEADLINE_EXCEEDED, 'Deadline Exceeded');
        const pending = forwardToWorker(route, { kind: Kind.V2_GRPC_INFER, body: request, deadline: call.deadline, cancel: call.cancel });
        if (versionText && !/^\d+$/.test(versionText)) mirrorRequest(table, name, versionText, route, 'v2_infer', Kind.V2_GRPC_INFER, request);
        const answer = await pending;
        if (answer.code !== Code.OK) throw workerError(answer);
        code = Code.OK;
        return answer.body;
      } catch (err) {
        code = err instanceof ServingError ? err.code : Code.UNKNOWN;
        throw err;
      } finally {
        observeRequest({ model: name, version, api: 'v2_infer', entrypoint: 'GRPC', code, seconds: (performance.now() - started) / 1000 });
      }
    },
  };
}
