//! Invitations of new employees, and the one-time links (invites, first-password setup) that the
//! platform and client routes hand out once and e-mail when SMTP is configured.

use std::collections::HashSet;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, SubsecRound, Utc};
use omnihub_core::model::{ChannelGrant, Invite};
use omnihub_core::{ClientId, GlobalRights, GroupId, InviteId, validate};
use omnihub_store::{NewInvite, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::employees::{
    check_channel_grants, check_global_grant, ensure_channels, normalize_grants,
};
use crate::auth::tokens;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::{Auth, ManageEmployees};
use crate::i18n::{Mail, Msg};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/invites", web::get().to(list_invites))
        .route("/invites", web::post().to(create_invite))
        .route("/invites/{id}", web::delete().to(delete_invite));
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(list_invites, create_invite, delete_invite))]
pub struct Api;

// --- one-time links, shared with the platform routes --------------------------------------

/// The page a one-time link opens. The secret goes in the fragment so it never reaches server
/// logs or `Referer` headers.
pub(super) fn one_time_link(public_url: &str, page: &str, secret: &str) -> String {
    format!("{}/{page}#token={secret}", public_url.trim_end_matches('/'))
}

/// When a link handed out now stops working (`security.invite_ttl_hours`), in whole seconds so
/// the time in the creating response equals the one read back from the store later.
pub(super) fn link_expiry(state: &AppState, now: DateTime<Utc>) -> DateTime<Utc> {
    now.trunc_subsecs(0) + chrono::Duration::hours(state.config.security.invite_ttl_hours as i64)
}

/// Queues the e-mail; `false` when this server has no SMTP (the caller then relies on the link
/// returned in the response).
pub(super) fn mail_link(
    state: &AppState,
    to: &str,
    (subject, body): (String, String),
) -> ApiResult<bool> {
    match state.send_mail_later(to.to_string(), subject, body) {
        Ok(()) => Ok(true),
        Err(ApiError::EmailNotConfigured) => Ok(false),
        Err(e) => Err(e),
    }
}

/// 409 when an account already uses the address (checked up front so nothing is half-created).
pub(super) async fn ensure_email_free(state: &AppState, email: &str) -> ApiResult<()> {
    match state.store.credentials_by_email(email).await {
        Ok(_) => Err(ApiError::Conflict(Msg::EmailTaken)),
        Err(StoreError::NotFound) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

// --- routes -------------------------------------------------------------------------------

#[derive(Serialize, ToSchema)]
pub struct InviteList {
    pub items: Vec<Invite>,
}

/// Invitations of the caller's client, pending, accepted and expired.
#[utoipa::path(get, path = "/api/v1/invites", tag = "invites",
    responses((status = 200, body = InviteList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_invites(
    state: web::Data<AppState>,
    caller: Auth<ManageEmployees>,
) -> ApiResult<web::Json<InviteList>> {
    let items = state.store.list_invites(caller.client_id()?).await?;
    Ok(web::Json(InviteList { items }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInviteRequest {
    pub email: String,
    /// Rights the employee gets on joining; none by default. Only rights the inviter holds.
    #[serde(default)]
    pub global_rights: GlobalRights,
    /// Groups of this client the employee joins.
    #[serde(default)]
    pub group_ids: Vec<GroupId>,
    /// Channels of this client delegated to the employee.
    #[serde(default)]
    pub channel_grants: Vec<ChannelGrant>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedInvite {
    #[serde(flatten)]
    pub invite: Invite,
    /// The invitation link; shown only in this response.
    pub url: String,
    /// Whether the link was queued for e-mail (false when the server has no SMTP).
    pub email_sent: bool,
}

/// Invites someone by e-mail. The link is returned once and e-mailed when SMTP is configured.
#[utoipa::path(post, path = "/api/v1/invites", tag = "invites", request_body = NewInviteRequest,
    responses((status = 201, body = CreatedInvite),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "forbidden, also when granting a right the caller does not hold", body = ErrorBody),
        (status = 404, description = "a group or channel is not the client's", body = ErrorBody),
        (status = 409, description = "a user with this e-mail exists", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn create_invite(
    state: web::Data<AppState>,
    caller: Auth<ManageEmployees>,
    body: web::Json<NewInviteRequest>,
) -> ApiResult<HttpResponse> {
    let client = caller.client_id()?;
    let body = body.into_inner();
    let email = validate::email(&body.email)?;
    let grants = normalize_grants(body.channel_grants)?;
    let group_ids = dedupe(body.group_ids);
    check_global_grant(&caller.principal, GlobalRights::empty(), body.global_rights)?;
    check_channel_grants(&caller.principal, &[], &grants)?;
    ensure_groups(&state, client, &group_ids).await?;
    ensure_channels(&state, client, &grants).await?;
    ensure_email_free(&state, &email).await?;

    let secret = tokens::random_secret();
    let now = Utc::now();
    let expires_at = link_expiry(&state, now);
    let invite = state
        .store
        .create_invite(&NewInvite {
            client_id: client,
            email: email.clone(),
            token_hash: tokens::hash(&secret),
            global_rights: body.global_rights,
            group_ids,
            channel_grants: grants,
            created_by: caller.principal.user_id,
            expires_at,
        })
        .await?;
    let url = one_time_link(&state.config.server.public_url, "invite", &secret);
    // The invitee has no account, so no language yet: the mail carries both.
    let email_sent = mail_link(&state, &email, Mail::invite(&url, expires_at).render(None))?;
    state
        .audit(caller.audit(
            Some(client),
            "invite.create",
            "invite",
            invite.id,
            json!({
                "email": invite.email,
                "global_rights": invite.global_rights,
                "group_ids": invite.group_ids,
                "channel_grants": invite.channel_grants,
            }),
        ))
        .await?;
    Ok(HttpResponse::Created().json(CreatedInvite {
        invite,
        url,
        email_sent,
    }))
}

/// Withdraws an invitation; its link stops working.
#[utoipa::path(delete, path = "/api/v1/invites/{id}", tag = "invites",
    params(("id" = InviteId, Path, description = "invitation id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn delete_invite(
    state: web::Data<AppState>,
    caller: Auth<ManageEmployees>,
    path: web::Path<InviteId>,
) -> ApiResult<HttpResponse> {
    let client = caller.client_id()?;
    let id = path.into_inner();
    state.store.delete_invite(client, id).await?;
    state
        .audit(caller.audit(Some(client), "invite.delete", "invite", id, json!({})))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Drops repeated ids, keeping the first occurrence's order.
pub(super) fn dedupe<T: Copy + Eq + std::hash::Hash>(ids: Vec<T>) -> Vec<T> {
    let mut seen = HashSet::new();
    ids.into_iter().filter(|id| seen.insert(*id)).collect()
}

/// 404 unless every group belongs to the client.
async fn ensure_groups(state: &AppState, client: ClientId, ids: &[GroupId]) -> ApiResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let own: HashSet<GroupId> = state
        .store
        .list_groups(client)
        .await?
        .into_iter()
        .map(|g| g.id)
        .collect();
    if ids.iter().all(|id| own.contains(id)) {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn links_put_the_secret_in_the_fragment() {
        assert_eq!(
            one_time_link("https://h.example/", "invite", "s3"),
            "https://h.example/invite#token=s3"
        );
        assert_eq!(
            one_time_link("https://h.example", "reset-password", "x"),
            "https://h.example/reset-password#token=x"
        );
    }

    #[test]
    fn dedupe_keeps_first_order() {
        assert_eq!(dedupe(vec![3, 1, 3, 2, 1]), vec![3, 1, 2]);
    }
}
