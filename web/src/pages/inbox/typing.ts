// Who is typing where: colleagues (`typing` frames, by user id) and the customer
// (`contact_typing`). Neither is stored or replayed, so each sighting is shown for a few seconds
// and forgotten unless it repeats; the state keeps deadlines, and `pruneTyping` drops the
// ones that passed.

/** How long one typing frame keeps its indicator up. Senders repeat every few seconds. */
export const TYPING_SHOW_MS = 5000;

export interface Typing {
  /** Until when the customer counts as typing (ms since the epoch). */
  contactUntil?: number;
  /** Colleagues typing, each until a deadline. */
  users: Record<string, number>;
}
export type TypingByConversation = Record<string, Typing>;

/** A typing frame seen at `now`: `userId` null for the customer. */
export function noteTyping(state: TypingByConversation, conversationId: string, userId: string | null, now: number): TypingByConversation {
  const until = now + TYPING_SHOW_MS;
  const current = state[conversationId] ?? { users: {} };
  const next: Typing = userId === null ? { ...current, contactUntil: until } : { ...current, users: { ...current.users, [userId]: until } };
  return { ...state, [conversationId]: next };
}

/** Drops what expired by `now`; returns `state` itself when nothing did (no needless render). */
export function pruneTyping(state: TypingByConversation, now: number): TypingByConversation {
  let changed = false;
  const next: TypingByConversation = {};
  for (const [id, typing] of Object.entries(state)) {
    const users = Object.fromEntries(Object.entries(typing.users).filter(([, until]) => until > now));
    const contactLive = typing.contactUntil !== undefined && typing.contactUntil > now;
    const kept: Typing = contactLive ? { contactUntil: typing.contactUntil, users } : { users };
    if (Object.keys(users).length !== Object.keys(typing.users).length || contactLive !== (typing.contactUntil !== undefined)) changed = true;
    if (contactLive || Object.keys(users).length > 0) next[id] = kept;
  }
  return changed ? next : state;
}

/** Who types in one conversation at `now`. */
export function typingIn(state: TypingByConversation, conversationId: string, now: number): { contact: boolean; users: string[] } {
  const typing = state[conversationId];
  if (!typing) return { contact: false, users: [] };
  return {
    contact: typing.contactUntil !== undefined && typing.contactUntil > now,
    users: Object.entries(typing.users)
      .filter(([, until]) => until > now)
      .map(([id]) => id),
  };
}
