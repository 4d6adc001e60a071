// Employees of the client: the rights matrix (employee × channel, full or partial), global
// rights, invitations and groups.
import { Alert, Button, Checkbox, CopyButton, Group, Modal, MultiSelect, ScrollArea, Stack, Switch, Table, Text, TextInput } from '@mantine/core';
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { ok } from '../../api/client';
import type { Channel, ChannelGrant, ChannelRight, Employee, GlobalRight, Group as ClientGroup, Invite } from '../../api/types';
import { useSession } from '../../auth/session';
import { ErrorNote } from '../../components/ErrorNote';
import { PageTitle } from '../../components/Page';
import { useI18n, type MessageKey } from '../../i18n';
import { dateTime } from '../../lib/time';
import { RightsPicker } from './RightsPicker';
import { withChannelRights } from './rights';

const GLOBAL_RIGHTS: GlobalRight[] = ['manage_employees', 'manage_settings', 'billing', 'all_conversations', 'analytics', 'scheduling'];

export function Employees() {
  const { t, lang } = useI18n();
  const { api, me } = useSession();
  const [employees, setEmployees] = useState<Employee[]>([]);
  const [channels, setChannels] = useState<Channel[]>([]);
  const [groups, setGroups] = useState<ClientGroup[]>([]);
  const [invites, setInvites] = useState<Invite[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [inviting, setInviting] = useState(false);

  const load = useCallback(async () => {
    try {
      const [e, c, g, i] = await Promise.all([
        ok(api.GET('/api/v1/employees')),
        ok(api.GET('/api/v1/channels')),
        ok(api.GET('/api/v1/groups')),
        ok(api.GET('/api/v1/invites')),
      ]);
      setEmployees(e.items);
      setChannels(c.items);
      setGroups(g.items);
      setInvites(i.items.filter((x) => !x.accepted_at));
      setError(null);
    } catch (err) {
      setError(err);
    }
  }, [api]);
  useEffect(() => void load(), [load]);

  const setGrants = async (employee: Employee, grants: ChannelGrant[]) => {
    try {
      await ok(api.PUT('/api/v1/employees/{id}/channels', { params: { path: { id: employee.id } }, body: { grants } }));
      setEmployees((list) => list.map((e) => (e.id === employee.id ? { ...e, channel_grants: grants } : e)));
    } catch (err) {
      setError(err);
    }
  };

  const update = async (employee: Employee, body: { global_rights?: GlobalRight[]; disabled?: boolean }) => {
    try {
      await ok(api.PATCH('/api/v1/employees/{id}', { params: { path: { id: employee.id } }, body }));
      await load();
    } catch (err) {
      setError(err);
    }
  };

  const staff = employees.filter((e) => e.role === 'employee');

  return (
    <Stack>
      <PageTitle actions={<Button onClick={() => setInviting(true)}>{t('employees.invite')}</Button>}>{t('employees.title')}</PageTitle>
      <ErrorNote error={error} />
      <Text size="sm" c="dimmed">
        {t('employees.matrixHint')}
      </Text>
      <ScrollArea type="auto">
        <Table striped withTableBorder className="rights-matrix" data-testid="rights-matrix">
          <Table.Thead>
            <Table.Tr>
              <Table.Th scope="col">{t('employees.employee')}</Table.Th>
              {channels.map((c) => (
                <Table.Th key={c.id} scope="col">
                  {c.name}
                </Table.Th>
              ))}
              <Table.Th scope="col">{t('employees.global')}</Table.Th>
              <Table.Th scope="col">{t('employees.active')}</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {staff.map((e) => (
              <Table.Tr key={e.id}>
                <Table.Th scope="row">
                  <Text size="sm" fw={600}>
                    {e.display_name}
                  </Text>
                  <Text size="xs" c="dimmed">
                    {e.email}
                  </Text>
                </Table.Th>
                {channels.map((c) => (
                  <Table.Td key={c.id}>
                    <RightsPicker
                      label={`${e.display_name} — ${c.name}`}
                      rights={e.channel_grants.find((g) => g.channel_id === c.id)?.rights ?? []}
                      onChange={(rights) => void setGrants(e, withChannelRights(e.channel_grants, c.id, rights))}
                    />
                  </Table.Td>
                ))}
                <Table.Td>
                  <MultiSelect
                    size="xs"
                    aria-label={t('employees.globalFor', { name: e.display_name })}
                    data={GLOBAL_RIGHTS.map((r) => ({ value: r, label: t(`global.${r}` as MessageKey) }))}
                    placeholder={e.global_rights.length === 0 ? t('rights.none') : undefined}
                    value={e.global_rights}
                    onChange={(v) => void update(e, { global_rights: v as GlobalRight[] })}
                    className="global-rights"
                  />
                </Table.Td>
                <Table.Td>
                  <Switch
                    aria-label={t('employees.activeFor', { name: e.display_name })}
                    checked={!e.disabled}
                    disabled={e.id === me?.user_id}
                    onChange={(ev) => void update(e, { disabled: !ev.currentTarget.checked })}
                  />
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </ScrollArea>

      <PageTitle>{t('invites.title')}</PageTitle>
      {invites.length === 0 ? (
        <Text size="sm" c="dimmed">
          {t('invites.none')}
        </Text>
      ) : (
        <Table withTableBorder>
          <Table.Tbody>
            {invites.map((i) => (
              <Table.Tr key={i.id}>
                <Table.Td>{i.email}</Table.Td>
                <Table.Td>{t('link.expires', { when: dateTime(i.expires_at, lang) })}</Table.Td>
                <Table.Td>
                  <Button
                    size="compact-xs"
                    variant="default"
                    onClick={() =>
                      void ok(api.DELETE('/api/v1/invites/{id}', { params: { path: { id: i.id } } })).then(load, setError)
                    }
                  >
                    {t('invites.revoke')}
                  </Button>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}

      <Groups groups={groups} employees={staff} onChanged={load} />

      <InviteModal opened={inviting} onClose={() => setInviting(false)} channels={channels} groups={groups} onInvited={load} />
    </Stack>
  );
}

function Groups({ groups, employees, onChanged }: { groups: ClientGroup[]; employees: Employee[]; onChanged(): void }) {
  const { t } = useI18n();
  const { api } = useSession();
  const [name, setName] = useState('');
  const [error, setError] = useState<unknown>(null);
  const run = (p: Promise<unknown>) => p.then(onChanged, setError);
  return (
    <Stack>
      <PageTitle>{t('groups.title')}</PageTitle>
      <ErrorNote error={error} />
      {groups.map((g) => (
        <Group key={g.id} align="flex-end">
          <MultiSelect
            className="grow"
            label={g.name}
            data={employees.map((e) => ({ value: e.id, label: e.display_name }))}
            value={g.member_ids}
            onChange={(ids) =>
              void run(ok(api.PUT('/api/v1/groups/{id}/members', { params: { path: { id: g.id } }, body: { member_ids: ids } })))
            }
          />
          <Button variant="default" onClick={() => void run(ok(api.DELETE('/api/v1/groups/{id}', { params: { path: { id: g.id } } })))}>
            {t('common.delete')}
          </Button>
        </Group>
      ))}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void run(ok(api.POST('/api/v1/groups', { body: { name: name.trim() } })).then(() => setName('')));
        }}
      >
        <Group align="flex-end">
          <TextInput label={t('groups.new')} value={name} onChange={(e) => setName(e.currentTarget.value)} />
          <Button type="submit" disabled={!name.trim()}>
            {t('common.add')}
          </Button>
        </Group>
      </form>
    </Stack>
  );
}

interface InviteProps {
  opened: boolean;
  onClose(): void;
  channels: Channel[];
  groups: ClientGroup[];
  onInvited(): void;
}

function InviteModal({ opened, onClose, channels, groups, onInvited }: InviteProps) {
  const { t } = useI18n();
  const { api } = useSession();
  const [email, setEmail] = useState('');
  const [global, setGlobal] = useState<GlobalRight[]>([]);
  const [groupIds, setGroupIds] = useState<string[]>([]);
  const [grants, setGrants] = useState<ChannelGrant[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [created, setCreated] = useState<{ url: string; email_sent: boolean } | null>(null);
  const emailValid = /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email.trim());

  const close = () => {
    setEmail('');
    setGlobal([]);
    setGroupIds([]);
    setGrants([]);
    setCreated(null);
    setError(null);
    onClose();
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const answer = await ok(
        api.POST('/api/v1/invites', {
          body: { email: email.trim(), global_rights: global, group_ids: groupIds, channel_grants: grants },
        }),
      );
      setCreated({ url: answer.url, email_sent: answer.email_sent });
      onInvited();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal opened={opened} onClose={close} title={t('employees.invite')} size="lg">
      {created ? (
        <Stack>
          <Alert color="green" role="status">
            {created.email_sent ? t('invites.emailed') : t('invites.notEmailed')}
          </Alert>
          <TextInput label={t('invites.link')} value={created.url} readOnly data-testid="invite-link" />
          <Group>
            <CopyButton value={created.url}>
              {({ copied, copy }) => <Button onClick={copy}>{copied ? t('common.copied') : t('common.copy')}</Button>}
            </CopyButton>
            <Button variant="default" onClick={close}>
              {t('common.close')}
            </Button>
          </Group>
        </Stack>
      ) : (
        <form onSubmit={submit} noValidate>
          <Stack>
            <TextInput
              label={t('field.email')}
              type="email"
              required
              value={email}
              onChange={(e) => setEmail(e.currentTarget.value)}
              error={email && !emailValid ? t('field.emailInvalid') : undefined}
            />
            <Checkbox.Group label={t('employees.global')} value={global} onChange={(v) => setGlobal(v as GlobalRight[])}>
              <Stack gap={4} mt={4}>
                {GLOBAL_RIGHTS.map((r) => (
                  <Checkbox key={r} value={r} label={t(`global.${r}` as MessageKey)} />
                ))}
              </Stack>
            </Checkbox.Group>
            {groups.length > 0 && (
              <MultiSelect
                label={t('groups.title')}
                data={groups.map((g) => ({ value: g.id, label: g.name }))}
                value={groupIds}
                onChange={setGroupIds}
              />
            )}
            <Table withTableBorder>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>{t('channels.title')}</Table.Th>
                  <Table.Th>{t('employees.rights')}</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {channels.map((c) => (
                  <Table.Tr key={c.id}>
                    <Table.Td>{c.name}</Table.Td>
                    <Table.Td>
                      <RightsPicker
                        label={c.name}
                        rights={(grants.find((g) => g.channel_id === c.id)?.rights ?? []) as ChannelRight[]}
                        onChange={(rights) => setGrants((cur) => withChannelRights(cur, c.id, rights))}
                      />
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
            <ErrorNote error={error} />
            <Group justify="flex-end">
              <Button variant="default" onClick={close}>
                {t('common.cancel')}
              </Button>
              <Button type="submit" loading={busy} disabled={!emailValid}>
                {t('invites.send')}
              </Button>
            </Group>
          </Stack>
        </form>
      )}
    </Modal>
  );
}
