import assert from 'node:assert/strict';
import { test } from 'node:test';

import { pickLang, texts } from '../src/i18n';

test('the language is the browser’s first Russian or English one, English otherwise', () => {
  assert.equal(pickLang(['ru-RU', 'en']), 'ru');
  assert.equal(pickLang(['de-DE', 'ru']), 'ru');
  assert.equal(pickLang(['en-GB', 'ru']), 'en');
  assert.equal(pickLang(['de', 'fr']), 'en');
  assert.equal(pickLang([]), 'en');
});

test('both languages have every text', () => {
  const keys = (o: object) => Object.keys(o).sort();
  assert.deepEqual(keys(texts.ru), keys(texts.en));
  for (const [k, v] of Object.entries(texts.ru)) {
    if (typeof v === 'string') assert.match(v, /[а-яё]/i, `ru.${k} is Russian`);
  }
  assert.equal(texts.en.unread(3), 'Unread messages: 3');
});
