import { describe, expect, it } from 'vitest';
import { CHANNEL_RIGHTS, delegation, withChannelRights } from './rights';

describe('channel delegation', () => {
  it('names none, full and partial', () => {
    expect(delegation([])).toBe('none');
    expect(delegation(undefined)).toBe('none');
    expect(delegation(CHANNEL_RIGHTS)).toBe('full');
    expect(delegation(['read', 'reply'])).toBe('partial');
  });

  it('replaces one channel, adds read to any right and drops empty grants', () => {
    const grants = [
      { channel_id: 'a', rights: ['read' as const] },
      { channel_id: 'b', rights: ['read' as const, 'reply' as const] },
    ];
    expect(withChannelRights(grants, 'a', ['reply'])).toEqual([
      grants[1],
      { channel_id: 'a', rights: ['read', 'reply'] },
    ]);
    expect(withChannelRights(grants, 'b', [])).toEqual([grants[0]]);
    expect(withChannelRights([], 'c', ['analytics', 'read'])).toEqual([{ channel_id: 'c', rights: ['read', 'analytics'] }]);
  });
});
