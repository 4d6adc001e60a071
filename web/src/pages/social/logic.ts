// The social pages' pure rules: how a network row of the capability matrix is offered for
// connecting (by token, by OAuth, or not at all and why), the OAuth return page's query, file
// sizes and kinds of the media library, a trigger form's draft to and from the API's shape
// (and whether its action suits the chosen profile's network),
// what may be done with a task, and the notification bell's unread count.
import type { components } from '../../api/schema';
import type { MessageKey, Translate } from '../../i18n';

type S = components['schemas'];
export type NetworkRow = S['NetworkRow'];
export type ActionRow = S['ActionRow'];
export type SocialProfile = S['SocialProfile'];
export type RemotePost = S['RemotePostView'];
export type SocialMedia = S['SocialMedia'];
export type Trigger = S['Trigger'];
export type TriggerInput = S['TriggerInput'];
export type Task = S['Task'];
export type TaskStatus = S['TaskStatus'];
export type Notification = S['Notification'];

export const NETWORKS = ['vk', 'ok', 'facebook', 'instagram', 'x', 'youtube', 'google_plus'] as const;

/** The network's name in the console's language (its own id when unknown). */
export function networkName(network: string, t: Translate): string {
  return (NETWORKS as readonly string[]).includes(network) ? t(`network.${network}` as MessageKey) : network;
}

export type ConnectOffer =
  | { kind: 'token' }
  | { kind: 'planned'; reason: string | null }
  | { kind: 'dead'; reason: string | null };

/** How the matrix says a network's profiles are connected. */
export function connectOffer(row: NetworkRow): ConnectOffer {
  switch (row.connect.status) {
    case 'supported':
      return { kind: 'token' };
    case 'planned':
      return { kind: 'planned', reason: row.connect.reason ?? null };
    default:
      return { kind: 'dead', reason: row.connect.reason ?? null };
  }
}

/** Whether to offer "Sign in with …": connectable, the server's application configured, not refused. */
export function offersOAuth(row: NetworkRow, refused: ReadonlySet<string>): boolean {
  return row.connect.status === 'supported' && row.oauth && !refused.has(row.network);
}

/** Answers of `POST …/oauth/{network}/start` meaning "this server has no such flow". */
export function oauthMissing(status: number): boolean {
  return status === 404 || status === 501;
}

export type ConnectReturn = { kind: 'grant'; grant: string } | { kind: 'error'; code: string; detail: string | null } | { kind: 'none' };

/** What the network's redirect brought back to `/social/connect`. */
export function connectReturn(search: string): ConnectReturn {
  const q = new URLSearchParams(search);
  const error = q.get('error');
  // The network's own words, when it refused: shown as text, at most a short paragraph.
  if (error) return { kind: 'error', code: error, detail: q.get('detail')?.slice(0, 300) || null };
  const grant = q.get('grant');
  // A sealed grant: URL-safe base64, a few hundred characters (the server takes up to 8 KiB).
  if (grant && /^[A-Za-z0-9_-]{1,8192}$/.test(grant)) return { kind: 'grant', grant };
  return { kind: 'none' };
}

const OAUTH_ERRORS = ['access_denied', 'expired', 'network'] as const;

/** The user's words for an OAuth error code. */
export function oauthErrorText(code: string, t: Translate): string {
  const known = (OAUTH_ERRORS as readonly string[]).includes(code)
    ? code
    : code === 'invalid_state' || code === 'not_found' || code === 'gone'
      ? 'expired'
      : code === 'refused' || code === 'unreachable'
        ? 'network'
        : null;
  return known ? t(`oauth.error.${known}` as MessageKey) : t('oauth.error.unknown', { code });
}

/** A community or page id as networks write them. */
export function validExternalId(value: string): boolean {
  return /^[A-Za-z0-9_.-]{1,100}$/.test(value.trim());
}

/** Bytes in the user's language: 512 B, 12.5 KB, 3.2 MB. */
export function formatBytes(bytes: number, lang: string): string {
  const units = lang === 'ru' ? ['Б', 'КБ', 'МБ', 'ГБ'] : ['B', 'KB', 'MB', 'GB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  const number = new Intl.NumberFormat(lang === 'ru' ? 'ru-RU' : 'en-GB', { maximumFractionDigits: digits }).format(value);
  return `${number} ${units[unit]}`;
}

/** The image types the library takes (the server checks the bytes again). */
export const MEDIA_TYPES = ['image/jpeg', 'image/png', 'image/gif', 'image/webp'];

export function acceptedMedia(file: { type: string; name: string }): boolean {
  if (MEDIA_TYPES.includes(file.type)) return true;
  // Some systems give no type for a dragged file: the extension then.
  return file.type === '' && /\.(jpe?g|png|gif|webp)$/i.test(file.name);
}

/** The short type name shown for a file: PNG, JPEG, … */
export function mediaLabel(mime: string): string {
  const sub = mime.split('/')[1] ?? mime;
  return sub.toUpperCase();
}

// --- triggers --------------------------------------------------------------------------------

export type ConditionKind = 'hashtag' | 'author';
export type TriggerActionKind = 'like' | 'dislike' | 'reply' | 'hide' | 'notify';

export interface TriggerDraft {
  name: string;
  condition: ConditionKind;
  value: string;
  /** '' for any profile. */
  profileId: string;
  action: TriggerActionKind;
  template: string;
  userId: string;
  enabled: boolean;
}

export const EMPTY_DRAFT: TriggerDraft = {
  name: '',
  condition: 'hashtag',
  value: '',
  profileId: '',
  action: 'like',
  template: '',
  userId: '',
  enabled: true,
};

export const REPLY_VARIABLES = ['author.name', 'item.text', 'network'];

/** The actions a trigger may take, in the order the form offers them. */
export const TRIGGER_ACTIONS: readonly TriggerActionKind[] = ['like', 'dislike', 'reply', 'hide', 'notify'];

/**
 * Why a trigger's action cannot be taken on the chosen profile's network, from its matrix row
 * (null when it can, or while the row is unknown). Only a dislike is refused by the server for
 * a network without it; for any profile it simply fires where the network has dislikes.
 */
export function triggerActionBlocked(action: TriggerActionKind, row: NetworkRow | undefined): string | null {
  if (action !== 'dislike' || !row) return null;
  const support = row.actions.find((a) => a.action === 'dislike');
  return support?.status === 'supported' ? null : (support?.reason ?? '');
}

/** `#Sale`, `sale` → `#Sale`; null when it is not a hashtag. */
export function hashtagOf(value: string): string | null {
  const bare = value.trim().replace(/^#/, '');
  return /^[\p{L}\p{N}_]{1,100}$/u.test(bare) ? `#${bare}` : null;
}

export type DraftErrors = Partial<Record<'name' | 'value' | 'template' | 'userId', MessageKey>>;

/** The API's input for a draft, or what is wrong with it. */
export function triggerInput(d: TriggerDraft): { input: TriggerInput } | { errors: DraftErrors } {
  const errors: DraftErrors = {};
  const name = d.name.trim();
  if (!name) errors.name = 'form.required';
  let condition: TriggerInput['condition'] | null = null;
  if (d.condition === 'hashtag') {
    const tag = hashtagOf(d.value);
    if (!d.value.trim()) errors.value = 'form.required';
    else if (!tag) errors.value = 'triggers.hashtagInvalid';
    else condition = { kind: 'hashtag', hashtag: tag };
  } else {
    const author = d.value.trim();
    if (!author) errors.value = 'form.required';
    else condition = { kind: 'author', author_id: author };
  }
  let action: TriggerInput['action'] | null = null;
  switch (d.action) {
    case 'reply':
      if (!d.template.trim()) errors.template = 'form.required';
      else action = { kind: 'reply', template: d.template };
      break;
    case 'notify':
      if (!d.userId) errors.userId = 'form.required';
      else action = { kind: 'notify', user_id: d.userId };
      break;
    default:
      action = { kind: d.action };
  }
  if (Object.keys(errors).length > 0 || !condition || !action) return { errors };
  return {
    input: { name, condition, action, enabled: d.enabled, profile_id: d.profileId || null },
  };
}

/** A stored trigger as a form's draft (to edit it, or to switch it on or off). */
export function draftOf(trigger: Trigger): TriggerDraft {
  const c = trigger.condition;
  const a = trigger.action;
  return {
    name: trigger.name,
    condition: c.kind,
    value: c.kind === 'hashtag' ? c.hashtag : c.author_id,
    profileId: trigger.profile_id ?? '',
    action: a.kind,
    template: a.kind === 'reply' ? a.template : '',
    userId: a.kind === 'notify' ? a.user_id : '',
    enabled: trigger.enabled,
  };
}

// --- tasks -----------------------------------------------------------------------------------

export const TASK_STATUSES: TaskStatus[] = ['failed', 'pending', 'running', 'done', 'skipped', 'cancelled'];

const TASK_KINDS = [
  'social.publish',
  'social.delete_post',
  'social.comment',
  'social.delete_comment',
  'social.hide_comment',
  'social.like',
  'social.unlike',
  'social.dislike',
  'social.undislike',
  'trigger.notify',
];

/** A task kind in the user's words (its own name when the console does not know it). */
export function taskKindText(kind: string, t: Translate): string {
  return TASK_KINDS.includes(kind) ? t(`task.${kind}` as MessageKey) : kind;
}

/** The server retries failed and skipped tasks, and cancels pending and failed ones. */
export const canRetry = (task: Pick<Task, 'status'>) => task.status === 'failed' || task.status === 'skipped';
export const canCancel = (task: Pick<Task, 'status'>) => task.status === 'pending' || task.status === 'failed';

// --- notifications ---------------------------------------------------------------------------

/** Notifications newer than the moment the user last opened the bell. */
export function unreadCount(items: Pick<Notification, 'created_at' | 'read_at'>[], seenAt: number): number {
  return items.filter((n) => !n.read_at && Date.parse(n.created_at) > seenAt).length;
}

/** A pushed notification joins the list once, newest first, at most `max` kept. */
export function withNotification(list: Notification[], n: Notification, max = 50): Notification[] {
  if (list.some((x) => x.id === n.id)) return list;
  return [n, ...list].sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at)).slice(0, max);
}

/** One line for a notification. */
export function notificationText(n: Pick<Notification, 'kind' | 'payload'>, t: Translate): string {
  const p = n.payload as Record<string, unknown>;
  if (n.kind === 'trigger') {
    const item = (p.item ?? {}) as Record<string, unknown>;
    const str = (v: unknown) => (typeof v === 'string' ? v : '');
    return t('bell.trigger', {
      rule: str(p.trigger_name),
      author: str(item.author_name) || str(item.author_id),
      network: networkName(str(item.network) || str(p.network), t),
    });
  }
  return t('bell.other', { kind: n.kind });
}

/** The item's text a trigger notification is about, if any. */
export function notificationQuote(n: Pick<Notification, 'payload'>): string {
  const item = ((n.payload as Record<string, unknown>).item ?? {}) as Record<string, unknown>;
  return typeof item.text === 'string' ? item.text : '';
}
