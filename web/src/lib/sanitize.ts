// Text from senders is shown as text; the only markup the console makes of it is links, and only
// to http, https and mailto addresses. Everything here returns plain data for React to render,
// so nothing a sender writes is ever parsed as HTML.

const SAFE_PROTOCOLS = new Set(['http:', 'https:', 'mailto:']);
const CONTROL = /[\u0000-\u001f\u007f]/;

/** A normalised address when `raw` is an absolute http, https or mailto URL; otherwise null. */
export function safeHref(raw: string): string | null {
  const trimmed = raw.trim();
  if (trimmed === '' || CONTROL.test(trimmed)) return null;
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    return null;
  }
  if (!SAFE_PROTOCOLS.has(url.protocol)) return null;
  if (url.protocol !== 'mailto:' && url.hostname === '') return null;
  return url.href;
}

export type Segment = { kind: 'text'; text: string } | { kind: 'link'; text: string; href: string };

// Candidates only: each is still checked by safeHref. `javascript:` and other schemes never
// match, so they stay text.
const CANDIDATE = /\b(?:https?:\/\/|mailto:|www\.)[^\s<>"'`]+/gi;
const TRAILING = /[.,;:!?)\]}»"']+$/;

/** Splits a message into text and safe links, in order; concatenated, the texts are the input. */
export function linkify(text: string): Segment[] {
  const out: Segment[] = [];
  let last = 0;
  const push = (t: string) => {
    if (t === '') return;
    const prev = out[out.length - 1];
    if (prev?.kind === 'text') prev.text += t;
    else out.push({ kind: 'text', text: t });
  };
  for (const match of text.matchAll(CANDIDATE)) {
    const start = match.index;
    const candidate = match[0].replace(TRAILING, '');
    const href = safeHref(candidate.toLowerCase().startsWith('www.') ? `https://${candidate}` : candidate);
    push(text.slice(last, start));
    if (href) out.push({ kind: 'link', text: candidate, href });
    else push(candidate);
    last = start + candidate.length;
  }
  push(text.slice(last));
  return out;
}
