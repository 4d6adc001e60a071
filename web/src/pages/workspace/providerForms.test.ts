import { describe, expect, it } from 'vitest';
import { PROVIDER_FORMS, fieldProblem, parseObject, randomSecret } from './providerForms';

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
