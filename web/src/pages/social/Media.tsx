// The media library: images for posts, uploaded by dropping them on the page or choosing
// them, listed newest first with type, size and date. The server gives no file address for the
// library yet, so previews are of the files uploaded from this page (kept as local object
// URLs until it closes); the others show their type.
import { Alert, Badge, Button, Card, Image, Stack, Text } from '@mantine/core';
import { IconPhoto, IconUpload } from '@tabler/icons-react';
import { useCallback, useEffect, useRef, useState, type DragEvent } from 'react';
import { ok } from '../../api/client';
import { useApi, useSession } from '../../auth/session';
import { ErrorNote } from '../../components/ErrorNote';
import { PageTitle } from '../../components/Page';
import { useI18n } from '../../i18n';
import { dateTime } from '../../lib/time';
import { acceptedMedia, formatBytes, mediaLabel, MEDIA_TYPES, type SocialMedia } from './logic';

/** Whether the user may upload: the owner, or whoever publishes on some profile. */
function mayUpload(me: ReturnType<typeof useSession>['me']): boolean {
  if (!me) return false;
  return me.role === 'client_owner' || me.channels.some((c) => c.rights.includes('publish'));
}

export function Media() {
  const { t, lang } = useI18n();
  const api = useApi();
  const { me } = useSession();
  const upload = mayUpload(me);
  const [items, setItems] = useState<SocialMedia[] | null>(null);
  const [previews, setPreviews] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [dragging, setDragging] = useState(false);
  const picker = useRef<HTMLInputElement>(null);
  const urls = useRef<string[]>([]);

  const load = useCallback(() => {
    ok(api.GET('/api/v1/social/media')).then((r) => setItems(r.items), setError);
  }, [api]);
  useEffect(load, [load]);
  useEffect(() => () => urls.current.forEach((u) => URL.revokeObjectURL(u)), []);

  const send = async (files: File[]) => {
    setError(null);
    setDone(null);
    for (const file of files) {
      if (!acceptedMedia(file)) {
        setError(t('media.badType', { name: file.name }));
        continue;
      }
      setBusy(file.name);
      try {
        const form = new FormData();
        form.append('file', file, file.name);
        const media = await ok(
          api.POST('/api/v1/social/media', {
            body: form as never,
            bodySerializer: (b: unknown) => b as FormData,
          }),
        );
        const url = URL.createObjectURL(file);
        urls.current.push(url);
        setPreviews((p) => ({ ...p, [media.id]: url }));
        setItems((list) => [media, ...(list ?? []).filter((m) => m.id !== media.id)]);
        setDone(t('media.uploaded', { name: media.file_name }));
      } catch (err) {
        setError(err);
      } finally {
        setBusy(null);
      }
    }
  };

  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    if (upload) void send([...e.dataTransfer.files]);
  };

  return (
    <Stack>
      <PageTitle>{t('media.title')}</PageTitle>
      <Text size="sm" c="dimmed">
        {t('media.intro')}
      </Text>
      <ErrorNote error={error} />
      {done && (
        <Alert color="green" role="status">
          {done}
        </Alert>
      )}
      {upload ? (
        <div
          className={`dropzone${dragging ? ' dragging' : ''}`}
          data-testid="media-dropzone"
          onDragOver={(e) => {
            e.preventDefault();
            setDragging(true);
          }}
          onDragLeave={() => setDragging(false)}
          onDrop={onDrop}
        >
          <IconUpload size={28} aria-hidden="true" />
          <Text size="sm">{dragging ? t('media.dropActive') : t('media.drop')}</Text>
          <Button size="xs" variant="light" onClick={() => picker.current?.click()} loading={busy !== null}>
            {t('media.choose')}
          </Button>
          <input
            ref={picker}
            type="file"
            multiple
            hidden
            accept={MEDIA_TYPES.join(',')}
            aria-label={t('media.choose')}
            onChange={(e) => {
              const chosen = [...(e.currentTarget.files ?? [])];
              e.currentTarget.value = '';
              void send(chosen);
            }}
          />
          {busy && (
            <Text size="xs" role="status">
              {t('media.uploading', { name: busy })}
            </Text>
          )}
        </div>
      ) : (
        <Text size="sm" c="dimmed">
          {t('media.readOnly')}
        </Text>
      )}
      {items === null && !error && <div className="page-loading" aria-busy="true" />}
      {items && items.length === 0 && (
        <Text size="sm" c="dimmed">
          {t('media.none')}
        </Text>
      )}
      {items && items.length > 0 && (
        <>
          {/* A CSS grid: Mantine's responsive grid writes a <style> element, which the CSP refuses. */}
          <ul className="media-grid" aria-label={t('media.list')}>
            {items.map((m) => (
              <Card key={m.id} withBorder padding="xs" component="li" data-testid="media-item">
                <Card.Section className="media-thumb">
                  {previews[m.id] ? (
                    <Image src={previews[m.id]} alt={t('media.preview', { name: m.file_name })} fit="contain" h={120} />
                  ) : (
                    <div className="media-placeholder" role="img" aria-label={t('media.noPreview')}>
                      <IconPhoto size={40} aria-hidden="true" />
                    </div>
                  )}
                </Card.Section>
                <Text size="sm" fw={500} mt="xs" className="truncate" title={m.file_name}>
                  {m.file_name}
                </Text>
                <Text size="xs" c="dimmed">
                  <Badge size="xs" variant="light" mr={4}>
                    {mediaLabel(m.mime_type)}
                  </Badge>
                  {formatBytes(m.size, lang)}
                </Text>
                <Text size="xs" c="dimmed">
                  {t('media.uploadedAt', { when: dateTime(m.created_at, lang) })}
                </Text>
              </Card>
            ))}
          </ul>
          <Text size="xs" c="dimmed">
            {t('media.noDelete')}
          </Text>
        </>
      )}
    </Stack>
  );
}
