// The social section: connected profiles, what each network allows, the media library, and
// the page the networks' sign-in comes back to. Anyone of a client sees it; the server decides
// what each may change (the pages hide what the user's rights do not cover).
import { Navigate, Route, Routes } from 'react-router';
import { SectionLayout, type SubPage } from '../../components/Page';
import { useT } from '../../i18n';
import { Capabilities } from './CapabilityMatrix';
import { ConnectReturn } from './ConnectReturn';
import { Media } from './Media';
import { Profiles } from './Profiles';

export default function Social() {
  const t = useT();
  const pages: SubPage[] = [
    { to: '/social/profiles', label: t('social.profiles') },
    { to: '/social/networks', label: t('social.matrix') },
    { to: '/social/media', label: t('social.media') },
  ];
  return (
    <SectionLayout title={t('nav.social')} pages={pages}>
      <Routes>
        <Route index element={<Navigate to="/social/profiles" replace />} />
        <Route path="profiles" element={<Profiles />} />
        <Route path="networks" element={<Capabilities />} />
        <Route path="media" element={<Media />} />
        <Route path="connect" element={<ConnectReturn />} />
        <Route path="*" element={<Navigate to="/social/profiles" replace />} />
      </Routes>
    </SectionLayout>
  );
}
