import { describe, expect, it } from 'vitest';
import { linkify, safeHref } from './sanitize';

describe('safeHref', () => {
  it('keeps http, https and mailto addresses', () => {
    expect(safeHref('https://example.com/a?b=1')).toBe('https://example.com/a?b=1');
    expect(safeHref('http://example.com')).toBe('http://example.com/');
    expect(safeHref('mailto:someone@example.com')).toBe('mailto:someone@example.com');
  });

  it('refuses script, data and other schemes however they are spelt', () => {
    for (const bad of [
      'javascript:alert(1)',
      'JaVaScRiPt:alert(1)',
      ' javascript:alert(1)',
      'java\tscript:alert(1)',
      'java\nscript:alert(1)',
      'data:text/html,<script>alert(1)</script>',
      'vbscript:msgbox(1)',
      'file:///etc/passwd',
      '//evil.example/x',
      '/relative/path',
      'http://',
      '',
    ]) {
      expect(safeHref(bad), bad).toBeNull();
    }
  });
});

describe('linkify', () => {
  it('turns safe addresses into links and keeps everything else as text', () => {
    const segments = linkify('see https://example.com/x, or javascript:alert(1) and www.ok.ru.');
    expect(segments).toEqual([
      { kind: 'text', text: 'see ' },
      { kind: 'link', text: 'https://example.com/x', href: 'https://example.com/x' },
      { kind: 'text', text: ', or javascript:alert(1) and ' },
      { kind: 'link', text: 'www.ok.ru', href: 'https://www.ok.ru/' },
      { kind: 'text', text: '.' },
    ]);
  });

  it('leaves markup as plain text, losing nothing', () => {
    const text = '<img src=x onerror=alert(1)> <a href="javascript:alert(1)">x</a>';
    const segments = linkify(text);
    expect(segments.every((s) => s.kind === 'text')).toBe(true);
    expect(segments.map((s) => s.text).join('')).toBe(text);
  });

  it('does not let a quote or angle bracket into a link', () => {
    const segments = linkify('https://example.com/"onmouseover="x <b>');
    expect(segments[0]).toEqual({ kind: 'link', text: 'https://example.com/', href: 'https://example.com/' });
  });
});
