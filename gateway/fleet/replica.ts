/**
 * What the request path needs from anything that serves a model version: a channel to it (the worker
 * protocol) and a count of requests in flight. Local worker processes (`WorkerProcess`) and workers
 * found in the shared Redis view (`RemoteReplica`) both are replicas.
 */
import { targetFromUrl, WorkerChannel } from './worker-channel.js';

export interface Replica {
  readonly channel: WorkerChannel;
  inFlight: number;
  /** Process id, for local workers. */
  readonly pid?: number | undefined;
}

/** A worker another process started (a standalone worker, maybe on another host), reached over TCP. */
export class RemoteReplica implements Replica {
  readonly id: string;
  readonly url: string;
  readonly channel: WorkerChannel;
  inFlight = 0;

  constructor(id: string, url: string, connections: number) {
    this.id = id;
    this.url = url;
    this.channel = new WorkerChannel(targetFromUrl(url), connections);
  }

  async close(): Promise<void> {
    this.channel.close();
  }
}
