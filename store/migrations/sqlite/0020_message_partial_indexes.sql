-- An inbound message has no idempotency key, no provider message id and no author: only the
-- business's own messages do. Indexed with their NULLs, every inbound insert wrote a NULL entry
-- into each of these three indexes, and the key one, led by the conversation, a page of its own
-- for every conversation in a batch. The lookups all compare the column with `=`, which a
-- partial index serves, and the unique rules never applied to NULLs anyway.
DROP INDEX messages_idempotency;
DROP INDEX messages_provider_message;
DROP INDEX messages_author;
CREATE UNIQUE INDEX messages_idempotency ON messages (conversation_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX messages_provider_message ON messages (channel_id, provider_message_id)
    WHERE provider_message_id IS NOT NULL;
CREATE INDEX messages_author ON messages (author_id) WHERE author_id IS NOT NULL;
