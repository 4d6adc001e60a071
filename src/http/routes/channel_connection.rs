//! A messenger channel's connection, for the client owner: its health as the provider sees it
//! (token accepted, webhook in place, not rate limited) and registering omnihub's webhook with
//! the provider (`/hooks/{provider}/{channel_id}` under the public URL), which is what
//! "connecting" a bot or a number means on the provider's side. Also a test of credentials
//! not saved yet (`POST /api/v1/connection-tests`), built exactly as a saved channel's
//! connector is, so a tenant's mailbox may not name a host on the server's own network here
//! either.

use actix_web::web;
use omnihub_connectors::provider::Health;
use omnihub_core::ChannelId;
use omnihub_core::model::Provider;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::http::error::{ApiError, ApiResult, ErrorBody, request_lang};
use crate::http::extract::{Auth, ManageSettings};
use crate::i18n::Msg;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/channels/{channel_id}/health",
        web::get().to(channel_health),
    )
    .route(
        "/channels/{channel_id}/webhook",
        web::post().to(register_webhook),
    )
    .route("/connection-tests", web::post().to(test_connection));
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(channel_health, register_webhook, test_connection))]
pub struct Api;

/// Credentials to try before (or instead of) saving them.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionTest {
    /// A messenger or `email`.
    pub provider: Provider,
    /// The channel's settings as they would be saved.
    #[schema(value_type = Object)]
    pub settings: Value,
    /// The credentials as they would be saved; left out, those of `channel_id` are used
    /// (a saved channel's secrets are write-only, so an edit may keep them).
    #[schema(value_type = Option<Object>)]
    pub credentials: Option<Value>,
    /// The saved channel being edited, of the same provider.
    pub channel_id: Option<ChannelId>,
}

/// How a channel's connection is doing.
#[derive(Serialize, ToSchema)]
pub struct ChannelHealth {
    /// `ok`, `invalid_token`, `webhook_not_set`, `rate_limited`, `unreachable`,
    /// `provider_error`, or `not_configured` (the stored settings or credentials cannot work).
    pub status: &'static str,
    /// What `status` means, in the language negotiated from `Accept-Language`.
    pub message: String,
    /// The provider's (or omnihub's) own words about what is wrong, untranslated, for support.
    pub detail: Option<String>,
}

impl ChannelHealth {
    fn of(health: Health) -> ChannelHealth {
        let lang = request_lang();
        match health.problem() {
            None => ChannelHealth {
                status: "ok",
                message: Msg::HealthOk.render(lang),
                detail: None,
            },
            Some((problem, words)) => ChannelHealth {
                status: problem.code(),
                message: Msg::of_problem(problem).render(lang),
                detail: Some(words.to_string()),
            },
        }
    }

    fn not_configured(detail: String) -> ChannelHealth {
        ChannelHealth {
            status: "not_configured",
            message: Msg::HealthNotConfigured.render(request_lang()),
            detail: Some(detail),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WebhookRegistered {
    /// Where the provider now delivers this channel's updates.
    pub url: String,
}

/// Asks the provider how the channel's connection is doing (a messenger's token and webhook);
/// an API channel is healthy when it has somewhere to send replies.
#[utoipa::path(get, path = "/api/v1/channels/{channel_id}/health", tag = "channels",
    params(("channel_id" = ChannelId, Path, description = "channel id")),
    responses((status = 200, body = ChannelHealth), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn channel_health(
    state: web::Data<AppState>,
    caller: Auth<ManageSettings>,
    path: web::Path<ChannelId>,
) -> ApiResult<web::Json<ChannelHealth>> {
    let client = caller.client_id()?;
    let channel = state.store.get_channel(client, path.into_inner()).await?;
    if channel.provider == Provider::Api {
        let has_url = channel
            .settings
            .get("outbound_url")
            .and_then(|u| u.as_str())
            .is_some_and(|u| !u.is_empty());
        return Ok(web::Json(if has_url {
            ChannelHealth::of(Health::Ok)
        } else {
            ChannelHealth::not_configured("settings.outbound_url is not set".into())
        }));
    }
    let credentials = state.store.channel_credentials(client, channel.id).await?;
    let health = match state
        .provider_channels
        .get(&channel, credentials.as_ref(), &state.endpoints)
    {
        Ok(connector) => ChannelHealth::of(connector.health().await),
        Err(err) => ChannelHealth::not_configured(err.to_string()),
    };
    Ok(web::Json(health))
}

/// Tries credentials with their provider without saving anything: the answer is the health a
/// channel with them would have. Settings or credentials that cannot work (a malformed token,
/// a mailbox on the server's own network) answer `not_configured` with the reason.
#[utoipa::path(post, path = "/api/v1/connection-tests", tag = "channels",
    request_body = ConnectionTest,
    responses((status = 200, body = ChannelHealth), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn test_connection(
    state: web::Data<AppState>,
    caller: Auth<ManageSettings>,
    body: web::Json<ConnectionTest>,
) -> ApiResult<web::Json<ChannelHealth>> {
    let client = caller.client_id()?;
    let body = body.into_inner();
    if !(omnihub_connectors::registry::is_messenger(body.provider)
        || body.provider == Provider::Email)
    {
        return Err(ApiError::Validation(Msg::NothingToTest {
            provider: body.provider.as_str(),
        }));
    }
    for (field, value) in [
        ("settings", Some(&body.settings)),
        ("credentials", body.credentials.as_ref()),
    ] {
        if value.is_some_and(|v| !v.is_object()) {
            return Err(ApiError::Validation(Msg::NotJsonObject { field }));
        }
    }
    let credentials = match (body.credentials, body.channel_id) {
        (Some(credentials), _) => Some(credentials),
        (None, Some(id)) => {
            // Another client's channel is not found, as everywhere.
            let saved = state.store.get_channel(client, id).await?;
            if saved.provider != body.provider {
                return Err(ApiError::Validation(Msg::ProviderMismatch));
            }
            state.store.channel_credentials(client, id).await?
        }
        (None, None) => None,
    };
    let health = match omnihub_connectors::registry::provider_channel(
        body.provider,
        credentials.as_ref(),
        &body.settings,
        &state.endpoints,
    ) {
        Ok(connector) => ChannelHealth::of(connector.health().await),
        Err(err) => ChannelHealth::not_configured(err.0),
    };
    Ok(web::Json(health))
}

/// Registers omnihub's webhook for the channel with its provider, with the channel's secret.
/// For WhatsApp the address is entered in Meta's app dashboard instead (this subscribes the
/// app to the business account when `waba_id` is set).
#[utoipa::path(post, path = "/api/v1/channels/{channel_id}/webhook", tag = "channels",
    params(("channel_id" = ChannelId, Path, description = "channel id")),
    responses((status = 200, body = WebhookRegistered), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`conflict`: not a messenger channel, its settings cannot work, or the provider refused", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn register_webhook(
    state: web::Data<AppState>,
    caller: Auth<ManageSettings>,
    path: web::Path<ChannelId>,
) -> ApiResult<web::Json<WebhookRegistered>> {
    let client = caller.client_id()?;
    let channel = state.store.get_channel(client, path.into_inner()).await?;
    let credentials = state.store.channel_credentials(client, channel.id).await?;
    if !omnihub_connectors::registry::is_messenger(channel.provider) {
        return Err(ApiError::Conflict(Msg::NoWebhookToRegister));
    }
    let connector = state
        .provider_channels
        .get(&channel, credentials.as_ref(), &state.endpoints)
        .map_err(|err| ApiError::Conflict(Msg::ProviderRefused { reason: err.0 }))?;
    let url = format!(
        "{}/hooks/{}/{}",
        state.config.server.public_url.trim_end_matches('/'),
        channel.provider.as_str(),
        channel.id
    );
    connector
        .set_webhook(Some(&url))
        .await
        .map_err(|err| ApiError::ProviderRefused {
            problem: err.problem(),
            detail: err.reason().to_string(),
        })?;
    state
        .audit(caller.audit(
            Some(client),
            "channel.webhook",
            "channel",
            channel.id,
            json!({ "url": url }),
        ))
        .await?;
    Ok(web::Json(WebhookRegistered { url }))
}
