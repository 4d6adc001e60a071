//! The owner's side of widgets: create one (a channel of provider `widget` with a fresh public
//! key), read and change its settings, and get the snippet to paste into the site. Deleting a
//! widget is deleting its channel (`DELETE /api/v1/channels/{id}`); visitors go with it.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use omnihub_core::model::{Channel, ChannelKind, Provider};
use omnihub_core::{ChannelId, validate};
use omnihub_store::{ChannelPatch, NewChannel, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::settings::WidgetSettings;
use crate::auth::tokens;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::{Auth, ManageSettings};
use crate::i18n::{Fields, Msg};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/widgets", web::get().to(list_widgets))
        .route("/widgets", web::post().to(create_widget))
        .route("/widgets/{channel_id}", web::get().to(get_widget))
        .route("/widgets/{channel_id}", web::patch().to(update_widget));
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(list_widgets, create_widget, get_widget, update_widget))]
pub struct Api;

/// A widget as its owner sees it.
#[derive(Serialize, ToSchema)]
pub struct WidgetView {
    /// The widget's channel.
    pub id: ChannelId,
    pub name: String,
    /// Published in the site's pages: not a secret.
    pub public_key: String,
    pub settings: WidgetSettings,
    /// The tag to paste into the site's pages.
    pub snippet: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct WidgetList {
    pub items: Vec<WidgetView>,
}

fn view(state: &AppState, channel: Channel, public_key: String) -> WidgetView {
    let base = state.config.server.public_url.trim_end_matches('/');
    WidgetView {
        id: channel.id,
        name: channel.name,
        snippet: format!(
            r#"<script src="{base}/widget.js" data-omnihub="{public_key}" async></script>"#
        ),
        public_key,
        settings: WidgetSettings::of_channel(&channel.settings),
        created_at: channel.created_at,
    }
}

/// The client's widgets.
#[utoipa::path(get, path = "/api/v1/widgets", tag = "widgets",
    responses((status = 200, body = WidgetList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_widgets(
    state: web::Data<AppState>,
    caller: Auth<ManageSettings>,
) -> ApiResult<web::Json<WidgetList>> {
    let client = caller.client_id()?;
    let mut items = Vec::new();
    for channel in state.store.list_channels(client).await? {
        if channel.provider != Provider::Widget {
            continue;
        }
        match state.store.widget_key(client, channel.id).await {
            Ok(key) => items.push(view(&state, channel, key)),
            Err(StoreError::NotFound) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(web::Json(WidgetList { items }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWidgetRequest {
    pub name: String,
    pub settings: WidgetSettings,
}

/// Creates a widget with a fresh public key.
#[utoipa::path(post, path = "/api/v1/widgets", tag = "widgets", request_body = NewWidgetRequest,
    responses((status = 201, body = WidgetView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn create_widget(
    state: web::Data<AppState>,
    caller: Auth<ManageSettings>,
    body: web::Json<NewWidgetRequest>,
) -> ApiResult<HttpResponse> {
    let client = caller.client_id()?;
    let body = body.into_inner();
    let name = validate::text("name", &body.name, 200)?;
    let settings = body.settings.validated()?;
    // 128 random bits are plenty for a name nobody can guess (it is public anyway).
    let public_key = format!("pk_{}", &tokens::random_secret()[..22]);
    let channel = state
        .store
        .create_widget(
            &NewChannel {
                client_id: client,
                kind: ChannelKind::Messaging,
                provider: Provider::Widget,
                name,
                settings: serde_json::to_value(&settings).map_err(ApiError::internal)?,
                credentials: None,
            },
            &public_key,
        )
        .await?;
    state
        .audit(caller.audit(
            Some(client),
            "widget.create",
            "channel",
            channel.id,
            json!({ "name": channel.name, "origins": settings.origins }),
        ))
        .await?;
    Ok(HttpResponse::Created().json(view(&state, channel, public_key)))
}

/// One widget.
#[utoipa::path(get, path = "/api/v1/widgets/{channel_id}", tag = "widgets",
    params(("channel_id" = ChannelId, Path, description = "the widget's channel")),
    responses((status = 200, body = WidgetView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn get_widget(
    state: web::Data<AppState>,
    caller: Auth<ManageSettings>,
    path: web::Path<ChannelId>,
) -> ApiResult<web::Json<WidgetView>> {
    let client = caller.client_id()?;
    let id = path.into_inner();
    let key = state.store.widget_key(client, id).await?;
    let channel = state.store.get_channel(client, id).await?;
    Ok(web::Json(view(&state, channel, key)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WidgetUpdate {
    pub name: Option<String>,
    /// Replaces the settings.
    pub settings: Option<WidgetSettings>,
}

/// Renames a widget or replaces its settings; pages using it see the change on their next load.
#[utoipa::path(patch, path = "/api/v1/widgets/{channel_id}", tag = "widgets", request_body = WidgetUpdate,
    params(("channel_id" = ChannelId, Path, description = "the widget's channel")),
    responses((status = 200, body = WidgetView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn update_widget(
    state: web::Data<AppState>,
    caller: Auth<ManageSettings>,
    path: web::Path<ChannelId>,
    body: web::Json<WidgetUpdate>,
) -> ApiResult<web::Json<WidgetView>> {
    let client = caller.client_id()?;
    let id = path.into_inner();
    let body = body.into_inner();
    if body.name.is_none() && body.settings.is_none() {
        return Err(ApiError::Validation(Msg::NothingToChange {
            fields: Fields(&["name", "settings"]),
        }));
    }
    let name = body
        .name
        .as_deref()
        .map(|n| validate::text("name", n, 200))
        .transpose()?;
    let settings = body.settings.map(WidgetSettings::validated).transpose()?;
    // Only a widget: the key is found for widgets of this client only.
    let key = state.store.widget_key(client, id).await?;
    let channel = state
        .store
        .update_channel(
            client,
            id,
            &ChannelPatch {
                name,
                settings: settings
                    .as_ref()
                    .map(serde_json::to_value)
                    .transpose()
                    .map_err(ApiError::internal)?,
                credentials: None,
            },
        )
        .await?;
    state
        .audit(caller.audit(
            Some(client),
            "widget.update",
            "channel",
            channel.id,
            json!({ "settings": settings.is_some(), "origins": settings.map(|s| s.origins) }),
        ))
        .await?;
    Ok(web::Json(view(&state, channel, key)))
}
