import { Alert, Anchor, Button, PasswordInput, Stack, Text, TextInput } from '@mantine/core';
import { useState, type FormEvent } from 'react';
import { Link, useNavigate } from 'react-router';
import { ok } from '../api/client';
import { useApi } from '../auth/session';
import { AuthCard } from '../components/AuthCard';
import { ErrorNote } from '../components/ErrorNote';
import { useT } from '../i18n';
import { tokenFromHash } from '../lib/fragment';

/** Sets a new password from a reset (or first-password) link. */
export function ResetPassword() {
  const t = useT();
  const api = useApi();
  const navigate = useNavigate();
  const [token] = useState(() => tokenFromHash(window.location.hash));
  const [password, setPassword] = useState('');
  const [repeat, setRepeat] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const mismatch = repeat !== '' && repeat !== password;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (mismatch) return;
    setBusy(true);
    setError(null);
    try {
      await ok(api.POST('/api/v1/auth/password-reset/confirm', { body: { token, new_password: password } }));
      navigate('/sign-in?reset=1', { replace: true });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <AuthCard title={t('reset.title')}>
      {!token ? (
        <Alert color="red">{t('link.missing')}</Alert>
      ) : (
        <form onSubmit={submit} noValidate>
          <Stack>
            <PasswordInput
              label={t('field.newPassword')}
              description={t('field.passwordHint')}
              required
              autoComplete="new-password"
              value={password}
              onChange={(e) => setPassword(e.currentTarget.value)}
              autoFocus
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
            <Button type="submit" loading={busy} disabled={!password || mismatch}>
              {t('reset.submit')}
            </Button>
          </Stack>
        </form>
      )}
    </AuthCard>
  );
}

/** Asks for a reset link by e-mail. */
export function ForgotPassword() {
  const t = useT();
  const api = useApi();
  const [email, setEmail] = useState('');
  const [sent, setSent] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await ok(api.POST('/api/v1/auth/password-reset', { body: { email: email.trim() } }));
      setSent(true);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <AuthCard title={t('forgot.title')}>
      <form onSubmit={submit} noValidate>
        <Stack>
          {sent ? (
            <Alert color="green" role="status">
              {t('forgot.sent')}
            </Alert>
          ) : (
            <>
              <Text size="sm">{t('forgot.intro')}</Text>
              <TextInput
                label={t('field.email')}
                type="email"
                required
                autoComplete="email"
                value={email}
                onChange={(e) => setEmail(e.currentTarget.value)}
                autoFocus
              />
              <ErrorNote error={error} />
              <Button type="submit" loading={busy} disabled={!email.trim()}>
                {t('forgot.submit')}
              </Button>
            </>
          )}
          <Anchor component={Link} to="/sign-in" size="sm">
            {t('forgot.back')}
          </Anchor>
        </Stack>
      </form>
    </AuthCard>
  );
}
