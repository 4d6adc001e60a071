// The public chat API (REST) and the visitor socket, with reconnection and resume from the
// last event seen. Only `safe` is used to reach the network.

import { safe } from './safe';

export interface Localized {
  ru: string;
  en: string;
}
export interface Config {
  appearance: {
    accent_color: string;
    text_color: string;
    position: 'bottom_right' | 'bottom_left';
    title: Localized;
    greeting: Localized;
  };
  prechat: { enabled: boolean; fields: { field: 'name' | 'email' | 'phone'; required: boolean }[] };
  offline: { enabled: boolean; message: Localized };
  messengers: { telegram?: string | null; whatsapp?: string | null; vk?: string | null; max?: string | null };
  online: boolean;
  /** Telephony is connected: offer "call me back". */
  callback: boolean;
  /** Files visitors may attach (their types are judged by the server from the content). */
  attachments: { enabled: boolean; max_bytes: number; types: string[] };
}
export interface Attachment {
  id: string;
  kind: string;
  file_name: string;
  mime_type: string;
  size?: number | null;
  state: 'pending' | 'ready' | 'failed';
}
export interface ChatMessage {
  id: string;
  from: 'visitor' | 'operator' | 'bot';
  text: string;
  status: string;
  created_at: string;
  client_message_id?: string | null;
  operator?: { id: string; name: string } | null;
  attachments?: Attachment[];
  /** Why a local message failed, in the server's words. */
  error?: string;
}
export interface ApiError {
  code: string;
  message?: string;
}

export class Api {
  constructor(
    private readonly base: string,
    private readonly key: string,
    private readonly lang: string,
  ) {}

  private url(path: string): string {
    return `${this.base}/api/v1/public/widgets/${encodeURIComponent(this.key)}/${path}`;
  }

  async call<T>(method: string, path: string, token: string | null, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json', 'Accept-Language': this.lang };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await safe.request(this.url(path), {
      method,
      headers,
      body: body === undefined ? undefined : safe.stringify(body),
      credentials: 'omit',
      mode: 'cors',
    });
    if (res.status >= 200 && res.status < 300) return res.body as T;
    throw (res.body as ApiError | null) ?? { code: `http_${res.status}` };
  }

  private headers(token: string): Record<string, string> {
    return { Accept: 'application/json', 'Accept-Language': this.lang, Authorization: `Bearer ${token}` };
  }

  /** Sends a file as a message of the visitor. */
  async upload(token: string, clientId: string, file: File): Promise<{ message: ChatMessage }> {
    const res = await safe.upload(this.url(`attachments?client_message_id=${encodeURIComponent(clientId)}`), this.headers(token), file);
    if (res.status >= 200 && res.status < 300) return res.body as { message: ChatMessage };
    throw (res.body as ApiError | null) ?? { code: `http_${res.status}` };
  }

  /** An object URL of a file of the conversation (an image to show inline, or a download). */
  file(token: string, id: string, inline: boolean): Promise<string> {
    return safe.objectUrl(this.url(`attachments/${encodeURIComponent(id)}${inline ? '?disposition=inline' : ''}`), this.headers(token));
  }

  socketUrl(): string {
    return this.url('ws').replace(/^http/, 'ws');
  }
}

export interface SocketEvents {
  welcome(lastSeq: number): void;
  message(m: ChatMessage): void;
  status(id: string, status: string): void;
  typing(operator: { name: string } | null): void;
  connected(up: boolean): void;
  forgotten(): void;
}

/** The visitor socket: says hello with the token and the cursor, keeps the cursor at the last
 * event seen, reconnects with growing pauses and resumes after the cursor. */
export class VisitorSocket {
  private conn: { send(text: string): boolean; close(): void } | null = null;
  private attempts = 0;
  private stopped = false;
  private timer: number | undefined;

  constructor(
    private readonly url: string,
    private readonly token: string,
    private cursor: number | null,
    private readonly saveCursor: (seq: number) => void,
    private readonly on: SocketEvents,
  ) {}

  start(): void {
    this.stopped = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    safe.clearTimeout(this.timer);
    this.conn?.close();
    this.conn = null;
  }

  send(frame: Record<string, unknown>): boolean {
    return this.conn?.send(safe.stringify({ v: 1, ...frame })) ?? false;
  }

  private seen(seq: unknown): void {
    if (typeof seq === 'number' && (this.cursor === null || seq > this.cursor)) {
      this.cursor = seq;
      this.saveCursor(seq);
    }
  }

  private open(): void {
    const conn = safe.socket(this.url, {
      open: () => {
        conn.send(safe.stringify({ v: 1, type: 'hello', token: this.token, resume_after: this.cursor }));
      },
      message: (data) => {
        let f: Record<string, unknown>;
        try {
          f = safe.parse(data) as Record<string, unknown>;
        } catch {
          return;
        }
        switch (f.type) {
          case 'welcome':
            this.attempts = 0;
            if (this.cursor === null) this.seen(f.last_seq);
            this.on.connected(true);
            this.on.welcome(f.last_seq as number);
            break;
          case 'message':
            this.seen(f.seq);
            this.on.message(f.message as ChatMessage);
            break;
          case 'status':
            this.seen(f.seq);
            this.on.status(f.message_id as string, f.status as string);
            break;
          case 'typing':
            this.on.typing((f.operator as { name: string } | null) ?? null);
            break;
        }
      },
      close: (code) => {
        this.conn = null;
        this.on.connected(false);
        if (code === 4401) {
          this.stopped = true;
          this.on.forgotten();
          return;
        }
        if (this.stopped) return;
        const pause = Math.min(30_000, 1000 * 2 ** Math.min(this.attempts, 5));
        this.attempts++;
        this.timer = safe.setTimeout(() => this.open(), pause / 2 + Math.random() * (pause / 2)) as unknown as number;
      },
    });
    this.conn = conn;
  }
}
