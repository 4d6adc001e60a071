// Channel rights as the workspace shows them: none, full, or a partial set.
import type { ChannelGrant, ChannelRight } from '../../api/types';

export const CHANNEL_RIGHTS: ChannelRight[] = ['read', 'reply', 'publish', 'moderate', 'delete', 'approve', 'analytics'];

export type Delegation = 'none' | 'full' | 'partial';

export function delegation(rights: readonly ChannelRight[] | undefined): Delegation {
  if (!rights || rights.length === 0) return 'none';
  return CHANNEL_RIGHTS.every((r) => rights.includes(r)) ? 'full' : 'partial';
}

/**
 * Grants with one channel's rights replaced (removed when empty). Any right implies `read`:
 * a channel one may not read cannot be replied on.
 */
export function withChannelRights(grants: ChannelGrant[], channelId: string, rights: ChannelRight[]): ChannelGrant[] {
  const normalised = rights.length > 0 && !rights.includes('read') ? ['read' as ChannelRight, ...rights] : rights;
  const ordered = CHANNEL_RIGHTS.filter((r) => normalised.includes(r));
  const others = grants.filter((g) => g.channel_id !== channelId);
  return ordered.length === 0 ? others : [...others, { channel_id: channelId, rights: ordered }];
}
