import { Alert } from '@mantine/core';
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
  return (
    <Alert color="red" role="alert" variant="light">
      {text}
    </Alert>
  );
}
