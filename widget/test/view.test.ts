import assert from 'node:assert/strict';
import { test } from 'node:test';

import { initials, safeLink } from '../src/view';

test('only plain https links are shown', () => {
  assert.equal(safeLink('https://t.me/shop'), 'https://t.me/shop');
  assert.equal(safeLink('javascript:alert(1)'), null);
  assert.equal(safeLink('http://t.me/shop'), null);
  assert.equal(safeLink('https://t.me/"><script>'), null);
  assert.equal(safeLink(null), null);
});

test('avatars show the operator’s initials', () => {
  assert.equal(initials('Анна Петрова'), 'АП');
  assert.equal(initials('  bob '), 'B');
  assert.equal(initials(''), '?');
});
