// One's own account: name, language, presence, the second factor and the password.
import { Alert, Button, Code, CopyButton, Group, Loader, PasswordInput, SegmentedControl, Stack, Text, TextInput, Title } from '@mantine/core';
import { lazy, Suspense, useState, type FormEvent } from 'react';
import { ok } from '../api/client';
import { useSession } from '../auth/session';
import { ErrorNote } from '../components/ErrorNote';
import { useI18n, type Lang } from '../i18n';

// The QR encoder is needed only while enrolling: its own chunk, fetched when this screen shows.
const QrCode = lazy(() => import('../components/QrCode'));

export default function Account() {
  const { t, lang, setLang } = useI18n();
  const { api, profile, me, reload } = useSession();
  const [name, setName] = useState(profile?.user.display_name ?? '');
  const [saved, setSaved] = useState(false);
  // The server does not report one's presence back, so nothing is selected until it is set here.
  const [presence, setPresence] = useState<string>('');
  const [error, setError] = useState<unknown>(null);

  const saveProfile = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      await ok(api.PATCH('/api/v1/auth/profile', { body: { display_name: name.trim() } }));
      setSaved(true);
      await reload();
    } catch (err) {
      setError(err);
    }
  };

  /** The console's language here, and the account's (for its e-mails) on the server. */
  const changeLocale = async (locale: Lang) => {
    setLang(locale);
    await ok(api.PATCH('/api/v1/auth/profile', { body: { locale } })).catch(setError);
  };

  const changePresence = async (value: string) => {
    setPresence(value);
    await ok(api.PUT('/api/v1/auth/presence', { body: { presence: value as 'online' | 'away' | 'offline' } })).catch(setError);
  };

  const inClient = me?.role === 'client_owner' || me?.role === 'employee';
  return (
    <main className="section-main account">
      <Stack maw={560}>
        <Title order={1} size="h3">
          {t('account.title')}
        </Title>
        <ErrorNote error={error} />
        <form onSubmit={saveProfile}>
          <Group align="flex-end">
            <TextInput label={t('field.name')} value={name} onChange={(e) => { setName(e.currentTarget.value); setSaved(false); }} className="grow" />
            <Button type="submit" disabled={!name.trim()}>
              {saved ? t('common.saved') : t('common.save')}
            </Button>
          </Group>
        </form>
        <Text size="sm">{profile?.user.email}</Text>
        <div>
          <Text size="sm" fw={500} mb={4} id="locale-label">
            {t('lang.label')}
          </Text>
          <SegmentedControl
            aria-labelledby="locale-label"
            value={lang}
            onChange={(v) => void changeLocale(v as Lang)}
            data={[
              { value: 'ru', label: 'Русский' },
              { value: 'en', label: 'English' },
            ]}
          />
        </div>
        {inClient && (
          <div>
            <Text size="sm" fw={500} mb={4} id="presence-label">
              {t('account.presence')}
            </Text>
            <SegmentedControl
              aria-labelledby="presence-label"
              value={presence}
              onChange={(v) => void changePresence(v)}
              data={(['online', 'away', 'offline'] as const).map((p) => ({ value: p, label: t(`presence.${p}`) }))}
            />
          </div>
        )}
        <SecondFactor enabled={profile?.user.totp_enabled ?? false} onChanged={reload} />
        <ChangePassword />
      </Stack>
    </main>
  );
}

function SecondFactor({ enabled, onChanged }: { enabled: boolean; onChanged(): Promise<void> }) {
  const { t } = useI18n();
  const { api } = useSession();
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [enrolment, setEnrolment] = useState<{ secret: string; otpauth_url: string } | null>(null);
  const [error, setError] = useState<unknown>(null);

  const run = async (e: FormEvent, action: () => Promise<unknown>) => {
    e.preventDefault();
    setError(null);
    try {
      await action();
    } catch (err) {
      setError(err);
    }
  };

  return (
    <Stack gap="xs">
      <Title order={2} size="h4">
        {t('totp.title')}
      </Title>
      <ErrorNote error={error} />
      {enabled ? (
        <form
          onSubmit={(e) =>
            void run(e, async () => {
              await ok(api.POST('/api/v1/auth/totp/disable', { body: { password, code: code.trim() } }));
              setPassword('');
              setCode('');
              await onChanged();
            })
          }
        >
          <Stack gap="xs">
            <Alert color="green">{t('totp.on')}</Alert>
            <PasswordInput label={t('field.password')} value={password} onChange={(e) => setPassword(e.currentTarget.value)} autoComplete="current-password" />
            <TextInput label={t('signin.totp')} value={code} onChange={(e) => setCode(e.currentTarget.value)} inputMode="numeric" autoComplete="one-time-code" />
            <Group>
              <Button type="submit" color="red" variant="light" disabled={!password || !code.trim()}>
                {t('totp.disable')}
              </Button>
            </Group>
          </Stack>
        </form>
      ) : enrolment ? (
        <form
          onSubmit={(e) =>
            void run(e, async () => {
              await ok(api.POST('/api/v1/auth/totp/enable', { body: { code: code.trim() } }));
              setEnrolment(null);
              setCode('');
              await onChanged();
            })
          }
        >
          <Stack gap="xs">
            <Text size="sm">{t('totp.scan')}</Text>
            <Suspense fallback={<Loader size="sm" aria-label={t('common.loading')} />}>
              <QrCode text={enrolment.otpauth_url} label={t('totp.qr')} />
            </Suspense>
            <Text size="xs" c="dimmed">
              {t('totp.secretHint')}
            </Text>
            <Group>
              <Code data-testid="totp-secret">{enrolment.secret}</Code>
              <CopyButton value={enrolment.otpauth_url}>
                {({ copied, copy }) => (
                  <Button size="compact-xs" variant="default" onClick={copy}>
                    {copied ? t('common.copied') : t('totp.copyLink')}
                  </Button>
                )}
              </CopyButton>
            </Group>
            <TextInput label={t('signin.totp')} value={code} onChange={(e) => setCode(e.currentTarget.value)} inputMode="numeric" autoComplete="one-time-code" />
            <Group>
              <Button type="submit" disabled={!code.trim()}>
                {t('totp.enable')}
              </Button>
            </Group>
          </Stack>
        </form>
      ) : (
        <form
          onSubmit={(e) =>
            void run(e, async () => {
              setEnrolment(await ok(api.POST('/api/v1/auth/totp/setup', { body: { password } })));
              setPassword('');
            })
          }
        >
          <Stack gap="xs">
            <Text size="sm">{t('totp.off')}</Text>
            <PasswordInput label={t('field.password')} value={password} onChange={(e) => setPassword(e.currentTarget.value)} autoComplete="current-password" />
            <Group>
              <Button type="submit" disabled={!password}>
                {t('totp.start')}
              </Button>
            </Group>
          </Stack>
        </form>
      )}
    </Stack>
  );
}

function ChangePassword() {
  const { t } = useI18n();
  const { api, signOut } = useSession();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [error, setError] = useState<unknown>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      await ok(api.POST('/api/v1/auth/password', { body: { current_password: current, new_password: next } }));
      // The server ended every session, this one included.
      await signOut();
    } catch (err) {
      setError(err);
    }
  };

  return (
    <form onSubmit={submit}>
      <Stack gap="xs">
        <Title order={2} size="h4">
          {t('account.password')}
        </Title>
        <Text size="sm" c="dimmed">
          {t('account.passwordHint')}
        </Text>
        <ErrorNote error={error} />
        <PasswordInput label={t('account.currentPassword')} value={current} onChange={(e) => setCurrent(e.currentTarget.value)} autoComplete="current-password" />
        <PasswordInput
          label={t('field.newPassword')}
          description={t('field.passwordHint')}
          value={next}
          onChange={(e) => setNext(e.currentTarget.value)}
          autoComplete="new-password"
        />
        <Group>
          <Button type="submit" disabled={!current || next.length < 10}>
            {t('account.changePassword')}
          </Button>
        </Group>
      </Stack>
    </form>
  );
}
