//! Connectors to the outside providers omnihub talks to. Each provider is one module holding its
//! wire types, its client and the mapping to the domain types of `omnihub-core`. Connectors know
//! nothing of the HTTP layer, the store or the actor tree: they are called with plain values and
//! hand back plain values, so the sandbox and the tests can drive them directly.
//!
//! This file holds the vocabulary every messaging connector shares with the channel-account
//! actor that drives it: what is sent ([`OutboundMessage`]), what comes back ([`SendReceipt`] or
//! [`SendError`]), and the one trait a provider implements ([`OutboundChannel`]); the inbound
//! half of the contract is in [`provider`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use omnihub_core::MessageId;

pub mod api;
pub mod email;
pub mod max;
pub mod media_link;
pub mod net_guard;
pub mod provider;
pub mod registry;
pub mod rest_client;
pub mod signing;
pub mod social;
pub mod telegram;
pub mod telephony;
pub mod viber;
pub mod vk;
pub mod whatsapp;
pub mod widget;

/// One outbound message, as a connector sends it.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboundMessage {
    pub message_id: MessageId,
    /// The conversation's id on the provider's side (chat id, thread id, external id).
    pub conversation: String,
    pub text: String,
    /// The same key on a retried send makes it the same send on the provider's side.
    pub idempotency_key: String,
    pub attachments: Vec<OutboundAttachment>,
    /// Buttons under the message, row by row; providers without buttons send the text only.
    pub keyboard: Vec<Vec<Button>>,
    /// The provider's id of the message this one answers (quoted where the provider can).
    pub reply_to: Option<String>,
    /// A pre-approved template (WhatsApp outside its 24-hour window); `text` is then only what
    /// omnihub shows in its own history.
    pub template: Option<Template>,
    /// When the customer last wrote in this conversation: providers with a reply window
    /// (WhatsApp's 24 hours) refuse free-form messages outside it.
    pub last_inbound_at: Option<DateTime<Utc>>,
}

impl OutboundMessage {
    /// A plain text message; the other fields empty.
    pub fn text(
        message_id: MessageId,
        conversation: impl Into<String>,
        text: impl Into<String>,
        idempotency_key: impl Into<String>,
    ) -> Self {
        OutboundMessage {
            message_id,
            conversation: conversation.into(),
            text: text.into(),
            idempotency_key: idempotency_key.into(),
            attachments: Vec::new(),
            keyboard: Vec::new(),
            reply_to: None,
            template: None,
            last_inbound_at: None,
        }
    }
}

/// A file sent with a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundAttachment {
    pub file_name: String,
    pub mime_type: String,
    pub bytes: Arc<[u8]>,
    /// A signed link to the same file on omnihub's public address, for providers that fetch
    /// media by URL (Viber); `None` when the server mints no links.
    pub public_url: Option<String>,
}

/// A button under a message: pressing it sends `payload` back as a callback, or opens `url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Button {
    pub text: String,
    pub payload: Option<String>,
    pub url: Option<String>,
}

/// A provider-approved message template and the values of its placeholders, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub name: String,
    pub language: String,
    pub parameters: Vec<String>,
}

/// A provider accepted the message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendReceipt {
    /// The provider's id for the message, when it gave one; delivery callbacks refer to it.
    pub provider_message_id: Option<String>,
}

/// Why a send did not go through, split by what the caller should do about it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Try again later (rate limited, provider unavailable, network trouble); wait at least
    /// `retry_after` when the provider said so.
    #[error("temporary send failure: {reason}")]
    Transient {
        retry_after: Option<Duration>,
        reason: String,
    },
    /// The provider refused the message for good; `reason` is in the provider's words and is
    /// shown to the operator.
    #[error("the provider refused the message: {reason}")]
    Permanent { reason: String },
    /// The customer blocked the bot or unsubscribed (the provider's words in `reason`): nothing
    /// reaches them until they write again.
    #[error("the customer blocked the bot: {reason}")]
    Blocked { reason: String },
}

/// How a refused token's reason begins, whatever the provider's words: [`SendError::problem`]
/// tells it by this.
const INVALID_TOKEN: &str = "invalid token";

impl SendError {
    pub fn is_transient(&self) -> bool {
        matches!(self, SendError::Transient { .. })
    }

    /// The provider refuses the token or key: permanent, with the provider's words.
    pub fn invalid_token(words: &str) -> SendError {
        SendError::Permanent {
            reason: format!("{INVALID_TOKEN}: {words}"),
        }
    }

    /// The failure as a machine code: a refused token, a blocked customer, a rate limit
    /// (transient with the provider's wait, or its words for it), an unreachable provider
    /// (any other transient failure), or the provider's error.
    pub fn problem(&self) -> provider::Problem {
        use provider::Problem;
        match self {
            SendError::Blocked { .. } => Problem::BlockedByUser,
            SendError::Transient {
                retry_after,
                reason,
            } => {
                let lower = reason.to_ascii_lowercase();
                if retry_after.is_some()
                    || lower.contains("429")
                    || lower.contains("too many requests")
                    || lower.contains("toomanyrequests")
                    || lower.contains("flood")
                    || lower.contains("rate limit")
                {
                    Problem::RateLimited
                } else {
                    Problem::Unreachable
                }
            }
            SendError::Permanent { reason } if reason.starts_with(INVALID_TOKEN) => {
                Problem::InvalidToken
            }
            SendError::Permanent { .. } => Problem::ProviderError,
        }
    }

    /// The provider's (or the transport's) own words.
    pub fn reason(&self) -> &str {
        match self {
            SendError::Transient { reason, .. }
            | SendError::Permanent { reason }
            | SendError::Blocked { reason } => reason,
        }
    }
}

/// A messaging channel omnihub can send through. One value per connected account; the
/// channel-account actor calls it one message at a time, with its own rate limiting and retries.
#[async_trait]
pub trait OutboundChannel: Send + Sync {
    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError>;
}
