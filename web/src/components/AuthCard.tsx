// The frame of the signed-out pages: a centred card with the product name and the language switch.
import { Group, Paper, Title } from '@mantine/core';
import type { ReactNode } from 'react';
import { LangSwitch } from './LangSwitch';

export function AuthCard({ title, children }: { title: string; children: ReactNode }) {
  return (
    <main className="auth-page">
      <Paper className="auth-card" withBorder shadow="sm" p="xl" radius="md">
        <Group justify="space-between" mb="md">
          <Title order={1} size="h3">
            {title}
          </Title>
          <LangSwitch />
        </Group>
        {children}
      </Paper>
    </main>
  );
}
