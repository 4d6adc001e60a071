// Compact durations and times for lists ("5 min", "2 h", "3 d"), in the console's language.
import type { Translate } from '../i18n';

export function waitingTime(since: string | Date, now: number, t: Translate): string {
  const ms = Math.max(0, now - new Date(since).getTime());
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 1) return t('time.now');
  if (minutes < 60) return t('time.minutes', { n: minutes });
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return t('time.hours', { n: hours });
  return t('time.days', { n: Math.floor(hours / 24) });
}

export function dateTime(value: string | Date, lang: string): string {
  return new Date(value).toLocaleString(lang === 'ru' ? 'ru-RU' : 'en-GB', {
    dateStyle: 'short',
    timeStyle: 'short',
  });
}
