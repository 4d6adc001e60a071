//! A client's scheduled tasks: what is planned and when (the console's calendar lists a time
//! range), how each went (status, attempts, the provider's reason of the last failure), and
//! control — cancel, reschedule to another time, retry a failed one. The owner and employees
//! with the `scheduling` right; another client's tasks do not exist for the caller.

use actix_web::web;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::{Auth, Scheduling};
use crate::i18n::Msg;
use crate::state::AppState;
use omnihub_store::{Task, TaskFilter, TaskStatus};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/tasks", web::get().to(list_tasks))
        .route("/tasks/{id}", web::get().to(get_task))
        .route("/tasks/{id}/cancel", web::post().to(cancel_task))
        .route("/tasks/{id}/reschedule", web::post().to(reschedule_task))
        .route("/tasks/{id}/retry", web::post().to(retry_task));
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(list_tasks, get_task, cancel_task, reschedule_task, retry_task))]
pub struct Api;

/// Tasks listed at most at once.
const MAX_LIMIT: u32 = 1000;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TaskQuery {
    /// Only tasks in this status.
    #[param(value_type = Option<String>, example = "failed")]
    pub status: Option<TaskStatus>,
    /// Only tasks of this kind, e.g. `social.publish`.
    pub kind: Option<String>,
    /// Due at or after this moment (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Due before this moment (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// At most this many, earliest due first (default 100, at most 1000).
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct TaskList {
    pub items: Vec<Task>,
}

#[utoipa::path(get, path = "/api/v1/tasks", tag = "scheduler", params(TaskQuery),
    responses((status = 200, body = TaskList), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_tasks(
    state: web::Data<AppState>,
    caller: Auth<Scheduling>,
    query: web::Query<TaskQuery>,
) -> ApiResult<web::Json<TaskList>> {
    let client = caller.client_id()?;
    let q = query.into_inner();
    if let (Some(from), Some(to)) = (q.from, q.to)
        && from >= to
    {
        return Err(ApiError::InvalidParameter(Msg::TimeRangeOrder));
    }
    let filter = TaskFilter {
        status: q.status,
        kind: q.kind,
        from: q.from,
        to: q.to,
        limit: q.limit.unwrap_or(100).clamp(1, MAX_LIMIT),
    };
    let items = state.store.list_tasks(client, &filter).await?;
    Ok(web::Json(TaskList { items }))
}

#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "scheduler",
    params(("id" = Uuid, Path, description = "task id")),
    responses((status = 200, body = Task), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn get_task(
    state: web::Data<AppState>,
    caller: Auth<Scheduling>,
    path: web::Path<Uuid>,
) -> ApiResult<web::Json<Task>> {
    let task = state
        .store
        .get_task(caller.client_id()?, path.into_inner())
        .await?;
    Ok(web::Json(task))
}

fn status_name(status: &TaskStatus) -> &'static str {
    match status {
        TaskStatus::Pending => "pending",
        TaskStatus::Running => "running",
        TaskStatus::Done => "done",
        TaskStatus::Failed => "failed",
        TaskStatus::Cancelled => "cancelled",
        TaskStatus::Skipped => "skipped",
    }
}

/// Cancels a pending or failed task; a recurring one does not run again.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/cancel", tag = "scheduler",
    params(("id" = Uuid, Path, description = "task id")),
    responses((status = 200, body = Task), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "the task is running, done, skipped or cancelled already", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn cancel_task(
    state: web::Data<AppState>,
    caller: Auth<Scheduling>,
    path: web::Path<Uuid>,
) -> ApiResult<web::Json<Task>> {
    let client = caller.client_id()?;
    let id = path.into_inner();
    let Some(task) = state.store.cancel_task(client, id, state.hub.now()).await? else {
        let task = state.store.get_task(client, id).await?;
        return Err(ApiError::Conflict(Msg::TaskCannotCancel {
            status: status_name(&task.status),
        }));
    };
    state
        .audit(caller.audit(
            Some(client),
            "task.cancel",
            "task",
            id,
            json!({ "kind": task.kind, "due_at": task.due_at }),
        ))
        .await?;
    Ok(web::Json(task))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleRequest {
    /// When it runs now (RFC 3339); a past moment runs it at once.
    pub due_at: DateTime<Utc>,
}

/// Moves a pending, failed or skipped task to another time (pending again).
#[utoipa::path(post, path = "/api/v1/tasks/{id}/reschedule", tag = "scheduler", request_body = RescheduleRequest,
    params(("id" = Uuid, Path, description = "task id")),
    responses((status = 200, body = Task), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "the task is running, done or cancelled", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn reschedule_task(
    state: web::Data<AppState>,
    caller: Auth<Scheduling>,
    path: web::Path<Uuid>,
    body: web::Json<RescheduleRequest>,
) -> ApiResult<web::Json<Task>> {
    let client = caller.client_id()?;
    let id = path.into_inner();
    let before = state.store.get_task(client, id).await?;
    let Some(task) = state.store.reschedule_task(client, id, body.due_at).await? else {
        return Err(ApiError::Conflict(Msg::TaskCannotReschedule {
            status: status_name(&before.status),
        }));
    };
    state.hub.poke_scheduler();
    state
        .audit(caller.audit(
            Some(client),
            "task.reschedule",
            "task",
            id,
            json!({ "kind": task.kind, "from": before.due_at, "to": task.due_at }),
        ))
        .await?;
    Ok(web::Json(task))
}

/// Runs a failed or skipped task again now, with its attempts counted afresh.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/retry", tag = "scheduler",
    params(("id" = Uuid, Path, description = "task id")),
    responses((status = 200, body = Task), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "the task did not fail and was not skipped", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn retry_task(
    state: web::Data<AppState>,
    caller: Auth<Scheduling>,
    path: web::Path<Uuid>,
) -> ApiResult<web::Json<Task>> {
    let client = caller.client_id()?;
    let id = path.into_inner();
    let before = state.store.get_task(client, id).await?;
    let refused = || {
        ApiError::Conflict(Msg::TaskCannotRetry {
            status: status_name(&before.status),
        })
    };
    if !matches!(before.status, TaskStatus::Failed | TaskStatus::Skipped) {
        return Err(refused());
    }
    let task = state
        .store
        .reschedule_task(client, id, state.hub.now())
        .await?
        .ok_or_else(refused)?;
    state.hub.poke_scheduler();
    state
        .audit(caller.audit(
            Some(client),
            "task.retry",
            "task",
            id,
            json!({ "kind": task.kind, "last_error": before.last_error }),
        ))
        .await?;
    Ok(web::Json(task))
}
