// Files of a message. Everything about a file is the sender's: names are rendered as text, only
// raster images the server agrees to show inline (PNG, JPEG, GIF, WebP) become thumbnails, and
// everything else is a download link to the server, which serves it as an attachment.
import { Anchor, Text } from '@mantine/core';
import { IconAlertCircle, IconFile, IconLoader } from '@tabler/icons-react';
import type { Attachment } from '../api/types';
import { useT } from '../i18n';

const INLINE_IMAGES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

export function attachmentUrl(id: string, inline = false): string {
  const path = `/api/v1/attachments/${encodeURIComponent(id)}`;
  return inline ? `${path}?disposition=inline` : path;
}

function size(bytes: number | null | undefined): string {
  if (bytes == null) return '';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function Attachments({ files }: { files: Attachment[] }) {
  const t = useT();
  return (
    <ul className="attachments" aria-label={t('composer.attachments')}>
      {files.map((f) => (
        <li key={f.id} className="attachment" data-attachment={f.id} data-state={f.state}>
          {f.state === 'pending' ? (
            <Text size="xs" c="dimmed" className="attachment-row">
              <IconLoader size={14} aria-hidden="true" /> {t('attachment.pending', { name: f.file_name })}
            </Text>
          ) : f.state === 'failed' ? (
            <Text size="xs" c="red" className="attachment-row">
              <IconAlertCircle size={14} aria-hidden="true" />{' '}
              {t('attachment.failed', { name: f.file_name, reason: f.failure_reason ?? '' })}
            </Text>
          ) : INLINE_IMAGES.has(f.mime_type.toLowerCase()) ? (
            <a href={attachmentUrl(f.id)} download={f.file_name} className="attachment-image" title={t('attachment.download', { name: f.file_name })}>
              <img src={attachmentUrl(f.id, true)} alt={t('attachment.image', { name: f.file_name })} loading="lazy" />
            </a>
          ) : (
            <Anchor href={attachmentUrl(f.id)} download={f.file_name} size="sm" className="attachment-row" aria-label={t('attachment.download', { name: f.file_name })}>
              <IconFile size={14} aria-hidden="true" /> <span className="attachment-name">{f.file_name}</span>{' '}
              <Text span size="xs" c="dimmed">
                {size(f.size)}
              </Text>
            </Anchor>
          )}
        </li>
      ))}
    </ul>
  );
}
