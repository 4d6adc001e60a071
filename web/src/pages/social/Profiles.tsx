// Connected social profiles, network by network as the capability matrix lists them: each
// profile's status (with the network's words when it fails), its latest posts with counters,
// and disconnecting; connecting by pasting a token, or by signing in on the network (OAuth)
// where the server offers it. Networks that cannot be connected say why instead of offering a
// dead button.
import { Alert, Anchor, Badge, Box, Button, Card, Group, Modal, Stack, Table, Text, TextInput, Textarea } from '@mantine/core';
import { IconBrandFacebook, IconBrandGoogle, IconBrandInstagram, IconBrandVk, IconBrandX, IconBrandYoutube, IconMessages } from '@tabler/icons-react';
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import { ApiError, ok } from '../../api/client';
import { useApi, useSession, workspaceSections } from '../../auth/session';
import { ErrorNote } from '../../components/ErrorNote';
import { PageTitle } from '../../components/Page';
import { useI18n, type MessageKey } from '../../i18n';
import { dateTime } from '../../lib/time';
import { useNetworks } from './CapabilityMatrix';
import { connectOffer, networkName, oauthMissing, offersOAuth, validExternalId, type NetworkRow, type RemotePost, type SocialProfile } from './logic';
import { startOAuth } from './oauthApi';

const ICONS: Record<string, typeof IconBrandVk> = {
  vk: IconBrandVk,
  ok: IconMessages,
  facebook: IconBrandFacebook,
  instagram: IconBrandInstagram,
  x: IconBrandX,
  youtube: IconBrandYoutube,
  google_plus: IconBrandGoogle,
};

const STATUS_COLOR: Record<string, string> = { active: 'teal', token_expired: 'orange', failing: 'red' };

export function Profiles() {
  const { t } = useI18n();
  const api = useApi();
  const { me } = useSession();
  const manage = workspaceSections(me).settings;
  const { networks, error: matrixError } = useNetworks();
  const [profiles, setProfiles] = useState<SocialProfile[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [connecting, setConnecting] = useState<NetworkRow | null>(null);
  const [leaving, setLeaving] = useState<SocialProfile | null>(null);
  // Networks whose OAuth the server turned out not to have.
  const [noOAuth, setNoOAuth] = useState<Set<string>>(new Set());

  const load = useCallback(() => {
    ok(api.GET('/api/v1/social/profiles')).then((r) => setProfiles(r.items), setError);
  }, [api]);
  useEffect(load, [load]);

  const disconnect = async () => {
    if (!leaving) return;
    setError(null);
    try {
      await ok(api.DELETE('/api/v1/social/profiles/{channel_id}', { params: { path: { channel_id: leaving.id } } }));
      setLeaving(null);
      load();
    } catch (err) {
      setLeaving(null);
      setError(err);
    }
  };

  return (
    <Stack>
      <PageTitle actions={<Anchor component={Link} to="/social/networks" size="sm">{t('matrix.link')}</Anchor>}>{t('social.title')}</PageTitle>
      <ErrorNote error={matrixError ?? error} />
      {notice && (
        <Alert color="green" role="status" withCloseButton onClose={() => setNotice(null)}>
          {notice}
        </Alert>
      )}
      {!networks && !matrixError && <div className="page-loading" aria-busy="true" />}
      {networks?.map((row) => (
        <NetworkCard
          key={row.network}
          row={row}
          profiles={profiles.filter((p) => p.network === row.network)}
          manage={manage}
          oauth={offersOAuth(row, noOAuth)}
          onToken={() => setConnecting(row)}
          onNoOAuth={() => setNoOAuth((s) => new Set(s).add(row.network))}
          onDisconnect={setLeaving}
        />
      ))}
      {connecting && (
        <ConnectByToken
          row={connecting}
          onClose={() => setConnecting(null)}
          onConnected={(p) => {
            setConnecting(null);
            setNotice(t('social.connected', { name: p.name }));
            load();
          }}
        />
      )}
      <Modal opened={leaving !== null} onClose={() => setLeaving(null)} title={leaving ? t('social.disconnectOf', { name: leaving.name }) : ''}>
        {leaving && (
          <Stack>
            <Text size="sm">{t('social.disconnectConfirm', { name: leaving.name })}</Text>
            <Group justify="flex-end">
              <Button variant="default" onClick={() => setLeaving(null)}>
                {t('common.cancel')}
              </Button>
              <Button color="red" onClick={() => void disconnect()}>
                {t('social.disconnect')}
              </Button>
            </Group>
          </Stack>
        )}
      </Modal>
    </Stack>
  );
}

interface CardProps {
  row: NetworkRow;
  profiles: SocialProfile[];
  manage: boolean;
  oauth: boolean;
  onToken(): void;
  onNoOAuth(): void;
  onDisconnect(p: SocialProfile): void;
}

function NetworkCard({ row, profiles, manage, oauth, onToken, onNoOAuth, onDisconnect }: CardProps) {
  const { t, lang } = useI18n();
  const { me } = useSession();
  const name = networkName(row.network, t);
  const Icon = ICONS[row.network] ?? IconMessages;
  const offer = connectOffer(row);
  const [oauthError, setOAuthError] = useState<unknown>(null);
  const [starting, setStarting] = useState(false);
  const headingId = `network-${row.network}`;

  const signIn = async () => {
    setOAuthError(null);
    setStarting(true);
    try {
      window.location.assign(await startOAuth({ csrfToken: me?.csrf_token, lang }, row.network));
    } catch (err) {
      setStarting(false);
      if (err instanceof ApiError && oauthMissing(err.status)) {
        onNoOAuth();
        setOAuthError(t('social.oauthUnavailable', { network: name }));
      } else {
        setOAuthError(err);
      }
    }
  };

  let why: string | null = null;
  if (offer.kind === 'dead') why = row.network === 'google_plus' ? t('social.deadNetwork') : offer.reason;
  if (offer.kind === 'planned') why = t('social.notYet', { network: name });

  return (
    <Card withBorder component="section" aria-labelledby={headingId} data-testid={`network-${row.network}`}>
      <Group justify="space-between" wrap="wrap">
        <Group gap="xs">
          <Icon size={22} aria-hidden="true" />
          <Text fw={600} id={headingId} component="h3" m={0} size="lg">
            {name}
          </Text>
          {profiles.length > 0 && (
            <Badge variant="light" color="gray">
              {t('social.profileCount', { n: profiles.length })}
            </Badge>
          )}
        </Group>
        {manage && (
          <Group gap="xs">
            {offer.kind === 'token' ? (
              <>
                {oauth && (
                  <Button size="xs" onClick={() => void signIn()} loading={starting}>
                    {t('social.connectOAuth', { network: name })}
                  </Button>
                )}
                <Button size="xs" variant={oauth ? 'default' : 'filled'} onClick={onToken}>
                  {t('social.connectToken')}
                </Button>
              </>
            ) : (
              // A disabled button takes no focus and shows no tooltip: the reason is written below.
              <Button size="xs" disabled aria-describedby={`${headingId}-why`}>
                {offer.kind === 'dead' ? t('social.cannotConnect') : t('social.planned')}
              </Button>
            )}
          </Group>
        )}
      </Group>
      {why && (
        <Text size="sm" c="dimmed" mt="xs" id={`${headingId}-why`} data-testid={`why-${row.network}`}>
          {why}
          {offer.kind === 'planned' && offer.reason ? ` ${t('social.reason', { reason: offer.reason })}` : ''}
        </Text>
      )}
      {oauthError !== null && (
        <Box mt="xs">
          <ErrorNote error={oauthError} />
        </Box>
      )}
      {offer.kind === 'token' && profiles.length === 0 && (
        <Text size="sm" c="dimmed" mt="xs">
          {t('social.noProfiles')}
        </Text>
      )}
      {profiles.length > 0 && (
        <ul className="profile-list">
          {profiles.map((p) => (
            <ProfileRow key={p.id} profile={p} manage={manage} onDisconnect={() => onDisconnect(p)} />
          ))}
        </ul>
      )}
    </Card>
  );
}

function ProfileRow({ profile, manage, onDisconnect }: { profile: SocialProfile; manage: boolean; onDisconnect(): void }) {
  const { t, lang } = useI18n();
  const api = useApi();
  const [posts, setPosts] = useState<RemotePost[] | null>(null);
  const [open, setOpen] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const statusKey = `social.status.${profile.status}` as MessageKey;
  const statusText = profile.status in STATUS_COLOR ? t(statusKey) : profile.status;

  const toggle = () => {
    if (open) {
      setOpen(false);
      return;
    }
    setOpen(true);
    setError(null);
    ok(api.GET('/api/v1/social/profiles/{channel_id}/posts', { params: { path: { channel_id: profile.id } } })).then(setPosts, setError);
  };

  return (
    <li className="profile-row" data-testid={`profile-${profile.id}`}>
      <Group justify="space-between" wrap="wrap">
        <div>
          <Text fw={500}>{profile.name}</Text>
          <Text size="xs" c="dimmed">
            {t('social.externalIdShown', { id: profile.external_id })}
          </Text>
        </div>
        <Group gap="xs">
          <Badge color={STATUS_COLOR[profile.status] ?? 'gray'} variant="light">
            {statusText}
          </Badge>
          <Button size="compact-sm" variant="light" onClick={toggle} aria-expanded={open} aria-label={open ? t('social.hidePosts') : t('social.postsOf', { name: profile.name })}>
            {open ? t('social.hidePosts') : t('social.posts')}
          </Button>
          {manage && (
            <Button size="compact-sm" variant="subtle" color="red" onClick={onDisconnect} aria-label={t('social.disconnectOf', { name: profile.name })}>
              {t('social.disconnect')}
            </Button>
          )}
        </Group>
      </Group>
      {profile.status !== 'active' && profile.status_detail && (
        <Text size="sm" c="red" mt={4} data-testid="profile-detail">
          {t('social.networkSaid', { detail: profile.status_detail })}
        </Text>
      )}
      {open && (
        <div className="profile-posts">
          <ErrorNote error={error} />
          {posts === null && !error && <div className="page-loading" aria-busy="true" />}
          {posts && posts.length === 0 && (
            <Text size="sm" c="dimmed">
              {t('social.noPosts')}
            </Text>
          )}
          {posts && posts.length > 0 && (
            <Table striped withTableBorder aria-label={t('social.postsOf', { name: profile.name })}>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>{t('social.counters.text')}</Table.Th>
                  <Table.Th>{t('social.counters.published')}</Table.Th>
                  <Table.Th ta="right">{t('social.counters.likes')}</Table.Th>
                  <Table.Th ta="right">{t('social.counters.comments')}</Table.Th>
                  <Table.Th ta="right">{t('social.counters.reposts')}</Table.Th>
                  <Table.Th ta="right">{t('social.counters.views')}</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {posts.map((p) => (
                  <Table.Tr key={p.id}>
                    <Table.Td className="post-text">
                      <Text size="sm" lineClamp={3}>
                        {p.text}
                      </Text>
                      {p.post_id && (
                        <Text size="xs" c="dimmed">
                          {t('social.fromHere')}
                        </Text>
                      )}
                    </Table.Td>
                    <Table.Td>{p.published_at ? dateTime(p.published_at, lang) : '—'}</Table.Td>
                    <Table.Td ta="right">{p.likes}</Table.Td>
                    <Table.Td ta="right">{p.comments}</Table.Td>
                    <Table.Td ta="right">{p.reposts}</Table.Td>
                    <Table.Td ta="right">{p.views}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          )}
        </div>
      )}
    </li>
  );
}

function ConnectByToken({ row, onClose, onConnected }: { row: NetworkRow; onClose(): void; onConnected(p: SocialProfile): void }) {
  const { t } = useI18n();
  const api = useApi();
  const name = networkName(row.network, t);
  const [externalId, setExternalId] = useState('');
  const [token, setToken] = useState('');
  const [touched, setTouched] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const idError = touched && externalId.trim() !== '' && !validExternalId(externalId) ? t('social.externalIdInvalid') : null;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setTouched(true);
    if (!validExternalId(externalId) || !token.trim()) return;
    setBusy(true);
    setError(null);
    try {
      const profile = await ok(
        api.POST('/api/v1/social/profiles', {
          body: { network: row.network, external_id: externalId.trim().replace(/^-/, ''), access_token: token.trim() },
        }),
      );
      onConnected(profile);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  return (
    <Modal opened onClose={onClose} title={t('social.connectNetwork', { network: name })}>
      <form onSubmit={submit} noValidate>
        <Stack>
          <ErrorNote error={error} />
          <TextInput
            label={t('social.externalId', { network: name })}
            description={t('social.externalIdHint')}
            required
            value={externalId}
            error={idError}
            onBlur={() => setTouched(true)}
            onChange={(e) => setExternalId(e.currentTarget.value)}
            data-autofocus
          />
          <Textarea
            label={t('social.token')}
            description={t('social.tokenHint')}
            required
            autosize
            minRows={2}
            className="mono"
            value={token}
            autoComplete="off"
            spellCheck={false}
            onChange={(e) => setToken(e.currentTarget.value)}
          />
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              {t('common.cancel')}
            </Button>
            <Button type="submit" loading={busy} disabled={!externalId.trim() || !token.trim()}>
              {t('social.connect')}
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
