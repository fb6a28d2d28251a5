/**
 * The `modelgate` command as a user runs it: a real process, its exit codes and messages, and
 * single-model mode with tensorflow_model_server's flags.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { request } from 'undici';
import { makeHalfPlusTwo } from '../../scripts/make-example-models.js';
import { freePort, tempDir, writeModel } from '../helpers/repo.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../gateway/main.js');
/** The installed command (package.json `bin`), as a user runs it. */
const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/modelgate.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}, untilOutput?: RegExp, entry = MAIN): Promise<Run & { kill: () => Promise<number | null> }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [entry, ...args], {
      env: { ...process.env, MODEL_NAME: '', MODEL_BASE_PATH: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const kill = async () => {
      child.kill('SIGTERM');
      return exited;
    };
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
      if (untilOutput?.test(stdout)) resolve({ code: null, stdout, stderr, kill });
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    void exited.then((code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, kill });
    });
  });
}

test('modelgate --help lists the ops commands, one line each, and the server flags', async () => {
  const r = await run(['--help'], {}, undefined, BIN);
  assert.equal(r.code, 0, r.stderr);
  for (const command of ['status', 'labels', 'reload', 'wait']) {
    const lines = r.stdout.split('\n').filter((l) => new RegExp(`^  ${command}\\b`).test(l));
    assert.equal(lines.length, 1, `${command}: ${JSON.stringify(lines)}`);
    assert.match(lines[0]!, new RegExp(`^  ${command}( \\S+)?\\s{2,}\\w`), lines[0]);
  }
  assert.match(r.stdout, /modelgate <command> --help/);
  assert.match(r.stdout, /^  --model_config_file=/m);
  assert.match(r.stdout, /^  --saved_model_tags=/m);
});

test('each ops command has its own --help (exit 0, nothing sent to a gateway)', async () => {
  const expected: Record<string, RegExp[]> = {
    status: [/^usage: modelgate status \[model\]/, /STATE/],
    labels: [/^usage: modelgate labels \[model\]/, /PENDING/],
    reload: [/^usage: modelgate reload /, /config:reload/],
    wait: [/^usage: modelgate wait <model>/, /--timeout S/, /--label L/, /--version N/],
  };
  for (const [command, patterns] of Object.entries(expected)) {
    // An unreachable --url shows that help answers without calling the gateway.
    for (const flag of ['--help', '-h']) {
      const r = await run([command, flag, '--url=http://127.0.0.1:1'], {}, undefined, BIN);
      assert.equal(r.code, 0, `${command} ${flag}: ${r.stderr}`);
      for (const p of [...patterns, /--url URL/, /--json/, /Exit codes: 0/]) assert.match(r.stdout, p, `${command} ${flag}`);
      assert.doesNotMatch(r.stdout, /--model_config_file/, command);
    }
  }
});

test('an unknown flag is a clear error with exit code 2', async () => {
  const r = await run(['--no_such_flag=1']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Unknown option '--no_such_flag'/);
  assert.match(r.stderr, /--model_config_file/);
});

test('a malformed models.config exits 255 with file:line:col', async () => {
  const dir = await tempDir();
  const file = path.join(dir, 'models.config');
  await writeFile(file, 'model_config_list {\n  config {\n    name: "a"\n    base_pth: "/x"\n  }\n}\n');
  const r = await run([`--model_config_file=${file}`, '--rest_api_port=0', '--port=0']);
  assert.equal(r.code, 255);
  assert.match(r.stderr, new RegExp(`Failed to start server\\. Error: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4:5: `));
  assert.equal(r.stderr.trim().split('\n').length, 1, 'one line of error');
});

test('single-model mode from MODEL_NAME / MODEL_BASE_PATH, SIGTERM exits 0', async () => {
  const dir = await tempDir();
  await writeModel(dir, 'my_model', '1', makeHalfPlusTwo());
  const port = await freePort();
  const r = await run(
    [`--rest_api_port=${port}`, '--rest_api_host=127.0.0.1', '--port=0'],
    { MODEL_NAME: 'my_model', MODEL_BASE_PATH: dir },
    /Exporting HTTP\/REST API/,
  );
  assert.equal(r.code, null, r.stderr);
  const res = await request(`http://127.0.0.1:${port}/v1/models/my_model:predict`, {
    method: 'POST',
    body: '{"instances": [1.0, 2.0, 5.0]}',
  });
  assert.deepEqual(await res.body.json(), { predictions: [2.5, 3.0, 4.5] });
  assert.equal(await r.kill(), 0);
});

test('--model_name with --model_base_path', async () => {
  const dir = await tempDir();
  await writeModel(dir, 'm', '3', makeHalfPlusTwo());
  const port = await freePort();
  const r = await run(
    [`--rest_api_port=${port}`, '--rest_api_host=127.0.0.1', '--port=0', '--model_name=half', `--model_base_path=${path.join(dir, 'm')}`],
    {},
    /Exporting HTTP\/REST API/,
  );
  const res = await request(`http://127.0.0.1:${port}/v1/models/half`);
  const body = (await res.body.json()) as { model_version_status: Array<{ version: string; state: string }> };
  assert.equal(body.model_version_status[0]?.version, '3');
  assert.equal(body.model_version_status[0]?.state, 'AVAILABLE');
  assert.equal(await r.kill(), 0);
});

test('SIGTERM drains requests in flight, stops the workers and exits 0', async () => {
  const { makeMlp } = await import('../../scripts/make-example-models.js');
  const dir = await tempDir();
  await writeModel(dir, 'mlp', '1', makeMlp(1));
  const port = await freePort();
  const r = await run(
    [`--rest_api_port=${port}`, '--rest_api_host=127.0.0.1', '--port=0', '--model_name=mlp', `--model_base_path=${path.join(dir, 'mlp')}`],
    {},
    /Exporting HTTP\/REST API/,
  );
  const row = `[${new Array(784).fill('0.25').join(',')}]`;
  const body = `{"instances": [${new Array(2000).fill(row).join(',')}]}`;
  const inFlight = request(`http://127.0.0.1:${port}/v1/models/mlp:predict`, { method: 'POST', body });
  await new Promise((res) => setTimeout(res, 30));
  const exited = r.kill();
  const res = await inFlight;
  assert.equal(res.statusCode, 200);
  const answer = (await res.body.json()) as { predictions: number[][] };
  assert.equal(answer.predictions.length, 2000);
  assert.equal(await exited, 0);
});
