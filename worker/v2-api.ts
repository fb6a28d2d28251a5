/**
 * The worker's half of the Open Inference Protocol ("KServe v2") infer: the gateway has resolved the
 * model and version and forwards the client's bytes; this module decodes them (worker/codec/v2-infer.ts),
 * runs the `serving_default` signature and encodes the answer.
 *
 *   V2_REST_INFER / V2_REST_INFER_BINARY   JSON [+ binary section] → u32 JSON length | JSON [| binary]
 *   V2_GRPC_INFER                          ModelInferRequest → ModelInferResponse
 */
import { invalidArgument } from '../common/errors.js';
import { V2_PREFIX_BYTES } from '../common/worker-protocol.js';
import { prepareRun, readGrpcRequest, readRestRequest, writeGrpcResponse, writeRestResponse, type V2Request } from './codec/v2-infer.js';
import { DEFAULT_SIGNATURE, type Tensor } from './codec/tensor.js';
import { checkDeadline, type CallContext } from './call-context.js';
import { findSignature, type Runtime } from './runtimes/runtime.js';

async function run(runtime: Runtime, model: string, request: V2Request, ctx: CallContext) {
  const signature = findSignature(runtime, DEFAULT_SIGNATURE);
  if (!signature) throw invalidArgument(`model '${model}' has no ${DEFAULT_SIGNATURE} signature`);
  const prepared = prepareRun(model, signature, request);
  checkDeadline(ctx);
  const result: Record<string, Tensor> = await runtime.run(DEFAULT_SIGNATURE, prepared.inputs, prepared.outputs, ctx);
  return { prepared, result };
}

/** A REST infer; `headerLength` is the client's Inference-Header-Content-Length, if it sent one. */
export async function runV2Rest(runtime: Runtime, model: string, body: Buffer, headerLength: number | undefined, ctx: CallContext): Promise<Buffer> {
  const request = readRestRequest(body, headerLength);
  const { prepared, result } = await run(runtime, model, request, ctx);
  const { json, binary } = writeRestResponse(model, ctx.version ?? '', request, prepared, result);
  return v2RestAnswer(json, binary);
}

/** A V2 REST answer as the worker protocol carries it: u32 LE JSON length | JSON | binary parts. */
export function v2RestAnswer(json: string, binary: readonly Uint8Array[] = []): Buffer {
  const jsonBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.allocUnsafe(V2_PREFIX_BYTES);
  prefix.writeUInt32LE(jsonBytes.length, 0);
  return Buffer.concat([prefix, jsonBytes, ...binary]);
}

/** A gRPC ModelInfer. */
export async function runV2Grpc(runtime: Runtime, model: string, body: Uint8Array, ctx: CallContext): Promise<Uint8Array> {
  let request: V2Request;
  try {
    request = readGrpcRequest(body);
  } catch (err) {
    if (err instanceof Error && err.name === 'ServingError') throw err;
    throw invalidArgument(`Could not parse ModelInferRequest: ${(err as Error).message}`);
  }
  const { prepared, result } = await run(runtime, model, request, ctx);
  return writeGrpcResponse(model, ctx.version ?? '', request, prepared, result);
}
