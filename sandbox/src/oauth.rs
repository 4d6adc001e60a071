//! An OAuth 2.0 authorization server as the social networks' fakes run it (RFC 6749 with
//! PKCE, RFC 7636): the authorization endpoint approves at once (the person always says yes)
//! and redirects back with `code` and `state`; the token endpoint exchanges a code (checking
//! the client, the `redirect_uri` and the S256 `code_verifier`) and refreshes tokens. Access
//! tokens lapse after [`OAuthConfig::token_ttl_secs`]; a network that rotates refresh tokens
//! refuses a used one; a refresh token is issued only to an authorization that asked for
//! offline access (Google's `access_type=offline`, X's `offline.access` scope). What a client gets wrong is recorded as a violation and refused with
//! OAuth's own error codes; every token request is recorded with its outcome.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::support::Violations;

/// How the client proves itself at the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic (X).
    Basic,
    /// `client_id` and `client_secret` in the form (Google).
    Form,
}

/// The network's side of its OAuth flow.
#[derive(Clone, Debug)]
pub struct OAuthConfig {
    pub client_id: String,
    pub client_secret: String,
    pub client_auth: ClientAuth,
    /// Whether the authorization request must carry an S256 challenge.
    pub pkce_required: bool,
    /// Whether a refresh hands out a new refresh token too (X does, Google does not).
    pub rotate_refresh: bool,
    /// What an authorization must ask for to get a refresh token.
    pub offline: OfflineAccess,
    /// How long an access token lives (`expires_in`).
    pub token_ttl_secs: u64,
}

/// How an authorization asks for offline access (a refresh token).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfflineAccess {
    /// `access_type=offline` (Google).
    AccessType,
    /// A scope among those asked for (X's `offline.access`).
    Scope(&'static str),
}

/// One request to the token endpoint: its `grant_type` and whether tokens were issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    pub grant_type: String,
    pub accepted: bool,
}

/// A code handed out and not yet exchanged.
struct Pending {
    redirect_uri: String,
    challenge: Option<String>,
    scope: String,
    /// Whether the authorization asked for `access_type=offline`.
    offline: bool,
}

/// A grant the fake made: what the person agreed to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Granted {
    pub access_token: String,
    pub refresh_token: String,
    pub scope: String,
}

pub(crate) struct OAuthServer {
    pub(crate) config: OAuthConfig,
    codes: Mutex<HashMap<String, Pending>>,
    /// Refresh token → its grant.
    grants: Mutex<HashMap<String, Granted>>,
    /// Every access token issued, with when it lapses (`None`: a pasted token that does not).
    tokens: Mutex<Vec<(String, Option<Instant>)>>,
    requests: Mutex<Vec<TokenRequest>>,
    counter: std::sync::atomic::AtomicU64,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn oauth_error(code: &str, description: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({ "error": code, "error_description": description }))
}

impl OAuthServer {
    pub(crate) fn new(config: OAuthConfig) -> OAuthServer {
        OAuthServer {
            config,
            codes: Mutex::default(),
            grants: Mutex::default(),
            tokens: Mutex::default(),
            requests: Mutex::default(),
            counter: std::sync::atomic::AtomicU64::new(1),
        }
    }

    fn fresh(&self, prefix: &str) -> String {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("{prefix}{n}x{nanos:x}")
    }

    /// Whether `token` is an access token this server issued and that has not lapsed.
    pub(crate) fn knows(&self, token: &str) -> bool {
        let now = Instant::now();
        locked(&self.tokens)
            .iter()
            .any(|(t, lapses)| t == token && lapses.is_none_or(|at| now < at))
    }

    /// Adds a token a test hands out directly (a pasted token, which does not lapse).
    pub(crate) fn accept(&self, token: &str) {
        locked(&self.tokens).push((token.to_string(), None));
    }

    /// Every request to the token endpoint, in order.
    pub(crate) fn token_requests(&self) -> Vec<TokenRequest> {
        locked(&self.requests).clone()
    }

    /// Every grant made by the token endpoint.
    pub(crate) fn grants(&self) -> Vec<Granted> {
        locked(&self.grants).values().cloned().collect()
    }

    /// `GET <authorize>?response_type=code&client_id&redirect_uri&scope&state&code_challenge
    /// &code_challenge_method=S256`: approved at once.
    pub(crate) fn authorize(&self, request: &HttpRequest, violations: &Violations) -> HttpResponse {
        let query: HashMap<String, String> =
            serde_urlencoded::from_str(request.query_string()).unwrap_or_default();
        let get = |k: &str| query.get(k).map(String::as_str).unwrap_or_default();
        let mut problems = Vec::new();
        if get("response_type") != "code" {
            problems.push("response_type must be code");
        }
        if get("client_id") != self.config.client_id {
            problems.push("client_id is not the application's");
        }
        if get("state").is_empty() {
            problems.push("state is missing");
        }
        if get("scope").is_empty() {
            problems.push("scope is missing");
        }
        let redirect = get("redirect_uri");
        if reqwest::Url::parse(redirect).is_err() {
            problems.push("redirect_uri is not a URL");
        }
        let challenge = match (get("code_challenge"), get("code_challenge_method")) {
            ("", _) if self.config.pkce_required => {
                problems.push("PKCE: code_challenge is missing");
                None
            }
            ("", _) => None,
            (challenge, "S256") => Some(challenge.to_string()),
            (_, _) => {
                problems.push("PKCE: code_challenge_method must be S256");
                None
            }
        };
        if !problems.is_empty() {
            for problem in &problems {
                violations.record(format!("authorize: {problem}"));
            }
            return oauth_error("invalid_request", &problems.join("; "));
        }
        let code = self.fresh("code-");
        locked(&self.codes).insert(
            code.clone(),
            Pending {
                redirect_uri: redirect.to_string(),
                challenge,
                scope: get("scope").to_string(),
                offline: match self.config.offline {
                    OfflineAccess::AccessType => get("access_type") == "offline",
                    OfflineAccess::Scope(wanted) => {
                        get("scope").split(' ').any(|scope| scope == wanted)
                    }
                },
            },
        );
        let mut back = match reqwest::Url::parse(redirect) {
            Ok(url) => url,
            Err(_) => return oauth_error("invalid_request", "redirect_uri"),
        };
        back.query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", get("state"));
        HttpResponse::Found()
            .insert_header(("location", back.to_string()))
            .finish()
    }

    /// The client named by the request, if its credentials are right.
    fn client_ok(&self, request: &HttpRequest, form: &HashMap<String, String>) -> bool {
        match self.config.client_auth {
            ClientAuth::Basic => basic(request).is_some_and(|(id, secret)| {
                id == self.config.client_id && secret == self.config.client_secret
            }),
            ClientAuth::Form => {
                form.get("client_id") == Some(&self.config.client_id)
                    && form.get("client_secret") == Some(&self.config.client_secret)
            }
        }
    }

    /// `POST <token>`, form-encoded: `authorization_code` (with `code_verifier`) or
    /// `refresh_token`.
    pub(crate) fn token(
        &self,
        request: &HttpRequest,
        body: &[u8],
        violations: &Violations,
    ) -> HttpResponse {
        let answer = self.issue(request, body, violations);
        let grant_type = serde_urlencoded::from_bytes::<HashMap<String, String>>(body)
            .ok()
            .and_then(|form| form.get("grant_type").cloned())
            .unwrap_or_default();
        locked(&self.requests).push(TokenRequest {
            grant_type,
            accepted: answer.status().is_success(),
        });
        answer
    }

    fn issue(&self, request: &HttpRequest, body: &[u8], violations: &Violations) -> HttpResponse {
        let form: HashMap<String, String> = match serde_urlencoded::from_bytes(body) {
            Ok(form) => form,
            Err(err) => {
                violations.record(format!("token: the body is not a form: {err}"));
                return oauth_error("invalid_request", "form-encoded body expected");
            }
        };
        if !self.client_ok(request, &form) {
            violations.record(format!(
                "token: the client did not authenticate by {:?}",
                self.config.client_auth
            ));
            return HttpResponse::Unauthorized()
                .json(json!({ "error": "invalid_client", "error_description": "client authentication failed" }));
        }
        let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
        let (scope, old_refresh, offline) = match get("grant_type") {
            "authorization_code" => {
                let Some(pending) = locked(&self.codes).remove(get("code")) else {
                    return oauth_error("invalid_grant", "unknown or used code");
                };
                if pending.redirect_uri != get("redirect_uri") {
                    violations.record("token: redirect_uri differs from the authorization's");
                    return oauth_error("invalid_grant", "redirect_uri mismatch");
                }
                if let Some(challenge) = &pending.challenge {
                    let verifier = get("code_verifier");
                    if verifier.is_empty() {
                        violations.record("token: PKCE code_verifier is missing");
                        return oauth_error("invalid_request", "code_verifier is missing");
                    }
                    let derived = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
                    if &derived != challenge {
                        violations.record("token: PKCE code_verifier does not match the challenge");
                        return oauth_error("invalid_grant", "code_verifier mismatch");
                    }
                }
                (pending.scope, None, pending.offline)
            }
            "refresh_token" => {
                let refresh = get("refresh_token").to_string();
                let Some(grant) = locked(&self.grants).get(&refresh).cloned() else {
                    return oauth_error("invalid_grant", "unknown refresh token");
                };
                (grant.scope, Some(refresh), true)
            }
            other => {
                violations.record(format!("token: grant_type {other:?}"));
                return oauth_error("unsupported_grant_type", other);
            }
        };
        let access_token = self.fresh("access-");
        let refresh_token = match &old_refresh {
            Some(old) if !self.config.rotate_refresh => old.clone(),
            _ => self.fresh("refresh-"),
        };
        if offline {
            let mut grants = locked(&self.grants);
            if let Some(old) = &old_refresh {
                grants.remove(old);
            }
            grants.insert(
                refresh_token.clone(),
                Granted {
                    access_token: access_token.clone(),
                    refresh_token: refresh_token.clone(),
                    scope: scope.clone(),
                },
            );
        }
        let ttl = self.config.token_ttl_secs;
        locked(&self.tokens).push((
            access_token.clone(),
            Some(Instant::now() + Duration::from_secs(ttl)),
        ));
        let mut answer = json!({
            "token_type": "bearer",
            "access_token": access_token,
            "expires_in": ttl,
            "scope": scope,
        });
        if offline && (old_refresh.is_none() || self.config.rotate_refresh) {
            answer["refresh_token"] = json!(refresh_token);
        }
        HttpResponse::Ok().json(answer)
    }
}

/// The `Authorization: Basic` credentials of a request.
pub(crate) fn basic(request: &HttpRequest) -> Option<(String, String)> {
    let value = request.headers().get("authorization")?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// The bearer token of a request.
pub(crate) fn bearer(request: &HttpRequest) -> Option<String> {
    let value = request.headers().get("authorization")?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(|t| t.trim().to_string())
}
