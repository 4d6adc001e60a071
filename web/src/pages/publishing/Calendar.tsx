// The calendar of what is planned: scheduled and published posts, and the other scheduled tasks
// (for those with the scheduling right), by month or by week in the user's time zone. A post
// dragged to another day (month) or day and hour (week) is rescheduled through the post's own
// schedule endpoint, which moves the post and its publishing task together (the earlier task
// then does nothing); another task moves through the scheduler's reschedule. Opening an item
// moves it with the keyboard instead; past slots take nothing.
import { Button, Group, Modal, SegmentedControl, Stack, Text, TextInput, Title } from '@mantine/core';
import { IconChevronLeft, IconChevronRight } from '@tabler/icons-react';
import { useCallback, useEffect, useMemo, useState, type DragEvent } from 'react';
import { Link } from 'react-router';
import { ApiError, ok } from '../../api/client';
import type { components } from '../../api/schema';
import { useApi } from '../../auth/session';
import { PageTitle } from '../../components/Page';
import { useI18n, type MessageKey } from '../../i18n';
import { publishingEn } from '../../i18n/publishing.en';
import {
  addDays,
  addMonths,
  dayOf,
  instantAtDayTime,
  monthGrid,
  moveTo,
  parseDay,
  rangeOf,
  slotIsPast,
  timeOf,
  wallAt,
  weekDays,
  type DayKey,
} from './calendarMath';
import { composeText, fromWire, type SocialPost } from './content';
import { NetworkIcon, canSchedule, formatWhen, holdsOnAll, useMe, usePublishingData, useTimeZone } from './shared';

type Task = components['schemas']['Task'];

interface Item {
  key: string;
  kind: 'post' | 'task';
  id: string;
  at: number;
  title: string;
  status: string;
  networks: string[];
  movable: boolean;
  failure?: string | null;
}

type View = 'month' | 'week';
const HOURS = Array.from({ length: 24 }, (_, h) => h);

export function Calendar() {
  const { t, lang } = useI18n();
  const api = useApi();
  const me = useMe();
  const zone = useTimeZone();
  const data = usePublishingData();
  const [view, setView] = useState<View>('month');
  const [anchor, setAnchor] = useState<DayKey>(() => dayOf(Date.now(), zone));
  const [posts, setPosts] = useState<SocialPost[]>([]);
  const [tasks, setTasks] = useState<Task[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [now, setNow] = useState(Date.now());
  const [open, setOpen] = useState<Item | null>(null);
  const [over, setOver] = useState<string | null>(null);
  const scheduling = canSchedule(me);

  const { year, month } = parseDay(anchor);
  const weeks = useMemo(() => (view === 'month' ? monthGrid(year, month) : [weekDays(anchor)]), [view, year, month, anchor]);
  const days = useMemo(() => weeks.flat(), [weeks]);
  const range = useMemo(() => rangeOf(days, zone), [days, zone]);

  const load = useCallback(async () => {
    setNow(Date.now());
    try {
      const p = await ok(api.GET('/api/v1/social/posts'));
      setPosts(p.items);
      if (scheduling) {
        const r = await ok(
          api.GET('/api/v1/tasks', {
            params: { query: { from: new Date(range.from).toISOString(), to: new Date(range.to).toISOString(), limit: 1000 } },
          }),
        );
        setTasks(r.items);
      }
    } catch (err) {
      setError(err);
    }
  }, [api, range, scheduling]);
  useEffect(() => {
    void load();
    // What is due moves on by itself (published, failed): keep the view fresh.
    const timer = window.setInterval(() => void load(), 15_000);
    return () => window.clearInterval(timer);
  }, [load]);

  const items = useMemo(() => {
    const out: Item[] = [];
    const postIds = new Set(posts.map((p) => p.id));
    for (const p of posts) {
      const targets = p.targets.map((x) => x.profile_id);
      const networks = targets.map((id) => data.profiles.find((x) => x.id === id)?.network ?? '');
      const title = composeText(fromWire(p.content)).split('\n')[0] || t('pub.untitled');
      const published = p.targets.map((x) => x.published_at).filter((x): x is string => !!x).sort()[0];
      const at = p.scheduled_at && p.status !== 'published' ? Date.parse(p.scheduled_at) : published ? Date.parse(published) : null;
      if (at === null || at < range.from || at >= range.to) continue;
      const failure = p.targets.find((x) => x.failure_reason)?.failure_reason;
      out.push({
        key: `post:${p.id}`,
        kind: 'post',
        id: p.id,
        at,
        title,
        status: p.status,
        networks,
        movable: p.status === 'scheduled' && at > now && holdsOnAll(me, targets, 'publish'),
        failure,
      });
    }
    for (const task of tasks) {
      const payload = task.payload as unknown as { post_id?: string };
      // A post's publishing shows as the post itself.
      if (task.kind === 'social.publish' && payload.post_id && postIds.has(payload.post_id)) continue;
      if (task.status === 'cancelled') continue;
      const at = Date.parse(task.due_at);
      out.push({
        key: `task:${task.id}`,
        kind: 'task',
        id: task.id,
        at,
        title: `cal.kind.${task.kind}` in publishingEn ? t(`cal.kind.${task.kind}` as MessageKey) : task.kind,
        status: task.status,
        networks: [],
        movable: ['pending', 'failed', 'skipped'].includes(task.status) && at > now,
        failure: task.last_error,
      });
    }
    return out.sort((a, b) => a.at - b.at);
  }, [posts, tasks, data.profiles, range, now, me, t]);

  const byDay = useMemo(() => {
    const m = new Map<string, Item[]>();
    for (const it of items) {
      const k = view === 'month' ? dayOf(it.at, zone) : `${dayOf(it.at, zone)}@${wallAt(it.at, zone).hour}`;
      m.set(k, [...(m.get(k) ?? []), it]);
    }
    return m;
  }, [items, view, zone]);

  const move = async (item: Item, target: { ok: true; at: number; wall: string }) => {
    setError(null);
    setNotice(null);
    try {
      if (item.kind === 'post') {
        await ok(api.POST('/api/v1/social/posts/{id}/schedule', { params: { path: { id: item.id } }, body: { at: target.wall, time_zone: zone } }));
      } else {
        await ok(api.POST('/api/v1/tasks/{id}/reschedule', { params: { path: { id: item.id } }, body: { due_at: new Date(target.at).toISOString() } }));
      }
      setNotice(t('cal.moved', { when: formatWhen(target.at, lang, zone) }));
      await load();
    } catch (err) {
      setError(err);
    }
  };

  const refuse = (reason: 'past' | 'no_such_time') => {
    setNotice(null);
    setError(reason === 'past' ? t('cal.past') : t('cal.noSuchTime', { zone }));
  };

  const dropOn = (day: DayKey, hour: number | null) => (e: DragEvent) => {
    e.preventDefault();
    setOver(null);
    const item = items.find((i) => i.key === e.dataTransfer.getData('text/plain'));
    if (!item || !item.movable) return;
    const target = moveTo(item.at, zone, day, hour, Date.now());
    if (!target.ok) refuse(target.reason);
    else void move(item, target);
  };
  const dragOver = (slot: string, past: boolean) => (e: DragEvent) => {
    if (past) {
      // Not a drop target: say why, and leave the message once the drag ends there.
      e.dataTransfer.dropEffect = 'none';
      setOver(null);
      if (error !== t('cal.past')) refuse('past');
      return;
    }
    e.preventDefault();
    e.dataTransfer.dropEffect = 'move';
    setOver(slot);
    if (error === t('cal.past')) setError(null);
  };

  const step = (n: number) => {
    if (view === 'week') setAnchor(addDays(anchor, 7 * n));
    else {
      const m = addMonths(year, month, n);
      setAnchor(`${String(m.year).padStart(4, '0')}-${String(m.month).padStart(2, '0')}-01`);
    }
  };

  const locale = lang === 'ru' ? 'ru-RU' : 'en-GB';
  const dayLabel = (d: DayKey, style: Intl.DateTimeFormatOptions) => {
    const { year: y, month: mo, day: da } = parseDay(d);
    return new Date(Date.UTC(y, mo - 1, da, 12)).toLocaleDateString(locale, { timeZone: 'UTC', ...style });
  };
  const title =
    view === 'month'
      ? new Date(Date.UTC(year, month - 1, 15)).toLocaleDateString(locale, { timeZone: 'UTC', month: 'long', year: 'numeric' })
      : `${dayLabel(days[0] ?? anchor, { day: 'numeric', month: 'short' })} – ${dayLabel(days[6] ?? anchor, { day: 'numeric', month: 'short', year: 'numeric' })}`;
  const today = dayOf(now, zone);

  const renderItem = (it: Item) => (
    <button
      key={it.key}
      type="button"
      className={`cal-item cal-${it.kind} cal-status-${it.status}${it.movable ? ' movable' : ''}`}
      draggable={it.movable}
      onDragStart={(e) => {
        setError(null);
        setNotice(null);
        e.dataTransfer.setData('text/plain', it.key);
        e.dataTransfer.effectAllowed = 'move';
      }}
      onDragEnd={() => setOver(null)}
      onClick={() => setOpen(it)}
      aria-label={`${timeOf(it.at, zone)} ${it.kind === 'post' ? t('cal.post') : t('cal.task')}: ${it.title} — ${it.kind === 'post' ? t(`pub.status.${it.status}` as MessageKey) : it.status}`}
      data-testid="cal-item"
    >
      <span className="cal-time">{timeOf(it.at, zone)}</span>
      {it.networks.map((n, i) => (
        <NetworkIcon key={i} network={n} size={12} />
      ))}
      <span className="truncate">{it.title}</span>
    </button>
  );

  return (
    <Stack>
      <PageTitle
        actions={
          <SegmentedControl
            aria-label={t('cal.view')}
            value={view}
            onChange={(v) => setView(v as View)}
            data={[
              { value: 'month', label: t('cal.month') },
              { value: 'week', label: t('cal.week') },
            ]}
          />
        }
      >
        {t('pub.calendar')}
      </PageTitle>
      <Group justify="space-between">
        <Group gap="xs">
          <Button variant="default" size="xs" onClick={() => step(-1)} aria-label={t('cal.previous')}>
            <IconChevronLeft size={16} aria-hidden="true" />
          </Button>
          <Button variant="default" size="xs" onClick={() => setAnchor(dayOf(Date.now(), zone))}>
            {t('cal.today')}
          </Button>
          <Button variant="default" size="xs" onClick={() => step(1)} aria-label={t('cal.next')}>
            <IconChevronRight size={16} aria-hidden="true" />
          </Button>
          <Title order={3} size="h4" aria-live="polite" data-testid="cal-title">
            {title}
          </Title>
        </Group>
        <Text size="xs" c="dimmed">
          {t('cal.timeZone', { zone })}
        </Text>
      </Group>
      <Text size="xs" c="dimmed">
        {t('cal.dragHint')} {!scheduling && t('cal.tasksHidden')}
      </Text>
      {/* One line that is always there: a message appearing mid-drag must not move the drop targets. */}
      <div className="cal-message" aria-live="polite">
        {error || data.error ? (
          <Text size="sm" c="red" role="alert" data-testid="cal-error">
            {messageOf(error ?? data.error, t('error.generic'))}
          </Text>
        ) : notice ? (
          <Text size="sm" c="green" data-testid="cal-notice">
            {notice}
          </Text>
        ) : null}
      </div>

      {view === 'month' ? (
        <table className="cal-month" data-testid="cal-month">
          <thead>
            <tr>
              {(weeks[0] ?? []).map((d) => (
                <th key={d} scope="col">
                  {dayLabel(d, { weekday: 'short' })}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {weeks.map((week) => (
              <tr key={week[0]}>
                {week.map((d) => {
                  const past = slotIsPast(d, null, zone, now);
                  const here = byDay.get(d) ?? [];
                  return (
                    <td
                      key={d}
                      data-day={d}
                      aria-label={dayLabel(d, { day: 'numeric', month: 'long', weekday: 'long' })}
                      className={`cal-day${past ? ' past' : ''}${d === today ? ' today' : ''}${parseDay(d).month !== month ? ' other-month' : ''}${over === d ? ' over' : ''}`}
                      onDragOver={dragOver(d, past)}
                      onDragLeave={() => setOver(null)}
                      onDrop={dropOn(d, null)}
                    >
                      <div className="cal-daynum" aria-hidden="true">
                        {parseDay(d).day}
                      </div>
                      <div className="cal-items">{here.map(renderItem)}</div>
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <div className="cal-week-scroll">
          <table className="cal-week" data-testid="cal-week">
            <thead>
              <tr>
                <th scope="col" className="cal-hour-head" />
                {days.map((d) => (
                  <th key={d} scope="col" className={d === today ? 'today' : undefined}>
                    {dayLabel(d, { weekday: 'short', day: 'numeric', month: 'short' })}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {HOURS.map((h) => (
                <tr key={h}>
                  <th scope="row" className="cal-hour">
                    {String(h).padStart(2, '0')}:00
                  </th>
                  {days.map((d) => {
                    const slot = `${d}@${h}`;
                    const past = slotIsPast(d, h, zone, now);
                    return (
                      <td
                        key={slot}
                        data-slot={slot}
                        aria-label={`${dayLabel(d, { day: 'numeric', month: 'long' })} ${String(h).padStart(2, '0')}:00`}
                        className={`cal-slot${past ? ' past' : ''}${over === slot ? ' over' : ''}`}
                        onDragOver={dragOver(slot, past)}
                        onDragLeave={() => setOver(null)}
                        onDrop={dropOn(d, h)}
                      >
                        {(byDay.get(slot) ?? []).map(renderItem)}
                      </td>
                    );
                  })}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {open && <MoveDialog item={open} zone={zone} onClose={() => setOpen(null)} onMove={(target) => void move(open, target).then(() => setOpen(null))} />}
    </Stack>
  );
}

function messageOf(error: unknown, generic: string): string {
  if (typeof error === 'string') return error;
  if (error instanceof ApiError && error.message) return error.detail ? `${error.message} (${error.detail})` : error.message;
  return generic;
}

/** An item's details, and moving it with the keyboard: a date and a time in the user's zone. */
function MoveDialog({ item, zone, onClose, onMove }: { item: Item; zone: string; onClose(): void; onMove(target: { ok: true; at: number; wall: string }): void }) {
  const { t, lang } = useI18n();
  const [day, setDay] = useState(dayOf(item.at, zone));
  const [time, setTime] = useState(timeOf(item.at, zone));
  const at = instantAtDayTime(day, time, zone);
  const problem = at === null ? (day && time ? t('pub.whenMissing', { zone }) : t('pub.whenInvalid')) : at <= Date.now() ? t('pub.whenPast') : null;
  return (
    <Modal opened onClose={onClose} title={t('cal.moveTitle', { what: item.title })}>
      <Stack gap="xs">
        <Text size="sm">{formatWhen(item.at, lang, zone)}</Text>
        {item.failure && (
          <Text size="sm" c="red">
            {t('cal.failed', { reason: item.failure })}
          </Text>
        )}
        {item.movable && (
          <>
            <Group grow>
              <TextInput type="date" label={t('pub.date')} value={day} onChange={(e) => setDay(e.currentTarget.value)} data-autofocus />
              <TextInput type="time" label={t('pub.time')} value={time} onChange={(e) => setTime(e.currentTarget.value)} />
            </Group>
            <Text size="xs" c={problem ? 'red' : 'dimmed'} role={problem ? 'alert' : undefined}>
              {problem ?? t('pub.timeZone', { zone })}
            </Text>
          </>
        )}
        <Group justify="flex-end">
          {item.kind === 'post' && (
            <Button variant="subtle" component={Link} to={`/publishing/compose/${item.id}`}>
              {t('pub.open')}
            </Button>
          )}
          {item.movable && (
            <Button disabled={!!problem} onClick={() => at !== null && onMove({ ok: true, at, wall: `${day}T${time}` })}>
              {t('pub.reschedule')}
            </Button>
          )}
        </Group>
      </Stack>
    </Modal>
  );
}
