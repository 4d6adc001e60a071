// The widget's rules for visitors' files, as the settings form edits them.

export const MB = 1024 * 1024;
/** The most a widget may take per file (the server's own upload limit applies too). */
export const MAX_ATTACHMENT_MB = 100;

/** A MIME type (`image/png`) or a whole family (`image/*`). */
export function isMimePattern(s: string): boolean {
  return /^[a-z0-9][a-z0-9!#$&^_.+-]*\/(\*|[a-z0-9][a-z0-9!#$&^_.+-]*)$/.test(s);
}

/** The types as typed: trimmed, lower-cased, anything that is not a type or family dropped,
 * each once. */
export function attachmentTypes(typed: string[]): string[] {
  return [...new Set(typed.map((x) => x.trim().toLowerCase()).filter(isMimePattern))];
}
