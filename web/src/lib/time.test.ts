import { describe, expect, it } from 'vitest';
import { waitingTime } from './time';
import { format } from '../i18n';
import { en } from '../i18n/en';
import type { MessageKey } from '../i18n';

const t = (key: MessageKey, vars?: Record<string, string | number>) => format(en[key], vars);

describe('waitingTime', () => {
  const now = Date.parse('2026-01-02T12:00:00Z');
  it('rounds down to the largest whole unit', () => {
    expect(waitingTime('2026-01-02T11:59:30Z', now, t)).toBe(en['time.now']);
    expect(waitingTime('2026-01-02T11:55:00Z', now, t)).toBe('5 min');
    expect(waitingTime('2026-01-02T09:59:00Z', now, t)).toBe('2 h');
    expect(waitingTime('2025-12-30T11:00:00Z', now, t)).toBe('3 d');
  });
  it('never shows a negative wait for a clock ahead of ours', () => {
    expect(waitingTime('2026-01-02T12:05:00Z', now, t)).toBe(en['time.now']);
  });
});
