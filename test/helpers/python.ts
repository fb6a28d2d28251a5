/**
 * Running the independent Python clients (test/python/): Debian's python3 with grpcio and grpc-tools,
 * found the same way by every test that uses them.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Debian's packages live in the system Python; a pyenv `python3` first on PATH would not see them. */
export function findPython(): { python: string } | { missing: string } {
  for (const python of ['/usr/bin/python3', 'python3']) {
    if (python.startsWith('/') && !existsSync(python)) continue;
    const probe = spawnSync(python, ['-c', 'import grpc, grpc_tools.protoc'], { encoding: 'utf8' });
    if (probe.status === 0) return { python };
  }
  return {
    missing:
      'Python gRPC is not installed (no python3 with `grpc` and `grpc_tools`): ' +
      'apt-get install -y python3-grpcio python3-grpc-tools',
  };
}

/** Runs a command to its end; its stdout and stderr together. */
export function run(cmd: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, out }));
  });
}
