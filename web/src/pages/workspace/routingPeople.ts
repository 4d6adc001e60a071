// The people part of routing settings: each group member's competency (1–100, which
// "most skilled first" prefers) and each operator's capacity (conversations held at once,
// 0–1,000). Values are edited as text and checked here with the server's bounds.

export const COMPETENCY_MIN = 1;
export const COMPETENCY_MAX = 100;
export const CAPACITY_MAX = 1000;

/** A whole number within [min, max] typed as text, else `null`. */
export function wholeIn(raw: string | number, min: number, max: number): number | null {
  const text = String(raw).trim();
  if (!/^\d+$/.test(text)) return null;
  const n = Number(text);
  return n >= min && n <= max ? n : null;
}

export const competency = (raw: string | number) => wholeIn(raw, COMPETENCY_MIN, COMPETENCY_MAX);
export const capacity = (raw: string | number) => wholeIn(raw, 0, CAPACITY_MAX);

export interface Named {
  id: string;
  display_name: string;
}

/** Rows keyed by user, named from the client's people, in name order (unknown ids last). */
export function byName<T extends { user_id: string }>(rows: T[], people: Named[]): (T & { name: string | null })[] {
  const names = new Map(people.map((p) => [p.id, p.display_name]));
  return rows
    .map((r) => ({ ...r, name: names.get(r.user_id) ?? null }))
    .sort((a, b) => (a.name === null ? 1 : b.name === null ? -1 : a.name.localeCompare(b.name)));
}
