//! Sign-in and one's own account: login with throttling, lockout and second factor, sign-out,
//! profile, password change and reset, TOTP enrolment, and accepting an invitation.

use std::sync::OnceLock;

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Duration, Utc};
use omnihub_core::model::{Client, User};
use omnihub_core::{ChannelId, ChannelRights, ClientId, GlobalRights, Role, UserId, validate};
use omnihub_store::{NewAuditEntry, Session, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::cache::Credential;
use crate::auth::{password, tokens, totp};
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::{Auth, OwnAccount, peer_ip, session_cookie_name};
use crate::i18n::{Lang, Mail, Msg};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/login", web::post().to(login))
        .route("/auth/logout", web::post().to(logout))
        .route("/auth/me", web::get().to(me))
        .route("/auth/profile", web::get().to(profile))
        .route("/auth/profile", web::patch().to(update_profile))
        .route("/auth/password", web::post().to(change_password))
        .route(
            "/auth/password-reset",
            web::post().to(request_password_reset),
        )
        .route(
            "/auth/password-reset/confirm",
            web::post().to(confirm_password_reset),
        )
        .route("/auth/totp/setup", web::post().to(totp_setup))
        .route("/auth/totp/enable", web::post().to(totp_enable))
        .route("/auth/totp/disable", web::post().to(totp_disable))
        .route("/auth/invites/{token}", web::get().to(invite_preview))
        .route("/auth/invites/accept", web::post().to(accept_invite));
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    login,
    logout,
    me,
    profile,
    update_profile,
    change_password,
    request_password_reset,
    confirm_password_reset,
    totp_setup,
    totp_enable,
    totp_disable,
    invite_preview,
    accept_invite
))]
pub struct Api;

/// Hashing runs on the blocking pool: argon2 takes tens of milliseconds by design.
async fn hash_password(raw: String) -> ApiResult<String> {
    web::block(move || password::hash(&raw))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

async fn verify_password(raw: String, stored: String) -> ApiResult<bool> {
    web::block(move || password::verify(&raw, &stored))
        .await
        .map_err(ApiError::internal)
}

/// A hash verified against when the e-mail is unknown, so timing does not tell which
/// addresses have accounts.
fn dummy_hash() -> String {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY
        .get_or_init(|| password::hash(&tokens::random_secret()).unwrap_or_default())
        .clone()
}

fn session_cookie(state: &AppState, value: String, ttl: Duration) -> Cookie<'static> {
    Cookie::build(session_cookie_name(state), value)
        .path("/")
        .http_only(true)
        .secure(state.config.security.cookie_secure)
        .same_site(SameSite::Strict)
        .max_age(CookieDuration::seconds(ttl.num_seconds()))
        .finish()
}

fn expired_cookie(state: &AppState) -> Cookie<'static> {
    let mut c = session_cookie(state, String::new(), Duration::zero());
    c.make_removal();
    c
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// Required when the account has a second factor.
    pub totp_code: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    pub user: User,
    /// Echo it in the `X-CSRF-Token` header of every unsafe request made with the cookie.
    pub csrf_token: String,
    pub expires_at: chrono::DateTime<Utc>,
}

/// Signs in with e-mail and password (and a TOTP code when enabled); sets the session cookie.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse),
        (status = 401, description = "invalid_credentials, totp_required or invalid_totp", body = ErrorBody),
        (status = 423, description = "account_locked", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody)))]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> ApiResult<HttpResponse> {
    state.check_login_rate(peer_ip(&req))?;
    let body = body.into_inner();
    let now = Utc::now();
    let email = validate::email(&body.email).map_err(|_| ApiError::InvalidCredentials)?;
    let creds = match state.store.credentials_by_email(&email).await {
        Ok(c) => c,
        Err(StoreError::NotFound) => {
            verify_password(body.password, dummy_hash()).await?;
            return Err(ApiError::InvalidCredentials);
        }
        Err(e) => return Err(e.into()),
    };
    let user = creds.user;
    if let Some(until) = creds.locked_until.filter(|u| *u > now) {
        return Err(ApiError::AccountLocked((until - now).num_seconds().max(1)));
    }
    let security = &state.config.security;
    let ip = peer_ip(&req).map(|ip| ip.to_string());
    let fail = |state: web::Data<AppState>, error: ApiError| async move {
        let f = state
            .store
            .record_login_failure(
                user.id,
                now,
                i64::from(state.config.security.login_max_failures),
                Duration::minutes(state.config.security.login_lockout_minutes as i64),
            )
            .await?;
        match f.locked_until {
            Some(until) if until > now => {
                state
                    .audit(NewAuditEntry {
                        client_id: user.client_id,
                        actor_id: Some(user.id),
                        action: "auth.lockout".into(),
                        target_kind: Some("user".into()),
                        target_id: Some(user.id.to_string()),
                        details: serde_json::json!({ "failed_logins": f.failed_logins }),
                        ip: ip.clone(),
                    })
                    .await?;
                Err(ApiError::AccountLocked((until - now).num_seconds().max(1)))
            }
            _ => Err::<HttpResponse, _>(error),
        }
    };
    if !verify_password(body.password, creds.password_hash).await? || user.disabled {
        return fail(state.clone(), ApiError::InvalidCredentials).await;
    }
    if user.totp_enabled {
        let secret = creds.totp_secret.unwrap_or_default();
        match body.totp_code.as_deref() {
            None | Some("") => return Err(ApiError::TotpRequired),
            Some(code) if !state.totp_guard.verify(user.id, &secret, code) => {
                return fail(state.clone(), ApiError::InvalidTotp).await;
            }
            Some(_) => {}
        }
    }
    state.store.reset_login_failures(user.id).await?;

    let secret = tokens::random_secret();
    let ttl = Duration::hours(security.session_ttl_hours as i64);
    let session = Session {
        token_hash: tokens::hash(&secret),
        user_id: user.id,
        csrf_token: tokens::random_secret(),
        created_at: now,
        expires_at: now + ttl,
        last_seen_at: now,
        ip: peer_ip(&req).map(|ip| ip.to_string()),
        user_agent: req
            .headers()
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect()),
    };
    state.store.create_session(&session).await?;
    state
        .audit(NewAuditEntry {
            client_id: user.client_id,
            actor_id: Some(user.id),
            action: "auth.login".into(),
            target_kind: Some("user".into()),
            target_id: Some(user.id.to_string()),
            details: serde_json::json!({ "second_factor": user.totp_enabled }),
            ip: session.ip.clone(),
        })
        .await?;
    Ok(HttpResponse::Ok()
        .cookie(session_cookie(&state, secret, ttl))
        .json(LoginResponse {
            user,
            csrf_token: session.csrf_token,
            expires_at: session.expires_at,
        }))
}

/// Ends the current session (an API token is revoked through `/tokens` instead).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn logout(state: web::Data<AppState>, auth: Auth<OwnAccount>) -> ApiResult<HttpResponse> {
    if let Credential::Session { token_hash, .. } = &auth.credential {
        state.store.delete_session(token_hash).await?;
        state.auth_cache.remove(token_hash);
    }
    Ok(HttpResponse::NoContent()
        .cookie(expired_cookie(&state))
        .finish())
}

#[derive(Serialize, ToSchema)]
pub struct ChannelRightsEntry {
    pub channel_id: ChannelId,
    pub rights: ChannelRights,
}

/// Who the caller is and what they may do, answered from the authentication cache.
#[derive(Serialize, ToSchema)]
pub struct Me {
    pub user_id: UserId,
    pub role: Role,
    pub client_id: Option<ClientId>,
    pub client_active: bool,
    pub global_rights: GlobalRights,
    /// Channels delegated to an employee (owners hold every channel fully).
    pub channels: Vec<ChannelRightsEntry>,
    /// Present for cookie sessions: the value for `X-CSRF-Token`.
    pub csrf_token: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn me(auth: Auth<OwnAccount>) -> web::Json<Me> {
    let p = &auth.principal;
    web::Json(Me {
        user_id: p.user_id,
        role: p.role,
        client_id: p.client_id,
        client_active: p.client_active,
        global_rights: p.global,
        channels: p
            .channels
            .iter()
            .map(|(id, r)| ChannelRightsEntry {
                channel_id: *id,
                rights: *r,
            })
            .collect(),
        csrf_token: match &auth.credential {
            Credential::Session { csrf_token, .. } => Some(csrf_token.clone()),
            Credential::ApiToken => None,
        },
    })
}

#[derive(Serialize, ToSchema)]
pub struct Profile {
    pub user: User,
    pub client: Option<Client>,
}

#[utoipa::path(get, path = "/api/v1/auth/profile", tag = "auth",
    responses((status = 200, body = Profile), (status = 401, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn profile(
    state: web::Data<AppState>,
    auth: Auth<OwnAccount>,
) -> ApiResult<web::Json<Profile>> {
    let user = state.store.get_user(auth.principal.user_id).await?;
    let client = match user.client_id {
        Some(id) => Some(state.store.get_client(id).await?),
        None => None,
    };
    Ok(web::Json(Profile { user, client }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    pub display_name: Option<String>,
    /// `ru` or `en`.
    pub locale: Option<String>,
}

#[utoipa::path(patch, path = "/api/v1/auth/profile", tag = "auth", request_body = ProfileUpdate,
    responses((status = 200, body = User), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn update_profile(
    state: web::Data<AppState>,
    auth: Auth<OwnAccount>,
    body: web::Json<ProfileUpdate>,
) -> ApiResult<web::Json<User>> {
    let name = body
        .display_name
        .as_deref()
        .map(|n| validate::text("display_name", n, 200))
        .transpose()?;
    let locale = body.locale.as_deref().map(validate::locale).transpose()?;
    let user = state
        .store
        .update_user_profile(auth.principal.user_id, name.as_deref(), locale.as_deref())
        .await?;
    state
        .audit(auth.audit(
            user.client_id,
            "account.profile_update",
            "user",
            user.id,
            serde_json::json!({}),
        ))
        .await?;
    Ok(web::Json(user))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// Changes the password and signs the user out everywhere, this session included.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", request_body = PasswordChange,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn change_password(
    state: web::Data<AppState>,
    auth: Auth<OwnAccount>,
    body: web::Json<PasswordChange>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    validate::password(&body.new_password)?;
    let id = auth.principal.user_id;
    let creds = state.store.credentials(id).await?;
    if !verify_password(body.current_password, creds.password_hash).await? {
        return Err(ApiError::InvalidCredentials);
    }
    let hash = hash_password(body.new_password).await?;
    state.store.set_password_hash(id, &hash).await?;
    state.store.revoke_user_sessions(id).await?;
    state.auth_cache.invalidate_user(id);
    state
        .audit(auth.audit(
            creds.user.client_id,
            "account.password_change",
            "user",
            id,
            serde_json::json!({}),
        ))
        .await?;
    Ok(HttpResponse::NoContent()
        .cookie(expired_cookie(&state))
        .finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    pub email: String,
}

/// Sends a single-use reset link if the address has an account. Always 202, so the answer
/// does not reveal which addresses exist.
#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "auth", request_body = ResetRequest,
    responses((status = 202), (status = 429, body = ErrorBody), (status = 503, description = "email_not_configured", body = ErrorBody)))]
pub async fn request_password_reset(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<ResetRequest>,
) -> ApiResult<HttpResponse> {
    state.check_login_rate(peer_ip(&req))?;
    if state.mailer.is_none() {
        return Err(ApiError::EmailNotConfigured);
    }
    let email = validate::email(&body.email)?;
    match state.store.credentials_by_email(&email).await {
        Ok(creds) if !creds.user.disabled => {
            let secret = tokens::random_secret();
            let ttl = Duration::minutes(state.config.security.password_reset_ttl_minutes as i64);
            state
                .store
                .create_password_reset(creds.user.id, &tokens::hash(&secret), Utc::now() + ttl)
                .await?;
            let link = format!(
                "{}/reset-password#token={secret}",
                state.config.server.public_url.trim_end_matches('/')
            );
            // Stored locales are validated, so this is the reader's language (an unexpected
            // one would get both languages).
            let (subject, text) = Mail::password_reset(&link, ttl.num_minutes())
                .render(Lang::from_locale(&creds.user.locale));
            state.send_mail_later(email, subject, text)?;
        }
        Ok(_) | Err(StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(HttpResponse::Accepted().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    pub token: String,
    pub new_password: String,
}

/// Sets a new password with a reset link's token; signs the user out everywhere.
#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", tag = "auth", request_body = ResetConfirm,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 410, description = "invalid_token", body = ErrorBody)))]
pub async fn confirm_password_reset(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<ResetConfirm>,
) -> ApiResult<HttpResponse> {
    state.check_login_rate(peer_ip(&req))?;
    let body = body.into_inner();
    validate::password(&body.new_password)?;
    let hash = hash_password(body.new_password).await?;
    let user_id = state
        .store
        .consume_password_reset(&tokens::hash(&body.token), Utc::now(), &hash)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::InvalidToken,
            other => other.into(),
        })?;
    state.auth_cache.invalidate_user(user_id);
    let user = state.store.get_user(user_id).await?;
    state
        .audit(NewAuditEntry {
            client_id: user.client_id,
            actor_id: Some(user_id),
            action: "account.password_reset".into(),
            target_kind: Some("user".into()),
            target_id: Some(user_id.to_string()),
            details: serde_json::json!({}),
            ip: peer_ip(&req).map(|ip| ip.to_string()),
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpSetupRequest {
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct TotpEnrolment {
    /// Base32 secret to type into an authenticator app.
    pub secret: String,
    /// `otpauth://` URL to show as a QR code.
    pub otpauth_url: String,
}

/// Starts second-factor enrolment: a new secret that takes effect after `/auth/totp/enable`.
#[utoipa::path(post, path = "/api/v1/auth/totp/setup", tag = "auth", request_body = TotpSetupRequest,
    responses((status = 200, body = TotpEnrolment), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn totp_setup(
    state: web::Data<AppState>,
    auth: Auth<OwnAccount>,
    body: web::Json<TotpSetupRequest>,
) -> ApiResult<web::Json<TotpEnrolment>> {
    let creds = state.store.credentials(auth.principal.user_id).await?;
    if creds.user.totp_enabled {
        return Err(ApiError::Conflict(Msg::TotpSetupWhileEnabled));
    }
    if !verify_password(body.into_inner().password, creds.password_hash).await? {
        return Err(ApiError::InvalidCredentials);
    }
    let secret = totp::new_secret();
    let (secret_b32, otpauth_url) = totp::enrolment(&secret, &creds.user.email)
        .ok_or_else(|| ApiError::internal("totp enrolment"))?;
    state
        .store
        .set_totp(creds.user.id, Some(&secret), false)
        .await?;
    Ok(web::Json(TotpEnrolment {
        secret: secret_b32,
        otpauth_url,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    pub code: String,
}

/// Confirms enrolment with a current code; from now on sign-in asks for one.
#[utoipa::path(post, path = "/api/v1/auth/totp/enable", tag = "auth", request_body = TotpCode,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn totp_enable(
    state: web::Data<AppState>,
    auth: Auth<OwnAccount>,
    body: web::Json<TotpCode>,
) -> ApiResult<HttpResponse> {
    let creds = state.store.credentials(auth.principal.user_id).await?;
    let secret = creds
        .totp_secret
        .ok_or(ApiError::Conflict(Msg::TotpSetupFirst))?;
    if creds.user.totp_enabled {
        return Err(ApiError::Conflict(Msg::TotpAlreadyEnabled));
    }
    if !state.totp_guard.verify(creds.user.id, &secret, &body.code) {
        return Err(ApiError::InvalidTotp);
    }
    state
        .store
        .set_totp(creds.user.id, Some(&secret), true)
        .await?;
    state
        .audit(auth.audit(
            creds.user.client_id,
            "account.totp_enable",
            "user",
            creds.user.id,
            serde_json::json!({}),
        ))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpDisable {
    pub password: String,
    pub code: String,
}

/// Removes the second factor; needs both the password and a current code.
#[utoipa::path(post, path = "/api/v1/auth/totp/disable", tag = "auth", request_body = TotpDisable,
    responses((status = 204), (status = 401, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn totp_disable(
    state: web::Data<AppState>,
    auth: Auth<OwnAccount>,
    body: web::Json<TotpDisable>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let creds = state.store.credentials(auth.principal.user_id).await?;
    let secret = creds
        .totp_secret
        .filter(|_| creds.user.totp_enabled)
        .ok_or(ApiError::InvalidTotp)?;
    if !verify_password(body.password, creds.password_hash).await? {
        return Err(ApiError::InvalidCredentials);
    }
    if !state.totp_guard.verify(creds.user.id, &secret, &body.code) {
        return Err(ApiError::InvalidTotp);
    }
    state.store.set_totp(creds.user.id, None, false).await?;
    state
        .audit(auth.audit(
            creds.user.client_id,
            "account.totp_disable",
            "user",
            creds.user.id,
            serde_json::json!({}),
        ))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, ToSchema)]
pub struct InvitePreview {
    pub client_name: String,
    pub email: String,
    pub expires_at: chrono::DateTime<Utc>,
}

/// What an invitation link is for, before accepting it.
#[utoipa::path(get, path = "/api/v1/auth/invites/{token}", tag = "auth",
    params(("token" = String, Path, description = "the secret from the invitation link")),
    responses((status = 200, body = InvitePreview), (status = 410, body = ErrorBody)))]
pub async fn invite_preview(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> ApiResult<web::Json<InvitePreview>> {
    state.check_login_rate(peer_ip(&req))?;
    let invite = state
        .store
        .pending_invite(&tokens::hash(&token), Utc::now())
        .await
        .map_err(invalid_token)?;
    let client = state.store.get_client(invite.client_id).await?;
    Ok(web::Json(InvitePreview {
        client_name: client.name,
        email: invite.email,
        expires_at: invite.expires_at,
    }))
}

fn invalid_token(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::InvalidToken,
        other => other.into(),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvite {
    pub token: String,
    pub display_name: String,
    pub password: String,
    pub locale: Option<String>,
}

/// Joins the client as an employee with the rights the invitation carries.
#[utoipa::path(post, path = "/api/v1/auth/invites/accept", tag = "auth", request_body = AcceptInvite,
    responses((status = 201, body = User), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 410, body = ErrorBody)))]
pub async fn accept_invite(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<AcceptInvite>,
) -> ApiResult<HttpResponse> {
    state.check_login_rate(peer_ip(&req))?;
    let body = body.into_inner();
    let name = validate::text("display_name", &body.display_name, 200)?;
    validate::password(&body.password)?;
    let locale = validate::locale(body.locale.as_deref().unwrap_or("ru"))?;
    let token_hash = tokens::hash(&body.token);
    // Refuse a dead link before spending a password hash on it.
    state
        .store
        .pending_invite(&token_hash, Utc::now())
        .await
        .map_err(invalid_token)?;
    let hash = hash_password(body.password).await?;
    let user = state
        .store
        .accept_invite(&token_hash, Utc::now(), &name, &hash, &locale)
        .await
        .map_err(invalid_token)?;
    state
        .audit(NewAuditEntry {
            client_id: user.client_id,
            actor_id: Some(user.id),
            action: "employee.join".into(),
            target_kind: Some("user".into()),
            target_id: Some(user.id.to_string()),
            details: serde_json::json!({ "email": user.email }),
            ip: peer_ip(&req).map(|ip| ip.to_string()),
        })
        .await?;
    Ok(HttpResponse::Created().json(user))
}
