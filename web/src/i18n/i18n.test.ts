import { describe, expect, it } from 'vitest';
import { detectLang, format } from './index';
import { en } from './en';
import { ru } from './ru';

describe('language choice', () => {
  it('prefers the stored choice, then the browser, then English', () => {
    expect(detectLang(['ru-RU', 'en'], 'en')).toBe('en');
    expect(detectLang(['ru-RU', 'en-US'], null)).toBe('ru');
    expect(detectLang(['de-DE', 'ru'], null)).toBe('ru');
    expect(detectLang(['en-GB', 'ru'], null)).toBe('en');
    expect(detectLang(['de'], 'xx')).toBe('en');
  });

  it('fills placeholders and leaves unknown ones visible', () => {
    expect(format('{a} of {b}', { a: 1, b: 'two' })).toBe('1 of two');
    expect(format('hi {who}', {})).toBe('hi {who}');
  });

  it('has every message in both languages with the same placeholders', () => {
    const names = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const key of Object.keys(en) as (keyof typeof en)[]) {
      expect(ru[key], key).toBeTruthy();
      expect(names(ru[key]), key).toEqual(names(en[key]));
    }
  });
});
