import { Badge, Button, Group, Loader, ScrollArea, Select, Stack, Text, TextInput, Tooltip, UnstyledButton } from '@mantine/core';
import { useInterval } from '@mantine/hooks';
import { IconBell, IconKeyboard } from '@tabler/icons-react';
import { useEffect, useState } from 'react';
import { Link } from 'react-router';
import type { Channel, ConversationSummary, Group as ClientGroup } from '../../api/types';
import { ChannelIcon } from '../../components/ChannelIcon';
import { ErrorNote } from '../../components/ErrorNote';
import { useI18n, type MessageKey } from '../../i18n';
import { askForNotifications } from '../../lib/notify';
import { waitingTime } from '../../lib/time';
import type { Status } from '../../ws/socket';
import type { Filters } from './inboxState';
import { typingIn, type TypingByConversation } from './typing';

const STATUSES = ['new', 'open', 'pending', 'snoozed', 'resolved'] as const;
const WAITING = new Set(['new', 'open']);

interface Props {
  filters: Filters;
  onFilters(f: Filters): void;
  list: ConversationSummary[];
  loading: boolean;
  error: unknown;
  channels: Channel[];
  groups: ClientGroup[];
  selectedId: string | null;
  status: Status;
  typing: TypingByConversation;
  onHelp(): void;
  /** Loads the next page; null on the last one. */
  onMore: (() => void) | null;
}

export function ConversationList(props: Props) {
  const { t } = useI18n();
  const { filters, onFilters, channels, groups } = props;
  const [now, setNow] = useState(Date.now());
  const ticker = useInterval(() => setNow(Date.now()), 30_000);
  useEffect(() => {
    ticker.start();
    return ticker.stop;
  }, [ticker]);
  const [tag, setTag] = useState(filters.tag ?? '');
  useEffect(() => {
    const handle = setTimeout(() => {
      const next = tag.trim() || null;
      if (next !== filters.tag) onFilters({ ...filters, tag: next });
    }, 400);
    return () => clearTimeout(handle);
  }, [tag, filters, onFilters]);

  const channelById = new Map(channels.map((c) => [c.id, c]));
  const views = [
    { value: 'mine', label: t('view.mine') },
    { value: 'unassigned', label: t('view.unassigned') },
    { value: 'all', label: t('view.all') },
    ...groups.map((g) => ({ value: `group:${g.id}`, label: t('view.group', { name: g.name }) })),
  ];

  return (
    <section className="conversation-list" aria-label={t('inbox.listLabel')}>
      <Stack gap="xs" p="sm" className="list-filters">
        <Group justify="space-between" wrap="nowrap">
          <Text fw={600} component="h1" size="lg">
            {t('nav.inbox')}
          </Text>
          <Group gap={6} wrap="nowrap">
            <ConnectionBadge status={props.status} />
            <NotificationsButton />
            <Tooltip label={t('shortcuts.title')}>
              <UnstyledButton onClick={props.onHelp} aria-label={t('shortcuts.title')} className="icon-button">
                <IconKeyboard size={18} aria-hidden="true" />
              </UnstyledButton>
            </Tooltip>
          </Group>
        </Group>
        <Select
          label={t('filter.view')}
          data={views}
          value={filters.view}
          allowDeselect={false}
          onChange={(v) => v && onFilters({ ...filters, view: v })}
          size="xs"
        />
        <Group grow gap="xs">
          <Select
            label={t('filter.status')}
            placeholder={t('filter.any')}
            clearable
            data={STATUSES.map((s) => ({ value: s, label: t(`status.${s}` as MessageKey) }))}
            value={filters.status}
            onChange={(v) => onFilters({ ...filters, status: v })}
            size="xs"
          />
          <Select
            label={t('filter.channel')}
            placeholder={t('filter.any')}
            clearable
            data={channels.map((c) => ({ value: c.id, label: c.name }))}
            value={filters.channelId}
            onChange={(v) => onFilters({ ...filters, channelId: v })}
            size="xs"
          />
        </Group>
        <TextInput label={t('filter.tag')} placeholder={t('filter.any')} value={tag} onChange={(e) => setTag(e.currentTarget.value)} size="xs" />
      </Stack>
      <ErrorNote error={props.error} />
      <ScrollArea className="list-scroll" type="auto">
        {props.loading && props.list.length === 0 ? (
          <Group justify="center" p="md">
            <Loader size="sm" aria-label={t('common.loading')} />
          </Group>
        ) : props.list.length === 0 ? (
          <Text c="dimmed" p="md" size="sm">
            {t('inbox.empty')}
          </Text>
        ) : (
          <ul className="list-items" data-testid="conversation-list">
            {props.list.map((s) => {
              const c = s.conversation;
              const channel = channelById.get(c.channel_id);
              const selected = c.id === props.selectedId;
              return (
                <li key={c.id}>
                  <Link
                    to={`/inbox/${c.id}`}
                    className={selected ? 'list-item selected' : 'list-item'}
                    aria-current={selected ? 'page' : undefined}
                    data-conversation={c.id}
                  >
                    <span className="list-item-top">
                      <span className="list-item-name">
                        <ChannelIcon provider={channel?.provider} />
                        <span className="sr-only">{channel?.name}</span>
                        <strong>{s.contact_name}</strong>
                      </span>
                      {WAITING.has(c.status) ? (
                        <span className="list-item-wait" title={t('inbox.waiting')}>
                          {waitingTime(s.last_message_at, now, t)}
                        </span>
                      ) : (
                        <Badge size="xs" variant="light" color="gray">
                          {t(`status.${c.status}` as MessageKey)}
                        </Badge>
                      )}
                    </span>
                    <span className="list-item-bottom">
                      <span className="list-item-text">
                        <TypingOr typing={props.typing} conversationId={c.id} text={s.last_message_text ?? ''} />
                      </span>
                      {s.unread > 0 && (
                        <Badge size="sm" circle aria-label={t('inbox.unread', { n: s.unread })}>
                          {s.unread}
                        </Badge>
                      )}
                    </span>
                    {s.tags.length > 0 && (
                      <span className="list-item-tags">
                        {s.tags.map((tagName) => (
                          <Badge key={tagName} size="xs" variant="outline">
                            {tagName}
                          </Badge>
                        ))}
                      </span>
                    )}
                  </Link>
                </li>
              );
            })}
          </ul>
        )}
        {props.onMore && (
          <Group justify="center" p="sm">
            <Button size="xs" variant="default" onClick={props.onMore}>
              {t('common.more')}
            </Button>
          </Group>
        )}
      </ScrollArea>
    </section>
  );
}

function ConnectionBadge({ status }: { status: Status }) {
  const { t } = useI18n();
  const color = status === 'open' ? 'green' : status === 'revoked' ? 'red' : 'yellow';
  return (
    <Badge color={color} variant="dot" size="sm" role="status" data-testid="connection">
      {t(`connection.${status}` as MessageKey)}
    </Badge>
  );
}

/** Asks for desktop notifications; browsers allow the question only after a click. */
function NotificationsButton() {
  const { t } = useI18n();
  const [permission, setPermission] = useState(() => (typeof Notification === 'undefined' ? 'denied' : Notification.permission));
  if (permission !== 'default') return null;
  return (
    <Tooltip label={t('notify.enable')}>
      <UnstyledButton
        className="icon-button"
        aria-label={t('notify.enable')}
        onClick={() => void askForNotifications().then(() => setPermission(Notification.permission))}
      >
        <IconBell size={18} aria-hidden="true" />
      </UnstyledButton>
    </Tooltip>
  );
}

/** The list row's text: who is typing, when someone is, else the last message. */
function TypingOr({ typing, conversationId, text }: { typing: TypingByConversation; conversationId: string; text: string }) {
  const { t } = useI18n();
  const now = Date.now();
  const { contact, users } = typingIn(typing, conversationId, now);
  if (contact) return <em data-testid="contact-typing">{t('inbox.contactTyping')}</em>;
  if (users.length > 0) return <em>{t('inbox.typing')}</em>;
  return <>{text}</>;
}
