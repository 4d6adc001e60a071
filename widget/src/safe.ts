// Everything the widget needs from the page's globals, taken once when the script loads. A host
// page that later replaces `fetch`, `WebSocket`, their prototypes, `JSON` or storage methods
// (an analytics script, a hostile one) cannot reach the widget: it only ever calls these.

const w = window;
const desc = (proto: object, name: string) => Object.getOwnPropertyDescriptor(proto, name);
const getter = (proto: object, name: string) => {
  const g = desc(proto, name)?.get;
  return (self: unknown) => (g ? g.call(self) : undefined);
};
const bindCall =
  <A extends unknown[], R>(f: (...args: A) => R) =>
  (self: unknown, ...args: A): R =>
    f.apply(self, args);

const nativeFetch = w.fetch;
const responseText = Response.prototype.text;
const responseBlob = Response.prototype.blob;
const NativeFormData = w.FormData;
const formAppend = bindCall(NativeFormData.prototype.append as (name: string, value: Blob, fileName?: string) => void);
const objectUrl = URL.createObjectURL.bind(URL);
const responseStatus = getter(Response.prototype, 'status');
const NativeWebSocket = w.WebSocket;
const wsSend = bindCall(NativeWebSocket.prototype.send);
const wsClose = bindCall(NativeWebSocket.prototype.close);
const wsState = getter(NativeWebSocket.prototype, 'readyState');
const listen = bindCall(EventTarget.prototype.addEventListener);
const eventData = getter(MessageEvent.prototype, 'data');
const closeCode = getter(CloseEvent.prototype, 'code');
const storageGet = bindCall(Storage.prototype.getItem);
const storageSet = bindCall(Storage.prototype.setItem);
const storageRemove = bindCall(Storage.prototype.removeItem);
const jsonParse = JSON.parse;
const jsonStringify = JSON.stringify;
const randomValues = crypto.getRandomValues.bind(crypto);
const setT = w.setTimeout.bind(w);
const clearT = w.clearTimeout.bind(w);
const now = Date.now;

let storage: Storage | null = null;
try {
  storage = w.localStorage;
} catch {
  storage = null; // storage blocked (privacy settings): the visitor lasts as long as the page
}

export const safe = {
  setTimeout: setT,
  clearTimeout: clearT,
  now: () => now(),
  parse: (text: string): unknown => jsonParse(text),
  stringify: (value: unknown): string => jsonStringify(value),

  /** A JSON request; resolves with the status and the parsed body (null when none). */
  async request(url: string, init: RequestInit): Promise<{ status: number; body: unknown }> {
    const response = await nativeFetch.call(w, url, init);
    const text: string = await responseText.call(response);
    let body: unknown = null;
    if (text) {
      try {
        body = jsonParse(text);
      } catch {
        body = null;
      }
    }
    return { status: responseStatus(response) as number, body };
  },

  /** A multipart upload of one file as the part `file`; resolves like `request`. */
  async upload(url: string, headers: Record<string, string>, file: File): Promise<{ status: number; body: unknown }> {
    const form = new NativeFormData();
    formAppend(form, 'file', file, file.name);
    return this.request(url, { method: 'POST', headers, body: form, credentials: 'omit', mode: 'cors' });
  },

  /** A file's bytes as an object URL the page's own document can show or save. */
  async objectUrl(url: string, headers: Record<string, string>): Promise<string> {
    const response = await nativeFetch.call(w, url, { headers, credentials: 'omit', mode: 'cors' });
    if (responseStatus(response) !== 200) throw { code: `http_${responseStatus(response)}` };
    return objectUrl(await responseBlob.call(response));
  },

  socket(
    url: string,
    on: { open(): void; message(data: string): void; close(code: number): void },
  ): { send(text: string): boolean; close(): void } {
    const ws = new NativeWebSocket(url);
    listen(ws, 'open', () => on.open());
    listen(ws, 'message', (e: Event) => {
      const data = eventData(e);
      if (typeof data === 'string') on.message(data);
    });
    listen(ws, 'close', (e: Event) => on.close((closeCode(e) as number) ?? 1006));
    return {
      send(text: string) {
        if (wsState(ws) !== 1) return false;
        wsSend(ws, text);
        return true;
      },
      close() {
        wsClose(ws);
      },
    };
  },

  load(key: string): string | null {
    try {
      return storage ? storageGet(storage, key) : null;
    } catch {
      return null;
    }
  },
  save(key: string, value: string | null): void {
    try {
      if (!storage) return;
      if (value === null) storageRemove(storage, key);
      else storageSet(storage, key, value);
    } catch {
      // quota or privacy mode: nothing to do
    }
  },

  /** 128 random bits, hex. */
  randomId(): string {
    const bytes = new Uint8Array(16);
    randomValues(bytes);
    let out = '';
    for (let i = 0; i < bytes.length; i++) out += (bytes[i]! + 256).toString(16).slice(1);
    return out;
  },
};
