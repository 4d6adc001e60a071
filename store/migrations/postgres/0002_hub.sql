-- omnihub realtime hub schema, PostgreSQL flavour.
--
-- Kept in step with migrations/sqlite/0002_hub.sql: the same tables, columns and keys, with
-- the conventions of 0001 (ids uuid, timestamps BIGINT unix ms, booleans BOOLEAN, JSON jsonb).
-- Full-text search is a GIN index on to_tsvector('simple', text) (SQLite: an FTS5 table).

-- --- contacts across channels ---------------------------------------------------------------

-- Custom fields the client keeps about a contact: a JSON object.
ALTER TABLE contacts ADD COLUMN fields jsonb NOT NULL DEFAULT '{}';

-- How a contact is known on one channel. One sender id on one channel is one contact.
CREATE TABLE contact_identities (
    channel_id  uuid NOT NULL,
    -- the sender's id on the provider's side
    external_id TEXT NOT NULL,
    contact_id  uuid NOT NULL,
    client_id   uuid NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (channel_id, external_id),
    FOREIGN KEY (contact_id, client_id) REFERENCES contacts (id, client_id) ON DELETE CASCADE,
    FOREIGN KEY (channel_id, client_id) REFERENCES channels (id, client_id) ON DELETE CASCADE
);
CREATE INDEX contact_identities_contact ON contact_identities (contact_id, client_id);
CREATE INDEX contact_identities_channel_client ON contact_identities (channel_id, client_id);

-- --- conversations and requests -------------------------------------------------------------

-- When a snoozed conversation wakes up by itself.
ALTER TABLE conversations ADD COLUMN snoozed_until BIGINT;
-- Requests counted so far (a customer message after resolve opens the next).
ALTER TABLE conversations ADD COLUMN request_no BIGINT NOT NULL DEFAULT 1;
-- created_at of the newest message that is not an internal note; the listing's order.
ALTER TABLE conversations ADD COLUMN last_message_at BIGINT NOT NULL DEFAULT 0;
-- The sender id that opened the conversation: which identity it belongs to when a contact is
-- split. NULL for conversations from before this migration.
ALTER TABLE conversations ADD COLUMN external_user_id TEXT;
UPDATE conversations SET last_message_at = COALESCE(
    (SELECT MAX(m.created_at) FROM messages m WHERE m.conversation_id = conversations.id),
    created_at);
CREATE INDEX conversations_listing ON conversations (client_id, last_message_at, id);
CREATE INDEX conversations_assignee_status ON conversations (assignee_id, status);

-- One row per request of a conversation, for analytics.
CREATE TABLE requests (
    id              uuid PRIMARY KEY NOT NULL,
    client_id       uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    conversation_id uuid NOT NULL,
    -- 1, 2, …: equals conversations.request_no for the newest
    number          BIGINT NOT NULL,
    opened_at       BIGINT NOT NULL,
    resolved_at     BIGINT,
    UNIQUE (conversation_id, number),
    FOREIGN KEY (conversation_id, client_id)
        REFERENCES conversations (id, client_id) ON DELETE CASCADE
);
CREATE INDEX requests_client_opened ON requests (client_id, opened_at);
CREATE INDEX requests_conversation_client ON requests (conversation_id, client_id);
INSERT INTO requests (id, client_id, conversation_id, number, opened_at, resolved_at)
SELECT gen_random_uuid(), client_id, id, 1, created_at,
       CASE WHEN status = 'resolved' THEN last_message_at END
FROM conversations;

CREATE TABLE conversation_tags (
    conversation_id uuid NOT NULL,
    client_id       uuid NOT NULL,
    tag             TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, tag),
    FOREIGN KEY (conversation_id, client_id)
        REFERENCES conversations (id, client_id) ON DELETE CASCADE
);
CREATE INDEX conversation_tags_client_tag ON conversation_tags (client_id, tag);
CREATE INDEX conversation_tags_conversation_client
    ON conversation_tags (conversation_id, client_id);

-- How far each operator has read each conversation: the (created_at, id) of the last message
-- read, which is the order messages are shown in.
CREATE TABLE read_marks (
    conversation_id uuid NOT NULL,
    user_id         uuid NOT NULL,
    client_id       uuid NOT NULL,
    last_read_at    BIGINT NOT NULL,
    last_read_id    uuid NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, user_id),
    FOREIGN KEY (conversation_id, client_id)
        REFERENCES conversations (id, client_id) ON DELETE CASCADE,
    FOREIGN KEY (user_id, client_id) REFERENCES users (id, client_id) ON DELETE CASCADE
);
CREATE INDEX read_marks_conversation_client ON read_marks (conversation_id, client_id);
CREATE INDEX read_marks_user ON read_marks (user_id, client_id);

-- --- messages -------------------------------------------------------------------------------

ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'message'
    CHECK (kind IN ('message', 'note', 'auto_reply'));
-- why delivery failed, in the provider's words
ALTER TABLE messages ADD COLUMN failure_reason TEXT;
-- outbound: the same key on the same conversation is the same message
ALTER TABLE messages ADD COLUMN idempotency_key TEXT;
-- outbound: the provider's id for the sent message, for its status callbacks
ALTER TABLE messages ADD COLUMN provider_message_id TEXT;
-- NULLs are distinct in unique indexes: only rows with a key are constrained.
CREATE UNIQUE INDEX messages_idempotency ON messages (conversation_id, idempotency_key);
CREATE UNIQUE INDEX messages_provider_message ON messages (channel_id, provider_message_id);
CREATE INDEX messages_conversation_order ON messages (conversation_id, created_at, id);
CREATE INDEX messages_client_order ON messages (client_id, created_at, id);
CREATE INDEX messages_pending ON messages (client_id, created_at, id) WHERE status = 'pending';

-- Full-text search over message texts. The 'simple' configuration lower-cases every script
-- (Cyrillic included) and does not stem, like SQLite's unicode61 tokenizer; queries must use
-- the same expression, to_tsvector('simple', text), to use the index.
CREATE INDEX messages_text_search ON messages USING GIN (to_tsvector('simple', text));

CREATE TABLE quick_replies (
    id         uuid PRIMARY KEY NOT NULL,
    client_id  uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    title      TEXT NOT NULL,
    text       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX quick_replies_client ON quick_replies (client_id, title);

-- --- routing --------------------------------------------------------------------------------

ALTER TABLE groups ADD COLUMN routing_mode TEXT NOT NULL DEFAULT 'round_robin'
    CHECK (routing_mode IN ('round_robin', 'least_busy', 'most_skilled'));
-- JSON WeeklyHours; NULL: the default (always open)
ALTER TABLE groups ADD COLUMN working_hours jsonb;
-- JSON AutoReplies; NULL: none
ALTER TABLE groups ADD COLUMN auto_replies jsonb;
ALTER TABLE group_members ADD COLUMN competency BIGINT NOT NULL DEFAULT 50
    CHECK (competency BETWEEN 1 AND 100);

-- An operator's routing state; a user without a row has the defaults.
CREATE TABLE operator_states (
    user_id          uuid PRIMARY KEY NOT NULL,
    client_id        uuid NOT NULL,
    capacity         BIGINT NOT NULL DEFAULT 5 CHECK (capacity >= 0),
    accepting_new    BOOLEAN NOT NULL DEFAULT TRUE,
    presence         TEXT NOT NULL DEFAULT 'offline'
        CHECK (presence IN ('online', 'away', 'offline')),
    last_assigned_at BIGINT,
    FOREIGN KEY (user_id, client_id) REFERENCES users (id, client_id) ON DELETE CASCADE
);
CREATE INDEX operator_states_user_client ON operator_states (user_id, client_id);

-- Conversations waiting for an operator, first come first.
CREATE TABLE routing_queue (
    conversation_id uuid PRIMARY KEY NOT NULL,
    client_id       uuid NOT NULL,
    group_id        uuid REFERENCES groups (id) ON DELETE SET NULL,
    enqueued_at     BIGINT NOT NULL,
    FOREIGN KEY (conversation_id, client_id)
        REFERENCES conversations (id, client_id) ON DELETE CASCADE
);
CREATE INDEX routing_queue_client ON routing_queue (client_id, enqueued_at, conversation_id);
CREATE INDEX routing_queue_conversation_client ON routing_queue (conversation_id, client_id);
CREATE INDEX routing_queue_group ON routing_queue (group_id);

-- --- events and tasks -----------------------------------------------------------------------

-- What happened in a client's inbox; consoles resume from a seq. Per client, seq order is commit
-- order: writers append under pg_advisory_xact_lock(client) as their last statement.
CREATE TABLE events (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id       uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    -- copied, not referenced: the log outlives what it tells about
    conversation_id uuid,
    channel_id      uuid,
    assignee_id     uuid,
    group_id        uuid,
    kind            TEXT NOT NULL,
    payload         jsonb NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX events_client_seq ON events (client_id, seq);

-- Durable scheduled work; a node claims a task with a lease.
CREATE TABLE tasks (
    id              uuid PRIMARY KEY NOT NULL,
    -- NULL for platform-level tasks
    client_id       uuid REFERENCES clients (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    payload         jsonb NOT NULL,
    due_at          BIGINT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    idempotency_key TEXT NOT NULL UNIQUE,
    locked_by       TEXT,
    locked_until    BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX tasks_status_due ON tasks (status, due_at);
CREATE INDEX tasks_status_lease ON tasks (status, locked_until);
CREATE INDEX tasks_client ON tasks (client_id);
