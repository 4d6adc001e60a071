import { ActionIcon, Alert, Badge, Button, Group, Loader, Menu, Select, TagsInput, Text, Tooltip } from '@mantine/core';
import { useHotkeys } from '@mantine/hooks';
import { IconAlertCircle, IconCheck, IconChecks, IconClock, IconId, IconZzz } from '@tabler/icons-react';
import { useCallback, useEffect, useRef, useState } from 'react';
import { ok } from '../../api/client';
import type { ConversationDetail, Message } from '../../api/types';
import { useSession } from '../../auth/session';
import { ChannelIcon } from '../../components/ChannelIcon';
import { ErrorNote } from '../../components/ErrorNote';
import { Attachments } from '../../components/Attachments';
import { MessageText } from '../../components/MessageText';
import { useI18n, type MessageKey } from '../../i18n';
import { dateTime } from '../../lib/time';
import { Composer, type ComposerHandle } from './Composer';
import type { InboxContext } from './Inbox';
import { upsertMessage, type CreatedPayload, type UpdatedPayload } from './inboxState';
import { typingIn } from './typing';

const HISTORY_PAGES = 20;

interface Props {
  conversationId: string;
  context: InboxContext;
  onShowContact(): void;
}

function snoozeOptions(now: Date) {
  const hour = new Date(now.getTime() + 3600_000);
  const tomorrow = new Date(now);
  tomorrow.setDate(now.getDate() + 1);
  tomorrow.setHours(9, 0, 0, 0);
  const week = new Date(tomorrow);
  week.setDate(tomorrow.getDate() + 6);
  return [
    ['snooze.hour', hour],
    ['snooze.tomorrow', tomorrow],
    ['snooze.week', week],
  ] as const;
}

export function ConversationView({ conversationId, context, onShowContact }: Props) {
  const { t, lang } = useI18n();
  const { api, me } = useSession();
  const [detail, setDetail] = useState<ConversationDetail | null>(null);
  const [messages, setMessages] = useState<Message[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const composer = useRef<ComposerHandle>(null);
  const bottom = useRef<HTMLDivElement>(null);

  const load = useCallback(async () => {
    try {
      const d = await ok(api.GET('/api/v1/conversations/{id}', { params: { path: { id: conversationId } } }));
      setDetail(d);
      let all: Message[] = [];
      let after: string | undefined;
      for (let i = 0; i < HISTORY_PAGES; i++) {
        const page = await ok(
          api.GET('/api/v1/conversations/{id}/messages', {
            params: { path: { id: conversationId }, query: { after, limit: 200 } },
          }),
        );
        all = all.concat(page.items);
        if (!page.next_after) break;
        after = page.next_after;
      }
      setMessages((live) => live.reduce(upsertMessage, all));
      setError(null);
    } catch (err) {
      setError(err);
    }
  }, [api, conversationId]);

  useEffect(() => {
    void load();
  }, [load]);

  useEffect(
    () =>
      context.listen(conversationId, (event) => {
        if (event.kind === 'message_created' || event.kind === 'message_status' || event.kind === 'message_updated') {
          const message = event.payload as CreatedPayload;
          setMessages((current) => upsertMessage(current, message));
          if (message.conversation) {
            const conversation = message.conversation;
            setDetail((d) => (d ? { ...d, conversation } : d));
          }
        } else if (event.kind === 'conversation_updated') {
          const { tags, ...conversation } = event.payload as UpdatedPayload;
          setDetail((d) => (d ? { ...d, conversation, tags: tags ?? d.tags } : d));
        }
      }),
    [context, conversationId],
  );

  // The newest customer message counts as read once it is on screen.
  const lastInbound = [...messages].reverse().find((m) => m.direction === 'inbound');
  useEffect(() => {
    if (lastInbound && !document.hidden) context.markRead(conversationId, lastInbound.id);
    // Only when a new inbound message arrives.
  }, [lastInbound?.id]);

  useEffect(() => {
    bottom.current?.scrollIntoView({ block: 'end' });
  }, [messages.length]);

  const patch = async (body: Record<string, unknown>) => {
    setActionError(null);
    try {
      const updated = await ok(
        api.PATCH('/api/v1/conversations/{id}', { params: { path: { id: conversationId } }, body: body as never }),
      );
      setDetail((d) => (d ? { ...d, conversation: updated as ConversationDetail['conversation'] } : d));
    } catch (err) {
      setActionError(err);
    }
  };

  const setTags = async (next: string[]) => {
    if (!detail) return;
    setActionError(null);
    const before = new Set(detail.tags);
    const after = new Set(next.map((s) => s.trim()).filter(Boolean));
    try {
      for (const tag of after) {
        if (!before.has(tag)) await ok(api.PUT('/api/v1/conversations/{id}/tags/{tag}', { params: { path: { id: conversationId, tag } } }));
      }
      for (const tag of before) {
        if (!after.has(tag)) await ok(api.DELETE('/api/v1/conversations/{id}/tags/{tag}', { params: { path: { id: conversationId, tag } } }));
      }
      setDetail((d) => (d ? { ...d, tags: [...after] } : d));
    } catch (err) {
      setActionError(err);
    }
  };

  const conversation = detail?.conversation;
  const resolved = conversation?.status === 'resolved';
  useHotkeys([
    ['r', () => composer.current?.focus('reply')],
    ['n', () => composer.current?.focus('note')],
    ['e', () => conversation && !resolved && void patch({ status: 'resolved' })],
  ]);

  if (error) return <section className="conversation"><ErrorNote error={error} /></section>;
  if (!detail || !conversation) {
    return (
      <section className="conversation" aria-busy="true">
        <Group justify="center" p="xl">
          <Loader size="sm" aria-label={t('common.loading')} />
        </Group>
      </section>
    );
  }

  const channel = context.channels.find((c) => c.id === conversation.channel_id);
  const canReply = me?.role === 'client_owner' || channel?.my_rights.includes('reply');
  // Assigning to others and moving between groups is for the owner and supervisors; anyone
  // may take an unassigned conversation.
  const supervises = me?.role === 'client_owner' || (me?.global_rights ?? []).includes('all_conversations');
  const employeeName = (id: string | null | undefined) =>
    context.employees.find((e) => e.id === id)?.display_name ?? t('assign.nobody');
  const typing = typingIn(context.typing, conversationId, Date.now());

  return (
    <section className="conversation" aria-label={t('conversation.label', { name: detail.contact.name })}>
      <header className="conversation-header">
        <Group gap="xs" wrap="nowrap" className="conversation-title">
          <ChannelIcon provider={channel?.provider} size={20} />
          <div>
            <Text fw={600} component="h2" size="md" className="truncate">
              {detail.contact.name}
            </Text>
            <Text size="xs" c="dimmed">
              {channel?.name} · #{conversation.request_no} ·{' '}
              <Badge size="xs" variant="light" component="span">
                {t(`status.${conversation.status}` as MessageKey)}
              </Badge>
              {conversation.snoozed_until && ` ${t('snooze.until', { when: dateTime(conversation.snoozed_until, lang) })}`}
              {conversation.blocked_at && (
                <>
                  {' · '}
                  <Tooltip label={t('blocked.help', { reason: conversation.blocked_reason ?? '' })} multiline w={320}>
                    <Badge size="xs" color="red" variant="light" component="span" data-testid="blocked-badge">
                      {t('blocked.label')}
                    </Badge>
                  </Tooltip>
                </>
              )}
            </Text>
          </div>
        </Group>
        <Group gap="xs" wrap="wrap" justify="flex-end">
          {conversation.assignee_id == null && (
            <Button size="xs" variant="light" onClick={() => void patch({ assignee_id: me?.user_id })}>
              {t('assign.take')}
            </Button>
          )}
          {supervises && (
            <>
              <Select
                size="xs"
                aria-label={t('assign.label')}
                placeholder={t('assign.label')}
                data={[
                  { value: '', label: t('assign.nobody') },
                  ...context.employees
                    .filter((e) => !e.disabled)
                    .map((e) => {
                      const seen = context.presence[e.id];
                      return { value: e.id, label: seen ? `${e.display_name} · ${t(`presence.${seen}`)}` : e.display_name };
                    }),
                ]}
                value={conversation.assignee_id ?? ''}
                onChange={(v) => void patch({ assignee_id: v ? v : null })}
                allowDeselect={false}
                className="assign-select"
              />
              {context.groups.length > 0 && (
                <Select
                  size="xs"
                  aria-label={t('transfer.group')}
                  placeholder={t('transfer.group')}
                  data={[{ value: '', label: t('transfer.noGroup') }, ...context.groups.map((g) => ({ value: g.id, label: g.name }))]}
                  value={conversation.group_id ?? ''}
                  onChange={(v) => void patch({ group_id: v ? v : null })}
                  allowDeselect={false}
                  className="assign-select"
                />
              )}
            </>
          )}
          {resolved ? (
            <Button size="xs" variant="default" onClick={() => void patch({ status: 'open' })}>
              {t('action.reopen')}
            </Button>
          ) : (
            <Button size="xs" color="green" leftSection={<IconCheck size={14} aria-hidden="true" />} onClick={() => void patch({ status: 'resolved' })}>
              {t('action.resolve')}
            </Button>
          )}
          <Menu withinPortal>
            <Menu.Target>
              <Button size="xs" variant="default" leftSection={<IconZzz size={14} aria-hidden="true" />}>
                {t('action.snooze')}
              </Button>
            </Menu.Target>
            <Menu.Dropdown>
              {snoozeOptions(new Date()).map(([label, when]) => (
                <Menu.Item key={label} onClick={() => void patch({ status: 'snoozed', snoozed_until: when.toISOString() })}>
                  {t(label)} · {dateTime(when, lang)}
                </Menu.Item>
              ))}
            </Menu.Dropdown>
          </Menu>
          <Tooltip label={t('contact.title')}>
            <ActionIcon variant="default" size="md" onClick={onShowContact} aria-label={t('contact.title')} className="contact-toggle">
              <IconId size={16} aria-hidden="true" />
            </ActionIcon>
          </Tooltip>
        </Group>
      </header>
      <div className="conversation-tags">
        <TagsInput
          size="xs"
          aria-label={t('tags.label')}
          placeholder={t('tags.placeholder')}
          value={detail.tags}
          onChange={(v) => void setTags(v)}
          clearable={false}
        />
        <Text size="xs" c="dimmed">
          {t('assign.current', { name: employeeName(conversation.assignee_id) })}
        </Text>
      </div>
      <ErrorNote error={actionError} />
      <div className="messages" role="log" aria-live="polite" aria-label={t('conversation.history')} data-testid="messages">
        {messages.map((m) => (
          <MessageBubble key={m.id} message={m} author={m.author_id ? employeeName(m.author_id) : null} />
        ))}
        <div ref={bottom} />
      </div>
      {typing.contact && (
        <Text size="xs" c="dimmed" px="md" role="status" data-testid="contact-typing-note">
          {t('inbox.contactTypingNamed', { name: detail.contact.name })}
        </Text>
      )}
      {typing.users.map((id) => (
        <Text key={id} size="xs" c="dimmed" px="md" role="status">
          {t('inbox.typingNamed', { name: employeeName(id) })}
        </Text>
      ))}
      {canReply ? (
        <Composer
          ref={composer}
          conversationId={conversationId}
          context={context}
        />
      ) : (
        <Alert color="gray" m="sm">
          {t('composer.readOnly')}
        </Alert>
      )}
    </section>
  );
}

/** How the reason of a reply refused because the customer blocked the bot begins. */
const BLOCKED_PREFIX = 'blocked_by_user:';

function DeliveryIcon({ message }: { message: Message }) {
  const { t } = useI18n();
  const label = t(`delivery.${message.status}` as MessageKey);
  const icon = {
    pending: <IconClock size={14} />,
    sent: <IconCheck size={14} />,
    delivered: <IconChecks size={14} />,
    read: <IconChecks size={14} color="var(--mantine-color-blue-6)" />,
    failed: <IconAlertCircle size={14} color="var(--mantine-color-red-6)" />,
    received: null,
  }[message.status];
  if (!icon) return null;
  // The customer blocked the bot: the server's code, then the provider's words (kept in the title).
  const blocked = message.failure_reason?.startsWith(BLOCKED_PREFIX);
  const reason = blocked ? t('delivery.blockedByUser') : message.failure_reason;
  return (
    <span className="delivery" data-status={message.status} title={message.failure_reason ?? label}>
      <span aria-hidden="true">{icon}</span>
      <span className="sr-only">{label}</span>
      {message.status === 'failed' && reason && <span className="delivery-reason">{reason}</span>}
    </span>
  );
}

function MessageBubble({ message, author }: { message: Message; author: string | null }) {
  const { t, lang } = useI18n();
  const cls = message.kind === 'note' ? 'bubble note' : message.direction === 'inbound' ? 'bubble inbound' : 'bubble outbound';
  return (
    <article className={cls} data-message={message.id}>
      {message.kind === 'note' && <span className="bubble-kind">{t('message.note')}</span>}
      {message.kind === 'auto_reply' && <span className="bubble-kind">{t('message.autoReply')}</span>}
      {message.text && <MessageText text={message.text} />}
      {(message.attachments ?? []).length > 0 && <Attachments files={message.attachments ?? []} />}
      <footer className="bubble-meta">
        {author && <span>{author} · </span>}
        <time dateTime={message.created_at}>{dateTime(message.created_at, lang)}</time>
        {message.direction === 'outbound' && message.kind !== 'note' && <DeliveryIcon message={message} />}
      </footer>
    </article>
  );
}
