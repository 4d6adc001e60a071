// What the publishing pages share: the capability matrix, the caller's profiles and the media
// library (loaded once per page), the caller's rights on a profile, network names and icons,
// status badges, and times shown in the user's time zone.
import { Badge } from '@mantine/core';
import {
  IconBrandFacebook,
  IconBrandInstagram,
  IconBrandOkRu,
  IconBrandVk,
  IconBrandX,
  IconBrandYoutube,
  IconWorld,
} from '@tabler/icons-react';
import { useCallback, useEffect, useMemo, useState } from 'react';
import { ok } from '../../api/client';
import type { ChannelRight, Me } from '../../api/types';
import { useApi, useSession } from '../../auth/session';
import { useI18n, type MessageKey, type Translate } from '../../i18n';
import { browserTimeZone } from './calendarMath';
import type { NetworkRow, SocialMedia, SocialProfile } from './content';

export const NETWORK_NAMES: Record<string, string> = {
  vk: 'VK',
  ok: 'OK',
  facebook: 'Facebook',
  instagram: 'Instagram',
  x: 'X',
  youtube: 'YouTube',
  google_plus: 'Google+',
};

export const networkName = (network: string) => NETWORK_NAMES[network] ?? network;

export function NetworkIcon({ network, size = 16 }: { network: string; size?: number }) {
  const Icon =
    {
      vk: IconBrandVk,
      ok: IconBrandOkRu,
      facebook: IconBrandFacebook,
      instagram: IconBrandInstagram,
      x: IconBrandX,
      youtube: IconBrandYoutube,
    }[network] ?? IconWorld;
  return <Icon size={size} aria-hidden="true" />;
}

/** `VK · Name`, as profiles are named across the section. */
export const profileLabel = (p: SocialProfile) => `${networkName(p.network)} · ${p.name}`;

/** The caller's rights on a channel (the owner holds every right). */
export function rightsOn(me: Me | null, channelId: string): Set<ChannelRight> {
  if (me?.role === 'client_owner') return new Set(['read', 'reply', 'publish', 'moderate', 'delete', 'approve', 'analytics']);
  return new Set(me?.channels.find((c) => c.channel_id === channelId)?.rights ?? []);
}

/** Whether the caller holds a right on every one of the channels. */
export function holdsOnAll(me: Me | null, channels: string[], right: ChannelRight): boolean {
  return channels.length > 0 && channels.every((c) => rightsOn(me, c).has(right));
}

export { canSchedule, seesPublishing } from './access';

export interface PublishingData {
  networks: Map<string, NetworkRow>;
  profiles: SocialProfile[];
  media: SocialMedia[];
  mediaById: Map<string, SocialMedia>;
  loading: boolean;
  error: unknown;
  reloadMedia(): Promise<void>;
  addMedia(m: SocialMedia): void;
}

export function usePublishingData(): PublishingData {
  const api = useApi();
  const [networks, setNetworks] = useState<NetworkRow[]>([]);
  const [profiles, setProfiles] = useState<SocialProfile[]>([]);
  const [media, setMedia] = useState<SocialMedia[]>([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);

  const reloadMedia = useCallback(async () => {
    const r = await ok(api.GET('/api/v1/social/media'));
    setMedia(r.items);
  }, [api]);

  useEffect(() => {
    let live = true;
    Promise.all([ok(api.GET('/api/v1/social/networks')), ok(api.GET('/api/v1/social/profiles')), ok(api.GET('/api/v1/social/media'))])
      .then(([n, p, m]) => {
        if (!live) return;
        setNetworks(n);
        setProfiles(p.items);
        setMedia(m.items);
      }, (e) => live && setError(e))
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, [api]);

  return useMemo(
    () => ({
      networks: new Map(networks.map((n) => [n.network, n])),
      profiles,
      media,
      mediaById: new Map(media.map((m) => [m.id, m])),
      loading,
      error,
      reloadMedia,
      addMedia: (m: SocialMedia) => setMedia((all) => [m, ...all.filter((x) => x.id !== m.id)]),
    }),
    [networks, profiles, media, loading, error, reloadMedia],
  );
}

const STATUS_COLORS: Record<string, string> = {
  draft: 'gray',
  awaiting_approval: 'yellow',
  approved: 'teal',
  scheduled: 'blue',
  publishing: 'blue',
  published: 'green',
  failed: 'red',
  deleted: 'gray',
};

export function StatusBadge({ status }: { status: string }) {
  const { t } = useI18n();
  return (
    <Badge color={STATUS_COLORS[status] ?? 'gray'} variant="light" data-testid="post-status">
      {t(`pub.status.${status}` as MessageKey)}
    </Badge>
  );
}

/** The user's time zone (the browser's). */
export function useTimeZone(): string {
  return useMemo(browserTimeZone, []);
}

export function formatWhen(at: string | number, lang: string, timeZone: string): string {
  return new Date(at).toLocaleString(lang === 'ru' ? 'ru-RU' : 'en-GB', {
    timeZone,
    dateStyle: 'medium',
    timeStyle: 'short',
  });
}

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024 * 1024) return `${Math.round(n / 1024 / 1024 / 1024)} GB`;
  if (n >= 1024 * 1024) return `${Math.round(n / 1024 / 1024)} MB`;
  if (n >= 1024) return `${Math.round(n / 1024)} KB`;
  return `${n} B`;
}

/** One problem of a variant, in words. */
export function problemText(t: Translate, p: import('./content').Problem, network: string): string {
  const name = networkName(network);
  switch (p.kind) {
    case 'empty':
      return t('pub.problem.empty');
    case 'text_length':
      return t('pub.problem.text_length', { length: p.length, max: p.max, network: name });
    case 'image_count':
      return t('pub.problem.image_count', { count: p.count, max: p.max, network: name });
    case 'image_type':
      return t('pub.problem.image_type', { file: p.file, network: name });
    case 'image_size':
      return t('pub.problem.image_size', { file: p.file, max: formatBytes(p.max), network: name });
    case 'video_count':
      return t('pub.problem.video_count', { count: p.count, max: p.max, network: name });
    case 'video_with_images':
      return t('pub.problem.video_with_images', { network: name });
    case 'video_type':
      return t('pub.problem.video_type', { file: p.file, network: name });
    case 'video_size':
      return t('pub.problem.video_size', { file: p.file, max: formatBytes(p.max), network: name });
    case 'unsupported':
      return t('pub.problem.unsupported', {
        network: name,
        action: t(`pub.action.${p.action}` as MessageKey),
        reason: p.reason || t('pub.planned'),
      });
    case 'place_needed':
      return t('pub.problem.place_needed', { network: name });
    case 'coordinates_needed':
      return t('pub.problem.coordinates_needed', { network: name });
    case 'bad_place':
      return t('pub.problem.bad_place', { network: name, example: p.example });
  }
}

export function useMe(): Me | null {
  return useSession().me;
}
