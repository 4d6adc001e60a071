import { describe, expect, it } from 'vitest';
import { attachmentTypes, isMimePattern } from './widgetRules';

describe('widget attachment types', () => {
  it('takes types and families, nothing else', () => {
    expect(isMimePattern('image/png')).toBe(true);
    expect(isMimePattern('image/*')).toBe(true);
    expect(isMimePattern('application/vnd.openxmlformats-officedocument.wordprocessingml.document')).toBe(true);
    for (const bad of ['image', '*/*', 'image/', '/png', 'image/png; charset=x', 'text/ plain', '']) {
      expect(isMimePattern(bad)).toBe(false);
    }
  });

  it('cleans what was typed and keeps each type once', () => {
    expect(attachmentTypes([' Image/PNG ', 'image/png', 'nonsense', 'application/pdf'])).toEqual(['image/png', 'application/pdf']);
  });
});
