// Connected channels: the list with each connection's health as the provider sees it (checked
// on demand, with the reason in the console's language and the provider's own words), webhook
// registration, and a form per provider to connect or change one, whose credentials can be
// tested before saving. Credentials are write-only: the form never shows stored secrets, and
// leaving one empty keeps it.
import { Alert, Badge, Button, Checkbox, Code, Group, Modal, PasswordInput, Select, Stack, Table, Text, TextInput, Textarea, Tooltip } from '@mantine/core';
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { ok } from '../../api/client';
import type { Channel, Provider } from '../../api/types';
import { useApi } from '../../auth/session';
import { ChannelIcon } from '../../components/ChannelIcon';
import { ErrorNote } from '../../components/ErrorNote';
import { PageTitle } from '../../components/Page';
import { useI18n, type MessageKey } from '../../i18n';
import { PROVIDER_FORMS, fieldProblem, parseObject, randomSecret, shownValue, storedValue, type FieldSpec } from './providerForms';

/** A provider's view of a channel's connection, as the server reports it. */
export interface Health {
  status: string;
  /** What the status means, in the language the console asked the server for. */
  message?: string;
  detail?: string | null;
}

const HEALTH_COLORS: Record<string, string> = {
  ok: 'green',
  invalid_token: 'red',
  webhook_not_set: 'yellow',
  rate_limited: 'orange',
  unreachable: 'red',
  provider_error: 'red',
  not_configured: 'gray',
};

/** Channels whose connection the provider can report on. */
const CHECKED: Provider[] = ['telegram', 'whatsapp', 'vk', 'viber', 'max', 'email'];
/** Channels whose webhook omnihub registers with the provider. */
const WEBHOOKS: Provider[] = ['telegram', 'vk', 'viber', 'max'];

export function HealthBadge({ health }: { health: Health }) {
  const { t } = useI18n();
  const known = health.status in HEALTH_COLORS;
  const label = known ? t(`health.${health.status}` as MessageKey) : health.status;
  // A status this console does not know yet still gets the server's translated words.
  const help = known ? t(`health.${health.status}.help` as MessageKey) : (health.message ?? '');
  const said = health.detail ? t('channels.providerSaid', { detail: health.detail }) : '';
  return (
    <Tooltip label={[help, said].filter(Boolean).join(' ')} multiline w={320} disabled={!help && !said}>
      <Badge color={HEALTH_COLORS[health.status] ?? 'gray'} variant="light" tt="none" style={{ overflow: 'visible' }} data-health={health.status}>
        {label}
      </Badge>
    </Tooltip>
  );
}

/** The health with its reason spelled out: the localized meaning, then the provider's words. */
function HealthNote({ health }: { health: Health }) {
  const { t } = useI18n();
  const known = health.status in HEALTH_COLORS;
  return (
    <Alert color={HEALTH_COLORS[health.status] ?? 'gray'} variant="light" data-testid="health-note">
      <Group gap="xs">
        <HealthBadge health={health} />
        <Text size="sm">{known ? t(`health.${health.status}.help` as MessageKey) : health.message}</Text>
      </Group>
      {health.detail && (
        <Text size="xs" c="dimmed" mt={4}>
          {t('channels.providerSaid', { detail: health.detail })}
        </Text>
      )}
    </Alert>
  );
}

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
  const [health, setHealth] = useState<Record<string, Health | 'checking'>>({});
  const [notice, setNotice] = useState<string | null>(null);

  const check = useCallback(
    async (c: Channel) => {
      setHealth((h) => ({ ...h, [c.id]: 'checking' }));
      try {
        const r = await ok(api.GET('/api/v1/channels/{channel_id}/health', { params: { path: { channel_id: c.id } } }));
        setHealth((h) => ({ ...h, [c.id]: r }));
      } catch (err) {
        setHealth((h) => ({ ...h, [c.id]: { status: 'unreachable' } }));
        setError(err);
      }
    },
    [api],
  );

  const load = useCallback(() => {
    ok(api.GET('/api/v1/channels')).then((r) => {
      setChannels(r.items);
      for (const c of r.items) if (CHECKED.includes(c.provider)) void check(c);
    }, setError);
  }, [api, check]);
  useEffect(load, [load]);

  const registerWebhook = async (c: Channel) => {
    setError(null);
    setNotice(null);
    try {
      const r = await ok(api.POST('/api/v1/channels/{channel_id}/webhook', { params: { path: { channel_id: c.id } } }));
      setNotice(t('channels.webhookRegistered', { url: r.url }));
      void check(c);
    } catch (err) {
      setError(err);
    }
  };

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
      {notice && (
        <Alert color="green" variant="light" withCloseButton onClose={() => setNotice(null)}>
          {notice}
        </Alert>
      )}
      <Table withTableBorder striped>
        <Table.Thead>
          <Table.Tr>
            <Table.Th>{t('field.name')}</Table.Th>
            <Table.Th>{t('channels.provider')}</Table.Th>
            <Table.Th>{t('channels.health')}</Table.Th>
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
              <Table.Td data-testid={`health-${c.id}`} style={{ whiteSpace: 'nowrap' }}>
                {(() => {
                  const h = health[c.id];
                  if (h === undefined) return '—';
                  if (h === 'checking') return <Text size="xs" c="dimmed">…</Text>;
                  return <HealthBadge health={h} />;
                })()}
              </Table.Td>
              <Table.Td>{c.provider === 'api' ? <Code>{hookUrl(c.id)}</Code> : '—'}</Table.Td>
              <Table.Td>
                <Group gap={6} justify="flex-end" wrap="nowrap">
                  {CHECKED.includes(c.provider) && (
                    <Button size="compact-xs" variant="default" onClick={() => void check(c)} aria-label={t('channels.checkNamed', { name: c.name })}>
                      {t('channels.check')}
                    </Button>
                  )}
                  {WEBHOOKS.includes(c.provider) && (
                    <Button size="compact-xs" variant="default" onClick={() => void registerWebhook(c)} aria-label={t('channels.registerWebhookNamed', { name: c.name })}>
                      {t('channels.registerWebhook')}
                    </Button>
                  )}
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
  const [values, setValues] = useState<Record<string, string>>(() => {
    const specs = PROVIDER_FORMS[channel?.provider ?? 'api']?.settings ?? [];
    return Object.fromEntries(
      Object.entries(initialSettings).map(([k, v]) => {
        const spec = specs.find((f) => f.key === k);
        return [k, spec ? shownValue(spec, v) : typeof v === 'string' ? v : JSON.stringify(v)];
      }),
    );
  });
  const [tested, setTested] = useState<Health | null>(null);
  const [testing, setTesting] = useState(false);
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

  /** The settings and credentials as they would be saved, or null when some are incomplete. */
  const collect = (): { settings: Record<string, unknown>; credentials?: Record<string, unknown> } | null => {
    let settings: Record<string, unknown>;
    let credentials: Record<string, unknown> | undefined;
    if (form) {
      settings = { ...initialSettings };
      for (const f of form.settings) {
        const v = storedValue(f, values[f.key] ?? '');
        if (v !== undefined) settings[f.key] = v;
        else delete settings[f.key];
      }
      const secrets = form.credentials.filter((f) => (values[f.key] ?? '').trim() !== '');
      credentials = secrets.length > 0 ? Object.fromEntries(secrets.map((f) => [f.key, storedValue(f, values[f.key]!)])) : undefined;
      // Replacing credentials replaces all of them: a partial edit would drop the others.
      if (editing && credentials && secrets.length < form.credentials.filter((f) => f.required).length) {
        setError(t('channels.allSecrets'));
        return null;
      }
    } else {
      settings = (parseObject(settingsJson) as { value: Record<string, unknown> }).value;
      const c = (parseObject(credentialsJson) as { value: Record<string, unknown> }).value;
      credentials = Object.keys(c).length > 0 ? c : undefined;
    }
    return { settings, credentials };
  };

  const testConnection = async () => {
    setTouched(true);
    setTested(null);
    if (!valid) return;
    const collected = collect();
    if (!collected) return;
    setTesting(true);
    setError(null);
    try {
      const r = await ok(
        api.POST('/api/v1/connection-tests', {
          body: {
            provider,
            settings: collected.settings as never,
            ...(collected.credentials ? { credentials: collected.credentials as never } : {}),
            ...(channel ? { channel_id: channel.id } : {}),
          },
        }),
      );
      setTested(r);
    } catch (err) {
      setError(err);
    } finally {
      setTesting(false);
    }
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setTouched(true);
    if (!valid) return;
    const collected = collect();
    if (!collected) return;
    const { settings, credentials } = collected;
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
    const description = f.hint ? t(f.hint as MessageKey) : undefined;
    if (f.kind === 'toggle') {
      return (
        <Checkbox
          key={f.key}
          label={common.label}
          description={description}
          checked={values[f.key] === 'on'}
          onChange={(e) => {
            const on = e.currentTarget.checked;
            setValues((v) => ({ ...v, [f.key]: on ? 'on' : '' }));
          }}
        />
      );
    }
    if (f.kind === 'choice') {
      return (
        <Select
          key={f.key}
          label={common.label}
          data={(f.choices ?? []).map((c) => ({ value: c, label: t(`choice.${c}` as MessageKey) }))}
          value={values[f.key] || null}
          placeholder={f.choices?.[0] ? t(`choice.${f.choices[0]}` as MessageKey) : undefined}
          onChange={(v) => setValues((old) => ({ ...old, [f.key]: v ?? '' }))}
          clearable
          error={common.error}
        />
      );
    }
    if (!f.secret) {
      return (
        <TextInput
          key={f.key}
          {...common}
          description={description}
          type={f.kind === 'email' ? 'email' : 'text'}
          inputMode={f.kind === 'number' || f.kind === 'port' ? 'numeric' : undefined}
        />
      );
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
          {tested && <HealthNote health={tested} />}
          <ErrorNote error={error} />
          <Group justify="flex-end">
            {CHECKED.includes(provider) && (
              <Button variant="light" onClick={() => void testConnection()} loading={testing} mr="auto">
                {t('channels.testConnection')}
              </Button>
            )}
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
