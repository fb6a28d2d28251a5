/**
 * The metadata documents the gateway answers itself (built once per version, when it loads or when
 * the shared view names it): REST's `GET .../metadata` body.
 */
import type { SignatureDef, TensorInfo } from '../../common/signature.js';

function tensorInfoJson(info: TensorInfo): object {
  return {
    dtype: info.dtype,
    tensor_shape:
      info.shape === null
        ? { dim: [], unknown_rank: true }
        : { dim: info.shape.map((d) => ({ size: String(d), name: '' })), unknown_rank: false },
    name: info.name,
  };
}

/**
 * The body of `GET /v1/models/<name>[/versions/<v>]/metadata`, laid out as TF Serving concatenates it:
 * the ModelSpec, then the SignatureDefMap nested under `metadata.signature_def.signature_def`.
 */
export function metadataJson(model: string, version: number, signatures: Record<string, SignatureDef>): string {
  const sigs: Record<string, object> = {};
  for (const [name, sig] of Object.entries(signatures)) {
    const map = (side: Record<string, TensorInfo>) =>
      Object.fromEntries(Object.entries(side).map(([alias, info]) => [alias, tensorInfoJson(info)]));
    sigs[name] = { inputs: map(sig.inputs), outputs: map(sig.outputs), method_name: sig.methodName, defaults: {} };
  }
  const spec = JSON.stringify({ name: model, signature_name: '', version: String(version) }, null, 1);
  const defs = JSON.stringify({ signature_def: sigs }, null, 1);
  return `{\n"model_spec":${spec},\n"metadata": {"signature_def": ${defs}}\n}\n`;
}
