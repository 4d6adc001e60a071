-- Files attached to messages. Inbound: recorded `pending` with the message, in the same
-- transaction, and downloaded from the provider after the commit (`ready` with the bytes in
-- the media store, or `failed` with the reason). Outbound: uploaded by an operator (`ready`,
-- no message yet), then linked to the reply that sends it. The bytes live in the media store
-- under `storage_key`; the row is what the API and the channels know about the file.
CREATE TABLE attachments (
    id              uuid PRIMARY KEY NOT NULL,
    client_id       uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    conversation_id uuid NOT NULL,
    -- NULL for an upload not yet sent with a reply
    message_id      uuid REFERENCES messages (id) ON DELETE CASCADE,
    -- the order of the message's files
    position        BIGINT NOT NULL DEFAULT 0,
    kind            TEXT NOT NULL
        CHECK (kind IN ('image', 'video', 'audio', 'voice', 'document', 'sticker')),
    file_name       TEXT NOT NULL,
    mime_type       TEXT NOT NULL,
    size            BIGINT,
    sha256          TEXT,
    storage_key     TEXT,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'ready', 'failed')),
    failure_reason  TEXT,
    -- what the provider's connector downloads the file by (inbound only)
    provider_ref    TEXT,
    uploaded_by     uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at      BIGINT NOT NULL,
    FOREIGN KEY (conversation_id, client_id)
        REFERENCES conversations (id, client_id) ON DELETE CASCADE
);
CREATE INDEX attachments_message ON attachments (message_id, position);
CREATE INDEX attachments_conversation ON attachments (conversation_id, client_id);
