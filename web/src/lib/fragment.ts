/** The `token` of a one-time link, which the server puts in the fragment so it is never logged. */
export function tokenFromHash(hash: string): string {
  return new URLSearchParams(hash.replace(/^#/, '')).get('token') ?? '';
}
