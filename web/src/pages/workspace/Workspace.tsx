// The client owner's workspace: employees, channels, quick replies, API tokens, routing, the
// audit log. Each part shows only to those whose rights cover it; the server checks again.
import { Navigate, Route, Routes } from 'react-router';
import { useSession, workspaceSections } from '../../auth/session';
import { SectionLayout, type SubPage } from '../../components/Page';
import { useT } from '../../i18n';
import { Audit } from './Audit';
import { Channels } from './Channels';
import { Employees } from './Employees';
import { QuickReplies } from './QuickReplies';
import { Routing } from './Routing';
import { Tokens } from './Tokens';
import { Widgets } from './Widgets';

export default function Workspace() {
  const t = useT();
  const { me } = useSession();
  const can = workspaceSections(me);
  const pages: SubPage[] = [
    ...(can.employees ? [{ to: '/workspace/employees', label: t('employees.title') }, { to: '/workspace/routing', label: t('routing.title') }] : []),
    ...(can.settings ? [{ to: '/workspace/channels', label: t('channels.title') }, { to: '/workspace/widgets', label: t('nav.widgets') }, { to: '/workspace/quick-replies', label: t('quick.title') }, { to: '/workspace/tokens', label: t('tokens.title') }] : []),
    ...(can.audit ? [{ to: '/workspace/audit', label: t('audit.title') }] : []),
  ];
  const first = pages[0]?.to ?? '/inbox';
  return (
    <SectionLayout title={t('nav.workspace')} pages={pages}>
      <Routes>
        <Route index element={<Navigate to={first} replace />} />
        {can.employees && <Route path="employees" element={<Employees />} />}
        {can.employees && <Route path="routing" element={<Routing />} />}
        {can.settings && <Route path="channels" element={<Channels />} />}
        {can.settings && <Route path="widgets" element={<Widgets />} />}
        {can.settings && <Route path="quick-replies" element={<QuickReplies />} />}
        {can.settings && <Route path="tokens" element={<Tokens />} />}
        {can.audit && <Route path="audit" element={<Audit />} />}
        <Route path="*" element={<Navigate to={first} replace />} />
      </Routes>
    </SectionLayout>
  );
}
