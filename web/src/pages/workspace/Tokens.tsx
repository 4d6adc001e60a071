// API tokens: made for programs acting with their creator's rights; the secret is shown once.
import { Alert, Button, CopyButton, Group, NumberInput, Stack, Table, Text, TextInput } from '@mantine/core';
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { ok } from '../../api/client';
import type { ApiToken } from '../../api/types';
import { useApi } from '../../auth/session';
import { ErrorNote } from '../../components/ErrorNote';
import { PageTitle } from '../../components/Page';
import { useI18n } from '../../i18n';
import { dateTime } from '../../lib/time';

export function Tokens() {
  const { t, lang } = useI18n();
  const api = useApi();
  const [tokens, setTokens] = useState<ApiToken[]>([]);
  const [name, setName] = useState('');
  const [days, setDays] = useState<number | string>(90);
  const [secret, setSecret] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(() => {
    ok(api.GET('/api/v1/tokens')).then((r) => setTokens(r.items), setError);
  }, [api]);
  useEffect(load, [load]);

  const create = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const expires = typeof days === 'number' && days > 0 ? days : undefined;
      const answer = await ok(api.POST('/api/v1/tokens', { body: { name: name.trim(), expires_in_days: expires } }));
      setSecret(answer.token);
      setName('');
      load();
    } catch (err) {
      setError(err);
    }
  };

  const revoke = (id: string) => ok(api.DELETE('/api/v1/tokens/{id}', { params: { path: { id } } })).then(load, setError);

  return (
    <Stack>
      <PageTitle>{t('tokens.title')}</PageTitle>
      <ErrorNote error={error} />
      {secret && (
        <Alert color="green" title={t('tokens.once')}>
          <Group>
            <code className="secret">{secret}</code>
            <CopyButton value={secret}>{({ copied, copy }) => <Button size="xs" onClick={copy}>{copied ? t('common.copied') : t('common.copy')}</Button>}</CopyButton>
          </Group>
        </Alert>
      )}
      <form onSubmit={create}>
        <Group align="flex-end">
          <TextInput label={t('field.name')} required value={name} onChange={(e) => setName(e.currentTarget.value)} />
          <NumberInput label={t('tokens.days')} min={1} max={3650} value={days} onChange={setDays} w={160} />
          <Button type="submit" disabled={!name.trim()}>
            {t('tokens.create')}
          </Button>
        </Group>
      </form>
      {tokens.length === 0 ? (
        <Text c="dimmed" size="sm">
          {t('tokens.none')}
        </Text>
      ) : (
        <Table withTableBorder striped>
          <Table.Thead>
            <Table.Tr>
              <Table.Th>{t('field.name')}</Table.Th>
              <Table.Th>{t('tokens.prefix')}</Table.Th>
              <Table.Th>{t('tokens.expires')}</Table.Th>
              <Table.Th>{t('tokens.lastUsed')}</Table.Th>
              <Table.Th />
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {tokens.map((tk) => (
              <Table.Tr key={tk.id}>
                <Table.Td>{tk.name}</Table.Td>
                <Table.Td>
                  <code>{tk.prefix}…</code>
                </Table.Td>
                <Table.Td>{tk.expires_at ? dateTime(tk.expires_at, lang) : t('tokens.never')}</Table.Td>
                <Table.Td>{tk.last_used_at ? dateTime(tk.last_used_at, lang) : '—'}</Table.Td>
                <Table.Td>
                  {tk.revoked_at ? (
                    t('tokens.revoked')
                  ) : (
                    <Button size="compact-xs" variant="subtle" color="red" onClick={() => void revoke(tk.id)}>
                      {t('tokens.revoke')}
                    </Button>
                  )}
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
    </Stack>
  );
}
