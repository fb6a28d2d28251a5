/**
 * --standby_workers: ONNX worker processes started with no model (`--standby`), so an on-demand load
 * that cannot reuse an evicted worker takes one instead of starting a process. The pool starts them a
 * few at a time (`concurrency`) and only while `mayStart(inPool)` says there is room (the manager's
 * rule: with --max_loaded_versions, loaded versions + standbys stay within the limit). A load that
 * finds none ready but one starting waits for it rather than starting yet another process.
 */
import type { Logger } from '../../common/logger.js';
import type { ManagedReplica } from './supervisor.js';

export interface StandbyPoolOptions {
  want: number;
  concurrency: number;
  create: () => ManagedReplica;
  /** Whether another may start, given the standbys ready or starting now. */
  mayStart: (inPool: number) => boolean;
  logger: Logger;
}

export class StandbyPool {
  readonly #o: StandbyPoolOptions;
  #ready: ManagedReplica[] = [];
  #starting = 0;
  #waiters: Array<(worker: ManagedReplica | undefined) => void> = [];
  #closed = false;

  constructor(options: StandbyPoolOptions) {
    this.#o = options;
  }

  /** A ready standby (or the next one to start, if one is starting that nobody waits for yet). */
  async take(): Promise<ManagedReplica | undefined> {
    const ready = this.#ready.shift();
    if (ready) {
      this.fill();
      return ready;
    }
    if (this.#starting > this.#waiters.length) return new Promise((resolve) => this.#waiters.push(resolve));
    return undefined;
  }

  /** Starts standbys up to the wanted number, a few at a time, while there is room. */
  fill(): void {
    const o = this.#o;
    while (
      !this.#closed &&
      this.#ready.length + this.#starting < o.want &&
      this.#starting < Math.max(1, o.concurrency) &&
      o.mayStart(this.#ready.length + this.#starting)
    ) {
      this.#starting++;
      const worker = o.create();
      worker.start().then(
        () => {
          this.#starting--;
          if (this.#closed) {
            void worker.stop();
            return;
          }
          const waiter = this.#waiters.shift();
          if (waiter) {
            waiter(worker);
          } else {
            this.#ready.push(worker);
            worker.once('exit', () => {
              this.#ready = this.#ready.filter((w) => w !== worker);
            });
          }
          this.fill();
        },
        (err: unknown) => {
          this.#starting--;
          this.#waiters.shift()?.(undefined);
          o.logger.warn({ err: (err as Error).message }, 'Standby worker failed to start');
        },
      );
    }
  }

  /** Stops the ready standbys; loads waiting for one start their own process instead. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const waiter of this.#waiters.splice(0)) waiter(undefined);
    await Promise.allSettled(this.#ready.splice(0).map((w) => w.stop()));
  }
}
