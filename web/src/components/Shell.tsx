// The signed-in frame: a narrow navigation rail (inbox, workspace, platform, language, sign out)
// and the page. Sends the user to sign in when the session is gone, keeping where they were.
import { Menu, Tooltip, UnstyledButton } from '@mantine/core';
import { IconBolt, IconBuildingStore, IconCalendarEvent, IconInbox, IconLogout, IconSettings, IconShare, IconUserCircle } from '@tabler/icons-react';
import { NavLink, Navigate, Outlet, useLocation } from 'react-router';
import { isPlatformStaff, useSession, workspaceSections } from '../auth/session';
import { useI18n, type Lang } from '../i18n';
import { seesPublishing } from '../pages/publishing/access';
import { NotificationBell } from './NotificationBell';

export function RequireSession() {
  const { status } = useSession();
  const location = useLocation();
  if (status === 'loading') return <div className="page-loading" aria-busy="true" />;
  if (status === 'signed-out') {
    const next = encodeURIComponent(location.pathname + location.search);
    return <Navigate to={`/sign-in?next=${next}`} replace />;
  }
  return <Shell />;
}

function Shell() {
  const { t, lang, setLang } = useI18n();
  const { me, profile, signOut } = useSession();
  const staff = isPlatformStaff(me?.role);
  const sections = workspaceSections(me);
  const workspace = !staff && (sections.employees || sections.settings || sections.audit);
  const automation = !staff && (me?.role === 'client_owner' || (me?.global_rights ?? []).includes('scheduling'));

  const link = (to: string, label: string, Icon: typeof IconInbox) => (
    <Tooltip label={label} position="right">
      <NavLink to={to} className="rail-link" aria-label={label}>
        <Icon size={22} aria-hidden="true" />
      </NavLink>
    </Tooltip>
  );

  return (
    <div className="shell">
      <nav className="rail" aria-label={t('nav.label')}>
        <div className="rail-logo" aria-hidden="true">
          o
        </div>
        {!staff && link('/inbox', t('nav.inbox'), IconInbox)}
        {seesPublishing(me) && link('/publishing', t('nav.publishing'), IconCalendarEvent)}
        {!staff && link('/social', t('nav.social'), IconShare)}
        {automation && link('/automation', t('nav.automation'), IconBolt)}
        {workspace && link('/workspace', t('nav.workspace'), IconSettings)}
        {staff && link('/platform', t('nav.platform'), IconBuildingStore)}
        <div className="rail-spacer" />
        {!staff && <NotificationBell />}
        <Menu position="right-end" withinPortal>
          <Menu.Target>
            <UnstyledButton className="rail-link" aria-label={t('nav.account')}>
              <IconUserCircle size={22} aria-hidden="true" />
            </UnstyledButton>
          </Menu.Target>
          <Menu.Dropdown>
            <Menu.Label>{profile?.user.display_name}</Menu.Label>
            <Menu.Label>{profile?.user.email}</Menu.Label>
            <Menu.Item component={NavLink} to="/account" leftSection={<IconUserCircle size={16} aria-hidden="true" />}>
              {t('account.title')}
            </Menu.Item>
            <Menu.Divider />
            <Menu.Label>{t('lang.label')}</Menu.Label>
            {(['ru', 'en'] as Lang[]).map((l) => (
              <Menu.Item key={l} onClick={() => setLang(l)} aria-current={l === lang}>
                {l === 'ru' ? 'Русский' : 'English'}
                {l === lang ? ' ✓' : ''}
              </Menu.Item>
            ))}
            <Menu.Divider />
            <Menu.Item leftSection={<IconLogout size={16} aria-hidden="true" />} onClick={() => void signOut()}>
              {t('nav.signOut')}
            </Menu.Item>
          </Menu.Dropdown>
        </Menu>
      </nav>
      <div className="shell-main">
        <Outlet />
      </div>
    </div>
  );
}

/** `/`: the place each role works. */
export function Home() {
  const { me } = useSession();
  return <Navigate to={isPlatformStaff(me?.role) ? '/platform' : '/inbox'} replace />;
}
