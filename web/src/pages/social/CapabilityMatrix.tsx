// The capability matrix as a table: actions down, networks across; each cell says supported,
// planned or not allowed, with the reason on hover and focus and, for screen readers, in the
// cell's text. Usable on its own (the composer may show it for the networks a post targets).
import { Stack, Table, Text, Tooltip } from '@mantine/core';
import { IconBan, IconCircleCheck, IconClock } from '@tabler/icons-react';
import { useEffect, useState } from 'react';
import { ok } from '../../api/client';
import { useApi } from '../../auth/session';
import { ErrorNote } from '../../components/ErrorNote';
import { PageTitle } from '../../components/Page';
import { useI18n, type MessageKey } from '../../i18n';
import { formatBytes, networkName, type ActionRow, type NetworkRow } from './logic';

/** The matrix, loaded once per mount. */
export function useNetworks(): { networks: NetworkRow[] | null; error: unknown } {
  const api = useApi();
  const [networks, setNetworks] = useState<NetworkRow[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    ok(api.GET('/api/v1/social/networks')).then(setNetworks, setError);
  }, [api]);
  return { networks, error };
}

const STATUS_ICON = { supported: IconCircleCheck, planned: IconClock, unsupported: IconBan } as const;
const STATUS_COLOR = { supported: 'teal', planned: 'yellow.8', unsupported: 'gray' } as const;

function Cell({ row, network }: { row: ActionRow | undefined; network: string }) {
  const { t } = useI18n();
  if (!row) return <Table.Td>—</Table.Td>;
  const status = (row.status in STATUS_ICON ? row.status : 'unsupported') as keyof typeof STATUS_ICON;
  const Icon = STATUS_ICON[status];
  const label = t(`matrix.${status}` as MessageKey);
  const content = (
    <span className="matrix-cell" tabIndex={row.reason ? 0 : undefined} data-status={status}>
      <Icon size={16} aria-hidden="true" />
      <Text span size="sm" c={STATUS_COLOR[status]}>
        {label}
      </Text>
      {row.reason && <span className="sr-only">{`. ${t('social.reason', { reason: row.reason })}`}</span>}
    </span>
  );
  return (
    <Table.Td data-network={network} data-action={row.action}>
      {row.reason ? (
        <Tooltip label={row.reason} multiline w={280} withArrow>
          {content}
        </Tooltip>
      ) : (
        content
      )}
    </Table.Td>
  );
}

function limitsText(limits: unknown, lang: string, t: ReturnType<typeof useI18n>['t']): string {
  if (!limits || typeof limits !== 'object') return t('matrix.noLimits');
  const l = limits as Record<string, unknown>;
  const n = (v: unknown) => (typeof v === 'number' ? v : 0);
  return t('matrix.limitsValue', {
    chars: n(l.max_text_chars).toLocaleString(lang === 'ru' ? 'ru-RU' : 'en-GB'),
    images: n(l.max_images),
    size: formatBytes(n(l.max_image_bytes), lang),
  });
}

/** The table; `only` narrows it to some networks (as a composer would). */
export function CapabilityMatrix({ networks, only }: { networks: NetworkRow[]; only?: string[] }) {
  const { t, lang } = useI18n();
  const shown = only ? networks.filter((n) => only.includes(n.network)) : networks;
  const actions = shown[0]?.actions.map((a) => a.action) ?? [];
  const actionLabel = (a: string) => {
    const key = `action.${a}` as MessageKey;
    const text = t(key);
    return text === undefined || text === key ? a : text;
  };
  return (
    <Table.ScrollContainer minWidth={720}>
      <Table withTableBorder withColumnBorders striped className="capability-matrix" data-testid="capability-matrix">
        <caption className="sr-only">{t('matrix.caption')}</caption>
        <Table.Thead>
          <Table.Tr>
            <Table.Th scope="col">{t('matrix.action')}</Table.Th>
            {shown.map((n) => (
              <Table.Th key={n.network} scope="col">
                {networkName(n.network, t)}
              </Table.Th>
            ))}
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          <Table.Tr>
            <Table.Th scope="row">{actionLabel('connect')}</Table.Th>
            {shown.map((n) => (
              <Cell key={n.network} row={n.connect} network={n.network} />
            ))}
          </Table.Tr>
          {actions.map((a) => (
            <Table.Tr key={a}>
              <Table.Th scope="row">{actionLabel(a)}</Table.Th>
              {shown.map((n) => (
                <Cell key={n.network} row={n.actions.find((x) => x.action === a)} network={n.network} />
              ))}
            </Table.Tr>
          ))}
          <Table.Tr>
            <Table.Th scope="row">{t('matrix.comments')}</Table.Th>
            {shown.map((n) => (
              <Table.Td key={n.network}>{t(`matrix.comments.${n.comments in { webhook: 1, polling: 1 } ? n.comments : 'none'}` as MessageKey)}</Table.Td>
            ))}
          </Table.Tr>
          <Table.Tr>
            <Table.Th scope="row">{t('matrix.limits')}</Table.Th>
            {shown.map((n) => (
              <Table.Td key={n.network}>
                <Text size="sm">{limitsText(n.limits, lang, t)}</Text>
              </Table.Td>
            ))}
          </Table.Tr>
        </Table.Tbody>
      </Table>
    </Table.ScrollContainer>
  );
}

/** The matrix page. */
export function Capabilities() {
  const { t } = useI18n();
  const { networks, error } = useNetworks();
  return (
    <Stack>
      <PageTitle>{t('matrix.title')}</PageTitle>
      <Text size="sm" c="dimmed">
        {t('matrix.intro')}
      </Text>
      <ErrorNote error={error} />
      {networks ? <CapabilityMatrix networks={networks} /> : <div className="page-loading" aria-busy="true" />}
    </Stack>
  );
}
