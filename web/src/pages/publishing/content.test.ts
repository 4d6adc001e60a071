import { describe, expect, it } from 'vitest';
import {
  composeText,
  effective,
  fromWire,
  groupOf,
  inherit,
  isOverridden,
  locationProblem,
  override,
  placeId,
  postActions,
  postInput,
  problems,
  ratingOffers,
  ratingReasons,
  splitTags,
  support,
  type NetworkRow,
  type SocialMedia,
} from './content';

const vk: NetworkRow = {
  network: 'vk',
  oauth: false,
  comments: 'webhook',
  connect: { action: 'connect', status: 'supported' },
  limits: {
    max_text_chars: 20,
    max_images: 2,
    image_types: ['image/jpeg', 'image/png'],
    max_image_bytes: 1000,
    max_videos: 2,
    videos_with_images: true,
    video_types: ['video/mp4'],
    max_video_bytes: 1000,
  } as never,
  actions: [
    { action: 'create_post', status: 'supported' },
    { action: 'post_images', status: 'supported' },
    { action: 'post_link', status: 'supported' },
    { action: 'post_hashtags', status: 'supported' },
    { action: 'post_mentions', status: 'supported' },
    { action: 'post_location', status: 'supported' },
    { action: 'post_video', status: 'planned', reason: 'not built yet' },
  ],
};
const x: NetworkRow = { ...vk, network: 'x' };
const facebook: NetworkRow = { ...vk, network: 'facebook' };
const xWithoutPlaces: NetworkRow = {
  ...vk,
  network: 'x',
  actions: [...vk.actions.filter((a) => a.action !== 'post_location'), { action: 'post_location', status: 'unsupported', reason: 'X takes no place ids from apps' }],
};
const youtube: NetworkRow = {
  ...vk,
  network: 'youtube',
  limits: { ...(vk.limits as object), max_images: 0, image_types: [], max_videos: 1, videos_with_images: false, video_types: ['video/mp4', 'video/webm'] } as never,
  actions: [
    { action: 'create_post', status: 'unsupported', reason: 'posts are videos' },
    { action: 'post_images', status: 'unsupported', reason: 'videos only' },
    { action: 'post_video', status: 'supported' },
    { action: 'post_link', status: 'supported' },
    { action: 'post_hashtags', status: 'supported' },
  ],
};
const gplus: NetworkRow = { network: 'google_plus', oauth: false, comments: 'none', connect: { action: 'connect', status: 'unsupported', reason: 'shut down in 2019' }, actions: [] };

const file = (id: string, mime: string, size = 10): SocialMedia => ({
  id,
  mime_type: mime,
  kind: mime.startsWith('video/') ? 'video' : 'image',
  size,
  file_name: `${id}.bin`,
  created_at: '',
});
const media = new Map(
  [file('a', 'image/jpeg'), file('b', 'image/png', 5000), file('c', 'image/gif'), file('v', 'video/mp4'), file('w', 'video/webm'), file('big', 'video/mp4', 5000)].map((m) => [m.id, m]),
);

describe('variants', () => {
  it('inherit every field the variant does not set', () => {
    const base = { text: 'Hello', hashtags: ['sale'], link: 'https://a.example' };
    expect(effective(base, undefined)).toEqual(base);
    const v = override(undefined, 'text', 'Привет, VK');
    expect(effective(base, v)).toEqual({ text: 'Привет, VK', hashtags: ['sale'], link: 'https://a.example' });
    // The base text changes later: the edited variant keeps its own, others follow.
    const later = { ...base, text: 'Hello again' };
    expect(effective(later, v).text).toBe('Привет, VK');
    expect(effective(later, undefined).text).toBe('Hello again');
  });

  it('can set a field to empty and then inherit it again', () => {
    const base = { text: 'x', hashtags: ['a', 'b'] };
    let v = override(undefined, 'hashtags', []);
    expect(effective(base, v).hashtags).toEqual([]);
    expect(isOverridden(v, 'hashtags')).toBe(true);
    v = inherit(v, 'hashtags') ?? {};
    expect(isOverridden(v, 'hashtags')).toBe(false);
    expect(effective(base, v).hashtags).toEqual(['a', 'b']);
    expect(inherit(override(undefined, 'text', 'y'), 'text')).toBeUndefined();
  });

  it('sends only the variants that differ', () => {
    const input = postInput({ text: 'Hi', link: '  ' }, ['p1', 'p2', 'p3'], { p2: { text: 'Hi p2', hashtags: [] }, p3: {} });
    expect(input).toEqual({
      content: { text: 'Hi' },
      targets: [{ profile_id: 'p1' }, { profile_id: 'p2', content: { text: 'Hi p2', hashtags: [] } }, { profile_id: 'p3' }],
    });
    expect(fromWire({ text: 'a', link: null, hashtags: ['x'] })).toEqual({ text: 'a', hashtags: ['x'] });
  });

  it('reads tags typed with or without # and @', () => {
    expect(splitTags('#sale, #новинка  winter', '#')).toEqual(['sale', 'новинка', 'winter']);
    expect(splitTags('@durov id1', '@')).toEqual(['durov', 'id1']);
  });
});

describe('the text a network shows', () => {
  it('appends mentions and hashtags not already in the text', () => {
    expect(composeText({ text: 'Sale today ', hashtags: ['sale', 'winter'], mentions: ['shop'] })).toBe('Sale today\n\n@shop\n\n#sale #winter');
    expect(composeText({ text: 'Our #sale', hashtags: ['sale'] })).toBe('Our #sale');
    expect(composeText({ hashtags: ['a'] })).toBe('#a');
  });
});

describe('limits', () => {
  it('count hashtags and mentions in the length', () => {
    expect(problems({ text: '12345678901234' }, vk, media)).toEqual([]);
    expect(problems({ text: '12345678901234', hashtags: ['abcd'] }, vk, media)).toEqual([{ kind: 'text_length', length: 21, max: 20 }]);
    // Characters, not UTF-16 units: 20 emoji fit.
    expect(problems({ text: '😀'.repeat(20) }, vk, media)).toEqual([]);
  });

  it('check the number, type and size of files', () => {
    expect(problems({ media: ['a', 'b', 'c'] }, vk, media)).toEqual([
      { kind: 'image_count', count: 3, max: 2 },
      { kind: 'image_size', file: 'b.bin', max: 1000 },
      { kind: 'image_type', file: 'c.bin' },
    ]);
    expect(problems({ media: ['v'] }, x, media)).toEqual([{ kind: 'unsupported', action: 'post_video', reason: 'not built yet' }]);
  });

  it('know each network\'s video rules: count, mixing, type and size', () => {
    const vkVideos: NetworkRow = { ...vk, actions: vk.actions.map((a) => (a.action === 'post_video' ? { action: 'post_video', status: 'supported' } : a)) };
    expect(problems({ media: ['a', 'v'] }, vkVideos, media)).toEqual([]);
    expect(problems({ media: ['w', 'big'] }, vkVideos, media)).toEqual([
      { kind: 'video_type', file: 'w.bin' },
      { kind: 'video_size', file: 'big.bin', max: 1000 },
    ]);
    // YouTube: a video alone makes a post; text alone does not; two videos or an image do not.
    expect(problems({ text: 'Title', media: ['w'], video_privacy: 'unlisted' }, youtube, media)).toEqual([]);
    expect(problems({ text: 'Title' }, youtube, media)).toEqual([{ kind: 'unsupported', action: 'create_post', reason: 'posts are videos' }]);
    expect(problems({ media: ['v', 'w'] }, youtube, media)).toEqual([{ kind: 'video_count', count: 2, max: 1 }]);
    expect(problems({ media: ['v', 'a'] }, youtube, media)).toEqual([
      { kind: 'unsupported', action: 'post_images', reason: 'videos only' },
      { kind: 'image_count', count: 1, max: 0 },
      { kind: 'video_with_images' },
      { kind: 'image_type', file: 'a.bin' },
    ]);
  });

  it('refuse an empty post and what the network does not allow, with its reason', () => {
    expect(problems({ text: '  ' }, vk, media)).toEqual([{ kind: 'empty' }]);
    expect(problems({ text: 'x', location: { latitude: 55.75, longitude: 37.61 } }, xWithoutPlaces, media)).toEqual([
      { kind: 'unsupported', action: 'post_location', reason: 'X takes no place ids from apps' },
    ]);
    expect(support(gplus, 'create_post')).toEqual({ status: 'unsupported', reason: 'shut down in 2019' });
    expect(support(vk, 'edit_post')).toEqual({ status: 'planned', reason: '' });
  });
});

describe('places', () => {
  it('are read out of the addresses of their pages', () => {
    for (const pasted of [
      '110843418940484',
      'https://www.facebook.com/110843418940484/',
      'facebook.com/pages/Cafe-Pushkin/110843418940484',
      'https://m.facebook.com/pages/Restaurant/Cafe-Pushkin/110843418940484?ref=br',
      'https://www.facebook.com/profile.php?id=110843418940484',
    ])
      expect(placeId('facebook', pasted)).toBe('110843418940484');
    for (const pasted of ['https://www.facebook.com/cafe.pushkin', 'https://evil.example/110843418940484', 'https://www.instagram.com/explore/locations/213131048/berlin/'])
      expect(placeId('instagram', pasted)).toBeNull();
    expect(placeId('x', 'https://x.com/places/5A110D312052166F')).toBe('5a110d312052166f');
    expect(placeId('x', 'https://twitter.com/places/5a110d312052166f/')).toBe('5a110d312052166f');
    expect(placeId('x', '110843418940484')).toBeNull();
    expect(placeId('vk', '110843418940484')).toBeNull();
  });

  it('go to each network as it takes them, checked before saving', () => {
    const moscow = { latitude: 55.75, longitude: 37.61 };
    expect(locationProblem('vk', moscow)).toBeNull();
    expect(locationProblem('vk', { place: '110843418940484' })).toEqual({ kind: 'coordinates_needed' });
    expect(locationProblem('facebook', { ...moscow, place: 'https://www.facebook.com/110843418940484' })).toBeNull();
    expect(problems({ text: 'x', location: moscow }, facebook, media)).toEqual([{ kind: 'place_needed' }]);
    expect(problems({ text: 'x', location: { place: 'https://www.facebook.com/110843418940484' } }, x, media)).toEqual([
      { kind: 'bad_place', example: 'https://x.com/places/5a110d312052166f' },
    ]);
    expect(problems({ text: 'x', location: { place: 'x.com/places/5a110d312052166f' } }, x, media)).toEqual([]);
  });
});

describe('the approval flow', () => {
  it('offers each step to whoever holds its right', () => {
    const writer = { publish: true, approve: false, delete: false };
    const approver = { publish: false, approve: true, delete: false };
    expect(postActions('draft', writer)).toMatchObject({ edit: true, submit: true, approve: false });
    expect(postActions('awaiting_approval', writer)).toMatchObject({ approve: false, edit: false });
    expect(postActions('awaiting_approval', approver)).toMatchObject({ approve: true, reject: true });
    expect(postActions('approved', writer)).toMatchObject({ schedule: true, publish: true, unschedule: false });
    expect(postActions('scheduled', writer)).toMatchObject({ schedule: true, unschedule: true });
    expect(postActions('failed', writer)).toMatchObject({ retry: true });
    expect(groupOf('publishing')).toBe('scheduled');
    expect(groupOf('deleted')).toBeNull();
  });
});

describe('rating a published post', () => {
  const rated = (row: NetworkRow, ratings: { action: string; status: 'supported' | 'planned' | 'unsupported'; reason?: string }[]): NetworkRow => ({
    ...row,
    actions: [...row.actions, ...ratings],
  });
  const tube = rated(youtube, [
    { action: 'like_post', status: 'supported' },
    { action: 'unlike_post', status: 'supported' },
    { action: 'dislike', status: 'supported' },
  ]);
  const ok = rated({ ...vk, network: 'ok' }, [
    { action: 'like_post', status: 'supported' },
    { action: 'unlike_post', status: 'unsupported', reason: "OK's API has no call to take a like back" },
    { action: 'dislike', status: 'unsupported', reason: 'OK has no dislikes' },
  ]);

  it('offers a dislike and taking it back where the network has dislikes', () => {
    expect(ratingOffers(tube).map((o) => [o.rating, o.allowed])).toEqual([
      ['like', true],
      ['unlike', true],
      ['dislike', true],
      ['undislike', true],
    ]);
    expect(ratingReasons(ratingOffers(tube))).toEqual([]);
  });

  it('disables what the network forbids, with its reason once per reason', () => {
    const offers = ratingOffers(ok);
    expect(offers.filter((o) => o.allowed).map((o) => o.rating)).toEqual(['like']);
    expect(ratingReasons(offers)).toEqual([
      { ratings: ['unlike'], reason: "OK's API has no call to take a like back" },
      { ratings: ['dislike', 'undislike'], reason: 'OK has no dislikes' },
    ]);
  });

  it('offers nothing while the matrix is unknown', () => {
    expect(ratingOffers(undefined).every((o) => !o.allowed && o.reason === null)).toBe(true);
    expect(ratingReasons(ratingOffers(undefined))).toEqual([]);
  });
});
