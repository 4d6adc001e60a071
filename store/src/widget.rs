//! The part of the store the website widget uses: each widget's public key (a widget is a
//! channel of provider `widget`), and its visitors. A visitor's token is kept only as its
//! SHA-256 and is looked up within one widget, so a token never opens another widget's (or
//! another client's) visitor. A visitor's conversation is the widget channel's conversation
//! whose external id is the visitor's id: the hub's ingest creates it with the first message.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use omnihub_core::model::Channel;
use omnihub_core::*;
use serde::{Deserialize, Serialize};

use crate::{NewChannel, Result};

/// A visitor about to be created.
#[derive(Clone, Debug)]
pub struct NewVisitor {
    pub client_id: ClientId,
    pub channel_id: ChannelId,
    /// SHA-256 of the visitor's token.
    pub token_hash: Vec<u8>,
    pub name: String,
    /// What the visitor gave in the pre-chat form (a JSON object).
    pub details: serde_json::Value,
}

/// A visitor of one widget.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visitor {
    pub id: uuid::Uuid,
    pub client_id: ClientId,
    pub channel_id: ChannelId,
    pub name: String,
    pub details: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

#[async_trait]
pub trait WidgetStore: Send + Sync {
    /// Creates a widget channel (provider `widget`, no credentials) and its public key in one
    /// transaction. A taken key is `Conflict("public_key")`.
    async fn create_widget(&self, channel: &NewChannel, public_key: &str) -> Result<Channel>;
    /// The public key of one of the client's widgets; `NotFound` for any other channel.
    async fn widget_key(&self, client: ClientId, channel: ChannelId) -> Result<String>;
    /// The widget a public key names (any client's: the key is what the web page carries).
    async fn widget_by_key(&self, public_key: &str) -> Result<Channel>;
    async fn create_visitor(&self, visitor: &NewVisitor) -> Result<Visitor>;
    /// The visitor of this widget whose token hashes to `token_hash`, its `last_seen_at`
    /// moved to now; `NotFound` for an unknown token or another widget's.
    async fn visitor_by_token(&self, channel: ChannelId, token_hash: &[u8]) -> Result<Visitor>;
    /// The conversation of the client's channel with this external id, if it exists yet.
    async fn conversation_by_external_id(
        &self,
        client: ClientId,
        channel: ChannelId,
        external_id: &str,
    ) -> Result<Option<ConversationId>>;
}
