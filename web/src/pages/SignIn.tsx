import { Alert, Anchor, Button, PasswordInput, Stack, TextInput } from '@mantine/core';
import { useState, type FormEvent } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { ApiError } from '../api/client';
import { useSession } from '../auth/session';
import { AuthCard } from '../components/AuthCard';
import { ErrorNote } from '../components/ErrorNote';
import { useT } from '../i18n';

/** Only same-origin paths are followed after sign-in, never another site. */
export function safeNext(next: string | null): string {
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

export function SignIn() {
  const t = useT();
  const { signIn, expired } = useSession();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [needsCode, setNeedsCode] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(email.trim(), password, needsCode ? code.trim() : undefined);
      navigate(safeNext(params.get('next')), { replace: true });
    } catch (err) {
      if (err instanceof ApiError && err.code === 'totp_required') setNeedsCode(true);
      else setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <AuthCard title={t('signin.title')}>
      <form onSubmit={submit} noValidate>
        <Stack>
          {(params.has('joined') || params.has('reset')) && !expired && (
            <Alert color="green" variant="light" role="status">
              {params.has('joined') ? t('signin.joined') : t('signin.reset')}
            </Alert>
          )}
          {expired && (
            <Alert color="yellow" variant="light" role="status">
              {t('signin.expired')}
            </Alert>
          )}
          <TextInput
            label={t('field.email')}
            type="email"
            autoComplete="username"
            required
            value={email}
            onChange={(e) => setEmail(e.currentTarget.value)}
            autoFocus
          />
          <PasswordInput
            label={t('field.password')}
            autoComplete="current-password"
            required
            value={password}
            onChange={(e) => setPassword(e.currentTarget.value)}
          />
          {needsCode && (
            <TextInput
              label={t('signin.totp')}
              description={t('signin.totpHint')}
              inputMode="numeric"
              autoComplete="one-time-code"
              maxLength={8}
              value={code}
              onChange={(e) => setCode(e.currentTarget.value)}
              autoFocus
            />
          )}
          <ErrorNote error={error} />
          <Button type="submit" loading={busy}>
            {t('signin.submit')}
          </Button>
          <Anchor component={Link} to="/forgot-password" size="sm">
            {t('signin.forgot')}
          </Anchor>
        </Stack>
      </form>
    </AuthCard>
  );
}
