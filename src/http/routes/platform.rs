//! Platform staff routes: list, create, inspect, block and unblock clients; add and remove
//! moderators. Accounts created here get an unusable password and a one-time link to set one.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use omnihub_core::model::{Channel, Client, ClientStatus, User};
use omnihub_core::{ClientId, GlobalRights, Role, UserId, validate};
use omnihub_store::{ClientFilter, NewUser};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::audit::page_limit;
use super::invites::{ensure_email_free, link_expiry, mail_link, one_time_link};
use crate::auth::{password, tokens};
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::{Auth, BlockClient, CreateClient, ManageModerators, ViewClients};
use crate::i18n::{Lang, Mail};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/platform/clients", web::get().to(list_clients))
        .route("/platform/clients", web::post().to(create_client))
        .route("/platform/clients/{id}", web::get().to(get_client))
        .route("/platform/clients/{id}/block", web::post().to(block_client))
        .route(
            "/platform/clients/{id}/unblock",
            web::post().to(unblock_client),
        )
        .route("/platform/moderators", web::get().to(list_moderators))
        .route("/platform/moderators", web::post().to(create_moderator))
        .route(
            "/platform/moderators/{id}",
            web::delete().to(remove_moderator),
        )
        .route("/platform/hub", web::get().to(hub_health));
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_clients,
    create_client,
    get_client,
    block_client,
    unblock_client,
    list_moderators,
    create_moderator,
    remove_moderator,
    hub_health
))]
pub struct Api;

/// The actor tree as it runs on this node: the root's children with their restarts, and every
/// started client with its status and failed channels — where a client or channel that kept
/// crashing shows as `failed`.
#[utoipa::path(get, path = "/api/v1/platform/hub", tag = "platform",
    responses((status = 200, body = omnihub_actors::HubHealth), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn hub_health(
    state: web::Data<AppState>,
    _caller: Auth<ViewClients>,
) -> web::Json<omnihub_actors::HubHealth> {
    web::Json(state.hub.health())
}

/// Russian-speaking businesses come first (the design brief), as in the rest of the API.
const DEFAULT_LOCALE: &str = "ru";

/// A one-time link to set the first password, handed out once.
struct SetupLink {
    url: String,
    expires_at: DateTime<Utc>,
    email_sent: bool,
}

/// Creates an account nobody can sign in to until its holder sets a password through the link
/// (a password-reset token), which is also e-mailed when SMTP is configured.
async fn create_account(state: &AppState, user: NewUser) -> ApiResult<(User, SetupLink)> {
    let placeholder = tokens::random_secret();
    // argon2 is slow by design: keep it off the async workers.
    let password_hash = web::block(move || password::hash(&placeholder))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let user = state
        .store
        .create_user(&NewUser {
            password_hash,
            ..user
        })
        .await?;
    let secret = tokens::random_secret();
    let expires_at = link_expiry(state, Utc::now());
    state
        .store
        .create_password_reset(user.id, &tokens::hash(&secret), expires_at)
        .await?;
    let url = one_time_link(&state.config.server.public_url, "reset-password", &secret);
    let mail = Mail::account_setup(&url, expires_at).render(Lang::from_locale(&user.locale));
    let email_sent = mail_link(state, &user.email, mail)?;
    Ok((
        user,
        SetupLink {
            url,
            expires_at,
            email_sent,
        },
    ))
}

fn locale_or_default(raw: Option<&str>) -> ApiResult<String> {
    Ok(validate::locale(raw.unwrap_or(DEFAULT_LOCALE))?)
}

// --- clients ------------------------------------------------------------------------------

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ClientQuery {
    /// Case-insensitive part of the client's name or of its owner's e-mail.
    pub q: Option<String>,
    pub status: Option<ClientStatus>,
    /// 1 to 200 (larger values are clamped); 50 by default.
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct ClientPage {
    /// Newest first.
    pub items: Vec<Client>,
    /// How many clients match the filter in all.
    pub total: u64,
}

#[utoipa::path(get, path = "/api/v1/platform/clients", tag = "platform", params(ClientQuery),
    responses((status = 200, body = ClientPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_clients(
    state: web::Data<AppState>,
    _caller: Auth<ViewClients>,
    query: web::Query<ClientQuery>,
) -> ApiResult<web::Json<ClientPage>> {
    let query = query.into_inner();
    let q = match query.q.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(q) => Some(validate::text("q", q, 200)?),
    };
    let filter = ClientFilter {
        query: q,
        status: query.status,
        limit: page_limit(query.limit),
        offset: query.offset.unwrap_or(0),
    };
    let (items, total) = state.store.list_clients(&filter).await?;
    Ok(web::Json(ClientPage { items, total }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClientRequest {
    pub name: String,
    /// Tariff plan code.
    pub plan: Option<String>,
    pub owner_email: String,
    pub owner_name: String,
    /// The owner's interface language, `ru` (default) or `en`.
    pub locale: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedClient {
    pub client: Client,
    pub owner: User,
    /// Where the owner sets their password; shown only in this response.
    pub owner_setup_url: String,
    pub owner_setup_expires_at: DateTime<Utc>,
    /// Whether the link was queued for e-mail (false when the server has no SMTP).
    pub email_sent: bool,
}

/// Creates a client and its owner, who gets a one-time link to set a password.
#[utoipa::path(post, path = "/api/v1/platform/clients", tag = "platform", request_body = NewClientRequest,
    responses((status = 201, body = CreatedClient), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, description = "the owner's e-mail is taken", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn create_client(
    state: web::Data<AppState>,
    caller: Auth<CreateClient>,
    body: web::Json<NewClientRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let name = validate::text("name", &body.name, 200)?;
    let plan = body
        .plan
        .as_deref()
        .map(|p| validate::text("plan", p, 64))
        .transpose()?;
    let email = validate::email(&body.owner_email)?;
    let owner_name = validate::text("owner_name", &body.owner_name, 200)?;
    let locale = locale_or_default(body.locale.as_deref())?;
    // Checked before the client exists, so a taken address leaves nothing behind. (Two
    // concurrent requests for one address can still leave an ownerless client: the store has
    // no call creating both in one transaction.)
    ensure_email_free(&state, &email).await?;
    let client = state.store.create_client(&name, plan.as_deref()).await?;
    let (owner, link) = create_account(
        &state,
        NewUser {
            email,
            display_name: owner_name,
            password_hash: String::new(),
            role: Role::ClientOwner,
            client_id: Some(client.id),
            global_rights: GlobalRights::all(),
            locale,
        },
    )
    .await?;
    state
        .audit(caller.audit(
            Some(client.id),
            "client.create",
            "client",
            client.id,
            json!({ "name": client.name, "plan": client.plan, "owner_id": owner.id, "owner_email": owner.email }),
        ))
        .await?;
    Ok(HttpResponse::Created().json(CreatedClient {
        client,
        owner,
        owner_setup_url: link.url,
        owner_setup_expires_at: link.expires_at,
        email_sent: link.email_sent,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct ClientCounts {
    pub users: usize,
    /// Users who are not disabled.
    pub active_users: usize,
    pub channels: usize,
    pub groups: usize,
}

#[derive(Serialize, ToSchema)]
pub struct ClientDetails {
    pub client: Client,
    /// Owners and employees, oldest first.
    pub users: Vec<User>,
    /// Connected channels (credentials are never shown).
    pub channels: Vec<Channel>,
    pub counts: ClientCounts,
}

#[utoipa::path(get, path = "/api/v1/platform/clients/{id}", tag = "platform",
    params(("id" = ClientId, Path, description = "client id")),
    responses((status = 200, body = ClientDetails), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn get_client(
    state: web::Data<AppState>,
    _caller: Auth<ViewClients>,
    path: web::Path<ClientId>,
) -> ApiResult<web::Json<ClientDetails>> {
    let id = path.into_inner();
    let client = state.store.get_client(id).await?;
    let users = state.store.list_client_users(id).await?;
    let channels = state.store.list_channels(id).await?;
    let groups = state.store.list_groups(id).await?.len();
    let counts = ClientCounts {
        users: users.len(),
        active_users: users.iter().filter(|u| !u.disabled).count(),
        channels: channels.len(),
        groups,
    };
    Ok(web::Json(ClientDetails {
        client,
        users,
        channels,
        counts,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockRequest {
    /// Shown to the client's members; 1 to 500 characters.
    pub reason: String,
}

/// Blocks a client: its members keep only their own account until it is unblocked.
#[utoipa::path(post, path = "/api/v1/platform/clients/{id}/block", tag = "platform", request_body = BlockRequest,
    params(("id" = ClientId, Path, description = "client id")),
    responses((status = 200, body = Client), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn block_client(
    state: web::Data<AppState>,
    caller: Auth<BlockClient>,
    path: web::Path<ClientId>,
    body: web::Json<BlockRequest>,
) -> ApiResult<web::Json<Client>> {
    let id = path.into_inner();
    let reason = validate::text("reason", &body.reason, 500)?;
    let client = state
        .store
        .set_client_status(id, ClientStatus::Blocked, Some(&reason))
        .await?;
    state.auth_cache.invalidate_client(id);
    state
        .audit(caller.audit(
            Some(id),
            "client.block",
            "client",
            id,
            json!({ "reason": reason }),
        ))
        .await?;
    Ok(web::Json(client))
}

#[utoipa::path(post, path = "/api/v1/platform/clients/{id}/unblock", tag = "platform",
    params(("id" = ClientId, Path, description = "client id")),
    responses((status = 200, body = Client), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn unblock_client(
    state: web::Data<AppState>,
    caller: Auth<BlockClient>,
    path: web::Path<ClientId>,
) -> ApiResult<web::Json<Client>> {
    let id = path.into_inner();
    let client = state
        .store
        .set_client_status(id, ClientStatus::Active, None)
        .await?;
    state.auth_cache.invalidate_client(id);
    state
        .audit(caller.audit(Some(id), "client.unblock", "client", id, json!({})))
        .await?;
    Ok(web::Json(client))
}

// --- moderators ---------------------------------------------------------------------------

#[derive(Serialize, ToSchema)]
pub struct ModeratorList {
    /// Disabled (removed) moderators included, marked `disabled`.
    pub items: Vec<User>,
}

#[utoipa::path(get, path = "/api/v1/platform/moderators", tag = "platform",
    responses((status = 200, body = ModeratorList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_moderators(
    state: web::Data<AppState>,
    _caller: Auth<ManageModerators>,
) -> ApiResult<web::Json<ModeratorList>> {
    let items = state.store.list_staff(Role::PlatformModerator).await?;
    Ok(web::Json(ModeratorList { items }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewModeratorRequest {
    pub email: String,
    pub display_name: String,
    /// `ru` (default) or `en`.
    pub locale: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedModerator {
    pub user: User,
    /// Where the moderator sets their password; shown only in this response.
    pub setup_url: String,
    pub setup_expires_at: DateTime<Utc>,
    /// Whether the link was queued for e-mail (false when the server has no SMTP).
    pub email_sent: bool,
}

/// Adds a moderator, who gets a one-time link to set a password.
#[utoipa::path(post, path = "/api/v1/platform/moderators", tag = "platform", request_body = NewModeratorRequest,
    responses((status = 201, body = CreatedModerator), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, description = "the e-mail is taken", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn create_moderator(
    state: web::Data<AppState>,
    caller: Auth<ManageModerators>,
    body: web::Json<NewModeratorRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let email = validate::email(&body.email)?;
    let display_name = validate::text("display_name", &body.display_name, 200)?;
    let locale = locale_or_default(body.locale.as_deref())?;
    ensure_email_free(&state, &email).await?;
    let (user, link) = create_account(
        &state,
        NewUser {
            email,
            display_name,
            password_hash: String::new(),
            role: Role::PlatformModerator,
            client_id: None,
            global_rights: GlobalRights::empty(),
            locale,
        },
    )
    .await?;
    state
        .audit(caller.audit(
            None,
            "moderator.create",
            "user",
            user.id,
            json!({ "email": user.email }),
        ))
        .await?;
    Ok(HttpResponse::Created().json(CreatedModerator {
        user,
        setup_url: link.url,
        setup_expires_at: link.expires_at,
        email_sent: link.email_sent,
    }))
}

/// Removes a moderator: disables the account and ends their sessions; history stays.
#[utoipa::path(delete, path = "/api/v1/platform/moderators/{id}", tag = "platform",
    params(("id" = UserId, Path, description = "moderator's user id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, description = "no moderator with this id", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn remove_moderator(
    state: web::Data<AppState>,
    caller: Auth<ManageModerators>,
    path: web::Path<UserId>,
) -> ApiResult<HttpResponse> {
    let id = path.into_inner();
    let user = state.store.get_user(id).await?;
    if user.role != Role::PlatformModerator {
        return Err(ApiError::NotFound);
    }
    state.store.set_user_disabled(id, true).await?;
    state.store.revoke_user_sessions(id).await?;
    state.auth_cache.invalidate_user(id);
    state
        .audit(caller.audit(
            None,
            "moderator.remove",
            "user",
            id,
            json!({ "email": user.email }),
        ))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
