//! Messenger webhooks: `/hooks/{provider}/{channel_id}` for every provider with a connector
//! (the generic API channel has its own route in `hooks.rs`). GET answers handshakes, POST
//! delivers updates.
//!
//! The provider's module checks the signature or secret on the raw bytes before anything is
//! parsed. An unknown channel, a channel of another provider and a bad signature all answer
//! the same 401 `invalid_signature`, so the answer tells nothing about which channels exist.
//! Acknowledged means committed: the provider hears 200 only after every update of the request
//! is committed; a redelivery carries the same event ids and creates nothing new.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};
use omnihub_connectors::provider::{
    AttachmentKind, ConfigError, InboundMessage, InboundUpdate, ProviderChannel, WebhookReply,
    WebhookRequest,
};
use omnihub_connectors::registry;
use omnihub_connectors::telephony::{self, CallHookRequest};
use omnihub_core::ChannelId;
use omnihub_core::media::{
    AttachmentKind as FileKind, check_upload_type, default_file_name, safe_file_name,
};
use omnihub_core::model::{Channel, Provider};
use omnihub_store::{InboundEvent, NewInboundAttachment, StoreError};
use sha2::{Digest, Sha256};

use super::conversations::MAX_TEXT_CHARS;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/hooks/{provider}/{channel_id}",
        web::post().to(provider_hook),
    )
    .route(
        "/hooks/{provider}/{channel_id}",
        web::get().to(provider_hook),
    );
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(provider_hook, provider_handshake))]
pub struct Api;

/// Longest id or name taken from a provider, in characters; longer ones are cut.
const MAX_FIELD_CHARS: usize = 200;
/// Built channels kept at most; past it the cache starts over.
const CACHE_LIMIT: usize = 10_000;

/// Built provider channels by channel, rebuilt when the channel's settings or credentials
/// change (building one sets up an HTTP client, too slow to do per webhook).
#[derive(Default)]
pub struct ProviderChannels {
    built: Mutex<HashMap<ChannelId, Built>>,
}

/// A connector and the fingerprint of the settings and credentials it was built from.
type Built = ([u8; 32], Arc<dyn ProviderChannel>);

impl ProviderChannels {
    pub fn get(
        &self,
        channel: &Channel,
        credentials: Option<&serde_json::Value>,
        endpoints: &registry::Endpoints,
    ) -> Result<Arc<dyn ProviderChannel>, ConfigError> {
        let mut hasher = Sha256::new();
        hasher.update(channel.settings.to_string());
        hasher.update([0]);
        hasher.update(credentials.map(|c| c.to_string()).unwrap_or_default());
        let fingerprint: [u8; 32] = hasher.finalize().into();
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((known, found)) = built.get(&channel.id)
            && *known == fingerprint
        {
            return Ok(found.clone());
        }
        let made = registry::provider_channel(
            channel.provider,
            credentials,
            &channel.settings,
            endpoints,
        )?;
        if built.len() >= CACHE_LIMIT {
            built.clear();
        }
        built.insert(channel.id, (fingerprint, made.clone()));
        Ok(made)
    }
}

/// Receives a messenger provider's webhook: the handshake (GET, or a confirmation event) or its
/// updates. Authenticated by the provider's own scheme (signature header, secret header or
/// secret field, verify token), checked by the channel's connector on the raw body.
#[utoipa::path(post, path = "/hooks/{provider}/{channel_id}", tag = "webhooks",
    params(("provider" = String, Path, description = "`telegram`, `whatsapp`, `vk`, `viber` or `max`; for call events of click-to-call, `zadarma` or `twilio`"),
        ("channel_id" = ChannelId, Path, description = "the channel")),
    request_body(content = String, description = "the provider's own payload", content_type = "application/json"),
    responses((status = 200, description = "committed (or a redelivery), or the handshake's answer; body as the provider expects (`ok` for VK)", body = String, content_type = "text/plain"),
        (status = 400, description = "signed, but not a payload this provider sends", body = ErrorBody),
        (status = 401, description = "`invalid_signature`: unknown channel, another provider's channel, or a bad signature or secret", body = ErrorBody),
        (status = 404, description = "no such provider", body = ErrorBody),
        (status = 405, body = ErrorBody), (status = 413, body = ErrorBody)),
    security(()))]
pub async fn provider_hook(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let (provider, raw_id) = path.into_inner();
    let provider = Provider::parse(&provider)
        .filter(|p| registry::is_messenger(*p) || telephony::is_telephony(*p))
        .ok_or(ApiError::NotFound)?;
    if telephony::is_telephony(provider) {
        return telephony_hook(&req, &state, provider, &raw_id, &body).await;
    }
    let (channel, connector) = channel_for(&state, provider, &raw_id).await?;
    let reply = connector.webhook(&webhook_request(&req, &body))?;
    let ack = match reply {
        WebhookReply::Handshake { body } => body,
        WebhookReply::Updates { updates, ack_body } => {
            for update in updates {
                apply(&state, &channel, &connector, update).await?;
            }
            ack_body.to_string()
        }
    };
    Ok(HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .body(ack))
}

/// Answers a provider's verification handshake (WhatsApp's `hub.challenge` with the channel's
/// verify token); the other providers verify by POST, so GET is refused like a bad signature.
#[utoipa::path(get, path = "/hooks/{provider}/{channel_id}", tag = "webhooks",
    params(("provider" = String, Path, description = "`telegram`, `whatsapp`, `vk`, `viber` or `max`; for call events of click-to-call, `zadarma` or `twilio`"),
        ("channel_id" = ChannelId, Path, description = "the channel")),
    responses((status = 200, description = "the challenge, echoed", body = String, content_type = "text/plain"),
        (status = 401, description = "`invalid_signature`: unknown channel, another provider's channel, or a wrong verify token", body = ErrorBody),
        (status = 404, description = "no such provider", body = ErrorBody),
        (status = 405, description = "this provider has no GET handshake", body = ErrorBody)),
    security(()))]
pub async fn provider_handshake(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    provider_hook(req, state, path, web::Bytes::new()).await
}

/// A telephony provider's call event (Zadarma's notifications and URL check, Twilio's status
/// callbacks); the same 401 as a bad signature for a channel that is not this provider's. The
/// URL the provider signed is rebuilt from the configured public URL (Twilio signs it).
async fn telephony_hook(
    req: &HttpRequest,
    state: &AppState,
    provider: Provider,
    raw_id: &str,
    body: &[u8],
) -> ApiResult<HttpResponse> {
    let id = raw_id
        .parse::<ChannelId>()
        .map_err(|_| ApiError::InvalidSignature)?;
    let (channel, credentials) = match state.store.channel_for_hook(id).await {
        Ok(found) => found,
        Err(StoreError::NotFound) => return Err(ApiError::InvalidSignature),
        Err(err) => return Err(err.into()),
    };
    if channel.provider != provider {
        return Err(ApiError::InvalidSignature);
    }
    let connector = telephony::telephony_channel(
        provider,
        credentials.as_ref(),
        &channel.settings,
        &state.endpoints,
    )
    .map_err(|_| ApiError::InvalidSignature)?;
    let public = state.config.server.public_url.trim_end_matches('/');
    let url = match req.query_string() {
        "" => format!("{public}{}", req.path()),
        query => format!("{public}{}?{query}", req.path()),
    };
    let request = CallHookRequest {
        method: req.method().as_str(),
        url: &url,
        query: req.query_string(),
        headers: req
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
            })
            .collect(),
        body,
    };
    let answer = crate::callback::call_hook(state, &channel, &connector, &request).await?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .body(answer))
}

/// The channel and its connector, when the path names a channel of that provider; anything
/// else is the same 401 as a bad signature.
async fn channel_for(
    state: &AppState,
    provider: Provider,
    raw_id: &str,
) -> ApiResult<(Channel, Arc<dyn ProviderChannel>)> {
    let id = raw_id
        .parse::<ChannelId>()
        .map_err(|_| ApiError::InvalidSignature)?;
    let (channel, credentials) = match state.store.channel_for_hook(id).await {
        Ok(found) => found,
        Err(StoreError::NotFound) => return Err(ApiError::InvalidSignature),
        Err(err) => return Err(err.into()),
    };
    if channel.provider != provider {
        return Err(ApiError::InvalidSignature);
    }
    // A channel whose credentials cannot make a connector cannot check a signature either.
    let connector = state
        .provider_channels
        .get(&channel, credentials.as_ref(), &state.endpoints)
        .map_err(|_| ApiError::InvalidSignature)?;
    Ok((channel, connector))
}

/// Commits one update through the hub (webhooks and pollers alike).
pub(crate) async fn apply(
    state: &AppState,
    channel: &Channel,
    connector: &Arc<dyn ProviderChannel>,
    update: InboundUpdate,
) -> ApiResult<()> {
    match update {
        InboundUpdate::Message(message) => {
            if let Some(callback) = message.callback_id.clone() {
                // Stops the customer's spinner; the press itself is committed below either way.
                let connector = connector.clone();
                actix_web::rt::spawn(async move {
                    if let Err(err) = connector.answer_callback(&callback).await {
                        tracing::debug!(error = %err, "callback answer failed");
                    }
                });
            }
            state.hub.ingest(inbound_event(channel, message)).await?;
        }
        InboundUpdate::Status(status) => {
            let outcome = state
                .hub
                .delivery_status(
                    channel.client_id,
                    channel.id,
                    status.provider_message_id,
                    status.status,
                    status.reason.map(|r| cut(&r, 1_000)),
                )
                .await;
            match outcome {
                // A status of a message sent from elsewhere (the provider's own app): not ours.
                Err(omnihub_actors::HubError::Store(StoreError::NotFound)) => {}
                other => other?,
            }
        }
        InboundUpdate::Blocked {
            conversation,
            reason,
        } => {
            state
                .hub
                .customer_blocked(
                    channel.client_id,
                    channel.id,
                    &conversation,
                    &cut(&reason, 1_000),
                )
                .await?;
        }
        InboundUpdate::Unblocked { conversation } => {
            state
                .hub
                .customer_unblocked(channel.client_id, channel.id, &conversation)
                .await?;
        }
    }
    Ok(())
}

/// The hub's event for a customer's message. Files become pending attachments, committed
/// with the message and downloaded after the commit (the provider is answered first); what is
/// no file (a location, a contact) and files without a reference are described in the text.
fn inbound_event(channel: &Channel, m: InboundMessage) -> InboundEvent {
    let mut text = m.text.trim().to_string();
    let mut files = Vec::new();
    for attachment in &m.attachments {
        if let (Some(kind), Some(file_ref)) = (file_kind(&attachment.kind), &attachment.file_ref)
            && files.len() < MAX_FILES_PER_MESSAGE
            && !file_ref.trim().is_empty()
            && file_ref.len() <= MAX_FILE_REF_CHARS
        {
            let mime_type = attachment
                .mime_type
                .as_deref()
                .and_then(|m| check_upload_type(m, "").ok().or_else(|| plain_type(m)))
                .unwrap_or_else(|| default_mime(kind).to_string());
            let fallback = default_file_name(kind, &mime_type);
            files.push(NewInboundAttachment {
                kind,
                file_name: safe_file_name(attachment.file_name.as_deref().unwrap_or(""), &fallback),
                mime_type,
                size: attachment.size.and_then(|s| i64::try_from(s).ok()),
                provider_ref: file_ref.clone(),
                stored: None,
            });
            continue;
        }
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&describe(&attachment.kind, attachment.file_name.as_deref()));
    }
    if m.edit_of.is_some() {
        text = format!("✎ {text}");
    }
    if text.is_empty() && files.is_empty() {
        text = "…".into();
    }
    let name = if m.sender.name.trim().is_empty() {
        m.sender.id.clone()
    } else {
        m.sender.name.clone()
    };
    let or_unknown = |s: String| {
        if s.is_empty() {
            "unknown".to_string()
        } else {
            s
        }
    };
    InboundEvent {
        client_id: channel.client_id,
        channel_id: channel.id,
        external_conversation_id: or_unknown(cut(&m.conversation, MAX_FIELD_CHARS)),
        external_user_id: or_unknown(cut(&m.sender.id, MAX_FIELD_CHARS)),
        contact_name: or_unknown(cut(&name, MAX_FIELD_CHARS)),
        provider_event_id: or_unknown(cut(&m.event_id, MAX_FIELD_CHARS)),
        text: cut(&text, MAX_TEXT_CHARS),
        attachments: files,
    }
}

/// Files kept per message; more are described in the text.
const MAX_FILES_PER_MESSAGE: usize = 10;
/// Longest provider file reference kept (a Telegram file id, a signed CDN URL).
const MAX_FILE_REF_CHARS: usize = 2_000;

/// The attachment kind of a provider's attachment that is a file.
fn file_kind(kind: &AttachmentKind) -> Option<FileKind> {
    Some(match kind {
        AttachmentKind::Image => FileKind::Image,
        AttachmentKind::Video => FileKind::Video,
        AttachmentKind::Audio => FileKind::Audio,
        AttachmentKind::Voice => FileKind::Voice,
        AttachmentKind::Document => FileKind::Document,
        AttachmentKind::Sticker => FileKind::Sticker,
        AttachmentKind::Location { .. } | AttachmentKind::Contact { .. } => return None,
    })
}

/// A provider's type the upload rules refuse (an HTML page a customer sent) is still kept as
/// its type when well formed: it is only ever served as a download.
fn plain_type(mime: &str) -> Option<String> {
    let essence = mime.split(';').next()?.trim().to_ascii_lowercase();
    let (top, sub) = essence.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 100
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    (token(top) && token(sub)).then_some(essence)
}

fn default_mime(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Image => "image/jpeg",
        FileKind::Sticker => "image/webp",
        FileKind::Voice => "audio/ogg",
        _ => "application/octet-stream",
    }
}

fn describe(kind: &AttachmentKind, file_name: Option<&str>) -> String {
    let named = |what: &str| match file_name {
        Some(name) => format!("[{what}: {name}]"),
        None => format!("[{what}]"),
    };
    match kind {
        AttachmentKind::Image => named("image"),
        AttachmentKind::Video => named("video"),
        AttachmentKind::Audio => named("audio"),
        AttachmentKind::Voice => named("voice message"),
        AttachmentKind::Document => named("file"),
        AttachmentKind::Sticker => named("sticker"),
        AttachmentKind::Location {
            latitude,
            longitude,
        } => format!("[location: {latitude:.6}, {longitude:.6}]"),
        AttachmentKind::Contact { name, phone } => format!("[contact: {name} {phone}]"),
    }
}

/// At most `max` characters, trimmed, without control characters other than line breaks and
/// tabs: a provider's text is shown to operators as is, and a provider's redelivery must not be
/// refused for a length the provider allows.
fn cut(s: &str, max: usize) -> String {
    s.trim()
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .take(max)
        .collect()
}

/// What a connector checks of a webhook: the method, query, headers and the raw body.
pub(crate) fn webhook_request<'a>(req: &'a HttpRequest, body: &'a [u8]) -> WebhookRequest<'a> {
    let headers = req.headers().iter().filter_map(|(name, value)| {
        Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
    });
    WebhookRequest::new(req.method().as_str(), req.query_string(), headers, body)
}
