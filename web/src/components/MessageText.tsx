import { Anchor } from '@mantine/core';
import { linkify } from '../lib/sanitize';

/** A sender's text: React text nodes, with safe http/https/mailto links and nothing else. */
export function MessageText({ text }: { text: string }) {
  return (
    <span className="message-text">
      {linkify(text).map((segment, i) =>
        segment.kind === 'link' ? (
          <Anchor key={i} href={segment.href} target="_blank" rel="noopener noreferrer nofollow ugc">
            {segment.text}
          </Anchor>
        ) : (
          <span key={i}>{segment.text}</span>
        ),
      )}
    </span>
  );
}
