// Quick replies: templates operators insert from the reply box; the server fills the variables
// for the open conversation (and refuses unknown ones when a template is saved).
import { Badge, Button, Group, Stack, Table, Text, TextInput, Textarea } from '@mantine/core';
import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import { ok } from '../../api/client';
import type { QuickReply } from '../../api/types';
import { useApi } from '../../auth/session';
import { ErrorNote } from '../../components/ErrorNote';
import { PageTitle } from '../../components/Page';
import { useT } from '../../i18n';

export const TEMPLATE_VARIABLES = [
  'contact.name',
  'contact.phone',
  'contact.email',
  'operator.name',
  'client.name',
  'conversation.request_no',
];

export function QuickReplies() {
  const t = useT();
  const api = useApi();
  const [items, setItems] = useState<QuickReply[]>([]);
  const [title, setTitle] = useState('');
  const [text, setText] = useState('');
  const [error, setError] = useState<unknown>(null);
  const area = useRef<HTMLTextAreaElement>(null);

  const load = useCallback(() => {
    ok(api.GET('/api/v1/quick-replies')).then((r) => setItems(r.items), setError);
  }, [api]);
  useEffect(load, [load]);

  const add = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      await ok(api.POST('/api/v1/quick-replies', { body: { title: title.trim(), text } }));
      setTitle('');
      setText('');
      load();
    } catch (err) {
      setError(err);
    }
  };

  const insertVariable = (name: string) => {
    const el = area.current;
    const at = el?.selectionStart ?? text.length;
    setText(text.slice(0, at) + `{{${name}}}` + text.slice(el?.selectionEnd ?? at));
    el?.focus();
  };

  const remove = (id: string) => ok(api.DELETE('/api/v1/quick-replies/{id}', { params: { path: { id } } })).then(load, setError);

  return (
    <Stack>
      <PageTitle>{t('quick.title')}</PageTitle>
      <ErrorNote error={error} />
      <form onSubmit={add}>
        <Stack gap="xs">
          <TextInput label={t('quick.name')} required maxLength={100} value={title} onChange={(e) => setTitle(e.currentTarget.value)} />
          <Textarea ref={area} label={t('quick.text')} required autosize minRows={3} value={text} onChange={(e) => setText(e.currentTarget.value)} />
          <Group gap={6}>
            <Text size="sm">{t('quick.variables')}</Text>
            {TEMPLATE_VARIABLES.map((v) => (
              <Button key={v} size="compact-xs" variant="light" onClick={() => insertVariable(v)}>
                {`{{${v}}}`}
              </Button>
            ))}
          </Group>
          <Group>
            <Button type="submit" disabled={!title.trim() || !text.trim()}>
              {t('common.add')}
            </Button>
          </Group>
        </Stack>
      </form>
      <Table withTableBorder striped>
        <Table.Tbody>
          {items.map((q) => (
            <Table.Tr key={q.id}>
              <Table.Td>
                <Badge variant="light">{q.title}</Badge>
              </Table.Td>
              <Table.Td className="message-text">{q.text}</Table.Td>
              <Table.Td>
                <Button size="compact-xs" variant="subtle" color="red" onClick={() => void remove(q.id)}>
                  {t('common.delete')}
                </Button>
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Stack>
  );
}
