//! Typed identifiers. Every id is a UUIDv7 (time-ordered, so indexes stay compact) wrapped in its
//! own type so a client id can never be passed where a user id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! typed_id {
    ($($(#[$doc:meta])* $name:ident),+ $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    )+};
}

typed_id!(
    /// A client company (tenant).
    ClientId,
    /// A person who signs in: platform staff or a client's owner or employee.
    UserId,
    /// A group of a client's employees (used for routing and visibility).
    GroupId,
    /// A connected channel account (bot, number, mailbox) or social profile.
    ChannelId,
    /// An invitation to join a client as an employee.
    InviteId,
    /// A revocable API token.
    ApiTokenId,
    /// A customer of a client, across all of their channels.
    ContactId,
    /// One conversation with a contact on one channel.
    ConversationId,
    /// One message in a conversation.
    MessageId,
    /// One entry of the audit log.
    AuditEntryId,
    /// A saved reply operators insert with one click.
    QuickReplyId,
    /// One click-to-call attempt.
    CallId,
    /// A file attached to a message (or uploaded for a reply not yet sent).
    AttachmentId,
    /// A rule that acts on new social posts and comments (see `triggers`).
    TriggerId,
    /// An internal notification to one employee.
    NotificationId,
);
