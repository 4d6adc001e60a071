// The posts, by where they are in the approval flow: drafts, waiting for approval, approved,
// scheduled, published (with their counters, and likes and dislikes as each profile, for those
// who may moderate it), and failed (with each network's reason and a retry). Each row offers
// the next step its viewer's rights allow; a rating the profile's network forbids is shown
// disabled with the network's reason.
import { Alert, Badge, Button, Group, Stack, Table, Tabs, Text } from '@mantine/core';
import { useCallback, useEffect, useMemo, useState } from 'react';
import { Link, useSearchParams } from 'react-router';
import { ok } from '../../api/client';
import { useApi } from '../../auth/session';
import { ErrorNote } from '../../components/ErrorNote';
import { PageTitle } from '../../components/Page';
import { useI18n, type MessageKey } from '../../i18n';
import { POST_GROUPS, composeText, fromWire, groupOf, postActions, ratingOffers, ratingReasons, type PostGroup, type Rating, type SocialPost } from './content';
import { NetworkIcon, StatusBadge, formatWhen, holdsOnAll, networkName, profileLabel, rightsOn, useMe, usePublishingData, useTimeZone } from './shared';

export function Posts() {
  const { t, lang } = useI18n();
  const api = useApi();
  const me = useMe();
  const zone = useTimeZone();
  const data = usePublishingData();
  const [params, setParams] = useSearchParams();
  const group = (POST_GROUPS as readonly string[]).includes(params.get('status') ?? '') ? (params.get('status') as PostGroup) : 'draft';
  const [posts, setPosts] = useState<SocialPost[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const load = useCallback(() => {
    ok(api.GET('/api/v1/social/posts')).then((r) => setPosts(r.items), setError);
  }, [api]);
  useEffect(load, [load]);
  // Publishing runs in the background: while something is on its way, look again now and then.
  useEffect(() => {
    if (!posts.some((p) => p.status === 'publishing' || p.status === 'scheduled')) return;
    const timer = window.setInterval(load, 5000);
    return () => window.clearInterval(timer);
  }, [posts, load]);

  const counts = useMemo(() => {
    const c = new Map<PostGroup, number>();
    for (const p of posts) {
      const g = groupOf(p.status);
      if (g) c.set(g, (c.get(g) ?? 0) + 1);
    }
    return c;
  }, [posts]);
  const shown = posts.filter((p) => groupOf(p.status) === group);
  const profiles = useMemo(() => new Map(data.profiles.map((p) => [p.id, p])), [data.profiles]);

  const act = async (post: SocialPost, path: 'submit' | 'approve' | 'reject' | 'unschedule' | 'publish' | 'delete') => {
    setBusy(post.id + path);
    setError(null);
    try {
      if (path === 'delete') {
        if (!window.confirm(t('pub.deleteConfirm'))) return;
        await ok(api.DELETE('/api/v1/social/posts/{id}', { params: { path: { id: post.id } } }));
      } else {
        const url = `/api/v1/social/posts/{id}/${path}` as '/api/v1/social/posts/{id}/submit';
        await ok(api.POST(url, { params: { path: { id: post.id } } }));
      }
      load();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  };

  // A like or dislike as one profile: a task the scheduler runs now.
  const rate = async (post: SocialPost, profileId: string, network: string, rating: Rating) => {
    setBusy(post.id + profileId + rating);
    setError(null);
    setNotice(null);
    try {
      await ok(api.POST('/api/v1/social/posts/{id}/actions', { params: { path: { id: post.id } }, body: { action: rating, profile_id: profileId } }));
      setNotice(t('pub.rate.sent', { action: t(`pub.rate.${rating}` as MessageKey), network: networkName(network) }));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  };

  return (
    <Stack>
      <PageTitle
        actions={
          <Button component={Link} to="/publishing/compose">
            {t('pub.newPost')}
          </Button>
        }
      >
        {t('pub.posts')}
      </PageTitle>
      <ErrorNote error={error ?? data.error} />
      {notice && (
        <Alert color="green" role="status" withCloseButton onClose={() => setNotice(null)}>
          {notice}
        </Alert>
      )}
      <Tabs value={group} onChange={(v) => v && setParams({ status: v }, { replace: true })}>
        <Tabs.List>
          {POST_GROUPS.map((g) => (
            <Tabs.Tab key={g} value={g} rightSection={<Badge size="xs" variant="light" color={g === 'failed' && (counts.get(g) ?? 0) > 0 ? 'red' : 'gray'}>{counts.get(g) ?? 0}</Badge>}>
              {t(`pub.status.${g}` as MessageKey)}
            </Tabs.Tab>
          ))}
        </Tabs.List>
      </Tabs>
      {shown.length === 0 ? (
        <Text c="dimmed" size="sm">
          {t('pub.noPosts')}
        </Text>
      ) : (
        <Table withTableBorder verticalSpacing="sm" data-testid="posts">
          <Table.Tbody>
            {shown.map((post) => {
              const targets = post.targets.map((x) => x.profile_id);
              const can = postActions(post.status, {
                publish: holdsOnAll(me, targets, 'publish'),
                approve: holdsOnAll(me, targets, 'approve'),
                delete: holdsOnAll(me, targets, 'delete'),
              });
              const text = composeText(fromWire(post.content)) || t('pub.untitled');
              const button = (path: Parameters<typeof act>[1], label: MessageKey, color?: string) => (
                <Button size="compact-sm" variant="light" color={color} loading={busy === post.id + path} onClick={() => void act(post, path)}>
                  {t(label)}
                </Button>
              );
              return (
                <Table.Tr key={post.id}>
                  <Table.Td className="post-text-cell">
                    <Text size="sm" lineClamp={3} className="message-text">
                      {text}
                    </Text>
                    <Group gap={6} mt={4}>
                      <StatusBadge status={post.status} />
                      {post.scheduled_at && (post.status === 'scheduled' || post.status === 'publishing') && (
                        <Text size="xs" c="dimmed">
                          {t('pub.scheduledFor', { when: formatWhen(post.scheduled_at, lang, zone) })}
                        </Text>
                      )}
                    </Group>
                  </Table.Td>
                  <Table.Td>
                    <ul className="plain-list">
                      {post.targets.map((x) => {
                        const p = profiles.get(x.profile_id);
                        const network = p?.network ?? '';
                        return (
                          <li key={x.profile_id}>
                            <Group gap={4} wrap="nowrap">
                              <NetworkIcon network={network} />
                              <Text size="sm">{p ? profileLabel(p) : x.profile_id}</Text>
                              {x.status !== 'pending' && (
                                <Badge size="xs" variant="light" color={x.status === 'failed' ? 'red' : x.status === 'published' ? 'green' : 'gray'}>
                                  {t(`pub.target.${x.status}` as MessageKey)}
                                </Badge>
                              )}
                            </Group>
                            {x.status === 'published' && (
                              <Text size="xs" c="dimmed">
                                {x.published_at && t('pub.publishedAt', { when: formatWhen(x.published_at, lang, zone) })}
                                {' · '}
                                {t('pub.counters', { likes: x.likes, comments: x.comments, reposts: x.reposts, views: x.views })}
                              </Text>
                            )}
                            {x.status === 'published' && p && rightsOn(me, x.profile_id).has('moderate') && (
                              <Ratings
                                id={`rate-${post.id}-${x.profile_id}`}
                                profile={profileLabel(p)}
                                offers={ratingOffers(data.networks.get(network))}
                                busy={(r) => busy === post.id + x.profile_id + r}
                                onRate={(r) => void rate(post, x.profile_id, network, r)}
                              />
                            )}
                            {x.failure_reason && (
                              <Text size="xs" c="red" data-testid="failure-reason">
                                {t('pub.networkSaid', { network: networkName(network), reason: x.failure_reason })}
                              </Text>
                            )}
                          </li>
                        );
                      })}
                    </ul>
                  </Table.Td>
                  <Table.Td>
                    <Group gap={6} justify="flex-end">
                      <Button size="compact-sm" variant="subtle" component={Link} to={`/publishing/compose/${post.id}`}>
                        {t('pub.open')}
                      </Button>
                      {can.submit && button('submit', 'pub.submit')}
                      {can.approve && button('approve', 'pub.approve', 'green')}
                      {can.reject && button('reject', 'pub.reject', 'orange')}
                      {can.unschedule && button('unschedule', 'pub.unschedule')}
                      {can.publish && button('publish', 'pub.publishNow', 'green')}
                      {can.retry && button('publish', 'pub.retry', 'red')}
                      {can.delete && button('delete', 'pub.delete', 'red')}
                    </Group>
                  </Table.Td>
                </Table.Tr>
              );
            })}
          </Table.Tbody>
        </Table>
      )}
    </Stack>
  );
}

/** Like, take the like back, dislike, take the dislike back, as one profile; what its network
 * forbids is disabled, and since a disabled button takes no focus and shows no tooltip, the
 * reasons are written below it. */
function Ratings({
  id,
  profile,
  offers,
  busy,
  onRate,
}: {
  id: string;
  profile: string;
  offers: ReturnType<typeof ratingOffers>;
  busy: (r: Rating) => boolean;
  onRate: (r: Rating) => void;
}) {
  const { t } = useI18n();
  const reasons = ratingReasons(offers);
  const label = (r: Rating) => t(`pub.rate.${r}` as MessageKey);
  return (
    <>
      <Group gap={4} mt={4} data-testid="ratings">
        {offers.map((o) => (
          <Button
            key={o.rating}
            size="compact-xs"
            variant="default"
            disabled={!o.allowed}
            loading={busy(o.rating)}
            aria-label={t('pub.rate.of', { action: label(o.rating), profile })}
            aria-describedby={o.allowed ? undefined : `${id}-why`}
            data-rating={o.rating}
            onClick={() => onRate(o.rating)}
          >
            {label(o.rating)}
          </Button>
        ))}
      </Group>
      {reasons.length > 0 && (
        <Text size="xs" c="dimmed" id={`${id}-why`} data-testid="rating-reasons">
          {reasons.map((r) => t('pub.rate.why', { actions: r.ratings.map(label).join(', '), reason: r.reason })).join(' ')}
        </Text>
      )}
    </>
  );
}
