// Scheduled tasks by status, failed ones first: what each does, when it was due, how many
// attempts it took and the network's reason of its last failure; retry a failed (or skipped)
// one, cancel a pending or failed one.
import { Alert, Button, Group, SegmentedControl, Stack, Table, Text } from '@mantine/core';
import { IconRefresh } from '@tabler/icons-react';
import { useCallback, useEffect, useState } from 'react';
import { ok } from '../../api/client';
import { useApi } from '../../auth/session';
import { ErrorNote } from '../../components/ErrorNote';
import { PageTitle } from '../../components/Page';
import { useI18n, type MessageKey } from '../../i18n';
import { dateTime } from '../../lib/time';
import { canCancel, canRetry, taskKindText, TASK_STATUSES, type Task, type TaskStatus } from './logic';

export function Tasks() {
  const { t, lang } = useI18n();
  const api = useApi();
  const [status, setStatus] = useState<TaskStatus>('failed');
  const [items, setItems] = useState<Task[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const load = useCallback(() => {
    setError(null);
    ok(api.GET('/api/v1/tasks', { params: { query: { status, limit: 200 } } })).then((r) => setItems(r.items), setError);
  }, [api, status]);
  useEffect(load, [load]);

  const act = async (task: Task, what: 'retry' | 'cancel') => {
    setError(null);
    setNotice(null);
    try {
      const params = { params: { path: { id: task.id } } };
      if (what === 'retry') await ok(api.POST('/api/v1/tasks/{id}/retry', params));
      else await ok(api.POST('/api/v1/tasks/{id}/cancel', params));
      setNotice(what === 'retry' ? t('tasks.retried') : t('tasks.cancelled'));
      load();
    } catch (err) {
      setError(err);
    }
  };

  return (
    <Stack>
      <PageTitle
        actions={
          <Button size="sm" variant="default" leftSection={<IconRefresh size={16} aria-hidden="true" />} onClick={load}>
            {t('tasks.refresh')}
          </Button>
        }
      >
        {t('tasks.title')}
      </PageTitle>
      <Text size="sm" c="dimmed">
        {t('tasks.intro')}
      </Text>
      <div role="group" aria-label={t('tasks.filter')}>
        <SegmentedControl
          value={status}
          onChange={(v) => setStatus(v as TaskStatus)}
          data={TASK_STATUSES.map((s) => ({ value: s, label: t(`tasks.status.${s}` as MessageKey) }))}
        />
      </div>
      <ErrorNote error={error} />
      {notice && (
        <Alert color="green" role="status" withCloseButton onClose={() => setNotice(null)}>
          {notice}
        </Alert>
      )}
      {items === null && !error && <div className="page-loading" aria-busy="true" />}
      {items && items.length === 0 && (
        <Text size="sm" c="dimmed">
          {t('tasks.none')}
        </Text>
      )}
      {items && items.length > 0 && (
        <Table withTableBorder striped data-testid="tasks">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>{t('tasks.kind')}</Table.Th>
              <Table.Th>{t('tasks.due')}</Table.Th>
              <Table.Th ta="right">{t('tasks.attempts')}</Table.Th>
              <Table.Th>{t('tasks.reason')}</Table.Th>
              <Table.Th />
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {items.map((task) => {
              const kind = taskKindText(task.kind, t);
              const label = `${kind}, ${dateTime(task.due_at, lang)}`;
              return (
                <Table.Tr key={task.id} data-testid={`task-${task.id}`}>
                  <Table.Td>
                    <Text size="sm">{kind}</Text>
                    {task.recurrence && (
                      <Text size="xs" c="dimmed">
                        {t('tasks.recurring', { rule: task.recurrence })}
                      </Text>
                    )}
                  </Table.Td>
                  <Table.Td>{dateTime(task.due_at, lang)}</Table.Td>
                  <Table.Td ta="right">{task.attempts}</Table.Td>
                  <Table.Td className="message-text">
                    {task.last_error ? (
                      <Text size="sm" c={task.status === 'failed' ? 'red' : undefined} data-testid="task-reason">
                        {task.last_error}
                      </Text>
                    ) : (
                      '—'
                    )}
                  </Table.Td>
                  <Table.Td>
                    <Group gap={4} wrap="nowrap">
                      {canRetry(task) && (
                        <Button size="compact-xs" variant="light" onClick={() => void act(task, 'retry')} aria-label={t('tasks.retryOf', { task: label })}>
                          {t('tasks.retry')}
                        </Button>
                      )}
                      {canCancel(task) && (
                        <Button size="compact-xs" variant="subtle" color="red" onClick={() => void act(task, 'cancel')} aria-label={t('tasks.cancelOf', { task: label })}>
                          {t('tasks.cancel')}
                        </Button>
                      )}
                    </Group>
                  </Table.Td>
                </Table.Tr>
              );
            })}
          </Table.Tbody>
        </Table>
      )}
    </Stack>
  );
}
