import { describe, expect, it } from 'vitest';
import { MAX_FIELDS, fieldsOf, fieldsProblem, rowsOf, type Row } from './contactFields';

describe('contact fields', () => {
  it('round-trips through rows, keeping numbers and booleans left as they were', () => {
    const before = { phone: '+79991234567', orders: 3, vip: true };
    const rows = rowsOf(before);
    expect(rows).toEqual([
      ['phone', '+79991234567'],
      ['orders', '3'],
      ['vip', 'true'],
    ]);
    expect(fieldsOf(rows, before)).toEqual(before);
    // Edited values become text; blank names are dropped and names are trimmed.
    const edited: Row[] = [
      [' phone ', '+7 999'],
      ['orders', '4'],
      ['', 'ignored'],
    ];
    expect(fieldsOf(edited, before)).toEqual({ phone: '+7 999', orders: '4' });
  });

  it('says what is wrong before the server does', () => {
    expect(fieldsProblem([['city', 'Tver']])).toBeNull();
    expect(fieldsProblem([['city', 'Tver'], [' city', 'Omsk']])).toBe('contact.duplicateField');
    expect(fieldsProblem([['x'.repeat(65), '1']])).toBe('contact.longFieldName');
    expect(fieldsProblem([['note', 'y'.repeat(2001)]])).toBe('contact.longFieldValue');
    const many: Row[] = Array.from({ length: MAX_FIELDS + 1 }, (_, i) => [`f${i}`, 'v']);
    expect(fieldsProblem(many)).toBe('contact.tooManyFields');
    // Rows without a name do not count.
    expect(fieldsProblem([...many.slice(1), ['', '']])).toBeNull();
  });
});
