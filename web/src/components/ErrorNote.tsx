import { Alert, Text } from '@mantine/core';
import { ApiError } from '../api/client';
import { useT } from '../i18n';

/**
 * An error for the user: a message already translated (a string), the server's message (in the
 * language the console asked for), or a generic one.
 */
export function ErrorNote({ error }: { error: unknown }) {
  const t = useT();
  if (!error) return null;
  const text =
    typeof error === 'string' ? error : error instanceof ApiError && error.message ? error.message : t('error.generic');
  // A provider's own words, for support, below the translated message.
  const detail = error instanceof ApiError ? error.detail : undefined;
  return (
    <Alert color="red" role="alert" variant="light">
      {text}
      {detail && (
        <Text size="xs" c="dimmed" mt={4} data-testid="provider-detail">
          {t('channels.providerSaid', { detail })}
        </Text>
      )}
    </Alert>
  );
}
