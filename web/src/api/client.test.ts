import { describe, expect, it } from 'vitest';
import { ApiError, makeApi, ok, type Session } from './client';

function recorder(status = 200, body: unknown = {}) {
  const seen: Request[] = [];
  const fetchImpl = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = input instanceof Request ? input : new Request(input, init);
    seen.push(req);
    return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  }) as typeof fetch;
  return { seen, fetchImpl };
}

function session(overrides: Partial<Session> = {}): Session & { expiredCalls: number } {
  const s = {
    csrfToken: 'csrf-1',
    lang: 'ru',
    expiredCalls: 0,
    onExpired() {
      s.expiredCalls += 1;
    },
    ...overrides,
  };
  return s;
}

// openapi-fetch resolves paths against the base URL; a Request needs an absolute one in Node.
const base = 'https://console.example';

describe('the API client', () => {
  it('sends the CSRF token on unsafe requests only, and the language on all', async () => {
    const { seen, fetchImpl } = recorder();
    const api = makeApi(session(), fetchImpl);
    await api.GET('/api/v1/channels', { baseUrl: base });
    await api.POST('/api/v1/auth/logout', { baseUrl: base });
    expect(seen[0]!.headers.get('x-csrf-token')).toBeNull();
    expect(seen[1]!.headers.get('x-csrf-token')).toBe('csrf-1');
    expect(seen.map((r) => r.headers.get('accept-language'))).toEqual(['ru', 'ru']);
  });

  it('reports a lost session on 401, but not for a wrong password', async () => {
    const { fetchImpl } = recorder(401, { code: 'unauthenticated', message: 'sign in' });
    const s = session();
    const api = makeApi(s, fetchImpl);
    await api.GET('/api/v1/auth/me', { baseUrl: base });
    expect(s.expiredCalls).toBe(1);
    await api.POST('/api/v1/auth/login', { baseUrl: base, body: { email: 'a@b.c', password: 'x' } });
    expect(s.expiredCalls).toBe(1);
  });

  it('turns error bodies into ApiErrors with the stable code', async () => {
    const { fetchImpl } = recorder(409, { code: 'conflict', message: 'Конфликт', request_id: 'r1' });
    const api = makeApi(session(), fetchImpl);
    const failure = ok(api.GET('/api/v1/channels', { baseUrl: base }));
    await expect(failure).rejects.toBeInstanceOf(ApiError);
    await expect(failure).rejects.toMatchObject({ status: 409, code: 'conflict', message: 'Конфликт', requestId: 'r1' });
  });

  it('returns the data of a successful answer', async () => {
    const { fetchImpl } = recorder(200, { items: [] });
    const api = makeApi(session(), fetchImpl);
    await expect(ok(api.GET('/api/v1/channels', { baseUrl: base }))).resolves.toEqual({ items: [] });
  });
});
