//! The contract every messenger provider module implements, so the HTTP layer and the
//! channel-account actors can drive any of them the same way:
//!
//! - inbound by webhook: the HTTP layer hands over the raw request ([`WebhookRequest`]) and gets
//!   back either a handshake answer or the updates it carried ([`WebhookReply`]), after the
//!   provider's signature or secret was checked on the raw bytes;
//! - inbound by long poll, where the provider offers it ([`ProviderChannel::poll`]);
//! - outbound through [`OutboundChannel`](crate::OutboundChannel);
//! - media fetched by the provider's file reference, health checked, webhook registered.
//!
//! Provider modules build their channel from the channel's stored credentials and settings plus
//! the API base URL, which comes from the server's configuration (never from a tenant: a tenant
//! choosing where our server sends requests would be a server-side request forgery).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use omnihub_core::model::DeliveryStatus;

use crate::{OutboundChannel, SendError};

/// A webhook request exactly as it arrived: the raw body, because several providers sign it.
#[derive(Clone, Debug)]
pub struct WebhookRequest<'a> {
    /// `GET` or `POST`, upper case.
    pub method: &'a str,
    /// The raw query string, without the leading `?`.
    pub query: &'a str,
    /// Header names in lower case.
    headers: Vec<(String, String)>,
    pub body: &'a [u8],
}

impl<'a> WebhookRequest<'a> {
    pub fn new(
        method: &'a str,
        query: &'a str,
        headers: impl IntoIterator<Item = (String, String)>,
        body: &'a [u8],
    ) -> Self {
        let headers = headers
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        WebhookRequest {
            method,
            query,
            headers,
            body,
        }
    }

    /// The first header of that name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first query parameter of that name, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        reqwest::Url::parse(&format!("http://x/?{}", self.query))
            .ok()?
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// What to answer a verified webhook request.
#[derive(Clone, Debug, PartialEq)]
pub enum WebhookReply {
    /// A handshake (Meta's `hub.challenge`, VK's confirmation code): answer 200 with exactly this
    /// body as `text/plain`; nothing is ingested.
    Handshake { body: String },
    /// The request carried these updates (maybe none: a provider's ping). The HTTP layer answers
    /// 200 with `ack_body` (VK wants `ok`; others take an empty body) only after every update is
    /// committed, so a provider never hears "received" for something that could still be lost.
    Updates {
        updates: Vec<InboundUpdate>,
        ack_body: &'static str,
    },
}

/// Why a webhook request is refused. Nothing of the request is ingested in any case.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The signature, secret or verify token does not match (or is missing): 401.
    #[error("the request is not signed by the provider")]
    Unauthorized,
    /// Correctly signed, but not a body this provider sends: 400, with the reason.
    #[error("malformed webhook body: {0}")]
    Malformed(String),
    /// A method this provider's webhook never uses: 405.
    #[error("method not allowed")]
    MethodNotAllowed,
}

/// One thing that happened on the provider's side.
// Most updates are messages, so boxing them would only add an allocation to the common case.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum InboundUpdate {
    /// A customer wrote (or pressed a button, or edited an earlier message).
    Message(InboundMessage),
    /// A delivery status of a message omnihub sent.
    Status(StatusUpdate),
    /// The customer blocked the bot or unsubscribed (Viber's `unsubscribed`, VK's
    /// `message_deny`, MAX's `bot_stopped`, Telegram's bot `kicked` from a private chat):
    /// nothing reaches them until they write again.
    Blocked {
        /// The conversation on the provider's side, as [`InboundMessage::conversation`].
        conversation: String,
        /// What the provider said, in its words.
        reason: String,
    },
    /// The customer unblocked the bot without writing yet (Telegram's bot back to `member` in
    /// the private chat): replies may go again. Writing again unblocks as well, without this.
    Unblocked {
        /// The conversation on the provider's side, as [`InboundMessage::conversation`].
        conversation: String,
    },
}

/// A customer's message, in the provider's ids.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundMessage {
    /// Unique per channel and stable across the provider's redeliveries: the dedupe key.
    /// (Telegram's `update_id`, WhatsApp's `wamid`, VK's `event_id`, Viber's `message_token`…;
    /// an edit gets its own, e.g. `edit:<message id>:<edit date>`.)
    pub event_id: String,
    /// The conversation on the provider's side: chat id, peer id, phone number, thread root.
    pub conversation: String,
    /// The provider's id of this message, when it has one (replies and edits refer to it).
    pub provider_message_id: Option<String>,
    pub sender: ExternalUser,
    /// The text or caption; empty when the message is only attachments. A pressed button
    /// arrives as the button's payload text here with `callback_id` set.
    pub text: String,
    pub attachments: Vec<InboundAttachment>,
    /// Set when this event is the customer editing their message with that provider id.
    pub edit_of: Option<String>,
    /// Set when this is a button press: the provider's callback id, which
    /// [`ProviderChannel::answer_callback`] acknowledges.
    pub callback_id: Option<String>,
    /// When the provider says it was sent.
    pub sent_at: Option<DateTime<Utc>>,
}

/// Who wrote, as the provider knows them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExternalUser {
    /// Stable id on the provider's side; keys the contact identity.
    pub id: String,
    /// A display name ("First Last", or the username, or the phone when nothing else is known).
    pub name: String,
    pub username: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

/// A file or a structured attachment a customer sent.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundAttachment {
    pub kind: AttachmentKind,
    /// What [`ProviderChannel::download`] takes to fetch the bytes (a file id or a URL), for
    /// kinds that carry a file.
    pub file_ref: Option<String>,
    pub file_name: Option<String>,
    pub mime_type: Option<String>,
    pub size: Option<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum AttachmentKind {
    Image,
    Video,
    Audio,
    Voice,
    Document,
    Sticker,
    Location { latitude: f64, longitude: f64 },
    Contact { name: String, phone: String },
}

/// A delivery status reported by the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusUpdate {
    /// The provider's id of the message omnihub sent (as its [`SendReceipt`](crate::SendReceipt)
    /// gave it).
    pub provider_message_id: String,
    /// `Sent`, `Delivered`, `Read` or `Failed`.
    pub status: DeliveryStatus,
    /// Why it failed, in the provider's words.
    pub reason: Option<String>,
}

/// A batch of updates fetched by long poll, and where the next poll continues.
#[derive(Clone, Debug, PartialEq)]
pub struct Polled {
    pub updates: Vec<InboundUpdate>,
    /// Pass to the next [`ProviderChannel::poll`]; persisted by the caller so a restart neither
    /// misses nor repeats (repeats would be deduped anyway).
    pub cursor: Option<String>,
}

/// Bytes of a media file fetched from the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Media {
    pub bytes: Vec<u8>,
    pub mime_type: Option<String>,
    pub file_name: Option<String>,
}

/// How a connected account is doing, shown to the client owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Ok,
    /// The token or key is refused by the provider.
    InvalidToken(String),
    /// The provider does not deliver to our webhook (not set, or set elsewhere).
    WebhookNotSet(String),
    /// The provider is limiting us.
    RateLimited(String),
    /// The provider could not be reached (network trouble, a timeout, its own outage).
    Unreachable(String),
    /// Anything else, in the provider's words.
    Failing(String),
}

impl Health {
    /// The health a failed call shows: refused token, rate limit, unreachable, or else the
    /// provider's error.
    pub fn of_error(error: &SendError) -> Health {
        let words = error.reason().to_string();
        match error.problem() {
            Problem::InvalidToken => Health::InvalidToken(words),
            Problem::RateLimited => Health::RateLimited(words),
            Problem::Unreachable => Health::Unreachable(words),
            _ => Health::Failing(words),
        }
    }

    /// What is wrong, as a code, and the provider's words about it; `None` when all is well.
    pub fn problem(&self) -> Option<(Problem, &str)> {
        match self {
            Health::Ok => None,
            Health::InvalidToken(words) => Some((Problem::InvalidToken, words)),
            Health::WebhookNotSet(words) => Some((Problem::WebhookNotSet, words)),
            Health::RateLimited(words) => Some((Problem::RateLimited, words)),
            Health::Unreachable(words) => Some((Problem::Unreachable, words)),
            Health::Failing(words) => Some((Problem::ProviderError, words)),
        }
    }
}

/// What went wrong with a provider, as a machine code: the HTTP layer translates it for people
/// and keeps the provider's own words beside it for support.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Problem {
    /// The provider refuses the token, key or password.
    InvalidToken,
    /// The provider does not deliver updates to omnihub.
    WebhookNotSet,
    /// The customer blocked the bot or unsubscribed.
    BlockedByUser,
    /// The provider is limiting requests.
    RateLimited,
    /// The provider could not be reached.
    Unreachable,
    /// The provider refused for another reason (in its words, kept beside the code).
    ProviderError,
}

impl Problem {
    pub fn code(self) -> &'static str {
        match self {
            Problem::InvalidToken => "invalid_token",
            Problem::WebhookNotSet => "webhook_not_set",
            Problem::BlockedByUser => "blocked_by_user",
            Problem::RateLimited => "rate_limited",
            Problem::Unreachable => "unreachable",
            Problem::ProviderError => "provider_error",
        }
    }
}

/// Why a provider channel cannot be built from a channel's credentials and settings. Shown to
/// the client owner as is: it names the missing or wrong field, never a secret's value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// One connected messenger account.
#[async_trait]
pub trait ProviderChannel: OutboundChannel {
    /// Checks the request's signature or secret on the raw bytes first, then parses it.
    fn webhook(&self, request: &WebhookRequest<'_>) -> Result<WebhookReply, WebhookError>;

    /// Fetches updates after `cursor` by long poll (waiting up to the provider's timeout), for
    /// providers that offer it; others answer a permanent error.
    async fn poll(&self, cursor: Option<&str>) -> Result<Polled, SendError>;

    /// The bytes of an attachment by its `file_ref`.
    async fn download(&self, file_ref: &str) -> Result<Media, SendError>;

    /// Tells the provider to deliver updates to `url` (with this channel's secret), or, with
    /// `None`, to stop, so long polling can run.
    async fn set_webhook(&self, url: Option<&str>) -> Result<(), SendError>;

    /// Acknowledges a button press so the customer's client stops waiting; a no-op where the
    /// provider has no such call.
    async fn answer_callback(&self, callback_id: &str) -> Result<(), SendError>;

    /// Asks the provider whether the token works and the webhook is in place.
    async fn health(&self) -> Health;
}
