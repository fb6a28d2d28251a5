/**
 * The Open Inference Protocol ("KServe v2") with independent clients: Python's http.client for REST
 * (JSON and Triton's binary tensor data extension) and Debian's python3-grpcio over our
 * protos/inference/grpc_service.proto (test/python/v2_client.py), against a real gateway and workers.
 * Also checks that v2 infer takes the lean REST and gRPC paths. Skipped, saying why, only when
 * Python's grpc is not installed.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { PROTOS_DIR } from '../../common/protos.js';
import { PROJECT_ROOT, startGateway } from '../../gateway/gateway.js';
import { fastUnaryStats } from '../../gateway/grpc/fast-unary.js';
import { leanRestStats } from '../../gateway/rest/lean-rest.js';
import { findPython, run } from '../helpers/python.js';
import { freePort, standardRepo, tempDir, testFlags } from '../helpers/repo.js';

const SCRIPT = path.join(PROJECT_ROOT, 'test', 'python', 'v2_client.py');

const found = findPython();

test('python v2 clients: REST (JSON + binary extension) and gRPC GRPCInferenceService', { skip: 'missing' in found ? found.missing : false }, async () => {
  const { python } = found as { python: string };
  const { configFile } = await standardRepo();
  const port = await freePort();
  // `broken` never loads: server readiness asks only that some model is ready.
  const gw = await startGateway(
    await testFlags([`--model_config_file=${configFile}`, `--port=${port}`, '--grpc_api_host=127.0.0.1', '--readiness_requires_all_models=false']),
    pino({ level: 'silent' }),
  );
  try {
    const lean = leanRestStats.requests;
    const fast = fastUnaryStats.calls;
    const workdir = await tempDir('modelgate-pyv2-');
    const { code, out } = await run(python, [
      SCRIPT,
      '--rest', `127.0.0.1:${gw.restPort}`,
      '--grpc', `127.0.0.1:${gw.grpcPort}`,
      '--protos', PROTOS_DIR,
      '--workdir', workdir,
    ]);
    assert.equal(code, 0, out);
    assert.match(out, /^21 passed, 0 failed$/m, out);
    // Infer POSTs (all plain: no query string, no token) took the lean REST path; ModelInfer the lean gRPC path.
    assert.ok(leanRestStats.requests - lean >= 15, `lean REST requests: ${leanRestStats.requests - lean}`);
    assert.ok(fastUnaryStats.calls - fast >= 10, `lean gRPC calls: ${fastUnaryStats.calls - fast}`);
  } finally {
    await gw.close();
  }
});
