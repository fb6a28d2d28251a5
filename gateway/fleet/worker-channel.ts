/**
 * The gateway's end of the worker protocol (common/worker-protocol.ts): a few multiplexed connections
 * to one worker, over its Unix socket or TCP port.
 *
 * - `call` writes one REQUEST frame and resolves with the worker's RESPONSE. Frames written in one
 *   event-loop turn leave in one `writev`.
 * - Deadlines cost no timer per request: every pending call with a deadline sits in one set that a
 *   single sweep timer (running only while the set is not empty) checks every SWEEP_MS. An expired
 *   call fails with DEADLINE_EXCEEDED and the worker is sent a CANCEL for it.
 * - A `CancelSlot` lets the front door cancel a call (client gone): it fails with CANCELLED at once
 *   and the worker gets a CANCEL; work it has not started is dropped.
 * - A connection that closes or fails rejects its pending calls with `WorkerGoneError`: the worker
 *   never answered them, so the caller may try another replica. The next call opens a new connection.
 */
import net from 'node:net';
import { Code, ServingError } from '../../common/errors.js';
import {
  CoalescingWriter,
  decodeResponse,
  encodeCancel,
  encodeRequestHead,
  FLAG_GZIP,
  FrameReader,
  FrameType,
  GATEWAY_MAX_FRAMES_PER_WRITE,
  NO_DEADLINE,
  PREFACE,
  type DecodedResponse,
} from '../../common/worker-protocol.js';

export type ChannelTarget = { path: string } | { host: string; port: number };

/** A worker's `url` from the shared routing state (`http://host:port` or `unix:/path`) as a target. */
export function targetFromUrl(url: string): ChannelTarget {
  if (url.startsWith('unix:')) return { path: url.slice('unix:'.length) };
  const u = new URL(url);
  return { host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(u.port) };
}

/** The worker went away (or could not be reached) before answering. */
export class WorkerGoneError extends Error {
  override name = 'WorkerGoneError';
}

/** Held by a front door for one call; `cancel()` when the client stops waiting. */
export class CancelSlot {
  cancelled = false;
  hook: (() => void) | undefined = undefined;
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.hook?.();
  }
}

export interface WorkerCall {
  kind: number;
  body: Uint8Array;
  gzip?: boolean;
  /** Epoch ms after which the call fails with DEADLINE_EXCEEDED; 0 or undefined = none. */
  deadline?: number;
  /** The resolved version, for the worker's gRPC model specs. */
  version?: number;
  requestId?: string;
  cancel?: CancelSlot | undefined;
}

interface Pending {
  readonly conn: Connection;
  readonly id: number;
  readonly deadline: number;
  readonly resolve: (r: DecodedResponse) => void;
  readonly reject: (err: Error) => void;
}

// ---------------------------------------------------------------------------------------------
// One sweep for every deadline of the process.

const SWEEP_MS = 10;
const withDeadline = new Set<Pending>();
let sweepTimer: NodeJS.Timeout | undefined;

function watchDeadline(p: Pending): void {
  withDeadline.add(p);
  if (!sweepTimer) {
    sweepTimer = setInterval(sweep, SWEEP_MS);
    sweepTimer.unref();
  }
}

function sweep(): void {
  const now = Date.now();
  for (const p of withDeadline) {
    if (p.deadline <= now) p.conn.fail(p, new ServingError(Code.DEADLINE_EXCEEDED, 'Deadline Exceeded'), true);
  }
  if (withDeadline.size === 0 && sweepTimer) {
    clearInterval(sweepTimer);
    sweepTimer = undefined;
  }
}

// ---------------------------------------------------------------------------------------------

class Connection {
  readonly #socket: net.Socket;
  readonly #writer: CoalescingWriter;
  readonly #reader = new FrameReader();
  readonly #pending = new Map<number, Pending>();
  readonly #onClosed: (c: Connection) => void;
  #nextId = 0;
  closed = false;

  constructor(target: ChannelTarget, onClosed: (c: Connection) => void) {
    this.#onClosed = onClosed;
    const socket = 'path' in target ? net.connect(target.path) : net.connect(target.port, target.host);
    socket.setNoDelay(true);
    this.#socket = socket;
    this.#writer = new CoalescingWriter(socket, GATEWAY_MAX_FRAMES_PER_WRITE);
    this.#writer.write(PREFACE);
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#reader.push(chunk, (frame) => {
          if (frame.type !== FrameType.RESPONSE) throw new Error(`unexpected frame type ${frame.type}`);
          const p = this.#pending.get(frame.id);
          if (!p) return; // cancelled or timed out: the answer is not wanted
          this.#settle(p);
          p.resolve(decodeResponse(frame.payload));
        });
      } catch (err) {
        socket.destroy(err as Error);
      }
    });
    socket.on('error', () => {}); // 'close' follows and fails what is pending
    socket.on('close', () => this.#close());
  }

  get pending(): number {
    return this.#pending.size;
  }

  call(c: WorkerCall): Promise<DecodedResponse> {
    return new Promise<DecodedResponse>((resolve, reject) => {
      const id = (this.#nextId = (this.#nextId + 1) >>> 0);
      const deadline = c.deadline ?? 0;
      const p: Pending = { conn: this, id, deadline, resolve, reject };
      this.#pending.set(id, p);
      if (deadline > 0) watchDeadline(p);
      const timeoutMs = deadline > 0 ? Math.min(NO_DEADLINE - 1, Math.max(0, Math.ceil(deadline - Date.now()))) : NO_DEADLINE;
      const head = encodeRequestHead(
        id,
        { kind: c.kind, flags: c.gzip ? FLAG_GZIP : 0, timeoutMs, version: c.version ?? NaN, requestId: c.requestId ?? '' },
        c.body.length,
      );
      this.#writer.write(head, c.body);
      if (c.cancel) c.cancel.hook = () => this.fail(p, new ServingError(Code.CANCELLED, 'Cancelled'), true);
    });
  }

  /** Fails one pending call; with `tellWorker`, the worker is sent a CANCEL for it. */
  fail(p: Pending, err: Error, tellWorker: boolean): void {
    if (this.#pending.get(p.id) !== p) return;
    this.#settle(p);
    if (tellWorker && !this.closed) this.#writer.write(encodeCancel(p.id));
    p.reject(err);
  }

  #settle(p: Pending): void {
    this.#pending.delete(p.id);
    if (p.deadline > 0) withDeadline.delete(p);
  }

  #close(): void {
    if (this.closed) return;
    this.closed = true;
    this.#onClosed(this);
    const gone = new WorkerGoneError('connection to the worker closed before it answered');
    for (const p of [...this.#pending.values()]) this.fail(p, gone, false);
  }

  end(): void {
    this.#socket.end();
  }

  destroy(): void {
    this.#socket.destroy();
  }
}

/** Up to `connections` multiplexed connections to one worker, opened as calls need them. */
export class WorkerChannel {
  readonly #target: ChannelTarget;
  readonly #max: number;
  readonly #conns: Connection[] = [];
  #next = 0;
  #closed = false;

  constructor(target: ChannelTarget, connections = 1) {
    this.#target = target;
    this.#max = Math.max(1, connections);
  }

  call(c: WorkerCall): Promise<DecodedResponse> {
    if (this.#closed) return Promise.reject(new WorkerGoneError('worker channel is closed'));
    if (c.cancel?.cancelled) return Promise.reject(new ServingError(Code.CANCELLED, 'Cancelled'));
    return this.#connection().call(c);
  }

  #connection(): Connection {
    const conns = this.#conns;
    if (conns.length < this.#max) {
      const conn = new Connection(this.#target, (closed) => {
        const i = this.#conns.indexOf(closed);
        if (i !== -1) this.#conns.splice(i, 1);
      });
      conns.push(conn);
      return conn;
    }
    this.#next = (this.#next + 1) % conns.length;
    return conns[this.#next] as Connection;
  }

  /** Closes the connections once written; calls still pending fail as the worker goes. */
  close(): void {
    this.#closed = true;
    for (const c of this.#conns) c.end();
  }

  destroy(): void {
    this.#closed = true;
    for (const c of this.#conns) c.destroy();
  }
}
