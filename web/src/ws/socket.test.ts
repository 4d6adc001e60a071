import { describe, expect, it } from 'vitest';
import { InboxSocket, backoffMs, socketUrl, type SocketLike, type Timers } from './socket';

class FakeSocket implements SocketLike {
  readyState = 0;
  onopen: SocketLike['onopen'] = null;
  onmessage: SocketLike['onmessage'] = null;
  onclose: SocketLike['onclose'] = null;
  onerror: SocketLike['onerror'] = null;
  sent: Record<string, unknown>[] = [];
  closedWith: number | undefined;

  send(data: string) {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }
  close(code?: number) {
    this.closedWith = code;
    this.readyState = 3;
  }
  // The server's side.
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  push(frame: Record<string, unknown>) {
    this.onmessage?.({ data: JSON.stringify({ v: 1, ...frame }) });
  }
  drop(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code });
  }
}

class ManualTimers implements Timers {
  private next = 1;
  waiting = new Map<number, { fn: () => void; ms: number }>();
  set(fn: () => void, ms: number) {
    const id = this.next++;
    this.waiting.set(id, { fn, ms });
    return id;
  }
  clear(handle: unknown) {
    this.waiting.delete(handle as number);
  }
  /** Runs the earliest timer and returns its delay. */
  fire(): number {
    const [id, t] = [...this.waiting.entries()].sort((a, b) => a[1].ms - b[1].ms)[0]!;
    this.waiting.delete(id);
    t.fn();
    return t.ms;
  }
}

function setup() {
  const sockets: FakeSocket[] = [];
  const timers = new ManualTimers();
  const events: number[] = [];
  const fresh: number[] = [];
  const statuses: string[] = [];
  const hidden: string[] = [];
  const typing: string[] = [];
  const client = new InboxSocket({
    url: 'wss://h/api/v1/ws',
    views: ['mine'],
    timers,
    random: () => 0.5,
    create: () => {
      const s = new FakeSocket();
      sockets.push(s);
      return s;
    },
    onEvent: (e) => events.push(e.seq),
    onFresh: (seq) => fresh.push(seq),
    onStatus: (s) => statuses.push(s),
    onHidden: (h) => hidden.push(`${h.seq}:${h.conversation_id}`),
    onTyping: (f) => typing.push(`${f.conversation_id}:${f.user_id}`),
    onContactTyping: (f) => typing.push(`${f.conversation_id}:contact`),
  });
  return { client, sockets, timers, events, fresh, statuses, hidden, typing };
}

const event = (seq: number) => ({ type: 'event', seq, kind: 'message_created', conversation_id: 'c', payload: {} });

describe('InboxSocket', () => {
  it('says hello, starts from welcome.last_seq and resumes from the cursor after a drop', () => {
    const { client, sockets, timers, events, fresh, statuses } = setup();
    client.start();
    sockets[0]!.open();
    expect(sockets[0]!.sent[0]).toEqual({ v: 1, type: 'hello', views: ['mine'] });
    sockets[0]!.push({ type: 'welcome', session_id: 's', last_seq: 10, heartbeat_interval_ms: 15000 });
    expect(fresh).toEqual([10]);
    sockets[0]!.push(event(11));
    sockets[0]!.push(event(12));
    sockets[0]!.drop();

    expect(client.status).toBe('reconnecting');
    expect(timers.fire()).toBe(backoffMs(0, () => 0.5));
    sockets[1]!.open();
    expect(sockets[1]!.sent[0]).toEqual({ v: 1, type: 'hello', views: ['mine'], resume_after: 12 });
    sockets[1]!.push({ type: 'welcome', session_id: 's2', last_seq: 14, heartbeat_interval_ms: 15000 });
    // A replay overlapping what was seen is not delivered twice.
    sockets[1]!.push(event(12));
    sockets[1]!.push(event(13));
    sockets[1]!.push(event(14));
    expect(events).toEqual([11, 12, 13, 14]);
    expect(fresh).toEqual([10]);
    expect(statuses).toEqual(['connecting', 'open', 'reconnecting', 'open']);
  });

  it('backs off more after each failed attempt and resets after a welcome', () => {
    const { client, sockets, timers } = setup();
    client.start();
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      sockets[i]!.drop();
      delays.push(timers.fire());
    }
    expect(delays).toEqual([0, 1, 2, 3, 4, 5].map((n) => backoffMs(n, () => 0.5)));
    expect(delays[5]).toBeLessThanOrEqual(15_000);
    expect(delays[4]!).toBeGreaterThan(delays[0]!);

    sockets[6]!.open();
    sockets[6]!.push({ type: 'welcome', session_id: 's', last_seq: 0, heartbeat_interval_ms: 15000 });
    sockets[6]!.drop();
    const again = [...timers.waiting.values()].find((t) => t.ms !== 15000)!;
    expect(again.ms).toBe(backoffMs(0, () => 0.5));
  });

  it('matches acks to requests and resends unanswered ones on the next socket', async () => {
    const { client, sockets, timers } = setup();
    client.start();
    const early = client.request({ type: 'reply', conversation_id: 'c', text: 'hi', idempotency_key: 'k1' });
    sockets[0]!.open();
    sockets[0]!.push({ type: 'welcome', session_id: 's', last_seq: 0, heartbeat_interval_ms: 15000 });
    const sentReply = sockets[0]!.sent.find((f) => f.type === 'reply')!;
    expect(sentReply).toMatchObject({ v: 1, text: 'hi', idempotency_key: 'k1' });

    // The ack is lost with the socket: the same request (same key) goes out again.
    sockets[0]!.drop();
    timers.fire();
    sockets[1]!.open();
    sockets[1]!.push({ type: 'welcome', session_id: 's2', last_seq: 0, heartbeat_interval_ms: 15000 });
    const resent = sockets[1]!.sent.find((f) => f.type === 'reply')!;
    expect(resent).toEqual(sentReply);
    sockets[1]!.push({ type: 'ack', ref: resent.ref, ok: true, message_id: 'm1' });
    await expect(early).resolves.toEqual({ message_id: 'm1' });

    const refused = client.request({ type: 'read', conversation_id: 'x', message_id: 'y' });
    const read = sockets[1]!.sent.find((f) => f.type === 'read')!;
    sockets[1]!.push({ type: 'ack', ref: read.ref, ok: false, error: { code: 'not_found', message: 'not found' } });
    await expect(refused).rejects.toMatchObject({ code: 'not_found' });
  });

  it('stops for good when the session is revoked, and drops typing while offline', async () => {
    const { client, sockets, timers } = setup();
    client.start();
    await expect(client.request({ type: 'typing', conversation_id: 'c' })).resolves.toEqual({});
    sockets[0]!.open();
    sockets[0]!.push({ type: 'welcome', session_id: 's', last_seq: 0, heartbeat_interval_ms: 15000 });
    expect(sockets[0]!.sent.some((f) => f.type === 'typing')).toBe(false);
    const waiting = client.request({ type: 'presence', presence: 'away' });
    sockets[0]!.drop(4403);
    await expect(waiting).rejects.toMatchObject({ code: 'revoked' });
    expect(client.status).toBe('revoked');
    expect(timers.waiting.size).toBe(0);
    expect(sockets).toHaveLength(1);
  });

  it('lets a hidden conversation go once, and counts the hiding in the cursor', () => {
    const { client, sockets, timers, events, hidden } = setup();
    client.start();
    sockets[0]!.open();
    sockets[0]!.push({ type: 'welcome', session_id: 's', last_seq: 3, heartbeat_interval_ms: 15000 });
    sockets[0]!.push(event(4));
    sockets[0]!.push({ type: 'conversation_hidden', seq: 5, conversation_id: 'c' });
    // A replay after a reconnect repeats nothing at or below the cursor.
    sockets[0]!.drop();
    timers.fire();
    sockets[1]!.open();
    expect(sockets[1]!.sent[0]).toMatchObject({ type: 'hello', resume_after: 5 });
    sockets[1]!.push({ type: 'conversation_hidden', seq: 5, conversation_id: 'c' });
    sockets[1]!.push(event(6));
    expect(events).toEqual([4, 6]);
    expect(hidden).toEqual(['5:c']);
  });

  it('starts afresh when its cursor is older than the pruned events log', () => {
    const { client, sockets, timers, events, fresh } = setup();
    client.start();
    sockets[0]!.open();
    sockets[0]!.push({ type: 'welcome', session_id: 's', last_seq: 3, heartbeat_interval_ms: 15000 });
    sockets[0]!.push(event(4));
    sockets[0]!.drop();
    timers.fire();
    sockets[1]!.open();
    sockets[1]!.push({ type: 'welcome', session_id: 's2', last_seq: 90, heartbeat_interval_ms: 15000, stale_cursor: true });
    expect(fresh).toEqual([3, 90]);
    sockets[1]!.push(event(50));
    sockets[1]!.push(event(91));
    expect(events).toEqual([4, 91]);
  });

  it("tells a colleague's typing from the customer's", () => {
    const { client, sockets, typing, events } = setup();
    client.start();
    sockets[0]!.open();
    sockets[0]!.push({ type: 'welcome', session_id: 's', last_seq: 0, heartbeat_interval_ms: 15000 });
    sockets[0]!.push({ v: 1, type: 'typing', conversation_id: 'c1', user_id: 'u1' });
    sockets[0]!.push({ v: 1, type: 'contact_typing', conversation_id: 'c2' });
    expect(typing).toEqual(['c1:u1', 'c2:contact']);
    expect(events).toEqual([]);
  });

  it('closes normally on stop and never reconnects', () => {
    const { client, sockets, timers } = setup();
    client.start();
    sockets[0]!.open();
    client.stop();
    expect(sockets[0]!.closedWith).toBe(1000);
    expect(timers.waiting.size).toBe(0);
  });
});

describe('socketUrl', () => {
  it('follows the page scheme and host', () => {
    expect(socketUrl({ protocol: 'https:', host: 'a.example:8443' })).toBe('wss://a.example:8443/api/v1/ws');
    expect(socketUrl({ protocol: 'http:', host: 'localhost' })).toBe('ws://localhost/api/v1/ws');
  });
});
