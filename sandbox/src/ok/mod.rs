//! A fake OK (Odnoklassniki) REST API for one group and its moderator, speaking OK's wire
//! contract:
//!
//! - `POST` (or `GET`) `/fb.do` with `application_key`, `method`, `format=json`, the method's
//!   parameters, `access_token` and `sig`; the signature is checked as OK computes it
//!   (`md5` of the parameters but `sig` and `access_token`, sorted, as raw `k=v`, followed by
//!   `md5(access_token + secret key)`; lower-case hex), and a wrong one is refused with
//!   `{"error_code": 104, "error_msg": "PARAM_SIGNATURE : …"}`. Answers are the method's JSON,
//!   errors OK's `{"error_code", "error_msg", "error_data"}` with its codes: 101 for an unknown
//!   application key, 102 for an unknown or revoked token, 3 for an unknown method, 100 for bad
//!   parameters, 10 for someone else's group, 300 for what does not exist;
//! - the photo upload URL handed out by `photosV2.getUploadUrl` (multipart, one file part per
//!   photo id), answered `{"photos": {"<photo id>": {"token": …}}}`;
//! - OAuth 2.0 as OK documents it: `GET /oauth/authorize` approves at once and redirects to
//!   `redirect_uri` with `code` and `state`; `POST /oauth/token.do` exchanges a code
//!   (`grant_type=authorization_code`) or a refresh token (`grant_type=refresh_token`) for an
//!   access token, with `client_id` and `client_secret`.
//!
//! The group's topics, comments and likes are kept ([`group`]). Every call is checked against
//! the method's parameters in OK's own docs ([`spec`]); what breaks them is recorded in
//! [`OkSandbox::violations`] and the call is still served. A test seeds topics and has people
//! comment with [`OkSandbox::seed_topic`] and [`OkSandbox::person_comments`].

mod group;
mod spec;

pub use group::{OkComment, OkTopic};

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use md5::{Digest, Md5};
use serde_json::{Value, json};

use crate::support::Violations;
use spec::OkSpec;

/// The application, the group and its moderator the fake serves.
#[derive(Clone, Debug)]
pub struct OkConfig {
    /// The application's id (OAuth `client_id`).
    pub application_id: String,
    /// The application's public key (`application_key` of every call).
    pub application_key: String,
    /// The application's secret key (signatures, OAuth `client_secret`).
    pub secret_key: String,
    pub group_id: String,
    pub group_name: String,
    /// The group's moderator, whose tokens the fake accepts.
    pub user_id: String,
    pub user_name: String,
    /// A token of the moderator's, as a person would paste it.
    pub access_token: String,
}

impl Default for OkConfig {
    fn default() -> Self {
        OkConfig {
            application_id: "512000123456".into(),
            application_key: "CBAFSANDBOXABABABA".into(),
            secret_key: "0A1B2C3D4E5F60718293A4B5".into(),
            group_id: "70000001234567".into(),
            group_name: "Sandbox group".into(),
            user_id: "570000000001".into(),
            user_name: "Group Moderator".into(),
            access_token: "-s-sandbox.moderator.token".into(),
        }
    }
}

/// OK's error codes the fake answers with.
pub mod codes {
    pub const METHOD: i64 = 3;
    pub const PERMISSION_DENIED: i64 = 10;
    pub const PARAM: i64 = 100;
    pub const PARAM_API_KEY: i64 = 101;
    pub const PARAM_SESSION_EXPIRED: i64 = 102;
    pub const PARAM_SIGNATURE: i64 = 104;
    pub const NOT_FOUND: i64 = 300;
}

/// An OK error answer.
pub(crate) struct Refusal {
    code: i64,
    message: String,
}

pub(crate) fn refuse(code: i64, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

fn error_name(code: i64) -> &'static str {
    match code {
        1 => "UNKNOWN",
        2 => "SERVICE",
        codes::METHOD => "METHOD",
        8 => "FLOOD_BLOCKED",
        codes::PERMISSION_DENIED => "PERMISSION_DENIED",
        11 => "LIMIT_REACHED",
        codes::PARAM => "PARAM",
        codes::PARAM_API_KEY => "PARAM_API_KEY",
        codes::PARAM_SESSION_EXPIRED => "PARAM_SESSION_EXPIRED",
        codes::PARAM_SIGNATURE => "PARAM_SIGNATURE",
        codes::NOT_FOUND => "NOT_FOUND",
        _ => "SYSTEM",
    }
}

/// A token the fake's OAuth issued or was configured with.
#[derive(Clone, Debug)]
struct Grant {
    user_id: String,
    scope: String,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    /// Valid access tokens.
    tokens: HashMap<String, Grant>,
    /// Refresh tokens → the grant they renew.
    refresh_tokens: HashMap<String, Grant>,
    /// Authorization codes not yet exchanged → (grant, redirect_uri).
    codes: HashMap<String, (Grant, String)>,
    group: group::Group,
    /// Photo slots handed out: photo id → still open.
    photo_slots: HashSet<String>,
    /// Uploaded photos: token → bytes.
    photos: HashMap<String, Vec<u8>>,
    failures: HashMap<String, VecDeque<i64>>,
    calls: HashMap<String, usize>,
    /// Calls refused for their signature.
    bad_signatures: usize,
}

pub(crate) struct State {
    config: OkConfig,
    base: String,
    spec: OkSpec,
    violations: Violations,
    inner: Mutex<Inner>,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not take the fake down with it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn next_id(&self) -> u64 {
        let mut inner = self.lock();
        inner.next_id += 1;
        inner.next_id
    }
}

/// A running fake OK API on an ephemeral loopback port; dropping it stops the server.
pub struct OkSandbox {
    addr: SocketAddr,
    state: Arc<State>,
    handle: ServerHandle,
}

impl Drop for OkSandbox {
    fn drop(&mut self) {
        // Stopping is asynchronous; the server's task ends on its own once stopped.
        drop(self.handle.stop(false));
    }
}

impl OkSandbox {
    pub async fn start(config: OkConfig) -> std::io::Result<OkSandbox> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let mut inner = Inner {
            next_id: 1_550_000_000_000,
            ..Inner::default()
        };
        inner.tokens.insert(
            config.access_token.clone(),
            Grant {
                user_id: config.user_id.clone(),
                scope: "VALUABLE_ACCESS;GROUP_CONTENT;PHOTO_CONTENT".into(),
            },
        );
        let state = Arc::new(State {
            config,
            base: format!("http://{addr}/"),
            spec: OkSpec::load(),
            violations: Violations::default(),
            inner: Mutex::new(inner),
        });
        let data = web::Data::from(Arc::clone(&state));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
                .route("/fb.do", web::post().to(rest))
                .route("/fb.do", web::get().to(rest))
                .route("/upload/{slot}", web::post().to(upload))
                .route("/oauth/authorize", web::get().to(authorize))
                .route("/oauth/token.do", web::post().to(token))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(OkSandbox {
            addr,
            state,
            handle,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base to give the connector (`http://127.0.0.1:<port>/`; calls go to `fb.do`).
    pub fn base_url(&self) -> String {
        self.state.base.clone()
    }

    /// The OAuth authorization endpoint.
    pub fn authorize_url(&self) -> String {
        format!("{}oauth/authorize", self.state.base)
    }

    /// The OAuth token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}oauth/token.do", self.state.base)
    }

    pub fn config(&self) -> &OkConfig {
        &self.state.config
    }

    /// Requests that broke OK's docs.
    pub fn violations(&self) -> Vec<String> {
        self.state.violations.all()
    }

    /// How many times `method` was called (refused calls included).
    pub fn calls(&self, method: &str) -> usize {
        self.state.lock().calls.get(method).copied().unwrap_or(0)
    }

    /// How many calls were refused for a wrong signature.
    pub fn bad_signatures(&self) -> usize {
        self.state.lock().bad_signatures
    }

    /// The next call of `method` fails with OK error `code` (queued: call again to fail more).
    pub fn fail_next(&self, method: &str, code: i64) {
        self.state
            .lock()
            .failures
            .entry(method.to_string())
            .or_default()
            .push_back(code);
    }

    /// Revokes a token: calls with it answer error 102.
    pub fn revoke(&self, access_token: &str) {
        self.state.lock().tokens.remove(access_token);
    }

    /// Every topic of the group, deleted ones included, oldest first.
    pub fn topics(&self) -> Vec<OkTopic> {
        self.state.lock().group.topics.clone()
    }

    /// Every comment, deleted ones included, oldest first.
    pub fn comments(&self) -> Vec<OkComment> {
        self.state.lock().group.comments.clone()
    }

    /// The bytes of an uploaded photo, by the token a topic names it by.
    pub fn photo(&self, token: &str) -> Option<Vec<u8>> {
        self.state.lock().photos.get(token).cloned()
    }

    /// A topic the group published elsewhere (on OK's site): its id.
    pub fn seed_topic(&self, text: &str) -> String {
        let id = self.state.next_id().to_string();
        self.state.lock().group.topics.push(OkTopic {
            id: id.clone(),
            text: text.to_string(),
            link: None,
            photos: Vec::new(),
            created_ms: chrono::Utc::now().timestamp_millis(),
            on_behalf_of_group: true,
            deleted: false,
            likes: 0,
            liked: false,
        });
        id
    }

    /// Person `author_id` comments under topic `topic_id` (answering `reply_to`, OK's comment
    /// id): the new comment's OK id, or `None` when there is no such topic.
    pub fn person_comments(
        &self,
        topic_id: &str,
        author_id: &str,
        text: &str,
        reply_to: Option<&str>,
    ) -> Option<String> {
        let id = group::comment_id(self.state.next_id());
        let mut inner = self.state.lock();
        if !inner
            .group
            .topics
            .iter()
            .any(|t| t.id == topic_id && !t.deleted)
        {
            return None;
        }
        inner.group.comments.push(OkComment {
            id: id.clone(),
            topic_id: topic_id.to_string(),
            author_id: author_id.to_string(),
            by_group: false,
            text: text.to_string(),
            reply_to: reply_to.map(str::to_string),
            date: group::now_date(),
            deleted: false,
            likes: 0,
            liked: false,
        });
        Some(id)
    }
}

/// The signature OK expects of `params` signed with `access_token`'s session.
pub fn signature(params: &[(String, String)], access_token: &str, secret_key: &str) -> String {
    let session = hex(&Md5::digest(
        format!("{access_token}{secret_key}").as_bytes(),
    ));
    let mut pairs: Vec<&(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "sig" && k != "access_token")
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut text: String = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    text.push_str(&session);
    hex(&Md5::digest(text.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Query and form parameters of a request, with a violation for a body that is not a form.
fn request_params(state: &State, request: &HttpRequest, body: &[u8]) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> =
        serde_urlencoded::from_str(request.query_string()).unwrap_or_default();
    let is_form = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        match serde_urlencoded::from_bytes::<Vec<(String, String)>>(body) {
            Ok(form) => params.extend(form),
            Err(err) => state.violations.record(format!(
                "{}: the form body does not parse: {err}",
                request.path()
            )),
        }
    } else if !body.is_empty() {
        state.violations.record(format!(
            "{}: a body that is not form-encoded",
            request.path()
        ));
    }
    params
}

async fn rest(state: web::Data<State>, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    let params = request_params(&state, &request, &body);
    let answer = match call(&state, &params) {
        Ok(answer) => answer,
        Err(refusal) => json!({
            "error_code": refusal.code,
            "error_msg": format!("{} : {}", error_name(refusal.code), refusal.message),
            "error_data": null,
        }),
    };
    HttpResponse::Ok().json(answer)
}

fn call(state: &State, params: &[(String, String)]) -> Result<Value, Refusal> {
    let method = param(params, "method").unwrap_or_default().to_string();
    *state.lock().calls.entry(method.clone()).or_default() += 1;
    if !state.spec.knows(&method) {
        return Err(refuse(codes::METHOD, format!("Method {method} not found")));
    }
    for problem in state.spec.check(&method, params) {
        state.violations.record(problem);
    }
    if param(params, "format").is_some_and(|f| !f.eq_ignore_ascii_case("json")) {
        state
            .violations
            .record(format!("{method}: format is not json"));
    }
    if param(params, "application_key") != Some(state.config.application_key.as_str()) {
        return Err(refuse(codes::PARAM_API_KEY, "Application key is invalid"));
    }
    let token = param(params, "access_token").unwrap_or_default();
    let grant = state.lock().tokens.get(token).cloned();
    let Some(grant) = grant else {
        return Err(refuse(
            codes::PARAM_SESSION_EXPIRED,
            "Session expired or invalid",
        ));
    };
    let expected = signature(params, token, &state.config.secret_key);
    if param(params, "sig") != Some(expected.as_str()) {
        state.lock().bad_signatures += 1;
        return Err(refuse(codes::PARAM_SIGNATURE, "Invalid signature"));
    }
    if let Some(code) = state
        .lock()
        .failures
        .get_mut(&method)
        .and_then(VecDeque::pop_front)
    {
        return Err(refuse(code, "injected failure"));
    }
    group::serve(state, &method, params, &grant.user_id)
}

async fn upload(
    state: web::Data<State>,
    slot: web::Path<String>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let content_type = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let parts = match crate::support::multipart(&content_type, &body) {
        Ok(parts) => parts,
        Err(err) => {
            state.violations.record(format!("photo upload: {err}"));
            return HttpResponse::Ok().json(json!({"error_code": codes::PARAM,
                "error_msg": format!("PARAM : {err}")}));
        }
    };
    let photo_ids: Vec<String> = slot.split(',').map(str::to_string).collect();
    let files: Vec<_> = parts
        .into_iter()
        .filter(|p| p.file_name.is_some())
        .collect();
    if files.is_empty() || files.len() > photo_ids.len() {
        state.violations.record(format!(
            "photo upload: {} files for {} photo ids",
            files.len(),
            photo_ids.len()
        ));
    }
    let mut photos = serde_json::Map::new();
    let mut inner = state.lock();
    for (photo_id, file) in photo_ids.iter().zip(files) {
        if !inner.photo_slots.remove(photo_id) {
            state
                .violations
                .record(format!("photo upload: {photo_id} was not handed out"));
            continue;
        }
        let token = format!("tk{}{}", photo_id, file.bytes.len());
        inner.photos.insert(token.clone(), file.bytes);
        photos.insert(photo_id.clone(), json!({"token": token}));
    }
    HttpResponse::Ok().json(json!({"photos": photos}))
}

#[derive(serde::Deserialize)]
struct AuthorizeQuery {
    client_id: Option<String>,
    scope: Option<String>,
    response_type: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
}

/// OAuth authorization: the moderator approves at once.
async fn authorize(state: web::Data<State>, request: HttpRequest) -> HttpResponse {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(request.query_string()).unwrap_or_default();
    for (name, _) in &pairs {
        if ![
            "client_id",
            "scope",
            "response_type",
            "redirect_uri",
            "layout",
            "state",
        ]
        .contains(&name.as_str())
        {
            state
                .violations
                .record(format!("oauth/authorize: unknown parameter {name:?}"));
        }
    }
    let query: AuthorizeQuery = match serde_urlencoded::from_str(request.query_string()) {
        Ok(q) => q,
        Err(err) => return HttpResponse::BadRequest().body(format!("bad query: {err}")),
    };
    if query.client_id.as_deref() != Some(state.config.application_id.as_str()) {
        return HttpResponse::BadRequest().body("error=invalid_client");
    }
    if query.response_type.as_deref() != Some("code") {
        state
            .violations
            .record("oauth/authorize: response_type is not code");
    }
    let Some(redirect) = query.redirect_uri.filter(|r| !r.is_empty()) else {
        return HttpResponse::BadRequest().body("error=redirect_uri_mismatch");
    };
    let code = format!("code{}", state.next_id());
    state.lock().codes.insert(
        code.clone(),
        (
            Grant {
                user_id: state.config.user_id.clone(),
                scope: query.scope.unwrap_or_default(),
            },
            redirect.clone(),
        ),
    );
    let mut location = match reqwest::Url::parse(&redirect) {
        Ok(url) => url,
        Err(_) => return HttpResponse::BadRequest().body("error=redirect_uri_mismatch"),
    };
    {
        let mut query_pairs = location.query_pairs_mut();
        query_pairs.append_pair("code", &code);
        if let Some(s) = &query.state {
            query_pairs.append_pair("state", s);
        }
    }
    HttpResponse::Found()
        .insert_header(("location", location.to_string()))
        .finish()
}

/// OAuth token endpoint: `authorization_code` and `refresh_token` grants.
async fn token(state: web::Data<State>, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    let params = request_params(&state, &request, &body);
    let get = |name: &str| param(&params, name).unwrap_or_default().to_string();
    let error = |code: &str, description: &str| {
        HttpResponse::BadRequest().json(json!({"error": code, "error_description": description}))
    };
    if get("client_id") != state.config.application_id
        || get("client_secret") != state.config.secret_key
    {
        return error("invalid_client", "client_id or client_secret is wrong");
    }
    let grant_type = get("grant_type");
    let allowed: &[&str] = match grant_type.as_str() {
        "authorization_code" => &[
            "grant_type",
            "code",
            "client_id",
            "client_secret",
            "redirect_uri",
        ],
        "refresh_token" => &["grant_type", "refresh_token", "client_id", "client_secret"],
        _ => return error("unsupported_grant_type", "grant_type is not supported"),
    };
    for (name, _) in &params {
        if !allowed.contains(&name.as_str()) {
            state.violations.record(format!(
                "oauth/token.do ({grant_type}): unknown parameter {name:?}"
            ));
        }
    }
    let mut inner = state.lock();
    let (grant, refresh) = if grant_type == "authorization_code" {
        let Some((grant, redirect)) = inner.codes.remove(&get("code")) else {
            return error("invalid_grant", "the code is unknown or used");
        };
        if get("redirect_uri") != redirect {
            return error("invalid_grant", "redirect_uri does not match");
        }
        (grant, true)
    } else {
        match inner.refresh_tokens.get(&get("refresh_token")) {
            Some(grant) => (grant.clone(), false),
            None => return error("invalid_grant", "the refresh token is unknown"),
        }
    };
    inner.next_id += 1;
    let n = inner.next_id;
    let access = format!("-s-{n}.access");
    inner.tokens.insert(access.clone(), grant.clone());
    // A token that lives long when the grant asked for it.
    let expires = if grant.scope.contains("LONG_ACCESS_TOKEN") {
        "2592000"
    } else {
        "1800"
    };
    let mut answer = json!({"access_token": access, "token_type": "session",
        "expires_in": expires});
    if refresh {
        let refresh_token = format!("{n}.refresh");
        inner.refresh_tokens.insert(refresh_token.clone(), grant);
        answer["refresh_token"] = json!(refresh_token);
    }
    HttpResponse::Ok().json(answer)
}
