// A section page with a title, a side navigation of its subpages and the subpage itself.
import { NavLink as MantineNavLink, Stack, Title } from '@mantine/core';
import type { ReactNode } from 'react';
import { NavLink } from 'react-router';

export interface SubPage {
  to: string;
  label: string;
}

export function SectionLayout({ title, pages, children }: { title: string; pages: SubPage[]; children: ReactNode }) {
  return (
    <div className="section">
      <nav className="section-nav" aria-label={title}>
        <Title order={1} size="h4" p="md">
          {title}
        </Title>
        <Stack gap={2} px="xs">
          {pages.map((p) => (
            <MantineNavLink key={p.to} component={NavLink} to={p.to} label={p.label} />
          ))}
        </Stack>
      </nav>
      <main className="section-main">{children}</main>
    </div>
  );
}

export function PageTitle({ children, actions }: { children: ReactNode; actions?: ReactNode }) {
  return (
    <div className="page-title">
      <Title order={2} size="h3">
        {children}
      </Title>
      {actions}
    </div>
  );
}
