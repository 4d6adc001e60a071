//! The public chat API of a widget, `/api/v1/public/widgets/{public_key}/…`: its configuration,
//! creating a visitor, sending and reading the visitor's messages, the offline form. Every
//! route checks the page's origin against the widget's allow-list (`super::public_widget`);
//! every route but `config` and `visitors` acts as the visitor whose token it carries, on that
//! visitor's own conversation only.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use omnihub_core::AttachmentId;
use omnihub_core::media::{
    AttachmentKind, AttachmentState, check_upload_type, sniff_type, type_allowed,
};
use omnihub_core::model::{DeliveryStatus, Direction, Message, MessageKind};
use omnihub_core::routing::Presence;
use omnihub_core::{ClientId, MessageId, UserId, validate};
use omnihub_store::{
    InboundEvent, Ingest, NewInboundAttachment, NewVisitor, StoreError, StoredFile, Visitor,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::settings::{
    Appearance, AttachmentRules, FieldKind, Messengers, OfflineForm, PrechatForm,
};
use super::{PublicWidget, VISITOR_TOKEN_PREFIX, bearer, public_widget, visitor_of};
use crate::auth::tokens;
use crate::http::error::{ApiError, ApiResult, ErrorBody, request_lang};
use crate::http::routes::attachments::{DownloadQuery, receive_file, serve_file};
use crate::http::routes::conversations::{MAX_TEXT_CHARS, message_text};
use crate::i18n::Msg;
use crate::state::AppState;

/// History pages hold at most this many messages.
pub const MAX_PAGE: u32 = 100;
const MAX_NAME_CHARS: usize = 100;
const MAX_CLIENT_MESSAGE_ID_CHARS: usize = 100;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/{public_key}/config", web::get().to(widget_config))
        .route("/{public_key}/visitors", web::post().to(create_visitor))
        .route("/{public_key}/messages", web::get().to(visitor_history))
        .route("/{public_key}/messages", web::post().to(send_message))
        .route("/{public_key}/offline", web::post().to(offline_message))
        .route("/{public_key}/callbacks", web::post().to(request_callback))
        .route("/{public_key}/attachments", web::post().to(send_file))
        .route(
            "/{public_key}/attachments/{attachment_id}",
            web::get().to(download_file),
        )
        .route(
            "/{public_key}/ws",
            web::get().to(super::socket::visitor_socket),
        )
        .route(
            "/{public_key}/{tail:.*}",
            web::method(actix_web::http::Method::OPTIONS).to(preflight),
        );
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    widget_config,
    create_visitor,
    visitor_history,
    send_message,
    offline_message,
    request_callback,
    send_file,
    download_file,
    preflight,
    super::socket::visitor_socket
))]
pub struct Api;

/// What a widget needs to draw itself.
#[derive(Serialize, ToSchema)]
pub struct PublicConfig {
    pub appearance: Appearance,
    pub prechat: PrechatForm,
    pub offline: OfflineForm,
    pub messengers: Messengers,
    /// Whether an operator of the client is online now; the widget shows the offline form
    /// (when enabled) otherwise.
    pub online: bool,
    /// Whether the client has telephony connected: the widget then offers "call me back".
    pub callback: bool,
    /// Files visitors may attach; `max_bytes` is the limit in force (the server's own limit
    /// applied).
    pub attachments: AttachmentRules,
}

/// The widget's configuration for drawing it.
#[utoipa::path(get, path = "/api/v1/public/widgets/{public_key}/config", tag = "widget",
    params(("public_key" = String, Path, description = "the widget's public key")),
    responses((status = 200, body = PublicConfig),
        (status = 403, description = "`origin_not_allowed`", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn widget_config(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<web::Json<PublicConfig>> {
    let widget = public_widget(&state, &req, &path).await?;
    let online = state
        .store
        .routing_snapshot(widget.channel.client_id)
        .await?
        .operators
        .iter()
        .any(|o| o.presence == Presence::Online);
    let callback = state
        .store
        .list_channels(widget.channel.client_id)
        .await?
        .iter()
        .any(|c| omnihub_connectors::telephony::is_telephony(c.provider));
    let s = widget.settings;
    let mut attachments = s.attachments;
    attachments.max_bytes = upload_limit(&state, &attachments);
    Ok(web::Json(PublicConfig {
        appearance: s.appearance,
        prechat: s.prechat,
        offline: s.offline,
        messengers: s.messengers,
        online,
        callback,
        attachments,
    }))
}

/// The pre-chat form's answers (each optional unless the widget requires it).
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVisitorRequest {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct NewVisitorAnswer {
    pub visitor_id: uuid::Uuid,
    /// The visitor's secret (`omv_` + 256 random bits): sent as `Authorization: Bearer` and in
    /// the WebSocket's `hello`. Shown once; keep it (the widget keeps it in localStorage).
    pub token: String,
}

fn phone(raw: &str) -> Option<String> {
    let t = raw.trim();
    let digits = t.chars().filter(char::is_ascii_digit).count();
    let ok = (5..=20).contains(&digits)
        && t.len() <= 30
        && t.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')'));
    ok.then(|| t.to_string())
}

/// Checks the answers against the widget's form: a required field must be there; every given
/// one must be well-formed. Answers to fields the form does not ask are refused.
fn prechat_details(
    form: &PrechatForm,
    body: &NewVisitorRequest,
) -> ApiResult<(Option<String>, Map<String, Value>)> {
    let asked = |kind: FieldKind| form.enabled && form.fields.iter().any(|f| f.field == kind);
    let required =
        |kind: FieldKind| form.enabled && form.fields.iter().any(|f| f.field == kind && f.required);
    let mut details = Map::new();
    let mut name = None;
    let given = [
        (FieldKind::Name, "name", &body.name),
        (FieldKind::Email, "email", &body.email),
        (FieldKind::Phone, "phone", &body.phone),
    ];
    for (kind, field, value) in given {
        let value = value.as_deref().map(str::trim).filter(|v| !v.is_empty());
        match value {
            None if required(kind) => {
                return Err(ApiError::Validation(Msg::PrechatFieldRequired { field }));
            }
            None => {}
            Some(_) if !asked(kind) => {
                return Err(ApiError::Validation(Msg::PrechatFieldInvalid { field }));
            }
            Some(v) => {
                let bad = || ApiError::Validation(Msg::PrechatFieldInvalid { field });
                let clean = match kind {
                    FieldKind::Name => {
                        validate::text("name", v, MAX_NAME_CHARS).map_err(|_| bad())?
                    }
                    FieldKind::Email => validate::email(v).map_err(|_| bad())?,
                    FieldKind::Phone => phone(v).ok_or_else(bad)?,
                };
                if kind == FieldKind::Name {
                    name = Some(clean.clone());
                }
                details.insert(field.to_string(), Value::String(clean));
            }
        }
    }
    Ok((name, details))
}

/// Creates a visitor: the widget's pre-chat answers and a fresh token.
#[utoipa::path(post, path = "/api/v1/public/widgets/{public_key}/visitors", tag = "widget",
    request_body = NewVisitorRequest,
    params(("public_key" = String, Path, description = "the widget's public key")),
    responses((status = 201, body = NewVisitorAnswer), (status = 400, body = ErrorBody),
        (status = 403, description = "`origin_not_allowed`", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn create_visitor(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<NewVisitorRequest>,
) -> ApiResult<HttpResponse> {
    let widget = public_widget(&state, &req, &path).await?;
    let (name, details) = prechat_details(&widget.settings.prechat, &body)?;
    let token = format!("{VISITOR_TOKEN_PREFIX}{}", tokens::random_secret());
    let visitor = state
        .store
        .create_visitor(&NewVisitor {
            client_id: widget.channel.client_id,
            channel_id: widget.channel.id,
            token_hash: tokens::hash(&token),
            name: name.unwrap_or_default(),
            details: Value::Object(details),
        })
        .await?;
    Ok(HttpResponse::Created().json(NewVisitorAnswer {
        visitor_id: visitor.id,
        token,
    }))
}

/// Who wrote a message, as the visitor sees it.
#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sender {
    Visitor,
    Operator,
    /// An automatic reply.
    Bot,
}

#[derive(Clone, Serialize, ToSchema)]
pub struct OperatorView {
    pub id: UserId,
    pub name: String,
}

/// A message of the visitor's conversation.
#[derive(Clone, Serialize, ToSchema)]
pub struct PublicMessage {
    pub id: MessageId,
    pub from: Sender,
    pub text: String,
    /// Visitor's messages: `received`; operators': `pending`, `sent`, `delivered`, `read` or
    /// `failed`.
    pub status: DeliveryStatus,
    pub created_at: DateTime<Utc>,
    /// The id the visitor's widget gave the message.
    pub client_message_id: Option<String>,
    /// Who answered (operators' messages).
    pub operator: Option<OperatorView>,
    /// Files of the message, in order; a `ready` one is fetched from
    /// `GET …/attachments/{id}` with the visitor's token.
    pub attachments: Vec<PublicAttachment>,
}

/// A file of a message, as the visitor sees it.
#[derive(Clone, Serialize, ToSchema)]
pub struct PublicAttachment {
    pub id: AttachmentId,
    pub kind: AttachmentKind,
    /// The sender's file name: text, never markup.
    pub file_name: String,
    pub mime_type: String,
    pub size: Option<i64>,
    pub state: AttachmentState,
}

/// Operators' names, looked up once per user.
#[derive(Default)]
pub struct Names(HashMap<UserId, Option<OperatorView>>);

impl Names {
    pub async fn get(
        &mut self,
        state: &AppState,
        client: ClientId,
        user: UserId,
    ) -> ApiResult<Option<OperatorView>> {
        if let Some(found) = self.0.get(&user) {
            return Ok(found.clone());
        }
        let found = match state.store.get_client_user(client, user).await {
            Ok(u) => Some(OperatorView {
                id: u.id,
                name: u.display_name,
            }),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        self.0.insert(user, found.clone());
        Ok(found)
    }
}

/// The visitor's view of a message; `None` for what visitors never see (notes).
pub async fn public_message(
    state: &AppState,
    names: &mut Names,
    visitor: uuid::Uuid,
    m: &Message,
) -> ApiResult<Option<PublicMessage>> {
    let (from, operator) = match (m.direction, m.kind) {
        (_, MessageKind::Note) => return Ok(None),
        (Direction::Inbound, _) => (Sender::Visitor, None),
        (Direction::Outbound, MessageKind::AutoReply) => (Sender::Bot, None),
        (Direction::Outbound, _) => (
            Sender::Operator,
            match m.author_id {
                Some(a) => names.get(state, m.client_id, a).await?,
                None => None,
            },
        ),
    };
    let prefix = format!("{visitor}:");
    Ok(Some(PublicMessage {
        id: m.id,
        from,
        text: m.text.clone(),
        status: m.status,
        created_at: m.created_at,
        client_message_id: m
            .provider_event_id
            .as_deref()
            .and_then(|p| p.strip_prefix(&prefix))
            .map(str::to_string),
        operator,
        attachments: m
            .attachments
            .iter()
            .map(|a| PublicAttachment {
                id: a.id,
                kind: a.kind,
                file_name: a.file_name.clone(),
                mime_type: a.mime_type.clone(),
                size: a.size,
                state: a.state,
            })
            .collect(),
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Only messages after this one (keyset; oldest first).
    pub after: Option<MessageId>,
    /// At most this many (1–100, default 100).
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct History {
    pub items: Vec<PublicMessage>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<MessageId>,
}

/// The visitor's conversation, oldest first. Operators' messages the visitor had not received
/// yet count as delivered now.
#[utoipa::path(get, path = "/api/v1/public/widgets/{public_key}/messages", tag = "widget",
    params(("public_key" = String, Path, description = "the widget's public key"), HistoryQuery),
    responses((status = 200, body = History), (status = 400, body = ErrorBody),
        (status = 401, description = "`visitor_unknown`", body = ErrorBody),
        (status = 403, description = "`origin_not_allowed`", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("visitor_token" = [])))]
pub async fn visitor_history(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<HistoryQuery>,
) -> ApiResult<web::Json<History>> {
    let widget = public_widget(&state, &req, &path).await?;
    let visitor = visitor_of(&state, &widget, bearer(&req)).await?;
    let limit = query.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let client = widget.channel.client_id;
    let Some(conversation) = state
        .store
        .conversation_by_external_id(client, widget.channel.id, &visitor.id.to_string())
        .await?
    else {
        return Ok(web::Json(History {
            items: Vec::new(),
            next_after: None,
        }));
    };
    let page = match state
        .store
        .conversation_messages(client, conversation, query.after, limit)
        .await
    {
        Ok(page) => page,
        // A cursor of another conversation names nothing here.
        Err(StoreError::NotFound) => {
            return Err(ApiError::InvalidParameter(Msg::InvalidQueryParameter {
                detail: "after".into(),
            }));
        }
        Err(e) => return Err(e.into()),
    };
    let next_after = (page.len() as u32 == limit)
        .then(|| page.last().map(|m| m.id))
        .flatten();
    let mut names = Names::default();
    let mut items = Vec::with_capacity(page.len());
    for m in &page {
        if m.direction == Direction::Outbound && m.status == DeliveryStatus::Sent {
            state
                .hub
                .message_receipt(client, m.id, DeliveryStatus::Delivered)
                .await?;
        }
        if let Some(p) = public_message(&state, &mut names, visitor.id, m).await? {
            items.push(p);
        }
    }
    Ok(web::Json(History { items, next_after }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVisitorMessage {
    /// The widget's own id for this message (1–100 characters): sending it again (a retry
    /// after a lost answer) returns the first message and creates nothing.
    pub client_message_id: String,
    /// 1 to 10,000 characters.
    pub text: String,
}

#[derive(Serialize, ToSchema)]
pub struct SentAnswer {
    pub message: PublicMessage,
    /// True when this `client_message_id` was sent before: nothing new was created.
    pub duplicate: bool,
}

/// Puts a visitor's message through the same inbound path as any channel's (commit, the
/// conversation, routing, the operators' sockets), deduplicated on its client message id.
pub async fn ingest_visitor_message(
    state: &AppState,
    req_lang: crate::i18n::Lang,
    widget: &PublicWidget,
    visitor: &Visitor,
    client_message_id: &str,
    text: String,
) -> ApiResult<SentAnswer> {
    state.widget_limits.message(visitor.id)?;
    ingest_within_limits(
        state,
        req_lang,
        widget,
        visitor,
        client_message_id,
        text,
        Vec::new(),
    )
    .await
}

/// [`ingest_visitor_message`] once the visitor's message limit was checked, with the files
/// the message carries.
async fn ingest_within_limits(
    state: &AppState,
    req_lang: crate::i18n::Lang,
    widget: &PublicWidget,
    visitor: &Visitor,
    client_message_id: &str,
    text: String,
    attachments: Vec<NewInboundAttachment>,
) -> ApiResult<SentAnswer> {
    let client_message_id = validate::text(
        "client_message_id",
        client_message_id,
        MAX_CLIENT_MESSAGE_ID_CHARS,
    )?;
    let short: String = visitor
        .id
        .simple()
        .to_string()
        .chars()
        .rev()
        .take(4)
        .collect();
    let contact_name = if visitor.name.is_empty() {
        Msg::WidgetVisitorName { short }.render(req_lang)
    } else {
        visitor.name.clone()
    };
    let event = InboundEvent {
        client_id: widget.channel.client_id,
        channel_id: widget.channel.id,
        external_conversation_id: visitor.id.to_string(),
        external_user_id: visitor.id.to_string(),
        contact_name,
        provider_event_id: format!("{}:{client_message_id}", visitor.id),
        text,
        attachments,
    };
    let client = widget.channel.client_id;
    let (message, duplicate) = match state.hub.ingest(event).await? {
        Ingest::New {
            message,
            conversation,
            returning_customer,
            ..
        } => {
            // The pre-chat answers become the contact's fields the first time.
            if !returning_customer && visitor.details.as_object().is_some_and(|d| !d.is_empty()) {
                state
                    .store
                    .update_contact(
                        client,
                        conversation.contact_id,
                        None,
                        Some(&visitor.details),
                    )
                    .await?;
            }
            (message, false)
        }
        Ingest::Duplicate(id) => {
            let conversation = state
                .store
                .conversation_by_external_id(client, widget.channel.id, &visitor.id.to_string())
                .await?
                .ok_or(ApiError::NotFound)?;
            let found = find_message(state, client, conversation, id).await?;
            (found, true)
        }
    };
    let message = public_message(state, &mut Names::default(), visitor.id, &message)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(SentAnswer { message, duplicate })
}

/// One message of a conversation by id (a duplicate's first copy). Conversations of a widget
/// are short; the pages are read until it turns up.
async fn find_message(
    state: &AppState,
    client: ClientId,
    conversation: omnihub_core::ConversationId,
    id: MessageId,
) -> ApiResult<Message> {
    let mut after = None;
    loop {
        let page = state
            .store
            .conversation_messages(client, conversation, after, 500)
            .await?;
        if let Some(m) = page.iter().find(|m| m.id == id) {
            return Ok(m.clone());
        }
        match page.last() {
            Some(last) if page.len() == 500 => after = Some(last.id),
            _ => return Err(ApiError::NotFound),
        }
    }
}

/// Sends a visitor's message.
#[utoipa::path(post, path = "/api/v1/public/widgets/{public_key}/messages", tag = "widget",
    request_body = NewVisitorMessage,
    params(("public_key" = String, Path, description = "the widget's public key")),
    responses((status = 201, description = "committed", body = SentAnswer),
        (status = 200, description = "a repeated `client_message_id`: the first message", body = SentAnswer),
        (status = 400, body = ErrorBody),
        (status = 401, description = "`visitor_unknown`", body = ErrorBody),
        (status = 403, description = "`origin_not_allowed`", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("visitor_token" = [])))]
pub async fn send_message(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<NewVisitorMessage>,
) -> ApiResult<HttpResponse> {
    let widget = public_widget(&state, &req, &path).await?;
    let visitor = visitor_of(&state, &widget, bearer(&req)).await?;
    let text = message_text("text", &body.text, MAX_TEXT_CHARS)?;
    let answer = ingest_visitor_message(
        &state,
        request_lang(),
        &widget,
        &visitor,
        &body.client_message_id,
        text,
    )
    .await?;
    Ok(sent(answer))
}

/// 201 with a new message; 200 with the first one when the client message id came before.
fn sent(answer: SentAnswer) -> HttpResponse {
    if answer.duplicate {
        HttpResponse::Ok().json(answer)
    } else {
        HttpResponse::Created().json(answer)
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfflineRequest {
    pub client_message_id: String,
    pub name: Option<String>,
    /// An e-mail or a phone is needed to answer.
    pub email: Option<String>,
    pub phone: Option<String>,
    pub text: String,
}

/// The offline form: a message with the visitor's contacts, into the inbox like any other
/// (operators answer when back, in the widget or by the contacts given).
#[utoipa::path(post, path = "/api/v1/public/widgets/{public_key}/offline", tag = "widget",
    request_body = OfflineRequest,
    params(("public_key" = String, Path, description = "the widget's public key")),
    responses((status = 201, body = SentAnswer), (status = 200, description = "a repeated `client_message_id`", body = SentAnswer),
        (status = 400, body = ErrorBody),
        (status = 401, description = "`visitor_unknown`", body = ErrorBody),
        (status = 403, description = "`origin_not_allowed`", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("visitor_token" = [])))]
pub async fn offline_message(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<OfflineRequest>,
) -> ApiResult<HttpResponse> {
    let widget = public_widget(&state, &req, &path).await?;
    let visitor = visitor_of(&state, &widget, bearer(&req)).await?;
    let body = body.into_inner();
    let text = message_text("text", &body.text, MAX_TEXT_CHARS)?;
    let opt = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let name = opt(&body.name)
        .map(|n| validate::text("name", &n, MAX_NAME_CHARS))
        .transpose()?;
    let email = opt(&body.email).map(|e| validate::email(&e)).transpose()?;
    let phone = match opt(&body.phone) {
        Some(p) => Some(
            phone(&p).ok_or(ApiError::Validation(Msg::PrechatFieldInvalid {
                field: "phone",
            }))?,
        ),
        None => None,
    };
    if email.is_none() && phone.is_none() {
        return Err(ApiError::Validation(Msg::PrechatFieldRequired {
            field: "email",
        }));
    }
    // The contacts head the message: operators read them first.
    let head: Vec<String> = [name, email, phone].into_iter().flatten().collect();
    let text = format!("✉ {}\n{text}", head.join(" · "));
    let answer = ingest_visitor_message(
        &state,
        request_lang(),
        &widget,
        &visitor,
        &body.client_message_id,
        text,
    )
    .await?;
    Ok(sent(answer))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackAsk {
    /// The visitor's phone number, E.164 or national in the telephony's default region.
    pub number: String,
    /// The captcha's answer, when the server checks one (`[callback]`).
    pub captcha_token: Option<String>,
}

/// What a visitor learns of the call-back asked for: it is being placed; its outcome shows
/// in the conversation.
#[derive(Serialize, ToSchema)]
pub struct CallbackAnswer {
    pub id: omnihub_core::CallId,
}

/// "Call me back": the client's telephony calls its operator, then bridges the visitor's
/// number. Within the telephony's working hours, limits per number, address and visitor, and
/// the captcha when one is configured. The attempt and its outcome show in the visitor's
/// conversation (or, before the visitor wrote, in a conversation of the telephony channel).
#[utoipa::path(post, path = "/api/v1/public/widgets/{public_key}/callbacks", tag = "widget",
    request_body = CallbackAsk,
    params(("public_key" = String, Path, description = "the widget's public key")),
    responses((status = 202, body = CallbackAnswer),
        (status = 400, description = "not a phone number", body = ErrorBody),
        (status = 401, description = "`visitor_unknown`", body = ErrorBody),
        (status = 403, description = "`origin_not_allowed`, `captcha_failed`", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`out_of_hours`, or no telephony connected", body = ErrorBody),
        (status = 429, body = ErrorBody)),
    security(("visitor_token" = [])))]
pub async fn request_callback(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<CallbackAsk>,
) -> ApiResult<HttpResponse> {
    let widget = public_widget(&state, &req, &path).await?;
    let visitor = visitor_of(&state, &widget, bearer(&req)).await?;
    let client = widget.channel.client_id;
    let conversation = state
        .store
        .conversation_by_external_id(client, widget.channel.id, &visitor.id.to_string())
        .await?;
    let body = body.into_inner();
    let call = crate::callback::request_callback(
        &state,
        crate::callback::CallbackRequest {
            client_id: client,
            channel_id: None,
            conversation_id: conversation,
            number: body.number,
            visitor: Some(visitor.id.to_string()),
            ip: crate::http::extract::peer_ip(&req),
            captcha_token: body.captcha_token,
            requested_by: None,
        },
    )
    .await?;
    Ok(HttpResponse::Accepted().json(CallbackAnswer { id: call.id }))
}

/// The size limit in force for a widget's visitors: the widget's own, within the server's.
fn upload_limit(state: &AppState, rules: &AttachmentRules) -> u64 {
    rules
        .max_bytes
        .min(u64::try_from(state.config.media.max_upload_bytes).unwrap_or(u64::MAX))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FileQuery {
    /// The widget's own id for this message (1–100 characters): sending it again returns the
    /// first message and keeps nothing new.
    pub client_message_id: String,
}

/// Sends a file from the visitor: a message carrying it lands in the visitor's conversation.
/// Within the widget's size limit and types (`attachments` of its settings); the type is what
/// the file's content is, whatever the browser declared, and pages, scripts and programs are
/// refused whatever the settings list.
#[utoipa::path(post, path = "/api/v1/public/widgets/{public_key}/attachments", tag = "widget",
    params(("public_key" = String, Path, description = "the widget's public key"), FileQuery),
    request_body(content = String, description = "`multipart/form-data` with one part named `file` (its file name is taken from the part; its type from its content)", content_type = "multipart/form-data"),
    responses((status = 201, description = "committed", body = SentAnswer),
        (status = 200, description = "a repeated `client_message_id`: the first message", body = SentAnswer),
        (status = 400, description = "no part named `file`, an empty file, a bad `client_message_id`", body = ErrorBody),
        (status = 401, description = "`visitor_unknown`", body = ErrorBody),
        (status = 403, description = "`origin_not_allowed`", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 413, description = "larger than the widget's `attachments.max_bytes`", body = ErrorBody),
        (status = 415, description = "not multipart, files turned off, or a type the widget does not take", body = ErrorBody),
        (status = 429, body = ErrorBody)),
    security(("visitor_token" = [])))]
pub async fn send_file(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<FileQuery>,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let widget = public_widget(&state, &req, &path).await?;
    let visitor = visitor_of(&state, &widget, bearer(&req)).await?;
    let rules = &widget.settings.attachments;
    if !rules.enabled {
        return Err(ApiError::UnsupportedFile(Msg::WidgetAttachmentsOff));
    }
    validate::text(
        "client_message_id",
        &query.client_message_id,
        MAX_CLIENT_MESSAGE_ID_CHARS,
    )?;
    state.widget_limits.message(visitor.id)?;
    let received = receive_file(
        &req,
        payload,
        &state,
        upload_limit(&state, rules),
        |_declared, name, head| {
            let mime = sniff_type(head, name);
            if check_upload_type(mime, name).is_err() || !type_allowed(mime, &rules.types) {
                return Err(ApiError::UnsupportedFile(Msg::WidgetFileType {
                    mime: mime.to_string(),
                }));
            }
            Ok(mime.to_string())
        },
    )
    .await?;
    let key = received.put.key.clone();
    let size = i64::try_from(received.put.size).unwrap_or(i64::MAX);
    let file = NewInboundAttachment {
        kind: received.kind,
        file_name: received.file_name,
        mime_type: received.mime_type,
        size: Some(size),
        provider_ref: String::new(),
        stored: Some(StoredFile {
            storage_key: key.clone(),
            size,
            sha256: received.put.sha256,
            mime_type: None,
            file_name: None,
        }),
    };
    let answer = ingest_within_limits(
        &state,
        request_lang(),
        &widget,
        &visitor,
        &query.client_message_id,
        String::new(),
        vec![file],
    )
    .await;
    // A refused or repeated message keeps no bytes.
    if !matches!(&answer, Ok(a) if !a.duplicate) {
        let _ = state.media.delete(&key).await;
    }
    Ok(sent(answer?))
}

/// A file of the visitor's conversation — theirs or an operator's — for that visitor only:
/// any other visitor's, an operator's internal note's, or an upload not sent yet is 404.
/// Served as a download; raster images also inline with `disposition=inline`.
#[utoipa::path(get, path = "/api/v1/public/widgets/{public_key}/attachments/{attachment_id}", tag = "widget",
    params(("public_key" = String, Path, description = "the widget's public key"),
        ("attachment_id" = AttachmentId, Path, description = "the file's id, from a message"),
        DownloadQuery),
    responses((status = 200, description = "the file", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 401, description = "`visitor_unknown`", body = ErrorBody),
        (status = 403, description = "`origin_not_allowed`", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "not downloaded from the provider (yet)", body = ErrorBody),
        (status = 429, body = ErrorBody)),
    security(("visitor_token" = [])))]
pub async fn download_file(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, AttachmentId)>,
    query: web::Query<DownloadQuery>,
) -> ApiResult<HttpResponse> {
    let (public_key, id) = path.into_inner();
    let widget = public_widget(&state, &req, &public_key).await?;
    let visitor = visitor_of(&state, &widget, bearer(&req)).await?;
    let client = widget.channel.client_id;
    let conversation = state
        .store
        .conversation_by_external_id(client, widget.channel.id, &visitor.id.to_string())
        .await?
        .ok_or(ApiError::NotFound)?;
    let stored = state.store.get_attachment(client, id).await?;
    let message = stored
        .attachment
        .message_id
        .filter(|_| stored.attachment.conversation_id == conversation)
        .ok_or(ApiError::NotFound)?;
    let message = find_message(&state, client, conversation, message).await?;
    if message.kind == MessageKind::Note {
        return Err(ApiError::NotFound);
    }
    serve_file(
        &state,
        &stored,
        query.disposition.as_deref() == Some("inline"),
        "private, max-age=86400",
    )
    .await
}

/// CORS preflight of any public route: 204 with the CORS headers for an allowed origin, 403
/// (without them) for any other.
#[utoipa::path(options, path = "/api/v1/public/widgets/{public_key}/{tail}", tag = "widget",
    params(("public_key" = String, Path, description = "the widget's public key"),
        ("tail" = String, Path, description = "the route being preflighted")),
    responses((status = 204, description = "allowed; CORS headers for the origin"),
        (status = 403, description = "`origin_not_allowed`", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn preflight(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    public_widget(&state, &req, &path.0).await?;
    Ok(HttpResponse::NoContent().finish())
}
