// Who the customer is: name, every channel they wrote from, and the custom fields kept on them.
import { Loader, Stack, Table, Text, Title } from '@mantine/core';
import { useEffect, useState } from 'react';
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

  if (error) return <ErrorNote error={error} />;
  if (!contact) return <Loader size="sm" aria-label={t('common.loading')} />;
  const fields = Object.entries((contact.fields ?? {}) as Record<string, unknown>);
  const channelName = (id: string) => channels.find((c) => c.id === id);

  return (
    <Stack gap="sm" p="md" data-testid="contact-card">
      <Title order={3} size="h4">
        {contact.name}
      </Title>
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
