/**
 * Serving throughput, latency and CPU per request: modelgate against the server a user would write
 * instead, all in one run on loopback, each load generator a separate process:
 *
 *   (a)  baseline: one Node process, Fastify + onnxruntime-node in-process (bench/baseline-server.ts), REST
 *   (b)  modelgate: gateway → one worker process per model version, REST (wrk) and gRPC Predict (h2load,
 *        one HTTP/2 connection with c streams, `tensor_content` inputs)
 *   (c)  modelgate with --enable_batching (BATCHING_PARAMETERS below)
 *   (b0) with --before_dist=<dir>: a gateway from another build (e.g. the previous commit's dist/), for
 *        before/after columns measured in the same run
 *
 * Cells: half_plus_two (tiny) at c=1 and c=32, the MLP 784→256→256→10 at c=32, and the compute-bound
 * MLP 784→1024→1024→10 over gRPC at c=64 (batched vs unbatched). The half_plus_two c=32 cell also runs
 * (b) over the Open Inference Protocol ("v2 REST": POST /v2/models/half_plus_two/infer with a JSON
 * body; "v2 gRPC": inference.GRPCInferenceService/ModelInfer with raw_input_contents), to compare with
 * TF Serving's API on the same model. The machine is shared by every
 * server and load generator, and its speed drifts, so each cell runs ROUNDS rounds in which every
 * variant runs once, back to back; a cell reports the median of its rounds, and each ratio is the
 * median of the per-round ratios (both sides of a ratio always come from the same round).
 *
 * CPU per request comes from /proc (user + system time of the gateway, and of its worker processes,
 * over the rounds, divided by the requests served). `--profile` also runs the gateway (and the
 * --before_dist one) under `node --cpu-prof` for REST and gRPC on the tiny model and lists the top
 * self-time entries.
 *
 *   npm run build && node dist/bench/serving.js [--seconds=4] [--rounds=3] [--before_dist=DIR] [--profile] [--write]
 * Needs wrk and h2load (Debian: apt-get install -y wrk nghttp2-client).
 */
import { execFile, fork, spawn, type ChildProcess } from 'node:child_process';
import * as grpcJs from '@grpc/grpc-js';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadProtoRoot } from '../common/protos.js';
import { makeHalfPlusTwo, makeMlp } from '../scripts/make-example-models.js';
import { freePort, tempDir, writeModel } from '../test/helpers/repo.js';
import { summarizeProfile } from './profile-summary.js';
import { updateResults } from './results.js';

const run = promisify(execFile);
const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=').slice(1).join('=');
const SECONDS = Number(arg('seconds') ?? 4);
const ROUNDS = Number(arg('rounds') ?? 3);
const BEFORE_DIST = arg('before_dist');
const PROFILE = process.argv.includes('--profile');
/** Load generator logs and profiles: outside the model repository the gateways watch. */
let scratch = os.tmpdir();

/**
 * (c)'s parameters. onnxruntime-node runs a session synchronously on the worker's thread, so one
 * batch runs at a time whatever num_batch_threads says; with one batch thread and no timeout, requests
 * that arrive while a batch runs form the next batch (no waiting at low load). Requests of up to 64
 * rows are accepted, but a batch runs at most 16 rows (enable_large_batch_splitting with
 * max_execution_batch_size): a batch of all 64 requests in flight left the gateway idle while it ran
 * and the worker idle while the gateway answered and parsed the next 64 (measured: 1.5x unbatched at
 * 64, 2.0-2.2x at 16; a row costs about the same in batches of 16 as of 64).
 */
const BATCHING_PARAMETERS = `max_batch_size { value: 64 }
batch_timeout_micros { value: 0 }
max_enqueued_batches { value: 64 }
num_batch_threads { value: 1 }
enable_large_batch_splitting { value: true }
max_execution_batch_size { value: 16 }
`;

interface Result {
  rps: number;
  p50ms: number;
  p99ms: number;
  errors: number;
  requests: number;
}

const WRK_SCRIPT = `
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open(os.getenv("BODY_FILE"), "rb")
wrk.body = f:read("*all")
f:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout + e.status))
end
`;

async function wrk(url: string, bodyFile: string, scriptFile: string, connections: number, seconds: number): Promise<Result> {
  const { stdout } = await run(
    'wrk',
    ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', '-s', scriptFile, url],
    { env: { ...process.env, BODY_FILE: bodyFile }, maxBuffer: 1 << 20 },
  );
  const m = /RESULT (\d+) (\d+) (\d+) (\d+) (\d+)/.exec(stdout);
  if (!m) throw new Error(`unexpected wrk output: ${stdout}`);
  const [, requests, durationUs, p50, p99, errors] = m.map(Number) as number[];
  return {
    rps: (requests as number) / ((durationUs as number) / 1e6),
    p50ms: (p50 as number) / 1000,
    p99ms: (p99 as number) / 1000,
    errors: errors as number,
    requests: requests as number,
  };
}

const PREDICT_PATH = '/tensorflow.serving.PredictionService/Predict';
const MODEL_INFER_PATH = '/inference.GRPCInferenceService/ModelInfer';

/** gRPC load from h2load (Predict unless told): one connection, `concurrency` streams, latencies from its log. */
async function h2load(target: string, framedFile: string, concurrency: number, seconds: number, method = PREDICT_PATH): Promise<Result> {
  // Not beside the models: the gateway watches that folder, and a log growing there would cost it work.
  const log = path.join(scratch, `h2load.${process.hrtime.bigint()}.log`);
  const { stdout } = await run(
    'h2load',
    ['-c1', `-m${concurrency}`, `-D${seconds}`, '-H', 'content-type: application/grpc', '-H', 'te: trailers', '-d', framedFile, `--log-file=${log}`, `http://${target}${method}`],
    { maxBuffer: 1 << 20 },
  );
  const done = /(\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(stdout);
  const lines = (await readFile(log, 'utf8')).trim().split('\n');
  await rm(log, { force: true });
  const micros = lines.map((l) => Number(l.split('\t')[2])).sort((a, b) => a - b);
  const pick = (p: number) => micros[Math.min(micros.length - 1, Math.max(0, Math.ceil((p / 100) * micros.length) - 1))] ?? 0;
  const ok = done ? Number(done[1]) : micros.length;
  return {
    rps: ok / seconds,
    p50ms: pick(50) / 1000,
    p99ms: pick(99) / 1000,
    errors: done ? Number(done[2]) + Number(done[3]) + Number(done[4]) : 0,
    requests: ok,
  };
}

/** Checks a gRPC target answers OK (h2load sees HTTP statuses only, not gRPC's). */
async function checkGrpc(target: string, bodyFile: string): Promise<void> {
  const { stdout } = await run(process.execPath, [path.join(DIST, 'bench/grpc-load.js'), `--target=${target}`, `--body=${bodyFile}`, '--concurrency=4', '--seconds=1'], {
    maxBuffer: 1 << 20,
  });
  const m = /RESULT (\d+) (\d+) (\d+) (\d+) (\d+)/.exec(stdout);
  if (!m || Number(m[5]) > 0 || Number(m[1]) === 0) throw new Error(`gRPC Predict on ${target} fails: ${stdout}`);
}

/** Checks a v2 ModelInfer answers OK (h2load sees HTTP statuses only, not gRPC's). */
async function checkV2Grpc(target: string, message: Buffer): Promise<void> {
  const client = new grpcJs.Client(target, grpcJs.credentials.createInsecure());
  try {
    await new Promise<void>((resolve, reject) => {
      client.makeUnaryRequest<Buffer, Buffer>(MODEL_INFER_PATH, (b) => b, (b) => b, message, new grpcJs.Metadata(), { deadline: Date.now() + 10_000 }, (err) =>
        err ? reject(new Error(`v2 ModelInfer on ${target} fails: ${err.message}`)) : resolve(),
      );
    });
  } finally {
    client.close();
  }
}

/** A ModelInferRequest with one FP32 input in raw_input_contents (tritonclient's way). */
function modelInferRequest(model: string, input: string, shape: number[], values: number[]): Buffer {
  const ModelInferRequest = loadProtoRoot(['inference/grpc_service.proto']).lookupType('inference.ModelInferRequest');
  return Buffer.from(
    ModelInferRequest.encode(
      ModelInferRequest.fromObject({
        model_name: model,
        inputs: [{ name: input, datatype: 'FP32', shape }],
        raw_input_contents: [Buffer.from(Float32Array.from(values).buffer)],
      }),
    ).finish(),
  );
}

const frame = (message: Buffer): Buffer => {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
};

function waitForOutput(child: ChildProcess, pattern: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (d: Buffer) => {
      seen += d;
      if (pattern.test(seen)) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`process exited (${code}) before ready: ${seen.slice(-2000)}`)));
  });
}

function predictRequest(model: string, input: string, shape: number[], values: number[]): Buffer {
  const PredictRequest = loadProtoRoot(['tensorflow_serving/apis/predict.proto']).lookupType('tensorflow.serving.PredictRequest');
  const message = Buffer.from(
    PredictRequest.encode(
      PredictRequest.fromObject({
        model_spec: { name: model },
        inputs: { [input]: { dtype: 1, tensor_shape: { dim: shape.map((size) => ({ size })) }, tensor_content: Buffer.from(Float32Array.from(values).buffer) } },
      }),
    ).finish(),
  );
  return message;
}

/** CPU time (user + system, all threads) of a process so far, in µs; 0 where /proc is not there. */
async function cpuMicros(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime (fields 14 and 15 of stat) are in clock ticks: USER_HZ, 100 on Linux.
  return ((Number(fields[11]) || 0) + (Number(fields[12]) || 0)) * 10_000;
}

async function childPids(pid: number | undefined): Promise<number[]> {
  if (pid === undefined) return [];
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.trim().split(/\s+/).filter(Boolean).map(Number);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

interface Server {
  name: string;
  rest: string;
  grpc: string;
  child: ChildProcess;
}

interface Sample {
  result: Result;
  /** CPU µs over the run: [server or gateway, its workers]. */
  cpu: [number, number];
}

async function measure(server: { child: ChildProcess } | undefined, load: () => Promise<Result>): Promise<Sample> {
  const pid = server?.child.pid;
  const workers = await childPids(pid);
  const sum = async (pids: number[]) => (await Promise.all(pids.map(cpuMicros))).reduce((x, y) => x + y, 0);
  const before = [await cpuMicros(pid), await sum(workers)];
  const result = await load();
  const after = [await cpuMicros(pid), await sum(workers)];
  return { result, cpu: [(after[0] as number) - (before[0] as number), (after[1] as number) - (before[1] as number)] };
}

/** Every round's samples of one variant in one cell. */
class Series {
  readonly samples: Sample[] = [];
  add(s: Sample): void {
    this.samples.push(s);
  }
  get rps(): number {
    return median(this.samples.map((s) => s.result.rps));
  }
  get p50(): number {
    return median(this.samples.map((s) => s.result.p50ms));
  }
  get p99(): number {
    return median(this.samples.map((s) => s.result.p99ms));
  }
  get errors(): number {
    return this.samples.reduce((n, s) => n + s.result.errors, 0);
  }
  /** µs per request over all rounds: [gateway or server, workers]. */
  get cpuPerRequest(): [number, number] {
    const requests = Math.max(1, this.samples.reduce((n, s) => n + s.result.requests, 0));
    return [0, 1].map((i) => this.samples.reduce((n, s) => n + (s.cpu[i] as number), 0) / requests) as [number, number];
  }
  /** Median over rounds of this series' rps / `other`'s rps in the same round. */
  ratio(other: Series): number {
    return median(this.samples.map((s, i) => s.result.rps / (other.samples[i] as Sample).result.rps));
  }
}

async function main(): Promise<void> {
  for (const tool of ['wrk', 'h2load']) {
    await run(tool, ['--version']).catch((err: { code?: string }) => {
      if (err.code === 'ENOENT') throw new Error(`${tool} is not installed (Debian: apt-get install -y wrk nghttp2-client)`);
    });
  }
  const dir = await tempDir('modelgate-bench-');
  scratch = await tempDir('modelgate-bench-scratch-');
  const mlpInput = Array.from({ length: 784 }, (_, i) => Math.round(((i * 37) % 255) / 2.55) / 100);
  const models = {
    half_plus_two: { bytes: makeHalfPlusTwo(), instance: [1.0, 2.0, 5.0] as unknown, input: 'x', shape: [3], values: [1.0, 2.0, 5.0] },
    mlp: { bytes: makeMlp(1), instance: [mlpInput] as unknown, input: 'images', shape: [1, 784], values: mlpInput },
    mlp_1024: { bytes: makeMlp(1, 1024), instance: [mlpInput] as unknown, input: 'images', shape: [1, 784], values: mlpInput },
  };
  type ModelName = keyof typeof models;
  const scriptFile = path.join(dir, 'post.lua');
  await writeFile(scriptFile, WRK_SCRIPT);
  const paramsFile = path.join(dir, 'batching.config');
  await writeFile(paramsFile, BATCHING_PARAMETERS);
  let config = 'model_config_list {\n';
  for (const [name, m] of Object.entries(models)) {
    await writeModel(dir, name, '1', m.bytes);
    await writeFile(path.join(dir, `${name}.json`), JSON.stringify({ instances: m.instance }));
    const grpc = predictRequest(name, m.input, m.shape, m.values);
    await writeFile(path.join(dir, `${name}.bin`), grpc);
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(grpc.length, 1);
    await writeFile(path.join(dir, `${name}.bin.framed`), Buffer.concat([prefix, grpc]));
    await writeFile(path.join(dir, `${name}.v2.json`), JSON.stringify({ inputs: [{ name: m.input, shape: m.shape, datatype: 'FP32', data: m.values }] }));
    const v2 = modelInferRequest(name, m.input, m.shape, m.values);
    await writeFile(path.join(dir, `${name}.v2.bin`), v2);
    await writeFile(path.join(dir, `${name}.v2.bin.framed`), frame(v2));
    config += `  config { name: "${name}" base_path: "${name}" model_platform: "onnx" }\n`;
  }
  await writeFile(path.join(dir, 'models.config'), `${config}}\n`);

  const loadBefore = os.loadavg()[0] as number;
  const children: ChildProcess[] = [];
  const startGateway = async (name: string, distDir: string, extra: string[], nodeOptions: string[] = []): Promise<Server> => {
    const rest = await freePort();
    const grpcPort = await freePort();
    const child = spawn(
      process.execPath,
      [
        ...nodeOptions,
        path.join(distDir, 'gateway/main.js'),
        `--model_config_file=${path.join(dir, 'models.config')}`,
        `--rest_api_port=${rest}`,
        '--rest_api_host=127.0.0.1',
        `--port=${grpcPort}`,
        '--grpc_api_host=127.0.0.1',
        ...extra,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } },
    );
    children.push(child);
    await waitForOutput(child, /Exporting HTTP\/REST API/);
    return { name, rest: `127.0.0.1:${rest}`, grpc: `127.0.0.1:${grpcPort}`, child };
  };
  const stopProcess = (child: ChildProcess) =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGINT');
    });

  const gateways: Server[] = [await startGateway('b', DIST, [])];
  if (BEFORE_DIST) gateways.push(await startGateway('b0', path.resolve(BEFORE_DIST), []));
  gateways.push(await startGateway('c', DIST, ['--enable_batching', `--batching_parameters_file=${paramsFile}`]));

  interface Group {
    model: ModelName;
    c: number;
    rest: boolean;
    variants: string[];
    /** Also run (b) over the Open Inference Protocol (v2 REST and v2 gRPC). */
    v2?: boolean;
  }
  const groups: Group[] = [
    { model: 'half_plus_two', c: 1, rest: true, variants: ['b', 'b0'] },
    { model: 'half_plus_two', c: 32, rest: true, variants: ['b', 'b0', 'c'], v2: true },
    { model: 'mlp', c: 32, rest: true, variants: ['b', 'b0', 'c'] },
    { model: 'mlp_1024', c: 64, rest: false, variants: ['b', 'b0', 'c'] },
  ];
  const series = new Map<string, Series>();
  const get = (key: string) => {
    let s = series.get(key);
    if (!s) series.set(key, (s = new Series()));
    return s;
  };

  try {
    for (const g of groups) {
      const bodyFile = path.join(dir, `${g.model}.json`);
      const framed = path.join(dir, `${g.model}.bin.framed`);
      const basePort = await freePort();
      const baseline = fork(path.join(DIST, 'bench/baseline-server.js'), [path.join(dir, g.model, '1', 'model.onnx'), String(basePort)], { stdio: 'ignore' });
      children.push(baseline);
      await new Promise<void>((resolve) => baseline.once('message', () => resolve()));
      const baseUrl = `http://127.0.0.1:${basePort}/v1/models/${g.model}:predict`;
      const variants = gateways.filter((s) => g.variants.includes(s.name));
      // Warm-up: JIT, connections, onnxruntime's first runs.
      await wrk(baseUrl, bodyFile, scriptFile, g.c, 1);
      for (const s of variants) {
        if (g.rest) await wrk(`http://${s.rest}/v1/models/${g.model}:predict`, bodyFile, scriptFile, g.c, 1);
        await checkGrpc(s.grpc, path.join(dir, `${g.model}.bin`));
        await h2load(s.grpc, framed, g.c, 1);
      }
      const v2Gateway = g.v2 ? variants.find((s) => s.name === 'b') : undefined;
      const v2Url = `http://${v2Gateway?.rest}/v2/models/${g.model}/infer`;
      const v2Body = path.join(dir, `${g.model}.v2.json`);
      const v2Framed = path.join(dir, `${g.model}.v2.bin.framed`);
      if (v2Gateway) {
        const check = await fetch(v2Url, { method: 'POST', body: await readFile(v2Body) });
        if (check.status !== 200) throw new Error(`v2 REST infer fails: ${check.status} ${await check.text()}`);
        await checkV2Grpc(v2Gateway.grpc, await readFile(path.join(dir, `${g.model}.v2.bin`)));
        await wrk(v2Url, v2Body, scriptFile, g.c, 1);
        await h2load(v2Gateway.grpc, v2Framed, g.c, 1, MODEL_INFER_PATH);
      }
      for (let round = 0; round < ROUNDS; round++) {
        get(`${g.model}/${g.c}/a/REST`).add(await measure({ child: baseline }, () => wrk(baseUrl, bodyFile, scriptFile, g.c, SECONDS)));
        for (const s of variants) {
          if (g.rest) get(`${g.model}/${g.c}/${s.name}/REST`).add(await measure(s, () => wrk(`http://${s.rest}/v1/models/${g.model}:predict`, bodyFile, scriptFile, g.c, SECONDS)));
          get(`${g.model}/${g.c}/${s.name}/gRPC`).add(await measure(s, () => h2load(s.grpc, framed, g.c, SECONDS)));
          // v2 right after the TF API on the same gateway, so both sides of its ratio see the same machine.
          if (s === v2Gateway) {
            get(`${g.model}/${g.c}/b/v2 REST`).add(await measure(s, () => wrk(v2Url, v2Body, scriptFile, g.c, SECONDS)));
            get(`${g.model}/${g.c}/b/v2 gRPC`).add(await measure(s, () => h2load(s.grpc, v2Framed, g.c, SECONDS, MODEL_INFER_PATH)));
          }
        }
        console.log(`${g.model} c=${g.c} round ${round + 1}/${ROUNDS} done`);
      }
      await stopProcess(baseline);
    }
  } finally {
    for (const c of children) c.kill('SIGTERM');
  }

  // ------------------------------------------------------------------------------------------
  const has = (key: string) => series.has(key);
  const cell = (s: Series) => `${s.rps.toFixed(0)} | ${s.p50.toFixed(2)} / ${s.p99.toFixed(2)}`;
  const variantNames = BEFORE_DIST ? ['b0', 'b', 'c'] : ['b', 'c'];
  const rows: string[] = [];
  const cpuRows: string[] = [];
  for (const g of groups) {
    const a = get(`${g.model}/${g.c}/a/REST`);
    for (const api of [...(g.rest ? ['REST', 'gRPC'] : ['gRPC']), ...(g.v2 ? ['v2 REST', 'v2 gRPC'] : [])]) {
      const cols = variantNames.map((v) => {
        const key = `${g.model}/${g.c}/${v}/${api}`;
        if (!has(key)) return '| | ';
        const s = get(key);
        return `| ${cell(s)} | **${s.ratio(a).toFixed(2)}** `;
      });
      const errors = variantNames.reduce((n, v) => n + (has(`${g.model}/${g.c}/${v}/${api}`) ? get(`${g.model}/${g.c}/${v}/${api}`).errors : 0), a.errors);
      rows.push(`| ${g.model} | ${api} | ${g.c} | ${cell(a)} ${cols.join('')}| ${errors} |`);
      const cpu = variantNames.map((v) => {
        const key = `${g.model}/${g.c}/${v}/${api}`;
        if (!has(key)) return '| ';
        const [gw, w] = get(key).cpuPerRequest;
        return `| ${gw.toFixed(0)} + ${w.toFixed(0)} `;
      });
      cpuRows.push(`| ${g.model} | ${api} | ${g.c} | ${api === 'REST' ? a.cpuPerRequest[0].toFixed(0) : ''} ${cpu.join('')}|`);
    }
  }

  const tinyA1 = get('half_plus_two/1/a/REST');
  const tinyB1 = get('half_plus_two/1/b/REST');
  const hop = tinyB1.p50 - tinyA1.p50;
  const goals: Array<[string, string, boolean]> = [];
  const goal = (what: string, value: string, met: boolean) => goals.push([what, value, met]);
  const r = (key: string, base: string) => get(key).ratio(get(base));
  goal('REST, half_plus_two, c=32: (b)/(a) ≥ 0.8', r('half_plus_two/32/b/REST', 'half_plus_two/32/a/REST').toFixed(2), r('half_plus_two/32/b/REST', 'half_plus_two/32/a/REST') >= 0.8);
  goal('gRPC, half_plus_two, c=32: (b) gRPC / (a) REST ≥ 0.8', r('half_plus_two/32/b/gRPC', 'half_plus_two/32/a/REST').toFixed(2), r('half_plus_two/32/b/gRPC', 'half_plus_two/32/a/REST') >= 0.8);
  const v2Rest = r('half_plus_two/32/b/v2 REST', 'half_plus_two/32/b/REST');
  const v2Grpc = r('half_plus_two/32/b/v2 gRPC', 'half_plus_two/32/b/gRPC');
  goal('v2 within 10% of the TF API, REST, half_plus_two, c=32: (b) v2 REST / (b) REST ≥ 0.9', v2Rest.toFixed(2), v2Rest >= 0.9);
  goal('v2 within 10% of the TF API, gRPC, half_plus_two, c=32: (b) v2 gRPC / (b) gRPC ≥ 0.9', v2Grpc.toFixed(2), v2Grpc >= 0.9);
  goal('REST, mlp, c=32: (b)/(a) ≥ 1.0', r('mlp/32/b/REST', 'mlp/32/a/REST').toFixed(2), r('mlp/32/b/REST', 'mlp/32/a/REST') >= 1.0);
  goal('p50 added at c=1 (REST, half_plus_two): (b) − (a) ≤ 0.15 ms', `${hop.toFixed(3)} ms`, hop <= 0.15);
  goal('batching, mlp_1024, gRPC, c=64: (c)/(b) ≥ 2.0', r('mlp_1024/64/c/gRPC', 'mlp_1024/64/b/gRPC').toFixed(2), r('mlp_1024/64/c/gRPC', 'mlp_1024/64/b/gRPC') >= 2.0);
  const gwRest = get('half_plus_two/32/b/REST').cpuPerRequest[0];
  const gwGrpc = get('half_plus_two/32/b/gRPC').cpuPerRequest[0];
  goal('gateway CPU per tiny REST request (c=32) ≤ 90 µs', `${gwRest.toFixed(0)} µs`, gwRest <= 90);
  goal('gateway CPU per tiny gRPC request (c=32) ≤ 120 µs', `${gwGrpc.toFixed(0)} µs`, gwGrpc <= 120);
  if (BEFORE_DIST) {
    const b0Rest = get('half_plus_two/32/b0/REST');
    const b0Grpc = get('half_plus_two/32/b0/gRPC');
    goal('(before) REST, half_plus_two, c=32: (b0)/(a)', b0Rest.ratio(get('half_plus_two/32/a/REST')).toFixed(2), true);
    goal('(before) gateway CPU per tiny REST / gRPC request', `${b0Rest.cpuPerRequest[0].toFixed(0)} / ${b0Grpc.cpuPerRequest[0].toFixed(0)} µs`, true);
  }

  // ------------------------------------------------------------------------------------------
  const profileLines: string[] = [];
  if (PROFILE) {
    const builds: Array<[string, string]> = [['after', DIST]];
    if (BEFORE_DIST) builds.unshift(['before', path.resolve(BEFORE_DIST)]);
    for (const [label, distDir] of builds) {
      for (const api of ['REST', 'gRPC']) {
        const profDir = path.join(scratch, `prof-${label}-${api}`);
        await mkdir(profDir, { recursive: true });
        const gw = await startGateway(`prof-${label}`, distDir, [], ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
        const bodyFile = path.join(dir, 'half_plus_two.json');
        if (api === 'REST') await wrk(`http://${gw.rest}/v1/models/half_plus_two:predict`, bodyFile, scriptFile, 32, SECONDS + 1);
        else await h2load(gw.grpc, path.join(dir, 'half_plus_two.bin.framed'), 32, SECONDS + 1);
        await stopProcess(gw.child);
        const files = (await readdir(profDir)).filter((f) => f.startsWith(`CPU.`) && f.includes(`.${gw.child.pid}.`));
        if (files.length === 0) continue;
        const { entries } = await summarizeProfile(path.join(profDir, files[0] as string), 14, true);
        profileLines.push(
          `**${label}, ${api}** (gateway process; share of its busy samples)`,
          '',
          '| self time | function |',
          '|---|---|',
          ...entries.map((e) => `| ${(e.share * 100).toFixed(1)}% | \`${e.name}\` |`),
          '',
        );
      }
    }
  }

  const section = [
    `Predict on one 2-core machine shared by the servers and the load generators (wrk -t1 for REST; h2load,`,
    `one HTTP/2 connection with c streams and \`tensor_content\` inputs, for gRPC). ${ROUNDS} rounds of ${SECONDS} s per`,
    'variant and cell, variants back to back within a round; cells show the median round, ratios the median of',
    'the per-round ratios. Load average (1 min) before / after the run: ' + `${loadBefore.toFixed(2)} / ${os.loadavg()[0]?.toFixed(2)}.`,
    '',
    '(a) baseline: Fastify + onnxruntime-node in one process, REST. (b) modelgate: gateway → one worker',
    `process. (c) modelgate with \`--enable_batching\`.${BEFORE_DIST ? ' (b0) modelgate before this change (the previous build), same flags as (b).' : ''}`,
    'Ratios are req/s over (a) REST at the same concurrency, also for gRPC rows. Batching parameters:',
    '',
    '```',
    BATCHING_PARAMETERS.trimEnd(),
    '```',
    '',
    '### Goals',
    '',
    '| goal | this run | |',
    '|---|---|---|',
    ...goals.map(([what, value, met]) => `| ${what} | ${value} | ${what.startsWith('(before)') ? '' : met ? 'met' : '**missed**'} |`),
    '',
    '### Throughput and latency (req/s, p50 / p99 ms)',
    '',
    `| model | API | c | (a) req/s | (a) p50 / p99 | ${variantNames.map((v) => `(${v}) req/s | (${v}) p50 / p99 | (${v})/(a)`).join(' | ')} | errors |`,
    `|---|---|---|---|---|${variantNames.map(() => '---|---|---|').join('')}---|`,
    ...rows,
    '',
    '### CPU per request (µs, user + system from /proc, all threads)',
    '',
    'The baseline process; gateway + its workers (every worker of the gateway, idle ones cost ~nothing).',
    '',
    `| model | API | c | (a) | ${variantNames.map((v) => `(${v}) gateway + workers`).join(' | ')} |`,
    `|---|---|---|---|${variantNames.map(() => '---|').join('')}`,
    ...cpuRows,
    ...(profileLines.length > 0 ? ['', '### Gateway CPU profile, half_plus_two at c=32 (top self time, `node --cpu-prof`)', '', ...profileLines] : []),
  ].join('\n');
  console.log(section);
  if (process.argv.includes('--write')) {
    const flags = [`--seconds=${SECONDS}`, `--rounds=${ROUNDS}`, ...(BEFORE_DIST ? [`--before_dist=${BEFORE_DIST}`] : []), ...(PROFILE ? ['--profile'] : []), '--write'];
    await updateResults('Serving throughput', `node dist/bench/serving.js ${flags.join(' ')}`, section);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
