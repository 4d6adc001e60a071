//! omnihub-store: everything omnihub keeps, behind one [`Store`] interface with two concrete
//! backends — SQLite (the embedded default: one WAL file in the data directory) and PostgreSQL
//! (scale-out). Both run the same SQL text (`sql.rs` and, for the realtime hub, `hub_sql.rs`,
//! each compiled once per backend), their own migrations with identical file names, and one
//! conformance suite.
//!
//! It owns persistence and encryption at rest of provider credentials. It must not depend on
//! actix, the actor tree, connectors or anything that speaks HTTP.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use omnihub_core::model::*;
use omnihub_core::*;

mod codec;
mod hub;
pub mod media;
mod postgres;
pub mod scheduler;
pub mod secrets;
mod social;
mod sqlite;
mod widget;

pub use hub::*;
pub use postgres::PgStore;
pub use scheduler::*;
pub use secrets::SecretBox;
pub use social::*;
pub use sqlite::SqliteStore;
pub use widget::*;

pub type DynStore = Arc<dyn Store>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value (e-mail, name, provider event id) is already taken.
    #[error("already exists: {0}")]
    Conflict(&'static str),
    /// The row does not exist in the caller's client.
    #[error("not found")]
    NotFound,
    /// A stored value could not be read back (corruption or a newer schema).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    #[error("credential encryption: {0}")]
    Crypto(String),
    #[error("unsupported store url `{0}`: expected sqlite://… or postgres://…")]
    BadUrl(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Connections per pool when the configuration does not say.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;

/// Opens the store named by `url` (`sqlite://PATH` or `postgres://…`) without migrating it.
pub async fn open(url: &str, secrets: SecretBox) -> Result<DynStore> {
    open_with_pool(url, secrets, DEFAULT_MAX_CONNECTIONS).await
}

/// Like [`open`], with the pool size from configuration.
pub async fn open_with_pool(
    url: &str,
    secrets: SecretBox,
    max_connections: u32,
) -> Result<DynStore> {
    let max_connections = max_connections.max(1);
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            SqliteStore::connect(url, secrets, max_connections).await?,
        ))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(
            PgStore::connect(url, secrets, max_connections).await?,
        ))
    } else {
        Err(StoreError::BadUrl(url.to_string()))
    }
}

// ---------------------------------------------------------------------------------------------
// Inputs and records that exist only at the store boundary.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct NewUser {
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: Role,
    pub client_id: Option<ClientId>,
    pub global_rights: GlobalRights,
    pub locale: String,
}

/// What sign-in needs about a user, secrets included. Never serialised to the API.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
    /// The TOTP secret, decrypted, when a second factor is set up (enabled or pending).
    pub totp_secret: Option<Vec<u8>>,
    pub failed_logins: i64,
    pub locked_until: Option<DateTime<Utc>>,
}

/// A signed-in browser session. The store keys it by a hash of the cookie value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub token_hash: Vec<u8>,
    pub user_id: UserId,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Clone, Debug)]
pub struct NewApiToken {
    pub client_id: ClientId,
    pub user_id: UserId,
    pub name: String,
    pub prefix: String,
    pub token_hash: Vec<u8>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug)]
pub struct NewInvite {
    pub client_id: ClientId,
    pub email: String,
    pub token_hash: Vec<u8>,
    pub global_rights: GlobalRights,
    pub group_ids: Vec<GroupId>,
    pub channel_grants: Vec<ChannelGrant>,
    pub created_by: UserId,
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct NewChannel {
    pub client_id: ClientId,
    pub kind: ChannelKind,
    pub provider: Provider,
    pub name: String,
    pub settings: serde_json::Value,
    /// Plaintext credentials; the store seals them before they touch the disk.
    pub credentials: Option<serde_json::Value>,
}

/// A click-to-call attempt to record, before the provider is asked.
#[derive(Clone, Debug)]
pub struct NewCall {
    pub id: CallId,
    pub client_id: ClientId,
    /// The telephony channel; must be the client's.
    pub channel_id: ChannelId,
    /// Where the attempt shows; must be the client's.
    pub conversation_id: ConversationId,
    pub number: String,
    pub visitor: Option<String>,
    pub ip: Option<String>,
    pub requested_by: Option<UserId>,
}

/// What the per-visitor, per-IP and per-number limits count.
#[derive(Clone, Copy, Debug)]
pub enum CallsBy<'a> {
    Number(&'a str),
    Ip(&'a str),
    Visitor(&'a str),
}

/// A partial update of a channel; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ChannelPatch {
    pub name: Option<String>,
    pub settings: Option<serde_json::Value>,
    pub credentials: Option<serde_json::Value>,
}

#[derive(Clone, Debug)]
pub struct NewAuditEntry {
    pub client_id: Option<ClientId>,
    pub actor_id: Option<UserId>,
    pub action: String,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
    pub ip: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub actor_id: Option<UserId>,
    pub action_prefix: Option<String>,
    /// Entries strictly older than this id (ids are time-ordered): keyset pagination.
    pub before: Option<AuditEntryId>,
    pub limit: u32,
}

#[derive(Clone, Debug, Default)]
pub struct ClientFilter {
    /// Case-insensitive substring of the client's name or of its owner's e-mail.
    pub query: Option<String>,
    pub status: Option<ClientStatus>,
    pub limit: u32,
    pub offset: u32,
}

/// Outcome of a failed sign-in attempt after it was counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginFailure {
    pub failed_logins: i64,
    pub locked_until: Option<DateTime<Utc>>,
}

/// The interface both backends implement. Every client-scoped call takes the caller's
/// `ClientId` and touches nothing outside it: another client's id is `NotFound`, never data.
/// The realtime hub's part ([`HubStore`]), the website widget's ([`WidgetStore`]) and the
/// scheduler's ([`SchedulerStore`]) are supertraits, so a [`DynStore`] has every method.
#[async_trait]
pub trait Store:
    HubStore + WidgetStore + SchedulerStore + SocialStore + Send + Sync + 'static
{
    /// `sqlite` or `postgres`.
    fn engine(&self) -> &'static str;
    /// Applies pending migrations.
    async fn migrate(&self) -> Result<()>;
    /// Cheap round trip for readiness checks.
    async fn ping(&self) -> Result<()>;

    // --- clients -------------------------------------------------------------------------
    async fn create_client(&self, name: &str, plan: Option<&str>) -> Result<Client>;
    async fn get_client(&self, id: ClientId) -> Result<Client>;
    /// Matching clients (newest first) and the total count matching the filter.
    async fn list_clients(&self, filter: &ClientFilter) -> Result<(Vec<Client>, u64)>;
    async fn set_client_status(
        &self,
        id: ClientId,
        status: ClientStatus,
        reason: Option<&str>,
    ) -> Result<Client>;

    // --- users ---------------------------------------------------------------------------
    /// `Conflict("email")` when the address is taken (compared lower-cased).
    async fn create_user(&self, user: &NewUser) -> Result<User>;
    async fn get_user(&self, id: UserId) -> Result<User>;
    /// A user of this client (owner or employee); `NotFound` for anyone else.
    async fn get_client_user(&self, client: ClientId, id: UserId) -> Result<User>;
    async fn credentials_by_email(&self, email: &str) -> Result<Credentials>;
    async fn credentials(&self, id: UserId) -> Result<Credentials>;
    /// Owners and employees of a client, oldest first.
    async fn list_client_users(&self, client: ClientId) -> Result<Vec<User>>;
    /// Platform staff with the given role.
    async fn list_staff(&self, role: Role) -> Result<Vec<User>>;
    async fn update_user_profile(
        &self,
        id: UserId,
        display_name: Option<&str>,
        locale: Option<&str>,
    ) -> Result<User>;
    /// Changes role and global rights of a client's user.
    async fn set_user_rights(
        &self,
        client: ClientId,
        id: UserId,
        role: Role,
        rights: GlobalRights,
    ) -> Result<User>;
    async fn set_user_disabled(&self, id: UserId, disabled: bool) -> Result<User>;
    async fn set_password_hash(&self, id: UserId, hash: &str) -> Result<()>;
    /// Stores (sealed) or clears the TOTP secret and whether it is enforced.
    async fn set_totp(&self, id: UserId, secret: Option<&[u8]>, enabled: bool) -> Result<()>;
    /// Counts a failed sign-in; after `lock_after` failures in a row the account locks until
    /// `now + lock_for`.
    async fn record_login_failure(
        &self,
        id: UserId,
        now: DateTime<Utc>,
        lock_after: i64,
        lock_for: chrono::Duration,
    ) -> Result<LoginFailure>;
    async fn reset_login_failures(&self, id: UserId) -> Result<()>;

    // --- sessions ------------------------------------------------------------------------
    async fn create_session(&self, session: &Session) -> Result<()>;
    /// A live (unexpired at `now`) session; also refreshes `last_seen_at`.
    async fn touch_session(&self, token_hash: &[u8], now: DateTime<Utc>) -> Result<Session>;
    async fn delete_session(&self, token_hash: &[u8]) -> Result<()>;
    /// Revokes every session of a user; returns how many were revoked.
    async fn revoke_user_sessions(&self, id: UserId) -> Result<u64>;
    async fn delete_expired(&self, now: DateTime<Utc>) -> Result<u64>;

    // --- API tokens ----------------------------------------------------------------------
    async fn create_api_token(&self, token: &NewApiToken) -> Result<ApiToken>;
    async fn list_api_tokens(&self, client: ClientId) -> Result<Vec<ApiToken>>;
    async fn revoke_api_token(
        &self,
        client: ClientId,
        id: ApiTokenId,
        now: DateTime<Utc>,
    ) -> Result<ApiToken>;
    /// A usable (not revoked, not expired) token by the hash of its secret; marks it used.
    async fn use_api_token(&self, token_hash: &[u8], now: DateTime<Utc>) -> Result<ApiToken>;

    // --- invites -------------------------------------------------------------------------
    async fn create_invite(&self, invite: &NewInvite) -> Result<Invite>;
    async fn list_invites(&self, client: ClientId) -> Result<Vec<Invite>>;
    /// A pending (unaccepted, unexpired at `now`) invite by the hash of its token.
    async fn pending_invite(&self, token_hash: &[u8], now: DateTime<Utc>) -> Result<Invite>;
    async fn delete_invite(&self, client: ClientId, id: InviteId) -> Result<()>;
    /// In one transaction: marks the invite accepted, creates the employee with the invite's
    /// rights, groups and channel grants. Fails with `NotFound` when the invite is no longer
    /// pending (so accepting twice creates one user).
    async fn accept_invite(
        &self,
        token_hash: &[u8],
        now: DateTime<Utc>,
        display_name: &str,
        password_hash: &str,
        locale: &str,
    ) -> Result<User>;

    // --- password reset ------------------------------------------------------------------
    async fn create_password_reset(
        &self,
        id: UserId,
        token_hash: &[u8],
        expires_at: DateTime<Utc>,
    ) -> Result<()>;
    /// Uses a reset token once: sets the new hash, revokes the user's sessions and every other
    /// reset token of theirs, all in one transaction.
    async fn consume_password_reset(
        &self,
        token_hash: &[u8],
        now: DateTime<Utc>,
        new_hash: &str,
    ) -> Result<UserId>;

    // --- groups --------------------------------------------------------------------------
    async fn create_group(&self, client: ClientId, name: &str) -> Result<Group>;
    async fn list_groups(&self, client: ClientId) -> Result<Vec<Group>>;
    async fn get_group(&self, client: ClientId, id: GroupId) -> Result<Group>;
    async fn rename_group(&self, client: ClientId, id: GroupId, name: &str) -> Result<Group>;
    async fn delete_group(&self, client: ClientId, id: GroupId) -> Result<()>;
    /// Replaces the members; every member must be a user of this client (`NotFound` otherwise).
    async fn set_group_members(
        &self,
        client: ClientId,
        id: GroupId,
        members: &[UserId],
    ) -> Result<Group>;
    async fn user_groups(&self, client: ClientId, user: UserId) -> Result<Vec<GroupId>>;

    // --- channels and per-channel grants -------------------------------------------------
    async fn create_channel(&self, channel: &NewChannel) -> Result<Channel>;
    async fn list_channels(&self, client: ClientId) -> Result<Vec<Channel>>;
    async fn get_channel(&self, client: ClientId, id: ChannelId) -> Result<Channel>;
    async fn update_channel(
        &self,
        client: ClientId,
        id: ChannelId,
        patch: &ChannelPatch,
    ) -> Result<Channel>;
    async fn delete_channel(&self, client: ClientId, id: ChannelId) -> Result<()>;
    /// The decrypted credentials, for connectors only.
    async fn channel_credentials(
        &self,
        client: ClientId,
        id: ChannelId,
    ) -> Result<Option<serde_json::Value>>;
    /// Every channel of these providers, of every client: the channels read by polling, which
    /// the process that polls finds without a client to start from.
    async fn channels_of_providers(&self, providers: &[Provider]) -> Result<Vec<Channel>>;
    /// Where polling a channel continues (its connector's cursor), if it ever polled.
    async fn poll_cursor(&self, client: ClientId, channel: ChannelId) -> Result<Option<String>>;
    /// Keeps the cursor after the updates it follows were committed.
    async fn set_poll_cursor(
        &self,
        client: ClientId,
        channel: ChannelId,
        cursor: &str,
    ) -> Result<()>;
    /// Claims or renews `node`'s lease on polling a channel, until `until`. Granted when the
    /// channel has no lease, when its lease ran out by `now` (its node died or stopped
    /// renewing), or when `node` already holds it; false while another node's lease is live
    /// and when the channel is gone. Two nodes claiming at once: exactly one is granted.
    async fn claim_poll_lease(
        &self,
        channel: ChannelId,
        node: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool>;
    /// Gives `node`'s lease up (a node stopping), so another node may claim it at once;
    /// nothing happens when `node` does not hold it.
    async fn release_poll_lease(&self, channel: ChannelId, node: &str) -> Result<()>;
    /// Who holds the lease on polling a channel and until when, whether or not it ran out.
    async fn poll_lease(&self, channel: ChannelId) -> Result<Option<(String, DateTime<Utc>)>>;
    /// A channel of any client with its decrypted credentials, for the one caller that knows
    /// a channel only by id: a provider's webhook (`/hooks/{provider}/{channel_id}`), which
    /// must then authenticate against those credentials before anything else happens.
    async fn channel_for_hook(&self, id: ChannelId)
    -> Result<(Channel, Option<serde_json::Value>)>;
    /// Replaces a user's channel grants; every channel must belong to the client.
    async fn set_channel_grants(
        &self,
        client: ClientId,
        user: UserId,
        grants: &[ChannelGrant],
    ) -> Result<()>;
    async fn channel_grants(&self, client: ClientId, user: UserId) -> Result<Vec<ChannelGrant>>;

    // --- click-to-call --------------------------------------------------------------------
    /// Records an attempt (no outcome yet). The channel and the conversation must be the
    /// client's (`NotFound` otherwise).
    async fn create_call(&self, call: &NewCall) -> Result<Call>;
    async fn get_call(&self, client: ClientId, id: CallId) -> Result<Call>;
    /// Keeps the provider's id of the call; one already used on the channel is
    /// `Conflict("provider_call_id")`.
    async fn set_call_provider_id(
        &self,
        client: ClientId,
        id: CallId,
        provider_call_id: &str,
    ) -> Result<Call>;
    /// Sets the outcome of a call still going and returns it; `None` when it already had one
    /// (a provider's redelivery or a later leg changes nothing: the first outcome stays).
    async fn finish_call(
        &self,
        client: ClientId,
        id: CallId,
        outcome: CallOutcomeKind,
        duration_secs: Option<i64>,
        failure_reason: Option<&str>,
    ) -> Result<Option<Call>>;
    /// The call of a channel with the provider's id (call-event webhooks).
    async fn call_by_provider_id(&self, channel: ChannelId, provider_call_id: &str)
    -> Result<Call>;
    /// The newest call of a channel to this number that is still going (providers whose events
    /// name only the number called).
    async fn open_call_to(&self, channel: ChannelId, number: &str) -> Result<Call>;
    /// Calls of every client still without an outcome that were placed before
    /// `placed_before`, oldest first: the ones a restart may have cut off.
    async fn unfinished_calls(
        &self,
        placed_before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<Vec<Call>>;
    /// Calls of the client since `since` to a number, from an IP or by a visitor.
    async fn count_calls(
        &self,
        client: ClientId,
        by: CallsBy<'_>,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64>;

    // --- conversations (the rest is in HubStore) ------------------------------------------
    async fn get_conversation(&self, client: ClientId, id: ConversationId) -> Result<Conversation>;

    // --- audit ---------------------------------------------------------------------------
    async fn append_audit(&self, entry: &NewAuditEntry) -> Result<AuditEntry>;
    /// Newest first.
    async fn list_audit(&self, client: ClientId, filter: &AuditFilter) -> Result<Vec<AuditEntry>>;
}
