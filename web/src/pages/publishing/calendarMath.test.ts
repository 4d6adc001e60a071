import { describe, expect, it } from 'vitest';
import {
  addDays,
  addMonths,
  dayOf,
  instantAtDayTime,
  instantOf,
  isDayKey,
  monthGrid,
  moveTo,
  offsetAt,
  rangeOf,
  slotIsPast,
  timeOf,
  wallAt,
  weekDays,
  weekday,
} from './calendarMath';

const utc = (s: string) => Date.parse(s);

describe('civil days', () => {
  it('adds days across months, years and leap days', () => {
    expect(addDays('2024-02-28', 1)).toBe('2024-02-29');
    expect(addDays('2023-02-28', 1)).toBe('2023-03-01');
    expect(addDays('2026-12-31', 1)).toBe('2027-01-01');
    expect(addDays('2026-03-01', -1)).toBe('2026-02-28');
  });

  it('knows weekdays, Monday first', () => {
    expect(weekday('2026-11-30')).toBe(0); // a Monday
    expect(weekday('2026-11-29')).toBe(6); // a Sunday
    expect(weekDays('2026-11-28')).toEqual(['2026-11-23', '2026-11-24', '2026-11-25', '2026-11-26', '2026-11-27', '2026-11-28', '2026-11-29']);
  });

  it('shows six whole weeks from the one holding the first day', () => {
    const grid = monthGrid(2026, 11);
    expect(grid[0]?.[0]).toBe('2026-10-26');
    expect(grid.at(-1)?.at(-1)).toBe('2026-12-06');
    expect(grid.every((w) => w.length === 7)).toBe(true);
    // Whatever the month, the day after its last is on the grid (to drop on).
    for (let m = 1; m <= 12; m++) {
      const days = monthGrid(2026, m).flat();
      const last = addDays(m === 12 ? '2027-01-01' : `2026-${String(m + 1).padStart(2, '0')}-01`, -1);
      expect(days, `month ${m}`).toContain(addDays(last, 1));
    }
    expect(monthGrid(2021, 2)[0]?.[0]).toBe('2021-02-01');
    expect(addMonths(2026, 12, 1)).toEqual({ year: 2027, month: 1 });
    expect(addMonths(2026, 1, -1)).toEqual({ year: 2025, month: 12 });
  });

  it('checks day keys', () => {
    expect(isDayKey('2026-02-29')).toBe(false);
    expect(isDayKey('2028-02-29')).toBe(true);
    expect(isDayKey('2026-1-01')).toBe(false);
  });
});

describe('time zones', () => {
  it('reads the wall clock of an instant in a zone', () => {
    const t = utc('2026-11-28T21:30:00Z');
    expect(timeOf(t, 'Europe/Moscow')).toBe('00:30');
    expect(dayOf(t, 'Europe/Moscow')).toBe('2026-11-29');
    expect(dayOf(t, 'UTC')).toBe('2026-11-28');
    expect(dayOf(t, 'America/New_York')).toBe('2026-11-28');
    expect(offsetAt(t, 'Asia/Kolkata')).toBe(330 * 60_000);
  });

  it('turns a wall-clock time into an instant', () => {
    expect(instantAtDayTime('2026-11-28', '10:00', 'Europe/Moscow')).toBe(utc('2026-11-28T07:00:00Z'));
    expect(instantAtDayTime('2026-07-01', '10:00', 'Europe/Berlin')).toBe(utc('2026-07-01T08:00:00Z'));
    expect(instantAtDayTime('2026-01-01', '10:00', 'Europe/Berlin')).toBe(utc('2026-01-01T09:00:00Z'));
    expect(instantAtDayTime('2026-13-01', '10:00', 'UTC')).toBeNull();
    expect(instantAtDayTime('2026-11-28', '24:00', 'UTC')).toBeNull();
  });

  it('has no instant for a time the clocks skip, and the first of a time they repeat', () => {
    // Berlin springs forward on 2026-03-29 at 02:00 → 03:00 and falls back on 2026-10-25 at 03:00 → 02:00.
    expect(instantOf({ year: 2026, month: 3, day: 29, hour: 2, minute: 30 }, 'Europe/Berlin')).toBeNull();
    expect(instantOf({ year: 2026, month: 10, day: 25, hour: 2, minute: 30 }, 'Europe/Berlin')).toBe(utc('2026-10-25T00:30:00Z'));
    // New York: 2026-03-08 02:00 → 03:00.
    expect(instantOf({ year: 2026, month: 3, day: 8, hour: 2, minute: 15 }, 'America/New_York')).toBeNull();
    expect(instantOf({ year: 2026, month: 3, day: 8, hour: 3, minute: 15 }, 'America/New_York')).toBe(utc('2026-03-08T07:15:00Z'));
  });

  it('keeps the time of day when a post moves across a clock change', () => {
    const before = utc('2026-03-28T09:00:00Z'); // 10:00 in Berlin (winter time)
    expect(timeOf(before, 'Europe/Berlin')).toBe('10:00');
    const now = utc('2026-03-01T00:00:00Z');
    const moved = moveTo(before, 'Europe/Berlin', '2026-03-30', null, now);
    expect(moved).toEqual({ ok: true, at: utc('2026-03-30T08:00:00Z'), wall: '2026-03-30T10:00' });
  });

  it('moves to an hour of a day in the week view, keeping the minutes', () => {
    const at = utc('2026-11-30T07:15:00Z'); // 10:15 in Moscow
    const now = utc('2026-11-28T00:00:00Z');
    expect(moveTo(at, 'Europe/Moscow', '2026-12-01', 18, now)).toEqual({ ok: true, at: utc('2026-12-01T15:15:00Z'), wall: '2026-12-01T18:15' });
  });

  it('refuses the past and times that do not exist', () => {
    const now = utc('2026-11-28T12:00:00Z');
    const at = utc('2026-11-29T10:00:00Z');
    expect(moveTo(at, 'UTC', '2026-11-28', null, now)).toEqual({ ok: false, reason: 'past' });
    expect(moveTo(at, 'UTC', '2026-11-28', 13, now)).toMatchObject({ ok: true, wall: '2026-11-28T13:00' });
    const skipped = utc('2026-03-20T01:30:00Z'); // 02:30 in Berlin
    expect(moveTo(skipped, 'Europe/Berlin', '2026-03-29', null, utc('2026-03-01T00:00:00Z'))).toEqual({ ok: false, reason: 'no_such_time' });
  });

  it('knows which slots are over', () => {
    const now = utc('2026-11-28T12:30:00Z');
    expect(slotIsPast('2026-11-27', null, 'UTC', now)).toBe(true);
    expect(slotIsPast('2026-11-28', null, 'UTC', now)).toBe(false);
    expect(slotIsPast('2026-11-28', 11, 'UTC', now)).toBe(true);
    expect(slotIsPast('2026-11-28', 12, 'UTC', now)).toBe(false);
    // Already the 29th in Vladivostok.
    expect(slotIsPast('2026-11-28', null, 'Asia/Vladivostok', utc('2026-11-28T15:00:00Z'))).toBe(true);
  });

  it('spans a view from the start of its first day to the start of the day after its last', () => {
    const r = rangeOf(weekDays('2026-11-28'), 'Europe/Moscow');
    expect(r.from).toBe(utc('2026-11-22T21:00:00Z'));
    expect(r.to).toBe(utc('2026-11-29T21:00:00Z'));
    // A week with a clock change is 167 hours long.
    const dst = rangeOf(weekDays('2026-03-29'), 'Europe/Berlin');
    expect((dst.to - dst.from) / 3_600_000).toBe(167);
    expect(wallAt(dst.from, 'Europe/Berlin')).toMatchObject({ day: 23, hour: 0, minute: 0 });
  });
});
