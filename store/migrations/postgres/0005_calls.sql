-- Click-to-call attempts: which telephony channel placed each, the conversation where its
-- attempt and outcome show, and what it came to. Also the durable count behind the per-number,
-- per-IP and per-visitor limits, so they hold across restarts and across nodes.
CREATE TABLE calls (
    id               uuid PRIMARY KEY NOT NULL,
    client_id        uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    channel_id       uuid NOT NULL,
    conversation_id  uuid NOT NULL,
    -- the visitor's number, E.164
    number           TEXT NOT NULL,
    visitor          TEXT,
    ip               TEXT,
    requested_by     uuid REFERENCES users (id) ON DELETE SET NULL,
    provider_call_id TEXT,
    -- NULL while the call is going
    outcome          TEXT CHECK (outcome IN ('answered', 'no_answer', 'busy', 'failed')),
    duration_secs    BIGINT,
    failure_reason   TEXT,
    created_at       BIGINT NOT NULL,
    ended_at         BIGINT,
    UNIQUE (id, client_id),
    FOREIGN KEY (channel_id, client_id) REFERENCES channels (id, client_id) ON DELETE CASCADE,
    FOREIGN KEY (conversation_id, client_id)
        REFERENCES conversations (id, client_id) ON DELETE CASCADE
);
-- NULLs are distinct: only calls with a provider id are constrained.
CREATE UNIQUE INDEX calls_provider_call ON calls (channel_id, provider_call_id);
CREATE INDEX calls_channel_number ON calls (channel_id, number, created_at);
CREATE INDEX calls_client_number ON calls (client_id, number, created_at);
CREATE INDEX calls_client_ip ON calls (client_id, ip, created_at);
CREATE INDEX calls_client_visitor ON calls (client_id, visitor, created_at);
CREATE INDEX calls_conversation_client ON calls (conversation_id, client_id);
CREATE INDEX calls_channel_client ON calls (channel_id, client_id);
CREATE INDEX calls_requested_by ON calls (requested_by);
