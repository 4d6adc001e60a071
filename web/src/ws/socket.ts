// The operator WebSocket (docs/ws-protocol.md): one socket that says hello, keeps the highest
// event `seq` as its cursor, reconnects with back-off after any unplanned close and resumes
// from the cursor, so no event is missed or repeated. Requests (reply, note, read, …) wait for
// their ack; a request still unanswered when the socket drops is sent again on the next socket
// (replies and notes carry idempotency keys, so a resend never duplicates anything).

export const PROTOCOL_VERSION = 1;

export type View = 'mine' | 'unassigned' | 'all' | `group:${string}`;

export interface EventFrame {
  type: 'event';
  seq: number;
  kind: 'message_created' | 'message_status' | 'message_updated' | 'conversation_updated' | 'read_mark' | string;
  conversation_id: string;
  payload: unknown;
}
export interface TypingFrame {
  type: 'typing';
  conversation_id: string;
  user_id: string;
}
/** The customer is typing (today only website-widget visitors report it). */
export interface ContactTypingFrame {
  type: 'contact_typing';
  conversation_id: string;
}
export interface PresenceFrame {
  type: 'presence';
  user_id: string;
  presence: Presence;
}
export type Presence = 'online' | 'away' | 'offline';
/** The event `seq` moved a conversation out of the operator's sight; it stands for that event. */
export interface HiddenFrame {
  type: 'conversation_hidden';
  seq: number;
  conversation_id: string;
}

export interface AckError {
  code: string;
  message: string;
}
export class SocketRequestError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** What a client may ask for, without the envelope (`v`, `ref`). */
export type Request =
  | { type: 'subscribe'; views: View[] }
  | { type: 'reply' | 'note'; conversation_id: string; text: string; idempotency_key: string }
  | { type: 'typing'; conversation_id: string }
  | { type: 'read'; conversation_id: string; message_id: string }
  | { type: 'presence'; presence: Presence };

export type Status = 'connecting' | 'open' | 'reconnecting' | 'revoked' | 'stopped';

export interface SocketHandlers {
  onEvent?(event: EventFrame): void;
  onTyping?(frame: TypingFrame): void;
  onContactTyping?(frame: ContactTypingFrame): void;
  onPresence?(frame: PresenceFrame): void;
  onHidden?(frame: HiddenFrame): void;
  /** A fresh start (no cursor yet): load lists over REST; events after `lastSeq` follow. */
  onFresh?(lastSeq: number): void;
  onStatus?(status: Status): void;
}

/** The part of the browser's WebSocket this client uses, so tests can stand one in. */
export interface SocketLike {
  readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export interface SocketOptions extends SocketHandlers {
  url: string;
  views?: View[];
  create?: (url: string) => SocketLike;
  timers?: Timers;
  random?: () => number;
}

const OPEN = 1;
const CLOSE_NORMAL = 1000;
const CLOSE_REVOKED = 4403;
const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 15_000;
/** Silence for this many heartbeats means the network is gone even if no close arrived. */
const SILENT_HEARTBEATS = 3;

/** The delay before reconnect attempt `attempt` (0-based): doubling, capped, with jitter. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** attempt);
  return Math.round(base / 2 + (random() * base) / 2);
}

interface Pending {
  request: Request;
  resolve(ack: { message_id?: string }): void;
  reject(err: Error): void;
}

const browserTimers: Timers = {
  set: (fn, ms) => globalThis.setTimeout(fn, ms),
  clear: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
};

export class InboxSocket {
  private socket: SocketLike | null = null;
  private cursor: number | null = null;
  private views: View[];
  private welcomed = false;
  private attempt = 0;
  private nextRef = 1;
  private pending = new Map<number, Pending>();
  private reconnectTimer: unknown = null;
  private heartbeatTimer: unknown = null;
  private heartbeatMs = 15_000;
  private lastHeard = 0;
  private state: Status = 'stopped';
  private readonly create: (url: string) => SocketLike;
  private readonly timers: Timers;
  private readonly random: () => number;

  constructor(private readonly options: SocketOptions) {
    this.views = options.views ?? ['all'];
    this.create = options.create ?? ((url) => new WebSocket(url) as unknown as SocketLike);
    this.timers = options.timers ?? browserTimers;
    this.random = options.random ?? Math.random;
  }

  /** The highest event `seq` processed (the resume point), or null before the first welcome. */
  get lastSeq(): number | null {
    return this.cursor;
  }

  get status(): Status {
    return this.state;
  }

  start(): void {
    if (this.state !== 'stopped') return;
    this.connect('connecting');
  }

  stop(): void {
    this.setStatus('stopped');
    this.clearTimers();
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      detach(socket);
      socket.close(CLOSE_NORMAL, 'normal');
    }
    this.failPending(new SocketRequestError('stopped', 'socket stopped'));
  }

  /** Changes which conversations' pushes arrive; kept across reconnects. */
  subscribe(views: View[]): Promise<{ message_id?: string }> {
    this.views = views;
    return this.request({ type: 'subscribe', views });
  }

  /**
   * Sends a request and resolves with its ack. Typing indicators are dropped while offline;
   * everything else waits for the next socket.
   */
  request(request: Request): Promise<{ message_id?: string }> {
    if (request.type === 'typing' && !this.isReady()) return Promise.resolve({});
    return new Promise((resolve, reject) => {
      const ref = this.nextRef++;
      this.pending.set(ref, { request, resolve, reject });
      if (this.isReady()) this.transmit(ref, request);
    });
  }

  private isReady(): boolean {
    return this.welcomed && this.socket?.readyState === OPEN;
  }

  private transmit(ref: number, request: Request): void {
    this.socket?.send(JSON.stringify({ v: PROTOCOL_VERSION, ref, ...request }));
  }

  private setStatus(status: Status): void {
    if (this.state === status) return;
    this.state = status;
    this.options.onStatus?.(status);
  }

  private connect(status: Status): void {
    this.setStatus(status);
    this.welcomed = false;
    const socket = this.create(this.options.url);
    this.socket = socket;
    socket.onopen = () => {
      const hello: Record<string, unknown> = { v: PROTOCOL_VERSION, type: 'hello', views: this.views };
      if (this.cursor !== null) hello.resume_after = this.cursor;
      socket.send(JSON.stringify(hello));
    };
    socket.onmessage = (ev) => this.receive(ev.data);
    socket.onclose = (ev) => this.closed(socket, ev.code);
    socket.onerror = () => {
      // A close event always follows an error; reconnecting happens there.
    };
  }

  private receive(data: unknown): void {
    if (typeof data !== 'string') return;
    let frame: Record<string, unknown>;
    try {
      frame = JSON.parse(data) as Record<string, unknown>;
    } catch {
      return;
    }
    this.lastHeard = Date.now();
    switch (frame.type) {
      case 'welcome':
        return this.welcome(frame);
      case 'event': {
        const event = frame as unknown as EventFrame;
        // Replays and live pushes are in seq order; anything at or below the cursor was seen.
        if (this.cursor !== null && event.seq <= this.cursor) return;
        this.cursor = event.seq;
        this.options.onEvent?.(event);
        return;
      }
      case 'conversation_hidden': {
        const hidden = frame as unknown as HiddenFrame;
        if (this.cursor !== null && hidden.seq <= this.cursor) return;
        this.cursor = hidden.seq;
        this.options.onHidden?.(hidden);
        return;
      }
      case 'typing':
        return this.options.onTyping?.(frame as unknown as TypingFrame);
      case 'contact_typing':
        return this.options.onContactTyping?.(frame as unknown as ContactTypingFrame);
      case 'presence':
        return this.options.onPresence?.(frame as unknown as PresenceFrame);
      case 'ack':
        return this.ack(frame);
      default:
        // `pong` and anything newer than this client: nothing to do.
        return;
    }
  }

  private welcome(frame: Record<string, unknown>): void {
    this.welcomed = true;
    this.attempt = 0;
    if (typeof frame.heartbeat_interval_ms === 'number') this.heartbeatMs = frame.heartbeat_interval_ms;
    // A cursor older than the server's pruned events log cannot resume: start afresh.
    const fresh = this.cursor === null || frame.stale_cursor === true;
    if (fresh) this.cursor = typeof frame.last_seq === 'number' ? frame.last_seq : 0;
    this.setStatus('open');
    if (fresh) this.options.onFresh?.(this.cursor ?? 0);
    // Requests made while offline (or unanswered when the last socket dropped), in order.
    for (const [ref, p] of this.pending) this.transmit(ref, p.request);
    this.scheduleHeartbeat();
  }

  private ack(frame: Record<string, unknown>): void {
    const ref = typeof frame.ref === 'number' ? frame.ref : null;
    if (ref === null) return;
    const p = this.pending.get(ref);
    if (!p) return;
    this.pending.delete(ref);
    if (frame.ok === true) {
      p.resolve(typeof frame.message_id === 'string' ? { message_id: frame.message_id } : {});
    } else {
      const error = (frame.error ?? {}) as Partial<AckError>;
      p.reject(new SocketRequestError(error.code ?? 'internal', error.message ?? ''));
    }
  }

  private scheduleHeartbeat(): void {
    if (this.heartbeatTimer !== null) this.timers.clear(this.heartbeatTimer);
    this.heartbeatTimer = this.timers.set(() => {
      this.heartbeatTimer = null;
      const socket = this.socket;
      if (!socket || !this.welcomed) return;
      if (Date.now() - this.lastHeard > this.heartbeatMs * SILENT_HEARTBEATS) {
        // No close event will come from a dead network: give up on this socket ourselves.
        detach(socket);
        socket.close();
        this.closed(socket, 1006);
        return;
      }
      socket.send(JSON.stringify({ v: PROTOCOL_VERSION, type: 'ping', ref: 0 }));
      this.scheduleHeartbeat();
    }, this.heartbeatMs);
  }

  private closed(socket: SocketLike, code: number): void {
    if (socket !== this.socket) return;
    this.socket = null;
    this.welcomed = false;
    this.clearTimers();
    if (this.state === 'stopped') return;
    if (code === CLOSE_REVOKED) {
      this.setStatus('revoked');
      this.failPending(new SocketRequestError('revoked', 'signed out'));
      return;
    }
    this.setStatus('reconnecting');
    const delay = backoffMs(this.attempt++, this.random);
    this.reconnectTimer = this.timers.set(() => {
      this.reconnectTimer = null;
      this.connect('reconnecting');
    }, delay);
  }

  private clearTimers(): void {
    if (this.reconnectTimer !== null) this.timers.clear(this.reconnectTimer);
    if (this.heartbeatTimer !== null) this.timers.clear(this.heartbeatTimer);
    this.reconnectTimer = null;
    this.heartbeatTimer = null;
  }

  private failPending(err: Error): void {
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(err);
  }
}

function detach(socket: SocketLike): void {
  socket.onopen = null;
  socket.onmessage = null;
  socket.onclose = null;
  socket.onerror = null;
}

/** The socket address of the page's own origin. */
export function socketUrl(location: { protocol: string; host: string }): string {
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/api/v1/ws`;
}
