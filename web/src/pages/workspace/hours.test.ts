import { describe, expect, it } from 'vitest';
import { formatDay, parseDay } from './hours';

describe('working hours as text', () => {
  it('round-trips periods', () => {
    const day = [
      { start: '09:00', end: '13:00' },
      { start: '14:00', end: '00:00' },
    ];
    expect(parseDay(formatDay(day))).toEqual(day);
    expect(parseDay('  ')).toEqual([]);
    expect(parseDay('9:00-10:00')).toBeNull();
    expect(parseDay('09:00-24:00')).toBeNull();
    expect(parseDay('09:00 – 18:00')).toEqual([{ start: '09:00', end: '18:00' }]);
  });
});
