// The audit log of the client: who did what, newest first, filtered by person or action.
import { Button, Code, Group, Select, Stack, Table, TextInput } from '@mantine/core';
import { useCallback, useEffect, useState } from 'react';
import { ok } from '../../api/client';
import type { AuditEntry, Employee } from '../../api/types';
import { useApi } from '../../auth/session';
import { ErrorNote } from '../../components/ErrorNote';
import { PageTitle } from '../../components/Page';
import { useI18n } from '../../i18n';
import { dateTime } from '../../lib/time';

export function Audit() {
  const { t, lang } = useI18n();
  const api = useApi();
  const [entries, setEntries] = useState<AuditEntry[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [employees, setEmployees] = useState<Employee[]>([]);
  const [actor, setActor] = useState<string | null>(null);
  const [action, setAction] = useState('');
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(
    async (before?: string) => {
      try {
        const page = await ok(
          api.GET('/api/v1/audit', {
            params: { query: { actor_id: actor ?? undefined, action: action.trim() || undefined, before, limit: 100 } },
          }),
        );
        setEntries((cur) => (before ? [...cur, ...page.items] : page.items));
        setNext(page.next_before ?? null);
        setError(null);
      } catch (err) {
        setError(err);
      }
    },
    [api, actor, action],
  );
  useEffect(() => {
    const handle = setTimeout(() => void load(), 300);
    return () => clearTimeout(handle);
  }, [load]);
  useEffect(() => {
    ok(api.GET('/api/v1/employees')).then((r) => setEmployees(r.items), () => {});
  }, [api]);

  const who = (id: string | null | undefined) => employees.find((e) => e.id === id)?.display_name ?? id ?? '—';

  return (
    <Stack>
      <PageTitle>{t('audit.title')}</PageTitle>
      <Group>
        <Select
          label={t('audit.actor')}
          placeholder={t('filter.any')}
          clearable
          data={employees.map((e) => ({ value: e.id, label: e.display_name }))}
          value={actor}
          onChange={setActor}
        />
        <TextInput label={t('audit.action')} placeholder="conversation.reply" value={action} onChange={(e) => setAction(e.currentTarget.value)} />
      </Group>
      <ErrorNote error={error} />
      <Table withTableBorder striped data-testid="audit-log">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>{t('audit.when')}</Table.Th>
            <Table.Th>{t('audit.actor')}</Table.Th>
            <Table.Th>{t('audit.action')}</Table.Th>
            <Table.Th>{t('audit.target')}</Table.Th>
            <Table.Th>IP</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {entries.map((e) => (
            <Table.Tr key={e.id}>
              <Table.Td>{dateTime(e.created_at, lang)}</Table.Td>
              <Table.Td>{who(e.actor_id)}</Table.Td>
              <Table.Td>
                <Code>{e.action}</Code>
              </Table.Td>
              <Table.Td>{e.target_kind ? `${e.target_kind} ${e.target_id ?? ''}` : '—'}</Table.Td>
              <Table.Td>{e.ip ?? '—'}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {next && (
        <Button variant="default" onClick={() => void load(next)}>
          {t('common.more')}
        </Button>
      )}
    </Stack>
  );
}
