import { Alert, Button, PasswordInput, Stack, Text, TextInput } from '@mantine/core';
import { useEffect, useState, type FormEvent } from 'react';
import { useNavigate } from 'react-router';
import { ok } from '../api/client';
import { useApi } from '../auth/session';
import { AuthCard } from '../components/AuthCard';
import { ErrorNote } from '../components/ErrorNote';
import { useI18n } from '../i18n';
import { tokenFromHash } from '../lib/fragment';
import { dateTime } from '../lib/time';

interface Preview {
  client_name: string;
  email: string;
  expires_at: string;
}

export function Invite() {
  const { t, lang } = useI18n();
  const api = useApi();
  const navigate = useNavigate();
  const [token] = useState(() => tokenFromHash(window.location.hash));
  const [preview, setPreview] = useState<Preview | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [repeat, setRepeat] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const mismatch = repeat !== '' && repeat !== password;

  useEffect(() => {
    if (!token) return;
    ok(api.GET('/api/v1/auth/invites/{token}', { params: { path: { token } } }))
      .then(setPreview)
      .catch(setLoadError);
  }, [api, token]);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (mismatch) return;
    setBusy(true);
    setError(null);
    try {
      await ok(api.POST('/api/v1/auth/invites/accept', { body: { token, display_name: name.trim(), password, locale: lang } }));
      navigate('/sign-in?joined=1', { replace: true });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <AuthCard title={t('invite.title')}>
      {!token && <Alert color="red">{t('link.missing')}</Alert>}
      <ErrorNote error={loadError} />
      {preview && (
        <form onSubmit={submit} noValidate>
          <Stack>
            <Text>{t('invite.intro', { client: preview.client_name, email: preview.email })}</Text>
            <Text size="sm" c="dimmed">
              {t('link.expires', { when: dateTime(preview.expires_at, lang) })}
            </Text>
            <TextInput label={t('field.name')} required value={name} onChange={(e) => setName(e.currentTarget.value)} autoComplete="name" />
            <PasswordInput
              label={t('field.newPassword')}
              description={t('field.passwordHint')}
              required
              autoComplete="new-password"
              value={password}
              onChange={(e) => setPassword(e.currentTarget.value)}
            />
            <PasswordInput
              label={t('field.repeatPassword')}
              required
              autoComplete="new-password"
              value={repeat}
              error={mismatch ? t('field.mismatch') : undefined}
              onChange={(e) => setRepeat(e.currentTarget.value)}
            />
            <ErrorNote error={error} />
            <Button type="submit" loading={busy} disabled={!name.trim() || !password || mismatch}>
              {t('invite.submit')}
            </Button>
          </Stack>
        </form>
      )}
    </AuthCard>
  );
}
