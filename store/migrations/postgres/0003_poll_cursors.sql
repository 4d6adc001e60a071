-- Where a channel read by polling (a mailbox over IMAP, a bot on long poll) continues after a
-- restart. Kept apart from the channel's settings, which its client edits.
CREATE TABLE poll_cursors (
    channel_id uuid PRIMARY KEY NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    client_id  uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    cursor     TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
