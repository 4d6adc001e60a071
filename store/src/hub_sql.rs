//! The one SQL implementation of [`HubStore`], compiled once inside each backend module against
//! that backend's `Db`, exactly like `sql.rs` (whose helpers it shares).
//!
//! Engine differences are items of the backend module: `for_update!()` / `skip_locked!()` (row
//! locks on PostgreSQL, nothing on SQLite's single writer), the full-text search fragments,
//! `lock_events` / `notify_event` around the event insert, and how an ingest round's lookup of
//! its conversations is written and read (`conversations_waiting!()` and its function).
//!
//! Every method that changes a conversation runs in one write transaction whose last statements
//! append its event (`append_event`), so a change and its event commit together.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use omnihub_core::conversation::after_customer_message;
use omnihub_core::events::{EventKind, HubEvent, PREVIOUS_SCOPE};
use omnihub_core::media::{Attachment, AttachmentKind, AttachmentState};
use omnihub_core::model::*;
use omnihub_core::routing::{AutoReplies, Presence, WeeklyHours};
use omnihub_core::*;
use sqlx::types::Json;
use sqlx::{QueryBuilder, Row};
use uuid::Uuid;

use super::sql::{
    affected, channel_in_client, constraint, found, group_in_client, group_row, user_in_client,
};
use super::{
    BEGIN_SNAPSHOT, Backend, Db, SEARCH_FROM, SEARCH_MATCH, announce, conversations_waiting,
    insert_events, listen_events, lock_events, notify_event, payload_arg, search_query,
};
use crate::codec::{self, Rfc3339, ms, now, opt_ts, ts};
use crate::hub::*;
use crate::{Result, StoreError};

type DbRow = <Db as sqlx::Database>::Row;
type DbConn = <Db as sqlx::Database>::Connection;

/// An operator's routing state before they ever set it.
const DEFAULT_CAPACITY: i64 = 5;
const DEFAULT_ACCEPTING_NEW: bool = true;
const DEFAULT_PRESENCE: Presence = Presence::Offline;
/// A group member's competency before it is set.
pub(super) const DEFAULT_COMPETENCY: u8 = 50;

// Column lists, shared by every query returning the same record.
/// SQLite's `conversations_waiting!()` writes them in this order too.
macro_rules! conversation_cols {
    () => {
        "id, client_id, channel_id, contact_id, external_id, status, snoozed_until, assignee_id, \
         group_id, request_no, last_message_at, created_at, blocked_at, blocked_reason"
    };
}
/// Whether the `conversations` row at hand waits in the routing queue.
macro_rules! in_routing_queue {
    () => {
        "EXISTS (SELECT 1 FROM routing_queue q WHERE q.conversation_id = conversations.id)"
    };
}
macro_rules! conversation_cols_c {
    () => {
        "c.id, c.client_id, c.channel_id, c.contact_id, c.external_id, c.status, c.snoozed_until, \
         c.assignee_id, c.group_id, c.request_no, c.last_message_at, c.created_at, \
         c.blocked_at, c.blocked_reason"
    };
}
macro_rules! message_cols {
    () => {
        "id, client_id, conversation_id, direction, kind, provider_event_id, author_id, text, \
         status, failure_reason, idempotency_key, created_at"
    };
}
macro_rules! message_cols_m {
    () => {
        "m.id, m.client_id, m.conversation_id, m.direction, m.kind, m.provider_event_id, \
         m.author_id, m.text, m.status, m.failure_reason, m.idempotency_key, m.created_at"
    };
}
macro_rules! contact_cols {
    () => {
        "id, client_id, name, fields, created_at"
    };
}
macro_rules! event_cols {
    () => {
        "seq, client_id, conversation_id, channel_id, assignee_id, group_id, kind, payload, \
         created_at"
    };
}
macro_rules! task_cols {
    () => {
        "id, client_id, kind, payload, due_at, status, attempts, idempotency_key, last_error, \
         occurrence_at, recurrence, time_zone, series_id, catch_up, finished_at"
    };
}
macro_rules! quick_reply_cols {
    () => {
        "id, client_id, title, text, created_at"
    };
}
macro_rules! attachment_cols {
    () => {
        "a.id, a.client_id, a.conversation_id, a.message_id, a.kind, a.file_name, a.mime_type, \
         a.size, a.sha256, a.state, a.failure_reason, a.created_at, a.storage_key, \
         a.provider_ref, c.channel_id"
    };
}
/// The message rank a delivery status change compares against (see `codec::delivery_rank`).
macro_rules! delivery_rank {
    () => {
        "(CASE status WHEN 'received' THEN 0 WHEN 'pending' THEN 1 WHEN 'sent' THEN 2 \
         WHEN 'delivered' THEN 3 WHEN 'read' THEN 4 ELSE 99 END)"
    };
}
/// Statuses that count towards an operator's load.
macro_rules! active_statuses {
    () => {
        "('new', 'open', 'pending')"
    };
}

// --- rows to records ----------------------------------------------------------------------

pub(super) fn conversation_row(r: &DbRow) -> Result<Conversation> {
    Ok(Conversation {
        id: ConversationId(r.try_get("id")?),
        client_id: ClientId(r.try_get("client_id")?),
        channel_id: ChannelId(r.try_get("channel_id")?),
        contact_id: ContactId(r.try_get("contact_id")?),
        external_id: r.try_get("external_id")?,
        status: codec::conversation_status(r.try_get::<&str, _>("status")?)?,
        snoozed_until: opt_ts(r.try_get("snoozed_until")?)?,
        assignee_id: r.try_get::<Option<Uuid>, _>("assignee_id")?.map(UserId),
        group_id: r.try_get::<Option<Uuid>, _>("group_id")?.map(GroupId),
        request_no: r.try_get("request_no")?,
        last_message_at: ts(r.try_get("last_message_at")?)?,
        created_at: ts(r.try_get("created_at")?)?,
        blocked_at: opt_ts(r.try_get("blocked_at")?)?,
        blocked_reason: r.try_get("blocked_reason")?,
    })
}

fn message_row(r: &DbRow) -> Result<Message> {
    Ok(Message {
        id: MessageId(r.try_get("id")?),
        client_id: ClientId(r.try_get("client_id")?),
        conversation_id: ConversationId(r.try_get("conversation_id")?),
        direction: codec::direction(r.try_get::<&str, _>("direction")?)?,
        kind: codec::message_kind(r.try_get::<&str, _>("kind")?)?,
        provider_event_id: r.try_get("provider_event_id")?,
        author_id: r.try_get::<Option<Uuid>, _>("author_id")?.map(UserId),
        text: r.try_get("text")?,
        status: codec::delivery(r.try_get::<&str, _>("status")?)?,
        failure_reason: r.try_get("failure_reason")?,
        idempotency_key: r.try_get("idempotency_key")?,
        created_at: ts(r.try_get("created_at")?)?,
        // Filled by `with_attachments` where a message leaves the store.
        attachments: Vec::new(),
    })
}

fn attachment_row(r: &DbRow) -> Result<StoredAttachment> {
    let kind: &str = r.try_get("kind")?;
    let state: &str = r.try_get("state")?;
    Ok(StoredAttachment {
        attachment: Attachment {
            id: AttachmentId(r.try_get("id")?),
            client_id: ClientId(r.try_get("client_id")?),
            conversation_id: ConversationId(r.try_get("conversation_id")?),
            message_id: r.try_get::<Option<Uuid>, _>("message_id")?.map(MessageId),
            kind: AttachmentKind::parse(kind)
                .ok_or_else(|| StoreError::Corrupt(format!("attachment kind {kind:?}")))?,
            file_name: r.try_get("file_name")?,
            mime_type: r.try_get("mime_type")?,
            size: r.try_get("size")?,
            sha256: r.try_get("sha256")?,
            state: AttachmentState::parse(state)
                .ok_or_else(|| StoreError::Corrupt(format!("attachment state {state:?}")))?,
            failure_reason: r.try_get("failure_reason")?,
            created_at: ts(r.try_get("created_at")?)?,
        },
        channel_id: ChannelId(r.try_get("channel_id")?),
        storage_key: r.try_get("storage_key")?,
        provider_ref: r.try_get("provider_ref")?,
    })
}

/// Fills in the attachments of these messages (one query for all of them).
async fn with_attachments(conn: &mut DbConn, messages: &mut [Message]) -> Result<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let mut q = QueryBuilder::<Db>::new(concat!(
        "SELECT ",
        attachment_cols!(),
        " FROM attachments a JOIN conversations c ON c.id = a.conversation_id WHERE "
    ));
    push_in(&mut q, "a.message_id", messages.iter().map(|m| m.id.0));
    q.push(" ORDER BY a.message_id, a.position, a.id");
    let rows = q.build().fetch_all(&mut *conn).await?;
    let mut by_message: HashMap<MessageId, Vec<Attachment>> = HashMap::new();
    for row in &rows {
        let stored = attachment_row(row)?;
        if let Some(message) = stored.attachment.message_id {
            by_message
                .entry(message)
                .or_default()
                .push(stored.attachment);
        }
    }
    for message in messages {
        message.attachments = by_message.remove(&message.id).unwrap_or_default();
    }
    Ok(())
}

async fn load_attachment(
    conn: &mut DbConn,
    client: ClientId,
    id: AttachmentId,
) -> Result<StoredAttachment> {
    let row = sqlx::query::<Db>(concat!(
        "SELECT ",
        attachment_cols!(),
        " FROM attachments a JOIN conversations c ON c.id = a.conversation_id \
         WHERE a.id = $1 AND a.client_id = $2"
    ))
    .bind(id.0)
    .bind(client.0)
    .fetch_optional(&mut *conn)
    .await?;
    attachment_row(&found(row)?)
}

/// Records an inbound message's files: `pending`, each with the task that downloads it, or
/// `ready` when their bytes are stored already.
async fn insert_inbound_attachments(
    conn: &mut DbConn,
    message: &Message,
    files: &[NewInboundAttachment],
) -> Result<Vec<Attachment>> {
    let mut attachments = Vec::with_capacity(files.len());
    for (position, file) in files.iter().enumerate() {
        let attachment = Attachment {
            id: AttachmentId::new(),
            client_id: message.client_id,
            conversation_id: message.conversation_id,
            message_id: Some(message.id),
            kind: file.kind,
            file_name: file.file_name.clone(),
            mime_type: file.mime_type.clone(),
            size: file.stored.as_ref().map(|s| s.size).or(file.size),
            sha256: file.stored.as_ref().map(|s| s.sha256.clone()),
            state: if file.stored.is_some() {
                AttachmentState::Ready
            } else {
                AttachmentState::Pending
            },
            failure_reason: None,
            created_at: message.created_at,
        };
        sqlx::query::<Db>(
            "INSERT INTO attachments (id, client_id, conversation_id, message_id, position, kind, \
             file_name, mime_type, size, sha256, storage_key, state, provider_ref, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(attachment.id.0)
        .bind(attachment.client_id.0)
        .bind(attachment.conversation_id.0)
        .bind(message.id.0)
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .bind(attachment.kind.as_str())
        .bind(&attachment.file_name)
        .bind(&attachment.mime_type)
        .bind(attachment.size)
        .bind(&attachment.sha256)
        .bind(file.stored.as_ref().map(|s| s.storage_key.clone()))
        .bind(attachment.state.as_str())
        .bind(file.stored.is_none().then_some(&file.provider_ref))
        .bind(ms(attachment.created_at))
        .execute(&mut *conn)
        .await?;
        if file.stored.is_some() {
            attachments.push(attachment);
            continue;
        }
        sqlx::query::<Db>(
            "INSERT INTO tasks (id, client_id, kind, payload, due_at, status, attempts, \
             idempotency_key, created_at) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $5)",
        )
        .bind(Uuid::now_v7())
        .bind(attachment.client_id.0)
        .bind(ATTACHMENT_DOWNLOAD)
        .bind(Json(serde_json::json!({
            "client_id": attachment.client_id,
            "attachment_id": attachment.id,
        })))
        .bind(ms(attachment.created_at))
        .bind(format!("{ATTACHMENT_DOWNLOAD}:{}", attachment.id))
        .execute(&mut *conn)
        .await?;
        attachments.push(attachment);
    }
    Ok(attachments)
}

/// Moves a pending attachment to `ready` or `failed` and appends its message's
/// `message_updated` event; `None` when it was not pending.
async fn settle_attachment(
    tx: &mut DbConn,
    client: ClientId,
    id: AttachmentId,
    update: &mut QueryBuilder<Db>,
) -> Result<Option<HubEvent>> {
    let current = load_attachment(&mut *tx, client, id).await?;
    if current.attachment.state != AttachmentState::Pending {
        return Ok(None);
    }
    update
        .push(" WHERE state = 'pending' AND id = ")
        .push_bind(id.0)
        .push(" AND client_id = ")
        .push_bind(client.0);
    if update.build().execute(&mut *tx).await?.rows_affected() == 0 {
        return Ok(None);
    }
    let Some(message_id) = current.attachment.message_id else {
        return Ok(None);
    };
    let mut message = load_message(&mut *tx, client, message_id).await?;
    with_attachments(&mut *tx, std::slice::from_mut(&mut message)).await?;
    let conversation = load_conversation(&mut *tx, client, message.conversation_id).await?;
    let event = message_event(&mut *tx, &conversation, &message, EventKind::MessageUpdated).await?;
    Ok(Some(event))
}

fn contact_row(r: &DbRow) -> Result<Contact> {
    Ok(Contact {
        id: ContactId(r.try_get("id")?),
        client_id: ClientId(r.try_get("client_id")?),
        name: r.try_get("name")?,
        fields: r.try_get::<Json<serde_json::Value>, _>("fields")?.0,
        created_at: ts(r.try_get("created_at")?)?,
    })
}

fn event_row(r: &DbRow) -> Result<HubEvent> {
    let mut event = HubEvent {
        seq: r.try_get("seq")?,
        client_id: ClientId(r.try_get("client_id")?),
        conversation_id: r
            .try_get::<Option<Uuid>, _>("conversation_id")?
            .map(ConversationId),
        channel_id: r.try_get::<Option<Uuid>, _>("channel_id")?.map(ChannelId),
        assignee_id: r.try_get::<Option<Uuid>, _>("assignee_id")?.map(UserId),
        group_id: r.try_get::<Option<Uuid>, _>("group_id")?.map(GroupId),
        kind: codec::event_kind(r.try_get::<&str, _>("kind")?)?,
        payload: r.try_get::<Json<serde_json::Value>, _>("payload")?.0,
        created_at: ts(r.try_get("created_at")?)?,
    };
    restore_payload(&mut event)?;
    Ok(event)
}

pub(super) fn task_row(r: &DbRow) -> Result<Task> {
    let attempts: i64 = r.try_get("attempts")?;
    Ok(Task {
        id: r.try_get("id")?,
        client_id: r.try_get::<Option<Uuid>, _>("client_id")?.map(ClientId),
        kind: r.try_get("kind")?,
        payload: r.try_get::<Json<serde_json::Value>, _>("payload")?.0,
        due_at: ts(r.try_get("due_at")?)?,
        status: codec::task_status(r.try_get::<&str, _>("status")?)?,
        attempts: i32::try_from(attempts).unwrap_or(i32::MAX),
        idempotency_key: r.try_get("idempotency_key")?,
        last_error: r.try_get("last_error")?,
        occurrence_at: ts(r
            .try_get::<Option<i64>, _>("occurrence_at")?
            .unwrap_or(r.try_get("due_at")?))?,
        recurrence: r.try_get("recurrence")?,
        time_zone: r.try_get("time_zone")?,
        series_id: r.try_get("series_id")?,
        catch_up: r.try_get("catch_up")?,
        finished_at: opt_ts(r.try_get("finished_at")?)?,
    })
}

fn quick_reply_row(r: &DbRow) -> Result<QuickReply> {
    Ok(QuickReply {
        id: QuickReplyId(r.try_get("id")?),
        client_id: ClientId(r.try_get("client_id")?),
        title: r.try_get("title")?,
        text: r.try_get("text")?,
        created_at: ts(r.try_get("created_at")?)?,
    })
}

fn operator_row(r: &DbRow) -> Result<OperatorState> {
    let capacity: Option<i64> = r.try_get("capacity")?;
    let active: i64 = r.try_get("active")?;
    Ok(OperatorState {
        user_id: UserId(r.try_get("id")?),
        presence: match r.try_get::<Option<&str>, _>("presence")? {
            Some(p) => codec::presence(p)?,
            None => DEFAULT_PRESENCE,
        },
        accepting_new: r
            .try_get::<Option<bool>, _>("accepting_new")?
            .unwrap_or(DEFAULT_ACCEPTING_NEW),
        capacity: u32::try_from(capacity.unwrap_or(DEFAULT_CAPACITY)).unwrap_or(u32::MAX),
        active: u32::try_from(active).unwrap_or(u32::MAX),
        last_assigned_at: opt_ts(r.try_get("last_assigned_at")?)?,
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(codec::bad_payload)
}

fn latest(a: DateTime<Utc>, b: DateTime<Utc>) -> DateTime<Utc> {
    a.max(b)
}

// --- shared steps -------------------------------------------------------------------------

/// A conversation of this client, for `Store::get_conversation` too.
pub(super) async fn load_conversation(
    conn: &mut DbConn,
    client: ClientId,
    id: ConversationId,
) -> Result<Conversation> {
    let row = sqlx::query::<Db>(concat!(
        "SELECT ",
        conversation_cols!(),
        " FROM conversations WHERE id = $1 AND client_id = $2"
    ))
    .bind(id.0)
    .bind(client.0)
    .fetch_optional(&mut *conn)
    .await?;
    conversation_row(&found(row)?)
}

/// Whether a conversation waits in the routing queue.
async fn waits_in_queue(conn: &mut DbConn, id: ConversationId) -> Result<bool> {
    let row = sqlx::query::<Db>("SELECT 1 FROM routing_queue WHERE conversation_id = $1")
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.is_some())
}

/// What one inbound event did inside the caller's write transaction.
// Returned once per event and consumed at once, like `Ingest` itself.
#[allow(clippy::large_enum_variant)]
enum Ingested {
    Done(Ingest),
    /// A concurrent twin committed first (PostgreSQL waited for it): the caller must undo
    /// whatever this attempt wrote, and answer a duplicate of the winner.
    LostRace(MessageId),
}

/// One inbound event (see [`HubStore::ingest`]), inside the caller's write transaction.
async fn ingest_in(tx: &mut DbConn, ev: &InboundEvent) -> Result<Ingested> {
    // First, so another client's channel cannot even learn of a duplicate.
    channel_in_client(&mut *tx, ev.client_id, ev.channel_id).await?;
    if let Some(id) = message_by_event(&mut *tx, ev.channel_id, &ev.provider_event_id).await? {
        return Ok(Ingested::Done(Ingest::Duplicate(id)));
    }
    let at = now();
    let (conversation, created, returning_customer) =
        match find_conversation(&mut *tx, ev.channel_id, &ev.external_conversation_id).await? {
            Some(c) => (c, false, true),
            None => {
                let (contact, known) = contact_for(&mut *tx, ev, at).await?;
                match create_conversation(&mut *tx, ev, contact, at).await? {
                    Some(c) => (c, true, known),
                    None => {
                        let c = find_conversation(
                            &mut *tx,
                            ev.channel_id,
                            &ev.external_conversation_id,
                        )
                        .await?;
                        (found(c)?, false, true)
                    }
                }
            }
        };

    let message = Message {
        id: MessageId::new(),
        client_id: ev.client_id,
        conversation_id: conversation.id,
        direction: Direction::Inbound,
        kind: MessageKind::Message,
        provider_event_id: Some(ev.provider_event_id.clone()),
        author_id: None,
        text: ev.text.clone(),
        status: DeliveryStatus::Received,
        failure_reason: None,
        idempotency_key: None,
        created_at: at,
        attachments: Vec::new(),
    };
    if !insert_message(&mut *tx, &message, ev.channel_id).await? {
        // A concurrent retry committed first (PostgreSQL waited for it); drop whatever
        // this attempt created.
        let id = message_by_event(&mut *tx, ev.channel_id, &ev.provider_event_id).await?;
        return Ok(Ingested::LostRace(found(id)?));
    }
    let mut message = message;
    message.attachments = insert_inbound_attachments(&mut *tx, &message, &ev.attachments).await?;

    let waiting = !created && waits_in_queue(&mut *tx, conversation.id).await?;
    let (conversation, new_request) = if created {
        (conversation, true)
    } else {
        let current = lock_conversation(&mut *tx, ev.client_id, conversation.id).await?;
        let (status, new_request) = after_customer_message(current.status);
        let row = sqlx::query::<Db>(concat!(
            "UPDATE conversations SET status = $3, \
             snoozed_until = CASE WHEN $3 = 'snoozed' THEN snoozed_until ELSE NULL END, \
             request_no = request_no + $4, last_message_at = $5, \
             blocked_at = NULL, blocked_reason = NULL \
             WHERE id = $1 AND client_id = $2 RETURNING ",
            conversation_cols!()
        ))
        .bind(current.id.0)
        .bind(current.client_id.0)
        .bind(status.as_str())
        .bind(i64::from(new_request))
        .bind(ms(latest(current.last_message_at, at)))
        .fetch_one(&mut *tx)
        .await?;
        let after = conversation_row(&row)?;
        if new_request {
            close_requests(&mut *tx, after.id, at).await?;
            open_request(&mut *tx, &after, after.request_no, at).await?;
        }
        (after, new_request)
    };
    let payload = MessageCreated {
        message: &message,
        conversation: &conversation,
    };
    let (event_seq, _) = insert_event(
        &mut *tx,
        conversation.client_id,
        Some(&conversation),
        EventKind::MessageCreated,
        &payload,
    )
    .await?;
    Ok(Ingested::Done(Ingest::New {
        message,
        conversation,
        new_request,
        returning_customer,
        waiting,
        event_seq,
    }))
}

/// Events of a batch handled per round of multi-row statements at most: a whole group commit
/// of the hub (512 events) in one round. Each of its statements then binds at most
/// 7 × 512 = 3,584 parameters (the inserts 7 a row, the update of the conversations 7 a
/// conversation), well under SQLite's 32,766 and PostgreSQL's 65,535.
const INGEST_ROWS: usize = 512;

/// One event of a batch that will be committed as a new message.
struct Fresh {
    message: Message,
    /// The conversation as it is right after this message.
    conversation: Conversation,
    new_request: bool,
    returning_customer: bool,
    /// Whether this message moves an existing conversation (false for the first message of a
    /// conversation it created).
    moves: bool,
    /// Whether the conversation was waiting in the routing queue before this message.
    waiting: bool,
}

/// What a batch decided for one event.
// One per event of a round, consumed at the round's end, like `Ingest` itself.
#[allow(clippy::large_enum_variant)]
enum Outcome {
    Settled(Result<Ingest>),
    /// The n-th entry of the round's fresh events.
    Fresh(usize),
}

/// Several inbound events (see [`HubStore::ingest_batch`]) inside the caller's write
/// transaction, with the same outcome as [`ingest_in`] for each in order, but a few statements
/// per round instead of several per event: the channel check per channel, one lookup of the
/// events already kept and one of the conversations (locked), one insert of all messages, one
/// update per conversation, one insert of all events. `None` when a concurrent transaction
/// (another node, PostgreSQL) committed one of these events first: the caller rolls back and
/// takes the events one by one, which settles each race exactly.
async fn ingest_all(
    tx: &mut DbConn,
    events: &[InboundEvent],
) -> Result<Option<Vec<Result<Ingest>>>> {
    let mut outcomes = Vec::with_capacity(events.len());
    for round in events.chunks(INGEST_ROWS) {
        match ingest_round(&mut *tx, round).await? {
            Some(done) => outcomes.extend(done),
            None => return Ok(None),
        }
    }
    Ok(Some(outcomes))
}

async fn ingest_round(
    tx: &mut DbConn,
    events: &[InboundEvent],
) -> Result<Option<Vec<Result<Ingest>>>> {
    // First, so another client's channel cannot even learn of a duplicate.
    let mut channels: HashMap<(ClientId, ChannelId), bool> = HashMap::new();
    for ev in events {
        if let std::collections::hash_map::Entry::Vacant(slot) =
            channels.entry((ev.client_id, ev.channel_id))
        {
            let ok = match channel_in_client(&mut *tx, ev.client_id, ev.channel_id).await {
                Ok(()) => true,
                Err(StoreError::NotFound) => false,
                Err(err) => return Err(err),
            };
            slot.insert(ok);
        }
    }
    let accepted = |ev: &InboundEvent| channels.get(&(ev.client_id, ev.channel_id)) == Some(&true);

    // The events kept before, and the conversations they go to, per channel.
    let mut per_channel: HashMap<ChannelId, (Vec<&str>, Vec<&str>)> = HashMap::new();
    for ev in events.iter().filter(|ev| accepted(ev)) {
        let (ids, chats) = per_channel.entry(ev.channel_id).or_default();
        ids.push(&ev.provider_event_id);
        chats.push(&ev.external_conversation_id);
    }
    let mut kept: HashMap<(ChannelId, String), MessageId> = HashMap::new();
    let mut chats: HashMap<(ChannelId, String), Conversation> = HashMap::new();
    let mut waiting: HashSet<ConversationId> = HashSet::new();
    for (channel, (ids, externals)) in &mut per_channel {
        ids.sort_unstable();
        ids.dedup();
        externals.sort_unstable();
        externals.dedup();
        let mut q = QueryBuilder::<Db>::new(
            "SELECT provider_event_id, id FROM messages WHERE channel_id = ",
        );
        q.push_bind(channel.0).push(" AND ");
        push_in(&mut q, "provider_event_id", ids.iter().copied());
        for row in q.build().fetch_all(&mut *tx).await? {
            kept.insert(
                (*channel, row.try_get("provider_event_id")?),
                MessageId(row.try_get("id")?),
            );
        }
        // Locked until commit (PostgreSQL), like `lock_conversation`: what is decided from
        // them still holds then.
        let mut q = QueryBuilder::<Db>::new(conversations_waiting!());
        q.push_bind(channel.0).push(" AND ");
        push_in(&mut q, "external_id", externals.iter().copied());
        q.push(for_update!());
        for (c, waits) in conversations_waiting(&mut *tx, q).await? {
            if waits {
                waiting.insert(c.id);
            }
            chats.insert((c.channel_id, c.external_id.clone()), c);
        }
    }

    // Each event in order, in memory, with the rare writes that must come first (a new
    // contact and conversation, a new request).
    let mut plan = Vec::with_capacity(events.len());
    let mut fresh: Vec<Fresh> = Vec::new();
    for ev in events {
        if !accepted(ev) {
            plan.push(Outcome::Settled(Err(StoreError::NotFound)));
            continue;
        }
        let key = (ev.channel_id, ev.provider_event_id.clone());
        if let Some(id) = kept.get(&key) {
            plan.push(Outcome::Settled(Ok(Ingest::Duplicate(*id))));
            continue;
        }
        let at = now();
        let chat = (ev.channel_id, ev.external_conversation_id.clone());
        let (conversation, new_request, returning_customer, moves) = match chats.get(&chat) {
            Some(current) => {
                let (status, new_request) = after_customer_message(current.status);
                let mut after = current.clone();
                after.status = status;
                if status != ConversationStatus::Snoozed {
                    after.snoozed_until = None;
                }
                after.request_no += i64::from(new_request);
                after.last_message_at = latest(current.last_message_at, at);
                after.blocked_at = None;
                after.blocked_reason = None;
                if new_request {
                    close_requests(&mut *tx, after.id, at).await?;
                    open_request(&mut *tx, &after, after.request_no, at).await?;
                }
                (after, new_request, true, true)
            }
            None => {
                let (contact, known) = contact_for(&mut *tx, ev, at).await?;
                match create_conversation(&mut *tx, ev, contact, at).await? {
                    Some(c) => (c, true, known, false),
                    // Created meanwhile by another node: its first message is not ours.
                    None => return Ok(None),
                }
            }
        };
        chats.insert(chat, conversation.clone());
        // The messages insert below writes the fields every one shares as literals.
        let message = Message {
            id: MessageId::new(),
            client_id: ev.client_id,
            conversation_id: conversation.id,
            direction: Direction::Inbound,
            kind: MessageKind::Message,
            provider_event_id: Some(ev.provider_event_id.clone()),
            author_id: None,
            text: ev.text.clone(),
            status: DeliveryStatus::Received,
            failure_reason: None,
            idempotency_key: None,
            created_at: at,
            attachments: Vec::new(),
        };
        // A retry inside the batch is a duplicate of the first.
        kept.insert(key, message.id);
        plan.push(Outcome::Fresh(fresh.len()));
        fresh.push(Fresh {
            message,
            waiting: moves && waiting.contains(&conversation.id),
            conversation,
            new_request,
            returning_customer,
            moves,
        });
    }
    if fresh.is_empty() {
        return Ok(Some(plan.into_iter().map(settled).collect()));
    }

    // The messages, in one statement, with what every one of them shares written once into it
    // (as the plan above made them). A message missing from the answer lost its key to a
    // concurrent twin (PostgreSQL waited for it).
    let mut q = QueryBuilder::<Db>::new(
        "INSERT INTO messages (id, client_id, conversation_id, provider_event_id, text, \
         created_at, channel_id, direction, kind, status) ",
    );
    let shared = [
        codec::direction_str(Direction::Inbound),
        codec::message_kind_str(MessageKind::Message),
        codec::delivery_str(DeliveryStatus::Received),
    ];
    push_rows(&mut q, 7, &shared, fresh.iter(), |mut row, f| {
        let m = f.map(|f| &f.message);
        row.push_bind(m.map(|m| m.id.0))
            .push_bind(m.map(|m| m.client_id.0))
            .push_bind(m.map(|m| m.conversation_id.0))
            .push_bind(m.and_then(|m| m.provider_event_id.as_deref()))
            .push_bind(m.map(|m| m.text.as_str()))
            .push_bind(m.map(|m| ms(m.created_at)))
            .push_bind(f.map(|f| f.conversation.channel_id.0));
    });
    q.push(" ON CONFLICT DO NOTHING");
    let inserted = q
        .build()
        .execute(&mut *tx)
        .await
        .map_err(constraint("message"))?
        .rows_affected();
    if inserted != fresh.len() as u64 {
        return Ok(None);
    }
    for (outcome, ev) in plan.iter().zip(events) {
        if let Outcome::Fresh(n) = outcome
            && !ev.attachments.is_empty()
        {
            let f = &mut fresh[*n];
            f.message.attachments =
                insert_inbound_attachments(&mut *tx, &f.message, &ev.attachments).await?;
        }
    }

    // Every conversation moved by the round, in one statement, to where its last message
    // left it (`CASE id WHEN … THEN …` is a multi-row update both engines read alike).
    let mut last: HashMap<ConversationId, usize> = HashMap::new();
    let mut new_requests: HashMap<ConversationId, i64> = HashMap::new();
    for (n, f) in fresh.iter().enumerate() {
        if f.moves {
            last.insert(f.conversation.id, n);
            *new_requests.entry(f.conversation.id).or_default() += i64::from(f.new_request);
        }
    }
    if !last.is_empty() {
        let mut moved: Vec<&Conversation> =
            last.values().map(|n| &fresh[*n].conversation).collect();
        moved.sort_unstable_by_key(|c| c.id);
        let count = moved.len() as u64;
        // A conversation named twice takes its first `WHEN`, and the same values again.
        if let Some(&tail) = moved.last() {
            moved.resize(padded_rows(moved.len()), tail);
        }
        let mut q = QueryBuilder::<Db>::new("UPDATE conversations SET status = CASE id");
        for c in &moved {
            q.push(" WHEN ")
                .push_bind(c.id.0)
                .push(" THEN ")
                .push_bind(c.status.as_str());
        }
        // A customer's message never leaves a conversation snoozed (`after_customer_message`).
        q.push(" END, snoozed_until = NULL, request_no = request_no + CASE id");
        for c in &moved {
            q.push(" WHEN ")
                .push_bind(c.id.0)
                .push(" THEN ")
                .push_bind(new_requests.get(&c.id).copied().unwrap_or(0));
        }
        q.push(" END, last_message_at = CASE id");
        for c in &moved {
            q.push(" WHEN ")
                .push_bind(c.id.0)
                .push(" THEN ")
                .push_bind(ms(c.last_message_at));
        }
        q.push(" END, blocked_at = NULL, blocked_reason = NULL WHERE ");
        push_in(&mut q, "id", moved.iter().map(|c| c.id.0));
        // The rows were read in this transaction (locked on PostgreSQL), so they are now what
        // the steps above worked out; a row gone meanwhile is the one thing left to notice.
        let updated = q.build().execute(&mut *tx).await?.rows_affected();
        if updated != count {
            return Ok(None);
        }
    }
    // The events, in one statement, after the same lock and before the same notification as
    // `append_event`'s.
    let mut clients: Vec<ClientId> = fresh.iter().map(|f| f.message.client_id).collect();
    clients.sort_unstable();
    clients.dedup();
    for client in &clients {
        lock_events(&mut *tx, *client).await?;
    }
    // Each payload is written straight to its text, never built as a tree.
    let mut q = QueryBuilder::<Db>::new(
        "INSERT INTO events (client_id, conversation_id, channel_id, assignee_id, group_id, \
         payload, created_at, kind) ",
    );
    let payloads = fresh
        .iter()
        .map(|f| {
            payload_arg(MessageCreated {
                message: &f.message,
                conversation: &f.conversation,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    push_rows(
        &mut q,
        7,
        &[EventKind::MessageCreated.as_str()],
        fresh.iter().zip(payloads),
        |mut row, event| {
            let (c, payload) = event.map(|(f, payload)| (&f.conversation, payload)).unzip();
            row.push_bind(c.map(|c| c.client_id.0))
                .push_bind(c.map(|c| c.id.0))
                .push_bind(c.map(|c| c.channel_id.0))
                .push_bind(c.and_then(|c| c.assignee_id.map(|u| u.0)))
                .push_bind(c.and_then(|c| c.group_id.map(|g| g.0)))
                .push_bind(payload)
                .push_bind(c.map(|_| ms(now())));
        },
    );
    let conversations: Vec<ConversationId> = fresh.iter().map(|f| f.conversation.id).collect();
    let Some(seqs) = insert_events(&mut *tx, q, &conversations).await? else {
        // Never seen; should an engine number the rows otherwise, the events are taken one
        // by one rather than paired with the wrong seq.
        return Ok(None);
    };
    for client in &clients {
        let head = seqs
            .iter()
            .zip(&fresh)
            .filter(|(_, f)| f.message.client_id == *client)
            .map(|(seq, _)| *seq)
            .max();
        if let Some(seq) = head {
            notify_event(&mut *tx, *client, seq).await?;
        }
    }

    let mut made: Vec<Option<Ingest>> = fresh
        .into_iter()
        .zip(seqs)
        .map(|(f, event_seq)| {
            Some(Ingest::New {
                message: f.message,
                conversation: f.conversation,
                new_request: f.new_request,
                returning_customer: f.returning_customer,
                waiting: f.waiting,
                event_seq,
            })
        })
        .collect();
    Ok(Some(
        plan.into_iter()
            .map(|outcome| match outcome {
                Outcome::Settled(result) => result,
                Outcome::Fresh(n) => made[n].take().ok_or(StoreError::NotFound),
            })
            .collect(),
    ))
}

fn settled(outcome: Outcome) -> Result<Ingest> {
    match outcome {
        Outcome::Settled(result) => result,
        Outcome::Fresh(_) => Err(StoreError::NotFound),
    }
}

/// Like `load_conversation`, locking the row until the transaction ends (PostgreSQL), so what
/// is decided from it still holds at commit.
async fn lock_conversation(
    conn: &mut DbConn,
    client: ClientId,
    id: ConversationId,
) -> Result<Conversation> {
    let row = sqlx::query::<Db>(concat!(
        "SELECT ",
        conversation_cols!(),
        " FROM conversations WHERE id = $1 AND client_id = $2",
        for_update!()
    ))
    .bind(id.0)
    .bind(client.0)
    .fetch_optional(&mut *conn)
    .await?;
    conversation_row(&found(row)?)
}

async fn conversation_in_client(
    conn: &mut DbConn,
    client: ClientId,
    id: ConversationId,
) -> Result<()> {
    let row = sqlx::query::<Db>("SELECT id FROM conversations WHERE id = $1 AND client_id = $2")
        .bind(id.0)
        .bind(client.0)
        .fetch_optional(&mut *conn)
        .await?;
    found(row).map(drop)
}

async fn load_message(conn: &mut DbConn, client: ClientId, id: MessageId) -> Result<Message> {
    let row = sqlx::query::<Db>(concat!(
        "SELECT ",
        message_cols!(),
        " FROM messages WHERE id = $1 AND client_id = $2"
    ))
    .bind(id.0)
    .bind(client.0)
    .fetch_optional(&mut *conn)
    .await?;
    let mut message = message_row(&found(row)?)?;
    with_attachments(&mut *conn, std::slice::from_mut(&mut message)).await?;
    Ok(message)
}

async fn message_by_event(
    conn: &mut DbConn,
    channel: ChannelId,
    provider_event_id: &str,
) -> Result<Option<MessageId>> {
    let id = sqlx::query_scalar::<Db, Uuid>(
        "SELECT id FROM messages WHERE channel_id = $1 AND provider_event_id = $2",
    )
    .bind(channel.0)
    .bind(provider_event_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(id.map(MessageId))
}

async fn message_by_key(
    conn: &mut DbConn,
    conversation: ConversationId,
    key: &str,
) -> Result<Option<Message>> {
    let row = sqlx::query::<Db>(concat!(
        "SELECT ",
        message_cols!(),
        " FROM messages WHERE conversation_id = $1 AND idempotency_key = $2"
    ))
    .bind(conversation.0)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut message = message_row(&row)?;
    with_attachments(&mut *conn, std::slice::from_mut(&mut message)).await?;
    Ok(Some(message))
}

async fn insert_message(conn: &mut DbConn, m: &Message, channel: ChannelId) -> Result<bool> {
    // Either key may be taken by a concurrent twin: inbound retries share the provider event
    // id, outbound retries the idempotency key. The caller tells which and reads the winner.
    let inserted = sqlx::query_scalar::<Db, Uuid>(concat!(
        "INSERT INTO messages (",
        message_cols!(),
        ", channel_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT DO NOTHING RETURNING id"
    ))
    .bind(m.id.0)
    .bind(m.client_id.0)
    .bind(m.conversation_id.0)
    .bind(codec::direction_str(m.direction))
    .bind(codec::message_kind_str(m.kind))
    .bind(&m.provider_event_id)
    .bind(m.author_id.map(|a| a.0))
    .bind(&m.text)
    .bind(codec::delivery_str(m.status))
    .bind(&m.failure_reason)
    .bind(&m.idempotency_key)
    .bind(ms(m.created_at))
    .bind(channel.0)
    .fetch_optional(&mut *conn)
    .await
    .map_err(constraint("message"))?;
    Ok(inserted.is_some())
}

async fn tags_of(conn: &mut DbConn, id: ConversationId) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar::<Db, String>(
        "SELECT tag FROM conversation_tags WHERE conversation_id = $1 ORDER BY tag",
    )
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await?)
}

async fn open_request(
    conn: &mut DbConn,
    c: &Conversation,
    number: i64,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query::<Db>(
        "INSERT INTO requests (id, client_id, conversation_id, number, opened_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::now_v7())
    .bind(c.client_id.0)
    .bind(c.id.0)
    .bind(number)
    .bind(ms(at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn close_requests(conn: &mut DbConn, id: ConversationId, at: DateTime<Utc>) -> Result<()> {
    sqlx::query::<Db>(
        "UPDATE requests SET resolved_at = $2 WHERE conversation_id = $1 AND resolved_at IS NULL",
    )
    .bind(id.0)
    .bind(ms(at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Appends one event; the last statements of every transaction that changes a conversation.
async fn append_event(
    conn: &mut DbConn,
    client: ClientId,
    conversation: Option<&Conversation>,
    kind: EventKind,
    payload: serde_json::Value,
) -> Result<HubEvent> {
    let (seq, created_at) = insert_event(conn, client, conversation, kind, &payload).await?;
    let mut event = HubEvent {
        seq,
        client_id: client,
        conversation_id: conversation.map(|c| c.id),
        channel_id: conversation.map(|c| c.channel_id),
        assignee_id: conversation.and_then(|c| c.assignee_id),
        group_id: conversation.and_then(|c| c.group_id),
        kind,
        payload,
        created_at,
    };
    restore_payload(&mut event)?;
    Ok(event)
}

/// [`append_event`] without building the event: its seq and time. The payload is written
/// straight to its text.
async fn insert_event(
    conn: &mut DbConn,
    client: ClientId,
    conversation: Option<&Conversation>,
    kind: EventKind,
    payload: &(impl serde::Serialize + Sync),
) -> Result<(i64, DateTime<Utc>)> {
    lock_events(&mut *conn, client).await?;
    let created_at = now();
    let seq = sqlx::query_scalar::<Db, i64>(
        "INSERT INTO events (client_id, conversation_id, channel_id, assignee_id, group_id, \
         kind, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq",
    )
    .bind(client.0)
    .bind(conversation.map(|c| c.id.0))
    .bind(conversation.map(|c| c.channel_id.0))
    .bind(conversation.and_then(|c| c.assignee_id).map(|u| u.0))
    .bind(conversation.and_then(|c| c.group_id).map(|g| g.0))
    .bind(kind.as_str())
    .bind(payload_arg(payload)?)
    .bind(ms(created_at))
    .fetch_one(&mut *conn)
    .await?;
    notify_event(&mut *conn, client, seq).await?;
    Ok((seq, created_at))
}

/// `conversation_updated`: the conversation as JSON, plus its `tags`, plus, when the change
/// moved it to another assignee or group, its `previous_scope` (so that a console that could
/// see it before and cannot now is told to let it go; see `HubEvent::previous_scope`).
async fn conversation_event(
    conn: &mut DbConn,
    c: &Conversation,
    before: Option<&Conversation>,
) -> Result<HubEvent> {
    let tags = tags_of(conn, c.id).await?;
    let mut payload = to_json(c)?;
    if let serde_json::Value::Object(map) = &mut payload {
        map.insert("tags".into(), to_json(&tags)?);
        if let Some(b) =
            before.filter(|b| (b.assignee_id, b.group_id) != (c.assignee_id, c.group_id))
        {
            map.insert(
                PREVIOUS_SCOPE.into(),
                serde_json::json!({ "assignee_id": b.assignee_id, "group_id": b.group_id }),
            );
        }
    }
    append_event(
        conn,
        c.client_id,
        Some(c),
        EventKind::ConversationUpdated,
        payload,
    )
    .await
}

/// The payload of `message_created`: the message, and its conversation as the message left
/// it, since a new message can also move it (a new request, a snoozed one waking up).
///
/// Stored without the ids the event's own columns hold (the client, the conversation, its
/// channel, assignee and group), which [`restore_payload`] puts back: they were about a third
/// of each payload, and payloads are most of what a group commit writes.
struct MessageCreated<'a> {
    message: &'a Message,
    conversation: &'a Conversation,
}

impl serde::Serialize for MessageCreated<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        // Every field is named, so a field added to `Message` fails to compile until it is
        // written here (or left to `restore_payload`).
        let Message {
            id,
            client_id: _,
            conversation_id: _,
            direction,
            kind,
            provider_event_id,
            author_id,
            text,
            status,
            failure_reason,
            idempotency_key,
            created_at,
            attachments,
        } = self.message;
        // No length: a count written here would go stale with the fields above.
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("id", id)?;
        map.serialize_entry("direction", direction)?;
        map.serialize_entry("kind", kind)?;
        map.serialize_entry("provider_event_id", provider_event_id)?;
        map.serialize_entry("author_id", author_id)?;
        map.serialize_entry("text", text)?;
        map.serialize_entry("status", status)?;
        map.serialize_entry("failure_reason", failure_reason)?;
        map.serialize_entry("idempotency_key", idempotency_key)?;
        map.serialize_entry("created_at", &Rfc3339(*created_at))?;
        map.serialize_entry("attachments", attachments)?;
        map.serialize_entry("conversation", &StoredConversation(self.conversation))?;
        map.end()
    }
}

/// A conversation in a stored `message_created` payload (see [`MessageCreated`]).
struct StoredConversation<'a>(&'a Conversation);

impl serde::Serialize for StoredConversation<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let Conversation {
            id: _,
            client_id: _,
            channel_id: _,
            contact_id,
            external_id,
            status,
            snoozed_until,
            assignee_id: _,
            group_id: _,
            request_no,
            last_message_at,
            created_at,
            blocked_at,
            blocked_reason,
        } = self.0;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("contact_id", contact_id)?;
        map.serialize_entry("external_id", external_id)?;
        map.serialize_entry("status", status)?;
        map.serialize_entry("snoozed_until", &snoozed_until.map(Rfc3339))?;
        map.serialize_entry("request_no", request_no)?;
        map.serialize_entry("last_message_at", &Rfc3339(*last_message_at))?;
        map.serialize_entry("created_at", &Rfc3339(*created_at))?;
        map.serialize_entry("blocked_at", &blocked_at.map(Rfc3339))?;
        map.serialize_entry("blocked_reason", blocked_reason)?;
        map.end()
    }
}

/// Puts back into an event's payload what [`MessageCreated`] leaves to the event's columns.
/// A payload stored whole (before it was stored so) gets the same values again.
fn restore_payload(event: &mut HubEvent) -> Result<()> {
    if event.kind != EventKind::MessageCreated {
        return Ok(());
    }
    let serde_json::Value::Object(message) = &mut event.payload else {
        return Ok(());
    };
    let client = to_json(&event.client_id)?;
    let conversation_id = to_json(&event.conversation_id)?;
    message.insert("client_id".into(), client.clone());
    message.insert("conversation_id".into(), conversation_id.clone());
    if let Some(serde_json::Value::Object(conversation)) = message.get_mut("conversation") {
        conversation.insert("id".into(), conversation_id);
        conversation.insert("client_id".into(), client);
        conversation.insert("channel_id".into(), to_json(&event.channel_id)?);
        conversation.insert("assignee_id".into(), to_json(&event.assignee_id)?);
        conversation.insert("group_id".into(), to_json(&event.group_id)?);
    }
    Ok(())
}

async fn message_event(
    conn: &mut DbConn,
    c: &Conversation,
    m: &Message,
    kind: EventKind,
) -> Result<HubEvent> {
    let payload = if kind == EventKind::MessageCreated {
        to_json(&MessageCreated {
            message: m,
            conversation: c,
        })?
    } else {
        to_json(m)?
    };
    append_event(conn, c.client_id, Some(c), kind, payload).await
}

async fn load_contact(conn: &mut DbConn, client: ClientId, id: ContactId) -> Result<Contact> {
    let row = sqlx::query::<Db>(concat!(
        "SELECT ",
        contact_cols!(),
        " FROM contacts WHERE id = $1 AND client_id = $2"
    ))
    .bind(id.0)
    .bind(client.0)
    .fetch_optional(&mut *conn)
    .await?;
    contact_row(&found(row)?)
}

async fn insert_contact(conn: &mut DbConn, contact: &Contact) -> Result<()> {
    sqlx::query::<Db>(concat!(
        "INSERT INTO contacts (",
        contact_cols!(),
        ") VALUES ($1, $2, $3, $4, $5)"
    ))
    .bind(contact.id.0)
    .bind(contact.client_id.0)
    .bind(&contact.name)
    .bind(Json(&contact.fields))
    .bind(ms(contact.created_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn identity_contact(
    conn: &mut DbConn,
    channel: ChannelId,
    external_id: &str,
) -> Result<Option<ContactId>> {
    let id = sqlx::query_scalar::<Db, Uuid>(
        "SELECT contact_id FROM contact_identities WHERE channel_id = $1 AND external_id = $2",
    )
    .bind(channel.0)
    .bind(external_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(id.map(ContactId))
}

/// The contact an inbound sender is known as on this channel, created with its identity on
/// first contact. True when it existed before. Two first messages racing: the identity's key
/// lets one insert win; the other waits for it (PostgreSQL), drops its own contact and reads
/// the winner's.
async fn contact_for(
    conn: &mut DbConn,
    ev: &InboundEvent,
    at: DateTime<Utc>,
) -> Result<(ContactId, bool)> {
    if let Some(id) = identity_contact(conn, ev.channel_id, &ev.external_user_id).await? {
        return Ok((id, true));
    }
    let contact = Contact {
        id: ContactId::new(),
        client_id: ev.client_id,
        name: ev.contact_name.clone(),
        fields: serde_json::json!({}),
        created_at: at,
    };
    insert_contact(conn, &contact).await?;
    let inserted = sqlx::query_scalar::<Db, Uuid>(
        "INSERT INTO contact_identities (channel_id, external_id, contact_id, client_id, \
         created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (channel_id, external_id) DO NOTHING RETURNING contact_id",
    )
    .bind(ev.channel_id.0)
    .bind(&ev.external_user_id)
    .bind(contact.id.0)
    .bind(ev.client_id.0)
    .bind(ms(at))
    .fetch_optional(&mut *conn)
    .await?;
    if inserted.is_some() {
        return Ok((contact.id, false));
    }
    sqlx::query::<Db>("DELETE FROM contacts WHERE id = $1")
        .bind(contact.id.0)
        .execute(&mut *conn)
        .await?;
    let id = identity_contact(conn, ev.channel_id, &ev.external_user_id).await?;
    Ok((found(id)?, true))
}

async fn find_conversation(
    conn: &mut DbConn,
    channel: ChannelId,
    external_id: &str,
) -> Result<Option<Conversation>> {
    // The (channel_id, client_id) key on conversations pins a conversation found by channel
    // to the channel's client.
    let row = sqlx::query::<Db>(concat!(
        "SELECT ",
        conversation_cols!(),
        " FROM conversations WHERE channel_id = $1 AND external_id = $2"
    ))
    .bind(channel.0)
    .bind(external_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(conversation_row).transpose()
}

/// Creates the conversation of a new chat with its first request; `None` when a concurrent
/// first message created it first.
async fn create_conversation(
    conn: &mut DbConn,
    ev: &InboundEvent,
    contact: ContactId,
    at: DateTime<Utc>,
) -> Result<Option<Conversation>> {
    let c = Conversation {
        id: ConversationId::new(),
        client_id: ev.client_id,
        channel_id: ev.channel_id,
        contact_id: contact,
        external_id: ev.external_conversation_id.clone(),
        status: ConversationStatus::New,
        snoozed_until: None,
        assignee_id: None,
        group_id: None,
        request_no: 1,
        last_message_at: at,
        created_at: at,
        blocked_at: None,
        blocked_reason: None,
    };
    let inserted = sqlx::query_scalar::<Db, Uuid>(
        "INSERT INTO conversations (id, client_id, channel_id, contact_id, external_id, \
         external_user_id, status, request_no, last_message_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (channel_id, external_id) DO NOTHING RETURNING id",
    )
    .bind(c.id.0)
    .bind(c.client_id.0)
    .bind(c.channel_id.0)
    .bind(c.contact_id.0)
    .bind(&c.external_id)
    .bind(&ev.external_user_id)
    .bind(c.status.as_str())
    .bind(c.request_no)
    .bind(ms(c.last_message_at))
    .bind(ms(c.created_at))
    .fetch_optional(&mut *conn)
    .await?;
    if inserted.is_none() {
        return Ok(None);
    }
    open_request(conn, &c, 1, at).await?;
    Ok(Some(c))
}

/// The state of one operator (defaults when they never set anything).
async fn operator_state(
    conn: &mut DbConn,
    client: ClientId,
    user: UserId,
) -> Result<OperatorState> {
    let row = sqlx::query::<Db>(concat!(
        "SELECT u.id, o.capacity, o.accepting_new, o.presence, o.last_assigned_at, \
         (SELECT COUNT(*) FROM conversations c WHERE c.assignee_id = u.id \
          AND c.client_id = u.client_id AND c.status IN ",
        active_statuses!(),
        ") AS active \
         FROM users u LEFT JOIN operator_states o ON o.user_id = u.id \
         WHERE u.id = $1 AND u.client_id = $2"
    ))
    .bind(user.0)
    .bind(client.0)
    .fetch_optional(&mut *conn)
    .await?;
    operator_row(&found(row)?)
}

/// Ids bound in one statement at most (well under either engine's limit on parameters).
const TASKS_PER_STATEMENT: usize = 500;

/// Pushes `column IN (…)` with one bound value per element, padded to a power of two of
/// values by repeating the last (see [`padded_rows`]).
fn push_in<'t, T>(q: &mut QueryBuilder<Db>, column: &str, values: impl IntoIterator<Item = T>)
where
    T: sqlx::Encode<'t, Db> + sqlx::Type<Db> + Copy,
{
    q.push(column).push(" IN (");
    let mut list = q.separated(", ");
    let mut count = 0;
    let mut last = None;
    for value in values {
        list.push_bind(value);
        last = Some(value);
        count += 1;
    }
    if let Some(value) = last {
        for _ in count..padded_rows(count) {
            list.push_bind(value);
        }
    }
    q.push(")");
}

/// Appends the rows of a multi-row insert as `SELECT column1, …, columnN, 'shared', … FROM
/// (VALUES …) AS v WHERE column1 IS NOT NULL`, padded to a power of two of rows (see
/// [`padded_rows`]). `bind` writes a row's `bound` values from `Some` row, and as many NULLs
/// from `None`, rows the condition leaves out. Both engines name the columns of `VALUES`
/// `column1`, `column2`, … The `shared` values, the same for every row, follow them as
/// literals in the statement's text instead of being bound once per row; they are the code's
/// own constants, never input.
fn push_rows<R, F>(
    q: &mut QueryBuilder<Db>,
    bound: usize,
    shared: &[&'static str],
    rows: R,
    bind: F,
) where
    R: ExactSizeIterator,
    F: FnMut(sqlx::query_builder::Separated<'_, Db, &'static str>, Option<R::Item>),
{
    let padding = padded_rows(rows.len()) - rows.len();
    let mut columns = q.push("SELECT ").separated(", ");
    for n in 1..=bound {
        columns.push(format_args!("column{n}"));
    }
    for value in shared {
        debug_assert!(!value.contains('\''), "a shared value is a plain constant");
        columns.push(format_args!("'{value}'"));
    }
    q.push(" FROM (");
    q.push_values(
        rows.map(Some)
            .chain(std::iter::repeat_with(|| None).take(padding)),
        bind,
    );
    q.push(") AS v WHERE column1 IS NOT NULL");
}

/// How many rows or values a multi-row statement is given for `n`: the next power of two. A
/// statement's text depends on its number of rows, so a batch of any size from 1 to
/// [`INGEST_ROWS`] would otherwise prepare its statements anew, and push the connection's other
/// statements out of its cache of prepared ones. Rounded up, a statement has about ten texts,
/// which stay prepared.
fn padded_rows(n: usize) -> usize {
    n.next_power_of_two()
}

#[async_trait]
impl HubStore for Backend {
    // --- inbound and outbound ------------------------------------------------------------

    async fn ingest(&self, ev: &InboundEvent) -> Result<Ingest> {
        let mut tx = self.begin_write().await?;
        let ingest = match ingest_in(&mut tx, ev).await? {
            Ingested::Done(ingest) => ingest,
            Ingested::LostRace(id) => {
                tx.rollback().await?;
                return Ok(Ingest::Duplicate(id));
            }
        };
        tx.commit().await?;
        Ok(ingest)
    }

    async fn ingest_batch(&self, events: &[InboundEvent]) -> Result<Vec<Result<Ingest>>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        if let Some(outcomes) = ingest_all(&mut tx, events).await? {
            tx.commit().await?;
            return Ok(outcomes);
        }
        // A race with another node: one by one, each in its own transaction, settles it.
        tx.rollback().await?;
        let mut outcomes = Vec::with_capacity(events.len());
        for ev in events {
            outcomes.push(self.ingest(ev).await);
        }
        Ok(outcomes)
    }

    async fn add_outbound(&self, msg: &NewOutbound) -> Result<(Message, Option<HubEvent>)> {
        let mut tx = self.begin_write().await?;
        let conversation = lock_conversation(&mut tx, msg.client_id, msg.conversation_id).await?;
        if let Some(existing) =
            message_by_key(&mut tx, conversation.id, &msg.idempotency_key).await?
        {
            return Ok((existing, None));
        }
        if let Some(author) = msg.author_id {
            user_in_client(&mut tx, msg.client_id, author).await?;
        }
        let at = now();
        // Notes stay inside: delivered to nobody, so their status is final at once.
        let (status, is_note) = match msg.kind {
            MessageKind::Note => (DeliveryStatus::Sent, true),
            MessageKind::Message | MessageKind::AutoReply => (DeliveryStatus::Pending, false),
        };
        let message = Message {
            id: MessageId::new(),
            client_id: msg.client_id,
            conversation_id: conversation.id,
            direction: Direction::Outbound,
            kind: msg.kind,
            provider_event_id: None,
            author_id: msg.author_id,
            text: msg.text.clone(),
            status,
            failure_reason: None,
            idempotency_key: Some(msg.idempotency_key.clone()),
            created_at: at,
            attachments: Vec::new(),
        };
        if !insert_message(&mut tx, &message, conversation.channel_id).await? {
            let existing = message_by_key(&mut tx, conversation.id, &msg.idempotency_key).await?;
            tx.rollback().await?;
            return Ok((found(existing)?, None));
        }
        let mut message = message;
        for (position, id) in msg.attachments.iter().enumerate() {
            let upload = load_attachment(&mut tx, msg.client_id, *id).await?;
            if upload.attachment.conversation_id != conversation.id {
                return Err(StoreError::NotFound);
            }
            let linked = sqlx::query::<Db>(
                "UPDATE attachments SET message_id = $3, position = $4 \
                 WHERE id = $1 AND client_id = $2 AND message_id IS NULL AND state = 'ready'",
            )
            .bind(id.0)
            .bind(msg.client_id.0)
            .bind(message.id.0)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
            if linked.rows_affected() == 0 {
                return Err(StoreError::Conflict("attachment"));
            }
        }
        with_attachments(&mut tx, std::slice::from_mut(&mut message)).await?;
        let conversation = if is_note {
            conversation
        } else {
            let row = sqlx::query::<Db>(concat!(
                "UPDATE conversations SET last_message_at = $3 WHERE id = $1 AND client_id = $2 \
                 RETURNING ",
                conversation_cols!()
            ))
            .bind(conversation.id.0)
            .bind(conversation.client_id.0)
            .bind(ms(latest(conversation.last_message_at, at)))
            .fetch_one(&mut *tx)
            .await?;
            conversation_row(&row)?
        };
        let event =
            message_event(&mut tx, &conversation, &message, EventKind::MessageCreated).await?;
        tx.commit().await?;
        Ok((message, Some(event)))
    }

    async fn set_delivery(
        &self,
        client: ClientId,
        message: MessageId,
        status: DeliveryStatus,
        reason: Option<&str>,
        provider_message_id: Option<&str>,
    ) -> Result<(Message, Option<HubEvent>)> {
        let mut tx = self.begin_write().await?;
        // One conditional statement decides, so concurrent callbacks cannot move it backwards.
        let row = sqlx::query::<Db>(concat!(
            "UPDATE messages SET status = $3, \
             failure_reason = CASE WHEN $3 = 'failed' THEN $4 ELSE failure_reason END, \
             provider_message_id = COALESCE(provider_message_id, $5) \
             WHERE id = $1 AND client_id = $2 AND direction = 'outbound' AND kind <> 'note' \
             AND ",
            delivery_rank!(),
            " < $6 RETURNING ",
            message_cols!()
        ))
        .bind(message.0)
        .bind(client.0)
        .bind(codec::delivery_str(status))
        .bind(reason)
        .bind(provider_message_id)
        .bind(codec::delivery_move_below(status))
        .fetch_optional(&mut *tx)
        .await
        .map_err(constraint("provider_message_id"))?;
        let Some(row) = row else {
            // No move; still learn the provider's id when it is new (a late `sent` after an
            // early `delivered`), so later callbacks find the message.
            if let Some(pid) = provider_message_id {
                sqlx::query::<Db>(
                    "UPDATE messages SET provider_message_id = $3 \
                     WHERE id = $1 AND client_id = $2 AND direction = 'outbound' \
                     AND provider_message_id IS NULL",
                )
                .bind(message.0)
                .bind(client.0)
                .bind(pid)
                .execute(&mut *tx)
                .await
                .map_err(constraint("provider_message_id"))?;
            }
            let current = load_message(&mut tx, client, message).await?;
            tx.commit().await?;
            return Ok((current, None));
        };
        let mut updated = message_row(&row)?;
        with_attachments(&mut tx, std::slice::from_mut(&mut updated)).await?;
        let conversation = load_conversation(&mut tx, client, updated.conversation_id).await?;
        let event =
            message_event(&mut tx, &conversation, &updated, EventKind::MessageStatus).await?;
        tx.commit().await?;
        Ok((updated, Some(event)))
    }

    async fn set_blocked(
        &self,
        client: ClientId,
        conversation: ConversationId,
        reason: Option<&str>,
    ) -> Result<(Conversation, Option<HubEvent>)> {
        let mut tx = self.begin_write().await?;
        // Only a change moves the row: a second refusal keeps the first's time and sends no
        // event.
        let row = sqlx::query::<Db>(concat!(
            "UPDATE conversations SET blocked_at = CASE WHEN $3 IS NULL THEN NULL ELSE $4 END, \
             blocked_reason = $3 \
             WHERE id = $1 AND client_id = $2 \
             AND (blocked_at IS NULL) <> ($3 IS NULL) RETURNING ",
            conversation_cols!()
        ))
        .bind(conversation.0)
        .bind(client.0)
        .bind(reason)
        .bind(ms(now()))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            let current = load_conversation(&mut tx, client, conversation).await?;
            tx.commit().await?;
            return Ok((current, None));
        };
        let updated = conversation_row(&row)?;
        let event = conversation_event(&mut tx, &updated, None).await?;
        tx.commit().await?;
        Ok((updated, Some(event)))
    }

    async fn last_inbound_at(
        &self,
        client: ClientId,
        conversation: ConversationId,
    ) -> Result<Option<DateTime<Utc>>> {
        let at = sqlx::query_scalar::<Db, Option<i64>>(
            "SELECT MAX(created_at) FROM messages \
             WHERE conversation_id = $1 AND client_id = $2 AND direction = 'inbound'",
        )
        .bind(conversation.0)
        .bind(client.0)
        .fetch_one(&self.pool)
        .await?;
        at.map(ts).transpose()
    }

    async fn message_by_provider_id(
        &self,
        client: ClientId,
        channel: ChannelId,
        provider_message_id: &str,
    ) -> Result<Message> {
        let row = sqlx::query::<Db>(concat!(
            "SELECT ",
            message_cols!(),
            " FROM messages WHERE channel_id = $1 AND provider_message_id = $2 AND client_id = $3"
        ))
        .bind(channel.0)
        .bind(provider_message_id)
        .bind(client.0)
        .fetch_optional(&self.pool)
        .await?;
        let mut message = message_row(&found(row)?)?;
        let mut conn = self.pool.acquire().await?;
        with_attachments(&mut conn, std::slice::from_mut(&mut message)).await?;
        Ok(message)
    }

    async fn pending_outbound(&self, client: ClientId, limit: u32) -> Result<Vec<Message>> {
        let rows = sqlx::query::<Db>(concat!(
            "SELECT ",
            message_cols!(),
            " FROM messages WHERE client_id = $1 AND status = 'pending' \
             AND direction = 'outbound' ORDER BY created_at, id LIMIT $2"
        ))
        .bind(client.0)
        .bind(codec::page_limit(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut messages = rows.iter().map(message_row).collect::<Result<Vec<_>>>()?;
        let mut conn = self.pool.acquire().await?;
        with_attachments(&mut conn, &mut messages).await?;
        Ok(messages)
    }

    // --- attachments ---------------------------------------------------------------------

    async fn create_upload(&self, upload: &NewUpload) -> Result<Attachment> {
        let mut tx = self.begin_write().await?;
        conversation_in_client(&mut tx, upload.client_id, upload.conversation_id).await?;
        if let Some(user) = upload.uploaded_by {
            user_in_client(&mut tx, upload.client_id, user).await?;
        }
        let attachment = Attachment {
            id: AttachmentId::new(),
            client_id: upload.client_id,
            conversation_id: upload.conversation_id,
            message_id: None,
            kind: upload.kind,
            file_name: upload.file_name.clone(),
            mime_type: upload.mime_type.clone(),
            size: Some(upload.size),
            sha256: Some(upload.sha256.clone()),
            state: AttachmentState::Ready,
            failure_reason: None,
            created_at: now(),
        };
        sqlx::query::<Db>(
            "INSERT INTO attachments (id, client_id, conversation_id, kind, file_name, mime_type, \
             size, sha256, storage_key, state, uploaded_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'ready', $10, $11)",
        )
        .bind(attachment.id.0)
        .bind(attachment.client_id.0)
        .bind(attachment.conversation_id.0)
        .bind(attachment.kind.as_str())
        .bind(&attachment.file_name)
        .bind(&attachment.mime_type)
        .bind(upload.size)
        .bind(&upload.sha256)
        .bind(&upload.storage_key)
        .bind(upload.uploaded_by.map(|u| u.0))
        .bind(ms(attachment.created_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(attachment)
    }

    async fn get_attachment(&self, client: ClientId, id: AttachmentId) -> Result<StoredAttachment> {
        let mut conn = self.pool.acquire().await?;
        load_attachment(&mut conn, client, id).await
    }

    async fn attachment_stored(
        &self,
        client: ClientId,
        id: AttachmentId,
        file: &StoredFile,
    ) -> Result<Option<HubEvent>> {
        let mut tx = self.begin_write().await?;
        let mut update = QueryBuilder::<Db>::new("UPDATE attachments SET state = 'ready', size = ");
        update
            .push_bind(file.size)
            .push(", sha256 = ")
            .push_bind(file.sha256.clone())
            .push(", storage_key = ")
            .push_bind(file.storage_key.clone())
            .push(", mime_type = COALESCE(")
            .push_bind(file.mime_type.clone())
            .push(", mime_type), file_name = COALESCE(")
            .push_bind(file.file_name.clone())
            .push(", file_name)");
        let event = settle_attachment(&mut tx, client, id, &mut update).await?;
        tx.commit().await?;
        Ok(event)
    }

    async fn attachment_failed(
        &self,
        client: ClientId,
        id: AttachmentId,
        reason: &str,
    ) -> Result<Option<HubEvent>> {
        let mut tx = self.begin_write().await?;
        let mut update =
            QueryBuilder::<Db>::new("UPDATE attachments SET state = 'failed', failure_reason = ");
        update.push_bind(reason.to_string());
        let event = settle_attachment(&mut tx, client, id, &mut update).await?;
        tx.commit().await?;
        Ok(event)
    }

    // --- conversations -------------------------------------------------------------------

    async fn list_conversations(
        &self,
        client: ClientId,
        viewer: Option<UserId>,
        filter: &ConversationFilter,
    ) -> Result<Vec<ConversationSummary>> {
        let mut conn = self.pool.acquire().await?;
        if let Some(viewer) = viewer {
            user_in_client(&mut conn, client, viewer).await?;
        }
        let mut q = QueryBuilder::<Db>::new(concat!(
            "SELECT ",
            conversation_cols_c!(),
            ", ct.name AS contact_name, \
             (SELECT m.text FROM messages m WHERE m.conversation_id = c.id AND m.kind <> 'note' \
              ORDER BY m.created_at DESC, m.id DESC LIMIT 1) AS last_text, \
             (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id \
              AND m.direction = 'inbound' AND NOT EXISTS (SELECT 1 FROM read_marks r \
              WHERE r.conversation_id = c.id AND r.user_id = "
        ));
        // The nil id matches no read mark.
        q.push_bind(viewer.map_or(Uuid::nil(), |v| v.0)).push(
            " AND (m.created_at < r.last_read_at \
             OR (m.created_at = r.last_read_at AND m.id <= r.last_read_id)))) AS unread \
             FROM conversations c JOIN contacts ct ON ct.id = c.contact_id \
             WHERE c.client_id = ",
        );
        q.push_bind(client.0);
        if let Some(channels) = &filter.channels {
            if channels.is_empty() {
                return Ok(Vec::new());
            }
            q.push(" AND ");
            push_in(&mut q, "c.channel_id", channels.iter().map(|c| c.0));
        }
        if let Some(contact) = filter.contact {
            q.push(" AND c.contact_id = ").push_bind(contact.0);
        }
        let groups = filter.groups.as_deref();
        if filter.assignee.is_some() || groups.is_some() || filter.unassigned {
            q.push(" AND (1 = 0");
            if let Some(user) = filter.assignee {
                q.push(" OR c.assignee_id = ").push_bind(user.0);
            }
            if let Some(groups) = groups.filter(|g| !g.is_empty()) {
                q.push(" OR ");
                push_in(&mut q, "c.group_id", groups.iter().map(|g| g.0));
            }
            if filter.unassigned {
                q.push(" OR c.assignee_id IS NULL");
            }
            q.push(")");
        }
        if let Some(status) = filter.status {
            q.push(" AND c.status = ").push_bind(status.as_str());
        }
        if let Some(tag) = &filter.tag {
            q.push(
                " AND EXISTS (SELECT 1 FROM conversation_tags t \
                 WHERE t.conversation_id = c.id AND t.tag = ",
            )
            .push_bind(tag.clone())
            .push(")");
        }
        if let Some((at, id)) = filter.before {
            q.push(" AND (c.last_message_at < ")
                .push_bind(ms(at))
                .push(" OR (c.last_message_at = ")
                .push_bind(ms(at))
                .push(" AND c.id < ")
                .push_bind(id.0)
                .push("))");
        }
        q.push(" ORDER BY c.last_message_at DESC, c.id DESC LIMIT ")
            .push_bind(codec::page_limit(filter.limit));
        let rows = q.build().fetch_all(&mut *conn).await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }

        let mut tq = QueryBuilder::<Db>::new(
            "SELECT conversation_id, tag FROM conversation_tags WHERE client_id = ",
        );
        tq.push_bind(client.0).push(" AND ");
        let mut ids = Vec::with_capacity(rows.len());
        for r in &rows {
            ids.push(r.try_get::<Uuid, _>("id")?);
        }
        push_in(&mut tq, "conversation_id", ids);
        tq.push(" ORDER BY tag");
        let mut tags: HashMap<Uuid, Vec<String>> = HashMap::new();
        for r in tq.build().fetch_all(&mut *conn).await? {
            tags.entry(r.try_get("conversation_id")?)
                .or_default()
                .push(r.try_get("tag")?);
        }

        rows.iter()
            .map(|r| {
                let conversation = conversation_row(r)?;
                Ok(ConversationSummary {
                    contact_name: r.try_get("contact_name")?,
                    last_message_text: r.try_get("last_text")?,
                    last_message_at: conversation.last_message_at,
                    tags: tags.remove(&conversation.id.0).unwrap_or_default(),
                    unread: r.try_get("unread")?,
                    conversation,
                })
            })
            .collect()
    }

    async fn update_conversation(
        &self,
        client: ClientId,
        id: ConversationId,
        patch: &ConversationPatch,
    ) -> Result<(Conversation, HubEvent)> {
        let mut tx = self.begin_write().await?;
        if let Some(Some(user)) = patch.assignee_id {
            user_in_client(&mut tx, client, user).await?;
        }
        if let Some(Some(group)) = patch.group_id {
            group_in_client(&mut tx, client, group).await?;
        }
        // Who could see it before a move matters to consoles (see `conversation_event`).
        let before = if patch.assignee_id.is_some() || patch.group_id.is_some() {
            Some(lock_conversation(&mut tx, client, id).await?)
        } else {
            None
        };
        let assignee = patch.assignee_id.flatten();
        // One conditional statement decides `only_if_unassigned`: on PostgreSQL a concurrent
        // assignment holds the row until it commits, and this one then re-checks the new row.
        let row = sqlx::query::<Db>(concat!(
            "UPDATE conversations SET status = COALESCE($3, status), \
             snoozed_until = CASE WHEN COALESCE($3, status) = 'snoozed' \
               THEN (CASE WHEN $4 THEN $5 ELSE snoozed_until END) ELSE NULL END, \
             assignee_id = CASE WHEN $6 THEN $7 ELSE assignee_id END, \
             group_id = CASE WHEN $8 THEN $9 ELSE group_id END \
             WHERE id = $1 AND client_id = $2 \
             AND (NOT $10 OR assignee_id IS NULL OR assignee_id = $7) RETURNING ",
            conversation_cols!()
        ))
        .bind(id.0)
        .bind(client.0)
        .bind(patch.status.map(ConversationStatus::as_str))
        .bind(patch.snoozed_until.is_some())
        .bind(patch.snoozed_until.flatten().map(ms))
        .bind(patch.assignee_id.is_some())
        .bind(assignee.map(|u| u.0))
        .bind(patch.group_id.is_some())
        .bind(patch.group_id.flatten().map(|g| g.0))
        .bind(patch.only_if_unassigned)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            conversation_in_client(&mut tx, client, id).await?;
            return Err(StoreError::Conflict("assignee"));
        };
        let conversation = conversation_row(&row)?;
        let at = now();
        match patch.status {
            Some(ConversationStatus::Resolved) => close_requests(&mut tx, id, at).await?,
            // Reopening a resolved conversation continues its request (it is not a new one).
            Some(_) => {
                sqlx::query::<Db>(
                    "UPDATE requests SET resolved_at = NULL \
                     WHERE conversation_id = $1 AND number = $2 AND resolved_at IS NOT NULL",
                )
                .bind(id.0)
                .bind(conversation.request_no)
                .execute(&mut *tx)
                .await?;
            }
            None => {}
        }
        if let Some(user) = assignee {
            sqlx::query::<Db>(
                "INSERT INTO operator_states (user_id, client_id, last_assigned_at) \
                 VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id) DO UPDATE SET last_assigned_at = excluded.last_assigned_at",
            )
            .bind(user.0)
            .bind(client.0)
            .bind(ms(at))
            .execute(&mut *tx)
            .await?;
        }
        // Someone has it now, or nobody needs to: it waits no longer.
        if assignee.is_some() || conversation.status == ConversationStatus::Resolved {
            sqlx::query::<Db>("DELETE FROM routing_queue WHERE conversation_id = $1")
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
        }
        let event = conversation_event(&mut tx, &conversation, before.as_ref()).await?;
        tx.commit().await?;
        Ok((conversation, event))
    }

    async fn add_tag(
        &self,
        client: ClientId,
        id: ConversationId,
        tag: &str,
    ) -> Result<(Conversation, HubEvent)> {
        let mut tx = self.begin_write().await?;
        let conversation = lock_conversation(&mut tx, client, id).await?;
        sqlx::query::<Db>(
            "INSERT INTO conversation_tags (conversation_id, client_id, tag, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(id.0)
        .bind(client.0)
        .bind(tag)
        .bind(ms(now()))
        .execute(&mut *tx)
        .await?;
        let event = conversation_event(&mut tx, &conversation, None).await?;
        tx.commit().await?;
        Ok((conversation, event))
    }

    async fn remove_tag(
        &self,
        client: ClientId,
        id: ConversationId,
        tag: &str,
    ) -> Result<(Conversation, HubEvent)> {
        let mut tx = self.begin_write().await?;
        let conversation = lock_conversation(&mut tx, client, id).await?;
        sqlx::query::<Db>("DELETE FROM conversation_tags WHERE conversation_id = $1 AND tag = $2")
            .bind(id.0)
            .bind(tag)
            .execute(&mut *tx)
            .await?;
        let event = conversation_event(&mut tx, &conversation, None).await?;
        tx.commit().await?;
        Ok((conversation, event))
    }

    async fn conversation_tags(&self, client: ClientId, id: ConversationId) -> Result<Vec<String>> {
        let mut conn = self.pool.acquire().await?;
        conversation_in_client(&mut conn, client, id).await?;
        tags_of(&mut conn, id).await
    }

    async fn conversation_messages(
        &self,
        client: ClientId,
        id: ConversationId,
        after: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<Message>> {
        let mut conn = self.pool.acquire().await?;
        conversation_in_client(&mut conn, client, id).await?;
        // Messages are ordered by (created_at, id); the cursor is a message of this conversation.
        let (after_at, after_id) = match after {
            None => (i64::MIN, Uuid::nil()),
            Some(m) => {
                let at = sqlx::query_scalar::<Db, i64>(
                    "SELECT created_at FROM messages WHERE id = $1 AND conversation_id = $2",
                )
                .bind(m.0)
                .bind(id.0)
                .fetch_optional(&mut *conn)
                .await?;
                (found(at)?, m.0)
            }
        };
        let rows = sqlx::query::<Db>(concat!(
            "SELECT ",
            message_cols!(),
            " FROM messages WHERE conversation_id = $1 AND client_id = $2 \
             AND (created_at > $3 OR (created_at = $3 AND id > $4)) \
             ORDER BY created_at, id LIMIT $5"
        ))
        .bind(id.0)
        .bind(client.0)
        .bind(after_at)
        .bind(after_id)
        .bind(codec::page_limit(limit))
        .fetch_all(&mut *conn)
        .await?;
        let mut messages = rows.iter().map(message_row).collect::<Result<Vec<_>>>()?;
        with_attachments(&mut conn, &mut messages).await?;
        Ok(messages)
    }

    async fn mark_read(
        &self,
        client: ClientId,
        id: ConversationId,
        user: UserId,
        up_to: MessageId,
    ) -> Result<HubEvent> {
        let mut tx = self.begin_write().await?;
        let conversation = load_conversation(&mut tx, client, id).await?;
        user_in_client(&mut tx, client, user).await?;
        let at = sqlx::query_scalar::<Db, i64>(
            "SELECT created_at FROM messages WHERE id = $1 AND conversation_id = $2",
        )
        .bind(up_to.0)
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await?;
        let at = found(at)?;
        // A mark only moves forward: a late, older mark from another tab changes nothing.
        sqlx::query::<Db>(
            "INSERT INTO read_marks (conversation_id, user_id, client_id, last_read_at, \
             last_read_id, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (conversation_id, user_id) DO UPDATE SET \
             last_read_at = excluded.last_read_at, last_read_id = excluded.last_read_id, \
             updated_at = excluded.updated_at \
             WHERE read_marks.last_read_at < excluded.last_read_at \
             OR (read_marks.last_read_at = excluded.last_read_at \
                 AND read_marks.last_read_id < excluded.last_read_id)",
        )
        .bind(id.0)
        .bind(user.0)
        .bind(client.0)
        .bind(at)
        .bind(up_to.0)
        .bind(ms(now()))
        .execute(&mut *tx)
        .await?;
        let payload = serde_json::json!({ "user_id": user, "message_id": up_to });
        let event = append_event(
            &mut tx,
            client,
            Some(&conversation),
            EventKind::ReadMark,
            payload,
        )
        .await?;
        tx.commit().await?;
        Ok(event)
    }

    async fn search_messages(
        &self,
        client: ClientId,
        channels: Option<&[ChannelId]>,
        query: &str,
        limit: u32,
    ) -> Result<Vec<Message>> {
        let Some(query) = search_query(query) else {
            return Ok(Vec::new());
        };
        if channels.is_some_and(<[ChannelId]>::is_empty) {
            return Ok(Vec::new());
        }
        let mut q = QueryBuilder::<Db>::new(concat!("SELECT ", message_cols_m!(), " FROM "));
        q.push(SEARCH_FROM)
            .push(" WHERE ")
            .push(SEARCH_MATCH.0)
            .push_bind(query)
            .push(SEARCH_MATCH.1)
            .push(" AND m.client_id = ")
            .push_bind(client.0);
        if let Some(channels) = channels {
            q.push(" AND ");
            push_in(&mut q, "m.channel_id", channels.iter().map(|c| c.0));
        }
        q.push(" ORDER BY m.created_at DESC, m.id DESC LIMIT ")
            .push_bind(codec::page_limit(limit));
        let rows = q.build().fetch_all(&self.pool).await?;
        let mut messages = rows.iter().map(message_row).collect::<Result<Vec<_>>>()?;
        let mut conn = self.pool.acquire().await?;
        with_attachments(&mut conn, &mut messages).await?;
        Ok(messages)
    }

    // --- contacts across channels --------------------------------------------------------

    async fn get_contact(&self, client: ClientId, id: ContactId) -> Result<Contact> {
        let mut conn = self.pool.acquire().await?;
        load_contact(&mut conn, client, id).await
    }

    async fn contact_identities(
        &self,
        client: ClientId,
        id: ContactId,
    ) -> Result<Vec<ContactIdentity>> {
        let mut conn = self.pool.acquire().await?;
        load_contact(&mut conn, client, id).await?;
        let rows = sqlx::query::<Db>(
            "SELECT contact_id, channel_id, external_id FROM contact_identities \
             WHERE contact_id = $1 AND client_id = $2 ORDER BY created_at, channel_id, external_id",
        )
        .bind(id.0)
        .bind(client.0)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ContactIdentity {
                    contact_id: ContactId(r.try_get("contact_id")?),
                    channel_id: ChannelId(r.try_get("channel_id")?),
                    external_id: r.try_get("external_id")?,
                })
            })
            .collect()
    }

    async fn update_contact(
        &self,
        client: ClientId,
        id: ContactId,
        name: Option<&str>,
        fields: Option<&serde_json::Value>,
    ) -> Result<Contact> {
        let row = sqlx::query::<Db>(concat!(
            "UPDATE contacts SET name = COALESCE($3, name), fields = COALESCE($4, fields) \
             WHERE id = $1 AND client_id = $2 RETURNING ",
            contact_cols!()
        ))
        .bind(id.0)
        .bind(client.0)
        .bind(name)
        .bind(fields.map(Json))
        .fetch_optional(&self.pool)
        .await?;
        contact_row(&found(row)?)
    }

    async fn merge_contacts(
        &self,
        client: ClientId,
        keep: ContactId,
        other: ContactId,
    ) -> Result<Contact> {
        let mut tx = self.begin_write().await?;
        let mut kept = load_contact(&mut tx, client, keep).await?;
        let gone = load_contact(&mut tx, client, other).await?;
        if keep == other {
            return Ok(kept);
        }
        for sql in [
            "UPDATE contact_identities SET contact_id = $1 \
             WHERE contact_id = $2 AND client_id = $3",
            "UPDATE conversations SET contact_id = $1 WHERE contact_id = $2 AND client_id = $3",
        ] {
            sqlx::query::<Db>(sql)
                .bind(keep.0)
                .bind(other.0)
                .bind(client.0)
                .execute(&mut *tx)
                .await?;
        }
        // Fields the kept card lacks come from the other one; the kept card wins on conflicts.
        if let (serde_json::Value::Object(into), serde_json::Value::Object(from)) =
            (&mut kept.fields, gone.fields)
        {
            for (k, v) in from {
                into.entry(k).or_insert(v);
            }
        }
        sqlx::query::<Db>("UPDATE contacts SET fields = $2 WHERE id = $1")
            .bind(keep.0)
            .bind(Json(&kept.fields))
            .execute(&mut *tx)
            .await?;
        sqlx::query::<Db>("DELETE FROM contacts WHERE id = $1 AND client_id = $2")
            .bind(other.0)
            .bind(client.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(kept)
    }

    async fn split_contact(
        &self,
        client: ClientId,
        id: ContactId,
        identity: &ContactIdentity,
    ) -> Result<Contact> {
        let mut tx = self.begin_write().await?;
        let from = load_contact(&mut tx, client, id).await?;
        if identity.contact_id != id {
            return Err(StoreError::NotFound);
        }
        let contact = Contact {
            id: ContactId::new(),
            client_id: client,
            name: from.name,
            fields: serde_json::json!({}),
            created_at: now(),
        };
        insert_contact(&mut tx, &contact).await?;
        let moved = sqlx::query::<Db>(
            "UPDATE contact_identities SET contact_id = $1 \
             WHERE channel_id = $2 AND external_id = $3 AND contact_id = $4 AND client_id = $5",
        )
        .bind(contact.id.0)
        .bind(identity.channel_id.0)
        .bind(&identity.external_id)
        .bind(id.0)
        .bind(client.0)
        .execute(&mut *tx)
        .await?;
        affected(moved.rows_affected())?;
        // The identity's conversations: those its sender opened on its channel.
        sqlx::query::<Db>(
            "UPDATE conversations SET contact_id = $1 \
             WHERE channel_id = $2 AND external_user_id = $3 AND contact_id = $4 \
             AND client_id = $5",
        )
        .bind(contact.id.0)
        .bind(identity.channel_id.0)
        .bind(&identity.external_id)
        .bind(id.0)
        .bind(client.0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(contact)
    }

    // --- quick replies -------------------------------------------------------------------

    async fn list_quick_replies(&self, client: ClientId) -> Result<Vec<QuickReply>> {
        let rows = sqlx::query::<Db>(concat!(
            "SELECT ",
            quick_reply_cols!(),
            " FROM quick_replies WHERE client_id = $1 ORDER BY title, id"
        ))
        .bind(client.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(quick_reply_row).collect()
    }

    async fn create_quick_reply(
        &self,
        client: ClientId,
        title: &str,
        text: &str,
    ) -> Result<QuickReply> {
        let reply = QuickReply {
            id: QuickReplyId::new(),
            client_id: client,
            title: title.to_string(),
            text: text.to_string(),
            created_at: now(),
        };
        sqlx::query::<Db>(concat!(
            "INSERT INTO quick_replies (",
            quick_reply_cols!(),
            ") VALUES ($1, $2, $3, $4, $5)"
        ))
        .bind(reply.id.0)
        .bind(reply.client_id.0)
        .bind(&reply.title)
        .bind(&reply.text)
        .bind(ms(reply.created_at))
        .execute(&self.pool)
        .await
        .map_err(constraint("quick reply"))?;
        Ok(reply)
    }

    async fn delete_quick_reply(&self, client: ClientId, id: QuickReplyId) -> Result<()> {
        let done = sqlx::query::<Db>("DELETE FROM quick_replies WHERE id = $1 AND client_id = $2")
            .bind(id.0)
            .bind(client.0)
            .execute(&self.pool)
            .await?;
        affected(done.rows_affected())
    }

    // --- routing -------------------------------------------------------------------------

    async fn routing_snapshot(&self, client: ClientId) -> Result<RoutingSnapshot> {
        let mut tx = self.pool.begin_with(BEGIN_SNAPSHOT).await?;
        let groups = sqlx::query::<Db>(
            "SELECT id, client_id, name, created_at, routing_mode, working_hours, auto_replies \
             FROM groups WHERE client_id = $1 ORDER BY created_at, id",
        )
        .bind(client.0)
        .fetch_all(&mut *tx)
        .await?;
        let members = sqlx::query::<Db>(
            "SELECT group_id, user_id, competency FROM group_members WHERE client_id = $1 \
             ORDER BY user_id",
        )
        .bind(client.0)
        .fetch_all(&mut *tx)
        .await?;
        let mut by_group: HashMap<Uuid, Vec<RoutingMember>> = HashMap::new();
        for m in &members {
            let competency: i64 = m.try_get("competency")?;
            by_group
                .entry(m.try_get("group_id")?)
                .or_default()
                .push(RoutingMember {
                    user_id: UserId(m.try_get("user_id")?),
                    competency: u8::try_from(competency).unwrap_or(DEFAULT_COMPETENCY),
                });
        }
        let groups = groups
            .iter()
            .map(|r| {
                let id: Uuid = r.try_get("id")?;
                let members = by_group.remove(&id).unwrap_or_default();
                let group = group_row(r, members.iter().map(|m| m.user_id).collect())?;
                let routing = GroupRouting {
                    mode: codec::routing_mode(r.try_get::<&str, _>("routing_mode")?)?,
                    hours: r
                        .try_get::<Option<Json<WeeklyHours>>, _>("working_hours")?
                        .map(|j| j.0)
                        .unwrap_or_default(),
                    auto_replies: r
                        .try_get::<Option<Json<AutoReplies>>, _>("auto_replies")?
                        .map(|j| j.0)
                        .unwrap_or_default(),
                };
                Ok((group, routing, members))
            })
            .collect::<Result<Vec<_>>>()?;
        let operators = sqlx::query::<Db>(concat!(
            "SELECT u.id, o.capacity, o.accepting_new, o.presence, o.last_assigned_at, \
             (SELECT COUNT(*) FROM conversations c WHERE c.assignee_id = u.id \
              AND c.client_id = u.client_id AND c.status IN ",
            active_statuses!(),
            ") AS active \
             FROM users u LEFT JOIN operator_states o ON o.user_id = u.id \
             WHERE u.client_id = $1 AND u.disabled = $2 ORDER BY u.created_at, u.id"
        ))
        .bind(client.0)
        .bind(false)
        .fetch_all(&mut *tx)
        .await?;
        let operators = operators
            .iter()
            .map(operator_row)
            .collect::<Result<Vec<_>>>()?;
        let queue = sqlx::query::<Db>(
            "SELECT conversation_id, group_id, enqueued_at FROM routing_queue \
             WHERE client_id = $1 ORDER BY enqueued_at, conversation_id",
        )
        .bind(client.0)
        .fetch_all(&mut *tx)
        .await?;
        let queue = queue
            .iter()
            .map(|r| {
                Ok(QueuedConversation {
                    conversation_id: ConversationId(r.try_get("conversation_id")?),
                    group_id: r.try_get::<Option<Uuid>, _>("group_id")?.map(GroupId),
                    enqueued_at: ts(r.try_get("enqueued_at")?)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        tx.commit().await?;
        Ok(RoutingSnapshot {
            groups,
            operators,
            queue,
        })
    }

    async fn set_group_routing(
        &self,
        client: ClientId,
        group: GroupId,
        routing: &GroupRouting,
    ) -> Result<()> {
        let done = sqlx::query::<Db>(
            "UPDATE groups SET routing_mode = $3, working_hours = $4, auto_replies = $5 \
             WHERE id = $1 AND client_id = $2",
        )
        .bind(group.0)
        .bind(client.0)
        .bind(routing.mode.as_str())
        .bind(Json(&routing.hours))
        .bind(Json(&routing.auto_replies))
        .execute(&self.pool)
        .await?;
        affected(done.rows_affected())
    }

    async fn set_competency(
        &self,
        client: ClientId,
        group: GroupId,
        user: UserId,
        level: u8,
    ) -> Result<()> {
        // Validation is the caller's (core::routing::validate_competency); the store keeps
        // whatever it is given inside the range the schema allows.
        let level = i64::from(level.clamp(1, 100));
        let done = sqlx::query::<Db>(
            "UPDATE group_members SET competency = $4 \
             WHERE group_id = $1 AND user_id = $2 AND client_id = $3",
        )
        .bind(group.0)
        .bind(user.0)
        .bind(client.0)
        .bind(level)
        .execute(&self.pool)
        .await?;
        affected(done.rows_affected())
    }

    async fn set_operator(
        &self,
        client: ClientId,
        user: UserId,
        capacity: Option<u32>,
        accepting_new: Option<bool>,
        presence: Option<Presence>,
    ) -> Result<OperatorState> {
        let mut tx = self.begin_write().await?;
        user_in_client(&mut tx, client, user).await?;
        sqlx::query::<Db>(
            "INSERT INTO operator_states (user_id, client_id, capacity, accepting_new, presence) \
             VALUES ($1, $2, COALESCE($3, $6), COALESCE($4, $7), COALESCE($5, $8)) \
             ON CONFLICT (user_id) DO UPDATE SET \
             capacity = COALESCE($3, operator_states.capacity), \
             accepting_new = COALESCE($4, operator_states.accepting_new), \
             presence = COALESCE($5, operator_states.presence)",
        )
        .bind(user.0)
        .bind(client.0)
        .bind(capacity.map(i64::from))
        .bind(accepting_new)
        .bind(presence.map(Presence::as_str))
        .bind(DEFAULT_CAPACITY)
        .bind(DEFAULT_ACCEPTING_NEW)
        .bind(DEFAULT_PRESENCE.as_str())
        .execute(&mut *tx)
        .await?;
        let state = operator_state(&mut tx, client, user).await?;
        tx.commit().await?;
        Ok(state)
    }

    async fn enqueue(
        &self,
        client: ClientId,
        id: ConversationId,
        group: Option<GroupId>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        conversation_in_client(&mut tx, client, id).await?;
        if let Some(group) = group {
            group_in_client(&mut tx, client, group).await?;
        }
        // Enqueued again (say, after a transfer to another group): the group follows, the place
        // in the queue stays.
        sqlx::query::<Db>(
            "INSERT INTO routing_queue (conversation_id, client_id, group_id, enqueued_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (conversation_id) DO UPDATE SET group_id = excluded.group_id",
        )
        .bind(id.0)
        .bind(client.0)
        .bind(group.map(|g| g.0))
        .bind(ms(now()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn dequeue(&self, client: ClientId, id: ConversationId) -> Result<()> {
        let mut tx = self.begin_write().await?;
        conversation_in_client(&mut tx, client, id).await?;
        sqlx::query::<Db>(
            "DELETE FROM routing_queue WHERE conversation_id = $1 AND client_id = $2",
        )
        .bind(id.0)
        .bind(client.0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    // --- events --------------------------------------------------------------------------

    async fn events_after(&self, client: ClientId, seq: i64, limit: u32) -> Result<Vec<HubEvent>> {
        let rows = sqlx::query::<Db>(concat!(
            "SELECT ",
            event_cols!(),
            " FROM events WHERE client_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        ))
        .bind(client.0)
        .bind(seq)
        .bind(codec::page_limit(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_row).collect()
    }

    async fn last_event_seq(&self) -> Result<i64> {
        // Pruning may have emptied the log; the head never goes back.
        Ok(sqlx::query_scalar::<Db, i64>(
            "SELECT MAX(head) FROM (SELECT COALESCE(MAX(seq), 0) AS head FROM events \
             UNION ALL SELECT through_seq AS head FROM events_pruned) AS heads",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    async fn last_client_event_seq(&self, client: ClientId) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar::<Db, Option<i64>>(
            "SELECT MAX(seq) FROM events WHERE client_id = $1",
        )
        .bind(client.0)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn prune_events(&self, older_than: DateTime<Utc>, limit: u32) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        // The log is in seq order and, near enough, in time order: the oldest `limit` events
        // before the cutoff end at `through`, and everything up to it goes.
        let through = sqlx::query_scalar::<Db, Option<i64>>(
            "SELECT MAX(seq) FROM (SELECT seq FROM events WHERE created_at < $1 \
             ORDER BY seq LIMIT $2) AS old",
        )
        .bind(ms(older_than))
        .bind(i64::from(limit))
        .fetch_one(&mut *tx)
        .await?;
        let Some(through) = through else {
            return Ok(0);
        };
        let removed = sqlx::query::<Db>("DELETE FROM events WHERE seq <= $1")
            .bind(through)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query::<Db>(
            "INSERT INTO events_pruned (id, through_seq) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET through_seq = CASE \
               WHEN excluded.through_seq > events_pruned.through_seq \
               THEN excluded.through_seq ELSE events_pruned.through_seq END",
        )
        .bind(through)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(removed)
    }

    async fn events_pruned_through(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar::<Db, Option<i64>>("SELECT MAX(through_seq) FROM events_pruned")
                .fetch_one(&self.pool)
                .await?
                .unwrap_or(0),
        )
    }

    async fn listen_events(&self) -> Result<Option<BoxStream<'static, Result<Announcement>>>> {
        listen_events(self).await
    }

    async fn announce(&self, client: ClientId, payload: &str) -> Result<()> {
        announce(self, client, payload).await
    }

    // --- scheduled tasks -----------------------------------------------------------------

    async fn schedule_task(&self, task: &NewTask) -> Result<Task> {
        use crate::scheduler::SchedulerStore as _;
        self.schedule_task_with(task, &Default::default()).await
    }

    async fn claim_due_tasks(
        &self,
        node: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Task>> {
        let mut tx = self.begin_write().await?;
        // Claimable: pending and due, or running under a lease that has run out (its node
        // died). PostgreSQL skips rows another claimer holds and re-checks the condition on
        // rows that changed meanwhile; SQLite's writer lock makes the statement exclusive.
        let rows = sqlx::query::<Db>(concat!(
            "UPDATE tasks SET status = 'running', locked_by = $1, locked_until = $3, \
             attempts = attempts + 1 WHERE id IN (SELECT id FROM tasks \
             WHERE (status = 'pending' AND due_at <= $2) \
             OR (status = 'running' AND locked_until <= $2) \
             ORDER BY due_at, id LIMIT $4",
            skip_locked!(),
            ") RETURNING ",
            task_cols!()
        ))
        .bind(node)
        .bind(ms(now))
        .bind(ms(lease_until))
        .bind(codec::page_limit(limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut tasks = rows.iter().map(task_row).collect::<Result<Vec<_>>>()?;
        tasks.sort_by_key(|t| (t.due_at, t.id));
        Ok(tasks)
    }

    async fn complete_task(&self, id: Uuid, node: &str) -> Result<()> {
        let done = sqlx::query::<Db>(
            "UPDATE tasks SET status = 'done', locked_by = NULL, locked_until = NULL, \
             finished_at = $3 WHERE id = $1 AND status = 'running' AND locked_by = $2",
        )
        .bind(id)
        .bind(node)
        .bind(ms(now()))
        .execute(&self.pool)
        .await?;
        affected(done.rows_affected())
    }

    async fn complete_tasks(&self, ids: &[Uuid], node: &str) -> Result<u64> {
        let mut completed = 0;
        for chunk in ids.chunks(TASKS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Db>::new(
                "UPDATE tasks SET status = 'done', locked_by = NULL, locked_until = NULL, \
                 finished_at = ",
            );
            q.push_bind(ms(now()))
                .push(" WHERE status = 'running' AND locked_by = ")
                .push_bind(node)
                .push(" AND ");
            push_in(&mut q, "id", chunk.iter().copied());
            completed += q.build().execute(&self.pool).await?.rows_affected();
        }
        Ok(completed)
    }

    async fn fail_task(
        &self,
        id: Uuid,
        node: &str,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let done = sqlx::query::<Db>(
            "UPDATE tasks SET status = CASE WHEN $4 THEN 'pending' ELSE 'failed' END, \
             due_at = COALESCE($5, due_at), last_error = $3, locked_by = NULL, \
             locked_until = NULL WHERE id = $1 AND status = 'running' AND locked_by = $2",
        )
        .bind(id)
        .bind(node)
        .bind(error)
        .bind(retry_at.is_some())
        .bind(retry_at.map(ms))
        .execute(&self.pool)
        .await?;
        affected(done.rows_affected())
    }

    async fn next_task_due(&self) -> Result<Option<DateTime<Utc>>> {
        let at = sqlx::query_scalar::<Db, Option<i64>>(
            "SELECT MIN(CASE WHEN status = 'pending' THEN due_at ELSE locked_until END) \
             FROM tasks WHERE status IN ('pending', 'running')",
        )
        .fetch_one(&self.pool)
        .await?;
        opt_ts(at)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn message_and_conversation() -> (Message, Conversation) {
        let at = now();
        let conversation = Conversation {
            id: ConversationId::new(),
            client_id: ClientId::new(),
            channel_id: ChannelId::new(),
            contact_id: ContactId::new(),
            external_id: "chat-1".into(),
            status: ConversationStatus::Open,
            snoozed_until: None,
            assignee_id: Some(UserId::new()),
            group_id: None,
            request_no: 2,
            last_message_at: at,
            created_at: at,
            blocked_at: None,
            blocked_reason: None,
        };
        let message = Message {
            id: MessageId::new(),
            client_id: conversation.client_id,
            conversation_id: conversation.id,
            direction: Direction::Inbound,
            kind: MessageKind::Message,
            provider_event_id: Some("ev-1".into()),
            author_id: None,
            text: "Привет".into(),
            status: DeliveryStatus::Received,
            failure_reason: None,
            idempotency_key: None,
            created_at: at,
            attachments: Vec::new(),
        };
        (message, conversation)
    }

    /// The event as read back, with `payload` in its columns' company.
    fn event(c: &Conversation, payload: serde_json::Value) -> HubEvent {
        HubEvent {
            seq: 7,
            client_id: c.client_id,
            conversation_id: Some(c.id),
            channel_id: Some(c.channel_id),
            assignee_id: c.assignee_id,
            group_id: c.group_id,
            kind: EventKind::MessageCreated,
            payload,
            created_at: now(),
        }
    }

    #[test]
    fn message_created_is_stored_without_the_columns_ids_and_read_back_whole() {
        let (m, c) = message_and_conversation();
        let mut whole = serde_json::to_value(&m).unwrap();
        whole["conversation"] = serde_json::to_value(&c).unwrap();

        let stored = to_json(&MessageCreated {
            message: &m,
            conversation: &c,
        })
        .unwrap();
        for key in ["client_id", "conversation_id"] {
            assert!(stored.get(key).is_none(), "{key} stored");
        }
        for key in ["id", "client_id", "channel_id", "assignee_id", "group_id"] {
            assert!(stored["conversation"].get(key).is_none(), "{key} stored");
        }
        assert_eq!(stored["text"], "Привет");
        assert_eq!(stored["conversation"]["external_id"], "chat-1");

        let mut read = event(&c, stored);
        restore_payload(&mut read).unwrap();
        assert_eq!(read.payload, whole);

        // A payload stored whole gets the same values again.
        let mut old = event(&c, whole.clone());
        restore_payload(&mut old).unwrap();
        assert_eq!(old.payload, whole);
    }
}
