//! Social networks' events: `/hooks/social/{network}/{profile_id}`. The profile's connector
//! checks the secret or signature on the raw bytes first; an unknown profile, another
//! network's profile and a bad secret all answer the same 401 `invalid_signature`.
//!
//! A new comment under a post becomes a customer message in the unified inbox: the
//! conversation of that person under that post (external id `<post>:<author>`), tied to the
//! post in `social_threads`, so operators moderate it like a chat. The network hears 200 only
//! once both are committed; a redelivery carries the same comment id and adds nothing.

use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};
use omnihub_connectors::social::{self as net, Network, SocialEvent};
use omnihub_core::ChannelId;
use omnihub_core::model::ChannelKind;
use omnihub_core::triggers::{ItemKind, SocialItem};
use omnihub_store::{InboundEvent, StoreError};

use super::conversations::MAX_TEXT_CHARS;
use super::provider_hooks::webhook_request;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/hooks/social/{network}/{profile_id}",
        web::post().to(social_hook),
    );
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(social_hook))]
pub struct Api;

/// Longest id taken from a network, in characters.
const MAX_ID_CHARS: usize = 200;

/// Receives a social network's event for one profile (VK's Callback API: the confirmation
/// handshake, `wall_reply_new`, `wall_post_new`), authenticated by the network's own scheme
/// (VK: the callback server's `secret` in the body).
#[utoipa::path(post, path = "/hooks/social/{network}/{profile_id}", tag = "webhooks",
    params(("network" = String, Path, description = "`vk`"),
        ("profile_id" = ChannelId, Path, description = "the profile")),
    request_body(content = String, description = "the network's own payload", content_type = "application/json"),
    responses((status = 200, description = "committed (or a redelivery), or the handshake's answer (`ok` for VK)", body = String, content_type = "text/plain"),
        (status = 400, description = "authenticated, but not a payload the network sends", body = ErrorBody),
        (status = 401, description = "`invalid_signature`: unknown profile, another network's, or a bad secret", body = ErrorBody),
        (status = 404, description = "no such network", body = ErrorBody),
        (status = 413, body = ErrorBody)),
    security(()))]
pub async fn social_hook(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let (network, raw_id) = path.into_inner();
    let network = Network::parse(&network).ok_or(ApiError::NotFound)?;
    let id: ChannelId = raw_id.parse().map_err(|_| ApiError::InvalidSignature)?;
    let (channel, credentials) = match state.store.channel_for_hook(id).await {
        Ok(found) => found,
        Err(StoreError::NotFound) => return Err(ApiError::InvalidSignature),
        Err(err) => return Err(err.into()),
    };
    if channel.kind != ChannelKind::Social || net::network_of(channel.provider) != Some(network) {
        return Err(ApiError::InvalidSignature);
    }
    let connector = net::social_network(channel.provider, credentials.as_ref(), &state.endpoints)
        .map_err(|_| ApiError::InvalidSignature)?;
    let delivered = connector.webhook(&webhook_request(&req, &body))?;
    let answer = match delivered.event {
        SocialEvent::Handshake(body) => body,
        // Our own comments (replies sent from the inbox) are in their conversations already.
        SocialEvent::Comment(comment) if comment.by_profile => delivered.ack_body.to_string(),
        SocialEvent::Comment(comment) => {
            let post = cut(&comment.post_id, MAX_ID_CHARS);
            let author = cut(&comment.author_id, MAX_ID_CHARS);
            let thread = net::thread_id(&post, &author);
            let text = match cut(&comment.text, MAX_TEXT_CHARS) {
                t if t.is_empty() => "…".to_string(),
                t => t,
            };
            state
                .hub
                .ingest(InboundEvent {
                    client_id: channel.client_id,
                    channel_id: channel.id,
                    external_conversation_id: thread.clone(),
                    external_user_id: author.clone(),
                    contact_name: author_name(network, &author),
                    // The comment's id: a redelivery is the same message, and moderation
                    // actions name the comment by it.
                    provider_event_id: cut(&comment.id, MAX_ID_CHARS),
                    text,
                    attachments: Vec::new(),
                })
                .await?;
            let conversation = state
                .store
                .conversation_by_external_id(channel.client_id, channel.id, &thread)
                .await?
                .ok_or_else(|| ApiError::internal("the comment's conversation is missing"))?;
            state
                .store
                .link_social_thread(channel.client_id, conversation, channel.id, &post)
                .await?;
            // Triggered tasks key on the item, so a redelivery (or a retry after a failure
            // here, which the network makes when it hears no `ok`) fires nothing twice.
            let item = SocialItem {
                client_id: channel.client_id,
                profile_id: channel.id.0,
                network: network.as_str().into(),
                kind: ItemKind::Comment,
                remote_id: cut(&comment.id, MAX_ID_CHARS),
                parent_remote_id: Some(post),
                author_name: author_name(network, &author),
                author_id: author,
                text: comment.text,
                created_at: comment.created_at.unwrap_or_else(chrono::Utc::now),
            };
            state.hub.social_item_arrived(&item).await?;
            delivered.ack_body.to_string()
        }
        SocialEvent::Post(post) => {
            let item = SocialItem {
                client_id: channel.client_id,
                profile_id: channel.id.0,
                network: network.as_str().into(),
                kind: ItemKind::Post,
                remote_id: cut(&post.id, MAX_ID_CHARS),
                parent_remote_id: None,
                // A wall post is the profile's own: no author to match.
                author_id: String::new(),
                author_name: String::new(),
                text: post.text,
                created_at: post.published_at.unwrap_or_else(chrono::Utc::now),
            };
            state.hub.social_item_arrived(&item).await?;
            delivered.ack_body.to_string()
        }
        SocialEvent::Ignored => delivered.ack_body.to_string(),
    };
    Ok(HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .body(answer))
}

/// How a commenting person is named until the operator knows better: VK's own link form.
fn author_name(network: Network, author: &str) -> String {
    match network {
        Network::Vk if author.starts_with('-') => format!("club{}", &author[1..]),
        Network::Vk => format!("id{author}"),
        _ => author.to_string(),
    }
}

/// At most `max` characters, trimmed, without control characters but line breaks and tabs.
fn cut(s: &str, max: usize) -> String {
    s.trim()
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .take(max)
        .collect()
}
