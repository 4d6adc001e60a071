//! Social networks' events: `/hooks/social/{network}/{profile_id}` for one profile, and
//! `/hooks/social/{facebook|instagram}` for the Meta application's one callback.
//!
//! On a profile's hook the profile's connector checks the secret or signature on the raw
//! bytes first; an unknown profile, another network's profile and a bad secret all answer the
//! same 401 `invalid_signature`.
//!
//! Meta delivers every subscribed Page's (or Instagram account's) events to the application's
//! callback, naming each account in `entry[].id`. There the signature is checked once with the
//! server's Meta app secret (every Meta profile is connected through that one application),
//! `entry[]` is split by account, and each account's events go to every profile connected for
//! it, of whichever client (each its own copy, in its own tenant); an account no profile is
//! connected for is dropped, never handed to anyone else.
//!
//! A new comment under a post becomes a customer message in the unified inbox: the
//! conversation of that person under that post (external id `<post>:<author>`), tied to the
//! post in `social_threads`, so operators moderate it like a chat. The network hears 200 only
//! once everything of the request is committed; a redelivery carries the same comment ids and
//! adds nothing.

use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};
use omnihub_connectors::social::meta_app::{self, AccountEvents, AppDelivery};
use omnihub_connectors::social::{self as net, Network, SocialEvent};
use omnihub_core::ChannelId;
use omnihub_core::model::ChannelKind;
use omnihub_store::StoreError;

use super::provider_hooks::webhook_request;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::social::inbound::{self, Profile};
use crate::state::AppState;

/// The Meta application's callback, registered before the messengers' `/hooks/{provider}/…`,
/// whose pattern it would otherwise fall into.
pub fn configure_app_callbacks(cfg: &mut web::ServiceConfig) {
    cfg.route("/hooks/social/{network}", web::post().to(meta_app_hook))
        .route(
            "/hooks/social/{network}",
            web::get().to(meta_app_hook_handshake),
        );
}

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
#[openapi(paths(
    social_hook,
    social_hook_handshake,
    meta_app_hook,
    meta_app_hook_handshake
))]
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
        if let SocialEvent::Handshake { body, content_type } = event {
            return Ok(HttpResponse::Ok().content_type(content_type).body(body));
        }
        commit(&state, profile, event).await?;
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

/// Commits one event for one profile (a handshake is its caller's to answer).
async fn commit(state: &AppState, profile: Profile, event: SocialEvent) -> ApiResult<()> {
    match event {
        SocialEvent::Comment(comment) => {
            inbound::comment_arrived(&state.hub, &state.store, profile, comment).await?;
        }
        SocialEvent::Post(post) => inbound::post_arrived(&state.hub, profile, post).await?,
        SocialEvent::Handshake { .. } | SocialEvent::Ignored => {}
    }
    Ok(())
}

/// Receives the Meta application's webhook for Facebook Pages (`object: page`, at
/// `/hooks/social/facebook`) or Instagram accounts (`object: instagram`, at
/// `/hooks/social/instagram`): `X-Hub-Signature-256` is checked once with the app secret,
/// and each entry's events go to every profile connected for its account (`entry[].id`), in
/// its own client; entries of accounts no profile is connected for are ignored.
#[utoipa::path(post, path = "/hooks/social/{network}", tag = "webhooks",
    params(("network" = String, Path, description = "`facebook` or `instagram`")),
    request_body(content = String, description = "Meta's payload: `{\"object\", \"entry\": [{\"id\", \"time\", \"changes\"}]}`", content_type = "application/json"),
    responses((status = 200, description = "every entry committed for every profile of its account (or a redelivery, or entries of no connected account)"),
        (status = 400, description = "signed, but not a body of the network's object", body = ErrorBody),
        (status = 401, description = "`invalid_signature`: no signature, a wrong one, or no Meta app secret configured", body = ErrorBody),
        (status = 404, description = "not a network with an application-wide callback", body = ErrorBody),
        (status = 413, body = ErrorBody)),
    security(()))]
pub async fn meta_app_hook(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let network = Network::parse(&path.into_inner())
        .filter(|network| meta_app::object_of(*network).is_some())
        .ok_or(ApiError::NotFound)?;
    let delivered = meta_app::app_webhook(
        network,
        &webhook_request(&req, &body),
        state.config.social.meta_verify_token.expose(),
        &state.endpoints.apps.meta.client_secret,
    )?;
    let accounts = match delivered {
        AppDelivery::Handshake(challenge) => {
            return Ok(HttpResponse::Ok()
                .content_type(ContentType::plaintext())
                .body(challenge));
        }
        AppDelivery::Accounts(accounts) => accounts,
    };
    for AccountEvents { account, events } in accounts {
        let profiles = state
            .store
            .social_profiles_for_account(network.as_str(), &account)
            .await?;
        for found in profiles {
            let profile = Profile {
                client: found.client_id,
                id: found.id,
                network,
            };
            for event in &events {
                commit(&state, profile, event.clone()).await?;
            }
        }
    }
    Ok(HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .finish())
}

/// Meta's subscription handshake for the application's callback: `hub.challenge` is echoed
/// when `hub.verify_token` is the server's `[social] meta_verify_token`.
#[utoipa::path(get, path = "/hooks/social/{network}", tag = "webhooks",
    params(("network" = String, Path, description = "`facebook` or `instagram`"),
        ("hub.mode" = String, Query, description = "`subscribe`"),
        ("hub.verify_token" = String, Query, description = "the server's `[social] meta_verify_token`"),
        ("hub.challenge" = String, Query, description = "echoed back")),
    responses((status = 200, description = "`hub.challenge`", body = String, content_type = "text/plain"),
        (status = 400, description = "no `hub.challenge`", body = ErrorBody),
        (status = 401, description = "`invalid_signature`: a wrong verify token, or none configured", body = ErrorBody),
        (status = 404, description = "not a network with an application-wide callback", body = ErrorBody)),
    security(()))]
pub async fn meta_app_hook_handshake(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    meta_app_hook(req, state, path, web::Bytes::new()).await
}
