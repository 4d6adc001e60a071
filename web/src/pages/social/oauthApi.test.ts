import { describe, expect, it } from 'vitest';
import { ApiError } from '../../api/client';
import { connectGrant, readGrant, startOAuth } from './oauthApi';

function fake(status: number, body: unknown) {
  const seen: { url: string; init: RequestInit }[] = [];
  const fetchImpl = (async (url: RequestInfo | URL, init?: RequestInit) => {
    seen.push({ url: String(url), init: init ?? {} });
    return new Response(body === undefined ? '' : JSON.stringify(body), { status });
  }) as typeof fetch;
  return { seen, fetchImpl };
}

const caller = { csrfToken: 'csrf-1', lang: 'ru' };

describe('the OAuth calls', () => {
  it('start with the CSRF token and answer the network’s address', async () => {
    const { seen, fetchImpl } = fake(200, { authorize_url: 'https://oauth.vk.com/authorize?x=1' });
    expect(await startOAuth(caller, 'vk', fetchImpl)).toBe('https://oauth.vk.com/authorize?x=1');
    expect(seen[0]!.url).toBe('/api/v1/social/oauth/vk/start');
    const headers = seen[0]!.init.headers as Record<string, string>;
    expect(headers['X-CSRF-Token']).toBe('csrf-1');
    expect(headers['Accept-Language']).toBe('ru');
    expect(seen[0]!.init.body).toBe('{}');
  });

  it('refuse an address that is not a web page', async () => {
    const { fetchImpl } = fake(200, { authorize_url: 'javascript:alert(1)' });
    await expect(startOAuth(caller, 'vk', fetchImpl)).rejects.toBeInstanceOf(ApiError);
  });

  it('turn a missing flow into an ApiError with its status', async () => {
    const { fetchImpl } = fake(404, { code: 'not_found', message: 'Не найдено' });
    const err = await startOAuth(caller, 'vk', fetchImpl).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(404);
    expect((err as ApiError).message).toBe('Не найдено');
    const { fetchImpl: bare } = fake(501, undefined);
    expect(((await startOAuth(caller, 'vk', bare).catch((e: unknown) => e)) as ApiError).code).toBe('http_501');
  });

  it('read a grant and connect the chosen profiles', async () => {
    const grant = { network: 'vk', profiles: [{ external_id: '1', name: 'A' }] };
    const read = fake(200, grant);
    expect(await readGrant(caller, 'g1', read.fetchImpl)).toEqual(grant);
    expect(read.seen[0]!.url).toBe('/api/v1/social/oauth/grants/g1');
    expect((read.seen[0]!.init.headers as Record<string, string>)['X-CSRF-Token']).toBeUndefined();
    const made = fake(200, { profiles: [{ id: 'p1', name: 'A' }] });
    expect(await connectGrant(caller, 'g1', ['1'], made.fetchImpl)).toEqual({ profiles: [{ id: 'p1', name: 'A' }], failed: [] });
    expect(made.seen[0]!.url).toBe('/api/v1/social/oauth/grants/g1/connect');
    expect(made.seen[0]!.init.body).toBe('{"external_ids":["1"]}');
  });
});
