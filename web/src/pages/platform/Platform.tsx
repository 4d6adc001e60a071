// The platform panel for its owner and moderators: clients (search, details, block and
// unblock; creating clients is the owner's) and, for the owner, moderators.
import { Alert, Badge, Button, CopyButton, Drawer, Group, Modal, Pagination, Select, Stack, Table, Text, TextInput, Textarea } from '@mantine/core';
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { Navigate, Route, Routes } from 'react-router';
import { ok } from '../../api/client';
import type { Client, ClientDetails, User } from '../../api/types';
import { useSession } from '../../auth/session';
import { ChannelIcon } from '../../components/ChannelIcon';
import { ErrorNote } from '../../components/ErrorNote';
import { PageTitle, SectionLayout } from '../../components/Page';
import { useI18n, type MessageKey } from '../../i18n';
import { dateTime } from '../../lib/time';

const PAGE = 25;

export default function Platform() {
  const { t } = useI18n();
  const { me } = useSession();
  const owner = me?.role === 'platform_owner';
  return (
    <SectionLayout
      title={t('nav.platform')}
      pages={[{ to: '/platform/clients', label: t('platform.clients') }, ...(owner ? [{ to: '/platform/moderators', label: t('platform.moderators') }] : [])]}
    >
      <Routes>
        <Route index element={<Navigate to="/platform/clients" replace />} />
        <Route path="clients" element={<Clients owner={owner} />} />
        {owner && <Route path="moderators" element={<Moderators />} />}
        <Route path="*" element={<Navigate to="/platform/clients" replace />} />
      </Routes>
    </SectionLayout>
  );
}

function Clients({ owner }: { owner: boolean }) {
  const { t, lang } = useI18n();
  const { api } = useSession();
  const [q, setQ] = useState('');
  const [status, setStatus] = useState<string | null>(null);
  const [page, setPage] = useState(1);
  const [items, setItems] = useState<Client[]>([]);
  const [total, setTotal] = useState(0);
  const [open, setOpen] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(async () => {
    try {
      const r = await ok(
        api.GET('/api/v1/platform/clients', {
          params: { query: { q: q.trim() || undefined, status: (status ?? undefined) as Client['status'] | undefined, limit: PAGE, offset: (page - 1) * PAGE } },
        }),
      );
      setItems(r.items);
      setTotal(r.total);
      setError(null);
    } catch (err) {
      setError(err);
    }
  }, [api, q, status, page]);
  useEffect(() => {
    const handle = setTimeout(() => void load(), 250);
    return () => clearTimeout(handle);
  }, [load]);

  return (
    <Stack>
      <PageTitle actions={owner && <Button onClick={() => setCreating(true)}>{t('platform.newClient')}</Button>}>{t('platform.clients')}</PageTitle>
      <Group>
        <TextInput label={t('common.search')} value={q} onChange={(e) => { setQ(e.currentTarget.value); setPage(1); }} type="search" />
        <Select
          label={t('filter.status')}
          placeholder={t('filter.any')}
          clearable
          data={[{ value: 'active', label: t('client.active') }, { value: 'blocked', label: t('client.blocked') }]}
          value={status}
          onChange={(v) => { setStatus(v); setPage(1); }}
        />
      </Group>
      <ErrorNote error={error} />
      <Table withTableBorder striped highlightOnHover>
        <Table.Thead>
          <Table.Tr>
            <Table.Th>{t('field.name')}</Table.Th>
            <Table.Th>{t('filter.status')}</Table.Th>
            <Table.Th>{t('platform.plan')}</Table.Th>
            <Table.Th>{t('platform.created')}</Table.Th>
            <Table.Th />
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {items.map((c) => (
            <Table.Tr key={c.id}>
              <Table.Td>{c.name}</Table.Td>
              <Table.Td>
                <Badge color={c.status === 'active' ? 'green' : 'red'} variant="light">
                  {t(`client.${c.status}` as MessageKey)}
                </Badge>
              </Table.Td>
              <Table.Td>{c.plan ?? '—'}</Table.Td>
              <Table.Td>{dateTime(c.created_at, lang)}</Table.Td>
              <Table.Td>
                <Button size="compact-xs" variant="default" onClick={() => setOpen(c.id)} aria-label={t('platform.detailsOf', { name: c.name })}>
                  {t('platform.details')}
                </Button>
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {total > PAGE && <Pagination total={Math.ceil(total / PAGE)} value={page} onChange={setPage} />}
      <Drawer opened={open !== null} onClose={() => setOpen(null)} position="right" size="lg" title={t('platform.details')}>
        {open && <ClientCard id={open} onChanged={load} />}
      </Drawer>
      {creating && <NewClient onClose={() => setCreating(false)} onCreated={load} />}
    </Stack>
  );
}

function ClientCard({ id, onChanged }: { id: string; onChanged(): void }) {
  const { t, lang } = useI18n();
  const { api } = useSession();
  const [details, setDetails] = useState<ClientDetails | null>(null);
  const [reason, setReason] = useState('');
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(() => {
    ok(api.GET('/api/v1/platform/clients/{id}', { params: { path: { id } } })).then(setDetails, setError);
  }, [api, id]);
  useEffect(load, [load]);

  const act = async (block: boolean) => {
    setError(null);
    try {
      if (block) await ok(api.POST('/api/v1/platform/clients/{id}/block', { params: { path: { id } }, body: { reason: reason.trim() } }));
      else await ok(api.POST('/api/v1/platform/clients/{id}/unblock', { params: { path: { id } } }));
      setReason('');
      load();
      onChanged();
    } catch (err) {
      setError(err);
    }
  };

  if (!details) return <ErrorNote error={error} />;
  const c = details.client;
  return (
    <Stack>
      <Text fw={600} size="lg">
        {c.name}
      </Text>
      <Text size="sm">
        {t(`client.${c.status}` as MessageKey)}
        {c.blocked_reason ? ` — ${c.blocked_reason}` : ''}
      </Text>
      <Text size="sm" c="dimmed">
        {t('platform.counts', { users: details.counts.users, active: details.counts.active_users, channels: details.counts.channels, groups: details.counts.groups })}
      </Text>
      <Text fw={600}>{t('platform.users')}</Text>
      <Table>
        <Table.Tbody>
          {details.users.map((u) => (
            <Table.Tr key={u.id}>
              <Table.Td>{u.display_name}</Table.Td>
              <Table.Td>{u.email}</Table.Td>
              <Table.Td>{t(`role.${u.role}` as MessageKey)}</Table.Td>
              <Table.Td>{u.disabled ? t('platform.disabled') : ''}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <Text fw={600}>{t('channels.title')}</Text>
      <ul className="plain-list">
        {details.channels.map((ch) => (
          <li key={ch.id}>
            <ChannelIcon provider={ch.provider} /> {ch.name} · {t(`provider.${ch.provider}` as MessageKey)} · {dateTime(ch.created_at, lang)}
          </li>
        ))}
      </ul>
      <ErrorNote error={error} />
      {c.status === 'active' ? (
        <Stack gap="xs">
          <Textarea label={t('platform.blockReason')} value={reason} onChange={(e) => setReason(e.currentTarget.value)} required />
          <Button color="red" disabled={!reason.trim()} onClick={() => void act(true)}>
            {t('platform.block')}
          </Button>
        </Stack>
      ) : (
        <Button color="green" onClick={() => void act(false)}>
          {t('platform.unblock')}
        </Button>
      )}
    </Stack>
  );
}

function SetupLink({ url, emailed, onClose }: { url: string; emailed: boolean; onClose(): void }) {
  const { t } = useI18n();
  return (
    <Stack>
      <Alert color="green">{emailed ? t('invites.emailed') : t('invites.notEmailed')}</Alert>
      <TextInput label={t('platform.setupLink')} value={url} readOnly />
      <Group>
        <CopyButton value={url}>{({ copied, copy }) => <Button onClick={copy}>{copied ? t('common.copied') : t('common.copy')}</Button>}</CopyButton>
        <Button variant="default" onClick={onClose}>
          {t('common.close')}
        </Button>
      </Group>
    </Stack>
  );
}

function NewClient({ onClose, onCreated }: { onClose(): void; onCreated(): void }) {
  const { t, lang } = useI18n();
  const { api } = useSession();
  const [name, setName] = useState('');
  const [plan, setPlan] = useState('');
  const [ownerEmail, setOwnerEmail] = useState('');
  const [ownerName, setOwnerName] = useState('');
  const [created, setCreated] = useState<{ url: string; emailed: boolean } | null>(null);
  const [error, setError] = useState<unknown>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    try {
      const r = await ok(
        api.POST('/api/v1/platform/clients', {
          body: { name: name.trim(), plan: plan.trim() || undefined, owner_email: ownerEmail.trim(), owner_name: ownerName.trim(), locale: lang },
        }),
      );
      setCreated({ url: r.owner_setup_url, emailed: r.email_sent });
      onCreated();
    } catch (err) {
      setError(err);
    }
  };

  return (
    <Modal opened onClose={onClose} title={t('platform.newClient')}>
      {created ? (
        <SetupLink url={created.url} emailed={created.emailed} onClose={onClose} />
      ) : (
        <form onSubmit={submit}>
          <Stack>
            <TextInput label={t('field.name')} required value={name} onChange={(e) => setName(e.currentTarget.value)} />
            <TextInput label={t('platform.plan')} value={plan} onChange={(e) => setPlan(e.currentTarget.value)} />
            <TextInput label={t('platform.ownerEmail')} type="email" required value={ownerEmail} onChange={(e) => setOwnerEmail(e.currentTarget.value)} />
            <TextInput label={t('platform.ownerName')} required value={ownerName} onChange={(e) => setOwnerName(e.currentTarget.value)} />
            <ErrorNote error={error} />
            <Button type="submit" disabled={!name.trim() || !ownerEmail.trim() || !ownerName.trim()}>
              {t('common.create')}
            </Button>
          </Stack>
        </form>
      )}
    </Modal>
  );
}

function Moderators() {
  const { t } = useI18n();
  const { api } = useSession();
  const [items, setItems] = useState<User[]>([]);
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [created, setCreated] = useState<{ url: string; emailed: boolean } | null>(null);
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(() => {
    ok(api.GET('/api/v1/platform/moderators')).then((r) => setItems(r.items), setError);
  }, [api]);
  useEffect(load, [load]);

  const add = async (e: FormEvent) => {
    e.preventDefault();
    try {
      const r = await ok(api.POST('/api/v1/platform/moderators', { body: { email: email.trim(), display_name: name.trim() } }));
      setCreated({ url: r.setup_url, emailed: r.email_sent });
      setEmail('');
      setName('');
      load();
    } catch (err) {
      setError(err);
    }
  };

  const remove = (id: string) => ok(api.DELETE('/api/v1/platform/moderators/{id}', { params: { path: { id } } })).then(load, setError);

  return (
    <Stack>
      <PageTitle>{t('platform.moderators')}</PageTitle>
      <ErrorNote error={error} />
      {created && <SetupLink url={created.url} emailed={created.emailed} onClose={() => setCreated(null)} />}
      <Table withTableBorder>
        <Table.Tbody>
          {items.map((u) => (
            <Table.Tr key={u.id}>
              <Table.Td>{u.display_name}</Table.Td>
              <Table.Td>{u.email}</Table.Td>
              <Table.Td>
                <Button size="compact-xs" variant="subtle" color="red" onClick={() => void remove(u.id)} aria-label={t('platform.removeNamed', { name: u.display_name })}>
                  {t('common.delete')}
                </Button>
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <form onSubmit={add}>
        <Group align="flex-end">
          <TextInput label={t('field.email')} type="email" required value={email} onChange={(e) => setEmail(e.currentTarget.value)} />
          <TextInput label={t('field.name')} required value={name} onChange={(e) => setName(e.currentTarget.value)} />
          <Button type="submit" disabled={!email.trim() || !name.trim()}>
            {t('common.add')}
          </Button>
        </Group>
      </form>
    </Stack>
  );
}
