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
use omnihub_store::StoreError;

use super::provider_hooks::webhook_request;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::social::inbound::{self, Profile};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // GET carries the networks' handshakes (Meta's `hub.challenge`, X's CRC, WebSub's
    // verification); the connector answers it or refuses it like any other request.
    cfg.route(
        "/hooks/social/{network}/{profile_id}",
        web::post().to(social_hook),
    )
    .route(
        "/hooks/social/{network}/{profile_id}",
        web::get().to(social_hook_handshake),
    );
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(social_hook, social_hook_handshake))]
pub struct Api;

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
    let profile = Profile {
        client: channel.client_id,
        id: channel.id,
        network,
    };
    for event in delivered.events {
        match event {
            SocialEvent::Handshake { body, content_type } => {
                return Ok(HttpResponse::Ok().content_type(content_type).body(body));
            }
            SocialEvent::Comment(comment) => {
                inbound::comment_arrived(&state.hub, &state.store, profile, comment).await?;
            }
            SocialEvent::Post(post) => inbound::post_arrived(&state.hub, profile, post).await?,
            SocialEvent::Ignored => {}
        }
    }
    Ok(HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .body(delivered.ack_body))
}

/// A network's handshake for one profile's webhook (Meta's `hub.challenge`, X's `crc_token`),
/// answered by the profile's connector; refused as `invalid_signature` like a forged event.
#[utoipa::path(get, path = "/hooks/social/{network}/{profile_id}", tag = "webhooks",
    params(("network" = String, Path, description = "the network"),
        ("profile_id" = ChannelId, Path, description = "the profile")),
    responses((status = 200, description = "the handshake's answer, in the network's form", body = String),
        (status = 401, description = "`invalid_signature`: unknown profile, another network's, or a wrong token", body = ErrorBody),
        (status = 404, description = "no such network", body = ErrorBody)),
    security(()))]
pub async fn social_hook_handshake(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    social_hook(req, state, path, web::Bytes::new()).await
}
