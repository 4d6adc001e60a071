// The composer: one post for several profiles, with a variant per profile (a tab each; every
// field follows the post until it is changed there), live previews per network, the checks
// against each network's limits and capabilities (what a network does not allow is disabled
// there, with its reason), images from the media library or uploaded here, and the approval
// flow: save a draft, submit it, approve or send it back, schedule it at a date and time in
// the user's time zone, or publish it now — each offered to those whose rights allow it.
import {
  Alert,
  Badge,
  Button,
  Checkbox,
  CloseButton,
  Group,
  Modal,
  Paper,
  Select,
  Stack,
  Tabs,
  Text,
  TextInput,
  Textarea,
  Title,
} from '@mantine/core';
import { IconMovie, IconPhoto, IconPlayerPlay, IconUpload } from '@tabler/icons-react';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { useNavigate, useParams } from 'react-router';
import { ok } from '../../api/client';
import { useApi } from '../../auth/session';
import { ErrorNote } from '../../components/ErrorNote';
import { PageTitle } from '../../components/Page';
import { useI18n, type MessageKey } from '../../i18n';
import { addDays, dayOf, instantAtDayTime, timeOf } from './calendarMath';
import {
  FIELD_ACTION,
  VIDEO_PRIVACY,
  charCount,
  composeText,
  effective,
  fromWire,
  inherit,
  isOverridden,
  isVideo,
  limitsOf,
  override,
  postInput,
  problems,
  splitTags,
  support,
  type Content,
  type Field,
  type NetworkRow,
  type SocialMedia,
  type SocialPost,
  type SocialProfile,
  type VideoPrivacy,
} from './content';
import {
  NetworkIcon,
  StatusBadge,
  formatBytes,
  formatWhen,
  holdsOnAll,
  networkName,
  problemText,
  profileLabel,
  useMe,
  usePublishingData,
  useTimeZone,
} from './shared';

const BASE = 'base';

export function Composer() {
  const { t, lang } = useI18n();
  const api = useApi();
  const me = useMe();
  const navigate = useNavigate();
  const { postId } = useParams();
  const data = usePublishingData();
  const zone = useTimeZone();

  const [post, setPost] = useState<SocialPost | null>(null);
  const [base, setBase] = useState<Content>({});
  const [selected, setSelected] = useState<string[]>([]);
  const [variants, setVariants] = useState<Record<string, Content | undefined>>({});
  const [tab, setTab] = useState<string>(BASE);
  const [dirty, setDirty] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [day, setDay] = useState('');
  const [time, setTime] = useState('');

  const load = useCallback(
    (p: SocialPost) => {
      setPost(p);
      setBase(fromWire(p.content));
      setSelected(p.targets.map((x) => x.profile_id));
      setVariants(Object.fromEntries(p.targets.map((x) => [x.profile_id, x.content ? fromWire(x.content) : undefined])));
      setDirty(false);
      if (p.scheduled_at) {
        const at = Date.parse(p.scheduled_at);
        setDay(dayOf(at, zone));
        setTime(timeOf(at, zone));
      }
    },
    [zone],
  );

  // The post shown; a draft just created here is not fetched again when its address appears.
  const shownId = useRef<string | null>(null);
  shownId.current = post?.id ?? null;

  useEffect(() => {
    if (postId && postId === shownId.current) return;
    setError(null);
    setNotice(null);
    if (!postId) {
      setPost(null);
      setBase({});
      setSelected([]);
      setVariants({});
      setTab(BASE);
      setDirty(false);
      return;
    }
    ok(api.GET('/api/v1/social/posts/{id}', { params: { path: { id: postId } } })).then(load, setError);
  }, [api, postId, load]);

  // A sensible first proposal for the schedule: tomorrow at 10:00.
  useEffect(() => {
    if (day === '' && time === '') {
      setDay(addDays(dayOf(Date.now(), zone), 1));
      setTime('10:00');
    }
  }, [day, time, zone]);

  const profiles = useMemo(() => {
    // The profiles of this post stay listed even when the caller could no longer publish there.
    return data.profiles.filter((p) => holdsOnAll(me, [p.id], 'publish') || selected.includes(p.id));
  }, [data.profiles, me, selected]);
  const profileById = useMemo(() => new Map(data.profiles.map((p) => [p.id, p])), [data.profiles]);
  const chosen = selected.map((id) => profileById.get(id)).filter((p): p is SocialProfile => !!p);

  const status = post?.status ?? 'draft';
  const editable = status === 'draft';
  const can = {
    publish: holdsOnAll(me, selected, 'publish'),
    approve: holdsOnAll(me, selected, 'approve'),
  };

  const checks = useMemo(
    () =>
      chosen.map((p) => ({
        profile: p,
        row: data.networks.get(p.network),
        content: effective(base, variants[p.id]),
        problems: problems(effective(base, variants[p.id]), data.networks.get(p.network), data.mediaById),
      })),
    [chosen, base, variants, data.networks, data.mediaById],
  );
  const fits = chosen.length > 0 && checks.every((c) => c.problems.length === 0);

  const change = (edit: () => void) => {
    edit();
    setDirty(true);
    setNotice(null);
  };
  const setField = <F extends Field>(field: F, value: Content[F]) =>
    change(() => {
      if (tab === BASE) setBase((b) => ({ ...b, [field]: value }));
      else setVariants((v) => ({ ...v, [tab]: override(v[tab], field, value) }));
    });
  const followBase = (field: Field) => change(() => setVariants((v) => ({ ...v, [tab]: inherit(v[tab], field) })));
  const chooseProfiles = (ids: string[]) =>
    change(() => {
      setSelected(ids);
      if (tab !== BASE && !ids.includes(tab)) setTab(BASE);
    });

  const run = async (what: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    setNotice(null);
    try {
      await what();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  /** Writes the draft (creating it the first time); answers its id. */
  const save = async (): Promise<string> => {
    const body = postInput(base, selected, variants);
    if (post) {
      if (!dirty) return post.id;
      const saved = await ok(api.PATCH('/api/v1/social/posts/{id}', { params: { path: { id: post.id } }, body }));
      load(saved);
      return saved.id;
    }
    const created = await ok(api.POST('/api/v1/social/posts', { body }));
    load(created);
    navigate(`/publishing/compose/${created.id}`, { replace: true });
    return created.id;
  };

  const saveDraft = () =>
    run(async () => {
      await save();
      setNotice(t('pub.saved'));
    });

  const step = (path: 'submit' | 'approve' | 'reject' | 'unschedule' | 'publish') =>
    run(async () => {
      const id = path === 'submit' ? await save() : post!.id;
      const url = `/api/v1/social/posts/{id}/${path}` as '/api/v1/social/posts/{id}/submit';
      load(await ok(api.POST(url, { params: { path: { id } } })));
      setNotice(t(`pub.status.${path === 'submit' ? 'awaiting_approval' : path === 'approve' ? 'approved' : path === 'reject' ? 'draft' : path === 'unschedule' ? 'approved' : 'publishing'}` as MessageKey));
    });

  const when = instantAtDayTime(day, time, zone);
  const whenProblem =
    day === '' || time === '' ? t('pub.whenInvalid') : when === null ? t('pub.whenMissing', { zone }) : when <= Date.now() ? t('pub.whenPast') : null;

  const schedule = () =>
    run(async () => {
      if (whenProblem) throw whenProblem;
      const scheduled = await ok(
        api.POST('/api/v1/social/posts/{id}/schedule', {
          params: { path: { id: post!.id } },
          body: { at: `${day}T${time}`, time_zone: zone },
        }),
      );
      load(scheduled);
      setNotice(t('pub.scheduledFor', { when: formatWhen(scheduled.scheduled_at ?? when!, lang, zone) }));
    });

  const current = tab === BASE ? base : effective(base, variants[tab]);
  const tabProfile = tab === BASE ? undefined : profileById.get(tab);
  const tabRow = tabProfile ? data.networks.get(tabProfile.network) : undefined;

  if (data.loading) return <div className="page-loading" aria-busy="true" />;

  return (
    <Stack>
      <PageTitle actions={post && <StatusBadge status={post.status} />}>{post ? t('pub.editPost') : t('pub.newPost')}</PageTitle>
      <ErrorNote error={data.error ?? error} />
      {notice && (
        <Alert color="green" variant="light" role="status" data-testid="composer-notice">
          {notice}
        </Alert>
      )}
      {profiles.length === 0 && !post && <Alert variant="light">{t('pub.noProfiles')}</Alert>}
      {!editable && post && <Text size="sm" c="dimmed">{t('pub.cannotEdit', { status: t(`pub.status.${status}` as MessageKey) })}</Text>}

      <div className="composer-layout">
        <Stack gap="sm" className="composer-edit">
          <Checkbox.Group label={t('pub.profiles')} description={t('pub.profilesHint')} value={selected} onChange={chooseProfiles}>
            <Group gap="md" mt={6}>
              {profiles.map((p) => (
                <Checkbox
                  key={p.id}
                  value={p.id}
                  disabled={!editable}
                  label={
                    <Group gap={4} wrap="nowrap" component="span">
                      <NetworkIcon network={p.network} />
                      {profileLabel(p)}
                    </Group>
                  }
                  aria-label={profileLabel(p)}
                />
              ))}
            </Group>
          </Checkbox.Group>

          <Tabs value={tab} onChange={(v) => setTab(v ?? BASE)} keepMounted={false}>
            <Tabs.List>
              <Tabs.Tab value={BASE}>{t('pub.allNetworks')}</Tabs.Tab>
              {checks.map(({ profile, problems: found }) => (
                <Tabs.Tab
                  key={profile.id}
                  value={profile.id}
                  leftSection={<NetworkIcon network={profile.network} />}
                  rightSection={
                    found.length > 0 ? (
                      <Badge size="xs" color="red" variant="light">
                        {t('pub.variantHasProblems')}
                      </Badge>
                    ) : variants[profile.id] ? (
                      <Badge size="xs" variant="light">
                        {t('pub.variantEdited')}
                      </Badge>
                    ) : undefined
                  }
                >
                  {profileLabel(profile)}
                </Tabs.Tab>
              ))}
            </Tabs.List>
            {[BASE, ...selected].map((value) => (
              <Tabs.Panel key={value} value={value} pt="sm">
                {value === tab && (
                  <div role="group" aria-label={tabProfile ? t('pub.variantOf', { name: profileLabel(tabProfile) }) : t('pub.allNetworks')}>
                    <ContentFields
                      key={tab}
                      value={current}
                      variant={tab === BASE ? null : (variants[tab] ?? {})}
                      row={tabRow}
                      readOnly={!editable}
                      media={data.mediaById}
                      onChange={setField}
                      onUseBase={followBase}
                      library={data.media}
                      onUploaded={data.addMedia}
                    />
                  </div>
                )}
              </Tabs.Panel>
            ))}
          </Tabs>

          <Group gap="xs">
            {editable && can.publish && (
              <Button variant="default" loading={busy} disabled={!fits || (!dirty && !!post)} onClick={() => void saveDraft()}>
                {t('pub.saveDraft')}
              </Button>
            )}
            {editable && can.publish && (
              <Button loading={busy} disabled={!fits} onClick={() => void step('submit')}>
                {t('pub.submit')}
              </Button>
            )}
            {status === 'awaiting_approval' && can.approve && (
              <>
                <Button color="green" loading={busy} onClick={() => void step('approve')}>
                  {t('pub.approve')}
                </Button>
                <Button color="orange" variant="light" loading={busy} onClick={() => void step('reject')}>
                  {t('pub.reject')}
                </Button>
              </>
            )}
            {status === 'awaiting_approval' && !can.approve && <Text size="sm" c="dimmed">{t('pub.approvalBy')}</Text>}
            {(status === 'draft' || status === 'awaiting_approval') && <Text size="sm" c="dimmed">{t('pub.needsApproval')}</Text>}
          </Group>

          {post && (status === 'approved' || status === 'scheduled') && can.publish && (
            <Paper withBorder p="sm" component="section" aria-labelledby="schedule-title">
              <Stack gap="xs">
                <Title order={3} size="h5" id="schedule-title">
                  {status === 'scheduled' && post.scheduled_at
                    ? t('pub.scheduledFor', { when: formatWhen(post.scheduled_at, lang, zone) })
                    : t('pub.schedule')}
                </Title>
                <Group align="flex-end" gap="xs">
                  <TextInput type="date" label={t('pub.date')} value={day} onChange={(e) => setDay(e.currentTarget.value)} />
                  <TextInput type="time" label={t('pub.time')} value={time} onChange={(e) => setTime(e.currentTarget.value)} />
                  <Button loading={busy} disabled={!!whenProblem} onClick={() => void schedule()}>
                    {status === 'scheduled' ? t('pub.reschedule') : t('pub.schedule')}
                  </Button>
                  {status === 'scheduled' && (
                    <Button variant="light" loading={busy} onClick={() => void step('unschedule')}>
                      {t('pub.unschedule')}
                    </Button>
                  )}
                  <Button variant="light" color="green" loading={busy} onClick={() => void step('publish')}>
                    {t('pub.publishNow')}
                  </Button>
                </Group>
                <Text size="xs" c={whenProblem ? 'red' : 'dimmed'} role={whenProblem ? 'alert' : undefined}>
                  {whenProblem ?? t('pub.timeZone', { zone })}
                </Text>
              </Stack>
            </Paper>
          )}
          {post && status === 'failed' && can.publish && (
            <Group>
              <Button color="red" variant="light" loading={busy} onClick={() => void step('publish')}>
                {t('pub.retry')}
              </Button>
            </Group>
          )}
          {post && <TargetStates post={post} profiles={profileById} />}
        </Stack>

        <Stack gap="sm" className="composer-previews" component="section" aria-label={t('pub.preview')}>
          {checks.map((c) => (
            <Preview key={c.profile.id} profile={c.profile} content={c.content} row={c.row} media={data.mediaById} problems={c.problems} />
          ))}
        </Stack>
      </div>
    </Stack>
  );
}

/** Each profile's outcome once the post went out: published, or failed with the network's words. */
function TargetStates({ post, profiles }: { post: SocialPost; profiles: Map<string, SocialProfile> }) {
  const { t, lang } = useI18n();
  const zone = useTimeZone();
  if (!post.targets.some((x) => x.status !== 'pending')) return null;
  return (
    <ul className="plain-list" data-testid="target-states">
      {post.targets.map((x) => {
        const p = profiles.get(x.profile_id);
        const network = p?.network ?? '';
        return (
          <li key={x.profile_id}>
            <Group gap={6}>
              <NetworkIcon network={network} />
              <Text size="sm">{p ? profileLabel(p) : x.profile_id}</Text>
              <Badge size="sm" variant="light" color={x.status === 'failed' ? 'red' : x.status === 'published' ? 'green' : 'gray'}>
                {t(`pub.target.${x.status}` as MessageKey)}
              </Badge>
              {x.published_at && <Text size="xs" c="dimmed">{formatWhen(x.published_at, lang, zone)}</Text>}
            </Group>
            {x.failure_reason && (
              <Text size="xs" c="red">
                {t('pub.networkSaid', { network: networkName(network), reason: x.failure_reason })}
              </Text>
            )}
          </li>
        );
      })}
    </ul>
  );
}

interface FieldsProps {
  value: Content;
  /** The profile's own values (null on the post's tab). */
  variant: Content | null;
  row: NetworkRow | undefined;
  readOnly: boolean;
  media: Map<string, SocialMedia>;
  library: SocialMedia[];
  onChange<F extends Field>(field: F, value: Content[F]): void;
  onUseBase(field: Field): void;
  onUploaded(m: SocialMedia): void;
}

/** The fields of the post, or of one profile's variant (with what it inherits and what it may not have). */
function ContentFields({ value, variant, row, readOnly, media, library, onChange, onUseBase, onUploaded }: FieldsProps) {
  const { t } = useI18n();
  const network = row ? networkName(row.network) : '';

  /** On a profile's tab: whether the field follows the post, and why it may be disabled. */
  const about = (field: Field) => {
    if (variant === null) return { disabled: readOnly, note: undefined as React.ReactNode };
    const action = FIELD_ACTION[field];
    let s = action ? support(row, action) : { status: 'supported' as const };
    // Files are images or videos: the field is open where the network takes either.
    if (field === 'media' && s.status !== 'supported' && support(row, 'post_video').status === 'supported') s = { status: 'supported' };
    const refused = s.status !== 'supported' ? t('pub.disabledBecause', { network, reason: s.reason || t('pub.planned') }) : null;
    const own = isOverridden(variant, field);
    return {
      disabled: readOnly || !!refused,
      note: (
        <Group gap={6} component="span">
          {refused ? (
            <Text span size="xs" c="orange">
              {refused}
            </Text>
          ) : (
            <Text span size="xs" c="dimmed">
              {own ? t('pub.overridden') : t('pub.inherited')}
            </Text>
          )}
          {own && !readOnly && (
            <Button size="compact-xs" variant="subtle" onClick={() => onUseBase(field)}>
              {t('pub.useBase')}
            </Button>
          )}
        </Group>
      ),
    };
  };

  const limits = limitsOf(row);
  const length = charCount(composeText(value));
  const text = about('text');
  return (
    <Stack gap="xs">
      <Textarea
        label={t('pub.text')}
        autosize
        minRows={4}
        maxRows={14}
        value={value.text ?? ''}
        disabled={text.disabled}
        onChange={(e) => onChange('text', e.currentTarget.value)}
        description={
          <Group justify="space-between" component="span">
            {text.note ?? <span />}
            <Text span size="xs" c={limits && length > limits.max_text_chars ? 'red' : 'dimmed'} data-testid="char-count">
              {limits ? t('pub.chars', { n: length, max: limits.max_text_chars }) : t('pub.charsNoLimit', { n: length })}
            </Text>
          </Group>
        }
      />
      <TextInput
        label={t('pub.link')}
        type="url"
        placeholder="https://"
        value={value.link ?? ''}
        disabled={about('link').disabled}
        description={about('link').note}
        onChange={(e) => (e.currentTarget.value === '' && variant !== null ? onUseBase('link') : onChange('link', e.currentTarget.value || undefined))}
      />
      <TagsField
        label={t('pub.hashtags')}
        hint={t('pub.hashtagsHint')}
        prefix="#"
        value={value.hashtags ?? []}
        disabled={about('hashtags').disabled}
        note={about('hashtags').note}
        onChange={(v) => onChange('hashtags', v)}
      />
      <TagsField
        label={t('pub.mentions')}
        hint={t('pub.mentionsHint')}
        prefix="@"
        value={value.mentions ?? []}
        disabled={about('mentions').disabled}
        note={about('mentions').note}
        onChange={(v) => onChange('mentions', v)}
      />
      <LocationField value={value.location} disabled={about('location').disabled} note={about('location').note} onChange={(v) => onChange('location', v)} />
      <MediaField
        value={value.media ?? []}
        media={media}
        library={library}
        disabled={about('media').disabled}
        note={about('media').note}
        onChange={(v) => onChange('media', v)}
        onUploaded={onUploaded}
      />
      {(value.media ?? []).some((id) => {
        const m = media.get(id);
        return !!m && isVideo(m);
      }) && (
        <Select
          label={t('pub.videoPrivacy')}
          description={about('video_privacy').note ?? t('pub.videoPrivacyHint')}
          data={VIDEO_PRIVACY.map((p) => ({ value: p, label: t(`pub.videoPrivacy.${p}` as MessageKey) }))}
          value={value.video_privacy ?? 'public'}
          disabled={about('video_privacy').disabled}
          allowDeselect={false}
          onChange={(v) => {
            if (v) onChange('video_privacy', v as VideoPrivacy);
          }}
        />
      )}
    </Stack>
  );
}

/** Words typed with spaces between them, kept as typed while they parse to the same list. */
function TagsField(props: {
  label: string;
  hint: string;
  prefix: '#' | '@';
  value: string[];
  disabled: boolean;
  note: React.ReactNode;
  onChange(v: string[]): void;
}) {
  const { label, hint, prefix, value, disabled, note, onChange } = props;
  const shown = (list: string[]) => list.map((x) => prefix + x).join(' ');
  const [raw, setRaw] = useState(() => shown(value));
  useEffect(() => {
    // Only an outside change ("use the post's") rewrites what is typed.
    if (splitTags(raw, prefix).join(' ') !== value.join(' ')) setRaw(shown(value));
  }, [value.join(' ')]); // eslint-disable-line react-hooks/exhaustive-deps
  return (
    <TextInput
      label={label}
      placeholder={hint}
      description={note}
      value={raw}
      disabled={disabled}
      onChange={(e) => {
        setRaw(e.currentTarget.value);
        onChange(splitTags(e.currentTarget.value, prefix));
      }}
    />
  );
}

/** What the location's three inputs say: a location, nothing, or `null` while half-typed. */
function typedLocation(lat: string, lon: string, place: string): Content['location'] | null {
  const la = Number(lat.replace(',', '.'));
  const lo = Number(lon.replace(',', '.'));
  const noCoordinates = lat.trim() === '' && lon.trim() === '';
  const coordinates = lat.trim() !== '' && lon.trim() !== '' && Number.isFinite(la) && Number.isFinite(lo) && Math.abs(la) <= 90 && Math.abs(lo) <= 180;
  const pasted = place.trim();
  if (!noCoordinates && !coordinates) return null;
  if (noCoordinates && pasted === '') return undefined;
  return { ...(coordinates ? { latitude: la, longitude: lo } : {}), ...(pasted !== '' ? { place: pasted } : {}) };
}

function locationKey(l: Content['location']): string {
  return l ? `${l.latitude ?? ''},${l.longitude ?? ''},${l.place ?? ''}` : '';
}

function LocationField({ value, disabled, note, onChange }: { value: Content['location']; disabled: boolean; note: React.ReactNode; onChange(v: Content['location']): void }) {
  const { t } = useI18n();
  const shown = (n: number | undefined) => (n === undefined ? '' : String(n));
  const [lat, setLat] = useState(shown(value?.latitude));
  const [lon, setLon] = useState(shown(value?.longitude));
  const [place, setPlace] = useState(value?.place ?? '');
  // An outside change ("use the post's") rewrites what is typed; typing itself does not.
  const outside = locationKey(value);
  useEffect(() => {
    const typed = typedLocation(lat, lon, place);
    if (typed !== null && locationKey(typed) === outside) return;
    setLat(shown(value?.latitude));
    setLon(shown(value?.longitude));
    setPlace(value?.place ?? '');
  }, [outside]); // eslint-disable-line react-hooks/exhaustive-deps
  const update = (a: string, b: string, p: string) => {
    setLat(a);
    setLon(b);
    setPlace(p);
    const typed = typedLocation(a, b, p);
    if (typed !== null) onChange(typed);
  };
  const invalid = (s: string, max: number) => s.trim() !== '' && !(Math.abs(Number(s.replace(',', '.'))) <= max);
  return (
    <fieldset className="plain-fieldset">
      <legend>
        <Text size="sm" fw={500} span>
          {t('pub.location')}
        </Text>
      </legend>
      {note}
      <Group gap="xs" grow>
        <TextInput label={t('pub.latitude')} inputMode="decimal" value={lat} disabled={disabled} error={invalid(lat, 90) ? '−90…90' : undefined} onChange={(e) => update(e.currentTarget.value, lon, place)} />
        <TextInput label={t('pub.longitude')} inputMode="decimal" value={lon} disabled={disabled} error={invalid(lon, 180) ? '−180…180' : undefined} onChange={(e) => update(lat, e.currentTarget.value, place)} />
      </Group>
      <TextInput
        label={t('pub.place')}
        description={t('pub.placeHint')}
        placeholder="https://www.facebook.com/pages/…"
        value={place}
        disabled={disabled}
        onChange={(e) => update(lat, lon, e.currentTarget.value)}
      />
    </fieldset>
  );
}

function MediaField(props: {
  value: string[];
  media: Map<string, SocialMedia>;
  library: SocialMedia[];
  disabled: boolean;
  note: React.ReactNode;
  onChange(v: string[]): void;
  onUploaded(m: SocialMedia): void;
}) {
  const { value, media, library, disabled, note, onChange, onUploaded } = props;
  const { t } = useI18n();
  const api = useApi();
  const [open, setOpen] = useState(false);
  const [picked, setPicked] = useState<string[]>([]);
  const [uploading, setUploading] = useState(0);
  const [error, setError] = useState<unknown>(null);
  const picker = useRef<HTMLInputElement>(null);

  const upload = async (files: File[]) => {
    setError(null);
    const added: string[] = [];
    for (const file of files) {
      setUploading((n) => n + 1);
      try {
        const form = new FormData();
        form.append('file', file, file.name);
        const m = await ok(
          api.POST('/api/v1/social/media', { body: form as never, bodySerializer: (b: unknown) => b as FormData }),
        );
        onUploaded(m);
        added.push(m.id);
      } catch (err) {
        setError(err);
      } finally {
        setUploading((n) => n - 1);
      }
    }
    if (added.length > 0) onChange([...value, ...added]);
  };

  return (
    <fieldset className="plain-fieldset">
      <legend>
        <Text size="sm" fw={500} span>
          {t('pub.media')}
        </Text>
      </legend>
      {note}
      <Text size="xs" c="dimmed">
        {t('pub.mediaHint')}
      </Text>
      <ErrorNote error={error} />
      {value.length > 0 && (
        <ul className="media-chosen" aria-label={t('pub.media')}>
          {value.map((id) => {
            const m = media.get(id);
            const name = m?.file_name ?? id;
            return (
              <li key={id}>
                {m && isVideo(m) ? <IconMovie size={16} aria-label={t('pub.kind.video')} /> : <IconPhoto size={16} aria-hidden="true" />}
                <span className="truncate">{name}</span>
                {m && <Text span size="xs" c="dimmed">{formatBytes(m.size)}</Text>}
                {!disabled && <CloseButton size="sm" aria-label={t('pub.removeMedia', { name })} onClick={() => onChange(value.filter((x) => x !== id))} />}
              </li>
            );
          })}
        </ul>
      )}
      {!disabled && (
        <Group gap="xs" mt={4}>
          <Button size="xs" variant="light" leftSection={<IconPhoto size={14} aria-hidden="true" />} onClick={() => { setPicked([]); setOpen(true); }}>
            {t('pub.fromLibrary')}
          </Button>
          <Button size="xs" variant="light" leftSection={<IconUpload size={14} aria-hidden="true" />} loading={uploading > 0} onClick={() => picker.current?.click()}>
            {t('pub.upload')}
          </Button>
          <input
            ref={picker}
            type="file"
            accept="image/jpeg,image/png,image/gif,image/webp,video/mp4,video/quicktime,video/webm"
            multiple
            hidden
            aria-label={t('pub.upload')}
            onChange={(e) => {
              const files = [...(e.currentTarget.files ?? [])];
              e.currentTarget.value = '';
              void upload(files);
            }}
          />
        </Group>
      )}
      <Modal opened={open} onClose={() => setOpen(false)} title={t('pub.library')}>
        {library.length === 0 ? (
          <Text size="sm">{t('pub.libraryEmpty')}</Text>
        ) : (
          <Stack gap="xs">
            <Checkbox.Group value={picked} onChange={setPicked}>
              <Stack gap={6}>
                {library.map((m) => (
                  <Checkbox key={m.id} value={m.id} disabled={value.includes(m.id)} label={`${m.file_name} · ${t(isVideo(m) ? 'pub.kind.video' : 'pub.kind.image')} · ${m.mime_type} · ${formatBytes(m.size)}`} />
                ))}
              </Stack>
            </Checkbox.Group>
            <Group justify="flex-end">
              <Button
                disabled={picked.length === 0}
                onClick={() => {
                  onChange([...value, ...picked.filter((id) => !value.includes(id))]);
                  setOpen(false);
                }}
              >
                {t('pub.choose')}
              </Button>
            </Group>
          </Stack>
        )}
      </Modal>
    </fieldset>
  );
}

/** How the post will look on one profile's network, and what that network would refuse. */
function Preview({ profile, content, row, media, problems: found }: { profile: SocialProfile; content: Content; row: NetworkRow | undefined; media: Map<string, SocialMedia>; problems: ReturnType<typeof problems> }) {
  const { t } = useI18n();
  const chosen = (content.media ?? []).map((id) => media.get(id));
  const files = chosen.map((m, i) => ({ name: m?.file_name ?? (content.media ?? [])[i], video: !!m && isVideo(m) }));
  const video = files.find((f) => f.video);
  // A YouTube post is a video: its title is the text's first line, the description the rest.
  const asVideo = profile.network === 'youtube' && !!video;
  const withLink = asVideo && content.link && !(content.text ?? '').includes(content.link) ? { ...content, text: [(content.text ?? '').trimEnd(), content.link].filter((x) => x !== '').join('\n\n') } : content;
  const text = composeText(withLink);
  const title = asVideo ? ((content.text ?? '').split('\n').map((l) => l.trim()).find((l) => l !== '') ?? (video?.name ?? '').replace(/\.[^.]*$/, '')).slice(0, 100) : '';
  return (
    <Paper withBorder p="sm" className={`preview preview-${profile.network}`} component="article" aria-label={t('pub.previewOf', { name: profileLabel(profile) })} data-testid={`preview-${profile.network}`}>
      <Group gap={6} mb={6}>
        <NetworkIcon network={profile.network} size={20} />
        <Text fw={600} size="sm">
          {profile.name}
        </Text>
      </Group>
      {text === '' && files.length === 0 && !content.link ? (
        <Text size="sm" c="dimmed">
          {t('pub.previewEmpty')}
        </Text>
      ) : (
        <>
          {asVideo && (
            <Text size="sm" fw={600} data-testid="preview-title">
              {title}
            </Text>
          )}
          {text !== '' && (
            <Text size="sm" className="message-text" data-testid="preview-text">
              {text}
            </Text>
          )}
          {files.length > 0 && (
            <div className="preview-media">
              {files.slice(0, Math.max(limitsOf(row)?.max_images ?? files.length, limitsOf(row)?.max_videos ?? 0, 1)).map((f, i) =>
                f.video ? (
                  <span key={i} className="preview-tile preview-video" aria-label={t('pub.kind.video')}>
                    <IconPlayerPlay size={18} aria-hidden="true" />
                    <span className="truncate">{f.name}</span>
                  </span>
                ) : (
                  <span key={i} className="preview-tile">
                    <IconPhoto size={18} aria-hidden="true" />
                    <span className="truncate">{f.name}</span>
                  </span>
                ),
              )}
            </div>
          )}
          {asVideo && (
            <Text size="xs" c="dimmed" mt={4}>
              {t(`pub.videoPrivacy.${content.video_privacy ?? 'public'}` as MessageKey)}
            </Text>
          )}
          {content.link && !asVideo && (
            <Text size="xs" c="blue" className="truncate" mt={4}>
              {content.link}
            </Text>
          )}
          {content.location && (
            <Text size="xs" c="dimmed" mt={4} className="truncate">
              📍 {[content.location.latitude !== undefined ? `${content.location.latitude}, ${content.location.longitude}` : '', content.location.place ?? ''].filter((x) => x !== '').join(' · ')}
            </Text>
          )}
        </>
      )}
      {found.length > 0 ? (
        <ul className="preview-problems" role="list">
          {found.map((p, i) => (
            <li key={i}>
              <Text size="xs" c="red">
                {problemText(t, p, profile.network)}
              </Text>
            </li>
          ))}
        </ul>
      ) : (
        <Text size="xs" c="green" mt={6}>
          {t('pub.fits')}
        </Text>
      )}
    </Paper>
  );
}
