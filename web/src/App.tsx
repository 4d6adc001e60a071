import { Drawer, MantineProvider, Modal, createTheme } from '@mantine/core';
import { lazy, Suspense, useEffect } from 'react';
import { createBrowserRouter, Navigate, Outlet, RouterProvider, useLocation, useNavigate } from 'react-router';
import { SessionProvider, useSession } from './auth/session';
import { Home, RequireSession } from './components/Shell';
import { I18nProvider } from './i18n';
import { Inbox } from './pages/inbox/Inbox';
import { Invite } from './pages/Invite';
import { ForgotPassword, ResetPassword } from './pages/ResetPassword';
import { SignIn } from './pages/SignIn';

// Workspace and platform screens load on demand: the inbox's first load stays small.
const Workspace = lazy(() => import('./pages/workspace/Workspace'));
const Platform = lazy(() => import('./pages/platform/Platform'));
const Account = lazy(() => import('./pages/Account'));
const Social = lazy(() => import('./pages/social/Social'));
const Automation = lazy(() => import('./pages/social/Automation'));
const Publishing = lazy(() => import('./pages/publishing/Publishing'));

const theme = createTheme({
  primaryColor: 'blue',
  defaultRadius: 'md',
  // Transitions are skipped for people who ask their system for less motion.
  respectReducedMotion: true,
  components: {
    // Scroll locking injects a <style> element, which the CSP refuses; the console's body
    // never scrolls (each pane scrolls itself), so there is nothing to lock.
    Modal: Modal.extend({ defaultProps: { lockScroll: false } }),
    Drawer: Drawer.extend({ defaultProps: { lockScroll: false } }),
  },
});

/**
 * The networks' sign-in may come back to `/app/social/connect` (an older form of the address):
 * the console lives at the root, so the same page with the same query.
 */
function LegacyConnect() {
  const { search } = useLocation();
  return <Navigate to={`/social/connect${search}`} replace />;
}

/** Follows an expired session to the sign-in page, remembering where the user was. */
function Root() {
  const { expired, status } = useSession();
  const navigate = useNavigate();
  const location = useLocation();
  useEffect(() => {
    if (expired && status === 'signed-out' && location.pathname !== '/sign-in') {
      const next = encodeURIComponent(location.pathname + location.search);
      navigate(`/sign-in?next=${next}`, { replace: true });
    }
  }, [expired, status, location, navigate]);
  return (
    <Suspense fallback={<div className="page-loading" aria-busy="true" />}>
      <Outlet />
    </Suspense>
  );
}

const router = createBrowserRouter([
  {
    element: <Root />,
    children: [
      { path: '/sign-in', element: <SignIn /> },
      { path: '/invite', element: <Invite /> },
      { path: '/reset-password', element: <ResetPassword /> },
      { path: '/forgot-password', element: <ForgotPassword /> },
      {
        element: <RequireSession />,
        children: [
          { index: true, element: <Home /> },
          { path: '/inbox', element: <Inbox /> },
          { path: '/inbox/:conversationId', element: <Inbox /> },
          { path: '/workspace/*', element: <Workspace /> },
          { path: '/publishing/*', element: <Publishing /> },
          { path: '/platform/*', element: <Platform /> },
          { path: '/social/*', element: <Social /> },
          { path: '/automation/*', element: <Automation /> },
          { path: '/app/social/connect', element: <LegacyConnect /> },
          { path: '/account', element: <Account /> },
          { path: '*', element: <Navigate to="/" replace /> },
        ],
      },
    ],
  },
]);

export function App() {
  return (
    // The server's CSP forbids inline <style>: Mantine's CSS variables and global classes come
    // from its static stylesheet (and app.css) instead of injected style elements.
    <MantineProvider theme={theme} withCssVariables={false} withGlobalClasses={false}>
      <I18nProvider>
        <SessionProvider>
          <RouterProvider router={router} />
        </SessionProvider>
      </I18nProvider>
    </MantineProvider>
  );
}
