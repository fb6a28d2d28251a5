/**
 * Supervision of a loaded version's replicas: a replica that exits on its own (crash, or killed after
 * failing its health checks) is restarted with exponential backoff (100 ms doubling to 10 s; the count
 * resets after 30 s healthy), for as long as the version still wants it. `stillWanted` is the manager's
 * answer for the version's current load: a replica lost before an eviction or unload is not restarted
 * after it, even when the version has loaded again since.
 */
import type { Logger } from '../../common/logger.js';
import type { WorkerSpec } from '../fleet/worker-process.js';
import type { Replica } from '../fleet/replica.js';
import type { ReadyInfo } from '../fleet/worker-process.js';
import { workerRestarts } from '../metrics.js';

const RESTART_BASE_MS = 100;
const RESTART_MAX_MS = 10_000;
const HEALTHY_RESET_MS = 30_000;

/** A local replica the manager starts, supervises and stops (a WorkerProcess, or a fake in tests). */
export interface ManagedReplica extends Replica {
  readonly spec: WorkerSpec;
  /** The worker's Unix socket (local workers), for the shared view. */
  readonly socketPath?: string;
  start(): Promise<ReadyInfo>;
  stop(): Promise<void>;
  /** An exit nobody asked for (the supervisor restarts it). */
  once(event: 'exit', listener: (reason: string) => void): unknown;
  /** Hands the running process over to another version (ONNX workers); `start()` on the result loads it. */
  reassign?(spec: WorkerSpec): ManagedReplica;
}

/** What the supervisor keeps up to date for one loaded version. */
export interface SupervisedVersion {
  readonly model: string;
  readonly version: number;
  replicas: ManagedReplica[];
  restartAttempts: number;
}

/** The wait before restart attempt `attempts` (0-based). */
export function restartDelay(attempts: number): number {
  return Math.min(RESTART_BASE_MS * 2 ** attempts, RESTART_MAX_MS);
}

export class Supervisor {
  readonly #createReplica: (spec: WorkerSpec) => ManagedReplica;
  readonly #logger: Logger;
  /** Called when a version's replicas change (the manager republishes its routes). */
  readonly #onChange: (target: SupervisedVersion) => void;

  constructor(options: {
    createReplica: (spec: WorkerSpec) => ManagedReplica;
    logger: Logger;
    onChange: (target: SupervisedVersion) => void;
  }) {
    this.#createReplica = options.createReplica;
    this.#logger = options.logger;
    this.#onChange = options.onChange;
  }

  /** Restarts `worker` of `target` if it exits on its own while `stillWanted()`. */
  watch(target: SupervisedVersion, worker: ManagedReplica, stillWanted: () => boolean): void {
    worker.once('exit', (reason: string) => {
      target.replicas = target.replicas.filter((w) => w !== worker);
      this.#onChange(target);
      if (!stillWanted()) return;
      const delay = restartDelay(target.restartAttempts);
      target.restartAttempts++;
      workerRestarts.inc({ model: target.model, version: String(target.version) });
      this.#logger.warn({ model: target.model, version: target.version, reason, delayMs: delay }, 'Worker exited; restarting');
      setTimeout(() => void this.#restart(target, worker, stillWanted), delay).unref();
    });
  }

  async #restart(target: SupervisedVersion, dead: ManagedReplica, stillWanted: () => boolean): Promise<void> {
    if (!stillWanted()) return;
    const worker = this.#createReplica(dead.spec);
    try {
      await worker.start();
    } catch (err) {
      const delay = restartDelay(target.restartAttempts);
      target.restartAttempts++;
      this.#logger.error(
        { model: target.model, version: target.version, err: (err as Error).message, delayMs: delay },
        'Worker restart failed; retrying',
      );
      setTimeout(() => void this.#restart(target, dead, stillWanted), delay).unref();
      return;
    }
    if (!stillWanted()) {
      await worker.stop();
      return;
    }
    target.replicas = [...target.replicas, worker];
    this.watch(target, worker, stillWanted);
    const healthySince = Date.now();
    setTimeout(() => {
      if (target.replicas.includes(worker) && Date.now() - healthySince >= HEALTHY_RESET_MS) target.restartAttempts = 0;
    }, HEALTHY_RESET_MS).unref();
    this.#logger.info({ model: target.model, version: target.version, pid: worker.pid }, 'Worker restarted');
    this.#onChange(target);
  }
}
