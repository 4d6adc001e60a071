-- Where a channel read by polling (a mailbox over IMAP, a bot on long poll) continues after a
-- restart. Kept apart from the channel's settings, which its client edits.
CREATE TABLE poll_cursors (
    channel_id BLOB PRIMARY KEY NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    client_id  BLOB NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    cursor     TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
