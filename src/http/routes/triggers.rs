//! Triggered-task rules ("when a post or comment with #X appears / by author Y → like,
//! dislike, reply from a template, hide, notify an employee"), kept by the owner and employees
//! with the `scheduling` right; and each user's own notifications. A dislike rule bound to a
//! profile whose network has no dislikes is refused with the network's reason; one for any
//! profile fires only on networks with dislikes.

use actix_web::{HttpResponse, web};
use omnihub_connectors::social::{self as net, Action as NetAction};
use omnihub_core::conversation::TemplateError;
use omnihub_core::triggers::{
    Trigger, TriggerAction, TriggerCondition, check_reply_template, normalize_hashtag,
};
use omnihub_core::{ChannelId, TriggerId, validate};
use omnihub_store::{NewTrigger, Notification, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::conversations::message_text;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::{Auth, Caller, Scheduling, ViewOwnClient};
use crate::i18n::Msg;
use crate::social::SocialFailure;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/triggers", web::get().to(list_triggers))
        .route("/triggers", web::post().to(create_trigger))
        .route("/triggers/{id}", web::get().to(get_trigger))
        .route("/triggers/{id}", web::put().to(update_trigger))
        .route("/triggers/{id}", web::delete().to(delete_trigger))
        .route("/notifications", web::get().to(list_notifications));
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_triggers,
    create_trigger,
    get_trigger,
    update_trigger,
    delete_trigger,
    list_notifications
))]
pub struct Api;

/// The longest reply template.
const MAX_TEMPLATE_CHARS: usize = 4000;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerInput {
    /// 1 to 100 characters.
    pub name: String,
    /// Only items of this social profile of the client; absent for any of its profiles.
    pub profile_id: Option<Uuid>,
    pub condition: TriggerCondition,
    /// A reply's template may use `{{author.name}}`, `{{item.text}}` and `{{network}}`.
    pub action: TriggerAction,
    /// Default true.
    pub enabled: Option<bool>,
}

fn template_error(e: TemplateError) -> ApiError {
    ApiError::Validation(match e {
        TemplateError::UnknownVariable(name) => Msg::TemplateUnknownVariable { name },
        TemplateError::Unclosed { near } => Msg::TemplateUnclosed { near },
    })
}

/// The rule as stored, or why it cannot be.
async fn checked(state: &AppState, caller: &Caller, input: TriggerInput) -> ApiResult<NewTrigger> {
    let client = caller.client_id()?;
    let name = validate::text("name", &input.name, 100)?;
    let condition = match input.condition {
        TriggerCondition::Hashtag { hashtag } => {
            let Some(normal) = normalize_hashtag(&hashtag) else {
                return Err(ApiError::Validation(Msg::InvalidHashtag { value: hashtag }));
            };
            TriggerCondition::Hashtag {
                hashtag: format!("#{normal}"),
            }
        }
        TriggerCondition::Author { author_id } => TriggerCondition::Author {
            author_id: validate::text("author_id", &author_id, 100)?,
        },
    };
    let action = match input.action {
        TriggerAction::Reply { template } => {
            let template = message_text("template", &template, MAX_TEMPLATE_CHARS)?;
            check_reply_template(&template).map_err(template_error)?;
            TriggerAction::Reply { template }
        }
        TriggerAction::Notify { user_id } => {
            match state.store.get_client_user(client, user_id).await {
                Ok(_) => {}
                Err(StoreError::NotFound) => return Err(ApiError::Validation(Msg::NotifyWhom)),
                Err(other) => return Err(other.into()),
            }
            TriggerAction::Notify { user_id }
        }
        TriggerAction::Dislike => {
            if let Some(profile) = input.profile_id {
                dislikes_on(state, client, ChannelId(profile)).await?;
            }
            TriggerAction::Dislike
        }
        other => other,
    };
    Ok(NewTrigger {
        name,
        profile_id: input.profile_id,
        condition,
        action,
        enabled: input.enabled.unwrap_or(true),
    })
}

/// Refuses a dislike rule bound to a profile whose network has no dislikes, with its reason.
async fn dislikes_on(
    state: &AppState,
    client: omnihub_core::ClientId,
    profile: ChannelId,
) -> ApiResult<()> {
    let profile = match state.store.get_social_profile(client, profile).await {
        Ok(profile) => profile,
        Err(StoreError::NotFound) => {
            return Err(ApiError::Validation(Msg::SocialBadValue {
                field: "profile_id",
            }));
        }
        Err(other) => return Err(other.into()),
    };
    let Some(network) = net::Network::parse(&profile.network) else {
        return Err(ApiError::Validation(Msg::SocialBadValue {
            field: "profile_id",
        }));
    };
    net::capabilities(network)
        .require(NetAction::Dislike)
        .map_err(|reason| {
            super::social::api_failure(
                SocialFailure::Unsupported {
                    action: NetAction::Dislike,
                    reason,
                },
                &profile.network,
            )
        })
}

#[derive(Serialize, ToSchema)]
pub struct TriggerList {
    pub items: Vec<Trigger>,
}

#[utoipa::path(get, path = "/api/v1/triggers", tag = "scheduler",
    responses((status = 200, body = TriggerList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_triggers(
    state: web::Data<AppState>,
    caller: Auth<Scheduling>,
) -> ApiResult<web::Json<TriggerList>> {
    let items = state.store.list_triggers(caller.client_id()?).await?;
    Ok(web::Json(TriggerList { items }))
}

#[utoipa::path(post, path = "/api/v1/triggers", tag = "scheduler", request_body = TriggerInput,
    responses((status = 201, body = Trigger),
        (status = 400, description = "bad fields, a hashtag that is not one, an unknown template variable, or an employee not of the client", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, description = "`unsupported_by_network`: a dislike on a profile whose network has none", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn create_trigger(
    state: web::Data<AppState>,
    caller: Auth<Scheduling>,
    body: web::Json<TriggerInput>,
) -> ApiResult<HttpResponse> {
    let client = caller.client_id()?;
    let rule = checked(&state, &caller, body.into_inner()).await?;
    let trigger = state.store.create_trigger(client, &rule).await?;
    state
        .audit(caller.audit(
            Some(client),
            "trigger.create",
            "trigger",
            trigger.id,
            json!({ "name": trigger.name }),
        ))
        .await?;
    Ok(HttpResponse::Created().json(trigger))
}

#[utoipa::path(get, path = "/api/v1/triggers/{id}", tag = "scheduler",
    params(("id" = TriggerId, Path, description = "trigger id")),
    responses((status = 200, body = Trigger), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn get_trigger(
    state: web::Data<AppState>,
    caller: Auth<Scheduling>,
    path: web::Path<TriggerId>,
) -> ApiResult<web::Json<Trigger>> {
    let trigger = state
        .store
        .get_trigger(caller.client_id()?, path.into_inner())
        .await?;
    Ok(web::Json(trigger))
}

/// Replaces a rule (items that arrived before keep the tasks they made).
#[utoipa::path(put, path = "/api/v1/triggers/{id}", tag = "scheduler", request_body = TriggerInput,
    params(("id" = TriggerId, Path, description = "trigger id")),
    responses((status = 200, body = Trigger), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "`unsupported_by_network`: a dislike on a profile whose network has none", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn update_trigger(
    state: web::Data<AppState>,
    caller: Auth<Scheduling>,
    path: web::Path<TriggerId>,
    body: web::Json<TriggerInput>,
) -> ApiResult<web::Json<Trigger>> {
    let client = caller.client_id()?;
    let id = path.into_inner();
    state.store.get_trigger(client, id).await?;
    let rule = checked(&state, &caller, body.into_inner()).await?;
    let trigger = state.store.update_trigger(client, id, &rule).await?;
    state
        .audit(caller.audit(
            Some(client),
            "trigger.update",
            "trigger",
            id,
            json!({ "name": trigger.name, "enabled": trigger.enabled }),
        ))
        .await?;
    Ok(web::Json(trigger))
}

#[utoipa::path(delete, path = "/api/v1/triggers/{id}", tag = "scheduler",
    params(("id" = TriggerId, Path, description = "trigger id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn delete_trigger(
    state: web::Data<AppState>,
    caller: Auth<Scheduling>,
    path: web::Path<TriggerId>,
) -> ApiResult<HttpResponse> {
    let client = caller.client_id()?;
    let id = path.into_inner();
    state.store.delete_trigger(client, id).await?;
    state
        .audit(caller.audit(Some(client), "trigger.delete", "trigger", id, json!({})))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NotificationQuery {
    /// At most this many, newest first (default 50, at most 200).
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct NotificationList {
    pub items: Vec<Notification>,
}

/// The caller's own notifications (they also arrive live on the console's socket as
/// `notification` events).
#[utoipa::path(get, path = "/api/v1/notifications", tag = "scheduler", params(NotificationQuery),
    responses((status = 200, body = NotificationList), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_notifications(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    query: web::Query<NotificationQuery>,
) -> ApiResult<web::Json<NotificationList>> {
    let items = state
        .store
        .list_notifications(
            caller.client_id()?,
            caller.principal.user_id,
            query.limit.unwrap_or(50).clamp(1, 200),
        )
        .await?;
    Ok(web::Json(NotificationList { items }))
}
