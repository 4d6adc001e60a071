// Connecting profiles through a network's OAuth: start (the server answers the network's
// authorization address), read the grant the network's redirect left (the profiles the person
// manages there) and connect the chosen ones. These calls go through plain fetch with the
// session's CSRF token and language, since the OpenAPI document the client is typed from may
// not list them yet.
import { ApiError } from '../../api/client';
import type { SocialProfile } from './logic';

export interface Caller {
  csrfToken: string | null | undefined;
  lang: string;
}

export interface GrantProfile {
  external_id: string;
  name: string;
}

export interface Grant {
  network: string;
  profiles: GrantProfile[];
}

async function call<T>(caller: Caller, method: 'GET' | 'POST', path: string, body?: unknown, fetchImpl: typeof fetch = fetch): Promise<T> {
  const headers: Record<string, string> = { 'Accept-Language': caller.lang, Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && caller.csrfToken) headers['X-CSRF-Token'] = caller.csrfToken;
  const response = await fetchImpl(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data: unknown = undefined;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (!response.ok) {
    const e = (data ?? {}) as { code?: unknown; message?: unknown; request_id?: unknown; detail?: unknown };
    throw new ApiError(
      response.status,
      typeof e.code === 'string' ? e.code : `http_${response.status}`,
      typeof e.message === 'string' ? e.message : '',
      typeof e.request_id === 'string' ? e.request_id : undefined,
      typeof e.detail === 'string' ? e.detail : undefined,
    );
  }
  return data as T;
}

/** The network's authorization address to send the browser to. */
export async function startOAuth(caller: Caller, network: string, fetchImpl?: typeof fetch): Promise<string> {
  const answer = await call<{ authorize_url?: unknown }>(caller, 'POST', `/api/v1/social/oauth/${encodeURIComponent(network)}/start`, {}, fetchImpl);
  const url = typeof answer?.authorize_url === 'string' ? answer.authorize_url : '';
  // Only a web address: never a javascript: or data: one.
  if (!/^https?:\/\//i.test(url)) throw new ApiError(502, 'bad_authorize_url', '');
  return url;
}

export function readGrant(caller: Caller, grant: string, fetchImpl?: typeof fetch): Promise<Grant> {
  return call<Grant>(caller, 'GET', `/api/v1/social/oauth/grants/${encodeURIComponent(grant)}`, undefined, fetchImpl);
}

/** What connecting answered: the profiles connected, and those refused with the reason. */
export interface Connected {
  profiles: SocialProfile[];
  failed: { external_id: string; message: string }[];
}

export async function connectGrant(caller: Caller, grant: string, externalIds: string[], fetchImpl?: typeof fetch): Promise<Connected> {
  const answer = await call<Partial<Connected>>(
    caller,
    'POST',
    `/api/v1/social/oauth/grants/${encodeURIComponent(grant)}/connect`,
    { external_ids: externalIds },
    fetchImpl,
  );
  return { profiles: answer?.profiles ?? [], failed: answer?.failed ?? [] };
}
