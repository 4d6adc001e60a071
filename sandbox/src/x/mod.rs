//! A fake X API v2 for one account, speaking X's wire contract:
//!
//! - the operations omnihub uses (`/2/users/me`, the account's posts, recent search by
//!   `conversation_id`, creating posts (with `geo.place_id` one of [`XConfig::place_ids`])
//!   and deleting them, hiding replies, likes, the chunked media
//!   upload (segments appended in order; a `tweet_video` is processed after `finalize`:
//!   `pending`, then `in_progress` at its first `STATUS`, `succeeded` at the next, and a post
//!   may carry it only then, alone), the app's webhooks and the Account Activity subscription), each request checked
//!   against X's published OpenAPI document ([`spec`]): what breaks it is recorded in
//!   [`XSandbox::violations`] and the call is still served, so a test sees both;
//! - X's errors as problems (`{"title", "detail", "type", "status"}`): 401 for an unknown
//!   token, 403 for a post with duplicate content or another account's post, 429 with
//!   `x-rate-limit-reset` when a test injects it ([`XSandbox::fail_next`]);
//! - OAuth 2.0: `/i/oauth2/authorize` approves at once and redirects back with `code` and
//!   `state` (PKCE S256 required), `/2/oauth2/token` exchanges codes and refresh tokens with
//!   the client's HTTP Basic credentials, and `/oauth2/token` gives the app-only bearer token
//!   (`client_credentials`) the webhook endpoints take; tokens it issues are good for the API;
//! - Account Activity webhooks: registering a URL sends it a CRC (`GET ?crc_token=`) whose
//!   answer must be `sha256=<base64 HMAC-SHA256(consumer secret, token)>`, and a person's
//!   reply ([`XSandbox::person_replies`]) is delivered as `tweet_create_events`, signed in
//!   `x-twitter-webhooks-signature`, to every valid webhook the account is subscribed on.
//!
//! Deviations from X, on purpose: the account's own posts are not echoed to its webhook;
//! ids count up from a 19-digit start; `impression_count` is ten per like plus one.

mod spec;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::oauth::{
    ClientAuth, Granted, OAuthConfig, OAuthServer, OfflineAccess, TokenRequest, basic, bearer,
};
use crate::support::{Violations, multipart};
use crate::webhook_delivery::{Caller, Delivery};
use spec::{Request, XSpec};

/// The operations the fake serves (operation ids of X's document).
const SERVED: [&str; 17] = [
    "getUsersMe",
    "getUsersPosts",
    "searchPostsRecent",
    "getPostsById",
    "createPosts",
    "deletePosts",
    "hidePostsReply",
    "likePost",
    "unlikePost",
    "initializeMediaUpload",
    "appendMediaUpload",
    "finalizeMediaUpload",
    "getMediaUploadStatus",
    "getWebhooks",
    "createWebhooks",
    "validateWebhooks",
    "createAccountActivitySubscription",
];

/// The operations that take the app's bearer token rather than the account's.
const APP_ONLY: [&str; 3] = ["getWebhooks", "createWebhooks", "validateWebhooks"];

/// The account and the application the fake serves.
#[derive(Clone, Debug)]
pub struct XConfig {
    pub user_id: String,
    pub username: String,
    pub name: String,
    /// A user token good from the start (as if pasted from the developer portal).
    pub access_token: String,
    /// The application's key and secret: OAuth 2.0 client credentials, the app-only
    /// bearer's, and the consumer secret that keys CRCs and signatures.
    pub client_id: String,
    pub client_secret: String,
    /// How long the access tokens the OAuth flow issues live.
    pub oauth_token_ttl_secs: u64,
    /// The places X knows: a post's `geo.place_id` must be one of them.
    pub place_ids: Vec<String>,
}

impl Default for XConfig {
    fn default() -> Self {
        XConfig {
            user_id: "1500000000000000001".into(),
            username: "sandbox_shop".into(),
            name: "Sandbox Shop".into(),
            access_token: "x-user-token".into(),
            client_id: "x-client-id".into(),
            client_secret: "x-consumer-secret".into(),
            oauth_token_ttl_secs: 7200,
            place_ids: vec!["5a110d312052166f".into()],
        }
    }
}

/// A post on the fake X.
#[derive(Clone, Debug, PartialEq)]
pub struct Tweet {
    pub id: String,
    pub author_id: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
    pub conversation_id: String,
    /// The post replied to, and its author.
    pub in_reply_to: Option<(String, String)>,
    pub media_ids: Vec<String>,
    pub tagged_user_ids: Vec<String>,
    /// The post's `geo.place_id`.
    pub place_id: Option<String>,
    pub deleted: bool,
    pub hidden: bool,
    pub likes: u64,
    /// Whether the account likes it.
    pub liked: bool,
}

/// A webhook registered by the app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub valid: bool,
}

struct Upload {
    media_type: String,
    media_category: String,
    total_bytes: usize,
    bytes: Vec<u8>,
    /// The next `segment_index` expected.
    segments: u64,
    finalized: bool,
    /// `STATUS` checks of a video after `finalize`.
    status_checks: u32,
}

impl Upload {
    fn is_video(&self) -> bool {
        self.media_category == "tweet_video"
    }

    /// A video's processing: `pending` when finalized, `in_progress` at the first check,
    /// `succeeded` (or `failed`, for bytes that are no video) after.
    fn processing(&self) -> &'static str {
        let video_bytes = (self.bytes.len() >= 12 && &self.bytes[4..8] == b"ftyp")
            || self.bytes.starts_with(&[0x1a, 0x45, 0xdf, 0xa3]);
        match self.status_checks {
            0 => "pending",
            1 => "in_progress",
            _ if video_bytes => "succeeded",
            _ => "failed",
        }
    }

    fn ready(&self) -> bool {
        self.finalized && (!self.is_video() || self.processing() == "succeeded")
    }
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    tweets: Vec<Tweet>,
    uploads: HashMap<String, Upload>,
    webhooks: Vec<Webhook>,
    /// (webhook id, user id).
    subscriptions: Vec<(String, String)>,
    app_tokens: Vec<String>,
    failures: HashMap<String, VecDeque<u16>>,
    calls: HashMap<String, usize>,
}

struct State {
    config: XConfig,
    spec: XSpec,
    oauth: OAuthServer,
    violations: Violations,
    inner: Mutex<Inner>,
    caller: Caller,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next_id(&self) -> String {
        let mut inner = self.lock();
        inner.next_id += 1;
        inner.next_id.to_string()
    }
}

/// `sha256=<base64 HMAC-SHA256(key, message)>`: X's CRC answer and webhook signature.
pub fn signature(key: &[u8], message: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(message);
    format!("sha256={}", BASE64.encode(mac.finalize().into_bytes()))
}

fn problem(status: u16, title: &str, detail: &str) -> HttpResponse {
    let code = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
    HttpResponse::build(code)
        .content_type("application/problem+json")
        .json(json!({ "title": title, "detail": detail, "type": "about:blank", "status": status }))
}

/// A running fake X on an ephemeral loopback port; dropping it stops the server.
pub struct XSandbox {
    addr: SocketAddr,
    state: Arc<State>,
    handle: ServerHandle,
}

impl XSandbox {
    pub async fn start(config: XConfig) -> std::io::Result<XSandbox> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let spec = XSpec::load(&SERVED).map_err(std::io::Error::other)?;
        let oauth = OAuthServer::new(OAuthConfig {
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            client_auth: ClientAuth::Basic,
            pkce_required: true,
            rotate_refresh: true,
            offline: OfflineAccess::Scope("offline.access"),
            token_ttl_secs: config.oauth_token_ttl_secs,
        });
        oauth.accept(&config.access_token);
        let state = Arc::new(State {
            config,
            spec,
            oauth,
            violations: Violations::default(),
            inner: Mutex::new(Inner {
                next_id: 1_800_000_000_000_000_000,
                ..Inner::default()
            }),
            caller: Caller::new(),
        });
        let data = web::Data::from(Arc::clone(&state));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                .route("/i/oauth2/authorize", web::get().to(authorize))
                .route("/2/oauth2/token", web::post().to(token))
                .route("/oauth2/token", web::post().to(app_token))
                .default_service(web::to(api))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(XSandbox {
            addr,
            state,
            handle,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base to give the connector (`http://127.0.0.1:<port>/`).
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The OAuth authorization endpoint.
    pub fn authorize_url(&self) -> String {
        format!("http://{}/i/oauth2/authorize", self.addr)
    }

    /// The OAuth token endpoint.
    pub fn token_url(&self) -> String {
        format!("http://{}/2/oauth2/token", self.addr)
    }

    pub fn config(&self) -> &XConfig {
        &self.state.config
    }

    /// Requests that broke X's OpenAPI document (or its OAuth rules).
    pub fn violations(&self) -> Vec<String> {
        self.state.violations.all()
    }

    /// Every post, deleted ones included (marked).
    pub fn tweets(&self) -> Vec<Tweet> {
        self.state.lock().tweets.clone()
    }

    /// The account's own posts that are not replies.
    pub fn own_posts(&self) -> Vec<Tweet> {
        let user = &self.state.config.user_id;
        self.tweets()
            .into_iter()
            .filter(|t| &t.author_id == user && t.in_reply_to.is_none())
            .collect()
    }

    pub fn tweet(&self, id: &str) -> Option<Tweet> {
        self.state
            .lock()
            .tweets
            .iter()
            .find(|t| t.id == id)
            .cloned()
    }

    /// The bytes uploaded as media `id`.
    pub fn media(&self, id: &str) -> Option<Vec<u8>> {
        self.state.lock().uploads.get(id).map(|u| u.bytes.clone())
    }

    /// How many `append` segments media `id` was uploaded in.
    pub fn media_segments(&self, id: &str) -> Option<u64> {
        self.state.lock().uploads.get(id).map(|u| u.segments)
    }

    pub fn webhooks(&self) -> Vec<Webhook> {
        self.state.lock().webhooks.clone()
    }

    /// Whether the account is subscribed on webhook `id`.
    pub fn subscribed(&self, webhook_id: &str) -> bool {
        let user = &self.state.config.user_id;
        self.state
            .lock()
            .subscriptions
            .iter()
            .any(|(w, u)| w == webhook_id && u == user)
    }

    /// How many times an operation was called (refused calls included).
    pub fn calls(&self, operation_id: &str) -> usize {
        self.state
            .lock()
            .calls
            .get(operation_id)
            .copied()
            .unwrap_or(0)
    }

    /// The grants the token endpoint made.
    pub fn grants(&self) -> Vec<Granted> {
        self.state.oauth.grants()
    }

    /// Every request to the OAuth token endpoint, in order, with its outcome.
    pub fn oauth_requests(&self) -> Vec<TokenRequest> {
        self.state.oauth.token_requests()
    }

    /// The next call of `operation_id` fails with `status` (429 carries
    /// `x-rate-limit-reset`); queued, call again to fail more.
    pub fn fail_next(&self, operation_id: &str, status: u16) {
        self.state
            .lock()
            .failures
            .entry(operation_id.to_string())
            .or_default()
            .push_back(status);
    }

    /// A post of the account made elsewhere (in X's own app).
    pub fn seed_post(&self, text: &str) -> String {
        let user = self.state.config.user_id.clone();
        self.state
            .add_tweet(&user, text, None, Vec::new(), Vec::new())
    }

    /// Person `user_id` (`screen_name`) replies `text` to post `post_id`: the reply is on X,
    /// and `tweet_create_events` goes to the account's webhooks. `None` when there is no such
    /// post.
    pub async fn person_replies(
        &self,
        post_id: &str,
        user_id: &str,
        screen_name: &str,
        text: &str,
    ) -> Option<(String, Vec<Delivery>)> {
        let parent = self.tweet(post_id).filter(|t| !t.deleted)?;
        let id = self.state.add_tweet(
            user_id,
            text,
            Some((parent.id.clone(), parent.author_id.clone())),
            Vec::new(),
            Vec::new(),
        );
        let tweet = self.tweet(&id)?;
        let event = json!({
            "for_user_id": self.state.config.user_id,
            "tweet_create_events": [v1_tweet(&tweet, screen_name)],
        });
        let body = serde_json::to_vec(&event).unwrap_or_default();
        let mut deliveries = Vec::new();
        for url in self.delivery_urls() {
            let signed = signature(self.state.config.client_secret.as_bytes(), &body);
            deliveries.push(
                self.state
                    .caller
                    .post(
                        &url,
                        body.clone(),
                        vec![("x-twitter-webhooks-signature".into(), signed)],
                    )
                    .await,
            );
        }
        Some((id, deliveries))
    }

    /// Sends a delivery again, byte for byte, as X retries.
    pub async fn redeliver(&self, delivery: &Delivery) -> Delivery {
        self.state.caller.redeliver(delivery).await
    }

    /// A delivery's bytes with a signature made with another secret.
    pub async fn deliver_forged(&self, url: &str, body: &[u8]) -> Delivery {
        let forged = signature(b"not-the-consumer-secret", body);
        self.state
            .caller
            .post(
                url,
                body.to_vec(),
                vec![("x-twitter-webhooks-signature".into(), forged)],
            )
            .await
    }

    /// Sends `url` a CRC as X does; whether the answer is right, and the answer.
    pub async fn crc(&self, url: &str) -> (bool, String) {
        self.state.crc(url).await
    }

    /// The valid webhooks the account is subscribed on.
    fn delivery_urls(&self) -> Vec<String> {
        let inner = self.state.lock();
        let user = &self.state.config.user_id;
        inner
            .webhooks
            .iter()
            .filter(|w| {
                w.valid
                    && inner
                        .subscriptions
                        .iter()
                        .any(|(id, u)| *id == w.id && u == user)
            })
            .map(|w| w.url.clone())
            .collect()
    }
}

impl Drop for XSandbox {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

impl State {
    fn add_tweet(
        &self,
        author: &str,
        text: &str,
        in_reply_to: Option<(String, String)>,
        media_ids: Vec<String>,
        tagged_user_ids: Vec<String>,
    ) -> String {
        let id = self.next_id();
        let conversation_id = match &in_reply_to {
            Some((parent, _)) => self
                .lock()
                .tweets
                .iter()
                .find(|t| &t.id == parent)
                .map_or_else(|| parent.clone(), |t| t.conversation_id.clone()),
            None => id.clone(),
        };
        self.lock().tweets.push(Tweet {
            id: id.clone(),
            author_id: author.to_string(),
            text: text.to_string(),
            created_at: Utc::now(),
            conversation_id,
            in_reply_to,
            media_ids,
            tagged_user_ids,
            place_id: None,
            deleted: false,
            hidden: false,
            likes: 0,
            liked: false,
        });
        id
    }

    async fn crc(&self, url: &str) -> (bool, String) {
        let token = format!("crc{}", self.next_id());
        let (status, body) = self.caller.get(url, &[("crc_token", &token)]).await;
        let expected = signature(self.config.client_secret.as_bytes(), token.as_bytes());
        let answered = serde_json::from_str::<Value>(&body).ok().and_then(|v| {
            v.get("response_token")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        (
            status == Some(200) && answered.as_deref() == Some(expected.as_str()),
            body,
        )
    }

    fn post_json(&self, tweet: &Tweet, fields: &[&str], expansions: &[&str]) -> Value {
        let mut item = json!({
            "id": tweet.id, "text": tweet.text, "edit_history_post_ids": [tweet.id],
        });
        if fields.contains(&"created_at") {
            item["created_at"] = json!(
                tweet
                    .created_at
                    .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                    .to_string()
            );
        }
        if fields.contains(&"conversation_id") {
            item["conversation_id"] = json!(tweet.conversation_id);
        }
        if fields.contains(&"public_metrics") {
            let replies = self
                .lock()
                .tweets
                .iter()
                .filter(|t| {
                    !t.deleted && t.in_reply_to.as_ref().is_some_and(|(p, _)| *p == tweet.id)
                })
                .count();
            item["public_metrics"] = json!({
                "repost_count": 0, "reply_count": replies, "like_count": tweet.likes,
                "quote_count": 0, "bookmark_count": 0, "impression_count": tweet.likes * 10 + 1,
            });
        }
        if expansions.contains(&"author_id") {
            item["author_id"] = json!(tweet.author_id);
        }
        if let Some((parent, parent_author)) = &tweet.in_reply_to {
            if expansions.contains(&"in_reply_to_user_id") {
                item["in_reply_to_user_id"] = json!(parent_author);
            }
            if expansions.contains(&"referenced_posts") {
                item["referenced_posts"] = json!([{ "type": "replied_to", "id": parent }]);
            }
        }
        item
    }
}

/// A post as Account Activity (v1.1 objects) delivers it.
fn v1_tweet(tweet: &Tweet, screen_name: &str) -> Value {
    let mut item = json!({
        "created_at": tweet.created_at.format("%a %b %d %H:%M:%S +0000 %Y").to_string(),
        "id": tweet.id.parse::<u64>().unwrap_or(0),
        "id_str": tweet.id,
        "text": tweet.text,
        "user": { "id": tweet.author_id.parse::<u64>().unwrap_or(0), "id_str": tweet.author_id,
            "name": screen_name, "screen_name": screen_name },
    });
    if let Some((parent, author)) = &tweet.in_reply_to {
        item["in_reply_to_status_id_str"] = json!(parent);
        item["in_reply_to_status_id"] = json!(parent.parse::<u64>().unwrap_or(0));
        item["in_reply_to_user_id_str"] = json!(author);
    }
    item
}

async fn authorize(state: web::Data<State>, request: HttpRequest) -> HttpResponse {
    state.oauth.authorize(&request, &state.violations)
}

async fn token(state: web::Data<State>, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    state.oauth.token(&request, &body, &state.violations)
}

/// `POST /oauth2/token` with `grant_type=client_credentials` and the app's key and secret
/// by HTTP Basic: the app-only bearer token.
async fn app_token(
    state: web::Data<State>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        state
            .violations
            .record("oauth2/token: grant_type must be client_credentials");
        return problem(400, "Bad Request", "grant_type must be client_credentials");
    }
    let app_ok = basic(&request).is_some_and(|(id, secret)| {
        id == state.config.client_id && secret == state.config.client_secret
    });
    if !app_ok {
        return problem(403, "Forbidden", "Unable to verify your credentials");
    }
    let token = format!("app-{}", state.next_id());
    state.lock().app_tokens.push(token.clone());
    HttpResponse::Ok().json(json!({ "token_type": "bearer", "access_token": token }))
}

async fn api(state: web::Data<State>, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(request.query_string()).unwrap_or_default();
    let content_type = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let json_body: Option<Value> = serde_json::from_slice(&body).ok();
    let parts = content_type
        .as_deref()
        .filter(|c| c.starts_with("multipart/form-data"))
        .and_then(|c| multipart(c, &body).ok());
    let Some(matched) = state.spec.check(&Request {
        method: request.method().as_str(),
        path: request.path(),
        query: &query,
        content_type: content_type.as_deref(),
        json: json_body.as_ref(),
        parts: parts.as_deref(),
        body_len: body.len(),
    }) else {
        state.violations.record(format!(
            "{} {}: not an operation the fake serves",
            request.method(),
            request.path()
        ));
        return problem(404, "Not Found", "no such endpoint");
    };
    for problem in &matched.problems {
        state.violations.record(problem.clone());
    }
    let op = matched.operation_id.as_str();
    *state.lock().calls.entry(op.to_string()).or_default() += 1;
    let token = bearer(&request).unwrap_or_default();
    let authorized = if APP_ONLY.contains(&op) {
        state.lock().app_tokens.contains(&token)
    } else {
        state.oauth.knows(&token)
    };
    if !authorized {
        return problem(401, "Unauthorized", "Unauthorized");
    }
    let failure = state
        .lock()
        .failures
        .get_mut(op)
        .and_then(VecDeque::pop_front);
    if let Some(status) = failure {
        let mut response = problem(status, "Too Many Requests", "Too Many Requests");
        if status == 429 {
            let reset = (Utc::now().timestamp() + 1).to_string();
            if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&reset) {
                response.headers_mut().insert(
                    actix_web::http::header::HeaderName::from_static("x-rate-limit-reset"),
                    value,
                );
            }
        }
        return response;
    }
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    let list = |name: &str| -> Vec<String> {
        param(name)
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let fields = list("post.fields");
    let expansions = list("expansions");
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    let expansions: Vec<&str> = expansions.iter().map(String::as_str).collect();
    let path = |name: &str| matched.path_params.get(name).cloned().unwrap_or_default();
    let user = state.config.user_id.clone();
    let body_json = json_body.unwrap_or(Value::Null);
    match op {
        "getUsersMe" => HttpResponse::Ok().json(json!({ "data": {
            "id": user, "name": state.config.name, "username": state.config.username } })),
        "getUsersPosts" => {
            if path("id") != user {
                return problem(
                    403,
                    "Forbidden",
                    "only the account's own timeline is served",
                );
            }
            let max = param("max_results").parse::<usize>().unwrap_or(10);
            let tweets: Vec<Tweet> = state
                .lock()
                .tweets
                .iter()
                .rev()
                .filter(|t| t.author_id == user && !t.deleted)
                .take(max)
                .cloned()
                .collect();
            let data: Vec<Value> = tweets
                .iter()
                .map(|t| state.post_json(t, &fields, &expansions))
                .collect();
            HttpResponse::Ok().json(json!({ "data": data, "meta": { "result_count": data.len() } }))
        }
        "searchPostsRecent" => {
            let Some(conversation) = param("query").strip_prefix("conversation_id:") else {
                return problem(
                    400,
                    "Invalid Request",
                    "the fake searches by conversation_id only",
                );
            };
            let max = param("max_results").parse::<usize>().unwrap_or(10);
            let tweets: Vec<Tweet> = state
                .lock()
                .tweets
                .iter()
                .rev()
                .filter(|t| t.conversation_id == conversation.trim() && !t.deleted)
                .take(max)
                .cloned()
                .collect();
            let data: Vec<Value> = tweets
                .iter()
                .map(|t| state.post_json(t, &fields, &expansions))
                .collect();
            HttpResponse::Ok().json(json!({ "data": data, "meta": { "result_count": data.len() } }))
        }
        "getPostsById" => {
            let id = path("id");
            let found = state
                .lock()
                .tweets
                .iter()
                .find(|t| t.id == id && !t.deleted)
                .cloned();
            match found {
                Some(tweet) => HttpResponse::Ok().json(json!({ "data": state.post_json(&tweet, &fields, &expansions) })),
                None => HttpResponse::Ok().json(json!({ "errors": [{
                    "value": id, "detail": format!("Could not find post with id: [{id}]."),
                    "title": "Not Found Error", "resource_type": "post", "parameter": "id",
                    "resource_id": id, "type": "https://api.x.com/2/problems/resource-not-found" }] })),
            }
        }
        "createPosts" => create_post(&state, &body_json),
        "deletePosts" => {
            let id = path("id");
            let mut inner = state.lock();
            match inner.tweets.iter_mut().find(|t| t.id == id) {
                None => problem(404, "Not Found Error", "no such post"),
                Some(t) if t.author_id != user => {
                    problem(403, "Forbidden", "You are not allowed to delete this Post.")
                }
                Some(t) => {
                    t.deleted = true;
                    HttpResponse::Ok().json(json!({ "data": { "deleted": true } }))
                }
            }
        }
        "hidePostsReply" => {
            let id = path("tweet_id");
            let hidden = body_json
                .get("hidden")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let mut inner = state.lock();
            let roots: Vec<String> = inner
                .tweets
                .iter()
                .filter(|t| t.author_id == user && t.in_reply_to.is_none())
                .map(|t| t.id.clone())
                .collect();
            match inner.tweets.iter_mut().find(|t| t.id == id && !t.deleted) {
                None => problem(404, "Not Found Error", "no such post"),
                Some(t) if t.in_reply_to.is_none() || !roots.contains(&t.conversation_id) => {
                    problem(
                        403,
                        "Forbidden",
                        "You can only hide replies to conversations you started.",
                    )
                }
                Some(t) => {
                    t.hidden = hidden;
                    HttpResponse::Ok().json(json!({ "data": { "hidden": hidden } }))
                }
            }
        }
        "likePost" | "unlikePost" => {
            if path("id") != user {
                return problem(
                    403,
                    "Forbidden",
                    "You can only like as the authenticated user.",
                );
            }
            let on = op == "likePost";
            let id = if on {
                body_json
                    .get("tweet_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            } else {
                path("tweet_id")
            };
            let mut inner = state.lock();
            match inner.tweets.iter_mut().find(|t| t.id == id && !t.deleted) {
                None => problem(404, "Not Found Error", "no such post"),
                Some(t) => {
                    if t.liked != on {
                        t.liked = on;
                        if on {
                            t.likes += 1;
                        } else {
                            t.likes = t.likes.saturating_sub(1);
                        }
                    }
                    HttpResponse::Ok().json(json!({ "data": { "liked": on } }))
                }
            }
        }
        "initializeMediaUpload" => {
            let id = state.next_id();
            state.lock().uploads.insert(
                id.clone(),
                Upload {
                    media_type: body_json["media_type"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    media_category: body_json["media_category"]
                        .as_str()
                        .unwrap_or("tweet_image")
                        .to_string(),
                    total_bytes: body_json["total_bytes"].as_u64().unwrap_or(0) as usize,
                    bytes: Vec::new(),
                    segments: 0,
                    finalized: false,
                    status_checks: 0,
                },
            );
            HttpResponse::Ok().json(json!({ "data": {
                "id": id, "media_key": format!("3_{id}"), "expires_after_secs": 86_400 } }))
        }
        "appendMediaUpload" => {
            let id = path("id");
            let chunk = parts
                .as_deref()
                .and_then(|p| p.iter().find(|p| p.name == "media"))
                .map(|p| p.bytes.clone());
            let segment = parts
                .as_deref()
                .and_then(|p| p.iter().find(|p| p.name == "segment_index"))
                .and_then(|p| {
                    std::str::from_utf8(&p.bytes)
                        .ok()?
                        .trim()
                        .parse::<u64>()
                        .ok()
                });
            let mut inner = state.lock();
            match (inner.uploads.get_mut(&id), chunk) {
                (Some(upload), Some(_)) if segment != Some(upload.segments) => {
                    state.violations.record(format!(
                        "appendMediaUpload: segment_index {segment:?} where {} comes next",
                        upload.segments
                    ));
                    problem(400, "Invalid Request", "segments must be appended in order")
                }
                (Some(upload), Some(chunk)) if !upload.finalized => {
                    upload.segments += 1;
                    upload.bytes.extend_from_slice(&chunk);
                    HttpResponse::Ok().json(json!({ "data": { "expires_at": 86_400 } }))
                }
                (None, _) => problem(404, "Not Found Error", "no such upload"),
                _ => problem(400, "Invalid Request", "a media part is required"),
            }
        }
        "finalizeMediaUpload" => {
            let id = path("id");
            let mut inner = state.lock();
            match inner.uploads.get_mut(&id) {
                None => problem(404, "Not Found Error", "no such upload"),
                Some(upload) if upload.bytes.len() != upload.total_bytes => problem(
                    400,
                    "Invalid Request",
                    "the segments do not add up to total_bytes",
                ),
                Some(upload) => {
                    upload.finalized = true;
                    let image = upload.media_type.starts_with("image/");
                    let mut data = json!({ "id": id, "media_key": format!("3_{id}"),
                        "size": upload.bytes.len(), "expires_after_secs": 86_400 });
                    if image {
                        data["image"] =
                            json!({ "image_type": upload.media_type, "w": 120, "h": 80 });
                    }
                    if upload.is_video() {
                        data["processing_info"] =
                            json!({ "state": "pending", "check_after_secs": 1 });
                    }
                    HttpResponse::Ok().json(json!({ "data": data }))
                }
            }
        }
        "getMediaUploadStatus" => {
            let id = param("media_id").to_string();
            let mut inner = state.lock();
            match inner.uploads.get_mut(&id) {
                Some(upload) if upload.finalized => {
                    if upload.is_video() {
                        upload.status_checks += 1;
                    }
                    let mut data = json!({ "id": id, "media_key": format!("3_{id}"),
                        "expires_after_secs": 86_400 });
                    if upload.is_video() {
                        let progress = upload.processing();
                        data["processing_info"] = match progress {
                            "in_progress" => json!({ "state": progress, "check_after_secs": 1,
                                "progress_percent": 50 }),
                            _ => json!({ "state": progress, "progress_percent": 100 }),
                        };
                    }
                    HttpResponse::Ok().json(json!({ "data": data }))
                }
                _ => problem(404, "Not Found Error", "no such media"),
            }
        }
        "getWebhooks" => {
            let data: Vec<Value> = state
                .lock()
                .webhooks
                .iter()
                .map(|w| {
                    json!({ "id": w.id, "url": w.url, "valid": w.valid,
                    "created_at": "2026-01-01T00:00:00.000Z" })
                })
                .collect();
            HttpResponse::Ok().json(json!({ "data": data, "meta": { "result_count": data.len() } }))
        }
        "createWebhooks" => {
            let url = body_json["url"].as_str().unwrap_or_default().to_string();
            if state.lock().webhooks.iter().any(|w| w.url == url) {
                return problem(
                    409,
                    "Conflict",
                    "DuplicateUrlFailed: the URL is registered already",
                );
            }
            let (valid, _) = state.crc(&url).await;
            if !valid {
                return problem(
                    400,
                    "Bad Request",
                    "CrcValidationFailed: the URL did not answer the CRC",
                );
            }
            let id = state.next_id();
            state.lock().webhooks.push(Webhook {
                id: id.clone(),
                url: url.clone(),
                valid: true,
            });
            HttpResponse::Ok().json(json!({ "data": { "id": id, "url": url, "valid": true,
                "created_at": Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string() } }))
        }
        "validateWebhooks" => {
            let id = path("webhook_id");
            let Some(url) = state
                .lock()
                .webhooks
                .iter()
                .find(|w| w.id == id)
                .map(|w| w.url.clone())
            else {
                return problem(404, "Not Found Error", "no such webhook");
            };
            let (valid, _) = state.crc(&url).await;
            if let Some(hook) = state.lock().webhooks.iter_mut().find(|w| w.id == id) {
                hook.valid = valid;
            }
            HttpResponse::Ok().json(json!({ "data": { "valid": valid } }))
        }
        "createAccountActivitySubscription" => {
            let webhook = path("webhook_id");
            let mut inner = state.lock();
            if !inner.webhooks.iter().any(|w| w.id == webhook) {
                return problem(404, "Not Found Error", "no such webhook");
            }
            if inner
                .subscriptions
                .iter()
                .any(|(w, u)| *w == webhook && *u == user)
            {
                return problem(409, "Conflict", "DuplicateSubscriptionFailed");
            }
            inner.subscriptions.push((webhook, user));
            HttpResponse::Ok().json(json!({ "data": { "subscribed": true } }))
        }
        other => problem(404, "Not Found", &format!("{other} is not served")),
    }
}

fn create_post(state: &State, body: &Value) -> HttpResponse {
    let user = state.config.user_id.clone();
    let text = body
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let media_ids: Vec<String> = body
        .pointer("/media/media_ids")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let tagged: Vec<String> = body
        .pointer("/media/tagged_user_ids")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    if text.is_empty() && media_ids.is_empty() {
        return problem(400, "Invalid Request", "text or media is required");
    }
    if text.chars().count() > 280 {
        return problem(403, "Forbidden", "Your Post text is too long.");
    }
    let place_id = body
        .pointer("/geo/place_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(place) = &place_id
        && !state.config.place_ids.contains(place)
    {
        return problem(
            400,
            "Invalid Request",
            &format!("geo.place_id {place} is not a known place"),
        );
    }
    {
        let inner = state.lock();
        for id in &media_ids {
            if !inner.uploads.get(id).is_some_and(Upload::ready) {
                return problem(
                    400,
                    "Invalid Request",
                    &format!("media {id} is not uploaded or not processed"),
                );
            }
        }
        let videos = media_ids
            .iter()
            .filter(|id| inner.uploads.get(*id).is_some_and(Upload::is_video))
            .count();
        if videos > 0 && media_ids.len() > 1 {
            return problem(
                400,
                "Invalid Request",
                "a video cannot be attached with other media",
            );
        }
        let duplicate = inner
            .tweets
            .iter()
            .any(|t| t.author_id == user && !t.deleted && !text.is_empty() && t.text == text);
        if duplicate {
            return problem(
                403,
                "Forbidden",
                "You are not allowed to create a Tweet with duplicate content.",
            );
        }
    }
    let in_reply_to = match body
        .pointer("/reply/in_reply_to_tweet_id")
        .and_then(Value::as_str)
    {
        Some(parent) => match state
            .lock()
            .tweets
            .iter()
            .find(|t| t.id == parent && !t.deleted)
        {
            Some(t) => Some((t.id.clone(), t.author_id.clone())),
            None => return problem(400, "Invalid Request", "the post replied to does not exist"),
        },
        None => None,
    };
    let id = state.add_tweet(&user, &text, in_reply_to, media_ids, tagged);
    if let Some(tweet) = state.lock().tweets.iter_mut().find(|t| t.id == id) {
        tweet.place_id = place_id;
    }
    HttpResponse::Created()
        .json(json!({ "data": { "id": id, "text": text, "edit_history_post_ids": [id] } }))
}
