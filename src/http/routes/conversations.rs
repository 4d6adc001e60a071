//! The shared inbox over REST: conversation lists and views, one conversation with its
//! messages, replies and internal notes, status, snooze, assignment and transfer, tags, read
//! marks, and full-text search. Everything that changes a conversation goes through the hub
//! (`state.hub`), which commits it and pushes it to the consoles that may see it.
//!
//! Visibility is `omnihub_core::access::may_see`, checked by the [`InConversation`] extractor
//! for every conversation-scoped route: another client's conversation and a conversation the
//! caller may not see are the same 404. The operator WebSocket (`crate::ws`) applies the same
//! checks through [`visible_conversation`].

use std::collections::HashMap;
use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use chrono::{DateTime, TimeZone, Utc};
use omnihub_actors::HubError;
use omnihub_core::access::{
    Action, ConversationScope, Decision, may_assign, may_see, may_see_in, supervises,
};
use omnihub_core::conversation::{operator_may_set, snooze_until_valid};
use omnihub_core::model::{Contact, Conversation, ConversationStatus, Message};
use omnihub_core::{
    AttachmentId, ChannelId, ChannelRights, ClientId, ConversationId, GroupId, MessageId,
    Principal, UserId, decide,
};
use omnihub_store::{ConversationFilter, ConversationPatch, ConversationSummary, StoreError};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::audit::page_limit;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::{Auth, Caller, ViewOwnClient, authenticate};
use crate::i18n::{Fields, Msg};
use crate::state::AppState;
use crate::ws::protocol::View;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/conversations", web::get().to(list_conversations))
        .route("/conversations/{id}", web::get().to(get_conversation))
        .route("/conversations/{id}", web::patch().to(update_conversation))
        .route("/conversations/{id}/messages", web::get().to(list_messages))
        .route("/conversations/{id}/messages", web::post().to(reply))
        .route("/conversations/{id}/notes", web::post().to(add_note))
        .route("/conversations/{id}/tags/{tag}", web::put().to(add_tag))
        .route(
            "/conversations/{id}/tags/{tag}",
            web::delete().to(remove_tag),
        )
        .route("/conversations/{id}/read", web::post().to(mark_read))
        .route("/search", web::get().to(search));
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_conversations,
    get_conversation,
    update_conversation,
    list_messages,
    reply,
    add_note,
    add_tag,
    remove_tag,
    mark_read,
    search
))]
pub struct Api;

/// Longest message or note text, in characters.
pub const MAX_TEXT_CHARS: usize = 10_000;
/// Longest idempotency key, in characters.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;
const MAX_TAG_CHARS: usize = 64;
const MAX_QUERY_CHARS: usize = 200;
const MAX_SEARCH_RESULTS: u32 = 50;

// ---------------------------------------------------------------------------------------------
// Visibility: shared with the WebSocket
// ---------------------------------------------------------------------------------------------

/// The facts of a conversation that visibility depends on.
pub fn scope_of(c: &Conversation) -> ConversationScope {
    ConversationScope {
        channel_id: c.channel_id,
        assignee_id: c.assignee_id,
        group_id: c.group_id,
    }
}

/// What an action on a conversation needs beyond seeing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Reading it, marking it read.
    See,
    /// Writing in it: replies, notes, typing, status, tags (REPLY on its channel).
    Write,
}

/// Loads a conversation of the caller's client that the caller may see, and checks `need`.
/// Another client's conversation, a missing one and an invisible one are all `NotFound`; a
/// visible one without the REPLY right for writing is `Forbidden`.
pub async fn visible_conversation(
    state: &AppState,
    who: &Principal,
    id: ConversationId,
    need: Need,
) -> ApiResult<Conversation> {
    let client = who.client_id.ok_or(ApiError::NotFound)?;
    let conversation = state.store.get_conversation(client, id).await?;
    if !may_see_in(who, conversation.client_id, &scope_of(&conversation)) {
        return Err(ApiError::NotFound);
    }
    if need == Need::Write {
        allow(
            who,
            Action::Channel(conversation.channel_id, ChannelRights::REPLY),
        )?;
    }
    Ok(conversation)
}

fn allow(who: &Principal, action: Action) -> ApiResult<()> {
    match decide(who, action) {
        Decision::Allow => Ok(()),
        Decision::Deny(denial) => Err(denial.into()),
    }
}

/// The channels whose conversations the caller reads: `None` for all of them (the owner).
pub fn readable_channels(who: &Principal) -> Option<Vec<ChannelId>> {
    if who.role == omnihub_core::Role::ClientOwner {
        return None;
    }
    Some(
        who.channels
            .iter()
            .filter(|(_, r)| r.contains(ChannelRights::READ))
            .map(|(c, _)| *c)
            .collect(),
    )
}

/// A compile-time [`Need`] for the extractor.
pub trait ConversationNeed {
    const NEED: Need;
}
/// Seeing the conversation.
pub struct Sees;
impl ConversationNeed for Sees {
    const NEED: Need = Need::See;
}
/// Writing in the conversation.
pub struct Writes;
impl ConversationNeed for Writes {
    const NEED: Need = Need::Write;
}

/// An authenticated member of a client and the conversation named by the `{id}` path segment,
/// which they may see (and, for `Writes`, write in).
pub struct InConversation<R> {
    pub caller: Caller,
    pub conversation: Conversation,
    _need: PhantomData<R>,
}

impl<R> InConversation<R> {
    pub fn client(&self) -> ClientId {
        self.conversation.client_id
    }
}

impl<R: ConversationNeed + 'static> FromRequest for InConversation<R> {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let caller = authenticate(&req).await?;
            allow(&caller.principal, Action::ViewOwnClient)?;
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::internal("application state missing"))?;
            let id: ConversationId = req
                .match_info()
                .get("id")
                .and_then(|s| s.parse().ok())
                .ok_or(ApiError::InvalidParameter(Msg::NotUuid { field: "id" }))?;
            let conversation = visible_conversation(state, &caller.principal, id, R::NEED).await?;
            Ok(InConversation {
                caller,
                conversation,
                _need: PhantomData,
            })
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Input checks
// ---------------------------------------------------------------------------------------------

/// A message text: trimmed of surrounding blank lines, 1 to `max` characters, no control
/// characters but line breaks and tabs (a customer reads it as typed).
pub fn message_text(field: &'static str, raw: &str, max: usize) -> ApiResult<String> {
    let t = raw.trim();
    let n = t.chars().count();
    let bad = |c: char| c.is_control() && !matches!(c, '\n' | '\r' | '\t');
    if n == 0 || n > max || t.chars().any(bad) {
        return Err(ApiError::Validation(Msg::MessageText { field, max }));
    }
    Ok(t.to_string())
}

pub fn idempotency_key(raw: &str) -> ApiResult<String> {
    Ok(omnihub_core::validate::text(
        "idempotency_key",
        raw,
        MAX_IDEMPOTENCY_KEY_CHARS,
    )?)
}

fn tag_text(raw: &str) -> ApiResult<String> {
    Ok(omnihub_core::validate::text("tag", raw, MAX_TAG_CHARS)?)
}

/// `Some(None)` for an explicit `null`, `None` when the field is absent.
fn double_option<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

// ---------------------------------------------------------------------------------------------
// Listing
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConversationQuery {
    /// `mine` (assigned to the caller), `unassigned`, `group:<id>` or `all` (the default):
    /// always within what the caller may see.
    pub view: Option<String>,
    pub status: Option<ConversationStatus>,
    /// Only conversations with this tag.
    pub tag: Option<String>,
    /// Only this channel's conversations.
    pub channel_id: Option<ChannelId>,
    /// The `next_before` of the previous page.
    pub before: Option<String>,
    /// 1 to 200 (larger values are clamped); 50 by default.
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct ConversationPage {
    /// Newest activity first.
    pub items: Vec<ConversationSummary>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<String>,
}

/// `<last_message_at in Unix ms>_<conversation id>`: the keyset of the list order.
pub fn cursor(s: &ConversationSummary) -> String {
    format!(
        "{}_{}",
        s.conversation.last_message_at.timestamp_millis(),
        s.conversation.id
    )
}

pub fn parse_cursor(raw: &str) -> ApiResult<(DateTime<Utc>, ConversationId)> {
    let bad = || ApiError::InvalidParameter(Msg::BadCursor { field: "before" });
    let (ms, id) = raw.split_once('_').ok_or_else(bad)?;
    let ms: i64 = ms.parse().map_err(|_| bad())?;
    let at = Utc.timestamp_millis_opt(ms).single().ok_or_else(bad)?;
    Ok((at, id.parse().map_err(|_| bad())?))
}

/// What `may_see` lets a restricted employee see, as a query: their own, their groups', and
/// the unassigned pool (callers post-filter with `may_see`, which drops other groups'
/// unassigned ones). Supervisors' filters stay as they are.
pub fn narrow_to_visible(filter: &mut ConversationFilter, who: &Principal) {
    if supervises(who) {
        return;
    }
    filter.assignee = Some(who.user_id);
    filter.unassigned = true;
    if !who.groups.is_empty() {
        filter.groups = Some(who.groups.clone());
    }
}

/// Conversations the caller may see, filtered by view, status, tag and channel.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "conversations", params(ConversationQuery),
    responses((status = 200, body = ConversationPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "the view's group or the channel is not the caller's", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_conversations(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    query: web::Query<ConversationQuery>,
) -> ApiResult<web::Json<ConversationPage>> {
    let client = caller.client_id()?;
    let who = &caller.principal;
    let q = query.into_inner();
    let limit = page_limit(q.limit);
    let view = match q.view.as_deref() {
        None | Some("") => View::All,
        Some(v) => View::parse(v).ok_or(ApiError::InvalidParameter(Msg::UnknownView))?,
    };
    if let View::Group(g) = view {
        state.store.get_group(client, g).await?;
    }
    let before = q.before.as_deref().map(parse_cursor).transpose()?;
    let tag = q.tag.as_deref().map(tag_text).transpose()?;
    let channels = match q.channel_id {
        Some(channel) => {
            allow(who, Action::Channel(channel, ChannelRights::READ))?;
            Some(vec![channel])
        }
        None => readable_channels(who),
    };
    let empty = ConversationPage {
        items: Vec::new(),
        next_before: None,
    };
    // Nothing delegated: nothing to list (and no `IN ()` to send to the database).
    if channels.as_ref().is_some_and(Vec::is_empty) {
        return Ok(web::Json(empty));
    }
    let mut filter = ConversationFilter {
        channels,
        status: q.status,
        tag,
        before,
        limit,
        ..Default::default()
    };
    match view {
        View::Mine => filter.assignee = Some(who.user_id),
        View::Unassigned => filter.unassigned = true,
        View::Group(g) => filter.groups = Some(vec![g]),
        View::All => narrow_to_visible(&mut filter, who),
    }
    let rows = state
        .store
        .list_conversations(client, Some(who.user_id), &filter)
        .await?;
    // The cursor follows the query's rows, not the visible ones, so no page skips a row.
    let next_before = if rows.len() >= limit as usize {
        rows.last().map(cursor)
    } else {
        None
    };
    let items = rows
        .into_iter()
        .filter(|s| may_see(who, &scope_of(&s.conversation)))
        .collect();
    Ok(web::Json(ConversationPage { items, next_before }))
}

/// A conversation with its contact and tags.
#[derive(Serialize, ToSchema)]
pub struct ConversationDetail {
    pub conversation: Conversation,
    pub contact: Contact,
    pub tags: Vec<String>,
}

#[utoipa::path(get, path = "/api/v1/conversations/{id}", tag = "conversations",
    params(("id" = ConversationId, Path, description = "conversation id")),
    responses((status = 200, body = ConversationDetail), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "not the client's, or not visible to the caller", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn get_conversation(
    state: web::Data<AppState>,
    access: InConversation<Sees>,
) -> ApiResult<web::Json<ConversationDetail>> {
    let c = access.conversation;
    let contact = state.store.get_contact(c.client_id, c.contact_id).await?;
    let tags = state.store.conversation_tags(c.client_id, c.id).await?;
    Ok(web::Json(ConversationDetail {
        conversation: c,
        contact,
        tags,
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessageQuery {
    /// The `next_after` of the previous page.
    pub after: Option<MessageId>,
    /// 1 to 200 (larger values are clamped); 50 by default.
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct MessagePage {
    /// Oldest first; internal notes included (`kind` = `note`).
    pub items: Vec<Message>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<MessageId>,
}

#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages", tag = "conversations",
    params(("id" = ConversationId, Path, description = "conversation id"), MessageQuery),
    responses((status = 200, body = MessagePage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_messages(
    state: web::Data<AppState>,
    access: InConversation<Sees>,
    query: web::Query<MessageQuery>,
) -> ApiResult<web::Json<MessagePage>> {
    let limit = page_limit(query.limit);
    let items = state
        .store
        .conversation_messages(access.client(), access.conversation.id, query.after, limit)
        .await?;
    let next_after = if items.len() >= limit as usize {
        items.last().map(|m| m.id)
    } else {
        None
    };
    Ok(web::Json(MessagePage { items, next_after }))
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// 1 to 10,000 characters; may be empty when the reply carries files.
    #[serde(default)]
    pub text: String,
    /// Makes a retried request the same message; required here or in the `Idempotency-Key`
    /// header (1 to 200 characters).
    pub idempotency_key: Option<String>,
    /// Files uploaded to this conversation (`POST …/attachments`) and not sent yet, sent with
    /// the reply in this order (at most 10). Replies only, not notes.
    #[serde(default)]
    pub attachment_ids: Vec<AttachmentId>,
}

/// Files one reply may carry.
pub const MAX_REPLY_ATTACHMENTS: usize = 10;

/// The key from the body or the `Idempotency-Key` header; both may be sent if they agree.
fn key_of(req: &HttpRequest, body: Option<&str>) -> ApiResult<String> {
    let header = match req.headers().get("idempotency-key") {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| {
            ApiError::Validation(Msg::TextLength {
                field: "idempotency_key",
                max: MAX_IDEMPOTENCY_KEY_CHARS,
            })
        })?),
    };
    let raw = match (header, body) {
        (Some(h), Some(b)) if h.trim() != b.trim() => {
            return Err(ApiError::Validation(Msg::IdempotencyKeyMismatch));
        }
        (Some(k), _) | (None, Some(k)) => k,
        (None, None) => return Err(ApiError::Validation(Msg::IdempotencyKeyRequired)),
    };
    idempotency_key(raw)
}

/// Sends a reply to the customer: committed as `pending` before the answer, then delivered by
/// the channel (statuses arrive as `message_status` events). The same idempotency key on the
/// same conversation returns the first message instead of sending twice.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages", tag = "conversations", request_body = NewMessage,
    params(("id" = ConversationId, Path, description = "conversation id"),
        ("Idempotency-Key" = Option<String>, Header, description = "alternative to `idempotency_key`")),
    responses((status = 201, body = Message), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "no `reply` right on the conversation's channel", body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn reply(
    req: HttpRequest,
    state: web::Data<AppState>,
    access: InConversation<Writes>,
    body: web::Json<NewMessage>,
) -> ApiResult<HttpResponse> {
    write(&req, &state, &access, body.into_inner(), false).await
}

/// Adds an internal note: seen by employees, never sent to the customer.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/notes", tag = "conversations", request_body = NewMessage,
    params(("id" = ConversationId, Path, description = "conversation id"),
        ("Idempotency-Key" = Option<String>, Header, description = "alternative to `idempotency_key`")),
    responses((status = 201, body = Message), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "no `reply` right on the conversation's channel", body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn add_note(
    req: HttpRequest,
    state: web::Data<AppState>,
    access: InConversation<Writes>,
    body: web::Json<NewMessage>,
) -> ApiResult<HttpResponse> {
    write(&req, &state, &access, body.into_inner(), true).await
}

async fn write(
    req: &HttpRequest,
    state: &AppState,
    access: &InConversation<Writes>,
    body: NewMessage,
    note: bool,
) -> ApiResult<HttpResponse> {
    let files = body.attachment_ids;
    if files.len() > MAX_REPLY_ATTACHMENTS || (note && !files.is_empty()) {
        return Err(ApiError::Validation(Msg::ReplyAttachments {
            max: MAX_REPLY_ATTACHMENTS,
        }));
    }
    let mut unique = files.clone();
    unique.sort();
    unique.dedup();
    if unique.len() != files.len() {
        return Err(ApiError::Validation(Msg::ReplyAttachments {
            max: MAX_REPLY_ATTACHMENTS,
        }));
    }
    let text = if files.is_empty() || !body.text.trim().is_empty() {
        message_text("text", &body.text, MAX_TEXT_CHARS)?
    } else {
        String::new()
    };
    let key = key_of(req, body.idempotency_key.as_deref())?;
    let message = post_message(
        state,
        &access.caller,
        &access.conversation,
        text,
        key,
        note,
        files,
    )
    .await?;
    Ok(HttpResponse::Created().json(message))
}

/// Commits a reply or a note through the hub and audits it; shared with the WebSocket.
pub async fn post_message(
    state: &AppState,
    caller: &Caller,
    conversation: &Conversation,
    text: String,
    key: String,
    note: bool,
    attachments: Vec<AttachmentId>,
) -> ApiResult<Message> {
    let client = conversation.client_id;
    let author = caller.principal.user_id;
    let has_files = !attachments.is_empty();
    let message = if note {
        state
            .hub
            .add_note(client, conversation.id, author, text, key)
            .await?
    } else {
        state
            .hub
            .send_reply_with_attachments(client, conversation.id, author, text, key, attachments)
            .await
            .map_err(|err| match err {
                HubError::Store(StoreError::NotFound) if has_files => {
                    ApiError::Validation(Msg::UnknownAttachment)
                }
                HubError::Store(StoreError::Conflict("attachment")) => {
                    ApiError::Validation(Msg::AttachmentAlreadySent)
                }
                other => other.into(),
            })?
    };
    state
        .audit(caller.audit(
            Some(client),
            if note {
                "conversation.note"
            } else {
                "conversation.reply"
            },
            "conversation",
            conversation.id,
            json!({ "message_id": message.id }),
        ))
        .await?;
    Ok(message)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversationUpdate {
    /// `operator_may_set` decides which moves are allowed by hand (e.g. not back to `new`).
    pub status: Option<ConversationStatus>,
    /// Required with status `snoozed`: a future moment when the conversation wakes up.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<DateTime<Utc>>, nullable)]
    pub snoozed_until: Option<Option<DateTime<Utc>>>,
    /// Take (yourself, while unassigned), assign, transfer or, with `null`, release. Anything
    /// but taking an unassigned conversation needs the owner or `all_conversations`.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<UserId>, nullable)]
    pub assignee_id: Option<Option<UserId>>,
    /// Transfer to a group (`null`: out of any group); owner or `all_conversations` only.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<GroupId>, nullable)]
    pub group_id: Option<Option<GroupId>>,
}

/// Changes status, snooze, assignee or group.
#[utoipa::path(patch, path = "/api/v1/conversations/{id}", tag = "conversations", request_body = ConversationUpdate,
    params(("id" = ConversationId, Path, description = "conversation id")),
    responses((status = 200, body = Conversation), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "no `reply` right, or a reassignment without supervision rights", body = ErrorBody),
        (status = 404, description = "the conversation, assignee or group is not the client's", body = ErrorBody),
        (status = 409, description = "a status move not allowed by hand, or someone else took it first", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn update_conversation(
    state: web::Data<AppState>,
    access: InConversation<Sees>,
    body: web::Json<ConversationUpdate>,
) -> ApiResult<web::Json<Conversation>> {
    let body = body.into_inner();
    let who = &access.caller.principal;
    let c = &access.conversation;
    let client = c.client_id;
    let scope = scope_of(c);
    if body.status.is_none()
        && body.snoozed_until.is_none()
        && body.assignee_id.is_none()
        && body.group_id.is_none()
    {
        return Err(ApiError::Validation(Msg::NothingToChange {
            fields: Fields(&["status", "snoozed_until", "assignee_id", "group_id"]),
        }));
    }
    let mut patch = ConversationPatch::default();

    if body.status.is_some() || body.snoozed_until.is_some() {
        allow(who, Action::Channel(c.channel_id, ChannelRights::REPLY))?;
        let Some(to) = body.status else {
            return Err(ApiError::Validation(Msg::SnoozeUntil));
        };
        if !operator_may_set(c.status, to) {
            return Err(ApiError::Conflict(Msg::StatusTransition {
                from: c.status.as_str(),
                to: to.as_str(),
            }));
        }
        patch.status = Some(to);
        patch.snoozed_until = match (to, body.snoozed_until) {
            (ConversationStatus::Snoozed, Some(Some(until)))
                if snooze_until_valid(Utc::now(), until) =>
            {
                Some(Some(until))
            }
            (ConversationStatus::Snoozed, _) | (_, Some(Some(_))) => {
                return Err(ApiError::Validation(Msg::SnoozeUntil));
            }
            // Leaving `snoozed` clears the wake-up time.
            _ if c.snoozed_until.is_some() => Some(None),
            _ => None,
        };
    }

    if let Some(new) = body.assignee_id {
        if !may_assign(who, &scope, new) {
            return Err(ApiError::Forbidden);
        }
        if let Some(user) = new
            && Some(user) != c.assignee_id
        {
            assignee_sees(&state, client, user, &scope).await?;
        }
        // An operator taking a conversation must not take it from someone who got there first.
        patch.only_if_unassigned = !supervises(who) && new.is_some() && c.assignee_id.is_none();
        patch.assignee_id = Some(new);
    }

    if let Some(group) = body.group_id {
        if group != c.group_id {
            if !(supervises(who) && may_see(who, &scope)) {
                return Err(ApiError::Forbidden);
            }
            if let Some(g) = group {
                state.store.get_group(client, g).await?;
            }
        }
        patch.group_id = Some(group);
    }

    let updated = state
        .hub
        .update_conversation(client, c.id, patch)
        .await
        .map_err(|e| match e {
            HubError::Store(StoreError::Conflict(_)) => ApiError::Conflict(Msg::AlreadyAssigned),
            other => other.into(),
        })?;
    state
        .audit(access.caller.audit(
            Some(client),
            "conversation.update",
            "conversation",
            c.id,
            json!({
                "status": body.status,
                "snoozed_until": body.snoozed_until,
                "assignee_id": body.assignee_id,
                "group_id": body.group_id,
            }),
        ))
        .await?;
    Ok(web::Json(updated))
}

/// The new assignee must be a user of the client who would see the conversation once it is
/// theirs; otherwise it would vanish from everyone's view but a supervisor's.
async fn assignee_sees(
    state: &AppState,
    client: ClientId,
    user: UserId,
    scope: &ConversationScope,
) -> ApiResult<()> {
    state.store.get_client_user(client, user).await?;
    let theirs = ConversationScope {
        assignee_id: Some(user),
        ..*scope
    };
    match state.load_principal(user).await? {
        Some(p) if may_see(&p, &theirs) => Ok(()),
        _ => Err(ApiError::Validation(Msg::AssigneeCannotSee)),
    }
}

#[derive(Serialize, ToSchema)]
pub struct TagList {
    pub tags: Vec<String>,
}

/// Tags the conversation (idempotent).
#[utoipa::path(put, path = "/api/v1/conversations/{id}/tags/{tag}", tag = "conversations",
    params(("id" = ConversationId, Path, description = "conversation id"),
        ("tag" = String, Path, description = "1 to 64 characters")),
    responses((status = 200, body = TagList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn add_tag(
    state: web::Data<AppState>,
    access: InConversation<Writes>,
    path: web::Path<(ConversationId, String)>,
) -> ApiResult<web::Json<TagList>> {
    let tag = tag_text(&path.1)?;
    let client = access.client();
    let id = access.conversation.id;
    state.hub.add_tag(client, id, &tag).await?;
    state
        .audit(access.caller.audit(
            Some(client),
            "conversation.tag_add",
            "conversation",
            id,
            json!({ "tag": tag }),
        ))
        .await?;
    let tags = state.store.conversation_tags(client, id).await?;
    Ok(web::Json(TagList { tags }))
}

/// Removes a tag (a tag the conversation does not have is 404).
#[utoipa::path(delete, path = "/api/v1/conversations/{id}/tags/{tag}", tag = "conversations",
    params(("id" = ConversationId, Path, description = "conversation id"),
        ("tag" = String, Path, description = "the tag")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn remove_tag(
    state: web::Data<AppState>,
    access: InConversation<Writes>,
    path: web::Path<(ConversationId, String)>,
) -> ApiResult<HttpResponse> {
    let tag = tag_text(&path.1)?;
    let client = access.client();
    let id = access.conversation.id;
    state.hub.remove_tag(client, id, &tag).await?;
    state
        .audit(access.caller.audit(
            Some(client),
            "conversation.tag_remove",
            "conversation",
            id,
            json!({ "tag": tag }),
        ))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadMark {
    /// The newest message the caller has read.
    pub message_id: MessageId,
}

/// Marks the conversation read up to a message, for the caller; unread counters follow.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/read", tag = "conversations", request_body = ReadMark,
    params(("id" = ConversationId, Path, description = "conversation id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "the conversation, or the message in it, does not exist for the caller", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn mark_read(
    state: web::Data<AppState>,
    access: InConversation<Sees>,
    body: web::Json<ReadMark>,
) -> ApiResult<HttpResponse> {
    mark(
        &state,
        &access.caller,
        &access.conversation,
        body.message_id,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Records a read mark through the hub and audits it; shared with the WebSocket.
pub async fn mark(
    state: &AppState,
    caller: &Caller,
    conversation: &Conversation,
    message: MessageId,
) -> ApiResult<()> {
    let client = conversation.client_id;
    state
        .hub
        .mark_read(client, conversation.id, caller.principal.user_id, message)
        .await?;
    state
        .audit(caller.audit(
            Some(client),
            "conversation.read",
            "conversation",
            conversation.id,
            json!({ "message_id": message }),
        ))
        .await
}

// ---------------------------------------------------------------------------------------------
// Search
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words to find, 1 to 200 characters.
    pub q: String,
    /// 1 to 50 (larger values are clamped); 50 by default.
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct SearchResults {
    /// Newest first; only messages of conversations the caller may see.
    pub items: Vec<Message>,
}

/// Full-text search over the history of the conversations the caller may see.
#[utoipa::path(get, path = "/api/v1/search", tag = "conversations", params(SearchQuery),
    responses((status = 200, body = SearchResults), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn search(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    query: web::Query<SearchQuery>,
) -> ApiResult<web::Json<SearchResults>> {
    let client = caller.client_id()?;
    let who = &caller.principal;
    let q = omnihub_core::validate::text("q", &query.q, MAX_QUERY_CHARS)?;
    let limit = page_limit(query.limit).min(MAX_SEARCH_RESULTS);
    let channels = readable_channels(who);
    if channels.as_ref().is_some_and(Vec::is_empty) {
        return Ok(web::Json(SearchResults { items: Vec::new() }));
    }
    let found = state
        .store
        .search_messages(client, channels.as_deref(), &q, limit)
        .await?;
    // A channel reader may still be restricted to their own and their groups' conversations.
    let mut seen: HashMap<ConversationId, bool> = HashMap::new();
    let mut items = Vec::with_capacity(found.len());
    for m in found {
        let visible = match seen.get(&m.conversation_id) {
            Some(v) => *v,
            None => {
                let v = match state
                    .store
                    .get_conversation(client, m.conversation_id)
                    .await
                {
                    Ok(c) => may_see(who, &scope_of(&c)),
                    Err(StoreError::NotFound) => false,
                    Err(e) => return Err(e.into()),
                };
                seen.insert(m.conversation_id, v);
                v
            }
        };
        if visible {
            items.push(m);
        }
    }
    Ok(web::Json(SearchResults { items }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn message_texts_keep_line_breaks_and_refuse_other_controls() {
        assert_eq!(
            message_text("text", "  hello\nworld\t! \n", 100).unwrap(),
            "hello\nworld\t!"
        );
        for bad in ["", "   \n ", "bell\u{7}", "nul\0"] {
            assert!(message_text("text", bad, 100).is_err(), "{bad:?}");
        }
        assert!(message_text("text", &"x".repeat(101), 100).is_err());
        assert!(message_text("text", &"я".repeat(100), 100).is_ok());
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let id = ConversationId::new();
        let at = Utc
            .timestamp_millis_opt(1_700_000_000_123)
            .single()
            .unwrap();
        let raw = format!("{}_{id}", at.timestamp_millis());
        assert_eq!(parse_cursor(&raw).unwrap(), (at, id));
        for bad in ["", "_", "12", "x_y", &format!("x_{id}"), "12_nope"] {
            assert!(parse_cursor(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn double_option_tells_null_from_absent() {
        let absent: ConversationUpdate = serde_json::from_str("{}").unwrap();
        assert_eq!(absent.assignee_id, None);
        let null: ConversationUpdate = serde_json::from_str(r#"{"assignee_id":null}"#).unwrap();
        assert_eq!(null.assignee_id, Some(None));
        let id = UserId::new();
        let set: ConversationUpdate =
            serde_json::from_str(&format!(r#"{{"assignee_id":"{id}"}}"#)).unwrap();
        assert_eq!(set.assignee_id, Some(Some(id)));
        assert!(serde_json::from_str::<ConversationUpdate>(r#"{"owner":1}"#).is_err());
    }
}
