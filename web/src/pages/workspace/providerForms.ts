// What connecting a provider asks for: settings (stored as they are) and credentials (write-only
// secrets), with their validation. Providers without a form here (their connectors are still
// being written) are connected with the generic form: settings and credentials as JSON objects.
import type { Provider } from '../../api/types';

export interface FieldSpec {
  key: string;
  /** i18n key of the label. */
  label: string;
  secret?: boolean;
  required?: boolean;
  kind?: 'url' | 'text' | 'email' | 'number';
  /** Offer to generate a random value (shared secrets the other side must be told). */
  generate?: boolean;
}

export interface ProviderForm {
  settings: FieldSpec[];
  credentials: FieldSpec[];
}

export const PROVIDER_FORMS: Partial<Record<Provider, ProviderForm>> = {
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
  return null;
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
