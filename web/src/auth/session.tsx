// Who is signed in, and the one API client everything shares. The client's CSRF token and
// language live in a mutable holder so requests always carry the current ones; a 401 on a
// signed-in request marks the session expired, and the router sends the user to sign in
// (drafts are kept: see lib/drafts.ts).
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { makeApi, ok, type Api, type Session as ApiSession } from '../api/client';
import type { Me, Profile } from '../api/types';
import { useI18n } from '../i18n';

export type SessionStatus = 'loading' | 'signed-out' | 'signed-in';

export interface SessionContext {
  status: SessionStatus;
  /** True after a signed-in request found the session gone (expired, signed out elsewhere). */
  expired: boolean;
  me: Me | null;
  profile: Profile | null;
  api: Api;
  signIn(email: string, password: string, totpCode?: string): Promise<void>;
  signOut(): Promise<void>;
  reload(): Promise<void>;
}

const Context = createContext<SessionContext | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const { lang } = useI18n();
  const [status, setStatus] = useState<SessionStatus>('loading');
  const [expired, setExpired] = useState(false);
  const [me, setMe] = useState<Me | null>(null);
  const [profile, setProfile] = useState<Profile | null>(null);
  const holder = useRef<ApiSession>({ csrfToken: null, lang, onExpired: () => {} });
  holder.current.lang = lang;
  const api = useMemo(() => makeApi(holder.current), []);

  const forget = useCallback(() => {
    holder.current.csrfToken = null;
    setMe(null);
    setProfile(null);
    setStatus('signed-out');
  }, []);

  holder.current.onExpired = () => {
    if (holder.current.csrfToken === null) return;
    forget();
    setExpired(true);
  };

  const reload = useCallback(async () => {
    const answer = await api.GET('/api/v1/auth/me');
    if (!answer.response.ok || !answer.data) {
      forget();
      return;
    }
    holder.current.csrfToken = answer.data.csrf_token ?? null;
    const p = await ok(api.GET('/api/v1/auth/profile'));
    setMe(answer.data);
    setProfile(p);
    setStatus('signed-in');
  }, [api, forget]);

  useEffect(() => {
    reload().catch(forget);
  }, [reload, forget]);

  const signIn = useCallback(
    async (email: string, password: string, totpCode?: string) => {
      const body = totpCode ? { email, password, totp_code: totpCode } : { email, password };
      const answer = await ok(api.POST('/api/v1/auth/login', { body }));
      holder.current.csrfToken = answer.csrf_token;
      setExpired(false);
      await reload();
    },
    [api, reload],
  );

  const signOut = useCallback(async () => {
    try {
      await api.POST('/api/v1/auth/logout');
    } finally {
      forget();
    }
  }, [api, forget]);

  const value = useMemo<SessionContext>(
    () => ({ status, expired, me, profile, api, signIn, signOut, reload }),
    [status, expired, me, profile, api, signIn, signOut, reload],
  );
  return <Context.Provider value={value}>{children}</Context.Provider>;
}

export function useSession(): SessionContext {
  const ctx = useContext(Context);
  if (!ctx) throw new Error('useSession outside SessionProvider');
  return ctx;
}

export function useApi(): Api {
  return useSession().api;
}

export type Role = Me['role'];
export const isPlatformStaff = (role: Role | undefined) => role === 'platform_owner' || role === 'platform_moderator';

/** Whether the signed-in user may manage the client's workspace in some part. */
export function workspaceSections(me: Me | null) {
  const owner = me?.role === 'client_owner';
  const rights = new Set(me?.global_rights ?? []);
  return {
    employees: owner || rights.has('manage_employees'),
    settings: owner || rights.has('manage_settings'),
    audit: owner || rights.has('analytics'),
  };
}
