// The website widget: create one, edit its origins, look, greeting, forms and messenger links
// with a live preview, and copy the snippet for the site. The preview draws the same parts the
// widget does from the form's current values; the real widget runs only on the client's site.
import {
  Button,
  Checkbox,
  CopyButton,
  Group,
  NumberInput,
  SegmentedControl,
  Select,
  Stack,
  Switch,
  TagsInput,
  Text,
  TextInput,
  Textarea,
  Title,
} from '@mantine/core';
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { ok } from '../../api/client';
import type { WidgetSettings, WidgetView } from '../../api/types';
import { useApi } from '../../auth/session';
import { ErrorNote } from '../../components/ErrorNote';
import { PageTitle } from '../../components/Page';
import { useT } from '../../i18n';
import { MAX_ATTACHMENT_MB, MB, attachmentTypes } from './widgetRules';

type Field = 'name' | 'email' | 'phone';
const FIELDS: Field[] = ['name', 'email', 'phone'];
const MESSENGERS = ['telegram', 'whatsapp', 'vk', 'max'] as const;

/** Settings with every optional part present, as the form edits them. */
type Full = { [K in keyof WidgetSettings]-?: NonNullable<WidgetSettings[K]> };

/** Settings with every optional part present, for the form. */
export function completeSettings(s: Partial<WidgetSettings> | undefined): Full {
  return {
    origins: s?.origins ?? [],
    appearance: {
      accent_color: s?.appearance?.accent_color ?? '#2563eb',
      text_color: s?.appearance?.text_color ?? '#ffffff',
      position: s?.appearance?.position ?? 'bottom_right',
      title: s?.appearance?.title ?? { ru: 'Чат с нами', en: 'Chat with us' },
      greeting: s?.appearance?.greeting ?? { ru: 'Здравствуйте! Чем можем помочь?', en: 'Hello! How can we help?' },
    },
    prechat: { enabled: s?.prechat?.enabled ?? false, fields: s?.prechat?.fields ?? [] },
    offline: {
      enabled: s?.offline?.enabled ?? true,
      message: s?.offline?.message ?? { ru: '', en: '' },
    },
    messengers: {
      telegram: s?.messengers?.telegram ?? null,
      whatsapp: s?.messengers?.whatsapp ?? null,
      vk: s?.messengers?.vk ?? null,
      max: s?.messengers?.max ?? null,
    },
    attachments: {
      enabled: s?.attachments?.enabled ?? true,
      max_bytes: s?.attachments?.max_bytes ?? 10 * 1024 * 1024,
      types: s?.attachments?.types ?? [
        'image/png',
        'image/jpeg',
        'image/gif',
        'image/webp',
        'application/pdf',
        'text/plain',
        'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
        'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
      ],
    },
  };
}

/** The origins typed one per line, trimmed, empty lines dropped. */
export function parseOrigins(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
}

function Preview({ s, lang }: { s: Full; lang: 'ru' | 'en' }) {
  const t = useT();
  const a = s.appearance;
  const left = a.position === 'bottom_left';
  const links = MESSENGERS.filter((m) => s.messengers[m]);
  return (
    <div className="widget-preview" data-testid="widget-preview" style={{ alignItems: left ? 'flex-start' : 'flex-end' }}>
      <div className="widget-preview-panel">
        <div className="widget-preview-head" style={{ background: a.accent_color, color: a.text_color }}>
          {a.title[lang]}
        </div>
        <div className="widget-preview-body">
          <div className="widget-preview-msg">{a.greeting[lang]}</div>
          {s.prechat.enabled &&
            s.prechat.fields.map((f) => (
              <div key={f.field} className="widget-preview-field">
                {t(`widgets.field.${f.field}`)}
                {f.required ? ' *' : ''}
              </div>
            ))}
          <div className="widget-preview-msg mine" style={{ background: a.accent_color, color: a.text_color }}>
            {t('widgets.previewVisitor')}
          </div>
        </div>
        {links.length > 0 && (
          <div className="widget-preview-links">
            {links.map((m) => (
              <span key={m}>{m === 'vk' ? 'VK' : m === 'max' ? 'MAX' : m[0]!.toUpperCase() + m.slice(1)}</span>
            ))}
          </div>
        )}
      </div>
      <div className="widget-preview-launcher" style={{ background: a.accent_color, color: a.text_color }}>
        ●
      </div>
    </div>
  );
}

export function Widgets() {
  const t = useT();
  const api = useApi();
  const [widgets, setWidgets] = useState<WidgetView[]>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const [name, setName] = useState('');
  const [origins, setOrigins] = useState('');
  const [settings, setSettings] = useState<Full>(completeSettings(undefined));
  const [previewLang, setPreviewLang] = useState<'ru' | 'en'>('ru');
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);

  const current = widgets.find((w) => w.id === selected) ?? null;

  const load = useCallback(
    (pick?: string) => {
      ok(api.GET('/api/v1/widgets')).then((r) => {
        setWidgets(r.items);
        const chosen = r.items.find((w) => w.id === pick) ?? r.items[0];
        if (chosen) {
          setSelected(chosen.id);
          setName(chosen.name);
          setOrigins(chosen.settings.origins.join('\n'));
          setSettings(completeSettings(chosen.settings));
        }
      }, setError);
    },
    [api],
  );
  useEffect(() => load(), [load]);

  const choose = (id: string | null) => {
    const w = widgets.find((x) => x.id === id);
    if (!w) return;
    setSelected(w.id);
    setName(w.name);
    setOrigins(w.settings.origins.join('\n'));
    setSettings(completeSettings(w.settings));
    setSaved(false);
  };

  const save = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setSaved(false);
    const body = { ...settings, origins: parseOrigins(origins) };
    try {
      if (current) {
        const w = await ok(
          api.PATCH('/api/v1/widgets/{channel_id}', { params: { path: { channel_id: current.id } }, body: { name: name.trim(), settings: body } }),
        );
        load(w.id);
      } else {
        const w = await ok(api.POST('/api/v1/widgets', { body: { name: name.trim() || t('widgets.defaultName'), settings: body } }));
        load(w.id);
      }
      setSaved(true);
    } catch (err) {
      setError(err);
    }
  };

  const startNew = () => {
    setSelected(null);
    setName('');
    setOrigins('');
    setSettings(completeSettings(undefined));
    setSaved(false);
  };

  const set = (change: (s: Full) => Full) => setSettings((s) => change(structuredClone(s)));
  const field = (f: Field) => settings.prechat.fields.find((x) => x.field === f);
  const toggleField = (f: Field, on: boolean, required = false) =>
    set((s) => {
      s.prechat.fields = s.prechat.fields.filter((x) => x.field !== f);
      if (on) s.prechat.fields.push({ field: f, required });
      s.prechat.fields.sort((a, b) => FIELDS.indexOf(a.field) - FIELDS.indexOf(b.field));
      return s;
    });

  return (
    <Stack>
      <PageTitle>{t('widgets.title')}</PageTitle>
      <Text c="dimmed">{t('widgets.intro')}</Text>
      <ErrorNote error={error} />
      <Group>
        {widgets.length > 0 && (
          <Select
            aria-label={t('widgets.title')}
            data={widgets.map((w) => ({ value: w.id, label: w.name }))}
            value={selected}
            onChange={choose}
          />
        )}
        <Button variant="light" onClick={startNew}>
          {t('widgets.new')}
        </Button>
      </Group>
      {current && (
        <Stack gap={4}>
          <Text fw={600}>{t('widgets.snippet')}</Text>
          <Group>
            <code className="secret" data-testid="widget-snippet">
              {current.snippet}
            </code>
            <CopyButton value={current.snippet}>
              {({ copied, copy }) => (
                <Button size="xs" onClick={copy}>
                  {copied ? t('common.copied') : t('common.copy')}
                </Button>
              )}
            </CopyButton>
          </Group>
        </Stack>
      )}
      <div className="widget-settings">
        <div>
          <form onSubmit={save}>
            <Stack>
              <TextInput label={t('field.name')} value={name} onChange={(e) => setName(e.currentTarget.value)} />
              <Textarea
                label={t('widgets.origins')}
                description={t('widgets.originsHint')}
                autosize
                minRows={2}
                value={origins}
                onChange={(e) => setOrigins(e.currentTarget.value)}
              />
              <Title order={5}>{t('widgets.appearance')}</Title>
              <Group grow>
                <TextInput
                  label={t('widgets.accent')}
                  placeholder="#2563eb"
                  value={settings.appearance.accent_color}
                  onChange={(e) => {
                    const v = e.currentTarget.value.trim();
                    set((s) => ((s.appearance.accent_color = v), s));
                  }}
                />
                <TextInput
                  label={t('widgets.textColor')}
                  placeholder="#ffffff"
                  value={settings.appearance.text_color}
                  onChange={(e) => {
                    const v = e.currentTarget.value.trim();
                    set((s) => ((s.appearance.text_color = v), s));
                  }}
                />
              </Group>
              <SegmentedControl
                data={[
                  { value: 'bottom_right', label: t('widgets.right') },
                  { value: 'bottom_left', label: t('widgets.left') },
                ]}
                value={settings.appearance.position}
                onChange={(v) => set((s) => ((s.appearance.position = v as 'bottom_right' | 'bottom_left'), s))}
              />
              {(['ru', 'en'] as const).map((l) => (
                <Group grow key={l}>
                  <TextInput
                    label={`${t('widgets.windowTitle')} (${l.toUpperCase()})`}
                    value={settings.appearance.title[l]}
                    onChange={(e) => {
                      const v = e.currentTarget.value;
                      set((s) => ((s.appearance.title[l] = v), s));
                    }}
                  />
                  <TextInput
                    label={`${t('widgets.greeting')} (${l.toUpperCase()})`}
                    value={settings.appearance.greeting[l]}
                    onChange={(e) => {
                      const v = e.currentTarget.value;
                      setPreviewLang(l);
                      set((s) => ((s.appearance.greeting[l] = v), s));
                    }}
                  />
                </Group>
              ))}
              <Title order={5}>{t('widgets.prechat')}</Title>
              <Switch
                label={t('widgets.prechatOn')}
                checked={settings.prechat.enabled}
                onChange={(e) => {
                  const on = e.currentTarget.checked;
                  set((s) => ((s.prechat.enabled = on), s));
                }}
              />
              <Group>
                {FIELDS.map((f) => (
                  <Group key={f} gap={6}>
                    <Checkbox label={t(`widgets.field.${f}`)} checked={!!field(f)} onChange={(e) => toggleField(f, e.currentTarget.checked)} />
                    <Checkbox
                      size="xs"
                      label={t('widgets.required')}
                      disabled={!field(f)}
                      checked={!!field(f)?.required}
                      onChange={(e) => toggleField(f, true, e.currentTarget.checked)}
                    />
                  </Group>
                ))}
              </Group>
              <Title order={5}>{t('widgets.offline')}</Title>
              <Switch
                label={t('widgets.offlineOn')}
                checked={settings.offline.enabled}
                onChange={(e) => {
                  const on = e.currentTarget.checked;
                  set((s) => ((s.offline.enabled = on), s));
                }}
              />
              <Title order={5}>{t('widgets.attachments')}</Title>
              <Switch
                label={t('widgets.attachmentsOn')}
                checked={settings.attachments.enabled}
                onChange={(e) => {
                  const on = e.currentTarget.checked;
                  set((s) => ((s.attachments.enabled = on), s));
                }}
              />
              <Group grow align="flex-start">
                <NumberInput
                  label={t('widgets.attachmentsMaxMb')}
                  disabled={!settings.attachments.enabled}
                  min={1}
                  max={MAX_ATTACHMENT_MB}
                  clampBehavior="strict"
                  allowDecimal={false}
                  value={Math.max(1, Math.round(settings.attachments.max_bytes / MB))}
                  onChange={(v) => {
                    const mb = typeof v === 'number' ? v : Number.parseInt(v, 10);
                    if (Number.isFinite(mb) && mb >= 1) set((s) => ((s.attachments.max_bytes = Math.min(mb, MAX_ATTACHMENT_MB) * MB), s));
                  }}
                />
                <TagsInput
                  label={t('widgets.attachmentsTypes')}
                  description={t('widgets.attachmentsTypesHint')}
                  disabled={!settings.attachments.enabled}
                  value={settings.attachments.types}
                  onChange={(types) => set((s) => ((s.attachments.types = attachmentTypes(types)), s))}
                />
              </Group>
              <Title order={5}>{t('widgets.messengers')}</Title>
              <Group grow>
                {MESSENGERS.map((m) => (
                  <TextInput
                    key={m}
                    label={m === 'vk' ? 'VK' : m === 'max' ? 'MAX' : m[0]!.toUpperCase() + m.slice(1)}
                    placeholder={{ telegram: 'https://t.me/…', whatsapp: 'https://wa.me/…', vk: 'https://vk.me/…', max: 'https://max.ru/…' }[m]}
                    value={settings.messengers[m] ?? ''}
                    onChange={(e) => {
                      const v = e.currentTarget.value.trim();
                      set((s) => ((s.messengers[m] = v || null), s));
                    }}
                  />
                ))}
              </Group>
              <Group>
                <Button type="submit">{current ? t('common.save') : t('widgets.create')}</Button>
                {saved && <Text c="green">{t('widgets.saved')}</Text>}
              </Group>
            </Stack>
          </form>
        </div>
        <div>
          <Stack>
            <Group justify="space-between">
              <Text fw={600}>{t('widgets.preview')}</Text>
              <SegmentedControl size="xs" data={['ru', 'en']} value={previewLang} onChange={(v) => setPreviewLang(v as 'ru' | 'en')} />
            </Group>
            <Preview s={settings} lang={previewLang} />
          </Stack>
        </div>
      </div>
    </Stack>
  );
}
