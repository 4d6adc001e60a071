//! The part of the store social publishing uses. A connected profile is a channel of kind
//! `social` (tokens sealed with the channel's credentials, per-employee rights in its grants,
//! comments in its conversations) plus a `social_profiles` row; a post has one target per
//! profile with that profile's variant of the content, its remote id and counters; a comment
//! conversation is tied to the post it is about through `social_threads`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use omnihub_core::model::Provider;
use omnihub_core::*;
use serde::Serialize;

use crate::Result;

/// A profile about to be connected.
#[derive(Clone, Debug)]
pub struct NewSocialProfile {
    pub client_id: ClientId,
    pub provider: Provider,
    pub network: String,
    pub external_id: String,
    pub name: String,
    /// Sealed at rest like every channel's credentials.
    pub credentials: serde_json::Value,
    pub token_expires_at: Option<DateTime<Utc>>,
}

/// A connected profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SocialProfile {
    /// The profile's channel: rights are granted on it, comments arrive in it.
    pub id: ChannelId,
    #[serde(skip)]
    pub client_id: ClientId,
    pub network: String,
    pub external_id: String,
    pub name: String,
    /// `active`, `token_expired` or `failing`.
    pub status: String,
    pub status_detail: Option<String>,
    pub token_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// One post on one profile.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PostTarget {
    pub profile_id: ChannelId,
    /// This profile's variant: the post's fields it names replace the post's.
    #[schema(value_type = Option<Object>)]
    pub content: Option<serde_json::Value>,
    /// `pending`, `published`, `failed` or `deleted`.
    pub status: String,
    /// The post's id on the network.
    pub remote_id: Option<String>,
    /// Why publishing failed, in the network's words.
    pub failure_reason: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
    pub likes: i64,
    pub comments: i64,
    pub reposts: i64,
    pub views: i64,
}

/// A post and its targets.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SocialPost {
    pub id: uuid::Uuid,
    #[serde(skip)]
    pub client_id: ClientId,
    pub author_id: Option<UserId>,
    /// `draft`, `awaiting_approval`, `approved`, `scheduled`, `publishing`, `published`,
    /// `failed` or `deleted` (from every profile).
    pub status: String,
    #[schema(value_type = Object)]
    pub content: serde_json::Value,
    pub approved_by: Option<UserId>,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub time_zone: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub targets: Vec<PostTarget>,
}

/// A post about to be created (as a draft).
#[derive(Clone, Debug)]
pub struct NewSocialPost {
    pub client_id: ClientId,
    pub author_id: Option<UserId>,
    pub content: serde_json::Value,
    pub targets: Vec<(ChannelId, Option<serde_json::Value>)>,
}

/// A post's status change, made only from one of `from`.
#[derive(Clone, Debug)]
pub struct PostTransition<'a> {
    pub from: &'a [&'a str],
    pub to: &'a str,
    pub approved_by: Option<UserId>,
    /// Set (or, with `Some(None)`, cleared) with the change.
    pub scheduled: Option<Option<(DateTime<Utc>, String)>>,
}

/// How publishing on one profile went.
#[derive(Clone, Debug)]
pub struct TargetOutcome<'a> {
    pub status: &'a str,
    pub remote_id: Option<&'a str>,
    pub failure_reason: Option<&'a str>,
}

/// A message of a comment conversation, as the network knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocialComment {
    pub conversation_id: ConversationId,
    pub profile_id: ChannelId,
    pub remote_post_id: String,
    /// The comment's id on the network (`None` while a reply is not sent yet).
    pub comment_id: Option<String>,
}

/// A file of the client's media library, for posts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SocialMedia {
    pub id: uuid::Uuid,
    #[serde(skip)]
    pub client_id: ClientId,
    pub file_name: String,
    /// Sniffed from the file's first bytes when it was uploaded.
    pub mime_type: String,
    /// An image or a video (from `mime_type`).
    pub kind: omnihub_core::social::MediaKind,
    pub size: i64,
    /// Where the bytes are in the media store.
    #[serde(skip)]
    pub storage_key: String,
    pub uploaded_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
}

/// A file just put in the media store, to be added to the library.
#[derive(Clone, Debug)]
pub struct NewSocialMedia {
    pub client_id: ClientId,
    pub file_name: String,
    pub mime_type: String,
    pub size: i64,
    pub storage_key: String,
    pub uploaded_by: Option<UserId>,
}

#[async_trait]
pub trait SocialStore: Send + Sync {
    /// Creates the profile's channel (kind `social`) and its row in one transaction; the same
    /// network id twice for a client is `Conflict("profile")`.
    async fn create_social_profile(&self, profile: &NewSocialProfile) -> Result<SocialProfile>;
    async fn list_social_profiles(&self, client: ClientId) -> Result<Vec<SocialProfile>>;
    async fn get_social_profile(&self, client: ClientId, id: ChannelId) -> Result<SocialProfile>;
    /// Any client's profile, for webhooks (which name the channel, not the client).
    async fn social_profile_for_hook(&self, id: ChannelId) -> Result<SocialProfile>;
    /// Every client's profiles of one account on `network` (a Page may be connected by several
    /// clients), for a network's application-wide webhook, which names the account only.
    async fn social_profiles_for_account(
        &self,
        network: &str,
        external_id: &str,
    ) -> Result<Vec<SocialProfile>>;
    async fn set_social_profile_status(
        &self,
        client: ClientId,
        id: ChannelId,
        status: &str,
        detail: Option<&str>,
    ) -> Result<()>;

    /// Replaces a profile's credentials after its token was refreshed (sealed like every
    /// channel's), with the new token's expiry, and marks it `active` again; one transaction.
    async fn renew_social_profile_token(
        &self,
        client: ClientId,
        id: ChannelId,
        credentials: &serde_json::Value,
        token_expires_at: Option<DateTime<Utc>>,
    ) -> Result<()>;

    /// Creates a draft; every target must be one of the client's profiles (else `NotFound`).
    async fn create_social_post(&self, post: &NewSocialPost) -> Result<SocialPost>;
    async fn get_social_post(&self, client: ClientId, id: uuid::Uuid) -> Result<SocialPost>;
    async fn list_social_posts(&self, client: ClientId) -> Result<Vec<SocialPost>>;
    /// Replaces a draft's content and targets; a post past `draft` is `Conflict("status")`.
    async fn update_social_post(
        &self,
        client: ClientId,
        id: uuid::Uuid,
        content: &serde_json::Value,
        targets: &[(ChannelId, Option<serde_json::Value>)],
    ) -> Result<SocialPost>;
    /// Moves the post's status when it is one of `from` (else `Conflict("status")`).
    async fn transition_social_post(
        &self,
        client: ClientId,
        id: uuid::Uuid,
        change: &PostTransition<'_>,
    ) -> Result<SocialPost>;
    /// Deletes a post that was never published (else `Conflict("status")`).
    async fn delete_social_post(&self, client: ClientId, id: uuid::Uuid) -> Result<()>;
    /// Records how publishing on one profile went; the post becomes `published` when no
    /// target is pending or failed, `failed` when one failed and none is pending, `deleted`
    /// when every target is.
    async fn set_target_outcome(
        &self,
        client: ClientId,
        post: uuid::Uuid,
        profile: ChannelId,
        outcome: &TargetOutcome<'_>,
    ) -> Result<SocialPost>;
    /// Counters of a published target.
    async fn set_target_counters(
        &self,
        client: ClientId,
        post: uuid::Uuid,
        profile: ChannelId,
        counters: [i64; 4],
    ) -> Result<()>;

    /// Ties a comment conversation to its post (our post when the remote id is one of ours);
    /// doing it again changes nothing.
    async fn link_social_thread(
        &self,
        client: ClientId,
        conversation: ConversationId,
        profile: ChannelId,
        remote_post_id: &str,
    ) -> Result<()>;
    /// The post a conversation is about: `(profile, remote post id, our post)`.
    async fn social_thread(
        &self,
        client: ClientId,
        conversation: ConversationId,
    ) -> Result<Option<(ChannelId, String, Option<uuid::Uuid>)>>;
    /// The comment conversations of one of our posts.
    async fn post_threads(&self, client: ClientId, post: uuid::Uuid)
    -> Result<Vec<ConversationId>>;
    async fn create_social_media(&self, media: &NewSocialMedia) -> Result<SocialMedia>;
    async fn get_social_media(&self, client: ClientId, id: uuid::Uuid) -> Result<SocialMedia>;
    /// The newest files of the library first, at most 500.
    async fn list_social_media(&self, client: ClientId) -> Result<Vec<SocialMedia>>;

    /// A message of a comment conversation; `NotFound` for any other message.
    async fn social_comment(&self, client: ClientId, message: MessageId) -> Result<SocialComment>;
}
