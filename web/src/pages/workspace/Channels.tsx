// Connected channels: the list, and a form per provider to connect or change one. Credentials
// are write-only: the form never shows stored secrets, and leaving one empty keeps it.
import { Alert, Badge, Button, Code, Group, Modal, PasswordInput, Select, Stack, Table, Text, TextInput, Textarea } from '@mantine/core';
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { ok } from '../../api/client';
import type { Channel, Provider } from '../../api/types';
import { useApi } from '../../auth/session';
import { ChannelIcon } from '../../components/ChannelIcon';
import { ErrorNote } from '../../components/ErrorNote';
import { PageTitle } from '../../components/Page';
import { useI18n, type MessageKey } from '../../i18n';
import { PROVIDER_FORMS, fieldProblem, parseObject, randomSecret, type FieldSpec } from './providerForms';

const MESSAGING: Provider[] = ['api', 'widget', 'telegram', 'whatsapp', 'vk', 'ok', 'viber', 'max', 'email', 'sms'];

export function hookUrl(channelId: string): string {
  return `${window.location.origin}/hooks/api/${channelId}`;
}

export function Channels() {
  const { t } = useI18n();
  const api = useApi();
  const [channels, setChannels] = useState<Channel[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [editing, setEditing] = useState<Channel | 'new' | null>(null);

  const load = useCallback(() => {
    ok(api.GET('/api/v1/channels')).then((r) => setChannels(r.items), setError);
  }, [api]);
  useEffect(load, [load]);

  const remove = async (c: Channel) => {
    if (!window.confirm(t('channels.confirmDelete', { name: c.name }))) return;
    try {
      await ok(api.DELETE('/api/v1/channels/{channel_id}', { params: { path: { channel_id: c.id } } }));
      load();
    } catch (err) {
      setError(err);
    }
  };

  return (
    <Stack>
      <PageTitle actions={<Button onClick={() => setEditing('new')}>{t('channels.connect')}</Button>}>{t('channels.title')}</PageTitle>
      <ErrorNote error={error} />
      <Table withTableBorder striped>
        <Table.Thead>
          <Table.Tr>
            <Table.Th>{t('field.name')}</Table.Th>
            <Table.Th>{t('channels.provider')}</Table.Th>
            <Table.Th>{t('channels.webhook')}</Table.Th>
            <Table.Th />
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {channels.map((c) => (
            <Table.Tr key={c.id}>
              <Table.Td>
                <Group gap={6} wrap="nowrap">
                  <ChannelIcon provider={c.provider} />
                  {c.name}
                </Group>
              </Table.Td>
              <Table.Td>
                {t(`provider.${c.provider}` as MessageKey)}{' '}
                {!c.has_credentials && (
                  <Badge color="yellow" size="xs">
                    {t('channels.noCredentials')}
                  </Badge>
                )}
              </Table.Td>
              <Table.Td>{c.provider === 'api' ? <Code>{hookUrl(c.id)}</Code> : '—'}</Table.Td>
              <Table.Td>
                <Group gap={6} justify="flex-end" wrap="nowrap">
                  <Button size="compact-xs" variant="default" onClick={() => setEditing(c)} aria-label={t('channels.editNamed', { name: c.name })}>
                    {t('common.edit')}
                  </Button>
                  <Button size="compact-xs" variant="subtle" color="red" onClick={() => void remove(c)} aria-label={t('channels.deleteNamed', { name: c.name })}>
                    {t('common.delete')}
                  </Button>
                </Group>
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {editing && (
        <ChannelForm
          channel={editing === 'new' ? null : editing}
          onClose={() => setEditing(null)}
          onSaved={() => {
            setEditing(null);
            load();
          }}
        />
      )}
    </Stack>
  );
}

function ChannelForm({ channel, onClose, onSaved }: { channel: Channel | null; onClose(): void; onSaved(): void }) {
  const { t } = useI18n();
  const api = useApi();
  const editing = channel !== null;
  const [provider, setProvider] = useState<Provider>(channel?.provider ?? 'api');
  const [name, setName] = useState(channel?.name ?? '');
  const initialSettings = (channel?.settings ?? {}) as Record<string, unknown>;
  const [values, setValues] = useState<Record<string, string>>(() =>
    Object.fromEntries(Object.entries(initialSettings).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)])),
  );
  const [settingsJson, setSettingsJson] = useState(() => (editing ? JSON.stringify(initialSettings, null, 2) : '{}'));
  const [credentialsJson, setCredentialsJson] = useState('');
  const [touched, setTouched] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const form = PROVIDER_FORMS[provider];

  const problems: Record<string, string | null> = {};
  problems.name = name.trim() ? null : 'form.required';
  if (form) {
    for (const f of [...form.settings, ...form.credentials]) problems[f.key] = fieldProblem(f, values[f.key] ?? '', editing);
  } else {
    const s = parseObject(settingsJson);
    const c = parseObject(credentialsJson);
    problems.settings = 'problem' in s ? s.problem : null;
    problems.credentials = 'problem' in c ? c.problem : null;
  }
  const valid = Object.values(problems).every((p) => p === null);
  const problem = (key: string) => (touched && problems[key] ? t(problems[key] as MessageKey) : undefined);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setTouched(true);
    if (!valid) return;
    let settings: Record<string, unknown>;
    let credentials: Record<string, unknown> | undefined;
    if (form) {
      settings = { ...initialSettings };
      for (const f of form.settings) {
        const v = (values[f.key] ?? '').trim();
        if (v) settings[f.key] = f.kind === 'number' ? Number(v) : v;
        else delete settings[f.key];
      }
      const secrets = form.credentials.filter((f) => (values[f.key] ?? '').trim() !== '');
      credentials = secrets.length > 0 ? Object.fromEntries(secrets.map((f) => [f.key, values[f.key]!.trim()])) : undefined;
      // Replacing credentials replaces all of them: a partial edit would drop the others.
      if (editing && credentials && secrets.length < form.credentials.filter((f) => f.required).length) {
        setError(t('channels.allSecrets'));
        return;
      }
    } else {
      settings = (parseObject(settingsJson) as { value: Record<string, unknown> }).value;
      const c = (parseObject(credentialsJson) as { value: Record<string, unknown> }).value;
      credentials = Object.keys(c).length > 0 ? c : undefined;
    }
    setBusy(true);
    setError(null);
    try {
      if (channel) {
        await ok(
          api.PATCH('/api/v1/channels/{channel_id}', {
            params: { path: { channel_id: channel.id } },
            body: { name: name.trim(), settings: settings as never, ...(credentials ? { credentials: credentials as never } : {}) },
          }),
        );
      } else {
        await ok(api.POST('/api/v1/channels', { body: { kind: 'messaging', provider, name: name.trim(), settings: settings as never, credentials: credentials as never } }));
      }
      onSaved();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const field = (f: FieldSpec) => {
    const common = {
      label: t(f.label as MessageKey),
      required: f.required && !(editing && f.secret),
      value: values[f.key] ?? '',
      error: problem(f.key),
      onChange: (e: { currentTarget: { value: string } }) => setValues((v) => ({ ...v, [f.key]: e.currentTarget.value })),
    };
    if (!f.secret) {
      return <TextInput key={f.key} {...common} type={f.kind === 'email' ? 'email' : 'text'} inputMode={f.kind === 'number' ? 'numeric' : undefined} />;
    }
    return (
      <Group key={f.key} align="flex-end" wrap="nowrap">
        <PasswordInput {...common} className="grow" description={editing ? t('channels.secretKept') : undefined} autoComplete="off" />
        {f.generate && (
          <Button variant="default" onClick={() => setValues((v) => ({ ...v, [f.key]: randomSecret() }))}>
            {t('channels.generate')}
          </Button>
        )}
      </Group>
    );
  };

  return (
    <Modal opened onClose={onClose} title={editing ? t('channels.edit') : t('channels.connect')} size="lg">
      <form onSubmit={submit} noValidate>
        <Stack>
          <Select
            label={t('channels.provider')}
            data={MESSAGING.map((p) => ({ value: p, label: t(`provider.${p}` as MessageKey) }))}
            value={provider}
            onChange={(v) => v && setProvider(v as Provider)}
            disabled={editing}
            allowDeselect={false}
          />
          <TextInput label={t('field.name')} required value={name} onChange={(e) => setName(e.currentTarget.value)} error={problem('name')} />
          {form ? (
            <>
              {form.settings.map(field)}
              {form.credentials.map(field)}
              {provider === 'api' && (
                <Alert color="blue" variant="light">
                  <Text size="sm">{t('channels.apiHelp')}</Text>
                  {channel && <Code block>{`POST ${hookUrl(channel.id)}\nAuthorization: Bearer <inbound_token>`}</Code>}
                </Alert>
              )}
            </>
          ) : (
            <>
              <Alert color="gray" variant="light">
                {t('channels.genericHelp')}
              </Alert>
              <Textarea label={t('channels.settingsJson')} autosize minRows={3} value={settingsJson} onChange={(e) => setSettingsJson(e.currentTarget.value)} error={problem('settings')} className="mono" />
              <Textarea
                label={t('channels.credentialsJson')}
                description={editing ? t('channels.secretKept') : undefined}
                autosize
                minRows={3}
                value={credentialsJson}
                onChange={(e) => setCredentialsJson(e.currentTarget.value)}
                error={problem('credentials')}
                className="mono"
              />
            </>
          )}
          <ErrorNote error={error} />
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              {t('common.cancel')}
            </Button>
            <Button type="submit" loading={busy}>
              {t('common.save')}
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
