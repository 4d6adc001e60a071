// Automation: triggered tasks and the scheduler's tasks (failures with the network's reason),
// for the owner and employees with the scheduling right; the server checks again.
import { Navigate, Route, Routes } from 'react-router';
import { SectionLayout, type SubPage } from '../../components/Page';
import { useT } from '../../i18n';
import { Tasks } from './Tasks';
import { Triggers } from './Triggers';

export default function Automation() {
  const t = useT();
  const pages: SubPage[] = [
    { to: '/automation/triggers', label: t('triggers.title') },
    { to: '/automation/tasks', label: t('tasks.title') },
  ];
  return (
    <SectionLayout title={t('automation.title')} pages={pages}>
      <Routes>
        <Route index element={<Navigate to="/automation/triggers" replace />} />
        <Route path="triggers" element={<Triggers />} />
        <Route path="tasks" element={<Tasks />} />
        <Route path="*" element={<Navigate to="/automation/triggers" replace />} />
      </Routes>
    </SectionLayout>
  );
}
