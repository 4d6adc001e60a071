//! Connected channel accounts and social profiles of the caller's client. Credentials are
//! write-only: they go in through create and update and never come back out of the API.

use actix_web::{HttpResponse, web};
use omnihub_connectors::telephony;
use omnihub_core::access::{Action, Decision, channel_rights};
use omnihub_core::model::{Channel, ChannelKind, Provider};
use omnihub_core::{ChannelId, ChannelRights, Principal, decide, validate};
use omnihub_store::{ChannelPatch, NewChannel};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::{Auth, ChannelAccess, ManageSettings, View, ViewOwnClient};
use crate::i18n::{Fields, Msg};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/channels", web::get().to(list_channels))
        .route("/channels", web::post().to(create_channel))
        .route("/channels/{channel_id}", web::get().to(get_channel))
        .route("/channels/{channel_id}", web::patch().to(update_channel))
        .route("/channels/{channel_id}", web::delete().to(delete_channel));
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_channels,
    create_channel,
    get_channel,
    update_channel,
    delete_channel
))]
pub struct Api;

/// A channel as its viewer sees it.
#[derive(Serialize, ToSchema)]
pub struct ChannelView {
    #[serde(flatten)]
    pub channel: Channel,
    /// What the caller may do on this channel (owners: everything).
    pub my_rights: ChannelRights,
}

impl ChannelView {
    fn of(channel: Channel, who: &Principal) -> Self {
        let my_rights = channel_rights(who, channel.id);
        ChannelView { channel, my_rights }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ChannelList {
    pub items: Vec<ChannelView>,
}

/// `settings` and `credentials` are key-value documents; anything else is a client bug.
fn json_object(field: &'static str, value: Option<Value>) -> ApiResult<Option<Value>> {
    match value {
        None | Some(Value::Object(_)) => Ok(value),
        Some(_) => Err(ApiError::Validation(Msg::NotJsonObject { field })),
    }
}

/// Channels the caller may see: all of them for whoever manages settings, otherwise only the
/// channels delegated to them.
#[utoipa::path(get, path = "/api/v1/channels", tag = "channels",
    responses((status = 200, body = ChannelList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_channels(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
) -> ApiResult<web::Json<ChannelList>> {
    let who = &caller.principal;
    let items = state
        .store
        .list_channels(caller.client_id()?)
        .await?
        .into_iter()
        .filter(|c| decide(who, Action::ViewChannel(c.id)) == Decision::Allow)
        .map(|c| ChannelView::of(c, who))
        .collect();
    Ok(web::Json(ChannelList { items }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChannelRequest {
    pub kind: ChannelKind,
    pub provider: Provider,
    pub name: String,
    /// Non-secret settings (base URL, webhook mode, limits); `{}` when absent.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Value>,
    /// Provider secrets (bot token, API key); stored encrypted, never returned.
    #[schema(value_type = Option<Object>)]
    pub credentials: Option<Value>,
}

/// Connects a channel account or social profile.
#[utoipa::path(post, path = "/api/v1/channels", tag = "channels", request_body = NewChannelRequest,
    responses((status = 201, body = ChannelView),
        (status = 400, description = "bad fields, or a provider without this kind of account", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn create_channel(
    state: web::Data<AppState>,
    caller: Auth<ManageSettings>,
    body: web::Json<NewChannelRequest>,
) -> ApiResult<HttpResponse> {
    let client = caller.client_id()?;
    let body = body.into_inner();
    let name = validate::text("name", &body.name, 200)?;
    if body.provider == Provider::Widget {
        return Err(ApiError::Validation(Msg::UseWidgetsApi));
    }
    if !body.provider.supports(body.kind) {
        return Err(ApiError::Validation(Msg::ProviderLacksKind {
            provider: body.provider.as_str(),
            kind: body.kind.as_str(),
        }));
    }
    let settings = json_object("settings", body.settings)?.unwrap_or_else(|| json!({}));
    let credentials = json_object("credentials", body.credentials)?;
    if telephony::is_telephony(body.provider) {
        crate::callback::validate_channel(&state, body.provider, &settings, credentials.as_ref())?;
    }
    let channel = state
        .store
        .create_channel(&NewChannel {
            client_id: client,
            kind: body.kind,
            provider: body.provider,
            name,
            settings,
            credentials,
        })
        .await?;
    state
        .audit(caller.audit(
            Some(client),
            "channel.create",
            "channel",
            channel.id,
            json!({ "kind": channel.kind, "provider": channel.provider, "name": channel.name }),
        ))
        .await?;
    Ok(HttpResponse::Created().json(ChannelView::of(channel, &caller.principal)))
}

/// One channel; needs the `read` right on it (owners hold every right).
#[utoipa::path(get, path = "/api/v1/channels/{channel_id}", tag = "channels",
    params(("channel_id" = ChannelId, Path, description = "channel id")),
    responses((status = 200, body = ChannelView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "not the client's, or not delegated to the caller", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn get_channel(
    state: web::Data<AppState>,
    access: ChannelAccess<View>,
) -> ApiResult<web::Json<ChannelView>> {
    let channel = state
        .store
        .get_channel(access.caller.client_id()?, access.channel_id)
        .await?;
    Ok(web::Json(ChannelView::of(
        channel,
        &access.caller.principal,
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelUpdate {
    pub name: Option<String>,
    /// Replaces the settings document.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Value>,
    /// Replaces the stored credentials; write-only.
    #[schema(value_type = Option<Object>)]
    pub credentials: Option<Value>,
}

#[utoipa::path(patch, path = "/api/v1/channels/{channel_id}", tag = "channels", request_body = ChannelUpdate,
    params(("channel_id" = ChannelId, Path, description = "channel id")),
    responses((status = 200, body = ChannelView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn update_channel(
    state: web::Data<AppState>,
    caller: Auth<ManageSettings>,
    path: web::Path<ChannelId>,
    body: web::Json<ChannelUpdate>,
) -> ApiResult<web::Json<ChannelView>> {
    let client = caller.client_id()?;
    let body = body.into_inner();
    let patch = ChannelPatch {
        name: body
            .name
            .as_deref()
            .map(|n| validate::text("name", n, 200))
            .transpose()?,
        settings: json_object("settings", body.settings)?,
        credentials: json_object("credentials", body.credentials)?,
    };
    // Which fields changed is audited, never their values: credentials are secret.
    let changed: Vec<&str> = [
        ("name", patch.name.is_some()),
        ("settings", patch.settings.is_some()),
        ("credentials", patch.credentials.is_some()),
    ]
    .into_iter()
    .filter_map(|(f, set)| set.then_some(f))
    .collect();
    if changed.is_empty() {
        return Err(ApiError::Validation(Msg::NothingToChange {
            fields: Fields(&["name", "settings", "credentials"]),
        }));
    }
    let id = path.into_inner();
    let before = state.store.get_channel(client, id).await?;
    // A widget's settings are served to browsers: only the widgets API, which checks them,
    // changes them (and a widget has no credentials).
    if (patch.settings.is_some() || patch.credentials.is_some())
        && before.provider == Provider::Widget
    {
        return Err(ApiError::Validation(Msg::UseWidgetsApi));
    }
    if telephony::is_telephony(before.provider) {
        // The channel as it would be: new settings and credentials checked together.
        let credentials = match &patch.credentials {
            Some(new) => Some(new.clone()),
            None => state.store.channel_credentials(client, id).await?,
        };
        let settings = patch.settings.as_ref().unwrap_or(&before.settings);
        crate::callback::validate_channel(&state, before.provider, settings, credentials.as_ref())?;
    }
    let channel = state.store.update_channel(client, id, &patch).await?;
    // A new inbound token (or provider settings) counts from the next webhook on.
    state.hook_channels.forget(id);
    state
        .audit(caller.audit(
            Some(client),
            "channel.update",
            "channel",
            channel.id,
            json!({ "fields": changed }),
        ))
        .await?;
    Ok(web::Json(ChannelView::of(channel, &caller.principal)))
}

/// Disconnects a channel; grants on it go with it.
#[utoipa::path(delete, path = "/api/v1/channels/{channel_id}", tag = "channels",
    params(("channel_id" = ChannelId, Path, description = "channel id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn delete_channel(
    state: web::Data<AppState>,
    caller: Auth<ManageSettings>,
    path: web::Path<ChannelId>,
) -> ApiResult<HttpResponse> {
    let client = caller.client_id()?;
    let id = path.into_inner();
    state.store.delete_channel(client, id).await?;
    state.hook_channels.forget(id);
    // Cached callers of this client may still list a grant on the deleted channel.
    state.auth_cache.invalidate_client(client);
    state
        .audit(caller.audit(Some(client), "channel.delete", "channel", id, json!({})))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_objects_pass_as_settings_or_credentials() {
        assert!(json_object("settings", None).unwrap().is_none());
        assert!(
            json_object("settings", Some(json!({"a": 1})))
                .unwrap()
                .is_some()
        );
        for bad in [json!([1]), json!("x"), json!(1), json!(true)] {
            let err = json_object("credentials", Some(bad)).unwrap_err();
            assert_eq!(err.to_string(), "`credentials` must be a JSON object");
        }
    }
}
