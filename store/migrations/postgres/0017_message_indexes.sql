-- Every inbound message writes each of the messages table's indexes. These three repeated a
-- prefix that another index already serves: a conversation's messages are read in
-- (conversation_id, created_at, id) order, and deleting a conversation or a channel finds its
-- messages through messages_conversation_order or the (channel_id, provider_event_id) key.
DROP INDEX messages_conversation;
DROP INDEX messages_conversation_client;
DROP INDEX messages_channel_client;
