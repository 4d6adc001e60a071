//! The records omnihub keeps, as the rest of the code sees them. Secrets (password hashes, token
//! hashes, provider credentials) never appear here: the store keeps them and hands them out only
//! through purpose-built calls.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::*;
use crate::rights::{ChannelRights, GlobalRights, Role};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientStatus {
    Active,
    Blocked,
}

/// A client company (tenant).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Client {
    pub id: ClientId,
    pub name: String,
    pub status: ClientStatus,
    /// Why the platform blocked it, shown to its members.
    pub blocked_reason: Option<String>,
    /// Tariff plan code; billing fills it in.
    pub plan: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A person who signs in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub client_id: Option<ClientId>,
    pub global_rights: GlobalRights,
    /// Interface language, `ru` or `en`.
    pub locale: String,
    pub totp_enabled: bool,
    /// A disabled user cannot sign in; their history stays.
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Group {
    pub id: GroupId,
    pub client_id: ClientId,
    pub name: String,
    pub member_ids: Vec<UserId>,
    pub created_at: DateTime<Utc>,
}

/// Whether a connected account carries conversations or social-profile content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Messaging,
    Social,
}

/// The networks, messengers and gateways omnihub speaks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// The generic API channel any system can post messages to.
    Api,
    /// The website live-chat widget.
    Widget,
    Telegram,
    Whatsapp,
    Vk,
    Ok,
    Viber,
    Max,
    Email,
    Sms,
    Facebook,
    Instagram,
    X,
    Youtube,
    /// Asterisk through its REST interface (click-to-call).
    AsteriskAri,
    /// Asterisk through its manager interface, for older PBXs (click-to-call).
    AsteriskAmi,
    /// Zadarma's virtual PBX (click-to-call).
    Zadarma,
    /// Twilio Voice (click-to-call).
    Twilio,
}

impl Provider {
    pub const ALL: [Provider; 18] = [
        Provider::Api,
        Provider::Widget,
        Provider::Telegram,
        Provider::Whatsapp,
        Provider::Vk,
        Provider::Ok,
        Provider::Viber,
        Provider::Max,
        Provider::Email,
        Provider::Sms,
        Provider::Facebook,
        Provider::Instagram,
        Provider::X,
        Provider::Youtube,
        Provider::AsteriskAri,
        Provider::AsteriskAmi,
        Provider::Zadarma,
        Provider::Twilio,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Api => "api",
            Provider::Widget => "widget",
            Provider::Telegram => "telegram",
            Provider::Whatsapp => "whatsapp",
            Provider::Vk => "vk",
            Provider::Ok => "ok",
            Provider::Viber => "viber",
            Provider::Max => "max",
            Provider::Email => "email",
            Provider::Sms => "sms",
            Provider::Facebook => "facebook",
            Provider::Instagram => "instagram",
            Provider::X => "x",
            Provider::Youtube => "youtube",
            Provider::AsteriskAri => "asterisk_ari",
            Provider::AsteriskAmi => "asterisk_ami",
            Provider::Zadarma => "zadarma",
            Provider::Twilio => "twilio",
        }
    }

    pub fn parse(s: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Whether this provider offers the given kind of account at all.
    pub fn supports(self, kind: ChannelKind) -> bool {
        use Provider::*;
        match kind {
            ChannelKind::Messaging => !matches!(self, X | Youtube),
            ChannelKind::Social => matches!(self, Vk | Ok | Facebook | Instagram | X | Youtube),
        }
    }
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Messaging => "messaging",
            ChannelKind::Social => "social",
        }
    }

    pub fn parse(s: &str) -> Option<ChannelKind> {
        [ChannelKind::Messaging, ChannelKind::Social]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A connected channel account or social profile. Its credentials are never part of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Channel {
    pub id: ChannelId,
    pub client_id: ClientId,
    pub kind: ChannelKind,
    pub provider: Provider,
    pub name: String,
    /// Non-secret settings (base URL, webhook mode, limits).
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    pub has_credentials: bool,
    pub created_at: DateTime<Utc>,
}

/// One channel or profile delegated to an employee with some rights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChannelGrant {
    pub channel_id: ChannelId,
    pub rights: ChannelRights,
}

/// An invitation to join a client. The link token itself is shown once, at creation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Invite {
    pub id: InviteId,
    pub client_id: ClientId,
    pub email: String,
    pub global_rights: GlobalRights,
    pub group_ids: Vec<GroupId>,
    pub channel_grants: Vec<ChannelGrant>,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
}

/// A revocable API token; only a hash of its secret is kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiToken {
    pub id: ApiTokenId,
    pub client_id: ClientId,
    /// The token acts with this user's rights, never more.
    pub user_id: UserId,
    pub name: String,
    /// The first characters of the secret, to tell tokens apart.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// One action of an employee (or of platform staff on a client), kept for audit and analytics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: AuditEntryId,
    pub client_id: Option<ClientId>,
    pub actor_id: Option<UserId>,
    /// Stable dotted name, e.g. `employee.invite`.
    pub action: String,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A customer of a client, one card across all channels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Contact {
    pub id: ContactId,
    pub client_id: ClientId,
    pub name: String,
    /// Custom fields the client keeps about the contact (phone, company, notes…).
    #[schema(value_type = Object)]
    pub fields: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// How a contact is known on one channel; a contact has one per channel they wrote from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ContactIdentity {
    pub contact_id: ContactId,
    pub channel_id: ChannelId,
    /// The sender's id on the provider's side.
    pub external_id: String,
}

/// A saved reply; `{{contact.name}}`-style variables are filled in when inserted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QuickReply {
    pub id: QuickReplyId,
    pub client_id: ClientId,
    pub title: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    New,
    Open,
    Pending,
    Snoozed,
    Resolved,
}

impl ConversationStatus {
    pub const ALL: [ConversationStatus; 5] = [
        ConversationStatus::New,
        ConversationStatus::Open,
        ConversationStatus::Pending,
        ConversationStatus::Snoozed,
        ConversationStatus::Resolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConversationStatus::New => "new",
            ConversationStatus::Open => "open",
            ConversationStatus::Pending => "pending",
            ConversationStatus::Snoozed => "snoozed",
            ConversationStatus::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Conversation {
    pub id: ConversationId,
    pub client_id: ClientId,
    pub channel_id: ChannelId,
    pub contact_id: ContactId,
    /// The conversation's id on the provider's side (chat id, thread id).
    pub external_id: String,
    pub status: ConversationStatus,
    /// When a snoozed conversation wakes up by itself.
    pub snoozed_until: Option<DateTime<Utc>>,
    pub assignee_id: Option<UserId>,
    pub group_id: Option<GroupId>,
    /// Requests counted so far: a customer message after resolve opens the next one.
    pub request_no: i64,
    pub last_message_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// Since when the customer has blocked the bot or unsubscribed: replies fail at once with
    /// `blocked_by_user` until they write again.
    #[serde(default)]
    pub blocked_at: Option<DateTime<Utc>>,
    /// The provider's words when it said so.
    #[serde(default)]
    pub blocked_reason: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Received,
    Pending,
    Sent,
    Delivered,
    Read,
    Failed,
}

/// What a message is, beyond its direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A message exchanged with the customer.
    Message,
    /// An internal note between employees; never sent to the customer.
    Note,
    /// An automatic reply (out of hours, greeting).
    AutoReply,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Message {
    pub id: MessageId,
    pub client_id: ClientId,
    pub conversation_id: ConversationId,
    pub direction: Direction,
    pub kind: MessageKind,
    /// The provider's id for this event; inbound retries with the same id are duplicates.
    pub provider_event_id: Option<String>,
    pub author_id: Option<UserId>,
    pub text: String,
    pub status: DeliveryStatus,
    /// Why delivery failed, in the provider's words.
    pub failure_reason: Option<String>,
    /// Outbound: the key that makes a retried send the same send.
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Files of the message, in order (inbound ones start `pending` until downloaded).
    #[serde(default)]
    pub attachments: Vec<crate::media::Attachment>,
}

/// What a call-back came to; `None` on a [`Call`] while it is still going.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcomeKind {
    Answered,
    NoAnswer,
    Busy,
    Failed,
}

impl CallOutcomeKind {
    pub const ALL: [CallOutcomeKind; 4] = [
        CallOutcomeKind::Answered,
        CallOutcomeKind::NoAnswer,
        CallOutcomeKind::Busy,
        CallOutcomeKind::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcomeKind::Answered => "answered",
            CallOutcomeKind::NoAnswer => "no_answer",
            CallOutcomeKind::Busy => "busy",
            CallOutcomeKind::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One click-to-call attempt: the telephony channel that placed it, the conversation where its
/// attempt and outcome show, and what it came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Call {
    pub id: CallId,
    pub client_id: ClientId,
    /// The telephony channel (`asterisk_ari`, `asterisk_ami`, `zadarma`, `twilio`).
    pub channel_id: ChannelId,
    pub conversation_id: ConversationId,
    /// The visitor's number, E.164.
    pub number: String,
    /// The website visitor who asked, when a visitor did.
    pub visitor: Option<String>,
    /// The address the request came from, when a visitor asked.
    pub ip: Option<String>,
    /// The employee who asked, when one did.
    pub requested_by: Option<UserId>,
    /// The provider's id of the call, when it gave one.
    pub provider_call_id: Option<String>,
    pub outcome: Option<CallOutcomeKind>,
    /// Talk time of an answered call, in seconds.
    pub duration_secs: Option<i64>,
    /// Why it failed, in the provider's words.
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

impl Role {
    /// What an employee of this role gets when nothing is said: owners everything, employees nothing.
    pub fn default_global_rights(self) -> GlobalRights {
        match self {
            Role::ClientOwner => GlobalRights::all(),
            _ => GlobalRights::empty(),
        }
    }
}
