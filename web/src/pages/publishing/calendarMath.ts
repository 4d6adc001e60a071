// Calendar date math in a time zone, without a date library: civil days as `YYYY-MM-DD` keys
// (plain calendar arithmetic, no zone involved), instants as milliseconds, and the two
// conversions between them through Intl. A wall-clock time the clocks skip (spring forward)
// does not exist; one they pass twice (fall back) is taken the first time — as the server does.

export type DayKey = string;

export interface Wall {
  year: number;
  month: number; // 1–12
  day: number;
  hour: number;
  minute: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Whether the browser knows the zone. */
export function isTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** The user's time zone: the browser's. */
export function browserTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** The wall-clock time at an instant in a zone. */
export function wallAt(instant: number, timeZone: string): Wall {
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(instant))) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  const n = (k: string) => parts[k] ?? 0;
  return { year: n('year'), month: n('month'), day: n('day'), hour: n('hour') % 24, minute: n('minute') };
}

function wallAsUtc(w: Wall): number {
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute);
}

/** The zone's offset from UTC at an instant, in ms (to the minute). */
export function offsetAt(instant: number, timeZone: string): number {
  const floored = Math.floor(instant / 60_000) * 60_000;
  return wallAsUtc(wallAt(floored, timeZone)) - floored;
}

function sameWall(a: Wall, b: Wall): boolean {
  return a.year === b.year && a.month === b.month && a.day === b.day && a.hour === b.hour && a.minute === b.minute;
}

/**
 * The instant a wall-clock time names in a zone: `null` when the clocks skip it; the first of
 * two when they pass it twice.
 */
export function instantOf(w: Wall, timeZone: string): number | null {
  const asUtc = wallAsUtc(w);
  const offsets = new Set([-12, -3, 0, 3, 12].map((h) => offsetAt(asUtc + h * 3_600_000, timeZone)));
  const found = [...offsets].map((o) => asUtc - o).filter((t) => sameWall(wallAt(t, timeZone), w));
  return found.length === 0 ? null : Math.min(...found);
}

// --- civil days -------------------------------------------------------------------------------

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

export function dayKey(year: number, month: number, day: number): DayKey {
  return `${pad(year, 4)}-${pad(month)}-${pad(day)}`;
}

export function parseDay(key: DayKey): { year: number; month: number; day: number } {
  const [year = 0, month = 0, day = 0] = key.split('-').map(Number);
  return { year, month, day };
}

export function isDayKey(key: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(key)) return false;
  const { year, month, day } = parseDay(key);
  const d = new Date(Date.UTC(year, month - 1, day));
  return d.getUTCFullYear() === year && d.getUTCMonth() === month - 1 && d.getUTCDate() === day;
}

export function addDays(key: DayKey, n: number): DayKey {
  const { year, month, day } = parseDay(key);
  const d = new Date(Date.UTC(year, month - 1, day + n));
  return dayKey(d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate());
}

/** 0 for Monday … 6 for Sunday. */
export function weekday(key: DayKey): number {
  const { year, month, day } = parseDay(key);
  return (new Date(Date.UTC(year, month - 1, day)).getUTCDay() + 6) % 7;
}

export function startOfWeek(key: DayKey): DayKey {
  return addDays(key, -weekday(key));
}

export function dayOf(instant: number, timeZone: string): DayKey {
  const w = wallAt(instant, timeZone);
  return dayKey(w.year, w.month, w.day);
}

export function timeOf(instant: number, timeZone: string): string {
  const w = wallAt(instant, timeZone);
  return `${pad(w.hour)}:${pad(w.minute)}`;
}

/** `YYYY-MM-DDTHH:MM`, as the schedule endpoint takes a local time. */
export function wallString(day: DayKey, time: string): string {
  return `${day}T${time}`;
}

/** `HH:MM` or null. */
export function parseTime(time: string): { hour: number; minute: number } | null {
  const m = /^(\d{1,2}):(\d{2})$/.exec(time.trim());
  if (!m) return null;
  const hour = Number(m[1]);
  const minute = Number(m[2]);
  return hour < 24 && minute < 60 ? { hour, minute } : null;
}

export function instantAtDayTime(day: DayKey, time: string, timeZone: string): number | null {
  const t = parseTime(time);
  if (!t || !isDayKey(day)) return null;
  return instantOf({ ...parseDay(day), ...t }, timeZone);
}

/**
 * Six weeks (Monday first) from the week holding the month's first day: always the same
 * height, and the first days of the next month are always there to drop on.
 */
export function monthGrid(year: number, month: number): DayKey[][] {
  const start = startOfWeek(dayKey(year, month, 1));
  return Array.from({ length: 6 }, (_, w) => Array.from({ length: 7 }, (_, i) => addDays(start, w * 7 + i)));
}

export function weekDays(anyDay: DayKey): DayKey[] {
  const start = startOfWeek(anyDay);
  return Array.from({ length: 7 }, (_, i) => addDays(start, i));
}

/** The instants from the start of the first day to the start of the day after the last. */
export function rangeOf(days: DayKey[], timeZone: string): { from: number; to: number } {
  const first = days[0] ?? '1970-01-01';
  const last = days[days.length - 1] ?? first;
  const startOf = (d: DayKey) => {
    // Midnight may be skipped (some zones change clocks at 00:00): the day then starts later.
    for (let minute = 0; minute < 24 * 60; minute += 30) {
      const t = instantOf({ ...parseDay(d), hour: Math.floor(minute / 60), minute: minute % 60 }, timeZone);
      if (t !== null) return t;
    }
    return Date.UTC(parseDay(d).year, parseDay(d).month - 1, parseDay(d).day);
  };
  return { from: startOf(first), to: startOf(addDays(last, 1)) };
}

export function addMonths(year: number, month: number, n: number): { year: number; month: number } {
  const index = year * 12 + (month - 1) + n;
  return { year: Math.floor(index / 12), month: (index % 12) + 1 };
}

export type Move = { ok: true; at: number; wall: string } | { ok: false; reason: 'past' | 'no_such_time' };

/**
 * Where an item lands when dropped on a day (month view: its time of day is kept) or on a day
 * and hour (week view: the hour changes, the minutes are kept), in the zone; refused when that
 * time does not exist there or is not in the future.
 */
export function moveTo(instant: number, timeZone: string, day: DayKey, hour: number | null, now: number): Move {
  const w = wallAt(instant, timeZone);
  const time = `${pad(hour ?? w.hour)}:${pad(w.minute)}`;
  const at = instantAtDayTime(day, time, timeZone);
  if (at === null) return { ok: false, reason: 'no_such_time' };
  if (at <= now) return { ok: false, reason: 'past' };
  return { ok: true, at, wall: wallString(day, time) };
}

/** Whether a whole slot is over: a day (hour null) or one hour of it. */
export function slotIsPast(day: DayKey, hour: number | null, timeZone: string, now: number): boolean {
  const today = dayOf(now, timeZone);
  if (day !== today) return day < today;
  if (hour === null) return false;
  return hour < wallAt(now, timeZone).hour;
}
