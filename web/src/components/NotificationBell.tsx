// The notification bell in the navigation rail: the user's latest notifications (a trigger's
// "notify an employee", …), kept live by a socket of its own that listens for `notification`
// events; the count is of those newer than when the user last opened the list (kept in this
// browser, as the server has no read marks for them).
import { Indicator, Popover, ScrollArea, Stack, Text, Tooltip, UnstyledButton } from '@mantine/core';
import { IconBell } from '@tabler/icons-react';
import { useEffect, useState } from 'react';
import { ok } from '../api/client';
import { useApi, useSession } from '../auth/session';
import { useI18n } from '../i18n';
import { dateTime } from '../lib/time';
import { notificationQuote, notificationText, unreadCount, withNotification, type Notification } from '../pages/social/logic';
import { InboxSocket, socketUrl } from '../ws/socket';

const SEEN_KEY = 'omnihub.notifications.seen';

function storedSeen(user: string | undefined): number {
  try {
    return Number(localStorage.getItem(`${SEEN_KEY}.${user}`) ?? 0) || 0;
  } catch {
    return 0;
  }
}

/** Whether a socket event carries a notification for this client. */
function asNotification(payload: unknown): Notification | null {
  const n = payload as Partial<Notification> | null;
  return n && typeof n.id === 'string' && typeof n.created_at === 'string' && typeof n.kind === 'string' ? (n as Notification) : null;
}

export function NotificationBell() {
  const { t, lang } = useI18n();
  const api = useApi();
  const { me } = useSession();
  const [items, setItems] = useState<Notification[]>([]);
  const [seen, setSeen] = useState(() => storedSeen(me?.user_id));
  const [open, setOpen] = useState(false);

  useEffect(() => {
    let live = true;
    const load = () =>
      ok(api.GET('/api/v1/notifications', { params: { query: { limit: 30 } } })).then(
        (r) => live && setItems((cur) => r.items.reduce(withNotification, cur)),
        () => {},
      );
    void load();
    // Only pushes matter here: the narrowest view keeps the rest of the inbox's traffic away.
    const socket = new InboxSocket({
      url: socketUrl(window.location),
      views: ['mine'],
      onFresh: () => void load(),
      onEvent: (e) => {
        if (e.kind !== 'notification') return;
        const n = asNotification(e.payload);
        if (n) setItems((cur) => withNotification(cur, n));
      },
    });
    socket.start();
    return () => {
      live = false;
      socket.stop();
    };
  }, [api]);

  const unread = unreadCount(items, seen);
  const toggle = () => {
    const next = !open;
    setOpen(next);
    if (next) {
      const now = Date.now();
      setSeen(now);
      try {
        localStorage.setItem(`${SEEN_KEY}.${me?.user_id}`, String(now));
      } catch {
        // Private mode: the count resets with the page.
      }
    }
  };
  const label = unread > 0 ? t('bell.labelNew', { n: unread }) : t('bell.label');

  return (
    <Popover opened={open} onChange={setOpen} position="right-end" withinPortal width={340} shadow="md">
      <Popover.Target>
        <Tooltip label={label} position="right" disabled={open}>
          <UnstyledButton className="rail-link" aria-label={label} aria-expanded={open} onClick={toggle} data-testid="bell">
            <Indicator disabled={unread === 0} label={unread > 9 ? '9+' : unread} size={16} color="red">
              <IconBell size={22} aria-hidden="true" />
            </Indicator>
          </UnstyledButton>
        </Tooltip>
      </Popover.Target>
      <Popover.Dropdown>
        <Text fw={600} mb="xs">
          {t('bell.label')}
        </Text>
        {items.length === 0 ? (
          <Text size="sm" c="dimmed">
            {t('bell.none')}
          </Text>
        ) : (
          <ScrollArea.Autosize mah={380}>
            <Stack gap="xs" component="ul" className="plain-list" aria-label={t('bell.label')} data-testid="notifications">
              {items.map((n) => {
                const quote = notificationQuote(n);
                return (
                  <li key={n.id}>
                    <Text size="sm">{notificationText(n, t)}</Text>
                    {quote && (
                      <Text size="xs" c="dimmed" lineClamp={2}>
                        {quote}
                      </Text>
                    )}
                    <Text size="xs" c="dimmed">
                      {dateTime(n.created_at, lang)}
                    </Text>
                  </li>
                );
              })}
            </Stack>
          </ScrollArea.Autosize>
        )}
      </Popover.Dropdown>
    </Popover>
  );
}
