//! The caller's client's audit log, newest first, paged by a cursor.

use actix_web::web;
use omnihub_core::model::AuditEntry;
use omnihub_core::{AuditEntryId, UserId, validate};
use omnihub_store::AuditFilter;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::error::{ApiResult, ErrorBody};
use crate::http::extract::{Auth, ViewAnalytics};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit", web::get().to(list_audit));
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(list_audit))]
pub struct Api;

pub(super) const DEFAULT_LIMIT: u32 = 50;
pub(super) const MAX_LIMIT: u32 = 200;

/// Page size for list routes: 50 when absent, otherwise clamped to 1..=200.
pub(super) fn page_limit(limit: Option<u32>) -> u32 {
    limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only entries by this user.
    pub actor_id: Option<UserId>,
    /// Only actions starting with this, e.g. `employee.` or `group.create`.
    pub action: Option<String>,
    /// The `next_before` of the previous page.
    pub before: Option<AuditEntryId>,
    /// 1 to 200 (larger values are clamped); 50 by default.
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<AuditEntryId>,
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_audit(
    state: web::Data<AppState>,
    caller: Auth<ViewAnalytics>,
    query: web::Query<AuditQuery>,
) -> ApiResult<web::Json<AuditPage>> {
    let query = query.into_inner();
    let limit = page_limit(query.limit);
    let action_prefix = match query.action.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(a) => Some(validate::text("action", a, 100)?),
    };
    let filter = AuditFilter {
        actor_id: query.actor_id,
        action_prefix,
        before: query.before,
        limit,
    };
    let items = state.store.list_audit(caller.client_id()?, &filter).await?;
    Ok(web::Json(AuditPage {
        next_before: next_cursor(&items, limit),
        items,
    }))
}

/// A full page may have a successor; a short one is the last.
fn next_cursor(items: &[AuditEntry], limit: u32) -> Option<AuditEntryId> {
    if items.len() >= limit as usize {
        items.last().map(|e| e.id)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_clamped() {
        assert_eq!(page_limit(None), DEFAULT_LIMIT);
        assert_eq!(page_limit(Some(0)), 1);
        assert_eq!(page_limit(Some(7)), 7);
        assert_eq!(page_limit(Some(10_000)), MAX_LIMIT);
    }

    #[test]
    fn cursor_only_after_a_full_page() {
        let entry = |id| AuditEntry {
            id,
            client_id: None,
            actor_id: None,
            action: "x.y".into(),
            target_kind: None,
            target_id: None,
            details: serde_json::json!({}),
            ip: None,
            created_at: chrono::Utc::now(),
        };
        let (a, b) = (AuditEntryId::new(), AuditEntryId::new());
        let page = [entry(a), entry(b)];
        assert_eq!(next_cursor(&page, 2), Some(b));
        assert_eq!(next_cursor(&page, 3), None);
        assert_eq!(next_cursor(&[], 1), None);
    }
}
