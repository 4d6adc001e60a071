import { describe, expect, it } from 'vitest';
import { byName, capacity, competency } from './routingPeople';

describe('routing people', () => {
  it('accepts competency 1 to 100 and capacity 0 to 1000, whole numbers only', () => {
    expect(competency('1')).toBe(1);
    expect(competency(' 100 ')).toBe(100);
    for (const bad of ['0', '101', '', '5.5', '-3', 'abc', '1e2']) expect(competency(bad)).toBeNull();
    expect(capacity('0')).toBe(0);
    expect(capacity(1000)).toBe(1000);
    expect(capacity('1001')).toBeNull();
  });

  it('names rows from the people list, unknown ones last', () => {
    const rows = [{ user_id: 'u3' }, { user_id: 'u1' }, { user_id: 'u2' }];
    const people = [
      { id: 'u1', display_name: 'Boris' },
      { id: 'u2', display_name: 'Anna' },
    ];
    expect(byName(rows, people).map((r) => r.name)).toEqual(['Anna', 'Boris', null]);
  });
});
