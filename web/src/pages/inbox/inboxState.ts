// How pushed events change what the inbox shows: pure functions over the conversation list and
// the open conversation's messages, so the component only wires them to the socket.
import type { Conversation, ConversationSummary, Message } from '../../api/types';

export interface Filters {
  view: string;
  status: string | null;
  channelId: string | null;
  tag: string | null;
}

/** `message_created` carries the message and, under `conversation`, the conversation after it. */
export type CreatedPayload = Message & { conversation?: Conversation };
/** `conversation_updated` carries the conversation and its tags. */
export type UpdatedPayload = Conversation & { tags?: string[] };

function byActivity(a: ConversationSummary, b: ConversationSummary): number {
  return b.last_message_at.localeCompare(a.last_message_at) || b.conversation.id.localeCompare(a.conversation.id);
}

/**
 * The list after a new message. Returns null when the conversation is not in the list: the
 * caller reloads, since only the server knows whether it now belongs to the view.
 */
export function withMessage(
  list: ConversationSummary[],
  message: CreatedPayload,
  opts: { openId: string | null; myId: string | null },
): ConversationSummary[] | null {
  const index = list.findIndex((s) => s.conversation.id === message.conversation_id);
  if (index < 0) return null;
  const current = list[index]!;
  const isNote = message.kind === 'note';
  const countsAsUnread = message.direction === 'inbound' && message.conversation_id !== opts.openId;
  const next: ConversationSummary = {
    ...current,
    conversation: message.conversation ?? current.conversation,
    last_message_text: isNote ? current.last_message_text : message.text,
    last_message_at: isNote ? current.last_message_at : message.created_at,
    unread: countsAsUnread ? current.unread + 1 : current.unread,
  };
  const out = list.slice();
  out[index] = next;
  return out.sort(byActivity);
}

/** The list after a conversation changed; null when it is not listed (reload). */
export function withConversation(list: ConversationSummary[], updated: UpdatedPayload): ConversationSummary[] | null {
  const index = list.findIndex((s) => s.conversation.id === updated.id);
  if (index < 0) return null;
  const { tags, ...conversation } = updated;
  const out = list.slice();
  out[index] = { ...list[index]!, conversation, tags: tags ?? list[index]!.tags };
  return out;
}

/** Whether a listed conversation still belongs to the filters after a change. */
export function stillMatches(s: ConversationSummary, f: Filters, myId: string | null): boolean {
  const c = s.conversation;
  if (f.status && c.status !== f.status) return false;
  if (f.channelId && c.channel_id !== f.channelId) return false;
  if (f.tag && !s.tags.includes(f.tag)) return false;
  if (f.view === 'mine') return c.assignee_id === myId;
  if (f.view === 'unassigned') return c.assignee_id == null;
  if (f.view.startsWith('group:')) return c.group_id === f.view.slice('group:'.length);
  return true;
}

/** The open conversation's messages with one added or replaced (status changes), oldest first. */
export function upsertMessage(messages: Message[], message: Message): Message[] {
  const index = messages.findIndex((m) => m.id === message.id);
  // Only the message's own fields: a `conversation` riding along stays out of the history.
  const { conversation: _ignored, ...plain } = message as CreatedPayload;
  const out = messages.slice();
  if (index >= 0) out[index] = { ...out[index]!, ...plain };
  else out.push(plain);
  return out.sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
}

/** The list with a conversation's unread count cleared (after reading it). */
export function markRead(list: ConversationSummary[], conversationId: string): ConversationSummary[] {
  return list.map((s) => (s.conversation.id === conversationId && s.unread > 0 ? { ...s, unread: 0 } : s));
}
