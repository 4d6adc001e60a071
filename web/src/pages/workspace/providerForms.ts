// What connecting a provider asks for: settings (stored as they are) and credentials (write-only
// secrets), with their validation, which follows what each connector accepts (token formats,
// secret alphabets, host names and ports). Providers without a form here (their connectors are
// still being written) are connected with the generic form: settings and credentials as JSON.
import type { Provider } from '../../api/types';

export interface FieldSpec {
  key: string;
  /** i18n key of the label. */
  label: string;
  secret?: boolean;
  required?: boolean;
  kind?: 'url' | 'text' | 'email' | 'number' | 'host' | 'port' | 'choice' | 'toggle';
  /** Offer to generate a random value (shared secrets the other side must be told). */
  generate?: boolean;
  /** The whole value must match; `problem` (an i18n key) says what is expected. */
  pattern?: RegExp;
  problem?: string;
  /** `choice`: the allowed values (i18n keys `choice.<value>`), the first one the default. */
  choices?: string[];
  /** `toggle`: the stored value when on (off removes the key). */
  on?: unknown;
  /** i18n key of a hint under the field. */
  hint?: string;
}

export interface ProviderForm {
  settings: FieldSpec[];
  credentials: FieldSpec[];
}

// Token shapes as the providers issue them: loose enough for every real token, strict enough to
// catch a pasted URL, a stray space or the wrong provider's token.
const TELEGRAM_TOKEN = /^\d{5,15}:[A-Za-z0-9_-]{20,}$/;
const URL_SAFE_SECRET = /^[A-Za-z0-9_-]{1,256}$/;
const MAX_SECRET = /^[A-Za-z0-9_-]{5,256}$/;
const OPAQUE_TOKEN = /^[^\s]{10,}$/;
const SECURITY = ['tls', 'starttls', 'plain'];

export const PROVIDER_FORMS: Partial<Record<Provider, ProviderForm>> = {
  telegram: {
    settings: [{ key: 'updates', label: 'channel.longPoll', kind: 'toggle', on: 'long_poll', hint: 'channel.longPollHint' }],
    credentials: [
      { key: 'bot_token', label: 'channel.botToken', secret: true, required: true, pattern: TELEGRAM_TOKEN, problem: 'form.telegramToken' },
      { key: 'webhook_secret', label: 'channel.webhookSecret', secret: true, generate: true, pattern: URL_SAFE_SECRET, problem: 'form.urlSafeSecret' },
    ],
  },
  whatsapp: {
    settings: [],
    credentials: [
      { key: 'access_token', label: 'channel.accessToken', secret: true, required: true, pattern: OPAQUE_TOKEN, problem: 'form.token' },
      { key: 'phone_number_id', label: 'channel.phoneNumberId', secret: true, required: true, pattern: /^\d{5,20}$/, problem: 'form.number' },
      { key: 'app_secret', label: 'channel.appSecret', secret: true, required: true, pattern: OPAQUE_TOKEN, problem: 'form.token' },
      { key: 'verify_token', label: 'channel.verifyToken', secret: true, required: true, generate: true },
      { key: 'waba_id', label: 'channel.wabaId', secret: true, pattern: /^\d{5,20}$/, problem: 'form.number' },
    ],
  },
  vk: {
    settings: [{ key: 'long_poll', label: 'channel.longPoll', kind: 'toggle', on: true, hint: 'channel.longPollHint' }],
    credentials: [
      { key: 'access_token', label: 'channel.communityToken', secret: true, required: true, pattern: OPAQUE_TOKEN, problem: 'form.token' },
      { key: 'group_id', label: 'channel.groupId', secret: true, required: true, kind: 'number' },
      { key: 'confirmation_code', label: 'channel.confirmationCode', secret: true, pattern: /^[A-Za-z0-9]{4,32}$/, problem: 'form.confirmationCode' },
      { key: 'secret', label: 'channel.callbackSecret', secret: true, generate: true, pattern: /^[A-Za-z0-9_-]{1,50}$/, problem: 'form.vkSecret' },
    ],
  },
  viber: {
    settings: [
      { key: 'sender_name', label: 'channel.senderName', required: true, pattern: /^.{1,28}$/u, problem: 'form.senderName' },
      { key: 'sender_avatar', label: 'channel.senderAvatar', kind: 'url' },
    ],
    credentials: [{ key: 'auth_token', label: 'channel.authToken', secret: true, required: true, pattern: /^[A-Za-z0-9]{16}-[A-Za-z0-9]{16}-[A-Za-z0-9]{16}$/, problem: 'form.viberToken' }],
  },
  max: {
    settings: [{ key: 'long_poll', label: 'channel.longPoll', kind: 'toggle', on: true, hint: 'channel.longPollHint' }],
    credentials: [
      { key: 'token', label: 'channel.botToken', secret: true, required: true, pattern: OPAQUE_TOKEN, problem: 'form.token' },
      { key: 'webhook_secret', label: 'channel.webhookSecret', secret: true, generate: true, pattern: MAX_SECRET, problem: 'form.maxSecret' },
    ],
  },
  email: {
    settings: [
      { key: 'address', label: 'channel.address', kind: 'email', required: true },
      { key: 'display_name', label: 'channel.displayName' },
      { key: 'imap_host', label: 'channel.imapHost', kind: 'host', required: true },
      { key: 'imap_security', label: 'channel.imapSecurity', kind: 'choice', choices: SECURITY },
      { key: 'imap_port', label: 'channel.imapPort', kind: 'port', hint: 'channel.portHint' },
      { key: 'smtp_host', label: 'channel.smtpHost', kind: 'host', required: true },
      { key: 'smtp_security', label: 'channel.smtpSecurity', kind: 'choice', choices: SECURITY },
      { key: 'smtp_port', label: 'channel.smtpPort', kind: 'port', hint: 'channel.portHint' },
      { key: 'folder', label: 'channel.folder', pattern: /^[\x20-\x7e]{1,200}$/, problem: 'form.folder' },
    ],
    credentials: [
      { key: 'username', label: 'channel.username', secret: true },
      { key: 'password', label: 'channel.password', secret: true, required: true },
    ],
  },
  api: {
    settings: [{ key: 'outbound_url', label: 'channel.outboundUrl', kind: 'url', required: true }],
    credentials: [
      { key: 'inbound_token', label: 'channel.inboundToken', secret: true, required: true, generate: true },
      { key: 'outbound_token', label: 'channel.outboundToken', secret: true },
    ],
  },
};

/** A field's problem (an i18n key), or null when the value is acceptable. */
export function fieldProblem(spec: FieldSpec, value: string, editing: boolean): string | null {
  const v = value.trim();
  // Secrets are write-only: when editing, an empty one keeps the stored value.
  if (v === '') return spec.required && !(editing && spec.secret) ? 'form.required' : null;
  if (spec.kind === 'url') {
    try {
      const url = new URL(v);
      return url.protocol === 'https:' || url.protocol === 'http:' ? null : 'form.url';
    } catch {
      return 'form.url';
    }
  }
  if (spec.kind === 'email') return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v) ? null : 'form.email';
  if (spec.kind === 'number') return /^\d+$/.test(v) ? null : 'form.number';
  if (spec.kind === 'host') return isHost(v) ? null : 'form.host';
  if (spec.kind === 'port') return /^\d{1,5}$/.test(v) && Number(v) >= 1 && Number(v) <= 65535 ? null : 'form.port';
  if (spec.kind === 'choice') return spec.choices?.includes(v) ? null : 'form.choice';
  if (spec.pattern && !spec.pattern.test(v)) return spec.problem ?? 'form.invalid';
  return null;
}

/** A host name or an IP address, without scheme, port or path. */
export function isHost(v: string): boolean {
  if (/^\[?[0-9a-f:]+\]?$/i.test(v) && v.includes(':')) return true; // IPv6
  if (v.length > 253) return false;
  return v.split('.').every((label) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label));
}

/** The value a field stores: numbers and ports as numbers, toggles as their `on` value. */
export function storedValue(spec: FieldSpec, value: string): unknown {
  const v = value.trim();
  if (spec.kind === 'toggle') return v === 'on' ? spec.on : undefined;
  if (v === '') return undefined;
  if (spec.kind === 'number' || spec.kind === 'port') return Number(v);
  return v;
}

/** How a stored setting shows in its field ('on' / '' for toggles). */
export function shownValue(spec: FieldSpec, stored: unknown): string {
  if (spec.kind === 'toggle') return stored !== undefined && JSON.stringify(stored) === JSON.stringify(spec.on) ? 'on' : '';
  if (stored === undefined || stored === null) return '';
  return typeof stored === 'string' ? stored : JSON.stringify(stored);
}

/** A random secret for the other side to present: 32 bytes, URL-safe. */
export function randomSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** A JSON object typed by hand: the parsed object, or the i18n key of its problem. */
export function parseObject(text: string): { value: Record<string, unknown> } | { problem: string } {
  if (text.trim() === '') return { value: {} };
  try {
    const value: unknown = JSON.parse(text);
    if (value && typeof value === 'object' && !Array.isArray(value)) return { value: value as Record<string, unknown> };
  } catch {
    // Falls through to the problem.
  }
  return { problem: 'form.jsonObject' };
}
