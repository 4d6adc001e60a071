//! Routing settings and operator state: how each group distributes conversations (mode,
//! working hours, out-of-hours auto-replies), each member's competency in a group, an
//! operator's capacity and "no new chats" flag, and one's own presence.
//!
//! Members of the client read routing; managers of employees change it. An operator may flip
//! their own "no new chats" flag and presence; capacity and anyone else's state are managers'.

use actix_web::{HttpResponse, web};
use omnihub_core::access::{Action, Decision};
use omnihub_core::routing::{
    AutoReplies, Presence, RoutingError, RoutingMode, WeeklyHours, validate_competency,
};
use omnihub_core::{GroupId, UserId, decide};
use omnihub_store::{GroupRouting, OperatorState, RoutingMember};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::conversations::message_text;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::{Auth, ManageEmployees, ViewOwnClient};
use crate::i18n::{Fields, Msg};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/groups/{id}/routing", web::get().to(get_routing))
        .route("/groups/{id}/routing", web::put().to(set_routing))
        .route(
            "/groups/{id}/members/{user_id}/competency",
            web::put().to(set_competency),
        )
        .route("/operators", web::get().to(list_operators))
        .route("/operators/{user_id}", web::patch().to(update_operator))
        .route("/auth/presence", web::put().to(set_presence));
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    get_routing,
    set_routing,
    set_competency,
    list_operators,
    update_operator,
    set_presence
))]
pub struct Api;

/// Longest auto-reply, in characters.
const MAX_AUTO_REPLY_CHARS: usize = 2_000;
/// Most conversations one operator may hold at once.
const MAX_CAPACITY: u32 = 1_000;

fn routing_error(e: RoutingError) -> ApiError {
    ApiError::Validation(match e {
        RoutingError::UnknownTimezone(zone) => Msg::UnknownTimezone { zone },
        RoutingError::BadRange { day, index, .. } => Msg::HoursRange {
            day: day + 1,
            period: index + 1,
        },
        RoutingError::TooManyRanges { day, max } => Msg::TooManyRanges { day: day + 1, max },
        RoutingError::Competency(_) => Msg::NumberRange {
            field: "level",
            min: 1,
            max: 100,
        },
    })
}

/// A group's routing settings and its members' competencies.
#[derive(Serialize, ToSchema)]
pub struct GroupRoutingView {
    pub group_id: GroupId,
    pub mode: RoutingMode,
    pub hours: WeeklyHours,
    pub auto_replies: AutoReplies,
    pub members: Vec<RoutingMember>,
}

async fn routing_view(
    state: &AppState,
    client: omnihub_core::ClientId,
    group: GroupId,
) -> ApiResult<GroupRoutingView> {
    // 404 for another client's group before anything else is read.
    let g = state.store.get_group(client, group).await?;
    let snapshot = state.store.routing_snapshot(client).await?;
    let found = snapshot
        .groups
        .into_iter()
        .find(|(candidate, _, _)| candidate.id == g.id);
    Ok(match found {
        Some((_, routing, members)) => GroupRoutingView {
            group_id: g.id,
            mode: routing.mode,
            hours: routing.hours,
            auto_replies: routing.auto_replies,
            members,
        },
        // A group never configured routes round-robin, always open, without auto-replies.
        None => GroupRoutingView {
            group_id: g.id,
            mode: RoutingMode::RoundRobin,
            hours: WeeklyHours::default(),
            auto_replies: AutoReplies::default(),
            members: Vec::new(),
        },
    })
}

#[utoipa::path(get, path = "/api/v1/groups/{id}/routing", tag = "routing",
    params(("id" = GroupId, Path, description = "group id")),
    responses((status = 200, body = GroupRoutingView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn get_routing(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    path: web::Path<GroupId>,
) -> ApiResult<web::Json<GroupRoutingView>> {
    Ok(web::Json(
        routing_view(&state, caller.client_id()?, path.into_inner()).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingSettings {
    pub mode: RoutingMode,
    /// Working hours in the group's time zone (an IANA name such as `Europe/Moscow`).
    pub hours: WeeklyHours,
    /// Up to four texts (new or returning customer × in or out of hours), 2,000 characters
    /// each; an absent one sends nothing.
    pub auto_replies: AutoReplies,
}

/// Replaces a group's routing settings.
#[utoipa::path(put, path = "/api/v1/groups/{id}/routing", tag = "routing", request_body = RoutingSettings,
    params(("id" = GroupId, Path, description = "group id")),
    responses((status = 200, body = GroupRoutingView),
        (status = 400, description = "an unknown time zone, overlapping hours or a bad text", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn set_routing(
    state: web::Data<AppState>,
    caller: Auth<ManageEmployees>,
    path: web::Path<GroupId>,
    body: web::Json<RoutingSettings>,
) -> ApiResult<web::Json<GroupRoutingView>> {
    let client = caller.client_id()?;
    let group = path.into_inner();
    let body = body.into_inner();
    body.hours.validate().map_err(routing_error)?;
    let r = &body.auto_replies;
    let text = |field: &'static str, t: &Option<String>| -> ApiResult<Option<String>> {
        t.as_deref()
            .map(|t| message_text(field, t, MAX_AUTO_REPLY_CHARS))
            .transpose()
    };
    let auto_replies = AutoReplies {
        new_in_hours: text("new_in_hours", &r.new_in_hours)?,
        new_off_hours: text("new_off_hours", &r.new_off_hours)?,
        returning_in_hours: text("returning_in_hours", &r.returning_in_hours)?,
        returning_off_hours: text("returning_off_hours", &r.returning_off_hours)?,
    };
    state.store.get_group(client, group).await?;
    let routing = GroupRouting {
        mode: body.mode,
        hours: body.hours,
        auto_replies,
    };
    state
        .store
        .set_group_routing(client, group, &routing)
        .await?;
    state
        .audit(caller.audit(
            Some(client),
            "group.routing_set",
            "group",
            group,
            json!({ "mode": routing.mode, "timezone": routing.hours.timezone }),
        ))
        .await?;
    Ok(web::Json(routing_view(&state, client, group).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Competency {
    /// 1 (novice) to 100 (expert); `most_skilled` routing prefers the highest.
    pub level: u8,
}

/// Sets a member's competency in a group.
#[utoipa::path(put, path = "/api/v1/groups/{id}/members/{user_id}/competency", tag = "routing",
    request_body = Competency,
    params(("id" = GroupId, Path, description = "group id"), ("user_id" = UserId, Path, description = "a member of the group")),
    responses((status = 200, body = RoutingMember), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "the group is not the client's, or the user is not its member", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn set_competency(
    state: web::Data<AppState>,
    caller: Auth<ManageEmployees>,
    path: web::Path<(GroupId, UserId)>,
    body: web::Json<Competency>,
) -> ApiResult<web::Json<RoutingMember>> {
    let client = caller.client_id()?;
    let (group, user) = path.into_inner();
    let level = validate_competency(body.level).map_err(routing_error)?;
    let g = state.store.get_group(client, group).await?;
    if !g.member_ids.contains(&user) {
        return Err(ApiError::NotFound);
    }
    state
        .store
        .set_competency(client, group, user, level)
        .await?;
    state
        .audit(caller.audit(
            Some(client),
            "group.competency_set",
            "group",
            group,
            json!({ "user_id": user, "level": level }),
        ))
        .await?;
    Ok(web::Json(RoutingMember {
        user_id: user,
        competency: level,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct OperatorList {
    /// Every active owner and employee of the client, oldest account first; those never
    /// configured show the defaults (capacity 5, accepting new chats, offline).
    pub items: Vec<OperatorState>,
}

/// Operators' routing state: capacity, "no new chats", presence and current load.
#[utoipa::path(get, path = "/api/v1/operators", tag = "routing",
    responses((status = 200, body = OperatorList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_operators(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
) -> ApiResult<web::Json<OperatorList>> {
    let snapshot = state.store.routing_snapshot(caller.client_id()?).await?;
    Ok(web::Json(OperatorList {
        items: snapshot.operators,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorUpdate {
    /// Conversations the operator may hold at once, 0 to 1,000 (managers only).
    pub capacity: Option<u32>,
    /// `false` is "no new chats": routing skips the operator (the operator may set their own).
    pub accepting_new: Option<bool>,
}

/// Changes an operator's capacity or "no new chats" flag.
#[utoipa::path(patch, path = "/api/v1/operators/{user_id}", tag = "routing", request_body = OperatorUpdate,
    params(("user_id" = UserId, Path, description = "an owner or employee of the client")),
    responses((status = 200, body = OperatorState), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "capacity, or another operator, without manage-employees", body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn update_operator(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    path: web::Path<UserId>,
    body: web::Json<OperatorUpdate>,
) -> ApiResult<web::Json<OperatorState>> {
    let client = caller.client_id()?;
    let user = path.into_inner();
    let body = body.into_inner();
    if body.capacity.is_none() && body.accepting_new.is_none() {
        return Err(ApiError::Validation(Msg::NothingToChange {
            fields: Fields(&["capacity", "accepting_new"]),
        }));
    }
    if let Some(c) = body.capacity
        && c > MAX_CAPACITY
    {
        return Err(ApiError::Validation(Msg::NumberRange {
            field: "capacity",
            min: 0,
            max: MAX_CAPACITY.into(),
        }));
    }
    let own_flag_only = user == caller.principal.user_id && body.capacity.is_none();
    if !own_flag_only {
        match decide(&caller.principal, Action::ManageEmployees) {
            Decision::Allow => {}
            Decision::Deny(d) => return Err(d.into()),
        }
    }
    state.store.get_client_user(client, user).await?;
    let operator = state
        .hub
        .set_operator(client, user, body.capacity, body.accepting_new, None)
        .await?;
    state
        .audit(caller.audit(
            Some(client),
            "operator.update",
            "user",
            user,
            json!({ "capacity": body.capacity, "accepting_new": body.accepting_new }),
        ))
        .await?;
    Ok(web::Json(operator))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresenceUpdate {
    pub presence: Presence,
}

/// Sets one's own presence (online, away, offline); routing assigns only to online operators.
#[utoipa::path(put, path = "/api/v1/auth/presence", tag = "routing", request_body = PresenceUpdate,
    responses((status = 200, body = OperatorState), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "platform staff have no presence", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn set_presence(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    body: web::Json<PresenceUpdate>,
) -> ApiResult<HttpResponse> {
    let client = caller.client_id()?;
    let me = caller.principal.user_id;
    let operator = state
        .hub
        .set_operator(client, me, None, None, Some(body.presence))
        .await?;
    state
        .audit(caller.audit(
            Some(client),
            "operator.presence",
            "user",
            me,
            json!({ "presence": body.presence }),
        ))
        .await?;
    Ok(HttpResponse::Ok().json(operator))
}
