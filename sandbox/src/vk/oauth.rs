//! VK ID's authorization code flow with PKCE, as the fake serves it: `GET /authorize` approves
//! at once (the person is assumed to agree) and sends the browser back with `code`, `state`,
//! `device_id` and `type=code_v2`; `POST /oauth2/auth` exchanges the code (checking the
//! verifier against the S256 challenge, the redirect URI, the client and the device) and
//! refreshes tokens, rotating the refresh token as VK ID does. Tokens it issues are accepted
//! by the API methods until they expire.

use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::State;

/// A code waiting to be exchanged.
pub(super) struct PendingCode {
    challenge: String,
    redirect_uri: String,
    device_id: String,
    issued: Instant,
}

/// Tokens the fake issued.
#[derive(Default)]
pub(super) struct Issued {
    pub(super) codes: std::collections::HashMap<String, PendingCode>,
    /// Access token → when it lapses.
    pub(super) access: std::collections::HashMap<String, Instant>,
    /// Refresh token → its device.
    pub(super) refresh: std::collections::HashMap<String, String>,
    /// Every exchange and refresh, for tests: (`grant_type`, ok).
    pub(super) requests: Vec<(String, bool)>,
}

/// How long an authorization code may wait (VK ID: 10 minutes).
const CODE_TTL: Duration = Duration::from_secs(600);

fn query_value<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn error(status: u16, code: &str, description: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
        .json(json!({"error": code, "error_description": description}))
}

/// `GET /authorize`.
pub(super) async fn authorize(
    state: web::Data<State>,
    query: web::Query<Vec<(String, String)>>,
) -> HttpResponse {
    let q = query.into_inner();
    let get = |key| query_value(&q, key);
    if get("client_id") != Some(state.config.client_id.as_str()) {
        return error(400, "invalid_client", "unknown client_id");
    }
    let (Some(redirect), Some(challenge), Some(state_param)) =
        (get("redirect_uri"), get("code_challenge"), get("state"))
    else {
        return error(
            400,
            "invalid_request",
            "redirect_uri, code_challenge and state are required",
        );
    };
    if get("response_type") != Some("code") || get("code_challenge_method") != Some("S256") {
        return error(
            400,
            "invalid_request",
            "response_type=code and code_challenge_method=S256 are required",
        );
    }
    let Ok(mut target) = reqwest::Url::parse(redirect) else {
        return error(400, "invalid_request", "redirect_uri is not a URL");
    };
    let code = state.new_key();
    let device_id = format!("device-{}", state.new_key());
    state.lock().oauth.codes.insert(
        code.clone(),
        PendingCode {
            challenge: challenge.to_string(),
            redirect_uri: redirect.to_string(),
            device_id: device_id.clone(),
            issued: Instant::now(),
        },
    );
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", state_param)
        .append_pair("device_id", &device_id)
        .append_pair("type", "code_v2")
        .append_pair("expires_in", "600");
    HttpResponse::Found()
        .insert_header((header::LOCATION, target.to_string()))
        .finish()
}

/// `POST /oauth2/auth`.
pub(super) async fn token(
    state: web::Data<State>,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    let f = form.into_inner();
    let get = |key| query_value(&f, key);
    let grant_type = get("grant_type").unwrap_or_default().to_string();
    let answer = exchange(&state, &grant_type, &get);
    state
        .lock()
        .oauth
        .requests
        .push((grant_type, answer.status().is_success()));
    answer
}

fn exchange<'a>(
    state: &State,
    grant_type: &str,
    get: &dyn Fn(&'static str) -> Option<&'a str>,
) -> HttpResponse {
    if get("client_id") != Some(state.config.client_id.as_str()) {
        return error(401, "invalid_client", "unknown client_id");
    }
    let device_id = get("device_id").unwrap_or_default();
    let mut inner = state.lock();
    match grant_type {
        "authorization_code" => {
            let Some(pending) = get("code").and_then(|c| inner.oauth.codes.remove(c)) else {
                return error(400, "invalid_grant", "unknown or used code");
            };
            let verifier = get("code_verifier").unwrap_or_default();
            let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if pending.issued.elapsed() > CODE_TTL
                || challenge != pending.challenge
                || get("redirect_uri") != Some(pending.redirect_uri.as_str())
                || device_id != pending.device_id
            {
                return error(
                    400,
                    "invalid_grant",
                    "code_verifier, redirect_uri or device_id do not match",
                );
            }
        }
        "refresh_token" => {
            let known = get("refresh_token").and_then(|t| inner.oauth.refresh.remove(t));
            if known.as_deref() != Some(device_id) {
                return error(400, "invalid_grant", "unknown or used refresh_token");
            }
        }
        _ => return error(400, "unsupported_grant_type", "unsupported grant_type"),
    }
    drop(inner);
    let ttl = Duration::from_secs(state.config.oauth_token_ttl_secs);
    let access = format!("vk2.a.{}", state.new_key());
    let refresh = format!("vk2.r.{}", state.new_key());
    let mut inner = state.lock();
    inner
        .oauth
        .access
        .insert(access.clone(), Instant::now() + ttl);
    inner
        .oauth
        .refresh
        .insert(refresh.clone(), device_id.to_string());
    HttpResponse::Ok().json(json!({
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
        "user_id": state.config.admin_user_id,
        "scope": "wall groups photos video",
    }))
}
