import { describe, expect, it } from 'vitest';
import { TYPING_SHOW_MS, noteTyping, pruneTyping, typingIn } from './typing';

describe('typing indicators', () => {
  it('shows the customer typing for a few seconds, then forgets it', () => {
    let s = noteTyping({}, 'c1', null, 1000);
    expect(typingIn(s, 'c1', 1000)).toEqual({ contact: true, users: [] });
    expect(typingIn(s, 'c2', 1000)).toEqual({ contact: false, users: [] });
    expect(typingIn(s, 'c1', 1000 + TYPING_SHOW_MS)).toEqual({ contact: false, users: [] });
    s = pruneTyping(s, 1000 + TYPING_SHOW_MS);
    expect(s).toEqual({});
  });

  it('keeps the customer and colleagues apart, each with its own deadline', () => {
    let s = noteTyping({}, 'c1', 'anna', 0);
    s = noteTyping(s, 'c1', null, 2000);
    expect(typingIn(s, 'c1', 3000)).toEqual({ contact: true, users: ['anna'] });
    s = pruneTyping(s, TYPING_SHOW_MS + 1);
    expect(typingIn(s, 'c1', TYPING_SHOW_MS + 1)).toEqual({ contact: true, users: [] });
    expect(s.c1?.users).toEqual({});
  });

  it('a repeated frame extends the indicator', () => {
    let s = noteTyping({}, 'c1', null, 0);
    s = noteTyping(s, 'c1', null, 4000);
    expect(typingIn(s, 'c1', TYPING_SHOW_MS + 1000).contact).toBe(true);
    expect(pruneTyping(s, TYPING_SHOW_MS + 1000)).toBe(s);
  });

  it('pruning with nothing expired returns the same object', () => {
    const s = noteTyping(noteTyping({}, 'c1', 'u', 0), 'c2', null, 0);
    expect(pruneTyping(s, 10)).toBe(s);
    expect(Object.keys(pruneTyping(s, TYPING_SHOW_MS))).toEqual([]);
  });
});
