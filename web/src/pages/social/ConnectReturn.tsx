// Where the server sends the browser back after signing in on a network
// (`/social/connect?grant=…` or `?error=…`): the profiles the person manages there, to pick one
// or more and connect them; errors in the user's language.
import { Alert, Anchor, Button, Checkbox, Stack, Text } from '@mantine/core';
import { useEffect, useState } from 'react';
import { Link, useLocation } from 'react-router';
import { ApiError } from '../../api/client';
import { useSession } from '../../auth/session';
import { ErrorNote } from '../../components/ErrorNote';
import { PageTitle } from '../../components/Page';
import { useI18n } from '../../i18n';
import { connectReturn, networkName, oauthErrorText } from './logic';
import { connectGrant, readGrant, type Connected, type Grant } from './oauthApi';

export function ConnectReturn() {
  const { t, lang } = useI18n();
  const { me } = useSession();
  const { search } = useLocation();
  const back = connectReturn(search);
  const [grant, setGrant] = useState<Grant | null>(null);
  const [chosen, setChosen] = useState<string[]>([]);
  const [error, setError] = useState<unknown>(back.kind === 'error' ? oauthErrorText(back.code, t) : null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<Connected | null>(null);
  const caller = { csrfToken: me?.csrf_token, lang };
  const grantId = back.kind === 'grant' ? back.grant : null;

  /** A grant the server no longer knows reads as an expired sign-in. */
  const explain = (err: unknown) => (err instanceof ApiError && (err.status === 404 || err.status === 410) ? oauthErrorText('expired', t) : err);

  useEffect(() => {
    if (!grantId) return;
    readGrant({ csrfToken: null, lang }, grantId).then(
      (g) => {
        setGrant(g);
        if (g.profiles.length === 1) setChosen([g.profiles[0]!.external_id]);
      },
      (err) => setError(explain(err)),
    );
    // The grant is read once per address; the language of its errors is the one at that time.
  }, [grantId]);

  const connect = async () => {
    if (!grantId || chosen.length === 0) return;
    setBusy(true);
    setError(null);
    try {
      setDone(await connectGrant(caller, grantId, chosen));
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy(false);
    }
  };

  const name = grant ? networkName(grant.network, t) : '';
  return (
    <Stack maw={640}>
      <PageTitle>{t('oauth.title')}</PageTitle>
      {error !== null && <ErrorNote error={error} />}
      {back.kind === 'error' && back.detail && (
        <Text size="sm" c="dimmed" data-testid="oauth-detail">
          {t('social.networkSaid', { detail: back.detail })}
        </Text>
      )}
      {back.kind === 'none' && <ErrorNote error={oauthErrorText('expired', t)} />}
      {done ? (
        <>
          {done.profiles.length > 0 && (
            <Alert color="green" role="status">
              {t('oauth.done', { names: done.profiles.map((p) => p.name).join(', ') })}
            </Alert>
          )}
          {done.failed.map((f) => (
            <Alert key={f.external_id} color="red" role="alert" data-testid="oauth-failed">
              {f.external_id}: {f.message}
            </Alert>
          ))}
        </>
      ) : (
        grantId &&
        !error && (
          <>
            {!grant && (
              <Text size="sm" c="dimmed" aria-busy="true">
                {t('oauth.loading')}
              </Text>
            )}
            {grant && grant.profiles.length === 0 && <Text size="sm">{t('oauth.none')}</Text>}
            {grant && grant.profiles.length > 0 && (
              <Checkbox.Group label={t('oauth.pick', { network: name })} value={chosen} onChange={setChosen}>
                <Stack gap="xs" mt="xs">
                  {grant.profiles.map((p) => (
                    <Checkbox key={p.external_id} value={p.external_id} label={`${p.name} (${p.external_id})`} />
                  ))}
                </Stack>
              </Checkbox.Group>
            )}
            {grant && grant.profiles.length > 0 && (
              <div>
                <Button onClick={() => void connect()} loading={busy} disabled={chosen.length === 0}>
                  {t('oauth.connect')}
                </Button>
              </div>
            )}
          </>
        )
      )}
      <Anchor component={Link} to="/social/profiles" size="sm">
        {t('oauth.back')}
      </Anchor>
    </Stack>
  );
}
