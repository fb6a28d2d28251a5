/**
 * A gateway run as a child process (`node dist/gateway/main.js <flags>`), for tests and scripts that
 * watch it from outside: its memory and its workers' are read from /proc, workers are found as its
 * child processes, and it can be killed without taking the test process down. Loopback only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';

const GATEWAY_MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../gateway/main.js');

/** VmRSS of a process in bytes, or undefined when it is gone. */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export interface ChildInfo {
  pid: number;
  /** argv, split on NUL. */
  argv: string[];
}

/** Live direct children of `ppid`, from /proc/<pid>/stat (field 4 is the parent pid). */
export function childProcesses(ppid: number): ChildInfo[] {
  const out: ChildInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name is in parentheses and may hold spaces; fields after it are plain.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[1]) !== ppid || rest[0] === 'Z') continue;
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean);
      out.push({ pid: Number(entry), argv });
    } catch {
      // The process went away while we looked.
    }
  }
  return out;
}

export interface WorkerInfo {
  pid: number;
  model: string;
  version: string;
}

/** The model worker processes a gateway (pid) has forked. */
export function workerProcesses(gatewayPid: number): WorkerInfo[] {
  const workers: WorkerInfo[] = [];
  for (const c of childProcesses(gatewayPid)) {
    const flag = (name: string) => c.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
    const model = flag('model_name');
    const version = flag('model_version');
    if (model !== undefined && version !== undefined) workers.push({ pid: c.pid, model, version });
  }
  return workers;
}

export interface GatewayProcessOptions {
  /** Flags after the script; REST and gRPC ports and hosts are added. */
  args: string[];
  restPort: number;
  grpcPort?: number;
  /** Models that must be AVAILABLE (via GET /v1/models/<name>) before start() returns. */
  waitForModels?: string[];
  startTimeoutMs?: number;
  env?: Record<string, string>;
  /** The gateway entry to run (default: this build's dist/gateway/main.js; benches pass an older build's). */
  main?: string;
}

export class GatewayProcess {
  readonly child: ChildProcess;
  readonly restPort: number;
  readonly grpcPort: number | undefined;
  /** The last lines it wrote (stdout and stderr), for failure messages. */
  readonly tail: string[] = [];
  #exited: Promise<number | null>;

  private constructor(options: GatewayProcessOptions) {
    this.restPort = options.restPort;
    this.grpcPort = options.grpcPort;
    const args = [
      options.main ?? GATEWAY_MAIN,
      `--rest_api_port=${options.restPort}`,
      '--rest_api_host=127.0.0.1',
      `--port=${options.grpcPort ?? 0}`,
      '--grpc_api_host=127.0.0.1',
      ...options.args,
    ];
    this.child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LOG_LEVEL: 'warn', ...options.env },
    });
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        this.tail.push(line.length > 500 ? `${line.slice(0, 500)}...` : line);
        if (this.tail.length > 400) this.tail.shift();
      }
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    this.#exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  static async start(options: GatewayProcessOptions): Promise<GatewayProcess> {
    const gp = new GatewayProcess(options);
    try {
      await gp.#waitReady(options.waitForModels ?? [], options.startTimeoutMs ?? 120_000);
    } catch (err) {
      await gp.stop();
      throw new Error(`${(err as Error).message}\n${gp.tail.join('\n')}`);
    }
    return gp;
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get base(): string {
    return `http://127.0.0.1:${this.restPort}`;
  }

  rss(): number | undefined {
    return rssBytes(this.pid);
  }

  workers(): WorkerInfo[] {
    return workerProcesses(this.pid);
  }

  async #waitReady(models: string[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      if (!this.alive) throw new Error(`gateway exited with ${this.child.exitCode ?? this.child.signalCode}`);
      try {
        const health = await request(`${this.base}/healthz`, { headersTimeout: 2000, bodyTimeout: 2000 });
        await health.body.dump();
        if (health.statusCode === 200) {
          let ready = true;
          for (const m of models) {
            const res = await request(`${this.base}/v1/models/${m}`, { headersTimeout: 2000, bodyTimeout: 2000 });
            const text = await res.body.text();
            if (res.statusCode !== 200 || !text.includes('"AVAILABLE"')) {
              ready = false;
              last = `${m}: ${res.statusCode} ${text}`;
              break;
            }
          }
          if (ready) return;
        }
      } catch (err) {
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`gateway not ready after ${timeoutMs} ms (${last})`);
  }

  /** SIGTERM (drain and stop workers), then SIGKILL after `graceMs`. Resolves with the exit code. */
  async stop(graceMs = 15_000): Promise<number | null> {
    if (this.alive) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => {
        // Workers die with their gateway's IPC channel; kill them too in case they linger.
        for (const w of this.workers()) {
          try {
            process.kill(w.pid, 'SIGKILL');
          } catch {
            // gone already
          }
        }
        this.child.kill('SIGKILL');
      }, graceMs);
      const code = await this.#exited;
      clearTimeout(timer);
      return code;
    }
    return this.#exited;
  }
}
