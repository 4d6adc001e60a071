-- The website widget: a channel of provider `widget` found by its public key (published in the
-- client's web pages, so not a secret), and the visitors who chat through it. A visitor is
-- known by a random token kept only as its SHA-256, scoped to one widget of one client.
CREATE TABLE widget_keys (
    channel_id uuid PRIMARY KEY NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    client_id  uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    public_key TEXT NOT NULL UNIQUE
);

CREATE TABLE widget_visitors (
    id           uuid PRIMARY KEY NOT NULL,
    client_id    uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    channel_id   uuid NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    token_hash   bytea NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    -- JSON object: what the visitor gave in the pre-chat form
    details      jsonb NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX widget_visitors_channel ON widget_visitors (channel_id);
