/**
 * compose.yaml, checked without a Docker engine: its services are read from the file and their
 * commands, entry points (the Dockerfile's for the gateway), environments and healthchecks are run
 * as local processes on loopback, as the containers would run them:
 *
 *   redis    a real redis-server on a free port (test/helpers/redis.ts)
 *   worker   the compose entrypoint + command; 127.0.0.2 plays the container's own address (its
 *            `--host=0.0.0.0` binds there) and a counting TCP proxy on 127.0.0.1 plays the network's
 *            route to it (`--advertise_host=worker`), so the test sees the gateway's requests arrive
 *   gateway  the Dockerfile's ENTRYPOINT + the compose command, bound to 127.0.0.1
 *
 * Container paths are rewritten through the service's volumes (./models and ./config/models.config
 * into a temp project folder with freshly generated example models) and the image's WORKDIR (/app →
 * this checkout); container ports to free local ports; service names to loopback addresses. Also
 * runs `docker-compose -f compose.yaml config` when docker-compose is installed.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { constants, accessSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { request } from 'undici';
import { parse as parseYaml } from 'yaml';
import { loadProtoRoot } from '../../common/protos.js';
import { decodeRequest, FrameReader, FrameType, Kind, PREFACE } from '../../common/worker-protocol.js';
import { WorkerChannel } from '../../gateway/fleet/worker-channel.js';
import { exampleModelFiles } from '../../scripts/make-example-models.js';
import { exampleSavedModels, writeSavedModel } from '../../scripts/make-example-savedmodel.js';
import { RedisServer } from '../helpers/redis.js';
import { freePort, tempDir, writeModel } from '../helpers/repo.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const COMPOSE_FILE = path.join(ROOT, 'compose.yaml');

/** Where each compose service's "container" lives on this machine. */
const WORKER_OWN_HOST = '127.0.0.2';

// ---------------------------------------------------------------------------------------------
// Reading compose.yaml and the Dockerfile

interface ComposeHealthcheck {
  test: string[] | string;
  interval?: string;
  timeout?: string;
  retries?: number;
  start_period?: string;
}

interface ComposeService {
  image?: string;
  build?: string | { context: string };
  entrypoint?: string[] | string;
  command?: string[] | string;
  environment?: Record<string, string | number> | string[];
  ports?: string[];
  expose?: Array<string | number>;
  volumes?: string[];
  healthcheck?: ComposeHealthcheck;
  depends_on?: string[] | Record<string, { condition?: string }>;
}

interface ComposeFile {
  services: Record<string, ComposeService>;
}

function readCompose(): ComposeFile {
  return parseYaml(readFileSync(COMPOSE_FILE, 'utf8')) as ComposeFile;
}

interface DockerImage {
  workdir: string;
  env: Record<string, string>;
  entrypoint: string[];
  healthcheck: string[];
  exposed: number[];
  user: string | undefined;
}

/** The runtime stage (after the last FROM) of the Dockerfile: the instructions a container runs with. */
function readDockerfile(): DockerImage {
  const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  const lines = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const lastFrom = lines.map((l) => /^FROM\s/i.test(l)).lastIndexOf(true);
  const image: DockerImage = { workdir: '/', env: {}, entrypoint: [], healthcheck: [], exposed: [], user: undefined };
  for (const line of lines.slice(lastFrom)) {
    const m = /^(\w+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const [, instruction, rest] = m as unknown as [string, string, string];
    switch (instruction.toUpperCase()) {
      case 'WORKDIR':
        image.workdir = rest;
        break;
      case 'ENV':
        for (const kv of rest.match(/\S+=("[^"]*"|\S*)/g) ?? []) {
          const i = kv.indexOf('=');
          image.env[kv.slice(0, i)] = kv.slice(i + 1).replace(/^"(.*)"$/, '$1');
        }
        break;
      case 'ENTRYPOINT':
        image.entrypoint = JSON.parse(rest) as string[];
        break;
      case 'HEALTHCHECK': {
        const cmd = /\bCMD\s+(\[.*\])\s*$/.exec(rest);
        assert.ok(cmd, `HEALTHCHECK needs the exec form CMD [...]: ${rest}`);
        image.healthcheck = JSON.parse(cmd[1] as string) as string[];
        break;
      }
      case 'EXPOSE':
        image.exposed.push(...rest.split(/\s+/).map((p) => Number.parseInt(p, 10)));
        break;
      case 'USER':
        image.user = rest;
        break;
    }
  }
  return image;
}

const asList = (v: string[] | string | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : v.split(/\s+/));

function environmentOf(service: ComposeService): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]));
}

/** Container ports a service publishes or exposes. */
function containerPorts(service: ComposeService): number[] {
  const published = (service.ports ?? []).map((p) => Number(String(p).split(':').pop()!.split('/')[0]));
  const exposed = (service.expose ?? []).map((p) => Number(String(p).split('/')[0]));
  return [...new Set([...published, ...exposed])];
}

// ---------------------------------------------------------------------------------------------
// Turning a service into a local process

interface Placement {
  /** The address the "container" binds and calls itself (its loopback and 0.0.0.0). */
  ownHost: string;
  /** How the other services reach it (by its service name). */
  reachHost: string;
  /** container port → local port */
  ports: Map<number, number>;
}

class Translator {
  readonly #projectDir: string;
  readonly #workdirLocal: string;
  readonly #image: DockerImage;
  readonly #placements: Map<string, Placement>;

  constructor(projectDir: string, image: DockerImage, placements: Map<string, Placement>) {
    this.#projectDir = projectDir;
    this.#workdirLocal = ROOT;
    this.#image = image;
    this.#placements = placements;
  }

  /** container path prefix → local path, longest first: the service's volumes, then the image's WORKDIR. */
  mounts(service: ComposeService): Array<[string, string]> {
    const mounts: Array<[string, string]> = (service.volumes ?? []).map((v) => {
      const [source, target] = v.split(':') as [string, string];
      assert.ok(source.startsWith('.'), `volume ${v}: only project-relative bind mounts are translated`);
      return [target, path.resolve(this.#projectDir, source)];
    });
    mounts.push([this.#image.workdir, this.#workdirLocal]);
    return mounts.sort((a, b) => b[0].length - a[0].length);
  }

  /** One argument or environment value of service `name`, as it should read on this machine. */
  value(name: string, service: ComposeService, raw: string): string {
    const own = this.#placements.get(name)!;
    let flag = '';
    let value = raw;
    const m = /^(--[a-z0-9_]+=)(.*)$/.exec(raw);
    if (m) [, flag, value] = m as unknown as [string, string, string];
    // Paths inside the container.
    for (const [target, local] of this.mounts(service)) {
      if (value === target || value.startsWith(`${target}/`)) {
        value = local + value.slice(target.length);
        break;
      }
    }
    // A port flag naming one of this service's container ports.
    if (/port=$/.test(flag) && /^\d+$/.test(value) && own.ports.has(Number(value))) value = String(own.ports.get(Number(value)));
    // host:port of another service, or of this one from inside (loopback).
    value = value.replace(/\b(localhost|127\.0\.0\.1|[a-z][a-z0-9_-]*):(\d+)\b/g, (whole, host: string, port: string) => {
      const self = host === 'localhost' || host === '127.0.0.1';
      const target = self ? own : this.#placements.get(host);
      if (!target) return whole;
      const local = target.ports.get(Number(port));
      // Not a port of that service (e.g. the image's HEALTHCHECK_URL in the worker, whose compose
      // healthcheck replaces the image's): left as written.
      if (local === undefined) return whole;
      return `${self ? own.ownHost : target.reachHost}:${local}`;
    });
    // Bind and advertised addresses.
    if (flag && /host=$/.test(flag)) {
      if (value === '0.0.0.0') value = own.ownHost;
      else if (this.#placements.has(value)) value = this.#placements.get(value)!.reachHost;
    }
    return flag + value;
  }

  argv(name: string, service: ComposeService): string[] {
    const entrypoint = service.entrypoint !== undefined ? asList(service.entrypoint) : this.#image.entrypoint;
    return [...entrypoint, ...asList(service.command)].map((a) => this.value(name, service, a));
  }

  env(name: string, service: ComposeService): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env };
    // Nothing from the test's own environment that the gateway or worker reads.
    for (const k of ['MODEL_NAME', 'MODEL_BASE_PATH', 'REDIS_URL', 'MODELGATE_API_TOKEN', 'MODELGATE_ADMIN_TOKEN', 'HEALTHCHECK_URL']) {
      delete env[k];
    }
    for (const [k, v] of Object.entries({ ...this.#image.env, ...environmentOf(service) })) env[k] = this.value(name, service, v);
    return env;
  }

  /** The healthcheck's command (CMD or CMD-SHELL), or the image's HEALTHCHECK when the service has none. */
  healthcheck(name: string, service: ComposeService): string[] {
    const test = service.healthcheck?.test;
    if (test === undefined) return this.#image.healthcheck.map((a) => this.value(name, service, a));
    const list = asList(test);
    if (list[0] === 'CMD-SHELL') return ['sh', '-c', this.value(name, service, list.slice(1).join(' '))];
    assert.equal(list[0], 'CMD', `${name}: healthcheck.test must start with CMD or CMD-SHELL`);
    return list.slice(1).map((a) => this.value(name, service, a));
  }
}

// ---------------------------------------------------------------------------------------------
// Processes

interface Running {
  name: string;
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function start(name: string, argv: string[], env: NodeJS.ProcessEnv): Running {
  const [cmd, ...args] = argv as [string, ...string[]];
  const child = spawn(cmd, args, { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const collect = (d: Buffer) => {
    out = (out + d.toString()).slice(-20_000);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', (err) => {
      out += `\nspawn failed: ${err.message}`;
      resolve(-1);
    });
  });
  return { name, child, output: () => out, exited };
}

function run(argv: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 15_000): { code: number | null; out: string } {
  const [cmd, ...args] = argv as [string, ...string[]];
  const r = spawnSync(cmd, args, { env, cwd: ROOT, encoding: 'utf8', timeout: timeoutMs });
  return { code: r.error ? -1 : r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}` };
}

async function runAsync(argv: string[], env: NodeJS.ProcessEnv, timeoutMs = 10_000): Promise<{ code: number | null; out: string }> {
  const p = start('check', argv, env);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  const code = await p.exited;
  clearTimeout(timer);
  return { code, out: p.output() };
}

/** Runs a healthcheck command until it passes (as Docker does, at a shorter interval), bounded. */
async function untilHealthy(what: string, argv: string[], env: NodeJS.ProcessEnv, proc: Running, timeoutMs = 90_000): Promise<number> {
  const started = Date.now();
  let last = '';
  while (Date.now() - started < timeoutMs) {
    if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited (${proc.child.exitCode}) before ${what} passed:\n${proc.output()}`);
    const r = await runAsync(argv, env);
    if (r.code === 0) return Date.now() - started;
    last = r.out;
    await new Promise((res) => setTimeout(res, 250));
  }
  throw new Error(`${what} did not pass within ${timeoutMs} ms (last: ${last.trim()}):\n${proc.output()}`);
}

async function stop(proc: Running, timeoutMs = 30_000): Promise<number | null> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return proc.child.exitCode;
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), timeoutMs);
  const code = await proc.exited;
  clearTimeout(timer);
  return code;
}

/**
 * A TCP proxy on `listenHost:port` to `targetHost:port` that counts what passes through: REST predict
 * frames of the worker protocol (after its preface) and HTTP health checks.
 */
class CountingProxy {
  readonly server: net.Server;
  predicts = 0;
  healthz = 0;
  readonly #sockets = new Set<net.Socket>();

  private constructor(server: net.Server) {
    this.server = server;
  }

  static async start(listenHost: string, targetHost: string, port: number): Promise<CountingProxy> {
    let proxy: CountingProxy | undefined;
    const server = net.createServer((client) => {
      const upstream = net.connect(port, targetHost);
      proxy!.#sockets.add(client).add(upstream);
      let tail = '';
      let frames: FrameReader | undefined;
      let seen = Buffer.alloc(0);
      client.on('data', (d: Buffer) => {
        if (frames) {
          frames.push(d, (f) => {
            if (f.type === FrameType.REQUEST && decodeRequest(f.payload).kind === Kind.REST_PREDICT) proxy!.predicts++;
          });
          return;
        }
        seen = Buffer.concat([seen, d]);
        if (seen.length >= PREFACE.length && seen.subarray(0, PREFACE.length).equals(PREFACE)) {
          frames = new FrameReader();
          const rest = seen.subarray(PREFACE.length);
          if (rest.length > 0) frames.push(rest, (f) => {
            if (f.type === FrameType.REQUEST && decodeRequest(f.payload).kind === Kind.REST_PREDICT) proxy!.predicts++;
          });
          return;
        }
        const text = tail + d.toString('latin1');
        proxy!.healthz += text.split('GET /healthz ').length - 1;
        tail = text.slice(-20);
      });
      client.pipe(upstream).pipe(client);
      const close = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
    });
    proxy = new CountingProxy(server);
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, listenHost, resolve));
    return proxy;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** grpc.health.v1.Health/Check on `address` for the server as a whole (service ""). */
async function grpcHealth(address: string): Promise<string> {
  const root = loadProtoRoot(['grpc/health/v1/health.proto']);
  const svc = root.lookupService('grpc.health.v1.Health');
  const check = svc.methods.Check!;
  const req = check.resolvedRequestType as protobuf.Type;
  const res = check.resolvedResponseType as protobuf.Type;
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  try {
    return await new Promise<string>((resolve, reject) => {
      client.makeUnaryRequest(
        '/grpc.health.v1.Health/Check',
        (o: object) => Buffer.from(req.encode(req.fromObject(o)).finish()),
        (b: Buffer) => res.toObject(res.decode(b), { enums: String }) as { status: string },
        { service: '' },
        new grpc.Metadata(),
        { deadline: Date.now() + 5000 },
        (err, out) => (err ? reject(err) : resolve(out!.status)),
      );
    });
  } finally {
    client.close();
  }
}

function onPath(cmd: string): boolean {
  return run(['sh', '-c', `command -v ${cmd}`]).code === 0;
}

/** The example repository (`npm run build`'s models/) written fresh into `dir`. */
async function writeExampleRepository(dir: string): Promise<void> {
  for (const { relPath, bytes } of exampleModelFiles()) {
    const [model, version] = relPath.split('/') as [string, string];
    await writeModel(dir, model, version, bytes);
  }
  for (const { relDir, files } of exampleSavedModels()) await writeSavedModel(path.join(dir, ...relDir.split('/')), files);
}

const MLP_BODY = JSON.stringify({ instances: [Array.from({ length: 784 }, (_, i) => (i % 17) / 17)] });

// ---------------------------------------------------------------------------------------------

describe('compose.yaml', () => {
  const compose = readCompose();
  const image = readDockerfile();

  test('declares redis, a gateway and a standalone worker as the deployment needs them', () => {
    const { redis, gateway, worker } = compose.services;
    assert.ok(redis && gateway && worker, `services: ${Object.keys(compose.services).join(', ')}`);

    assert.match(redis.image ?? '', /^redis:7(\b|$)/);
    assert.deepEqual(asList(redis.healthcheck?.test), ['CMD', 'redis-cli', 'ping']);

    for (const [name, svc] of [['gateway', gateway], ['worker', worker]] as const) {
      assert.ok(svc.build, `${name} is built from the Dockerfile`);
      const deps = svc.depends_on as Record<string, { condition?: string }>;
      assert.equal(deps?.redis?.condition, 'service_healthy', `${name} waits for a healthy redis`);
      assert.ok(asList(svc.command).includes('--redis_url=redis://redis:6379'), `${name} --redis_url`);
      assert.ok((svc.volumes ?? []).some((v) => v.startsWith('./models:')), `${name} mounts ./models`);
      assert.ok(svc.healthcheck, `${name} has a healthcheck`);
    }

    assert.deepEqual(containerPorts(gateway).sort(), [8500, 8501]);
    assert.ok((gateway.volumes ?? []).some((v) => v.startsWith('./config/models.config:')), 'gateway mounts ./config/models.config');
    assert.equal(gateway.entrypoint, undefined, "the gateway runs the image's entry point");
    assert.match(asList(gateway.healthcheck!.test).join(' '), /:8501\/readyz\b/);

    assert.match(asList(worker.entrypoint).join(' '), /dist\/worker\/main\.js$/);
    const wargs = asList(worker.command);
    for (const f of ['--model_name=mlp', '--model_version=1', '--port=9001', '--host=0.0.0.0', '--advertise_host=worker']) {
      assert.ok(wargs.includes(f), `worker ${f}`);
    }
    assert.match(asList(worker.healthcheck!.test).join(' '), /:9001\/healthz\b/);

    // The image: the gateway's entry point, both API ports, a non-root user and a fetch healthcheck.
    assert.deepEqual(image.exposed.sort(), [8500, 8501]);
    assert.ok(image.user && !/^(root|0)(:|$)/.test(image.user), `USER ${image.user}`);
    assert.match(image.healthcheck.join(' '), /^node .*healthcheck\.mjs/);
    assert.match(readFileSync(path.join(ROOT, 'deploy/docker/healthcheck.mjs'), 'utf8'), /\bfetch\(/);
    assert.match(image.env.HEALTHCHECK_URL ?? '', /^http:\/\/127\.0\.0\.1:8501\/readyz$/);
    const entry = image.entrypoint[0]!.replace(image.workdir, ROOT);
    accessSync(entry, constants.X_OK);
  });

  test('docker-compose -f compose.yaml config accepts it', (t) => {
    if (!onPath('docker-compose')) {
      t.skip('docker-compose is not installed (apt-get install -y docker-compose): compose.yaml was not checked by docker-compose');
      return;
    }
    const r = run(['docker-compose', '-f', COMPOSE_FILE, 'config'], { ...process.env, COMPOSE_PROJECT_NAME: 'modelgate' }, 60_000);
    assert.equal(r.code, 0, r.out);
    const resolved = parseYaml(r.out.slice(r.out.indexOf('services:'))) as ComposeFile;
    assert.deepEqual(Object.keys(resolved.services).sort(), ['gateway', 'redis', 'worker']);
    console.log(`[compose] docker-compose config: ok (${run(['docker-compose', 'version', '--short']).out.trim()})`);
  });

  describe('its services, run as local processes', () => {
    let projectDir: string;
    let redis: RedisServer | undefined;
    let proxy: CountingProxy | undefined;
    const procs: Running[] = [];
    let translator: Translator;
    let placements: Map<string, Placement>;

    before(async () => {
      projectDir = await tempDir('modelgate-compose-');
      await writeExampleRepository(path.join(projectDir, 'models'));
      await mkdir(path.join(projectDir, 'config'), { recursive: true });
      await copyFile(path.join(ROOT, 'config', 'models.config'), path.join(projectDir, 'config', 'models.config'));

      redis = await RedisServer.start();
      placements = new Map();
      placements.set('redis', { ownHost: '127.0.0.1', reachHost: '127.0.0.1', ports: new Map([[6379, redis.port]]) });
      for (const [name, host] of [['gateway', '127.0.0.1'], ['worker', WORKER_OWN_HOST]] as const) {
        const ports = new Map<number, number>();
        for (const p of containerPorts(compose.services[name]!)) ports.set(p, await freePort());
        placements.set(name, { ownHost: host, reachHost: '127.0.0.1', ports });
      }
      translator = new Translator(projectDir, image, placements);
    });

    after(async () => {
      for (const p of procs) await stop(p, 5_000);
      await proxy?.close();
      await redis?.stop();
      if (projectDir) await rm(projectDir, { recursive: true, force: true });
    });

    test('redis, worker and gateway start, pass their healthchecks, route to the worker, and stop', async () => {
      const { gateway, worker, redis: redisService } = compose.services as Record<string, ComposeService>;

      // redis: the compose healthcheck (redis-cli ping), pointed at the test's server.
      if (onPath('redis-cli')) {
        const [cmd, ...args] = translator.healthcheck('redis', redisService!);
        const r = run([cmd!, '-h', '127.0.0.1', '-p', String(redis!.port), ...args]);
        assert.equal(r.code, 0, r.out);
        assert.match(r.out, /PONG/);
      }

      // worker: on its own address, with the counting proxy where the gateway reaches it.
      const workerPort = placements.get('worker')!.ports.get(9001)!;
      proxy = await CountingProxy.start('127.0.0.1', WORKER_OWN_HOST, workerPort);
      const workerArgv = translator.argv('worker', worker!);
      assert.ok(workerArgv.includes(`--host=${WORKER_OWN_HOST}`) && workerArgv.includes('--advertise_host=127.0.0.1'), workerArgv.join(' '));
      assert.ok(workerArgv.includes(`--version_path=${path.join(projectDir, 'models', 'mlp', '1')}`), workerArgv.join(' '));
      assert.ok(workerArgv.includes(`--redis_url=redis://127.0.0.1:${redis!.port}`), workerArgv.join(' '));
      const workerEnv = translator.env('worker', worker!);
      const w = start('worker', workerArgv, workerEnv);
      procs.push(w);

      // gateway: the image's entry point with the compose command, on loopback only.
      const gatewayArgv = [...translator.argv('gateway', gateway!), '--rest_api_host=127.0.0.1', '--grpc_api_host=127.0.0.1'];
      assert.ok(gatewayArgv[0]!.endsWith('deploy/docker/entrypoint.sh'), gatewayArgv.join(' '));
      assert.ok(gatewayArgv.includes(`--model_config_file=${path.join(projectDir, 'config', 'models.config')}`), gatewayArgv.join(' '));
      const gatewayEnv = translator.env('gateway', gateway!);
      const g = start('gateway', gatewayArgv, gatewayEnv);
      procs.push(g);

      const workerCheck = translator.healthcheck('worker', worker!);
      assert.ok(workerCheck.some((a) => a === `http://${WORKER_OWN_HOST}:${workerPort}/healthz`), workerCheck.join(' '));
      const workerMs = await untilHealthy('the worker healthcheck', workerCheck, workerEnv, w);
      const gatewayCheck = translator.healthcheck('gateway', gateway!);
      const gatewayMs = await untilHealthy('the gateway healthcheck (/readyz)', gatewayCheck, gatewayEnv, g);
      console.log(`[compose] worker healthy after ${workerMs} ms, gateway ready after ${gatewayMs} ms`);

      // The image's own HEALTHCHECK (no service override) passes too: HEALTHCHECK_URL, rewritten.
      const imageCheck = image.healthcheck.map((a) => translator.value('gateway', gateway!, a));
      const viaImage = await runAsync(imageCheck, gatewayEnv);
      assert.equal(viaImage.code, 0, `image HEALTHCHECK (${gatewayEnv.HEALTHCHECK_URL}): ${viaImage.out}`);

      const rest = `http://127.0.0.1:${placements.get('gateway')!.ports.get(8501)!}`;
      const grpcAddress = `127.0.0.1:${placements.get('gateway')!.ports.get(8500)!}`;
      assert.equal((await request(`${rest}/healthz`)).statusCode, 200);
      assert.equal(await grpcHealth(grpcAddress), 'SERVING');
      const cluster = (await (await request(`${rest}/v1/cluster`)).body.json()) as Record<string, unknown>;
      assert.equal(cluster.mode, 'redis');
      assert.equal(cluster.redis_connected, true);
      assert.equal(cluster.is_writer, true);

      // The gateway routes mlp version 1 to the standalone worker (beside its own worker process for
      // it): bursts of concurrent predicts spread over the least busy replicas until some arrive
      // through the proxy, i.e. at the address the worker registered in Redis.
      const channel = new WorkerChannel({ host: WORKER_OWN_HOST, port: workerPort });
      const direct = await channel.call({ kind: Kind.REST_PREDICT, body: Buffer.from(MLP_BODY) });
      channel.close();
      assert.equal(direct.status, 200);
      const expected = (JSON.parse(direct.body.toString()) as { predictions: number[][] }).predictions;
      assert.equal(expected[0]!.length, 10);
      const startedRouting = Date.now();
      let bursts = 0;
      while (proxy.predicts === 0) {
        assert.ok(Date.now() - startedRouting < 30_000, `no predict reached the standalone worker in 30 s:\n${g.output()}`);
        bursts++;
        const answers = await Promise.all(
          Array.from({ length: 16 }, () =>
            request(`${rest}/v1/models/mlp/versions/1:predict`, { method: 'POST', body: MLP_BODY }).then(async (r) => ({
              status: r.statusCode,
              body: (await r.body.json()) as { predictions: number[][] },
            })),
          ),
        );
        for (const a of answers) {
          assert.equal(a.status, 200, JSON.stringify(a.body));
          assert.deepEqual(a.body.predictions, expected);
        }
      }
      console.log(`[compose] ${proxy.predicts} predicts reached the standalone worker through the gateway (${bursts} bursts of 16)`);

      // Labels still resolve through the gateway's own view; the whole example config serves.
      const stable = await request(`${rest}/v1/models/mlp/labels/stable:predict`, { method: 'POST', body: MLP_BODY });
      assert.equal(stable.statusCode, 200);
      assert.deepEqual(((await stable.body.json()) as { predictions: number[][] }).predictions, expected);
      const half = await request(`${rest}/v1/models/half_plus_two:predict`, { method: 'POST', body: '{"instances": [1.0, 2.0, 5.0]}' });
      assert.deepEqual(await half.body.json(), { predictions: [2.5, 3.0, 4.5] });

      // Everything stops on SIGTERM (what `docker compose down` sends), with exit code 0.
      assert.equal(await stop(g), 0, g.output());
      assert.equal(await stop(w), 0, w.output());
      await proxy.close();
      proxy = undefined;
      await redis!.stop();
      redis = undefined;
    });

    test("the image's entry point serves MODEL_NAME from MODEL_BASE_PATH, as TF Serving's image does", async () => {
      const restPort = await freePort();
      const argv = [...image.entrypoint.map((a) => a.replace(image.workdir, ROOT)), `--rest_api_port=${restPort}`, '--rest_api_host=127.0.0.1', '--port=0'];
      const env = translator.env('gateway', { environment: { MODEL_NAME: 'half_plus_two', MODEL_BASE_PATH: path.join(projectDir, 'models') } });
      const g = start('single-model gateway', argv, env);
      procs.push(g);
      await untilHealthy('/readyz', ['node', path.join(ROOT, 'deploy/docker/healthcheck.mjs'), `http://127.0.0.1:${restPort}/readyz`], env, g);
      const half = await request(`http://127.0.0.1:${restPort}/v1/models/half_plus_two:predict`, { method: 'POST', body: '{"instances": [1.0, 2.0, 5.0]}' });
      assert.deepEqual(await half.body.json(), { predictions: [2.5, 3.0, 4.5] });
      const other = await request(`http://127.0.0.1:${restPort}/v1/models/mlp`);
      await other.body.dump();
      assert.equal(other.statusCode, 404, 'only MODEL_NAME is served');
      assert.equal(await stop(g), 0, g.output());

      // MODEL_NAME alone: the base path is /models/$MODEL_NAME (absent here, so the gateway says so
      // and waits for versions, as tensorflow_model_server does).
      const alone = start('MODEL_NAME only', [...argv.slice(0, -3), '--rest_api_port=0', '--port=0'], {
        ...translator.env('gateway', {}),
        MODEL_NAME: 'no_such_model_here',
      });
      procs.push(alone);
      const seenAt = Date.now();
      while (!alone.output().includes('/models/no_such_model_here')) {
        assert.ok(alone.child.exitCode === null && Date.now() - seenAt < 20_000, `no mention of /models/no_such_model_here:\n${alone.output()}`);
        await new Promise((res) => setTimeout(res, 50));
      }
      assert.equal(await stop(alone), 0, alone.output());
    });
  });
});

