// Per group: how conversations are distributed, working hours, the automatic first answers and
// each member's competency; per operator: how many conversations they hold at once.
import { Button, Group, Select, Stack, Switch, Table, Text, TextInput, Textarea, Title } from '@mantine/core';
import { useEffect, useState, type FormEvent } from 'react';
import { ok } from '../../api/client';
import type { Employee, Group as ClientGroup } from '../../api/types';
import type { components } from '../../api/schema';
import { useApi } from '../../auth/session';
import { ErrorNote } from '../../components/ErrorNote';
import { PageTitle } from '../../components/Page';
import { useI18n, type MessageKey } from '../../i18n';
import { formatDay, parseDay } from './hours';
import { byName, capacity, competency } from './routingPeople';

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
  const [people, setPeople] = useState<Employee[]>([]);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    ok(api.GET('/api/v1/groups')).then((r) => {
      setGroups(r.items);
      setGroupId((g) => g ?? r.items[0]?.id ?? null);
    }, setError);
    ok(api.GET('/api/v1/employees')).then((r) => setPeople(r.items), setError);
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
      {groupId && <RoutingForm key={groupId} groupId={groupId} people={people} />}
      <Capacities people={people} />
    </Stack>
  );
}

/** One number edited in place and saved on its own (a member's competency, an operator's capacity). */
function NumberCell({
  label,
  value,
  parse,
  problem,
  save,
}: {
  label: string;
  value: number;
  parse(raw: string): number | null;
  problem: string;
  save(n: number): Promise<void>;
}) {
  const { t } = useI18n();
  const [text, setText] = useState(String(value));
  const [saved, setSaved] = useState(value);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState(false);
  const n = parse(text);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (n === null) return;
    setError(null);
    setDone(false);
    try {
      await save(n);
      setSaved(n);
      setDone(true);
    } catch (err) {
      setError(err);
    }
  };

  return (
    <form onSubmit={submit}>
      <Group gap="xs" wrap="nowrap" align="flex-start">
        <TextInput
          size="xs"
          w={90}
          aria-label={label}
          inputMode="numeric"
          value={text}
          error={n === null ? problem : undefined}
          onChange={(e) => {
            setText(e.currentTarget.value);
            setDone(false);
          }}
        />
        <Button size="xs" variant="default" type="submit" disabled={n === null || n === saved} aria-label={`${t('common.save')}: ${label}`}>
          {t('common.save')}
        </Button>
        {done && (
          <Text size="xs" c="green" role="status">
            {t('common.saved')}
          </Text>
        )}
      </Group>
      <ErrorNote error={error} />
    </form>
  );
}

/** Each member's competency in the group, 1–100. */
function Competencies({ groupId, members, people }: { groupId: string; members: RoutingView['members']; people: Employee[] }) {
  const { t } = useI18n();
  const api = useApi();
  if (members.length === 0) return <Text c="dimmed">{t('routing.noMembers')}</Text>;
  return (
    <Table data-testid="competencies">
      <Table.Thead>
        <Table.Tr>
          <Table.Th>{t('routing.member')}</Table.Th>
          <Table.Th>{t('routing.competency')}</Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {byName(members, people).map((m) => (
          <Table.Tr key={m.user_id}>
            <Table.Td>{m.name ?? m.user_id}</Table.Td>
            <Table.Td>
              <NumberCell
                label={t('routing.competencyOf', { name: m.name ?? m.user_id })}
                value={m.competency}
                parse={competency}
                problem={t('routing.competencyRange')}
                save={async (level) => {
                  await ok(
                    api.PUT('/api/v1/groups/{id}/members/{user_id}/competency', {
                      params: { path: { id: groupId, user_id: m.user_id } },
                      body: { level },
                    }),
                  );
                }}
              />
            </Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

/** Every operator's capacity: conversations held at once, 0–1,000. */
function Capacities({ people }: { people: Employee[] }) {
  const { t } = useI18n();
  const api = useApi();
  const [operators, setOperators] = useState<components['schemas']['OperatorState'][] | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    ok(api.GET('/api/v1/operators')).then((r) => setOperators(r.items), setError);
  }, [api]);

  return (
    <Stack gap="xs">
      <Title order={2} size="h4">
        {t('routing.capacityTitle')}
      </Title>
      <Text size="sm" c="dimmed">
        {t('routing.capacityHint')}
      </Text>
      <ErrorNote error={error} />
      {operators && (
        <Table data-testid="capacities">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>{t('routing.member')}</Table.Th>
              <Table.Th>{t('routing.load')}</Table.Th>
              <Table.Th>{t('routing.capacity')}</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {byName(operators, people).map((o) => (
              <Table.Tr key={o.user_id}>
                <Table.Td>{o.name ?? o.user_id}</Table.Td>
                <Table.Td>{o.active}</Table.Td>
                <Table.Td>
                  <NumberCell
                    label={t('routing.capacityOf', { name: o.name ?? o.user_id })}
                    value={o.capacity}
                    parse={capacity}
                    problem={t('routing.capacityRange')}
                    save={async (n) => {
                      await ok(api.PATCH('/api/v1/operators/{user_id}', { params: { path: { user_id: o.user_id } }, body: { capacity: n } }));
                    }}
                  />
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
    </Stack>
  );
}

function RoutingForm({ groupId, people }: { groupId: string; people: Employee[] }) {
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
    <Stack>
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
    <Title order={2} size="h4">
      {t('routing.competencyTitle')}
    </Title>
    <Competencies groupId={groupId} members={view.members} people={people} />
    </Stack>
  );
}
