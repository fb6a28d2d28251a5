/**
 * An independent client: Debian's python3-grpcio and python3-grpc-tools compile our protos/ with
 * protoc and call Predict, GetModelMetadata, GetModelStatus and Health on a real gateway
 * (test/python/tf_serving_client.py). Skipped, saying why, only when Python's grpc is not installed.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { PROTOS_DIR } from '../../common/protos.js';
import { PROJECT_ROOT, startGateway } from '../../gateway/gateway.js';
import { findPython, run } from '../helpers/python.js';
import { freePort, standardRepo, tempDir, testFlags } from '../helpers/repo.js';

const SCRIPT = path.join(PROJECT_ROOT, 'test', 'python', 'tf_serving_client.py');

const found = findPython();

test('python grpcio client: Predict, GetModelMetadata, GetModelStatus, Health', { skip: 'missing' in found ? found.missing : false }, async () => {
  const { python } = found as { python: string };
  const { configFile } = await standardRepo();
  const port = await freePort();
  const gw = await startGateway(
    await testFlags([`--model_config_file=${configFile}`, `--port=${port}`, '--grpc_api_host=127.0.0.1']),
    pino({ level: 'silent' }),
  );
  try {
    const workdir = await tempDir('modelgate-pyproto-');
    const { code, out } = await run(python, [SCRIPT, '--address', `127.0.0.1:${gw.grpcPort}`, '--protos', PROTOS_DIR, '--workdir', workdir]);
    assert.equal(code, 0, out);
    assert.match(out, /^7 passed, 0 failed$/m, out);
  } finally {
    await gw.close();
  }
});
