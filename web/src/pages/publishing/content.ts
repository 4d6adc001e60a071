// What a post says, per profile: the base content, each profile's variant (the fields it sets
// replace the base's, the rest is inherited until edited), the text a network shows (mentions
// and hashtags appended as the server does), and the checks against each network's limits and
// capabilities from the matrix — the same ones the server makes, so the composer says what is
// wrong before saving.
import type { components } from '../../api/schema';

type S = components['schemas'];
export type NetworkRow = S['NetworkRow'];
export type SocialProfile = S['SocialProfile'];
export type SocialPost = S['SocialPost'];
export type SocialMedia = S['SocialMedia'];
export type PostInput = S['PostInput'];

/**
 * Where a post is: coordinates (VK takes them), a place of the network's own catalogue (its id
 * or the address of its page: Facebook, Instagram and X take only that), or both.
 */
export interface Location {
  latitude?: number;
  longitude?: number;
  place?: string;
}

/** A post's content, or a variant of it: a field left undefined is not set. */
export interface Content {
  text?: string;
  link?: string;
  hashtags?: string[];
  mentions?: string[];
  location?: Location;
  media?: string[];
  /** Who may watch the video where the network has the setting (YouTube). */
  video_privacy?: VideoPrivacy;
}

export type VideoPrivacy = 'public' | 'unlisted' | 'private';
export const VIDEO_PRIVACY: VideoPrivacy[] = ['public', 'unlisted', 'private'];

export type Field = keyof Content;
export const FIELDS: Field[] = ['text', 'link', 'hashtags', 'mentions', 'location', 'media', 'video_privacy'];

/** The network's limits, as the capability matrix gives them. */
export interface Limits {
  max_text_chars: number;
  max_images: number;
  image_types: string[];
  max_image_bytes: number;
  max_videos: number;
  /** Whether a post with a video may carry images too. */
  videos_with_images: boolean;
  video_types: string[];
  max_video_bytes: number;
}

/** Whether a library file is a video (the server's `kind`, or its sniffed type). */
export function isVideo(m: Pick<SocialMedia, 'mime_type'> & { kind?: string }): boolean {
  return m.kind === 'video' || m.mime_type.startsWith('video/');
}

export function limitsOf(row: NetworkRow | undefined): Limits | null {
  const raw = row?.limits as unknown as Partial<Limits> | null | undefined;
  if (!raw || typeof raw.max_text_chars !== 'number') return null;
  return {
    max_text_chars: raw.max_text_chars,
    max_images: raw.max_images ?? 0,
    image_types: raw.image_types ?? [],
    max_image_bytes: raw.max_image_bytes ?? 0,
    max_videos: raw.max_videos ?? 0,
    videos_with_images: raw.videos_with_images ?? false,
    video_types: raw.video_types ?? [],
    max_video_bytes: raw.max_video_bytes ?? 0,
  };
}

/** The content with the fields the variant sets replaced (the server's `with_variant`). */
export function effective(base: Content, variant: Content | undefined): Content {
  if (!variant) return { ...base };
  const out: Content = { ...base };
  for (const f of FIELDS) {
    if (variant[f] !== undefined) (out as Record<Field, unknown>)[f] = variant[f];
  }
  return out;
}

/** The variant with one field set (an edit on that profile's tab). */
export function override<F extends Field>(variant: Content | undefined, field: F, value: Content[F]): Content {
  return { ...(variant ?? {}), [field]: value };
}

/** The variant without its own value for a field: the base's shows again. */
export function inherit(variant: Content | undefined, field: Field): Content | undefined {
  if (!variant) return undefined;
  const out = { ...variant };
  delete out[field];
  return Object.keys(out).length === 0 ? undefined : out;
}

export function isOverridden(variant: Content | undefined, field: Field): boolean {
  return variant?.[field] !== undefined;
}

/** A list typed as words separated by spaces or commas, without leading `#` or `@`. */
export function splitTags(raw: string, prefix: '#' | '@'): string[] {
  return raw
    .split(/[\s,]+/)
    .map((t) => t.trim().replace(prefix === '#' ? /^#+/ : /^@+/, ''))
    .filter((t) => t.length > 0);
}

/** The content as the API takes it: empty fields left out, text trimmed at the end only. */
export function toWire(c: Content): S['PostContent'] {
  const out: S['PostContent'] = {};
  if (c.text !== undefined) out.text = c.text;
  if (c.link !== undefined && c.link.trim() !== '') out.link = c.link.trim();
  if (c.hashtags !== undefined) out.hashtags = c.hashtags;
  if (c.mentions !== undefined) out.mentions = c.mentions;
  if (c.location !== undefined) out.location = c.location;
  if (c.media !== undefined) out.media = c.media;
  if (c.video_privacy !== undefined) out.video_privacy = c.video_privacy;
  return out;
}

export function fromWire(raw: unknown): Content {
  const c = (raw ?? {}) as S['PostContent'];
  const out: Content = {};
  if (c.text != null) out.text = c.text;
  if (c.link != null) out.link = c.link;
  if (c.hashtags != null) out.hashtags = c.hashtags;
  if (c.mentions != null) out.mentions = c.mentions;
  if (c.location != null) out.location = locationFromWire(c.location);
  if (c.media != null) out.media = c.media;
  if (c.video_privacy != null) out.video_privacy = c.video_privacy;
  return out;
}

function locationFromWire(l: S['Location']): Location {
  const out: Location = {};
  if (l.latitude != null) out.latitude = l.latitude;
  if (l.longitude != null) out.longitude = l.longitude;
  if (l.place != null) out.place = l.place;
  return out;
}

/** The request body: the base content, and each chosen profile with its variant when it has one. */
export function postInput(base: Content, profiles: string[], variants: Record<string, Content | undefined>): PostInput {
  return {
    content: toWire(base),
    targets: profiles.map((id) => {
      const v = variants[id];
      return v && Object.keys(v).length > 0 ? { profile_id: id, content: toWire(v) } : { profile_id: id };
    }),
  };
}

/**
 * The text as networks without separate fields show it (the server's `compose_text`): the
 * text, then the mentions and the hashtags not already in it, each group on its own paragraph.
 */
export function composeText(c: Content, mention: (m: string) => string = (m) => `@${m}`): string {
  const raw = c.text ?? '';
  let text = raw.trim().trimEnd();
  const push = (line: string) => {
    if (line === '' || text.includes(line)) return;
    if (text !== '') text += '\n\n';
    text += line;
  };
  push(
    (c.mentions ?? [])
      .map(mention)
      .filter((m) => !raw.includes(m))
      .join(' '),
  );
  push(
    (c.hashtags ?? [])
      .map((t) => `#${t.replace(/^#+/, '')}`)
      .filter((t) => !raw.includes(t))
      .join(' '),
  );
  return text;
}

/** Characters as the server counts them (Unicode scalar values, not UTF-16 units). */
export function charCount(s: string): number {
  return [...s].length;
}

export type Support = { status: 'supported' } | { status: 'planned' | 'unsupported'; reason: string };

/** Whether the network allows an action (a missing row or action is not built yet). */
export function support(row: NetworkRow | undefined, action: string): Support {
  if (!row) return { status: 'planned', reason: '' };
  if (row.connect.status === 'unsupported') return { status: 'unsupported', reason: row.connect.reason ?? '' };
  const a = row.actions.find((x) => x.action === action);
  if (!a) return { status: 'planned', reason: '' };
  if (a.status === 'supported') return { status: 'supported' };
  return { status: a.status === 'unsupported' ? 'unsupported' : 'planned', reason: a.reason ?? '' };
}

/** One thing the network will not take, with what the message needs. */
export type Problem =
  | { kind: 'empty' }
  | { kind: 'text_length'; length: number; max: number }
  | { kind: 'image_count'; count: number; max: number }
  | { kind: 'image_type'; file: string }
  | { kind: 'image_size'; file: string; max: number }
  | { kind: 'video_count'; count: number; max: number }
  | { kind: 'video_with_images' }
  | { kind: 'video_type'; file: string }
  | { kind: 'video_size'; file: string; max: number }
  | { kind: 'unsupported'; action: string; reason: string }
  | { kind: 'place_needed' }
  | { kind: 'coordinates_needed' }
  | { kind: 'bad_place'; example: string };

/** What a place's address looks like on the networks that take places (the server's `place::example`). */
export const PLACE_EXAMPLE: Record<string, string> = {
  facebook: 'https://www.facebook.com/pages/Name/110843418940484',
  instagram: 'https://www.facebook.com/pages/Name/110843418940484',
  x: 'https://x.com/places/5a110d312052166f',
};

const FACEBOOK_HOSTS = ['facebook.com', 'm.facebook.com', 'web.facebook.com', 'business.facebook.com', 'fb.com'];
const X_HOSTS = ['x.com', 'twitter.com', 'mobile.x.com', 'mobile.twitter.com'];

function pastedUrl(pasted: string): URL | null {
  try {
    const url = new URL(pasted.includes('://') ? pasted : `https://${pasted}`);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url : null;
  } catch {
    return null;
  }
}

function hostOf(url: URL): string {
  const host = url.hostname.toLowerCase();
  return host.startsWith('www.') ? host.slice(4) : host;
}

/**
 * The id of a place on `network` out of what was pasted: the bare id or the address of the
 * place's page (the server's `place::place_id`); `null` when it is neither.
 */
export function placeId(network: string, pasted: string): string | null {
  const raw = pasted.trim();
  const isNumber = (s: string) => /^[0-9]{1,20}$/.test(s);
  const isXPlace = (s: string) => /^[0-9a-fA-F]{16}$/.test(s);
  if (network === 'facebook' || network === 'instagram') {
    if (isNumber(raw)) return raw;
    const url = pastedUrl(raw);
    if (!url || !FACEBOOK_HOSTS.includes(hostOf(url))) return null;
    const parts = url.pathname.split('/').filter((p) => p !== '');
    let id: string | null = null;
    if (parts.length === 1 && parts[0] === 'profile.php') id = url.searchParams.get('id');
    else if (parts.length === 1) id = parts[0] ?? null;
    else if (parts.length >= 3 && parts[0] === 'pages') id = parts[parts.length - 1] ?? null;
    return id !== null && isNumber(id) ? id : null;
  }
  if (network === 'x') {
    if (isXPlace(raw)) return raw.toLowerCase();
    const url = pastedUrl(raw);
    if (!url || !X_HOSTS.includes(hostOf(url))) return null;
    const parts = url.pathname.split('/').filter((p) => p !== '');
    const [kind, id] = parts;
    return parts.length === 2 && kind === 'places' && id !== undefined && isXPlace(id) ? id.toLowerCase() : null;
  }
  return null;
}

/** Why `network` cannot take the location (the server's `place::resolve`); `null` when it can. */
export function locationProblem(network: string, location: Location): Problem | null {
  const hasCoordinates = location.latitude !== undefined && location.longitude !== undefined;
  const place = location.place?.trim() ?? '';
  if (network === 'vk') return hasCoordinates ? null : { kind: 'coordinates_needed' };
  if (network in PLACE_EXAMPLE) {
    if (place === '') return { kind: 'place_needed' };
    return placeId(network, place) === null ? { kind: 'bad_place', example: PLACE_EXAMPLE[network] ?? '' } : null;
  }
  return null;
}

/**
 * What the network would refuse in this content, in the order the server checks: the
 * actions the content needs, something to publish, the text's length with mentions and
 * hashtags, the number of images and videos and whether they mix, each file's type and size.
 */
export function problems(c: Content, row: NetworkRow | undefined, media: Map<string, SocialMedia>): Problem[] {
  const out: Problem[] = [];
  const need = (action: string) => {
    const s = support(row, action);
    if (s.status !== 'supported') out.push({ kind: 'unsupported', action, reason: s.reason });
  };
  const text = (c.text ?? '').trim();
  const files = c.media ?? [];
  const chosen = files.map((id) => media.get(id)).filter((m): m is SocialMedia => !!m);
  const videos = chosen.filter(isVideo);
  const images = chosen.filter((m) => !isVideo(m));
  // A network whose posts are videos (YouTube) takes no post without one.
  if (videos.length === 0 || support(row, 'create_post').status === 'supported') need('create_post');
  if (videos.length > 0) need('post_video');
  if (images.length > 0) need('post_images');
  const link = c.link?.trim() ?? '';
  if (text === '' && files.length === 0 && link === '') out.push({ kind: 'empty' });
  if (link !== '') need('post_link');
  if ((c.hashtags ?? []).length > 0) need('post_hashtags');
  if ((c.mentions ?? []).length > 0) need('post_mentions');
  if (c.location) {
    need('post_location');
    if (row && support(row, 'post_location').status === 'supported') {
      const bad = locationProblem(row.network, c.location);
      if (bad) out.push(bad);
    }
  }
  const limits = limitsOf(row);
  if (!limits) return out;
  const length = charCount(composeText({ ...c, text }));
  if (length > limits.max_text_chars) out.push({ kind: 'text_length', length, max: limits.max_text_chars });
  if (images.length > limits.max_images) out.push({ kind: 'image_count', count: images.length, max: limits.max_images });
  if (videos.length > limits.max_videos) out.push({ kind: 'video_count', count: videos.length, max: limits.max_videos });
  if (videos.length > 0 && images.length > 0 && !limits.videos_with_images) out.push({ kind: 'video_with_images' });
  const maxFiles = Math.max(limits.max_images, limits.max_videos);
  if (images.length <= limits.max_images && videos.length <= limits.max_videos && chosen.length > maxFiles) {
    out.push({ kind: 'image_count', count: chosen.length, max: maxFiles });
  }
  for (const m of images) {
    if (!limits.image_types.includes(m.mime_type)) out.push({ kind: 'image_type', file: m.file_name });
    else if (m.size > limits.max_image_bytes) out.push({ kind: 'image_size', file: m.file_name, max: limits.max_image_bytes });
  }
  for (const m of videos) {
    if (!limits.video_types.includes(m.mime_type)) out.push({ kind: 'video_type', file: m.file_name });
    else if (m.size > limits.max_video_bytes) out.push({ kind: 'video_size', file: m.file_name, max: limits.max_video_bytes });
  }
  return out;
}

/** The fields of a post a network may not take: shown disabled there, with the reason. */
export const FIELD_ACTION: Partial<Record<Field, string>> = {
  link: 'post_link',
  hashtags: 'post_hashtags',
  mentions: 'post_mentions',
  location: 'post_location',
  media: 'post_images',
};

/** Posts by the lists the console shows them in. */
export const POST_GROUPS = ['draft', 'awaiting_approval', 'approved', 'scheduled', 'published', 'failed'] as const;
export type PostGroup = (typeof POST_GROUPS)[number];

export function groupOf(status: string): PostGroup | null {
  if (status === 'publishing') return 'scheduled';
  return (POST_GROUPS as readonly string[]).includes(status) ? (status as PostGroup) : null;
}

/** What may be done to a published post as one of its profiles. */
export const RATINGS = ['like', 'unlike', 'dislike', 'undislike'] as const;
export type Rating = (typeof RATINGS)[number];

/** The capability matrix's action each rating is: disliking and taking it back are one. */
const RATING_ACTIONS: Record<Rating, string> = {
  like: 'like_post',
  unlike: 'unlike_post',
  dislike: 'dislike',
  undislike: 'dislike',
};

export interface RatingOffer {
  rating: Rating;
  /** Whether the profile's network allows it. */
  allowed: boolean;
  /** Why not, in the network's words (null while the matrix is unknown). */
  reason: string | null;
}

/** Each rating of a post on a profile of the network whose matrix row is `row`. */
export function ratingOffers(row: NetworkRow | undefined): RatingOffer[] {
  return RATINGS.map((rating) => {
    const support = row?.actions.find((a) => a.action === RATING_ACTIONS[rating]);
    const allowed = support?.status === 'supported';
    return { rating, allowed, reason: allowed ? null : (support?.reason ?? null) };
  });
}

/** The reasons of the ratings a network forbids, each once, with the ratings it covers. */
export function ratingReasons(offers: RatingOffer[]): { ratings: Rating[]; reason: string }[] {
  const reasons: { ratings: Rating[]; reason: string }[] = [];
  for (const o of offers) {
    if (o.allowed || !o.reason) continue;
    const same = reasons.find((r) => r.reason === o.reason);
    if (same) same.ratings.push(o.rating);
    else reasons.push({ ratings: [o.rating], reason: o.reason });
  }
  return reasons;
}

/** What the caller may do with a post in its status, given their rights on its profiles. */
export function postActions(status: string, can: { publish: boolean; approve: boolean; delete: boolean }) {
  return {
    edit: can.publish && status === 'draft',
    submit: can.publish && status === 'draft',
    approve: can.approve && status === 'awaiting_approval',
    reject: can.approve && status === 'awaiting_approval',
    schedule: can.publish && (status === 'approved' || status === 'scheduled'),
    unschedule: can.publish && status === 'scheduled',
    publish: can.publish && (status === 'approved' || status === 'scheduled'),
    retry: can.publish && status === 'failed',
    delete: can.delete && ['draft', 'awaiting_approval', 'approved', 'failed'].includes(status),
  };
}
