// Triggered tasks: rules "when a post or comment with #X (or by author Y) appears, on one
// profile or any → like, dislike, reply from a template, hide, or notify an employee"; listed,
// created, edited, switched on and off, deleted. A dislike is offered disabled, with the
// network's reason, for a profile whose network has none.
import { Alert, Button, Group, Modal, NativeSelect, Stack, Switch, Table, Text, TextInput, Textarea } from '@mantine/core';
import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import { ok } from '../../api/client';
import type { Employee } from '../../api/types';
import { useApi } from '../../auth/session';
import { ErrorNote } from '../../components/ErrorNote';
import { PageTitle } from '../../components/Page';
import { useI18n, type MessageKey } from '../../i18n';
import { useNetworks } from './CapabilityMatrix';
import {
  draftOf,
  EMPTY_DRAFT,
  networkName,
  REPLY_VARIABLES,
  TRIGGER_ACTIONS,
  triggerActionBlocked,
  triggerInput,
  type DraftErrors,
  type SocialProfile,
  type Trigger,
  type TriggerDraft,
} from './logic';

export function Triggers() {
  const { t } = useI18n();
  const api = useApi();
  const [items, setItems] = useState<Trigger[] | null>(null);
  const [profiles, setProfiles] = useState<SocialProfile[]>([]);
  const [people, setPeople] = useState<Employee[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  // null: closed; 'new'; or the trigger being edited.
  const [editing, setEditing] = useState<Trigger | 'new' | null>(null);
  const [removing, setRemoving] = useState<Trigger | null>(null);

  const load = useCallback(() => {
    ok(api.GET('/api/v1/triggers')).then((r) => setItems(r.items), setError);
  }, [api]);
  useEffect(load, [load]);
  useEffect(() => {
    ok(api.GET('/api/v1/social/profiles')).then((r) => setProfiles(r.items), () => setProfiles([]));
    ok(api.GET('/api/v1/employees')).then((r) => setPeople(r.items), () => setPeople([]));
  }, [api]);

  const profileName = (id: string | null | undefined) => {
    if (!id) return t('triggers.anyProfile');
    const p = profiles.find((x) => x.id === id);
    return p ? `${p.name} (${networkName(p.network, t)})` : id;
  };
  const personName = (id: string) => people.find((p) => p.id === id)?.display_name ?? id;

  const describeAction = (tr: Trigger) => {
    const a = tr.action;
    if (a.kind === 'reply') return t('triggers.describe.reply', { template: a.template.length > 60 ? `${a.template.slice(0, 60)}…` : a.template });
    if (a.kind === 'notify') return t('triggers.describe.notify', { name: personName(a.user_id) });
    return t(`triggers.action.${a.kind}` as MessageKey);
  };
  const describeCondition = (tr: Trigger) =>
    tr.condition.kind === 'hashtag'
      ? t('triggers.describe.hashtag', { hashtag: tr.condition.hashtag })
      : t('triggers.describe.author', { author: tr.condition.author_id });

  const setEnabled = async (tr: Trigger, enabled: boolean) => {
    setError(null);
    const made = triggerInput({ ...draftOf(tr), enabled });
    if (!('input' in made)) return;
    try {
      const saved = await ok(api.PUT('/api/v1/triggers/{id}', { params: { path: { id: tr.id } }, body: made.input }));
      setItems((list) => (list ?? []).map((x) => (x.id === saved.id ? saved : x)));
    } catch (err) {
      setError(err);
    }
  };

  const remove = async () => {
    if (!removing) return;
    const id = removing.id;
    setRemoving(null);
    setError(null);
    try {
      await ok(api.DELETE('/api/v1/triggers/{id}', { params: { path: { id } } }));
      load();
    } catch (err) {
      setError(err);
    }
  };

  return (
    <Stack>
      <PageTitle
        actions={
          <Button size="sm" onClick={() => setEditing('new')}>
            {t('triggers.new')}
          </Button>
        }
      >
        {t('triggers.title')}
      </PageTitle>
      <Text size="sm" c="dimmed">
        {t('triggers.intro')}
      </Text>
      <ErrorNote error={error} />
      {notice && (
        <Alert color="green" role="status" withCloseButton onClose={() => setNotice(null)}>
          {notice}
        </Alert>
      )}
      {items === null && !error && <div className="page-loading" aria-busy="true" />}
      {items && items.length === 0 && (
        <Text size="sm" c="dimmed">
          {t('triggers.none')}
        </Text>
      )}
      {items && items.length > 0 && (
        <Table withTableBorder striped data-testid="triggers">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>{t('triggers.name')}</Table.Th>
              <Table.Th>{t('triggers.when')}</Table.Th>
              <Table.Th>{t('triggers.profile')}</Table.Th>
              <Table.Th>{t('triggers.action')}</Table.Th>
              <Table.Th>{t('triggers.enabled')}</Table.Th>
              <Table.Th />
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {items.map((tr) => (
              <Table.Tr key={tr.id} data-testid={`trigger-${tr.id}`}>
                <Table.Td>{tr.name}</Table.Td>
                <Table.Td>{describeCondition(tr)}</Table.Td>
                <Table.Td>{profileName(tr.profile_id)}</Table.Td>
                <Table.Td className="message-text">{describeAction(tr)}</Table.Td>
                <Table.Td>
                  <Switch checked={tr.enabled} onChange={(e) => void setEnabled(tr, e.currentTarget.checked)} aria-label={t('triggers.enabledOf', { name: tr.name })} />
                </Table.Td>
                <Table.Td>
                  <Group gap={4} wrap="nowrap">
                    <Button size="compact-xs" variant="subtle" onClick={() => setEditing(tr)} aria-label={t('triggers.editOf', { name: tr.name })}>
                      {t('common.edit')}
                    </Button>
                    <Button size="compact-xs" variant="subtle" color="red" onClick={() => setRemoving(tr)} aria-label={t('triggers.deleteOf', { name: tr.name })}>
                      {t('common.delete')}
                    </Button>
                  </Group>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      {editing !== null && (
        <TriggerForm
          trigger={editing === 'new' ? null : editing}
          profiles={profiles}
          people={people}
          onClose={() => setEditing(null)}
          onSaved={() => {
            setEditing(null);
            setNotice(t('triggers.saved'));
            load();
          }}
        />
      )}
      <Modal opened={removing !== null} onClose={() => setRemoving(null)} title={removing ? t('triggers.deleteOf', { name: removing.name }) : ''}>
        {removing && (
          <Stack>
            <Text size="sm">{t('triggers.deleteConfirm', { name: removing.name })}</Text>
            <Group justify="flex-end">
              <Button variant="default" onClick={() => setRemoving(null)}>
                {t('common.cancel')}
              </Button>
              <Button color="red" onClick={() => void remove()}>
                {t('common.delete')}
              </Button>
            </Group>
          </Stack>
        )}
      </Modal>
    </Stack>
  );
}

interface FormProps {
  trigger: Trigger | null;
  profiles: SocialProfile[];
  people: Employee[];
  onClose(): void;
  onSaved(): void;
}

function TriggerForm({ trigger, profiles, people, onClose, onSaved }: FormProps) {
  const { t } = useI18n();
  const api = useApi();
  const [draft, setDraft] = useState<TriggerDraft>(trigger ? draftOf(trigger) : EMPTY_DRAFT);
  const [errors, setErrors] = useState<DraftErrors>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const template = useRef<HTMLTextAreaElement>(null);
  const { networks } = useNetworks();
  const set = (patch: Partial<TriggerDraft>) => setDraft((d) => ({ ...d, ...patch }));
  const chosen = profiles.find((p) => p.id === draft.profileId);
  const rowOf = chosen ? networks?.find((n) => n.network === chosen.network) : undefined;
  const blocked = (a: TriggerDraft['action']) => triggerActionBlocked(a, rowOf);
  const dislikeWhy = blocked('dislike');
  const actionNote =
    dislikeWhy !== null && chosen
      ? t('triggers.dislikeNot', { network: networkName(chosen.network, t), reason: dislikeWhy })
      : draft.action === 'dislike' && !chosen
        ? t('triggers.dislikeAny')
        : null;
  const fieldError = (k: keyof DraftErrors) => (errors[k] ? t(errors[k]!) : null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const made = triggerInput(draft);
    if (blocked(draft.action) !== null) return;
    if ('errors' in made) {
      setErrors(made.errors);
      return;
    }
    setErrors({});
    setBusy(true);
    setError(null);
    try {
      if (trigger) await ok(api.PUT('/api/v1/triggers/{id}', { params: { path: { id: trigger.id } }, body: made.input }));
      else await ok(api.POST('/api/v1/triggers', { body: made.input }));
      onSaved();
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  const insertVariable = (name: string) => {
    const el = template.current;
    const text = draft.template;
    const at = el?.selectionStart ?? text.length;
    set({ template: text.slice(0, at) + `{{${name}}}` + text.slice(el?.selectionEnd ?? at) });
    el?.focus();
  };

  return (
    <Modal opened onClose={onClose} title={trigger ? t('triggers.edit') : t('triggers.new')} size="lg">
      <form onSubmit={submit} noValidate>
        <Stack gap="sm">
          <ErrorNote error={error} />
          <TextInput label={t('triggers.name')} required maxLength={100} value={draft.name} error={fieldError('name')} onChange={(e) => set({ name: e.currentTarget.value })} data-autofocus />
          <NativeSelect
            label={t('triggers.condition')}
            value={draft.condition}
            onChange={(e) => set({ condition: e.currentTarget.value as TriggerDraft['condition'], value: '' })}
            data={[
              { value: 'hashtag', label: t('triggers.condition.hashtag') },
              { value: 'author', label: t('triggers.condition.author') },
            ]}
          />
          <TextInput
            label={draft.condition === 'hashtag' ? t('triggers.hashtag') : t('triggers.author')}
            description={draft.condition === 'hashtag' ? t('triggers.hashtagHint') : t('triggers.authorHint')}
            required
            value={draft.value}
            error={fieldError('value')}
            onChange={(e) => set({ value: e.currentTarget.value })}
          />
          <NativeSelect
            label={t('triggers.profile')}
            value={draft.profileId}
            onChange={(e) => set({ profileId: e.currentTarget.value })}
            data={[{ value: '', label: t('triggers.anyProfile') }, ...profiles.map((p) => ({ value: p.id, label: `${p.name} (${networkName(p.network, t)})` }))]}
          />
          <NativeSelect
            label={t('triggers.action')}
            value={draft.action}
            onChange={(e) => set({ action: e.currentTarget.value as TriggerDraft['action'] })}
            data={TRIGGER_ACTIONS.map((a) => ({ value: a, label: t(`triggers.action.${a}` as MessageKey), disabled: blocked(a) !== null }))}
            description={blocked(draft.action) === null ? actionNote : null}
            error={blocked(draft.action) !== null ? actionNote : null}
            data-testid="trigger-action"
          />
          {draft.action === 'reply' && (
            <>
              <Textarea
                ref={template}
                label={t('triggers.template')}
                required
                autosize
                minRows={3}
                value={draft.template}
                error={fieldError('template')}
                onChange={(e) => set({ template: e.currentTarget.value })}
              />
              <Group gap={6}>
                <Text size="sm">{t('triggers.templateVars')}</Text>
                {REPLY_VARIABLES.map((v) => (
                  <Button key={v} size="compact-xs" variant="light" onClick={() => insertVariable(v)}>
                    {`{{${v}}}`}
                  </Button>
                ))}
              </Group>
            </>
          )}
          {draft.action === 'notify' && (
            <NativeSelect
              label={t('triggers.employee')}
              required
              value={draft.userId}
              error={fieldError('userId')}
              onChange={(e) => set({ userId: e.currentTarget.value })}
              data={[{ value: '', label: '—' }, ...people.map((p) => ({ value: p.id, label: p.display_name }))]}
            />
          )}
          <Switch label={t('triggers.enabled')} checked={draft.enabled} onChange={(e) => set({ enabled: e.currentTarget.checked })} />
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              {t('common.cancel')}
            </Button>
            <Button type="submit" loading={busy}>
              {t('common.save')}
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
