// Who the customer is: name, every channel they wrote from, their history (their other
// conversations on every channel, as far as the viewer may see them; the server filters), the
// custom fields kept on them (editable by whoever may reply in one of the contact's channels;
// the server checks), and a call back to their phone when the client has telephony.
import { ActionIcon, Anchor, Button, Group, Loader, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { IconPencil, IconPhoneCall, IconTrash } from '@tabler/icons-react';
import { useEffect, useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import { ok } from '../../api/client';
import type { Channel, Contact, ContactIdentity, Conversation, ConversationSummary } from '../../api/types';
import { useApi, useSession } from '../../auth/session';
import { ChannelIcon } from '../../components/ChannelIcon';
import { ErrorNote } from '../../components/ErrorNote';
import { useI18n, type MessageKey } from '../../i18n';
import { dateTime } from '../../lib/time';
import { fieldsOf, fieldsProblem, rowsOf, type Row } from './contactFields';

export function ContactCard({ conversationId, channels }: { conversationId: string; channels: Channel[] }) {
  const { t, lang } = useI18n();
  const api = useApi();
  const [contact, setContact] = useState<Contact | null>(null);
  const [conversation, setConversation] = useState<Conversation | null>(null);
  const [identities, setIdentities] = useState<ContactIdentity[]>([]);
  const [history, setHistory] = useState<ConversationSummary[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [editing, setEditing] = useState(false);

  useEffect(() => {
    let live = true;
    (async () => {
      const d = await ok(api.GET('/api/v1/conversations/{id}', { params: { path: { id: conversationId } } }));
      const path = { params: { path: { id: d.contact.id } } };
      const [ids, past] = await Promise.all([
        ok(api.GET('/api/v1/contacts/{id}/identities', path)),
        ok(api.GET('/api/v1/contacts/{id}/conversations', path)),
      ]);
      if (!live) return;
      setContact(d.contact);
      setConversation(d.conversation);
      setIdentities(ids.items);
      setHistory(past.items);
    })().catch((err) => live && setError(err));
    return () => {
      live = false;
    };
  }, [api, conversationId]);

  if (!contact) return error ? <ErrorNote error={error} /> : <Loader size="sm" aria-label={t('common.loading')} />;
  if (editing) {
    return (
      <ContactEditor
        contact={contact}
        onDone={(updated) => {
          if (updated) setContact(updated);
          setEditing(false);
        }}
      />
    );
  }
  const fields = Object.entries((contact.fields ?? {}) as Record<string, unknown>);
  const phoneField = (contact.fields as Record<string, unknown> | null)?.phone;
  const phone = typeof phoneField === 'string' ? phoneField : null;
  const channelName = (id: string) => channels.find((c) => c.id === id);

  return (
    <Stack gap="sm" p="md" data-testid="contact-card">
      <Group justify="space-between" wrap="nowrap">
        <Title order={3} size="h4">
          {contact.name}
        </Title>
        <ActionIcon variant="subtle" aria-label={t('contact.edit')} onClick={() => setEditing(true)}>
          <IconPencil size={16} aria-hidden="true" />
        </ActionIcon>
      </Group>
      <Text size="xs" c="dimmed">
        {t('contact.since', { when: dateTime(contact.created_at, lang) })}
      </Text>
      {conversation && (
        <Text size="xs" c="dimmed">
          {t('contact.request', { n: conversation.request_no, when: dateTime(conversation.created_at, lang) })}
        </Text>
      )}
      <Title order={4} size="h6">
        {t('contact.channels')}
      </Title>
      <ul className="plain-list">
        {identities.map((i) => {
          const channel = channelName(i.channel_id);
          return (
            <li key={`${i.channel_id}:${i.external_id}`}>
              <ChannelIcon provider={channel?.provider} /> {channel?.name ?? t('contact.hiddenChannel')}{' '}
              <Text span size="xs" c="dimmed">
                {i.external_id}
              </Text>
            </li>
          );
        })}
      </ul>
      {conversation && <CallBack key={phone ?? ''} conversation={conversation} channels={channels} phone={phone} />}
      <Title order={4} size="h6">
        {t('contact.history')}
      </Title>
      <ul className="plain-list" data-testid="contact-history">
        {history.map((s) => {
          const c = s.conversation;
          const channel = channelName(c.channel_id);
          const current = c.id === conversationId;
          return (
            <li key={c.id}>
              <Group gap={6} wrap="nowrap">
                <ChannelIcon provider={channel?.provider} />
                {current ? (
                  <Text span size="sm" fw={600}>
                    {channel?.name ?? t('contact.hiddenChannel')} · {t('contact.thisConversation')}
                  </Text>
                ) : (
                  <Anchor size="sm" component={Link} to={`/inbox/${c.id}`}>
                    {channel?.name ?? t('contact.hiddenChannel')} · #{c.request_no}
                  </Anchor>
                )}
              </Group>
              <Text size="xs" c="dimmed" className="truncate">
                {t(`status.${c.status}` as MessageKey)} · {dateTime(s.last_message_at, lang)}
                {s.last_message_text ? ` — ${s.last_message_text}` : ''}
              </Text>
            </li>
          );
        })}
      </ul>
      <Title order={4} size="h6">
        {t('contact.fields')}
      </Title>
      {fields.length === 0 ? (
        <Text size="sm" c="dimmed">
          {t('contact.noFields')}
        </Text>
      ) : (
        <Table>
          <Table.Tbody>
            {fields.map(([k, v]) => (
              <Table.Tr key={k}>
                <Table.Th>{k}</Table.Th>
                <Table.Td>{typeof v === 'string' ? v : JSON.stringify(v)}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
    </Stack>
  );
}

/** Name and custom fields, edited as key–value rows. */
function ContactEditor({ contact, onDone }: { contact: Contact; onDone(updated: Contact | null): void }) {
  const { t } = useI18n();
  const api = useApi();
  const [name, setName] = useState(contact.name);
  const before = (contact.fields ?? {}) as Record<string, unknown>;
  const [rows, setRows] = useState<Row[]>(() => rowsOf(before));
  const [error, setError] = useState<unknown>(null);
  const problem = fieldsProblem(rows);

  const save = async (e: FormEvent) => {
    e.preventDefault();
    if (problem) return;
    const fields = fieldsOf(rows, before);
    try {
      const updated = await ok(
        api.PATCH('/api/v1/contacts/{id}', { params: { path: { id: contact.id } }, body: { name: name.trim(), fields: fields as never } }),
      );
      onDone(updated);
    } catch (err) {
      setError(err);
    }
  };

  const setRow = (i: number, at: 0 | 1, value: string) =>
    setRows((cur) => cur.map((row, j) => (j === i ? ((at === 0 ? [value, row[1]] : [row[0], value]) as Row) : row)));

  return (
    <form onSubmit={save}>
      <Stack gap="xs" p="md">
        <TextInput label={t('field.name')} required value={name} onChange={(e) => setName(e.currentTarget.value)} />
        <Text size="sm" fw={500}>
          {t('contact.fields')}
        </Text>
        {rows.map(([k, v], i) => (
          <Group key={i} gap={4} wrap="nowrap" align="flex-start">
            <TextInput aria-label={t('contact.fieldName')} placeholder="phone" value={k} onChange={(e) => setRow(i, 0, e.currentTarget.value)} size="xs" />
            <TextInput aria-label={t('contact.fieldValue')} value={v} onChange={(e) => setRow(i, 1, e.currentTarget.value)} size="xs" className="grow" />
            <ActionIcon variant="subtle" color="red" aria-label={t('common.delete')} onClick={() => setRows((cur) => cur.filter((_, j) => j !== i))}>
              <IconTrash size={14} aria-hidden="true" />
            </ActionIcon>
          </Group>
        ))}
        {problem && (
          <Text size="xs" c="red" role="alert">
            {t(problem)}
          </Text>
        )}
        <Button size="xs" variant="default" onClick={() => setRows((cur) => [...cur, ['', '']])}>
          {t('contact.addField')}
        </Button>
        <ErrorNote error={error} />
        <Group gap="xs">
          <Button size="xs" type="submit" disabled={!name.trim() || problem !== null}>
            {t('common.save')}
          </Button>
          <Button size="xs" variant="default" onClick={() => onDone(null)}>
            {t('common.cancel')}
          </Button>
        </Group>
      </Stack>
    </form>
  );
}


/**
 * "Call back": the client's telephony rings the operator, then the customer's number (the
 * contact's `phone` field unless another is typed). Shown when telephony is connected and the
 * viewer may reply here; the attempt and its outcome arrive in the conversation as notes.
 */
function CallBack({ conversation, channels, phone }: { conversation: Conversation; channels: Channel[]; phone: string | null }) {
  const { t } = useI18n();
  const api = useApi();
  const { me } = useSession();
  const [available, setAvailable] = useState(false);
  const [open, setOpen] = useState(false);
  const [number, setNumber] = useState(phone ?? '');
  const [placed, setPlaced] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const channel = channels.find((c) => c.id === conversation.channel_id);
  const canReply = me?.role === 'client_owner' || (channel?.my_rights ?? []).includes('reply');

  useEffect(() => {
    let live = true;
    ok(api.GET('/api/v1/conversations/{id}/callback', { params: { path: { id: conversation.id } } })).then(
      (o) => live && setAvailable(o.available),
      () => live && setAvailable(false),
    );
    return () => {
      live = false;
    };
  }, [api, conversation.id]);

  if (!available || !canReply) return null;
  if (!open) {
    return (
      <Button size="xs" variant="light" leftSection={<IconPhoneCall size={14} aria-hidden="true" />} onClick={() => setOpen(true)}>
        {t('callback.button')}
      </Button>
    );
  }

  const call = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setPlaced(null);
    setBusy(true);
    try {
      const typed = number.trim();
      // The contact's own number goes as "no number": the server reads the card's field.
      const body = typed === phone ? {} : { number: typed };
      const placedCall = await ok(api.POST('/api/v1/conversations/{id}/callback', { params: { path: { id: conversation.id } }, body }));
      setPlaced(placedCall.number);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form onSubmit={call} data-testid="callback-form">
      <Stack gap={4}>
        <TextInput
          size="xs"
          label={t('callback.number')}
          description={phone ? undefined : t('callback.noPhone')}
          value={number}
          onChange={(e) => setNumber(e.currentTarget.value)}
          inputMode="tel"
          autoComplete="off"
        />
        <ErrorNote error={error} />
        {placed && (
          <Text size="xs" c="green" role="status">
            {t('callback.placed', { number: placed })}
          </Text>
        )}
        <Group gap="xs">
          <Button size="xs" type="submit" loading={busy} disabled={!number.trim()} leftSection={<IconPhoneCall size={14} aria-hidden="true" />}>
            {t('callback.call')}
          </Button>
          <Button size="xs" variant="default" onClick={() => setOpen(false)}>
            {t('common.close')}
          </Button>
        </Group>
      </Stack>
    </form>
  );
}
