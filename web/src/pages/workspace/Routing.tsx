// Per group: how conversations are distributed, working hours and the automatic first answers.
import { Button, Group, Select, Stack, Switch, Text, TextInput, Textarea } from '@mantine/core';
import { useEffect, useState, type FormEvent } from 'react';
import { ok } from '../../api/client';
import type { Group as ClientGroup } from '../../api/types';
import type { components } from '../../api/schema';
import { useApi } from '../../auth/session';
import { ErrorNote } from '../../components/ErrorNote';
import { PageTitle } from '../../components/Page';
import { useI18n, type MessageKey } from '../../i18n';
import { formatDay, parseDay } from './hours';

type RoutingView = components['schemas']['GroupRoutingView'];
type Mode = RoutingView['mode'];
const MODES: Mode[] = ['round_robin', 'least_busy', 'most_skilled'];
const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
const REPLIES = ['new_in_hours', 'new_off_hours', 'returning_in_hours', 'returning_off_hours'] as const;

export function Routing() {
  const { t } = useI18n();
  const api = useApi();
  const [groups, setGroups] = useState<ClientGroup[]>([]);
  const [groupId, setGroupId] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    ok(api.GET('/api/v1/groups')).then((r) => {
      setGroups(r.items);
      setGroupId((g) => g ?? r.items[0]?.id ?? null);
    }, setError);
  }, [api]);

  return (
    <Stack>
      <PageTitle>{t('routing.title')}</PageTitle>
      <ErrorNote error={error} />
      {groups.length === 0 ? (
        <Text c="dimmed">{t('routing.noGroups')}</Text>
      ) : (
        <Select label={t('routing.group')} data={groups.map((g) => ({ value: g.id, label: g.name }))} value={groupId} onChange={setGroupId} allowDeselect={false} />
      )}
      {groupId && <RoutingForm key={groupId} groupId={groupId} />}
    </Stack>
  );
}

function RoutingForm({ groupId }: { groupId: string }) {
  const { t } = useI18n();
  const api = useApi();
  const [view, setView] = useState<RoutingView | null>(null);
  const [days, setDays] = useState<string[]>([]);
  const [saved, setSaved] = useState(false);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    ok(api.GET('/api/v1/groups/{id}/routing', { params: { path: { id: groupId } } })).then((v) => {
      setView(v);
      setDays(v.hours.days.map((d) => formatDay(d)));
    }, setError);
  }, [api, groupId]);

  if (!view) return <ErrorNote error={error} />;
  const parsed = days.map(parseDay);
  const valid = parsed.every((d) => d !== null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!valid) return;
    setError(null);
    setSaved(false);
    try {
      const body = {
        mode: view.mode,
        hours: { ...view.hours, days: parsed as RoutingView['hours']['days'] },
        auto_replies: view.auto_replies,
      };
      const next = await ok(api.PUT('/api/v1/groups/{id}/routing', { params: { path: { id: groupId } }, body }));
      setView(next);
      setSaved(true);
    } catch (err) {
      setError(err);
    }
  };

  return (
    <form onSubmit={submit}>
      <Stack>
        <Select
          label={t('routing.mode')}
          data={MODES.map((m) => ({ value: m, label: t(`routing.${m}` as MessageKey) }))}
          value={view.mode}
          onChange={(v) => v && setView({ ...view, mode: v as Mode })}
          allowDeselect={false}
        />
        <TextInput
          label={t('routing.timezone')}
          value={view.hours.timezone}
          onChange={(e) => setView({ ...view, hours: { ...view.hours, timezone: e.currentTarget.value } })}
        />
        <Switch
          label={t('routing.alwaysOpen')}
          checked={view.hours.always_open}
          onChange={(e) => setView({ ...view, hours: { ...view.hours, always_open: e.currentTarget.checked } })}
        />
        {!view.hours.always_open &&
          DAYS.map((d, i) => (
            <TextInput
              key={d}
              label={t(`day.${d}` as MessageKey)}
              placeholder="09:00-18:00"
              description={i === 0 ? t('routing.hoursHint') : undefined}
              value={days[i] ?? ''}
              error={parsed[i] === null ? t('routing.hoursInvalid') : undefined}
              onChange={(e) => {
                const value = e.currentTarget.value;
                setDays((cur) => cur.map((x, j) => (j === i ? value : x)));
              }}
            />
          ))}
        {REPLIES.map((r) => (
          <Textarea
            key={r}
            label={t(`routing.${r}` as MessageKey)}
            autosize
            minRows={2}
            value={view.auto_replies[r] ?? ''}
            onChange={(e) => setView({ ...view, auto_replies: { ...view.auto_replies, [r]: e.currentTarget.value || null } })}
          />
        ))}
        <ErrorNote error={error} />
        <Group>
          <Button type="submit" disabled={!valid}>
            {t('common.save')}
          </Button>
          {saved && (
            <Text size="sm" c="green" role="status">
              {t('common.saved')}
            </Text>
          )}
        </Group>
      </Stack>
    </form>
  );
}
