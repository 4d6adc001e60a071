//! The part of the store the realtime hub uses: conversations and their messages, notes, tags,
//! read marks, search, contacts across channels, routing settings and the routing queue, the
//! event log consoles resume from, durable scheduled tasks, and cross-node notifications.
//!
//! Every method that changes a conversation appends exactly one `HubEvent` in the same
//! transaction and returns it (an inbound message, its seq only): a change and its event are
//! committed together or not at all. Payloads: `message_created` / `message_status` carry the
//! message (`message_created` also its conversation after it, as `conversation`),
//! `conversation_updated` the conversation with one more key, `tags` (its tags, sorted),
//! `read_mark` `{user_id, message_id}`.
//! Per client, events commit in `seq` order (PostgreSQL: an advisory lock per client taken as
//! the transaction's last step), so a reader of [`HubStore::events_after`] never skips one.
//! Merging and splitting contacts move conversations between contacts without events: they
//! change no conversation's status, assignee or visibility.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use omnihub_core::events::HubEvent;
use omnihub_core::media::{Attachment, AttachmentKind};
use omnihub_core::model::*;
use omnihub_core::routing::{AutoReplies, Presence, RoutingMode, WeeklyHours};
use omnihub_core::*;
use serde::{Deserialize, Serialize};

use crate::Result;

/// Which conversations a listing shows.
#[derive(Clone, Debug, Default)]
pub struct ConversationFilter {
    /// Only conversations on these channels (`None`: every channel of the client).
    pub channels: Option<Vec<ChannelId>>,
    /// Only this contact's conversations (the contact card's history).
    pub contact: Option<ContactId>,
    /// Only conversations assigned to this user, or to one of these groups, or unassigned —
    /// whichever are set are OR-ed; none set means no restriction.
    pub assignee: Option<UserId>,
    /// An empty list matches nothing (as does an empty `channels`).
    pub groups: Option<Vec<GroupId>>,
    pub unassigned: bool,
    pub status: Option<ConversationStatus>,
    /// Exact (case-sensitive) tag.
    pub tag: Option<String>,
    /// Keyset pagination on `last_message_at` then id, newest first.
    pub before: Option<(DateTime<Utc>, ConversationId)>,
    pub limit: u32,
}

/// A conversation with what a list row needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConversationSummary {
    pub conversation: Conversation,
    pub contact_name: String,
    /// The newest message that is not an internal note.
    pub last_message_text: Option<String>,
    /// Of the newest message that is not an internal note (notes do not move a conversation up).
    pub last_message_at: DateTime<Utc>,
    pub tags: Vec<String>,
    /// Inbound messages after the viewer's read mark.
    pub unread: i64,
}

/// An inbound event from any channel.
#[derive(Clone, Debug)]
pub struct InboundEvent {
    pub client_id: ClientId,
    pub channel_id: ChannelId,
    /// The conversation's id on the provider's side (chat id, thread id, e-mail thread root).
    pub external_conversation_id: String,
    /// The sender's id on the provider's side; keys the contact identity.
    pub external_user_id: String,
    pub contact_name: String,
    /// The provider's event id; a second event with it is a duplicate.
    pub provider_event_id: String,
    pub text: String,
    /// Files the message carries, still at the provider: recorded `pending` with the message
    /// and downloaded after the commit by an [`ATTACHMENT_DOWNLOAD`] task each.
    pub attachments: Vec<NewInboundAttachment>,
}

/// The scheduled task that fetches one pending inbound attachment from its provider; payload
/// `{"client_id", "attachment_id"}`.
pub const ATTACHMENT_DOWNLOAD: &str = "attachment.download";

/// A file a customer sent, as the provider announced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewInboundAttachment {
    pub kind: AttachmentKind,
    pub file_name: String,
    pub mime_type: String,
    /// As announced by the provider (the stored size replaces it).
    pub size: Option<i64>,
    /// What the channel's connector downloads the file by (a file id, a URL, a MIME part).
    pub provider_ref: String,
    /// The bytes are in the media store already (the website widget's uploads): the file is
    /// recorded `ready` and no download is scheduled.
    pub stored: Option<StoredFile>,
}

/// A file an operator uploaded, already in the media store, for a reply not yet sent.
#[derive(Clone, Debug)]
pub struct NewUpload {
    pub client_id: ClientId,
    pub conversation_id: ConversationId,
    pub uploaded_by: Option<UserId>,
    pub kind: AttachmentKind,
    pub file_name: String,
    pub mime_type: String,
    pub size: i64,
    pub sha256: String,
    pub storage_key: String,
}

/// An attachment with what only the server needs: where its bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAttachment {
    pub attachment: Attachment,
    /// The channel of its conversation (whose connector downloads it).
    pub channel_id: ChannelId,
    /// The media store's key, once the bytes are there.
    pub storage_key: Option<String>,
    /// What the provider's connector fetches it by (inbound only).
    pub provider_ref: Option<String>,
}

/// Bytes of a pending attachment, now in the media store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFile {
    pub storage_key: String,
    pub size: i64,
    pub sha256: String,
    /// The provider's type and name at download time, when it announced none before.
    pub mime_type: Option<String>,
    pub file_name: Option<String>,
}

// `New` is large and `Duplicate` small, but every ingest returns one right away and nobody keeps
// them in collections: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ingest {
    /// Committed: the message, the conversation after it, and the seq of the
    /// `message_created` event committed with them (its payload, the message with its
    /// conversation, is read back with [`HubStore::events_after`], as consoles get it).
    New {
        message: Message,
        conversation: Conversation,
        /// True when this message opened a new request (first contact or after resolve).
        new_request: bool,
        /// True when the contact was known before this event (an earlier conversation or
        /// identity, on any channel after a merge); false only for a sender never seen before.
        returning_customer: bool,
        /// True when the conversation was already waiting in the routing queue: it keeps its
        /// place there, and this message gives routing nothing new to decide.
        waiting: bool,
        event_seq: i64,
    },
    /// A provider retry of an event already kept.
    Duplicate(MessageId),
}

/// An outbound reply, an automatic reply or an operator's internal note. All are stored with
/// direction `outbound`. Replies and auto-replies (`kind = auto_reply`, no author) start
/// `pending` and move through [`HubStore::set_delivery`]. A note (`kind = note`) is delivered to
/// nobody: it is `sent` at once and for good, is never in [`HubStore::pending_outbound`], and
/// moves neither `last_message_at` nor the listing's last message.
#[derive(Clone, Debug)]
pub struct NewOutbound {
    pub client_id: ClientId,
    pub conversation_id: ConversationId,
    pub author_id: Option<UserId>,
    pub kind: MessageKind,
    pub text: String,
    /// Same key on the same conversation → the same message, never a second one.
    pub idempotency_key: String,
    /// Uploads of this conversation (ready, not yet sent) the message carries, in order.
    pub attachments: Vec<AttachmentId>,
}

#[derive(Clone, Debug, Default)]
pub struct ConversationPatch {
    pub status: Option<ConversationStatus>,
    /// Set with `status = snoozed`; cleared whenever the status becomes anything else.
    pub snoozed_until: Option<Option<DateTime<Utc>>>,
    /// `Some(None)` unassigns.
    pub assignee_id: Option<Option<UserId>>,
    pub group_id: Option<Option<GroupId>>,
    /// Fails with `Conflict("assignee")` when someone else holds the conversation already:
    /// how two nodes never assign one conversation twice. The holder taking it again succeeds.
    pub only_if_unassigned: bool,
}

/// Routing settings of one group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GroupRouting {
    pub mode: RoutingMode,
    pub hours: WeeklyHours,
    pub auto_replies: AutoReplies,
}

/// One operator in one group, as routing sees them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoutingMember {
    pub user_id: UserId,
    /// 1–100.
    pub competency: u8,
}

/// An operator's own routing state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OperatorState {
    pub user_id: UserId,
    pub presence: Presence,
    /// False when the operator set "no new chats".
    pub accepting_new: bool,
    /// Conversations they can hold at once.
    pub capacity: u32,
    /// Open (new, open, pending) conversations assigned to them now.
    pub active: u32,
    pub last_assigned_at: Option<DateTime<Utc>>,
}

/// Everything the router needs about a client, read in one go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutingSnapshot {
    pub groups: Vec<(Group, GroupRouting, Vec<RoutingMember>)>,
    pub operators: Vec<OperatorState>,
    /// Waiting conversations, first come first.
    pub queue: Vec<QueuedConversation>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueuedConversation {
    pub conversation_id: ConversationId,
    pub group_id: Option<GroupId>,
    pub enqueued_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Pending,
    Running,
    Done,
    Failed,
    /// Cancelled by someone of the client before it ran.
    Cancelled,
    /// Not run: later than its catch-up policy allows (`last_error` says by how much).
    Skipped,
}

/// A durable scheduled task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Task {
    pub id: uuid::Uuid,
    pub client_id: Option<ClientId>,
    /// What to do, e.g. `conversation.unsnooze`; later issues add kinds.
    pub kind: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub due_at: DateTime<Utc>,
    pub status: TaskStatus,
    pub attempts: i32,
    /// Unique: scheduling the same key twice keeps one task.
    pub idempotency_key: String,
    /// The provider's (or the scheduler's) reason of the last failure or skip.
    pub last_error: Option<String>,
    /// The occurrence's own time; `due_at` moves on retries and reschedules, this does not.
    pub occurrence_at: DateTime<Utc>,
    /// A recurring task's cron expression (five fields) and IANA time zone.
    pub recurrence: Option<String>,
    pub time_zone: Option<String>,
    /// A recurring task's series: the id of its first occurrence.
    pub series_id: Option<uuid::Uuid>,
    /// `fire_all_missed`, `fire_once` or `skip_if_older_than:SECONDS`.
    pub catch_up: String,
    /// When it was done, failed for good, cancelled or skipped.
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug)]
pub struct NewTask {
    pub client_id: Option<ClientId>,
    pub kind: String,
    pub payload: serde_json::Value,
    pub due_at: DateTime<Utc>,
    pub idempotency_key: String,
}

/// What a node hears from every node through [`HubStore::listen_events`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Announcement {
    /// Events of `client` up to `seq` are committed.
    Committed { client: ClientId, seq: i64 },
    /// Something not stored (typing, presence), as [`HubStore::announce`] was given it.
    Ephemeral { client: ClientId, payload: String },
}

#[async_trait]
pub trait HubStore: Send + Sync {
    // --- inbound and outbound ------------------------------------------------------------
    /// Records an inbound message: dedupe on `(channel, provider_event_id)`, the contact found
    /// or created through its `(channel, external_user_id)` identity, the conversation found or
    /// created through `(channel, external_conversation_id)`, the status moved by
    /// `omnihub_core::conversation::after_customer_message` (a message after resolve opens a
    /// new request). Concurrent duplicates yield one `New` and the rest `Duplicate`; concurrent
    /// first messages of one sender share one contact and, in one chat, one conversation.
    /// A new conversation starts `new` with request 1; `contact_name` names a new contact only.
    async fn ingest(&self, event: &InboundEvent) -> Result<Ingest>;
    /// [`ingest`](HubStore::ingest) of several events in one transaction (group commit): one
    /// outcome per event, in order. An event that fails (another client's channel) fails
    /// alone; an error of the transaction itself fails the whole batch, and nothing of it is
    /// committed.
    async fn ingest_batch(&self, events: &[InboundEvent]) -> Result<Vec<Result<Ingest>>>;
    /// Commits an outbound reply (status `pending`) or a note (no delivery). Idempotent per
    /// `(conversation, idempotency_key)`: the second call returns the first message and no event.
    /// Its `attachments` must be ready uploads of this conversation not sent with another
    /// message (`NotFound` for unknown ids or another conversation's, `Conflict("attachment")`
    /// for one already sent); they are linked in the same transaction.
    async fn add_outbound(&self, msg: &NewOutbound) -> Result<(Message, Option<HubEvent>)>;
    /// Moves an outbound message's delivery status (never backwards: read > delivered > sent >
    /// pending; failed only from pending or sent, and final); `None` event when nothing changed
    /// (inbound messages and notes never change). `reason` is kept with `failed`. A new
    /// `provider_message_id` is recorded even when the status does not move (a late `sent`
    /// after an early `delivered`); one already used on the channel is
    /// `Conflict("provider_message_id")`.
    async fn set_delivery(
        &self,
        client: ClientId,
        message: MessageId,
        status: DeliveryStatus,
        reason: Option<&str>,
        provider_message_id: Option<&str>,
    ) -> Result<(Message, Option<HubEvent>)>;
    /// Marks the conversation blocked by the customer (`Some` with the provider's words) or no
    /// longer blocked (`None`); an event only when it changed. A customer's new message clears
    /// it too ([`ingest`](HubStore::ingest)).
    async fn set_blocked(
        &self,
        client: ClientId,
        conversation: ConversationId,
        reason: Option<&str>,
    ) -> Result<(Conversation, Option<HubEvent>)>;
    /// When the customer last wrote in the conversation (providers with a reply window, such as
    /// WhatsApp's 24 hours, need it); `None` when they never did.
    async fn last_inbound_at(
        &self,
        client: ClientId,
        conversation: ConversationId,
    ) -> Result<Option<DateTime<Utc>>>;
    /// Finds an outbound message by the provider's id for it (status callbacks).
    async fn message_by_provider_id(
        &self,
        client: ClientId,
        channel: ChannelId,
        provider_message_id: &str,
    ) -> Result<Message>;
    /// Outbound messages still `pending` (a restart resends them with their idempotency key).
    async fn pending_outbound(&self, client: ClientId, limit: u32) -> Result<Vec<Message>>;

    // --- attachments ---------------------------------------------------------------------
    /// Records an operator's upload (`ready`, no message yet) in one of the client's
    /// conversations (`NotFound` otherwise).
    async fn create_upload(&self, upload: &NewUpload) -> Result<Attachment>;
    /// An attachment of this client (`NotFound` for anyone else's), with its storage key.
    async fn get_attachment(&self, client: ClientId, id: AttachmentId) -> Result<StoredAttachment>;
    /// A pending attachment's bytes are stored: it becomes `ready` and its message's
    /// `message_updated` event is appended. `None` (nothing changes) when it is not pending
    /// any more (a second run of the same download).
    async fn attachment_stored(
        &self,
        client: ClientId,
        id: AttachmentId,
        file: &StoredFile,
    ) -> Result<Option<HubEvent>>;
    /// A pending attachment's download gave up: `failed` with the reason, and the message's
    /// `message_updated` event. `None` when it is not pending any more.
    async fn attachment_failed(
        &self,
        client: ClientId,
        id: AttachmentId,
        reason: &str,
    ) -> Result<Option<HubEvent>>;

    // --- conversations -------------------------------------------------------------------
    /// `viewer` must be a user of the client; `unread` is theirs.
    /// `viewer`'s read marks give the unread counts; with no viewer (routing) every inbound
    /// message counts as unread. A viewer outside the client is `NotFound`.
    async fn list_conversations(
        &self,
        client: ClientId,
        viewer: Option<UserId>,
        filter: &ConversationFilter,
    ) -> Result<Vec<ConversationSummary>>;
    /// Also, in the same transaction: resolving closes the open request and reopening continues
    /// it (no new request); assigning a user sets their `last_assigned_at`; assigning a user or
    /// resolving takes the conversation out of the routing queue. Assignee and group must be the
    /// client's (`NotFound`).
    async fn update_conversation(
        &self,
        client: ClientId,
        id: ConversationId,
        patch: &ConversationPatch,
    ) -> Result<(Conversation, HubEvent)>;
    async fn add_tag(
        &self,
        client: ClientId,
        id: ConversationId,
        tag: &str,
    ) -> Result<(Conversation, HubEvent)>;
    async fn remove_tag(
        &self,
        client: ClientId,
        id: ConversationId,
        tag: &str,
    ) -> Result<(Conversation, HubEvent)>;
    async fn conversation_tags(&self, client: ClientId, id: ConversationId) -> Result<Vec<String>>;
    /// Messages of a conversation (notes included), oldest first, after `after` (keyset; a
    /// message of this conversation, else `NotFound`) — at most `limit`.
    async fn conversation_messages(
        &self,
        client: ClientId,
        id: ConversationId,
        after: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<Message>>;
    /// Read marks only move forward (an older mark changes nothing, but still has its event).
    async fn mark_read(
        &self,
        client: ClientId,
        id: ConversationId,
        user: UserId,
        up_to: MessageId,
    ) -> Result<HubEvent>;
    /// Full-text search over message texts of the given channels (all when `None`), newest
    /// first. SQLite FTS5 / PostgreSQL `tsvector`. Messages containing every word of `query`,
    /// case-insensitive in every script, whole words (no stemming); anything in `query` is
    /// text, never query syntax. A query without letters or digits finds nothing.
    async fn search_messages(
        &self,
        client: ClientId,
        channels: Option<&[ChannelId]>,
        query: &str,
        limit: u32,
    ) -> Result<Vec<Message>>;

    // --- contacts across channels --------------------------------------------------------
    async fn get_contact(&self, client: ClientId, id: ContactId) -> Result<Contact>;
    async fn contact_identities(
        &self,
        client: ClientId,
        id: ContactId,
    ) -> Result<Vec<ContactIdentity>>;
    async fn update_contact(
        &self,
        client: ClientId,
        id: ContactId,
        name: Option<&str>,
        fields: Option<&serde_json::Value>,
    ) -> Result<Contact>;
    /// Moves every identity and conversation of `other` onto `keep` and deletes `other`; custom
    /// fields `keep` lacks are taken from `other`. Merging a contact with itself changes nothing.
    async fn merge_contacts(
        &self,
        client: ClientId,
        keep: ContactId,
        other: ContactId,
    ) -> Result<Contact>;
    /// Detaches one identity (and the conversations its sender opened) into a new contact with
    /// the same name and no fields. `NotFound` unless the identity is this contact's.
    async fn split_contact(
        &self,
        client: ClientId,
        id: ContactId,
        identity: &ContactIdentity,
    ) -> Result<Contact>;

    // --- quick replies -------------------------------------------------------------------
    async fn list_quick_replies(&self, client: ClientId) -> Result<Vec<QuickReply>>;
    async fn create_quick_reply(
        &self,
        client: ClientId,
        title: &str,
        text: &str,
    ) -> Result<QuickReply>;
    async fn delete_quick_reply(&self, client: ClientId, id: QuickReplyId) -> Result<()>;

    // --- routing -------------------------------------------------------------------------
    async fn routing_snapshot(&self, client: ClientId) -> Result<RoutingSnapshot>;
    async fn set_group_routing(
        &self,
        client: ClientId,
        group: GroupId,
        routing: &GroupRouting,
    ) -> Result<()>;
    /// `user` must be a member of `group`. Validating `level` is the caller's
    /// (`routing::validate_competency`); the store clamps it to 1–100.
    async fn set_competency(
        &self,
        client: ClientId,
        group: GroupId,
        user: UserId,
        level: u8,
    ) -> Result<()>;
    async fn set_operator(
        &self,
        client: ClientId,
        user: UserId,
        capacity: Option<u32>,
        accepting_new: Option<bool>,
        presence: Option<Presence>,
    ) -> Result<OperatorState>;
    /// Idempotent: a conversation is in the queue at most once, keeping its first place (the
    /// group is the latest one given).
    async fn enqueue(
        &self,
        client: ClientId,
        id: ConversationId,
        group: Option<GroupId>,
    ) -> Result<()>;
    async fn dequeue(&self, client: ClientId, id: ConversationId) -> Result<()>;

    // --- events --------------------------------------------------------------------------
    /// Events of a client after `seq`, oldest first, at most `limit`.
    async fn events_after(&self, client: ClientId, seq: i64, limit: u32) -> Result<Vec<HubEvent>>;
    /// The highest seq ever given (pruning never lowers it).
    async fn last_event_seq(&self) -> Result<i64>;
    /// The highest seq of a client's committed events, `None` when it has none (left). An
    /// event of the client committed later has a higher seq: each client's events take their
    /// seq and commit in one order.
    async fn last_client_event_seq(&self, client: ClientId) -> Result<Option<i64>>;
    /// Deletes the oldest events created before `older_than`, at most about `limit` of them
    /// (call again while it returns `limit` or more), and remembers how far the log was pruned.
    async fn prune_events(&self, older_than: DateTime<Utc>, limit: u32) -> Result<u64>;
    /// The seq up to which events were pruned (0 when never): a resume cursor below it may
    /// have missed events.
    async fn events_pruned_through(&self) -> Result<i64>;
    /// Cross-node announcements: events committed by any node, and what any node
    /// [`announce`](Self::announce)s. PostgreSQL `LISTEN/NOTIFY`; `None` on SQLite, where one
    /// process owns the file. An `Err` item the stream goes on after means the listening
    /// connection was lost and re-established: notifications may have been missed, so catch up
    /// with `events_after`. The stream ends after an error it cannot recover from.
    async fn listen_events(&self) -> Result<Option<BoxStream<'static, Result<Announcement>>>>;
    /// Tells every node's listener (this one's too) something that is not stored, such as
    /// typing or presence, as `payload` (small: PostgreSQL's `NOTIFY` takes under 8000 bytes).
    /// Nothing happens on SQLite.
    async fn announce(&self, client: ClientId, payload: &str) -> Result<()>;

    // --- scheduled tasks -----------------------------------------------------------------
    /// Keeps one task per idempotency key: a second call returns the first.
    async fn schedule_task(&self, task: &NewTask) -> Result<Task>;
    /// Claims up to `limit` due tasks (earliest first, `attempts` counted) for `node` until
    /// `lease_until`; two nodes never claim the
    /// same task (PostgreSQL `FOR UPDATE SKIP LOCKED`; SQLite's single writer). Expired leases
    /// are claimable again, so a crashed node's tasks are not lost.
    async fn claim_due_tasks(
        &self,
        node: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Task>>;
    /// Only by the node holding the task (else `NotFound`).
    async fn complete_task(&self, id: uuid::Uuid, node: &str) -> Result<()>;
    /// Completes every task of `ids` that `node` holds, in as few statements as the engine
    /// allows; answers how many it completed (one no longer held is left alone).
    async fn complete_tasks(&self, ids: &[uuid::Uuid], node: &str) -> Result<u64>;
    /// Records a failure; with `retry_at` the task becomes pending again then, without it the
    /// task is `failed` for good. Only by the node holding the task (else `NotFound`).
    async fn fail_task(
        &self,
        id: uuid::Uuid,
        node: &str,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<()>;
    /// When the scheduler should look next: the earliest pending due time or running lease end.
    async fn next_task_due(&self) -> Result<Option<DateTime<Utc>>>;
}
