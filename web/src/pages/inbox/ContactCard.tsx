// Who the customer is: name, every channel they wrote from, and the custom fields kept on them
// (editable by whoever may reply in one of the contact's channels; the server checks).
import { ActionIcon, Button, Group, Loader, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { IconPencil, IconTrash } from '@tabler/icons-react';
import { useEffect, useState, type FormEvent } from 'react';
import { ok } from '../../api/client';
import type { Channel, Contact, ContactIdentity, Conversation } from '../../api/types';
import { useApi } from '../../auth/session';
import { ChannelIcon } from '../../components/ChannelIcon';
import { ErrorNote } from '../../components/ErrorNote';
import { useI18n } from '../../i18n';
import { dateTime } from '../../lib/time';

export function ContactCard({ conversationId, channels }: { conversationId: string; channels: Channel[] }) {
  const { t, lang } = useI18n();
  const api = useApi();
  const [contact, setContact] = useState<Contact | null>(null);
  const [conversation, setConversation] = useState<Conversation | null>(null);
  const [identities, setIdentities] = useState<ContactIdentity[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [editing, setEditing] = useState(false);

  useEffect(() => {
    let live = true;
    (async () => {
      const d = await ok(api.GET('/api/v1/conversations/{id}', { params: { path: { id: conversationId } } }));
      const ids = await ok(api.GET('/api/v1/contacts/{id}/identities', { params: { path: { id: d.contact.id } } }));
      if (!live) return;
      setContact(d.contact);
      setConversation(d.conversation);
      setIdentities(ids.items);
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
  const [rows, setRows] = useState<[string, string][]>(() =>
    Object.entries((contact.fields ?? {}) as Record<string, unknown>).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]),
  );
  const [error, setError] = useState<unknown>(null);
  const keys = rows.map(([k]) => k.trim()).filter(Boolean);
  const duplicate = new Set(keys).size !== keys.length;

  const save = async (e: FormEvent) => {
    e.preventDefault();
    if (duplicate) return;
    const fields = Object.fromEntries(rows.filter(([k]) => k.trim()).map(([k, v]) => [k.trim(), v]));
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
    setRows((cur) => cur.map((row, j) => (j === i ? ((at === 0 ? [value, row[1]] : [row[0], value]) as [string, string]) : row)));

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
        {duplicate && (
          <Text size="xs" c="red">
            {t('contact.duplicateField')}
          </Text>
        )}
        <Button size="xs" variant="default" onClick={() => setRows((cur) => [...cur, ['', '']])}>
          {t('contact.addField')}
        </Button>
        <ErrorNote error={error} />
        <Group gap="xs">
          <Button size="xs" type="submit" disabled={!name.trim() || duplicate}>
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
