//! Provider webhooks, outside `/api/v1` as the external contract has them:
//! `/hooks/{provider}/{channel_id}`. Today the generic API channel, which any system can post
//! customer messages and delivery statuses to.
//!
//! A webhook is authenticated before anything else by the channel's own stored secret, compared
//! in constant time; an unknown channel, a channel of another provider and a wrong secret all
//! answer the same 401 `invalid_signature`, so the answer tells nothing about which channels
//! exist. Acknowledged means committed: 200 comes only after the hub committed the event, and a
//! retry of the same `event_id` answers 200 with `duplicate: true` and creates nothing.
//!
//! An API channel and its token are kept for a few seconds after they are read ([`HookChannels`]),
//! so a busy sender's webhooks cost no store round trip each before the commit. A change or
//! removal of the channel through this node forgets it at once; other nodes see it within
//! [`HOOK_CHANNEL_TTL`], as with cached callers (`auth::cache`).

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, web};
use omnihub_core::model::{Channel, DeliveryStatus, Provider};
use omnihub_core::{ChannelId, MessageId, validate};
use omnihub_store::{InboundEvent, Ingest, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::conversations::{MAX_TEXT_CHARS, message_text};
use crate::auth::tokens::constant_time_eq;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/hooks/api/{channel_id}", web::post().to(api_hook))
        .route("/hooks/api/{channel_id}", web::get().to(api_hook_get));
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(api_hook, api_hook_get))]
pub struct Api;

/// The key of the API channel's credentials that holds the secret senders present.
pub const INBOUND_TOKEN_KEY: &str = "inbound_token";
/// Longest id, name or reason a sender may post, in characters.
const MAX_FIELD_CHARS: usize = 200;
const MAX_REASON_CHARS: usize = 1_000;

/// A customer's message posted to the API channel.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HookMessage {
    /// The sender system's unique id for this event (1 to 200 characters); a retry with the
    /// same id is answered as a duplicate and creates nothing.
    pub event_id: String,
    /// The sender system's id of the conversation (1 to 200 characters).
    pub conversation: String,
    pub user: HookUser,
    /// 1 to 10,000 characters.
    pub text: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HookUser {
    /// The customer's id in the sender system (1 to 200 characters); keys the contact.
    pub id: String,
    /// Shown to operators (1 to 200 characters).
    pub name: String,
}

/// A delivery status of a reply omnihub posted to the sender system (`"type": "status"`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HookStatus {
    /// The sender system's id of the delivered message, as it answered omnihub's outbound POST.
    pub message_id: String,
    pub status: HookDelivery,
    /// Why delivery failed (with `failed`), up to 1,000 characters.
    pub reason: Option<String>,
}

#[derive(Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HookDelivery {
    Delivered,
    Read,
    Failed,
}

/// The body of `POST /hooks/api/{channel_id}`: a message (no `type`, or `"type": "message"`)
/// or a delivery status (`"type": "status"`).
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum HookBody {
    Message(HookMessage),
    Status(HookStatus),
}

#[derive(Serialize, ToSchema)]
pub struct HookAnswer {
    /// The message the event created (or, for a duplicate, created the first time), or whose
    /// status changed.
    pub message_id: MessageId,
    /// True when the event was already received: nothing new was created.
    pub duplicate: bool,
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// How long an API channel and its inbound token are used without reading them again.
pub const HOOK_CHANNEL_TTL: Duration = Duration::from_secs(5);
/// API channels kept at most; beyond it, expired ones are dropped (and, if none, all).
const HOOK_CHANNELS_MAX: usize = 10_000;

/// API channels with their inbound token, as read recently (see the module's doc).
#[derive(Default)]
pub struct HookChannels {
    entries: RwLock<HashMap<ChannelId, (Instant, Channel, String)>>,
}

impl HookChannels {
    fn get(&self, id: ChannelId) -> Option<(Channel, String)> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(&id)
            .filter(|(at, _, _)| at.elapsed() < HOOK_CHANNEL_TTL)
            .map(|(_, channel, token)| (channel.clone(), token.clone()))
    }

    fn put(&self, channel: Channel, token: String) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= HOOK_CHANNELS_MAX {
            entries.retain(|_, (at, _, _)| at.elapsed() < HOOK_CHANNEL_TTL);
            if entries.len() >= HOOK_CHANNELS_MAX {
                entries.clear();
            }
        }
        entries.insert(channel.id, (Instant::now(), channel, token));
    }

    /// The channel changed or is gone: read it again next time.
    pub fn forget(&self, id: ChannelId) {
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }
}

/// The API channel `id` with its inbound token, from the cache or the store; `None` for an
/// unknown channel, another provider's or one without a token.
async fn hook_channel(state: &AppState, id: ChannelId) -> ApiResult<Option<(Channel, String)>> {
    if let Some(found) = state.hook_channels.get(id) {
        return Ok(Some(found));
    }
    let (channel, credentials) = match state.store.channel_for_hook(id).await {
        Ok(found) => found,
        Err(StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let token = credentials
        .as_ref()
        .and_then(|c| c.get(INBOUND_TOKEN_KEY)?.as_str())
        .filter(|t| !t.is_empty() && channel.provider == Provider::Api)
        .map(str::to_string);
    let Some(token) = token else {
        return Ok(None);
    };
    state.hook_channels.put(channel.clone(), token.clone());
    Ok(Some((channel, token)))
}

/// The channel when `sent` is its inbound token. Hashing both sides first makes the comparison
/// constant-time in their lengths too; a missing channel is compared against nothing, the same
/// work as a wrong token.
async fn authenticate(state: &AppState, raw_id: &str, sent: Option<&str>) -> ApiResult<Channel> {
    let found = match raw_id.parse::<ChannelId>() {
        Ok(id) => hook_channel(state, id).await?,
        Err(_) => None,
    };
    let expected = found.as_ref().map(|(_, token)| token.as_str());
    let digest = |s: &str| Sha256::digest(s.as_bytes()).to_vec();
    let matches = constant_time_eq(
        &digest(sent.unwrap_or_default()),
        &digest(expected.unwrap_or_default()),
    );
    let accepted = expected.is_some() && sent.is_some() && matches;
    match (found, accepted) {
        (Some((channel, _)), true) => Ok(channel),
        _ => Err(ApiError::InvalidSignature),
    }
}

fn field(name: &'static str, value: &str) -> ApiResult<String> {
    Ok(validate::text(name, value, MAX_FIELD_CHARS)?)
}

fn parse_body<T: serde::de::DeserializeOwned>(map: Map<String, Value>) -> ApiResult<T> {
    serde_json::from_value(Value::Object(map)).map_err(|e| ApiError::InvalidJson(e.to_string()))
}

/// Receives a customer message or a delivery status from the system behind an API channel.
/// Authenticated by `Authorization: Bearer <the channel's credentials.inbound_token>`.
#[utoipa::path(post, path = "/hooks/api/{channel_id}", tag = "webhooks", request_body = HookBody,
    params(("channel_id" = ChannelId, Path, description = "the API channel")),
    responses((status = 200, description = "committed (or a duplicate of an event already committed)", body = HookAnswer),
        (status = 400, body = ErrorBody),
        (status = 401, description = "`invalid_signature`: unknown channel, not an API channel, or a wrong token", body = ErrorBody),
        (status = 404, description = "a status for a message the channel never sent", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)),
    security(("channel_token" = [])))]
pub async fn api_hook(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> ApiResult<web::Json<HookAnswer>> {
    let channel = authenticate(&state, &path, bearer(&req)).await?;
    let Value::Object(mut map) = body.into_inner() else {
        return Err(ApiError::InvalidJson("expected a JSON object".into()));
    };
    let kind = match map.remove("type") {
        None => "message".to_string(),
        Some(Value::String(s)) => s,
        Some(_) => return Err(ApiError::InvalidJson("`type` must be a string".into())),
    };
    match kind.as_str() {
        "message" => {
            let m: HookMessage = parse_body(map)?;
            let event = InboundEvent {
                attachments: Vec::new(),
                client_id: channel.client_id,
                channel_id: channel.id,
                external_conversation_id: field("conversation", &m.conversation)?,
                external_user_id: field("user.id", &m.user.id)?,
                contact_name: field("user.name", &m.user.name)?,
                provider_event_id: field("event_id", &m.event_id)?,
                text: message_text("text", &m.text, MAX_TEXT_CHARS)?,
            };
            let answer = match state.hub.ingest(event).await? {
                Ingest::New { message, .. } => HookAnswer {
                    message_id: message.id,
                    duplicate: false,
                },
                Ingest::Duplicate(id) => HookAnswer {
                    message_id: id,
                    duplicate: true,
                },
            };
            Ok(web::Json(answer))
        }
        "status" => {
            let s: HookStatus = parse_body(map)?;
            let provider_id = field("message_id", &s.message_id)?;
            let reason = s
                .reason
                .as_deref()
                .map(|r| validate::text("reason", r, MAX_REASON_CHARS))
                .transpose()?;
            let status = match s.status {
                HookDelivery::Delivered => DeliveryStatus::Delivered,
                HookDelivery::Read => DeliveryStatus::Read,
                HookDelivery::Failed => DeliveryStatus::Failed,
            };
            // Found first so the answer can name it (and an unknown id is 404 either way).
            let message = state
                .store
                .message_by_provider_id(channel.client_id, channel.id, &provider_id)
                .await?;
            state
                .hub
                .delivery_status(channel.client_id, channel.id, provider_id, status, reason)
                .await?;
            Ok(web::Json(HookAnswer {
                message_id: message.id,
                duplicate: false,
            }))
        }
        other => Err(ApiError::InvalidJson(format!(
            "unknown type `{other}`, expected `message` or `status`"
        ))),
    }
}

/// Webhooks of the API channel are POST only; there is no handshake to answer.
#[utoipa::path(get, path = "/hooks/api/{channel_id}", tag = "webhooks",
    params(("channel_id" = ChannelId, Path, description = "the API channel")),
    responses((status = 405, description = "`method_not_allowed`, with `Allow: POST`", body = ErrorBody)))]
pub async fn api_hook_get() -> ApiResult<web::Json<HookAnswer>> {
    Err(ApiError::MethodNotAllowed("POST"))
}
