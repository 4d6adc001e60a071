// The omnihub website widget. Loaded by
//   <script src="https://HOST/widget.js" data-omnihub="PUBLIC_KEY" async></script>
// it draws a chat button and window inside a closed shadow root (the page's CSS and scripts
// cannot see into it, and its CSS cannot leak out), keeps the visitor's identity in
// localStorage (so the conversation survives reloads and new tabs), and talks to omnihub only
// through the network primitives captured at load (`safe.ts`). With `data-mode="callback"` it is
// the standalone "call me back" snippet: a phone button and the number form, without the chat.

import { Api, type Attachment, type ChatMessage, type Config, VisitorSocket } from './api';
import { pickLang, texts } from './i18n';
import { safe } from './safe';
import { css } from './style';
import { el, formatTime, initials, safeLink } from './view';

interface Identity {
  token: string;
  cursor: number | null;
}

const script =
  (document.currentScript as HTMLScriptElement | null) ??
  document.querySelector<HTMLScriptElement>('script[data-omnihub]');
const publicKey = script?.getAttribute('data-omnihub') ?? '';
// `data-mode="callback"`: the standalone "call me back" snippet, without the chat.
const callbackOnly = script?.getAttribute('data-mode') === 'callback';
const base = script ? new URL(script.src, location.href).origin : '';
const lang = pickLang(navigator.languages?.length ? navigator.languages : [navigator.language || 'en']);
const t = texts[lang];
const storeKey = `omnihub:${publicKey}`;
const PHONE_ICON =
  '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2a1 1 0 0 1 1-.25 11.4 11.4 0 0 0 3.6.57 1 1 0 0 1 1 1V20a1 1 0 0 1-1 1A17 17 0 0 1 3 4a1 1 0 0 1 1-1h3.5a1 1 0 0 1 1 1c0 1.25.2 2.45.57 3.57a1 1 0 0 1-.25 1z"/></svg>';
const CLIP_ICON =
  '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M16.5 6.5v10a4.5 4.5 0 0 1-9 0V5a3 3 0 0 1 6 0v10.5a1.5 1.5 0 0 1-3 0V6.5H9v9a3 3 0 0 0 6 0V5a4.5 4.5 0 0 0-9 0v11.5a6 6 0 0 0 12 0v-10z"/></svg>';
const CHAT_ICON =
  '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>';

function loadIdentity(): Identity | null {
  const raw = safe.load(storeKey);
  if (!raw) return null;
  try {
    const v = safe.parse(raw) as Identity;
    return typeof v.token === 'string' ? { token: v.token, cursor: typeof v.cursor === 'number' ? v.cursor : null } : null;
  } catch {
    return null;
  }
}

function saveIdentity(id: Identity | null): void {
  safe.save(storeKey, id ? safe.stringify(id) : null);
}

class Widget {
  private readonly api = new Api(base, publicKey, lang);
  private identity = loadIdentity();
  private socket: VisitorSocket | null = null;
  private readonly messages: ChatMessage[] = [];
  private open = false;
  private unread = 0;
  private operator: string | null = null;
  private typingTimer: number | undefined;
  private lastTyping = 0;
  private offlineSent = false;
  private creating: Promise<string> | null = null;
  /** Object URLs of the conversation's files, fetched once each. */
  private readonly files = new Map<string, Promise<string>>();
  /** Files of local messages, kept for a retry. */
  private readonly outgoing = new Map<string, File>();

  private readonly root: ShadowRoot;
  private readonly launcher = el('button', { class: 'launcher', part: 'launcher', 'aria-label': t.open });
  private readonly badge = el('span', { class: 'badge', hidden: '' });
  private readonly panel = el('div', { class: 'panel', role: 'dialog', hidden: '' });
  private readonly title = el('div', { class: 'title' });
  private readonly who = el('div', { class: 'who' });
  private readonly avatar = el('div', { class: 'avatar', hidden: '' });
  private readonly body = el('div', { class: 'body', 'aria-live': 'polite' });
  private readonly typing = el('div', { class: 'typing', hidden: '' });
  private readonly links = el('div', { class: 'links', hidden: '' });
  private readonly callback = el('form', { class: 'links', hidden: '' });
  private readonly input = el('textarea', { rows: '2', placeholder: t.placeholder, 'aria-label': t.message });
  private readonly composer = el('form', { class: 'composer' });

  constructor(private readonly config: Config) {
    const host = document.createElement('omnihub-chat');
    this.root = host.attachShadow({ mode: 'closed' });
    const a = config.appearance;
    const styles = css(a.accent_color, a.text_color, a.position === 'bottom_left');
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(styles);
      this.root.adoptedStyleSheets = [sheet];
    } catch {
      this.root.append(el('style', {}, styles));
    }
    this.launcher.innerHTML = CHAT_ICON;
    this.launcher.append(this.badge);
    this.launcher.addEventListener('click', () => this.toggle());
    const closeButton = el('button', { class: 'x', 'aria-label': t.close }, '×');
    closeButton.addEventListener('click', () => this.toggle());
    this.title.textContent = a.title[lang];
    const head = el('div', { class: 'head' }, this.avatar, el('div', { style: 'flex:1;min-width:0' }, this.title, this.who), closeButton);
    this.composer.append(this.input);
    if (config.attachments?.enabled) this.buildAttach();
    this.composer.append(el('button', { class: 'send', type: 'submit' }, t.send));
    this.composer.addEventListener('submit', (e) => {
      e.preventDefault();
      this.sendFromComposer();
    });
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey) {
        e.preventDefault();
        this.sendFromComposer();
      }
    });
    this.input.addEventListener('input', () => this.reportTyping());
    this.buildCallback();
    if (callbackOnly) {
      this.launcher.innerHTML = PHONE_ICON;
      this.launcher.setAttribute('aria-label', t.callMe);
      this.panel.append(head, this.callback);
    } else {
      this.buildLinks();
      this.panel.append(head, this.body, this.typing, this.links, this.callback, this.composer);
    }
    this.root.append(this.panel, this.launcher);
    // Under <html>, not <body>: a page hiding `body > *` or restyling body does not reach it.
    document.documentElement.append(host);
    if (callbackOnly) return;
    document.addEventListener('visibilitychange', () => this.markRead());
    if (this.identity) this.connect();
    this.render();
  }

  private buildLinks(): void {
    const m = this.config.messengers;
    const all: [string, string | null][] = [
      ['Telegram', safeLink(m.telegram)],
      ['WhatsApp', safeLink(m.whatsapp)],
      ['VK', safeLink(m.vk)],
      ['MAX', safeLink(m.max)],
    ];
    const shown = all.filter(([, url]) => url);
    if (!shown.length) return;
    this.links.append(el('span', {}, t.alsoIn));
    for (const [name, url] of shown) {
      this.links.append(el('a', { href: url!, target: '_blank', rel: 'noopener noreferrer' }, name));
    }
    this.links.hidden = false;
  }

  /** Files: a paperclip button, dropping files on the window, pasting them in the text box. */
  private buildAttach(): void {
    const picker = el('input', { type: 'file', hidden: '', 'aria-hidden': 'true', accept: this.config.attachments.types.join(',') });
    const button = el('button', { class: 'clip', type: 'button', 'aria-label': t.attach, title: t.attach });
    button.innerHTML = CLIP_ICON;
    button.addEventListener('click', () => picker.click());
    picker.addEventListener('change', () => {
      for (const f of Array.from(picker.files ?? [])) this.sendFile(f, `f${safe.randomId()}`);
      picker.value = '';
    });
    const take = (files: FileList | null | undefined): boolean => {
      const list = Array.from(files ?? []);
      for (const f of list) this.sendFile(f, `f${safe.randomId()}`);
      return list.length > 0;
    };
    this.panel.addEventListener('dragover', (e) => e.preventDefault());
    this.panel.addEventListener('drop', (e) => {
      e.preventDefault();
      take(e.dataTransfer?.files);
    });
    this.input.addEventListener('paste', (e) => {
      if (take(e.clipboardData?.files)) e.preventDefault();
    });
    this.composer.append(button, picker);
  }

  /** "Call me back": a number, then the client's telephony calls the visitor. */
  private buildCallback(): void {
    if (!this.config.callback) return;
    const form = this.callback;
    form.dataset.kind = 'callback';
    const number = el('input', { name: 'number', type: 'tel', autocomplete: 'tel', required: '', 'aria-label': t.phone, placeholder: t.phone, hidden: '' });
    const submit = el('button', { class: 'send', type: 'submit', hidden: '' }, t.callNow);
    const ask = el('button', { type: 'button' }, `📞 ${t.callMe}`);
    const status = el('div', { class: 'note', role: 'status', hidden: '' });
    if (callbackOnly) {
      // The snippet is the call-back alone: the number at once.
      ask.hidden = true;
      number.hidden = false;
      submit.hidden = false;
    }
    ask.addEventListener('click', () => {
      ask.hidden = true;
      number.hidden = false;
      submit.hidden = false;
      number.focus();
    });
    form.append(ask, number, submit, status);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      submit.disabled = true;
      this.visitor()
        .then((token) => this.api.call<{ id: string }>('POST', 'callbacks', token, { number: number.value.trim() }))
        .then(
          () => {
            number.hidden = true;
            submit.hidden = true;
            status.className = 'note';
            status.textContent = t.calling;
            status.hidden = false;
          },
          (err: { message?: string }) => {
            submit.disabled = false;
            status.className = 'err';
            status.textContent = err?.message ?? t.failed;
            status.hidden = false;
          },
        );
    });
    form.hidden = false;
  }

  private toggle(): void {
    if (callbackOnly) {
      this.open = !this.open;
      this.panel.hidden = !this.open;
      this.launcher.setAttribute('aria-label', this.open ? t.close : t.callMe);
      return;
    }
    this.open = !this.open;
    this.panel.hidden = !this.open;
    this.launcher.setAttribute('aria-label', this.open ? t.close : t.open);
    if (this.open) {
      this.unread = 0;
      this.markRead();
      this.render();
      this.input.focus();
    }
    this.renderBadge();
  }

  private connect(): void {
    const id = this.identity;
    if (!id || this.socket) return;
    this.socket = new VisitorSocket(
      this.api.socketUrl(),
      id.token,
      id.cursor,
      (seq) => {
        if (this.identity) {
          this.identity.cursor = seq;
          saveIdentity(this.identity);
        }
      },
      {
        welcome: () => void this.loadHistory(),
        message: (m) => this.receive(m, true),
        status: (mid, status) => {
          const m = this.messages.find((x) => x.id === mid);
          if (m) {
            m.status = status;
            this.render();
          }
        },
        typing: (op) => this.showTyping(op?.name ?? null),
        connected: () => undefined,
        forgotten: () => {
          // The server no longer knows this visitor (widget recreated): start afresh.
          this.identity = null;
          this.socket = null;
          saveIdentity(null);
        },
      },
    );
    this.socket.start();
  }

  private async loadHistory(): Promise<void> {
    if (!this.identity) return;
    let after: string | null = null;
    try {
      for (let page = 0; page < 50; page++) {
        const path: string = after ? `messages?after=${encodeURIComponent(after)}` : 'messages';
        const h = await this.api.call<{ items: ChatMessage[]; next_after?: string | null }>('GET', path, this.identity.token);
        for (const m of h.items) this.receive(m, false);
        if (!h.next_after) break;
        after = h.next_after;
      }
    } catch {
      // the socket's next reconnect loads it again
    }
    this.render();
  }

  private receive(m: ChatMessage, live: boolean): void {
    const byId = this.messages.findIndex((x) => x.id === m.id);
    const byClientId = m.client_message_id
      ? this.messages.findIndex((x) => x.client_message_id === m.client_message_id)
      : -1;
    const at = byId >= 0 ? byId : byClientId;
    if (at >= 0) {
      this.messages[at] = m;
    } else {
      this.messages.push(m);
      this.messages.sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : 0));
      if (live && m.from !== 'visitor') this.notify();
    }
    if (m.from === 'operator') {
      this.operator = m.operator?.name ?? this.operator;
      this.showTyping(null);
    }
    this.render();
  }

  private notify(): void {
    if (this.open && document.visibilityState === 'visible') {
      this.markRead();
      return;
    }
    this.unread++;
    this.renderBadge();
    beep();
  }

  private markRead(): void {
    if (this.open && document.visibilityState === 'visible' && this.messages.some((m) => m.from !== 'visitor' && m.status !== 'read')) {
      this.socket?.send({ type: 'read' });
    }
  }

  private showTyping(name: string | null): void {
    safe.clearTimeout(this.typingTimer);
    if (!name) {
      this.typing.hidden = true;
      return;
    }
    this.typing.textContent = `${name} ${t.typing}`;
    this.typing.hidden = false;
    this.typingTimer = safe.setTimeout(() => (this.typing.hidden = true), 5000) as unknown as number;
  }

  private reportTyping(): void {
    const now = safe.now();
    if (now - this.lastTyping > 2000) {
      this.lastTyping = now;
      this.socket?.send({ type: 'typing' });
    }
  }

  /** The visitor's token, creating the visitor on first need (with the pre-chat answers). */
  private visitor(details: Record<string, string> = {}): Promise<string> {
    if (this.identity) return Promise.resolve(this.identity.token);
    this.creating ??= this.api
      .call<{ token: string }>('POST', 'visitors', null, details)
      .then((v) => {
        this.identity = { token: v.token, cursor: null };
        saveIdentity(this.identity);
        this.connect();
        return v.token;
      })
      .finally(() => (this.creating = null));
    return this.creating;
  }

  private sendFromComposer(): void {
    const text = this.input.value.trim();
    if (!text) return;
    this.input.value = '';
    // A sent message ends the typing burst: the next keystroke is news again, however soon.
    this.lastTyping = 0;
    void this.send(text, `c${safe.randomId()}`);
  }

  private async send(text: string, clientId: string): Promise<void> {
    const local: ChatMessage = {
      id: `local-${clientId}`,
      from: 'visitor',
      text,
      status: 'pending',
      created_at: new Date(safe.now()).toISOString(),
      client_message_id: clientId,
    };
    this.receive(local, false);
    try {
      const token = await this.visitor();
      const a = await this.api.call<{ message: ChatMessage }>('POST', 'messages', token, { client_message_id: clientId, text });
      this.receive(a.message, false);
    } catch {
      local.status = 'failed';
      this.render();
    }
  }

  /** Sends a file as a message; a file over the limit fails at once, without a request. */
  private async sendFile(file: File, clientId: string): Promise<void> {
    const local: ChatMessage = {
      id: `local-${clientId}`,
      from: 'visitor',
      text: '',
      status: 'pending',
      created_at: new Date(safe.now()).toISOString(),
      client_message_id: clientId,
      attachments: [{ id: '', kind: 'document', file_name: file.name, mime_type: file.type, size: file.size, state: 'pending' }],
    };
    this.outgoing.set(clientId, file);
    this.receive(local, false);
    const max = this.config.attachments.max_bytes;
    try {
      if (file.size > max) throw { message: t.tooLarge((max / 1048576).toFixed(max < 1048576 ? 2 : 0)) };
      const token = await this.visitor();
      const a = await this.api.upload(token, clientId, file);
      this.outgoing.delete(clientId);
      this.receive(a.message, false);
    } catch (err) {
      local.status = 'failed';
      local.error = (err as { message?: string })?.message ?? t.failed;
      this.render();
    }
  }

  /** An object URL of a file, fetched once with the visitor's token. */
  private fileUrl(id: string, inline: boolean): Promise<string> {
    const key = `${id}:${inline}`;
    let url = this.files.get(key);
    if (!url) {
      url = this.visitor().then((token) => this.api.file(token, id, inline));
      url.catch(() => this.files.delete(key));
      this.files.set(key, url);
    }
    return url;
  }

  /** A file in a bubble: an image shown inline, anything else a link that saves it. */
  private fileNode(a: Attachment): HTMLElement {
    const size = typeof a.size === 'number' ? ` · ${a.size < 1024 ? `${a.size} B` : a.size < 1048576 ? `${Math.round(a.size / 1024)} KB` : `${(a.size / 1048576).toFixed(1)} MB`}` : '';
    if (a.state !== 'ready' || !a.id) {
      return el('div', { class: 'file' }, `📎 ${a.file_name}${a.state === 'pending' ? ` (${t.uploading})` : ''}`);
    }
    if (/^image\/(png|jpeg|gif|webp)$/.test(a.mime_type)) {
      const img = el('img', { class: 'image', alt: a.file_name });
      this.fileUrl(a.id, true).then((url) => (img.src = url), () => (img.alt = `📎 ${a.file_name}`));
      return img;
    }
    const link = el('a', { class: 'file', href: '#', 'data-file': a.id }, `📎 ${a.file_name}${size}`);
    link.addEventListener('click', (e) => {
      e.preventDefault();
      this.fileUrl(a.id, false).then((url) => {
        el('a', { href: url, download: a.file_name }).click();
      }, () => undefined);
    });
    return link;
  }

  private needsPrechat(): boolean {
    const p = this.config.prechat;
    return !this.identity && p.enabled && p.fields.length > 0;
  }

  private needsOffline(): boolean {
    return !this.config.online && this.config.offline.enabled && !this.offlineSent && this.messages.length === 0;
  }

  private renderBadge(): void {
    this.badge.hidden = this.unread === 0;
    this.badge.textContent = String(this.unread);
    this.badge.setAttribute('aria-label', t.unread(this.unread));
  }

  private render(): void {
    if (this.operator) {
      this.who.textContent = this.operator;
      this.avatar.textContent = initials(this.operator);
      this.avatar.hidden = false;
    }
    const nodes: Node[] = [];
    if (this.needsOffline()) {
      nodes.push(this.offlineForm());
      this.composer.hidden = true;
    } else if (this.needsPrechat()) {
      nodes.push(this.prechatForm());
      this.composer.hidden = true;
    } else {
      this.composer.hidden = false;
      nodes.push(el('div', { class: 'msg' }, this.config.appearance.greeting[lang]));
      if (this.offlineSent) nodes.push(el('div', { class: 'note' }, t.offlineSent));
      for (const m of this.messages) nodes.push(this.bubble(m));
    }
    // Forms keep their typed values: rebuild only when what is shown changes.
    const kind = nodes[0] instanceof HTMLFormElement ? nodes[0].dataset.kind : 'chat';
    if (kind !== 'chat' && this.body.firstElementChild instanceof HTMLFormElement && this.body.firstElementChild.dataset.kind === kind) return;
    this.body.replaceChildren(...nodes);
    this.body.scrollTop = this.body.scrollHeight;
  }

  private bubble(m: ChatMessage): HTMLElement {
    const mine = m.from === 'visitor';
    const status = mine && m.status === 'failed' ? m.error ?? t.failed : '';
    const meta = [formatTime(m.created_at), !mine && m.operator ? m.operator.name : '', status].filter(Boolean).join(' · ');
    const files = (m.attachments ?? []).map((a) => this.fileNode(a));
    const node = el('div', { class: mine ? 'msg mine' : 'msg', 'data-from': m.from }, m.text || null, ...files, el('div', { class: 'meta' }, meta));
    if (mine && m.status === 'failed') {
      node.style.cursor = 'pointer';
      node.addEventListener('click', () => {
        this.messages.splice(this.messages.indexOf(m), 1);
        const id = m.client_message_id ?? `c${safe.randomId()}`;
        const file = this.outgoing.get(id);
        if (file) void this.sendFile(file, id);
        else void this.send(m.text, id);
      });
    }
    return node;
  }

  private field(name: 'name' | 'email' | 'phone', required: boolean): HTMLElement {
    const input = el('input', { name, type: name === 'email' ? 'email' : name === 'phone' ? 'tel' : 'text', autocomplete: name === 'phone' ? 'tel' : name });
    if (required) input.required = true;
    return el('label', {}, t[name], input);
  }

  private prechatForm(): HTMLFormElement {
    const form = el('form', { class: 'card' });
    form.dataset.kind = 'prechat';
    for (const f of this.config.prechat.fields) form.append(this.field(f.field, f.required));
    const error = el('div', { class: 'err', hidden: '' });
    form.append(error, el('button', { class: 'send', type: 'submit' }, t.start));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const details: Record<string, string> = {};
      for (const f of this.config.prechat.fields) {
        const v = (form.elements.namedItem(f.field) as HTMLInputElement).value.trim();
        if (v) details[f.field] = v;
      }
      this.visitor(details).then(
        () => this.render(),
        (err: { message?: string }) => {
          error.textContent = err?.message ?? t.failed;
          error.hidden = false;
        },
      );
    });
    return form;
  }

  private offlineForm(): HTMLFormElement {
    const form = el('form', { class: 'card' });
    form.dataset.kind = 'offline';
    const message = el('textarea', { name: 'text', rows: '3', required: '' });
    const error = el('div', { class: 'err', hidden: '' });
    form.append(
      el('div', { class: 'note' }, this.config.offline.message[lang]),
      this.field('name', false),
      this.field('email', false),
      this.field('phone', false),
      el('label', {}, t.message, message),
      error,
      el('button', { class: 'send', type: 'submit' }, t.leave),
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const value = (n: string) => (form.elements.namedItem(n) as HTMLInputElement).value.trim();
      const [name, email, phone, text] = [value('name'), value('email'), value('phone'), message.value.trim()];
      if (!email && !phone) {
        error.textContent = t.contactNeeded;
        error.hidden = false;
        return;
      }
      const body: Record<string, string> = { client_message_id: `o${safe.randomId()}`, text };
      if (name) body.name = name;
      if (email) body.email = email;
      if (phone) body.phone = phone;
      this.visitor()
        .then((token) => this.api.call<{ message: ChatMessage }>('POST', 'offline', token, body))
        .then(
          (a) => {
            this.offlineSent = true;
            this.receive(a.message, false);
          },
          (err: { message?: string }) => {
            error.textContent = err?.message ?? t.failed;
            error.hidden = false;
          },
        );
    });
    return form;
  }
}

/** A short chime for a new message while the chat is closed (silent where audio is blocked). */
function beep(): void {
  try {
    const Ctx = window.AudioContext;
    const ctx = new Ctx();
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.08, ctx.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + 0.3);
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.3);
    osc.onended = () => void ctx.close();
  } catch {
    // no audio: the badge is enough
  }
}

async function start(): Promise<void> {
  if (!publicKey || !base) return;
  const api = new Api(base, publicKey, lang);
  let config: Config;
  try {
    config = await api.call<Config>('GET', 'config', null);
  } catch (e) {
    console.warn('omnihub widget:', (e as { code?: string })?.code ?? e);
    return;
  }
  // The standalone call-back snippet has nothing to offer without telephony.
  if (callbackOnly && !config.callback) return;
  new Widget(config);
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', () => void start());
} else {
  void start();
}
