/**
 * `tensorflow.serving.PredictionService` on the gateway.
 *
 * Predict, Classify, Regress and MultiInference read only the request's ModelSpec, resolve it on the
 * routing snapshot exactly as REST does, and forward the request bytes to a worker of that version
 * (worker/grpc-api.ts runs them). GetModelMetadata is answered here from the signatures the manager
 * holds. Validation order and messages follow TF Serving (predict_impl.cc, classification_service.cc,
 * multi_inference_helper.cc, get_model_metadata_impl.cc).
 */
import type { sendUnaryData, ServerUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { Code, invalidArgument, ServingError } from '../../common/errors.js';
import type { SignatureDef, TensorInfo } from '../../common/signature.js';
import { Kind } from '../../common/worker-protocol.js';
import { CancelSlot } from '../fleet/worker-channel.js';
import type { CallInfo, UnaryHandler } from './fast-unary.js';
import type { ModelManager } from '../manager/model-manager.js';
import { forwardToWorker, routeWithMetadata } from '../routing/forward.js';
import { observeRequest } from '../metrics.js';
import { mirrorRequest } from '../routing/mirror.js';
import type { RoutingTable, VersionRoute } from '../routing/routing-table.js';
import {
  decodeModelSpec,
  parseRequest,
  peekModelSpec,
  peekMultiInferenceSpec,
  resolveModelSpec,
  type ModelSpecFields,
} from './model-spec.js';
import { apiType, asBuffer } from './services.js';
import { grpcStatus, workerError } from './status.js';

export const SIGNATURE_DEF_FIELD = 'signature_def';
export const SIGNATURE_DEF_MAP_TYPE_URL = 'type.googleapis.com/tensorflow.serving.SignatureDefMap';

type RawCall = ServerUnaryCall<Buffer, Buffer>;

/** The call's deadline in epoch ms; 0 when it has none. */
function deadlineOf(call: RawCall): number {
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) ? at : 0;
}

/**
 * Adapts a bytes → bytes handler to grpc-js, mapping failures to TF's gRPC statuses. (Plain calls of
 * PredictionService usually reach the same handlers by fast-unary.ts instead.)
 */
export function unary(handler: UnaryHandler) {
  return (call: RawCall, callback: sendUnaryData<Buffer>): void => {
    const cancel = new CancelSlot();
    const onCancel = () => cancel.cancel();
    call.once('cancelled', onCancel);
    const key = call.metadata.get('x-modelgate-routing-key')[0];
    handler(call.request, { deadline: deadlineOf(call), cancel, routingKey: typeof key === 'string' ? key : key?.toString() }).then(
      (out) => {
        call.off('cancelled', onCancel);
        callback(null, asBuffer(out));
      },
      (err: unknown) => {
        call.off('cancelled', onCancel);
        callback(grpcStatus(err));
      },
    );
  };
}

/**
 * Forwards the request bytes to a worker of `route` and returns its answer bytes. A request to a
 * mirrored label (`mirror`: the table, model and label) is also copied to the mirror's version.
 */
async function viaWorker(
  route: VersionRoute,
  kind: number,
  request: Buffer,
  call: CallInfo,
  mirror?: { table: RoutingTable; name: string; label: string; api: string },
): Promise<Uint8Array> {
  const deadline = call.deadline;
  if (deadline !== 0 && deadline <= Date.now()) throw new ServingError(Code.DEADLINE_EXCEEDED, 'Deadline Exceeded');
  const pending = forwardToWorker(route, { kind, body: request, deadline, cancel: call.cancel });
  if (mirror) mirrorRequest(mirror.table, mirror.name, mirror.label, route, mirror.api, kind, request);
  const answer = await pending;
  if (answer.code !== Code.OK) throw workerError(answer);
  return answer.body;
}

function requireSpec(request: Buffer, what: string): ModelSpecFields {
  const spec = parseRequest(what, () => peekModelSpec(request));
  if (!spec) throw invalidArgument('Missing ModelSpec');
  return spec;
}

export const PREDICTION_SERVICE = 'tensorflow.serving.PredictionService';

/** PredictionService's methods as bytes → bytes handlers, by method name. */
export function predictionHandlers(manager: ModelManager): Record<string, UnaryHandler> {
  const inference = (kind: number, what: string, api: string): UnaryHandler =>
    async (request, call) => {
      const spec = requireSpec(request, what);
      const started = performance.now();
      let version: number | undefined;
      let code: number = Code.UNKNOWN;
      try {
        const table = manager.table;
        const route = resolveModelSpec(table, spec, call.routingKey);
        version = route.version;
        const mirror = spec.label === undefined ? undefined : { table, name: spec.name, label: spec.label, api };
        const out = await viaWorker(route, kind, request, call, mirror);
        code = Code.OK;
        return out;
      } catch (err) {
        code = err instanceof ServingError ? err.code : Code.UNKNOWN;
        throw err;
      } finally {
        const seconds = (performance.now() - started) / 1000;
        observeRequest({ model: spec.name, version, api, entrypoint: 'GRPC', code, seconds });
      }
    };
  return {
    Predict: inference(Kind.GRPC_PREDICT, 'PredictRequest', 'predict'),
    Classify: inference(Kind.GRPC_CLASSIFY, 'ClassificationRequest', 'classify'),
    Regress: inference(Kind.GRPC_REGRESS, 'RegressionRequest', 'regress'),
    MultiInference: async (request, call) => {
      const spec = parseRequest('MultiInferenceRequest', () => peekMultiInferenceSpec(request));
      return viaWorker(resolveModelSpec(manager.table, spec, call.routingKey), Kind.GRPC_MULTI_INFERENCE, request, call);
    },
    GetModelMetadata: async (request) => getModelMetadata(manager, request),
  };
}

/** PredictionService for grpc-js. */
export function predictionService(manager: ModelManager): UntypedServiceImplementation {
  const out: UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(predictionHandlers(manager))) out[name] = unary(handler);
  return out;
}

interface MetadataRequest {
  spec: ModelSpecFields | undefined;
  fields: string[];
}

function readMetadataRequest(bytes: Uint8Array): MetadataRequest {
  const parts: Uint8Array[] = [];
  const fields: string[] = [];
  const r = protobuf.Reader.create(bytes);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | 2)) parts.push(r.bytes());
    else if (tag === ((2 << 3) | 2)) fields.push(r.string());
    else r.skipType(tag & 7);
  }
  return { spec: parts.length === 0 ? undefined : decodeModelSpec(Buffer.concat(parts)), fields };
}

async function getModelMetadata(manager: ModelManager, request: Buffer): Promise<Uint8Array> {
  const { spec, fields } = parseRequest('GetModelMetadataRequest', () => readMetadataRequest(request));
  if (!spec) throw invalidArgument('Missing ModelSpec');
  if (fields.length === 0) throw invalidArgument('GetModelMetadataRequest must specify at least one metadata_field');
  for (const field of fields) {
    if (field !== SIGNATURE_DEF_FIELD) throw invalidArgument(`Metadata field ${field} is not supported`);
  }
  // --load_on_demand: a version never loaded loads first (its signatures come from its worker).
  const route = await routeWithMetadata(resolveModelSpec(manager.table, spec));
  const response = apiType('tensorflow.serving.GetModelMetadataResponse');
  return response
    .encode(
      response.fromObject({
        model_spec: { name: spec.name, version: { value: route.version } },
        metadata: {
          [SIGNATURE_DEF_FIELD]: { type_url: SIGNATURE_DEF_MAP_TYPE_URL, value: signatureDefMapBytes(route.signatures) },
        },
      }),
    )
    .finish();
}

/** Serialized SignatureDefMap per signatures object (one per loaded version, fixed after load). */
const signatureMapCache = new WeakMap<object, Uint8Array>();

export function signatureDefMapBytes(signatures: Readonly<Record<string, SignatureDef>>): Uint8Array {
  let bytes = signatureMapCache.get(signatures);
  if (!bytes) {
    const type = apiType('tensorflow.serving.SignatureDefMap');
    const side = (infos: Record<string, TensorInfo>) =>
      Object.fromEntries(Object.entries(infos).map(([alias, info]) => [alias, tensorInfoObject(info)]));
    const signatureDef = Object.fromEntries(
      Object.entries(signatures).map(([name, sig]) => [
        name,
        { inputs: side(sig.inputs), outputs: side(sig.outputs), method_name: sig.methodName },
      ]),
    );
    bytes = type.encode(type.fromObject({ signature_def: signatureDef })).finish();
    signatureMapCache.set(signatures, bytes);
  }
  return bytes;
}

function tensorInfoObject(info: TensorInfo): object {
  return {
    name: info.name,
    dtype: info.dtype,
    tensor_shape: info.shape === null ? { unknown_rank: true } : { dim: info.shape.map((size) => ({ size })) },
  };
}
