-- omnihub foundation schema, PostgreSQL flavour.
--
-- Kept in step with migrations/sqlite/: the same file names, tables, columns and keys.
-- Storage conventions (both engines read them through the same SQL):
--   ids          UUIDv7 as uuid (time-ordered, so `ORDER BY id` is creation order)
--   timestamps   BIGINT unix milliseconds, UTC (the same representation as on SQLite)
--   booleans     BOOLEAN
--   JSON         jsonb
--   sealed       bytea: version byte, 24-byte nonce, XChaCha20-Poly1305 ciphertext
--   rights       BIGINT bit sets (GlobalRights / ChannelRights)
-- Client-scoped rows carry client_id; composite keys (x_id, client_id) pin a row's references
-- to rows of the same client, so a cross-tenant link cannot be stored even by mistake.

CREATE TABLE clients (
    id             uuid PRIMARY KEY NOT NULL,
    name           TEXT NOT NULL,
    -- name lower-cased by the store, so search folds case alike on both engines
    name_folded    TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('active', 'blocked')),
    blocked_reason TEXT,
    plan           TEXT,
    created_at     BIGINT NOT NULL
);
CREATE INDEX clients_created ON clients (created_at, id);
CREATE INDEX clients_status ON clients (status, created_at);

CREATE TABLE users (
    id            uuid PRIMARY KEY NOT NULL,
    -- lower-cased by the store, so uniqueness is case-insensitive
    email         TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL
        CHECK (role IN ('platform_owner', 'platform_moderator', 'client_owner', 'employee')),
    client_id     uuid REFERENCES clients (id) ON DELETE CASCADE,
    global_rights BIGINT NOT NULL DEFAULT 0,
    locale        TEXT NOT NULL,
    totp_secret   bytea,
    totp_enabled  BOOLEAN NOT NULL DEFAULT FALSE,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until  BIGINT,
    created_at    BIGINT NOT NULL,
    -- platform staff belong to no client; everyone else to exactly one
    CHECK ((role IN ('platform_owner', 'platform_moderator')) = (client_id IS NULL)),
    UNIQUE (id, client_id)
);
CREATE INDEX users_client ON users (client_id, id);
CREATE INDEX users_role ON users (role, id);

CREATE TABLE sessions (
    token_hash   bytea PRIMARY KEY NOT NULL,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    ip           TEXT,
    user_agent   TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY NOT NULL,
    client_id    uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id      uuid NOT NULL,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    token_hash   bytea NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT,
    revoked_at   BIGINT,
    FOREIGN KEY (user_id, client_id) REFERENCES users (id, client_id) ON DELETE CASCADE
);
CREATE INDEX api_tokens_client ON api_tokens (client_id, id);
CREATE INDEX api_tokens_user ON api_tokens (user_id, client_id);

CREATE TABLE invites (
    id             uuid PRIMARY KEY NOT NULL,
    client_id      uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    email          TEXT NOT NULL,
    token_hash     bytea NOT NULL UNIQUE,
    global_rights  BIGINT NOT NULL,
    -- JSON array of group ids
    group_ids      jsonb NOT NULL,
    -- JSON array of {channel_id, rights}
    channel_grants jsonb NOT NULL,
    created_by     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    accepted_at    BIGINT
);
CREATE INDEX invites_client ON invites (client_id, id);
CREATE INDEX invites_created_by ON invites (created_by);

CREATE TABLE password_resets (
    token_hash bytea PRIMARY KEY NOT NULL,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX password_resets_user ON password_resets (user_id);
CREATE INDEX password_resets_expires ON password_resets (expires_at);

CREATE TABLE groups (
    id         uuid PRIMARY KEY NOT NULL,
    client_id  uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (client_id, name),
    UNIQUE (id, client_id)
);

CREATE TABLE group_members (
    group_id  uuid NOT NULL,
    user_id   uuid NOT NULL,
    client_id uuid NOT NULL,
    PRIMARY KEY (group_id, user_id),
    FOREIGN KEY (group_id, client_id) REFERENCES groups (id, client_id) ON DELETE CASCADE,
    FOREIGN KEY (user_id, client_id) REFERENCES users (id, client_id) ON DELETE CASCADE
);
CREATE INDEX group_members_user ON group_members (user_id, client_id);
CREATE INDEX group_members_group_client ON group_members (group_id, client_id);

CREATE TABLE channels (
    id          uuid PRIMARY KEY NOT NULL,
    client_id   uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    provider    TEXT NOT NULL,
    name        TEXT NOT NULL,
    -- JSON object of non-secret settings
    settings    jsonb NOT NULL,
    -- sealed JSON; never part of a Channel record
    credentials bytea,
    created_at  BIGINT NOT NULL,
    UNIQUE (id, client_id)
);
CREATE INDEX channels_client ON channels (client_id, id);

CREATE TABLE channel_grants (
    user_id    uuid NOT NULL,
    channel_id uuid NOT NULL,
    client_id  uuid NOT NULL,
    rights     BIGINT NOT NULL,
    PRIMARY KEY (user_id, channel_id),
    FOREIGN KEY (user_id, client_id) REFERENCES users (id, client_id) ON DELETE CASCADE,
    FOREIGN KEY (channel_id, client_id) REFERENCES channels (id, client_id) ON DELETE CASCADE
);
CREATE INDEX channel_grants_user ON channel_grants (user_id, client_id);
CREATE INDEX channel_grants_channel ON channel_grants (channel_id, client_id);

CREATE TABLE contacts (
    id         uuid PRIMARY KEY NOT NULL,
    client_id  uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (id, client_id)
);
CREATE INDEX contacts_client ON contacts (client_id, id);

CREATE TABLE conversations (
    id          uuid PRIMARY KEY NOT NULL,
    client_id   uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    channel_id  uuid NOT NULL,
    contact_id  uuid NOT NULL,
    -- the conversation's id on the provider's side
    external_id TEXT NOT NULL,
    status      TEXT NOT NULL,
    assignee_id uuid REFERENCES users (id) ON DELETE SET NULL,
    group_id    uuid REFERENCES groups (id) ON DELETE SET NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (channel_id, external_id),
    UNIQUE (id, client_id),
    FOREIGN KEY (channel_id, client_id) REFERENCES channels (id, client_id) ON DELETE CASCADE,
    FOREIGN KEY (contact_id, client_id) REFERENCES contacts (id, client_id) ON DELETE CASCADE
);
CREATE INDEX conversations_client ON conversations (client_id, id);
CREATE INDEX conversations_channel_client ON conversations (channel_id, client_id);
CREATE INDEX conversations_contact ON conversations (contact_id, client_id);
CREATE INDEX conversations_assignee ON conversations (assignee_id);
CREATE INDEX conversations_group ON conversations (group_id);

CREATE TABLE messages (
    id                uuid PRIMARY KEY NOT NULL,
    client_id         uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    conversation_id   uuid NOT NULL,
    -- copied from the conversation so provider retries dedupe per channel
    channel_id        uuid NOT NULL,
    direction         TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    provider_event_id TEXT,
    author_id         uuid REFERENCES users (id) ON DELETE SET NULL,
    text              TEXT NOT NULL,
    status            TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    UNIQUE (channel_id, provider_event_id),
    FOREIGN KEY (conversation_id, client_id)
        REFERENCES conversations (id, client_id) ON DELETE CASCADE,
    FOREIGN KEY (channel_id, client_id) REFERENCES channels (id, client_id) ON DELETE CASCADE
);
CREATE INDEX messages_conversation ON messages (conversation_id, id);
CREATE INDEX messages_conversation_client ON messages (conversation_id, client_id);
CREATE INDEX messages_channel_client ON messages (channel_id, client_id);
CREATE INDEX messages_author ON messages (author_id);

CREATE TABLE audit_log (
    id          uuid PRIMARY KEY NOT NULL,
    -- NULL for platform-level actions
    client_id   uuid REFERENCES clients (id) ON DELETE CASCADE,
    actor_id    uuid REFERENCES users (id) ON DELETE SET NULL,
    -- stable dotted name, e.g. employee.invite
    action      TEXT NOT NULL,
    target_kind TEXT,
    target_id   TEXT,
    details     jsonb NOT NULL,
    ip          TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX audit_log_client ON audit_log (client_id, id);
CREATE INDEX audit_log_client_actor ON audit_log (client_id, actor_id, id);
CREATE INDEX audit_log_actor ON audit_log (actor_id);
