// The operator inbox: the conversation list with its views and filters, the open conversation
// and the contact card, all kept live by the operator WebSocket.
import { Badge, Drawer, Kbd, Modal, Table, Text } from '@mantine/core';
import { useHotkeys } from '@mantine/hooks';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { useNavigate, useParams } from 'react-router';
import { ok } from '../../api/client';
import type { Channel, ConversationSummary, Employee, Group } from '../../api/types';
import { useSession } from '../../auth/session';
import { useI18n } from '../../i18n';
import { chime, notify } from '../../lib/notify';
import { InboxSocket, socketUrl, type EventFrame, type Presence, type Status } from '../../ws/socket';
import { ContactCard } from './ContactCard';
import { ConversationList } from './ConversationList';
import { ConversationView } from './ConversationView';
import { TYPING_SHOW_MS, noteTyping, pruneTyping, type TypingByConversation } from './typing';
import { markRead, stillMatches, withConversation, withMessage, type CreatedPayload, type Filters, type UpdatedPayload } from './inboxState';

export type EventListener = (event: EventFrame) => void;

export interface InboxContext {
  channels: Channel[];
  groups: Group[];
  employees: Employee[];
  typing: TypingByConversation;
  /** Colleagues' presence as pushed since the inbox opened (unknown until one changes). */
  presence: Record<string, Presence>;
  /** Sends a reply or note over the socket when it is up, else over REST. */
  send(kind: 'reply' | 'note', conversationId: string, text: string, key: string, attachmentIds?: string[]): Promise<void>;
  markRead(conversationId: string, messageId: string): void;
  sendTyping(conversationId: string): void;
  /** Pushed events for one conversation; returns the unsubscribe function. */
  listen(conversationId: string, fn: EventListener): () => void;
}

const FILTERS_KEY = 'omnihub.inbox.filters';
const RELOAD_DEBOUNCE_MS = 250;
const PAGE_SIZE = 50;

function savedFilters(): Filters {
  try {
    const raw = sessionStorage.getItem(FILTERS_KEY);
    if (raw) return { view: 'all', status: null, channelId: null, tag: null, ...(JSON.parse(raw) as Partial<Filters>) };
  } catch {
    // Unreadable: defaults.
  }
  return { view: 'all', status: null, channelId: null, tag: null };
}

export function Inbox() {
  const { conversationId = null } = useParams();
  const navigate = useNavigate();
  const { api, me, reload: reloadSession } = useSession();
  const { t } = useI18n();
  const [filters, setFilters] = useState<Filters>(savedFilters);
  const [list, setList] = useState<ConversationSummary[]>([]);
  const [loading, setLoading] = useState(true);
  const [listError, setListError] = useState<unknown>(null);
  const [channels, setChannels] = useState<Channel[]>([]);
  const [groups, setGroups] = useState<Group[]>([]);
  const [employees, setEmployees] = useState<Employee[]>([]);
  const [status, setStatus] = useState<Status>('connecting');
  const [typing, setTyping] = useState<TypingByConversation>({});
  const [presence, setPresence] = useState<Record<string, Presence>>({});
  const [help, setHelp] = useState(false);
  const [contactOpen, setContactOpen] = useState(false);

  const socket = useRef<InboxSocket | null>(null);
  const listeners = useRef(new Map<string, Set<EventListener>>());
  const latest = useRef({ filters, conversationId, list, myId: me?.user_id ?? null });
  latest.current = { filters, conversationId, list, myId: me?.user_id ?? null };
  const reloadTimer = useRef<ReturnType<typeof setTimeout> | null>(null);

  useEffect(() => {
    try {
      sessionStorage.setItem(FILTERS_KEY, JSON.stringify(filters));
    } catch {
      // Not kept: fine.
    }
  }, [filters]);

  const [nextBefore, setNextBefore] = useState<string | null>(null);

  /** The first page of the list (or, with `before`, the next one appended). */
  const loadList = useCallback(async (before?: string) => {
    const f = latest.current.filters;
    try {
      const page = await ok(
        api.GET('/api/v1/conversations', {
          params: {
            query: {
              view: f.view,
              status: (f.status ?? undefined) as ConversationSummary['conversation']['status'] | undefined,
              channel_id: f.channelId ?? undefined,
              tag: f.tag ?? undefined,
              before,
              limit: PAGE_SIZE,
            },
          },
        }),
      );
      setList((current) => (before ? [...current, ...page.items.filter((s) => !current.some((c) => c.conversation.id === s.conversation.id))] : page.items));
      setNextBefore(page.next_before ?? null);
      setListError(null);
    } catch (err) {
      setListError(err);
    } finally {
      setLoading(false);
    }
  }, [api]);

  const reloadSoon = useCallback(() => {
    if (reloadTimer.current) clearTimeout(reloadTimer.current);
    reloadTimer.current = setTimeout(() => void loadList(), RELOAD_DEBOUNCE_MS);
  }, [loadList]);

  useEffect(() => {
    setLoading(true);
    void loadList();
  }, [filters, loadList]);

  useEffect(() => {
    ok(api.GET('/api/v1/channels')).then((r) => setChannels(r.items), () => {});
    ok(api.GET('/api/v1/groups')).then((r) => setGroups(r.items), () => {});
    ok(api.GET('/api/v1/employees')).then((r) => setEmployees(r.items), () => {});
  }, [api]);

  const onEvent = useCallback(
    (event: EventFrame) => {
      const { filters: f, conversationId: openId, myId } = latest.current;
      if (event.kind === 'message_created') {
        const message = event.payload as CreatedPayload;
        setList((current) => {
          const next = withMessage(current, message, { openId, myId });
          if (next === null) reloadSoon();
          return next ?? current;
        });
        if (message.direction === 'inbound' && message.kind === 'message') {
          const unseen = document.hidden || message.conversation_id !== openId;
          if (unseen) {
            chime();
            const name = latest.current.list.find((s) => s.conversation.id === message.conversation_id)?.contact_name;
            notify(name ?? t('notify.title'), message.text, message.conversation_id, () =>
              navigate(`/inbox/${message.conversation_id}`),
            );
          }
        }
      } else if (event.kind === 'conversation_updated') {
        const updated = event.payload as UpdatedPayload;
        setList((current) => {
          const next = withConversation(current, updated);
          if (next === null) {
            reloadSoon();
            return current;
          }
          // A conversation that left the view stays until the next reload unless it is open.
          return next.filter((s) => s.conversation.id === openId || stillMatches(s, f, myId));
        });
      } else if (event.kind === 'read_mark') {
        const mark = event.payload as { user_id?: string };
        if (mark.user_id === myId) setList((current) => markRead(current, event.conversation_id));
      }
      listeners.current.get(event.conversation_id)?.forEach((fn) => fn(event));
    },
    [navigate, reloadSoon, t],
  );

  const onEventRef = useRef(onEvent);
  onEventRef.current = onEvent;

  const sawTyping = (conversationId: string, userId: string | null) => {
    setTyping((cur) => noteTyping(cur, conversationId, userId, Date.now()));
    setTimeout(() => setTyping((cur) => pruneTyping(cur, Date.now())), TYPING_SHOW_MS + 50);
  };

  useEffect(() => {
    const s = new InboxSocket({
      url: socketUrl(window.location),
      views: ['all'],
      onFresh: () => void loadList(),
      onEvent: (e) => onEventRef.current(e),
      onTyping: (frame) => sawTyping(frame.conversation_id, frame.user_id),
      onContactTyping: (frame) => sawTyping(frame.conversation_id, null),
      onPresence: (frame) => setPresence((cur) => ({ ...cur, [frame.user_id]: frame.presence })),
      onHidden: (frame) => {
        setList((current) => current.filter((s) => s.conversation.id !== frame.conversation_id));
        if (latest.current.conversationId === frame.conversation_id) navigate('/inbox');
      },
      onStatus: (st) => {
        setStatus(st);
        if (st === 'revoked') void reloadSession();
      },
    });
    socket.current = s;
    s.start();
    return () => {
      s.stop();
      socket.current = null;
    };
    // The socket lives as long as the inbox; handlers reach the latest state through refs.
  }, []);

  const context = useMemo<InboxContext>(
    () => ({
      channels,
      groups,
      employees,
      typing,
      presence,
      async send(kind, id, text, key, attachmentIds = []) {
        const s = socket.current;
        // Files go over REST: the socket's reply carries text only.
        if (attachmentIds.length > 0) {
          await ok(
            api.POST('/api/v1/conversations/{id}/messages', {
              params: { path: { id } },
              body: { text, idempotency_key: key, attachment_ids: attachmentIds },
            }),
          );
          return;
        }
        if (s?.status === 'open') {
          await s.request({ type: kind, conversation_id: id, text, idempotency_key: key });
          return;
        }
        const body = { text, idempotency_key: key };
        const path = { params: { path: { id } }, body };
        if (kind === 'reply') await ok(api.POST('/api/v1/conversations/{id}/messages', path));
        else await ok(api.POST('/api/v1/conversations/{id}/notes', path));
      },
      markRead(id, messageId) {
        setList((current) => markRead(current, id));
        const s = socket.current;
        if (s?.status === 'open') {
          s.request({ type: 'read', conversation_id: id, message_id: messageId }).catch(() => {});
        } else {
          api.POST('/api/v1/conversations/{id}/read', { params: { path: { id } }, body: { message_id: messageId } }).catch(() => {});
        }
      },
      sendTyping(id) {
        socket.current?.request({ type: 'typing', conversation_id: id }).catch(() => {});
      },
      listen(id, fn) {
        const set = listeners.current.get(id) ?? new Set();
        set.add(fn);
        listeners.current.set(id, set);
        return () => set.delete(fn);
      },
    }),
    [api, channels, groups, employees, typing, presence],
  );

  const move = (step: number) => {
    if (list.length === 0) return;
    const index = list.findIndex((s) => s.conversation.id === conversationId);
    const next = list[Math.min(list.length - 1, Math.max(0, index < 0 ? 0 : index + step))];
    if (next) navigate(`/inbox/${next.conversation.id}`);
  };
  useHotkeys([
    ['j', () => move(1)],
    ['k', () => move(-1)],
    ['alt+ArrowDown', () => move(1)],
    ['alt+ArrowUp', () => move(-1)],
    ['shift+?', () => setHelp(true)],
    ['Escape', () => conversationId && navigate('/inbox')],
  ]);

  return (
    <div className={conversationId ? 'inbox has-open' : 'inbox'}>
      <ConversationList
        filters={filters}
        onFilters={setFilters}
        list={list}
        loading={loading}
        error={listError}
        channels={channels}
        groups={groups}
        selectedId={conversationId}
        status={status}
        typing={typing}
        onHelp={() => setHelp(true)}
        onMore={nextBefore ? () => void loadList(nextBefore) : null}
      />
      {conversationId ? (
        <>
          <ConversationView
            key={conversationId}
            conversationId={conversationId}
            context={context}
            onShowContact={() => setContactOpen(true)}
          />
          <aside className="contact-pane" aria-label={t('contact.title')}>
            <ContactCard conversationId={conversationId} channels={channels} />
          </aside>
          <Drawer opened={contactOpen} onClose={() => setContactOpen(false)} position="right" title={t('contact.title')}>
            <ContactCard conversationId={conversationId} channels={channels} />
          </Drawer>
        </>
      ) : (
        <section className="conversation-empty" aria-live="polite">
          <Text c="dimmed">{t('inbox.pick')}</Text>
          <Text size="sm" c="dimmed">
            {t('inbox.shortcutsHint')} <Kbd>?</Kbd>
          </Text>
        </section>
      )}
      <Modal opened={help} onClose={() => setHelp(false)} title={t('shortcuts.title')}>
        <Table>
          <Table.Tbody>
            {(
              [
                ['J / Alt+↓', 'shortcuts.next'],
                ['K / Alt+↑', 'shortcuts.prev'],
                ['R', 'shortcuts.reply'],
                ['N', 'shortcuts.note'],
                ['E', 'shortcuts.resolve'],
                ['Ctrl+Enter', 'shortcuts.send'],
                ['Esc', 'shortcuts.close'],
                ['?', 'shortcuts.help'],
              ] as const
            ).map(([keys, label]) => (
              <Table.Tr key={label}>
                <Table.Td>
                  <Badge variant="default">{keys}</Badge>
                </Table.Td>
                <Table.Td>{t(label)}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Modal>
    </div>
  );
}
