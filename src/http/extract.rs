//! The typed extractors that authenticate a request and enforce its right. A handler names what
//! it needs in its signature (`Auth<ManageEmployees>`, `ChannelAccess<View>`) and never checks
//! rights itself; the decision is `omnihub_core::decide`.

use std::marker::PhantomData;
use std::net::IpAddr;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{FromRequest, HttpRequest, web};
use chrono::Utc;
use omnihub_core::access::{Action, Decision};
use omnihub_core::{ChannelId, ClientId, Principal, decide};
use omnihub_store::{NewAuditEntry, StoreError};

use crate::auth::cache::Credential;
use crate::auth::tokens::{self, API_TOKEN_PREFIX};
use crate::http::error::{ApiError, ApiResult};
use crate::i18n::Msg;
use crate::state::AppState;

pub const SESSION_COOKIE_SECURE: &str = "__Host-omnihub_session";
pub const SESSION_COOKIE_PLAIN: &str = "omnihub_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The name of the session cookie: the `__Host-` prefix (which browsers only accept on
/// Secure, host-only, path-`/` cookies) whenever cookies are Secure.
pub fn session_cookie_name(state: &AppState) -> &'static str {
    if state.config.security.cookie_secure {
        SESSION_COOKIE_SECURE
    } else {
        SESSION_COOKIE_PLAIN
    }
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Arc<Principal>,
    pub credential: Credential,
    pub ip: Option<IpAddr>,
}

impl Caller {
    /// The caller's client; only reached after `decide` allowed a client-scoped action.
    pub fn client_id(&self) -> ApiResult<ClientId> {
        self.principal.client_id.ok_or(ApiError::Forbidden)
    }

    /// An audit entry for something this caller did.
    pub fn audit(
        &self,
        client: Option<ClientId>,
        action: &str,
        target_kind: &str,
        target_id: impl ToString,
        details: serde_json::Value,
    ) -> NewAuditEntry {
        NewAuditEntry {
            client_id: client,
            actor_id: Some(self.principal.user_id),
            action: action.to_string(),
            target_kind: Some(target_kind.to_string()),
            target_id: Some(target_id.to_string()),
            details,
            ip: self.ip.map(|ip| ip.to_string()),
        }
    }
}

pub fn peer_ip(req: &HttpRequest) -> Option<IpAddr> {
    req.peer_addr().map(|a| a.ip())
}

fn bearer_token(req: &HttpRequest) -> ApiResult<Option<String>> {
    let Some(value) = req.headers().get(actix_web::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| t.starts_with(API_TOKEN_PREFIX))
        .ok_or(ApiError::Unauthenticated)?;
    Ok(Some(token.to_string()))
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Resolves the caller from an API token or the session cookie, with the CSRF check for
/// cookie-authenticated unsafe requests.
pub async fn authenticate(req: &HttpRequest) -> ApiResult<Caller> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal("application state missing"))?
        .get_ref()
        .clone();
    let ip = peer_ip(req);
    let now = Utc::now();

    let (key, cached) = if let Some(token) = bearer_token(req)? {
        let key = tokens::hash(&token);
        let cached = state.auth_cache.get(&key);
        (key, cached)
    } else {
        let cookie = req
            .cookie(session_cookie_name(&state))
            .ok_or(ApiError::Unauthenticated)?;
        let key = tokens::hash(cookie.value());
        let cached = state.auth_cache.get(&key);
        (key, cached)
    };

    let caller = match cached {
        Some(c) => Caller {
            principal: c.principal,
            credential: c.credential,
            ip,
        },
        None => {
            let (user_id, credential) = if req.headers().contains_key("authorization") {
                let token = state
                    .store
                    .use_api_token(&key, now)
                    .await
                    .map_err(unauthenticated)?;
                (token.user_id, Credential::ApiToken)
            } else {
                let session = state
                    .store
                    .touch_session(&key, now)
                    .await
                    .map_err(unauthenticated)?;
                let credential = Credential::Session {
                    token_hash: key.clone(),
                    csrf_token: session.csrf_token,
                };
                (session.user_id, credential)
            };
            let principal = Arc::new(
                state
                    .load_principal(user_id)
                    .await?
                    .ok_or(ApiError::Unauthenticated)?,
            );
            state
                .auth_cache
                .put(key, principal.clone(), credential.clone());
            Caller {
                principal,
                credential,
                ip,
            }
        }
    };

    if let Credential::Session { csrf_token, .. } = &caller.credential
        && is_unsafe(req.method())
    {
        let sent = req
            .headers()
            .get(CSRF_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !tokens::constant_time_eq(sent, csrf_token.as_bytes()) {
            return Err(ApiError::CsrfFailed);
        }
    }
    Ok(caller)
}

fn unauthenticated(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::Unauthenticated,
        other => other.into(),
    }
}

fn enforce(caller: &Caller, action: Action) -> ApiResult<()> {
    match decide(&caller.principal, action) {
        Decision::Allow => Ok(()),
        Decision::Deny(denial) => Err(denial.into()),
    }
}

/// A right a route requires, fixed at compile time.
pub trait Requirement {
    const ACTION: Action;
}

macro_rules! requirements {
    ($($(#[$doc:meta])* $name:ident => $action:expr;)+) => {$(
        $(#[$doc])*
        pub struct $name;
        impl Requirement for $name {
            const ACTION: Action = $action;
        }
    )+};
}

requirements! {
    /// Any signed-in user acting on their own account.
    OwnAccount => Action::OwnAccount;
    ViewClients => Action::ViewClients;
    CreateClient => Action::CreateClient;
    BlockClient => Action::BlockClient;
    ManageModerators => Action::ManageModerators;
    ViewOwnClient => Action::ViewOwnClient;
    ManageEmployees => Action::ManageEmployees;
    ManageSettings => Action::ManageSettings;
    ViewAnalytics => Action::ViewAnalytics;
    Scheduling => Action::Scheduling;
}

/// An authenticated caller allowed to perform `R`.
pub struct Auth<R>(pub Caller, PhantomData<R>);

impl<R> std::ops::Deref for Auth<R> {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl<R: Requirement + 'static> FromRequest for Auth<R> {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let caller = authenticate(&req).await?;
            enforce(&caller, R::ACTION)?;
            Ok(Auth(caller, PhantomData))
        })
    }
}

/// What a route requires on the channel named by its `{channel_id}` path segment.
pub trait ChannelRequirement {
    fn action(channel: ChannelId) -> Action;
}

/// Seeing the channel's configuration.
pub struct View;
impl ChannelRequirement for View {
    fn action(channel: ChannelId) -> Action {
        Action::ViewChannel(channel)
    }
}

/// An authenticated caller holding `R` on the channel in the path.
pub struct ChannelAccess<R> {
    pub caller: Caller,
    pub channel_id: ChannelId,
    _rights: PhantomData<R>,
}

impl<R: ChannelRequirement + 'static> FromRequest for ChannelAccess<R> {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let caller = authenticate(&req).await?;
            let channel_id: ChannelId = req
                .match_info()
                .get("channel_id")
                .and_then(|s| s.parse().ok())
                .ok_or(ApiError::InvalidParameter(Msg::NotUuid {
                    field: "channel_id",
                }))?;
            enforce(&caller, R::action(channel_id))?;
            Ok(ChannelAccess {
                caller,
                channel_id,
                _rights: PhantomData,
            })
        })
    }
}
