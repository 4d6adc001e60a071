import { describe, expect, it } from 'vitest';
import { format, type MessageKey } from '../../i18n';
import { en } from '../../i18n/en';
import { ru } from '../../i18n/ru';
import {
  acceptedMedia,
  canCancel,
  canRetry,
  connectOffer,
  connectReturn,
  draftOf,
  EMPTY_DRAFT,
  formatBytes,
  hashtagOf,
  networkName,
  notificationText,
  oauthErrorText,
  oauthMissing,
  offersOAuth,
  taskKindText,
  triggerActionBlocked,
  triggerInput,
  unreadCount,
  validExternalId,
  withNotification,
  type NetworkRow,
  type Notification,
  type Trigger,
} from './logic';

const tEn = (key: MessageKey, vars?: Record<string, string | number>) => format(en[key], vars);
const tRu = (key: MessageKey, vars?: Record<string, string | number>) => format(ru[key], vars);

function row(network: string, status: string, reason: string | null = null, extra: object = {}): NetworkRow {
  return { network, connect: { action: 'connect', status, reason }, comments: 'webhook', actions: [], limits: null, oauth: true, ...extra } as NetworkRow;
}

describe('connecting a network', () => {
  it('follows the matrix: token where supported, a reason where not', () => {
    expect(connectOffer(row('vk', 'supported'))).toEqual({ kind: 'token' });
    expect(connectOffer(row('ok', 'planned', 'not built yet'))).toEqual({ kind: 'planned', reason: 'not built yet' });
    expect(connectOffer(row('google_plus', 'unsupported', 'shut down in 2019'))).toEqual({ kind: 'dead', reason: 'shut down in 2019' });
  });

  it('offers OAuth only on connectable networks the server has not refused or said are unconfigured', () => {
    const none = new Set<string>();
    expect(offersOAuth(row('vk', 'supported'), none)).toBe(true);
    expect(offersOAuth(row('vk', 'supported'), new Set(['vk']))).toBe(false);
    expect(offersOAuth(row('google_plus', 'unsupported'), none)).toBe(false);
    expect(offersOAuth(row('vk', 'supported', null, { oauth: false }), none)).toBe(false);
    expect([404, 501, 400, 503].map(oauthMissing)).toEqual([true, true, false, false]);
  });

  it('reads what the network’s redirect brought back', () => {
    expect(connectReturn('?grant=abc-123_X')).toEqual({ kind: 'grant', grant: 'abc-123_X' });
    expect(connectReturn('?error=access_denied&grant=x')).toEqual({ kind: 'error', code: 'access_denied', detail: null });
    expect(connectReturn('?error=refused&detail=invalid_grant%20code%20used')).toEqual({
      kind: 'error',
      code: 'refused',
      detail: 'invalid_grant code used',
    });
    const sealed = 'A'.repeat(700);
    expect(connectReturn(`?grant=${sealed}`)).toEqual({ kind: 'grant', grant: sealed });
    expect(connectReturn('?grant=../../etc')).toEqual({ kind: 'none' });
    expect(connectReturn('')).toEqual({ kind: 'none' });
  });

  it('says OAuth errors in the user’s language', () => {
    expect(oauthErrorText('access_denied', tEn)).toMatch(/did not allow/);
    expect(oauthErrorText('access_denied', tRu)).toMatch(/не разрешили/);
    expect(oauthErrorText('invalid_state', tEn)).toMatch(/expired/);
    expect(oauthErrorText('refused', tEn)).toMatch(/refused/);
    expect(oauthErrorText('weird', tEn)).toMatch(/\(weird\)/);
  });

  it('checks community ids and names networks', () => {
    expect(validExternalId('123456')).toBe(true);
    expect(validExternalId(' club_1 ')).toBe(true);
    expect(validExternalId('12 34')).toBe(false);
    expect(validExternalId('')).toBe(false);
    expect(networkName('google_plus', tEn)).toBe('Google+');
    expect(networkName('vk', tRu)).toBe('ВКонтакте');
    expect(networkName('myspace', tEn)).toBe('myspace');
  });
});

describe('the media library', () => {
  it('formats sizes in the user’s language', () => {
    expect(formatBytes(512, 'en')).toBe('512 B');
    expect(formatBytes(1536, 'en')).toBe('1.5 KB');
    expect(formatBytes(5 * 1024 * 1024, 'ru')).toBe('5 МБ');
    expect(formatBytes(1536, 'ru')).toBe('1,5 КБ');
  });

  it('takes the images networks take, by type or by extension when the type is missing', () => {
    expect(acceptedMedia({ type: 'image/png', name: 'a.png' })).toBe(true);
    expect(acceptedMedia({ type: '', name: 'a.JPG' })).toBe(true);
    expect(acceptedMedia({ type: 'application/pdf', name: 'a.pdf' })).toBe(false);
    expect(acceptedMedia({ type: 'image/svg+xml', name: 'a.svg' })).toBe(false);
  });
});

describe('a trigger’s form', () => {
  it('normalises hashtags and refuses what is not one', () => {
    expect(hashtagOf('sale')).toBe('#sale');
    expect(hashtagOf(' #Скидка_1 ')).toBe('#Скидка_1');
    expect(hashtagOf('#two words')).toBeNull();
    expect(hashtagOf('#')).toBeNull();
  });

  it('builds the API’s input, or says which fields are wrong', () => {
    expect(triggerInput(EMPTY_DRAFT)).toEqual({ errors: { name: 'form.required', value: 'form.required' } });
    expect(triggerInput({ ...EMPTY_DRAFT, name: 'x', value: 'a b' })).toEqual({ errors: { value: 'triggers.hashtagInvalid' } });
    expect(triggerInput({ ...EMPTY_DRAFT, name: 'x', value: 'sale', action: 'reply' })).toEqual({ errors: { template: 'form.required' } });
    expect(triggerInput({ ...EMPTY_DRAFT, name: 'x', value: 'sale', action: 'notify' })).toEqual({ errors: { userId: 'form.required' } });
    expect(triggerInput({ ...EMPTY_DRAFT, name: ' Sale ', value: 'sale', action: 'like' })).toEqual({
      input: { name: 'Sale', condition: { kind: 'hashtag', hashtag: '#sale' }, action: { kind: 'like' }, enabled: true, profile_id: null },
    });
    expect(
      triggerInput({ ...EMPTY_DRAFT, name: 'VIP', condition: 'author', value: ' 42 ', profileId: 'p1', action: 'reply', template: 'Hi {{author.name}}', enabled: false }),
    ).toEqual({
      input: { name: 'VIP', condition: { kind: 'author', author_id: '42' }, action: { kind: 'reply', template: 'Hi {{author.name}}' }, enabled: false, profile_id: 'p1' },
    });
  });

  it('dislikes where the chosen profile’s network has dislikes, and says why not elsewhere', () => {
    expect(triggerInput({ ...EMPTY_DRAFT, name: 'Ads', value: 'ads', action: 'dislike' })).toEqual({
      input: { name: 'Ads', condition: { kind: 'hashtag', hashtag: '#ads' }, action: { kind: 'dislike' }, enabled: true, profile_id: null },
    });
    const row = (network: string, status: 'supported' | 'unsupported', reason?: string): NetworkRow => ({
      network,
      oauth: false,
      comments: 'webhook',
      connect: { action: 'connect', status: 'supported' },
      actions: [{ action: 'dislike', status, reason }],
    });
    expect(triggerActionBlocked('dislike', row('youtube', 'supported'))).toBeNull();
    expect(triggerActionBlocked('dislike', row('vk', 'unsupported', 'VK has no dislikes'))).toBe('VK has no dislikes');
    expect(triggerActionBlocked('like', row('vk', 'unsupported', 'VK has no dislikes'))).toBeNull();
    // Any profile, or the matrix not loaded yet: the server decides.
    expect(triggerActionBlocked('dislike', undefined)).toBeNull();
    expect(taskKindText('social.undislike', tEn)).toBe('Take back a dislike');
  });

  it('turns a stored trigger back into the same input', () => {
    const stored: Trigger = {
      id: 't1',
      client_id: 'c1',
      name: 'Notify',
      condition: { kind: 'author', author_id: '7' },
      action: { kind: 'notify', user_id: 'u1' },
      enabled: true,
      profile_id: 'p1',
      created_at: '2026-11-28T00:00:00Z',
    };
    const made = triggerInput({ ...draftOf(stored), enabled: false });
    expect(made).toEqual({
      input: { name: 'Notify', condition: { kind: 'author', author_id: '7' }, action: { kind: 'notify', user_id: 'u1' }, enabled: false, profile_id: 'p1' },
    });
  });
});

describe('tasks and notifications', () => {
  it('offers retry and cancel as the server allows them', () => {
    expect(['failed', 'skipped', 'pending', 'done'].map((status) => canRetry({ status } as never))).toEqual([true, true, false, false]);
    expect(['failed', 'pending', 'running', 'cancelled'].map((status) => canCancel({ status } as never))).toEqual([true, true, false, false]);
    expect(taskKindText('social.publish', tRu)).toBe('Публикация поста');
    expect(taskKindText('conversation.unsnooze', tEn)).toBe('conversation.unsnooze');
  });

  const n = (id: string, at: string, read_at: string | null = null): Notification => ({
    id,
    client_id: 'c',
    user_id: 'u',
    kind: 'trigger',
    payload: { trigger_name: 'VIP', item: { author_name: 'Анна', network: 'vk', text: 'hello' } } as unknown as Notification['payload'],
    created_at: at,
    read_at,
  });

  it('counts what came after the bell was last opened', () => {
    const items = [n('a', '2026-11-28T10:00:00Z'), n('b', '2026-11-28T11:00:00Z'), n('c', '2026-11-28T12:00:00Z', '2026-11-28T12:01:00Z')];
    expect(unreadCount(items, 0)).toBe(2);
    expect(unreadCount(items, Date.parse('2026-11-28T10:30:00Z'))).toBe(1);
  });

  it('keeps each pushed notification once, newest first', () => {
    let list: Notification[] = [];
    list = withNotification(list, n('a', '2026-11-28T10:00:00Z'));
    list = withNotification(list, n('b', '2026-11-28T11:00:00Z'));
    list = withNotification(list, n('a', '2026-11-28T10:00:00Z'));
    expect(list.map((x) => x.id)).toEqual(['b', 'a']);
    expect(withNotification(list, n('c', '2026-11-28T12:00:00Z'), 2).map((x) => x.id)).toEqual(['c', 'b']);
  });

  it('says what a trigger’s notification is about', () => {
    expect(notificationText(n('a', '2026-11-28T10:00:00Z'), tEn)).toBe('VIP: Анна on VK');
    expect(notificationText({ kind: 'other', payload: {} }, tRu)).toBe('Уведомление: other');
  });
});
