//! What happened in a client's inbox, as operators' consoles are told about it. Every change to a
//! conversation appends one event with a per-store increasing `seq`; a console resumes after a
//! reconnect from the last `seq` it saw, so nothing is missed or repeated.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::ConversationScope;
use crate::ids::*;

/// The payload key of a `conversation_updated` event that moved the conversation to another
/// assignee or group: `{assignee_id, group_id}` as they were before.
pub const PREVIOUS_SCOPE: &str = "previous_scope";

/// One event. The visibility fields (`channel_id`, `assignee_id`, `group_id`) are copied from the
/// conversation as it was after the change, so a session can decide whether its operator may see
/// the event without asking the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HubEvent {
    /// Strictly increasing across the whole store (not only per client); the resume cursor.
    pub seq: i64,
    pub client_id: ClientId,
    pub conversation_id: Option<ConversationId>,
    pub channel_id: Option<ChannelId>,
    pub assignee_id: Option<UserId>,
    pub group_id: Option<GroupId>,
    pub kind: EventKind,
    /// The kind's data (the message, the conversation, the status…), as sent to consoles.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A message, note or auto-reply was added; payload: the message, with the conversation as
    /// it is after it under `conversation`.
    MessageCreated,
    /// An outbound message changed delivery status; payload: the message.
    MessageStatus,
    /// A conversation was created or changed (status, assignee, group, tags); payload: it.
    ConversationUpdated,
    /// An operator read a conversation up to a message; payload: {user_id, message_id}.
    ReadMark,
    /// A message's attachments changed (a file finished downloading, or failed); payload: the
    /// message with its attachments.
    MessageUpdated,
    /// Something for one employee (named by `assignee_id`, the only one who gets it); payload:
    /// the stored notification.
    Notification,
}

impl HubEvent {
    /// Where the conversation was before this event moved it (another assignee or group), if
    /// it did: who could see it then and cannot now must be told to let it go.
    pub fn previous_scope(&self) -> Option<ConversationScope> {
        if self.kind != EventKind::ConversationUpdated {
            return None;
        }
        let before = self.payload.get(PREVIOUS_SCOPE)?;
        Some(ConversationScope {
            channel_id: self.channel_id?,
            assignee_id: serde_json::from_value(before.get("assignee_id")?.clone()).ok()?,
            group_id: serde_json::from_value(before.get("group_id")?.clone()).ok()?,
        })
    }
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::MessageCreated,
        EventKind::MessageStatus,
        EventKind::ConversationUpdated,
        EventKind::ReadMark,
        EventKind::MessageUpdated,
        EventKind::Notification,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::MessageCreated => "message_created",
            EventKind::MessageStatus => "message_status",
            EventKind::ConversationUpdated => "conversation_updated",
            EventKind::ReadMark => "read_mark",
            EventKind::MessageUpdated => "message_updated",
            EventKind::Notification => "notification",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}
