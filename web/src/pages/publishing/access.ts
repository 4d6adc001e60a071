// Who the publishing section is for, kept apart from the section's code so the navigation rail
// can ask without loading it.
import type { Me } from '../../api/types';

export function canSchedule(me: Me | null): boolean {
  return me?.role === 'client_owner' || (me?.global_rights ?? []).includes('scheduling');
}

/** Those who publish or approve on some profile, or plan tasks (the owner always). */
export function seesPublishing(me: Me | null): boolean {
  if (!me || me.role === 'platform_owner' || me.role === 'platform_moderator') return false;
  return (
    me.role === 'client_owner' ||
    canSchedule(me) ||
    me.channels.some((c) => c.rights.includes('publish') || c.rights.includes('approve'))
  );
}
