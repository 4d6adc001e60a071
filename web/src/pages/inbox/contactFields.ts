// A contact's custom fields as the editor's rows, and back. The server's rules (at most 100
// fields, names of 1–64 characters without surrounding spaces, values text of up to 2,000
// characters, numbers or booleans) are checked here first so the editor can say what is wrong
// beside the row; the server checks again.
import type { MessageKey } from '../../i18n';

export const MAX_FIELDS = 100;
export const MAX_NAME_CHARS = 64;
export const MAX_VALUE_CHARS = 2000;

export type FieldValue = string | number | boolean;
export type Row = [name: string, value: string];

/** The rows of a contact's fields; values that are not text are shown as typed. */
export function rowsOf(fields: Record<string, unknown>): Row[] {
  return Object.entries(fields).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]);
}

/** What is wrong with the rows, as a message key; `null` when they can be saved. */
export function fieldsProblem(rows: Row[]): MessageKey | null {
  const named = rows.filter(([k]) => k.trim() !== '');
  if (named.length > MAX_FIELDS) return 'contact.tooManyFields';
  const names = named.map(([k]) => k.trim());
  if (new Set(names).size !== names.length) return 'contact.duplicateField';
  if (names.some((k) => [...k].length > MAX_NAME_CHARS)) return 'contact.longFieldName';
  if (named.some(([, v]) => [...v].length > MAX_VALUE_CHARS)) return 'contact.longFieldValue';
  return null;
}

/**
 * The fields to save: rows without a name are dropped, names trimmed. A value left exactly as
 * it was shown keeps its type (a number stays a number); anything typed is text.
 */
export function fieldsOf(rows: Row[], before: Record<string, unknown>): Record<string, FieldValue> {
  const out: Record<string, FieldValue> = {};
  for (const [rawName, text] of rows) {
    const name = rawName.trim();
    if (!name) continue;
    const old = before[name];
    out[name] = (typeof old === 'number' || typeof old === 'boolean') && JSON.stringify(old) === text ? old : text;
  }
  return out;
}
