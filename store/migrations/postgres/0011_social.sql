-- Social profiles, posts and comment threads, PostgreSQL flavour (kept in step with
-- migrations/sqlite/0011_social.sql).
--
-- A connected social profile is a channel of kind 'social' (its tokens sealed in
-- channels.credentials, its per-employee rights in channel_grants, its comments in
-- conversations); social_profiles holds what is particular to profiles.
CREATE TABLE social_profiles (
    channel_id       uuid PRIMARY KEY NOT NULL,
    client_id        uuid NOT NULL,
    -- vk, ok, facebook, instagram, x, youtube
    network          TEXT NOT NULL,
    -- the community's, group's, page's or account's id on the network
    external_id      TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('active', 'token_expired', 'failing')),
    -- why the status is not active, in the network's words
    status_detail    TEXT,
    -- when the access token runs out (NULL: it does not, or the network did not say)
    token_expires_at BIGINT,
    created_at       BIGINT NOT NULL,
    UNIQUE (client_id, network, external_id),
    FOREIGN KEY (channel_id, client_id) REFERENCES channels (id, client_id) ON DELETE CASCADE
);
CREATE INDEX social_profiles_client ON social_profiles (client_id, channel_id);

-- A post: the common content, its approval state and when it goes out.
CREATE TABLE social_posts (
    id           uuid PRIMARY KEY NOT NULL,
    client_id    uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    author_id    uuid REFERENCES users (id) ON DELETE SET NULL,
    status       TEXT NOT NULL CHECK (status IN ('draft', 'awaiting_approval', 'approved',
                     'scheduled', 'publishing', 'published', 'failed', 'deleted')),
    -- JSON: text, link, hashtags, mentions, location
    content      jsonb NOT NULL,
    approved_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    -- the instant it is due, and the time zone it was planned in (for showing it)
    scheduled_at BIGINT,
    time_zone    TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (id, client_id)
);
CREATE INDEX social_posts_client ON social_posts (client_id, created_at, id);

-- One post on one profile: its variant of the content and how publishing it went.
CREATE TABLE social_post_targets (
    post_id        uuid NOT NULL,
    channel_id     uuid NOT NULL,
    client_id      uuid NOT NULL,
    -- JSON: this profile's content, replacing the post's fields it names (NULL: as the post)
    content        jsonb,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'published', 'failed', 'deleted')),
    -- the post's id on the network, kept as soon as the network gives it
    remote_id      TEXT,
    failure_reason TEXT,
    published_at   BIGINT,
    likes          BIGINT NOT NULL DEFAULT 0,
    comments       BIGINT NOT NULL DEFAULT 0,
    reposts        BIGINT NOT NULL DEFAULT 0,
    views          BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (post_id, channel_id),
    FOREIGN KEY (post_id, client_id) REFERENCES social_posts (id, client_id) ON DELETE CASCADE,
    FOREIGN KEY (channel_id, client_id) REFERENCES channels (id, client_id) ON DELETE CASCADE
);
CREATE INDEX social_post_targets_remote ON social_post_targets (channel_id, remote_id);
CREATE INDEX social_post_targets_client ON social_post_targets (client_id, channel_id);

-- Which post a comment conversation is about: the network's post id on the profile, and our
-- post when it was published from here.
CREATE TABLE social_threads (
    conversation_id uuid PRIMARY KEY NOT NULL,
    client_id       uuid NOT NULL,
    channel_id      uuid NOT NULL,
    remote_post_id  TEXT NOT NULL,
    post_id         uuid,
    FOREIGN KEY (conversation_id, client_id)
        REFERENCES conversations (id, client_id) ON DELETE CASCADE,
    FOREIGN KEY (post_id) REFERENCES social_posts (id) ON DELETE SET NULL
);
CREATE INDEX social_threads_post ON social_threads (client_id, post_id);
CREATE INDEX social_threads_conversation_client ON social_threads (conversation_id, client_id);

-- The media library: files uploaded for posts (the bytes in the media store under
-- storage_key), named by posts' content as media ids.
CREATE TABLE social_media (
    id          uuid PRIMARY KEY NOT NULL,
    client_id   uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    file_name   TEXT NOT NULL,
    mime_type   TEXT NOT NULL,
    size        BIGINT NOT NULL,
    storage_key TEXT NOT NULL,
    uploaded_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX social_media_client ON social_media (client_id, created_at, id);
