//! Groups of a client's employees (used for routing and visibility): anyone in the client reads
//! them, managers of employees change them.

use actix_web::{HttpResponse, web};
use omnihub_core::model::Group;
use omnihub_core::{GroupId, UserId, validate};
use omnihub_store::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::invites::dedupe;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::{Auth, ManageEmployees, ViewOwnClient};
use crate::i18n::Msg;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/groups", web::get().to(list_groups))
        .route("/groups", web::post().to(create_group))
        .route("/groups/{id}", web::get().to(get_group))
        .route("/groups/{id}", web::patch().to(rename_group))
        .route("/groups/{id}", web::delete().to(delete_group))
        .route("/groups/{id}/members", web::put().to(set_members));
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_groups,
    create_group,
    get_group,
    rename_group,
    delete_group,
    set_members
))]
pub struct Api;

/// A clearer message than the generic one for the only unique value a group has.
fn name_taken(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(_) => ApiError::Conflict(Msg::GroupNameTaken),
        other => other.into(),
    }
}

#[derive(Serialize, ToSchema)]
pub struct GroupList {
    pub items: Vec<Group>,
}

#[utoipa::path(get, path = "/api/v1/groups", tag = "groups",
    responses((status = 200, body = GroupList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_groups(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
) -> ApiResult<web::Json<GroupList>> {
    let items = state.store.list_groups(caller.client_id()?).await?;
    Ok(web::Json(GroupList { items }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupName {
    /// 1 to 200 characters, unique within the client.
    pub name: String,
}

#[utoipa::path(post, path = "/api/v1/groups", tag = "groups", request_body = GroupName,
    responses((status = 201, body = Group), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, description = "the name is taken", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn create_group(
    state: web::Data<AppState>,
    caller: Auth<ManageEmployees>,
    body: web::Json<GroupName>,
) -> ApiResult<HttpResponse> {
    let client = caller.client_id()?;
    let name = validate::text("name", &body.name, 200)?;
    let group = state
        .store
        .create_group(client, &name)
        .await
        .map_err(name_taken)?;
    state
        .audit(caller.audit(
            Some(client),
            "group.create",
            "group",
            group.id,
            json!({ "name": group.name }),
        ))
        .await?;
    Ok(HttpResponse::Created().json(group))
}

#[utoipa::path(get, path = "/api/v1/groups/{id}", tag = "groups",
    params(("id" = GroupId, Path, description = "group id")),
    responses((status = 200, body = Group), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn get_group(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    path: web::Path<GroupId>,
) -> ApiResult<web::Json<Group>> {
    Ok(web::Json(
        state
            .store
            .get_group(caller.client_id()?, path.into_inner())
            .await?,
    ))
}

#[utoipa::path(patch, path = "/api/v1/groups/{id}", tag = "groups", request_body = GroupName,
    params(("id" = GroupId, Path, description = "group id")),
    responses((status = 200, body = Group), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "the name is taken", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn rename_group(
    state: web::Data<AppState>,
    caller: Auth<ManageEmployees>,
    path: web::Path<GroupId>,
    body: web::Json<GroupName>,
) -> ApiResult<web::Json<Group>> {
    let client = caller.client_id()?;
    let name = validate::text("name", &body.name, 200)?;
    let group = state
        .store
        .rename_group(client, path.into_inner(), &name)
        .await
        .map_err(name_taken)?;
    state
        .audit(caller.audit(
            Some(client),
            "group.rename",
            "group",
            group.id,
            json!({ "name": group.name }),
        ))
        .await?;
    Ok(web::Json(group))
}

/// Deletes a group; its members stay in the client.
#[utoipa::path(delete, path = "/api/v1/groups/{id}", tag = "groups",
    params(("id" = GroupId, Path, description = "group id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn delete_group(
    state: web::Data<AppState>,
    caller: Auth<ManageEmployees>,
    path: web::Path<GroupId>,
) -> ApiResult<HttpResponse> {
    let client = caller.client_id()?;
    let id = path.into_inner();
    state.store.delete_group(client, id).await?;
    // Cached principals carry their groups, which decide what conversations they see.
    state.auth_cache.invalidate_client(client);
    state
        .audit(caller.audit(Some(client), "group.delete", "group", id, json!({})))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupMembers {
    /// The complete new member list: users of this client (repeats are ignored).
    pub member_ids: Vec<UserId>,
}

/// Replaces a group's members.
#[utoipa::path(put, path = "/api/v1/groups/{id}/members", tag = "groups", request_body = GroupMembers,
    params(("id" = GroupId, Path, description = "group id")),
    responses((status = 200, body = Group), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "the group or a member is not the client's", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn set_members(
    state: web::Data<AppState>,
    caller: Auth<ManageEmployees>,
    path: web::Path<GroupId>,
    body: web::Json<GroupMembers>,
) -> ApiResult<web::Json<Group>> {
    let client = caller.client_id()?;
    let members = dedupe(body.into_inner().member_ids);
    let group = state
        .store
        .set_group_members(client, path.into_inner(), &members)
        .await?;
    // Cached principals carry their groups, which decide what conversations they see.
    state.auth_cache.invalidate_client(client);
    state
        .audit(caller.audit(
            Some(client),
            "group.members_set",
            "group",
            group.id,
            json!({ "member_ids": group.member_ids }),
        ))
        .await?;
    Ok(web::Json(group))
}
