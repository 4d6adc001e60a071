// The publishing section: the composer, the posts by status, and the calendar. It shows to
// those who publish or approve on some profile, or hold the scheduling right (the owner
// always); the server checks every action again.
import { Navigate, Route, Routes } from 'react-router';
import { SectionLayout, type SubPage } from '../../components/Page';
import { useT } from '../../i18n';
import { Calendar } from './Calendar';
import { Composer } from './Composer';
import { Posts } from './Posts';

export default function Publishing() {
  const t = useT();
  const pages: SubPage[] = [
    { to: '/publishing/compose', label: t('pub.composer') },
    { to: '/publishing/posts', label: t('pub.posts') },
    { to: '/publishing/calendar', label: t('pub.calendar') },
  ];
  return (
    <SectionLayout title={t('nav.publishing')} pages={pages}>
      <Routes>
        <Route index element={<Navigate to="/publishing/posts" replace />} />
        <Route path="compose" element={<Composer />} />
        <Route path="compose/:postId" element={<Composer />} />
        <Route path="posts" element={<Posts />} />
        <Route path="calendar" element={<Calendar />} />
        <Route path="*" element={<Navigate to="/publishing/posts" replace />} />
      </Routes>
    </SectionLayout>
  );
}
