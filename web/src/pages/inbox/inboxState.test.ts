import { describe, expect, it } from 'vitest';
import type { ConversationSummary, Message } from '../../api/types';
import { markRead, stillMatches, upsertMessage, withConversation, withMessage } from './inboxState';

const conversation = (id: string, extra: Partial<ConversationSummary['conversation']> = {}) => ({
  id,
  client_id: 'cl',
  channel_id: 'ch1',
  contact_id: 'ct',
  external_id: 'x',
  status: 'open' as const,
  snoozed_until: null,
  assignee_id: null,
  group_id: null,
  request_no: 1,
  last_message_at: '2026-01-01T10:00:00Z',
  created_at: '2026-01-01T09:00:00Z',
  ...extra,
});

const summary = (id: string, at: string, unread = 0): ConversationSummary => ({
  conversation: conversation(id),
  contact_name: 'C ' + id,
  last_message_text: 'old',
  last_message_at: at,
  tags: [],
  unread,
});

const message = (id: string, conversationId: string, extra: Partial<Message> = {}): Message => ({
  id,
  client_id: 'cl',
  conversation_id: conversationId,
  direction: 'inbound',
  kind: 'message',
  provider_event_id: null,
  author_id: null,
  text: 'hello ' + id,
  status: 'received',
  failure_reason: null,
  idempotency_key: null,
  created_at: '2026-01-01T12:00:00Z',
  ...extra,
});

describe('withMessage', () => {
  const list = [summary('a', '2026-01-01T11:00:00Z'), summary('b', '2026-01-01T10:00:00Z')];

  it('moves the conversation up, shows the text and counts it unread', () => {
    const out = withMessage(list, message('m1', 'b'), { openId: null, myId: 'me' })!;
    expect(out.map((s) => s.conversation.id)).toEqual(['b', 'a']);
    expect(out[0]).toMatchObject({ last_message_text: 'hello m1', unread: 1 });
  });

  it('does not count the open conversation, outbound messages or notes as unread', () => {
    expect(withMessage(list, message('m1', 'b'), { openId: 'b', myId: 'me' })![0]!.unread).toBe(0);
    const reply = message('m2', 'b', { direction: 'outbound', status: 'pending' });
    expect(withMessage(list, reply, { openId: null, myId: 'me' })![0]!.unread).toBe(0);
    const note = message('m3', 'b', { kind: 'note', direction: 'outbound' });
    const out = withMessage(list, note, { openId: null, myId: 'me' })!;
    expect(out.find((s) => s.conversation.id === 'b')).toMatchObject({ last_message_text: 'old', unread: 0 });
  });

  it('asks for a reload when the conversation is not listed', () => {
    expect(withMessage(list, message('m1', 'zzz'), { openId: null, myId: null })).toBeNull();
  });
});

describe('conversation changes', () => {
  it('replace the listed conversation and its tags', () => {
    const list = [summary('a', '2026-01-01T11:00:00Z')];
    const out = withConversation(list, { ...conversation('a', { assignee_id: 'u1' }), tags: ['vip'] })!;
    expect(out[0]!.conversation.assignee_id).toBe('u1');
    expect(out[0]!.tags).toEqual(['vip']);
    expect(withConversation(list, conversation('other'))).toBeNull();
  });

  it('decide whether a conversation stays in the current view and filters', () => {
    const s = { ...summary('a', '2026-01-01T11:00:00Z'), tags: ['vip'] };
    const f = { view: 'all', status: null, channelId: null, tag: null };
    expect(stillMatches(s, f, 'me')).toBe(true);
    expect(stillMatches(s, { ...f, view: 'mine' }, 'me')).toBe(false);
    expect(stillMatches(s, { ...f, view: 'unassigned' }, 'me')).toBe(true);
    expect(stillMatches(s, { ...f, status: 'resolved' }, 'me')).toBe(false);
    expect(stillMatches(s, { ...f, tag: 'vip', channelId: 'ch1' }, 'me')).toBe(true);
    expect(stillMatches(s, { ...f, view: 'group:g1' }, 'me')).toBe(false);
  });
});

describe('messages of the open conversation', () => {
  it('are added once, replaced on status changes and kept in time order', () => {
    let messages = [message('m2', 'a', { created_at: '2026-01-01T12:00:02Z' })];
    messages = upsertMessage(messages, message('m1', 'a', { created_at: '2026-01-01T12:00:01Z' }));
    messages = upsertMessage(messages, message('m1', 'a', { created_at: '2026-01-01T12:00:01Z' }));
    messages = upsertMessage(messages, { ...messages[1]!, status: 'delivered' });
    expect(messages.map((m) => [m.id, m.status])).toEqual([
      ['m1', 'received'],
      ['m2', 'delivered'],
    ]);
  });

  it('read marks clear the unread count', () => {
    const out = markRead([summary('a', '2026-01-01T11:00:00Z', 3)], 'a');
    expect(out[0]!.unread).toBe(0);
  });
});
