//! Connectors to the outside providers omnihub talks to. Each provider is one module holding its
//! wire types, its client and the mapping to the domain types of `omnihub-core`. Connectors know
//! nothing of the HTTP layer, the store or the actor tree: they are called with plain values and
//! hand back plain values, so the sandbox and the tests can drive them directly.
//!
//! This file holds the vocabulary every messaging connector shares with the channel-account
//! actor that drives it: what is sent ([`OutboundMessage`]), what comes back ([`SendReceipt`] or
//! [`SendError`]), and the one trait a provider implements ([`OutboundChannel`]).

use std::time::Duration;

use async_trait::async_trait;
use omnihub_core::MessageId;

pub mod api;
pub mod email;

/// One outbound message, as a connector sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundMessage {
    pub message_id: MessageId,
    /// The conversation's id on the provider's side (chat id, thread id, external id).
    pub conversation: String,
    pub text: String,
    /// The same key on a retried send makes it the same send on the provider's side.
    pub idempotency_key: String,
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
}

impl SendError {
    pub fn is_transient(&self) -> bool {
        matches!(self, SendError::Transient { .. })
    }
}

/// A messaging channel omnihub can send through. One value per connected account; the
/// channel-account actor calls it one message at a time, with its own rate limiting and retries.
#[async_trait]
pub trait OutboundChannel: Send + Sync {
    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError>;
}
