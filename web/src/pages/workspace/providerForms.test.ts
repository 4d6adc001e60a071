import { describe, expect, it } from 'vitest';
import { PROVIDER_FORMS, fieldProblem, parseObject, randomSecret, shownValue, storedValue } from './providerForms';

const api = PROVIDER_FORMS.api!;
const outbound = api.settings[0]!;
const inbound = api.credentials[0]!;

describe('provider form validation', () => {
  it('requires the API channel outbound URL to be http or https', () => {
    expect(fieldProblem(outbound, '', false)).toBe('form.required');
    expect(fieldProblem(outbound, 'ftp://x', false)).toBe('form.url');
    expect(fieldProblem(outbound, 'javascript:alert(1)', false)).toBe('form.url');
    expect(fieldProblem(outbound, 'not a url', false)).toBe('form.url');
    expect(fieldProblem(outbound, 'https://crm.example/hook', false)).toBeNull();
  });

  it('keeps a stored secret when it is left empty while editing', () => {
    expect(fieldProblem(inbound, '', false)).toBe('form.required');
    expect(fieldProblem(inbound, '', true)).toBeNull();
  });

  it('generates long URL-safe secrets', () => {
    const a = randomSecret();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(randomSecret()).not.toBe(a);
  });
});

describe('generic provider settings', () => {
  it('accept only JSON objects', () => {
    expect(parseObject('')).toEqual({ value: {} });
    expect(parseObject('{"a": 1}')).toEqual({ value: { a: 1 } });
    for (const bad of ['[1]', '"x"', '1', 'null', '{a:1}']) expect(parseObject(bad)).toEqual({ problem: 'form.jsonObject' });
  });
});

describe('messenger and mailbox forms', () => {
  const spec = (provider: keyof typeof PROVIDER_FORMS, key: string) => {
    const form = PROVIDER_FORMS[provider]!;
    return [...form.settings, ...form.credentials].find((f) => f.key === key)!;
  };

  it('has a form for every provider whose connection can be tested', () => {
    for (const p of ['telegram', 'whatsapp', 'vk', 'viber', 'max', 'email'] as const) expect(PROVIDER_FORMS[p], p).toBeTruthy();
  });

  it('knows a Telegram bot token from a pasted URL or another token', () => {
    const token = spec('telegram', 'bot_token');
    expect(fieldProblem(token, '7001234567:AAH-omnihub_test_bot_token', false)).toBeNull();
    expect(fieldProblem(token, 'https://api.telegram.org/bot123:abc', false)).toBe('form.telegramToken');
    expect(fieldProblem(token, '7001234567 AAH-omnihub_test_bot_token', false)).toBe('form.telegramToken');
    expect(fieldProblem(token, '', false)).toBe('form.required');
  });

  it('holds secrets to the alphabet and length each provider accepts', () => {
    const max = spec('max', 'webhook_secret');
    expect(fieldProblem(max, 'abcd', false)).toBe('form.maxSecret');
    expect(fieldProblem(max, 'abc-de_1', false)).toBeNull();
    expect(fieldProblem(max, 'has space', false)).toBe('form.maxSecret');
    const vk = spec('vk', 'secret');
    expect(fieldProblem(vk, 'x'.repeat(51), false)).toBe('form.vkSecret');
    expect(fieldProblem(vk, randomSecret(), false)).toBeNull();
    const viber = spec('viber', 'auth_token');
    expect(fieldProblem(viber, '445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im9', false)).toBeNull();
    expect(fieldProblem(viber, '445da6az1s345z78', false)).toBe('form.viberToken');
    expect(fieldProblem(spec('vk', 'group_id'), '-12', false)).toBe('form.number');
  });

  it('takes mailbox hosts without scheme or port, and ports in range', () => {
    const host = spec('email', 'imap_host');
    for (const good of ['imap.example.com', 'mail', '192.168.0.10', '::1']) expect(fieldProblem(host, good, false), good).toBeNull();
    for (const bad of ['https://imap.example.com', 'imap.example.com:993', 'imap example.com', '-bad.example'])
      expect(fieldProblem(host, bad, false), bad).toBe('form.host');
    const port = spec('email', 'imap_port');
    expect(fieldProblem(port, '993', false)).toBeNull();
    expect(fieldProblem(port, '0', false)).toBe('form.port');
    expect(fieldProblem(port, '70000', false)).toBe('form.port');
    expect(fieldProblem(port, '', false)).toBeNull();
    expect(fieldProblem(spec('email', 'imap_security'), 'ssl', false)).toBe('form.choice');
  });

  it('stores numbers as numbers and toggles as the provider expects', () => {
    expect(storedValue(spec('email', 'smtp_port'), ' 465 ')).toBe(465);
    expect(storedValue(spec('email', 'smtp_port'), '')).toBeUndefined();
    const telegramPoll = spec('telegram', 'updates');
    expect(storedValue(telegramPoll, 'on')).toBe('long_poll');
    expect(storedValue(telegramPoll, '')).toBeUndefined();
    expect(shownValue(telegramPoll, 'long_poll')).toBe('on');
    expect(shownValue(telegramPoll, 'webhook')).toBe('');
    const vkPoll = spec('vk', 'long_poll');
    expect(storedValue(vkPoll, 'on')).toBe(true);
    expect(shownValue(vkPoll, true)).toBe('on');
    expect(shownValue(spec('email', 'imap_port'), 993)).toBe('993');
  });
});
