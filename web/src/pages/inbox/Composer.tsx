// The reply box: reply or internal note, quick replies (rendered by the server with the
// conversation's variables), emoji, files (button, drag and drop, paste: uploaded at once, sent
// with the reply), Ctrl+Enter to send, typing indicators, and a draft that survives reloads and
// an expired session.
import { ActionIcon, Button, Group, Menu, Popover, SegmentedControl, Textarea, Tooltip, UnstyledButton } from '@mantine/core';
import { IconBolt, IconFile, IconMoodSmile, IconPaperclip, IconSend, IconX } from '@tabler/icons-react';
import { useEffect, useImperativeHandle, useRef, useState, type Ref } from 'react';
import { idempotencyKey, ok } from '../../api/client';
import type { Attachment, QuickReply } from '../../api/types';
import { useApi } from '../../auth/session';
import { ErrorNote } from '../../components/ErrorNote';
import { useT } from '../../i18n';
import { loadDraft, saveDraft } from '../../lib/drafts';
import type { InboxContext } from './Inbox';

export interface ComposerHandle {
  focus(mode: 'reply' | 'note'): void;
}

const EMOJI = ['😊', '🙂', '😉', '😀', '😂', '😍', '🤝', '👍', '👌', '🙏', '👋', '🎉', '✅', '❗', '❓', '⏳', '📦', '🚚', '💳', '📞', '📧', '🔥', '❤️', '😔'];
const TYPING_EVERY_MS = 3000;

interface Props {
  ref?: Ref<ComposerHandle>;
  conversationId: string;
  context: InboxContext;
}

export function Composer({ ref, conversationId, context }: Props) {
  const t = useT();
  const api = useApi();
  const [mode, setMode] = useState<'reply' | 'note'>('reply');
  const [text, setText] = useState(() => loadDraft(conversationId));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [quick, setQuick] = useState<QuickReply[] | null>(null);
  const [emojiOpen, setEmojiOpen] = useState(false);
  const [files, setFiles] = useState<Attachment[]>([]);
  const [uploading, setUploading] = useState(0);
  const [dragging, setDragging] = useState(false);
  const picker = useRef<HTMLInputElement>(null);
  const area = useRef<HTMLTextAreaElement>(null);
  const lastTyping = useRef(0);
  // One key per message being written: a retry after a lost answer is the same message.
  const key = useRef(idempotencyKey());

  useImperativeHandle(ref, () => ({
    focus(next) {
      setMode(next);
      area.current?.focus();
    },
  }));

  useEffect(() => saveDraft(conversationId, text), [conversationId, text]);

  const change = (value: string) => {
    setText(value);
    const now = Date.now();
    if (mode === 'reply' && value && now - lastTyping.current > TYPING_EVERY_MS) {
      lastTyping.current = now;
      context.sendTyping(conversationId);
    }
  };

  const insert = (piece: string) => {
    const el = area.current;
    const start = el?.selectionStart ?? text.length;
    const end = el?.selectionEnd ?? text.length;
    const next = text.slice(0, start) + piece + text.slice(end);
    setText(next);
    requestAnimationFrame(() => {
      el?.focus();
      el?.setSelectionRange(start + piece.length, start + piece.length);
    });
  };

  // Each file is uploaded as soon as it is chosen; the reply then refers to the uploads.
  const upload = async (chosen: File[]) => {
    if (chosen.length === 0) return;
    if (mode === 'note') setMode('reply');
    setError(null);
    for (const file of chosen) {
      setUploading((n) => n + 1);
      try {
        const form = new FormData();
        form.append('file', file, file.name);
        const uploaded = await ok(
          api.POST('/api/v1/conversations/{id}/attachments', {
            params: { path: { id: conversationId } },
            body: form as never,
            bodySerializer: (b: unknown) => b as FormData,
          }),
        );
        setFiles((current) => [...current, uploaded]);
      } catch (err) {
        setError(err);
      } finally {
        setUploading((n) => n - 1);
      }
    }
  };

  const send = async () => {
    const body = text.trim();
    const withFiles = mode === 'reply' && files.length > 0;
    if ((!body && !withFiles) || busy || uploading > 0) return;
    setBusy(true);
    setError(null);
    try {
      await context.send(mode, conversationId, body, key.current, withFiles ? files.map((f) => f.id) : []);
      key.current = idempotencyKey();
      setText('');
      if (withFiles) setFiles([]);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
      area.current?.focus();
    }
  };

  const loadQuick = () => {
    if (quick) return;
    ok(api.GET('/api/v1/quick-replies')).then((r) => setQuick(r.items), setError);
  };

  const applyQuick = async (reply: QuickReply) => {
    try {
      const rendered = await ok(
        api.POST('/api/v1/quick-replies/{id}/render', { params: { path: { id: reply.id } }, body: { conversation_id: conversationId } }),
      );
      insert(rendered.text);
    } catch (err) {
      setError(err);
    }
  };

  return (
    <div
      className={`${mode === 'note' ? 'composer note' : 'composer'}${dragging ? ' dragging' : ''}`}
      onDragOver={(e) => {
        if (e.dataTransfer.types.includes('Files')) {
          e.preventDefault();
          setDragging(true);
        }
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={(e) => {
        if (e.dataTransfer.files.length > 0) {
          e.preventDefault();
          setDragging(false);
          void upload([...e.dataTransfer.files]);
        }
      }}
      data-testid="composer-box"
    >
      {dragging && (
        <div className="drop-hint" aria-hidden="true">
          {t('composer.dropHere')}
        </div>
      )}
      <ErrorNote error={error} />
      <Group justify="space-between" mb={6}>
        <SegmentedControl
          size="xs"
          value={mode}
          onChange={(v) => setMode(v as 'reply' | 'note')}
          aria-label={t('composer.mode')}
          data={[
            { value: 'reply', label: t('composer.reply') },
            { value: 'note', label: t('composer.note') },
          ]}
        />
        <Group gap={4}>
          <input
            ref={picker}
            type="file"
            multiple
            hidden
            data-testid="file-input"
            onChange={(e) => {
              const chosen = [...(e.currentTarget.files ?? [])];
              e.currentTarget.value = '';
              void upload(chosen);
            }}
          />
          <Tooltip label={t('composer.attach')}>
            <ActionIcon variant="subtle" aria-label={t('composer.attach')} onClick={() => picker.current?.click()} loading={uploading > 0}>
              <IconPaperclip size={18} aria-hidden="true" />
            </ActionIcon>
          </Tooltip>
          <Menu withinPortal onOpen={loadQuick} position="top-end">
            <Menu.Target>
              <Tooltip label={t('composer.quick')}>
                <ActionIcon variant="subtle" aria-label={t('composer.quick')}>
                  <IconBolt size={18} aria-hidden="true" />
                </ActionIcon>
              </Tooltip>
            </Menu.Target>
            <Menu.Dropdown>
              {quick === null ? (
                <Menu.Label>{t('common.loading')}</Menu.Label>
              ) : quick.length === 0 ? (
                <Menu.Label>{t('composer.noQuick')}</Menu.Label>
              ) : (
                quick.map((q) => (
                  <Menu.Item key={q.id} onClick={() => void applyQuick(q)}>
                    {q.title}
                  </Menu.Item>
                ))
              )}
            </Menu.Dropdown>
          </Menu>
          <Popover opened={emojiOpen} onChange={setEmojiOpen} position="top-end" withinPortal trapFocus>
            <Popover.Target>
              <ActionIcon variant="subtle" aria-label={t('composer.emoji')} onClick={() => setEmojiOpen((o) => !o)}>
                <IconMoodSmile size={18} aria-hidden="true" />
              </ActionIcon>
            </Popover.Target>
            <Popover.Dropdown>
              <div className="emoji-grid" role="group" aria-label={t('composer.emoji')}>
                {EMOJI.map((e) => (
                  <UnstyledButton
                    key={e}
                    className="emoji"
                    aria-label={e}
                    onClick={() => {
                      insert(e);
                      setEmojiOpen(false);
                    }}
                  >
                    {e}
                  </UnstyledButton>
                ))}
              </div>
            </Popover.Dropdown>
          </Popover>
        </Group>
      </Group>
      <Textarea
        ref={area}
        aria-label={mode === 'reply' ? t('composer.replyLabel') : t('composer.noteLabel')}
        placeholder={mode === 'reply' ? t('composer.replyPlaceholder') : t('composer.notePlaceholder')}
        autosize
        minRows={2}
        maxRows={8}
        maxLength={10000}
        value={text}
        onChange={(e) => change(e.currentTarget.value)}
        onPaste={(e) => {
          const pasted = [...e.clipboardData.files];
          if (pasted.length > 0) {
            e.preventDefault();
            void upload(pasted);
          }
        }}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
            e.preventDefault();
            void send();
          }
        }}
        data-testid="composer"
      />
      {files.length > 0 && (
        <ul className="composer-files" aria-label={t('composer.attachments')}>
          {files.map((f) => (
            <li key={f.id}>
              <IconFile size={14} aria-hidden="true" />
              <span className="attachment-name">{f.file_name}</span>
              <ActionIcon
                size="xs"
                variant="subtle"
                aria-label={t('composer.removeFile', { name: f.file_name })}
                onClick={() => setFiles((current) => current.filter((x) => x.id !== f.id))}
              >
                <IconX size={12} aria-hidden="true" />
              </ActionIcon>
            </li>
          ))}
        </ul>
      )}
      {uploading > 0 && (
        <span className="composer-uploading" role="status">
          {t('composer.uploading')}
        </span>
      )}
      {mode === 'note' && files.length > 0 && (
        <span className="composer-uploading" role="note">
          {t('composer.filesOnlyReply')}
        </span>
      )}
      <Group justify="flex-end" mt={6}>
        <Button
          size="xs"
          onClick={() => void send()}
          loading={busy}
          disabled={(!text.trim() && (mode === 'note' || files.length === 0)) || uploading > 0}
          leftSection={<IconSend size={14} aria-hidden="true" />}
        >
          {mode === 'reply' ? t('composer.send') : t('composer.addNote')}
        </Button>
      </Group>
    </div>
  );
}
