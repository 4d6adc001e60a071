// Reply drafts, kept per conversation in this tab's session storage: they survive a reload and
// a sign-in after the session expired, and vanish with the tab.
const PREFIX = 'omnihub.draft.';

export function loadDraft(conversationId: string): string {
  try {
    return sessionStorage.getItem(PREFIX + conversationId) ?? '';
  } catch {
    return '';
  }
}

export function saveDraft(conversationId: string, text: string): void {
  try {
    if (text === '') sessionStorage.removeItem(PREFIX + conversationId);
    else sessionStorage.setItem(PREFIX + conversationId, text);
  } catch {
    // Storage full or disabled: the draft lives only in the text box.
  }
}
