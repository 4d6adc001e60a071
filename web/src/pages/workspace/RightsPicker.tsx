// One cell of the rights matrix: shows none / full / partial and edits the exact rights.
import { Button, Checkbox, Group, Popover, Stack } from '@mantine/core';
import { useState } from 'react';
import type { ChannelRight } from '../../api/types';
import { useT, type MessageKey } from '../../i18n';
import { CHANNEL_RIGHTS, delegation } from './rights';

// Mantine dialogs close on Escape unless the focused element carries this: Escape in the
// picker closes the picker only, not the invitation dialog around it.
const KEEP_DIALOG = { 'data-mantine-stop-propagation': 'true' } as const;

interface Props {
  rights: ChannelRight[];
  onChange(rights: ChannelRight[]): void;
  /** Names the cell for screen readers, e.g. "Anna — Website". */
  label: string;
  disabled?: boolean;
}

export function RightsPicker({ rights, onChange, label, disabled }: Props) {
  const t = useT();
  const [open, setOpen] = useState(false);
  const state = delegation(rights);
  const summary =
    state === 'none' ? t('rights.none') : state === 'full' ? t('rights.full') : rights.map((r) => t(`right.${r}` as MessageKey)).join(', ');
  return (
    <Popover opened={open} onChange={setOpen} withinPortal trapFocus returnFocus position="bottom">
      <Popover.Target>
        <Button
          size="compact-xs"
          variant={state === 'full' ? 'filled' : state === 'partial' ? 'light' : 'default'}
          onClick={() => setOpen((o) => !o)}
          aria-label={`${label}: ${summary}`}
          disabled={disabled}
          data-delegation={state}
          className="rights-button"
        >
          {summary}
        </Button>
      </Popover.Target>
      <Popover.Dropdown>
        <Stack gap={6}>
          {CHANNEL_RIGHTS.map((r) => (
            <Checkbox
              key={r}
              {...KEEP_DIALOG}
              label={t(`right.${r}` as MessageKey)}
              checked={rights.includes(r)}
              onChange={(e) => onChange(e.currentTarget.checked ? [...rights, r] : rights.filter((x) => x !== r))}
            />
          ))}
          <Group gap={6} mt={4}>
            <Button size="compact-xs" {...KEEP_DIALOG} onClick={() => onChange([...CHANNEL_RIGHTS])}>
              {t('rights.full')}
            </Button>
            <Button size="compact-xs" variant="default" {...KEEP_DIALOG} onClick={() => onChange([])}>
              {t('rights.none')}
            </Button>
          </Group>
        </Stack>
      </Popover.Dropdown>
    </Popover>
  );
}
