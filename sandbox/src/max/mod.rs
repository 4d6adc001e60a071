//! A fake MAX Bot API for one bot (OpenAPI v0.0.33), speaking MAX's wire contract:
//!
//! - the documented paths `GET /me`, `POST /messages?chat_id=|user_id=`, `POST /uploads?type=`,
//!   `POST /answers?callback_id=`, `GET|POST|DELETE /subscriptions`, `GET /updates`, with the
//!   token in `Authorization` (401 `verify.token` otherwise), JSON bodies, errors as
//!   `{"code", "message"}`, and 429 past [`MaxConfig::requests_per_second`] (30, as MAX's
//!   partners document it);
//! - the upload URLs `POST /uploads` hands out (multipart field `data`; images answer
//!   `{"photos": {…: {"token"}}}`, files `{"token"}`, video and audio `{}` since their token came
//!   with the URL), and the files under `/files/<n>`;
//! - webhook delivery to every subscription, with the subscription's secret in
//!   `X-Max-Bot-Api-Secret`; without subscriptions the updates wait for `GET /updates` (long
//!   poll with `marker`; MAX refuses it with 405 while a webhook is set).
//!
//! Every request to a documented operation is checked against the OpenAPI document (see
//! [`spec`]); violations are recorded in [`MaxSandbox::violations`] and the request is still
//! served. A scripted customer writes, sends files, presses callback buttons, edits, and
//! presses Start. [`MaxSandbox::fail_next`] injects an error answer.
//!
//! Deviations from MAX, on purpose: subscriptions may be plain `http://` loopback URLs (MAX
//! demands HTTPS on 443); updates are delivered once (a test repeats one with
//! [`MaxSandbox::redeliver`]).

mod spec;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::support::{RateWindow, Violations, multipart};
use spec::MaxSpec;

/// The header MAX puts the subscription's secret in.
pub const SECRET_HEADER: &str = "X-Max-Bot-Api-Secret";

/// The bot the fake serves.
#[derive(Clone, Debug)]
pub struct MaxConfig {
    pub token: String,
    pub bot_user_id: i64,
    pub bot_name: String,
    /// Requests per second per token before 429.
    pub requests_per_second: u32,
}

impl Default for MaxConfig {
    fn default() -> Self {
        MaxConfig {
            token: "max-bot-token-0123456789".into(),
            bot_user_id: 5_000_001,
            bot_name: "Sandbox bot".into(),
            requests_per_second: 30,
        }
    }
}

/// A message the bot sent.
#[derive(Clone, Debug, PartialEq)]
pub struct SentMessage {
    pub mid: String,
    pub chat_id: Option<i64>,
    pub user_id: Option<i64>,
    /// The `NewMessageBody` as sent.
    pub body: Value,
}

/// A `POST /answers`.
#[derive(Clone, Debug, PartialEq)]
pub struct CallbackAnswer {
    pub callback_id: String,
    pub body: Value,
}

/// A webhook subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub url: String,
    pub secret: Option<String>,
    pub update_types: Vec<String>,
}

/// What one subscription answered to one update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryAnswer {
    pub url: String,
    /// The HTTP status, or 0 when the endpoint could not be reached.
    pub status: u16,
}

/// One update the customer caused, and how the webhooks took it.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// Its place in the update log, for [`MaxSandbox::redeliver`].
    pub index: usize,
    pub update: Value,
    pub answers: Vec<DeliveryAnswer>,
}

/// Something the customer attaches.
#[derive(Clone, Debug)]
pub enum CustomerAttachment {
    Image(Vec<u8>),
    File { name: String, bytes: Vec<u8> },
    Location { latitude: f64, longitude: f64 },
    Contact { name: String, phone: String },
}

#[derive(Default)]
struct Inner {
    sent: Vec<SentMessage>,
    answers: Vec<CallbackAnswer>,
    subscriptions: Vec<Subscription>,
    /// Upload slots: slot → (type, token given with the URL for video/audio).
    upload_slots: HashMap<String, (String, Option<String>)>,
    /// Attachment tokens → file index.
    tokens: HashMap<String, usize>,
    files: Vec<(Vec<u8>, String)>,
    /// Every update, in order; long poll reads from `committed`.
    updates: Vec<Value>,
    committed: usize,
    /// Injected answers by operation: status, code, message.
    failures: HashMap<String, VecDeque<(u16, String, String)>>,
    calls: HashMap<String, usize>,
    rate_limited: u64,
    /// Callback ids not answered yet.
    open_callbacks: HashMap<String, i64>,
    /// The customer's messages by mid, for edits.
    customer_messages: HashMap<String, Value>,
    seq: i64,
    /// Users who stopped the bot: sends to their dialog answer 403 until they write again.
    stopped: HashSet<i64>,
}

struct State {
    config: MaxConfig,
    base: String,
    spec: MaxSpec,
    rate: RateWindow,
    violations: Violations,
    inner: Mutex<Inner>,
    /// The number of updates logged, for long poll waits.
    logged: watch::Sender<usize>,
    http: reqwest::Client,
    ids: AtomicU64,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn new_key(&self) -> String {
        let count = self.ids.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mixed =
            (nanos ^ count.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        format!("{mixed:016x}")
    }

    fn store_file(&self, bytes: Vec<u8>, content_type: &str) -> usize {
        let mut inner = self.lock();
        inner.files.push((bytes, content_type.to_string()));
        inner.files.len() - 1
    }

    fn file_url(&self, index: usize) -> String {
        format!("{}files/{index}", self.base)
    }

    fn bot(&self) -> Value {
        json!({"user_id": self.config.bot_user_id, "first_name": self.config.bot_name,
            "username": "sandbox_bot", "is_bot": true, "last_activity_time": now_ms()})
    }
}

/// The chat id of the dialog between the bot and a user.
pub fn dialog_chat_id(user_id: i64) -> i64 {
    1_000_000_000 + user_id
}

/// A running fake MAX Bot API on an ephemeral loopback port; dropping it stops the server.
pub struct MaxSandbox {
    addr: SocketAddr,
    state: Arc<State>,
    handle: ServerHandle,
}

impl MaxSandbox {
    pub async fn start(config: MaxConfig) -> std::io::Result<MaxSandbox> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            config,
            base: format!("http://{addr}/"),
            spec: MaxSpec::load().map_err(std::io::Error::other)?,
            rate: RateWindow::default(),
            violations: Violations::default(),
            inner: Mutex::new(Inner::default()),
            logged: watch::Sender::new(0),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                // Webhooks go to a local omnihub, whose demo certificate is self-signed.
                .danger_accept_invalid_certs(true)
                .build()
                .map_err(std::io::Error::other)?,
            ids: AtomicU64::new(0),
        });
        let data = web::Data::from(Arc::clone(&state));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
                .route("/upload/{slot}", web::post().to(upload))
                .route("/files/{index}", web::get().to(file))
                .default_service(web::to(api))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(MaxSandbox {
            addr,
            state,
            handle,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base to give the connector.
    pub fn base_url(&self) -> String {
        self.state.base.clone()
    }

    pub fn config(&self) -> &MaxConfig {
        &self.state.config
    }

    pub fn sent(&self) -> Vec<SentMessage> {
        self.state.lock().sent.clone()
    }

    pub fn callback_answers(&self) -> Vec<CallbackAnswer> {
        self.state.lock().answers.clone()
    }

    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.state.lock().subscriptions.clone()
    }

    pub fn violations(&self) -> Vec<String> {
        self.state.violations.all()
    }

    /// How many requests were refused with 429.
    pub fn rate_limited(&self) -> u64 {
        self.state.lock().rate_limited
    }

    /// How many requests `METHOD /path` got (refused ones included).
    pub fn calls(&self, operation: &str) -> usize {
        self.state.lock().calls.get(operation).copied().unwrap_or(0)
    }

    /// The bytes behind an attachment token.
    pub fn uploaded(&self, token: &str) -> Option<Vec<u8>> {
        let inner = self.state.lock();
        let index = *inner.tokens.get(token)?;
        inner.files.get(index).map(|(bytes, _)| bytes.clone())
    }

    /// The next request to `METHOD /path` (e.g. `POST /messages`) answers `status` with
    /// `{"code": code, "message": "injected failure"}`.
    pub fn fail_next(&self, operation: &str, status: u16, code: &str) {
        self.fail_next_saying(operation, status, code, "injected failure");
    }

    /// The same with MAX's own words in `message` (e.g. the schema's example of a 403
    /// `chat.denied`: "Forwarding messages from this chat or channel is prohibited").
    pub fn fail_next_saying(&self, operation: &str, status: u16, code: &str, message: &str) {
        self.state
            .lock()
            .failures
            .entry(operation.to_string())
            .or_default()
            .push_back((status, code.to_string(), message.to_string()));
    }

    pub async fn customer_writes(&self, user_id: i64, text: &str) -> Delivery {
        self.customer_sends(user_id, text, Vec::new()).await
    }

    pub async fn customer_sends(
        &self,
        user_id: i64,
        text: &str,
        attachments: Vec<CustomerAttachment>,
    ) -> Delivery {
        let attachments: Vec<Value> = attachments
            .into_iter()
            .map(|attachment| self.customer_attachment(attachment))
            .collect();
        let message = {
            let mut inner = self.state.lock();
            inner.stopped.remove(&user_id);
            inner.seq += 1;
            let mid = format!("mid.{}", self.state.new_key());
            let message = json!({
                "sender": customer(user_id),
                "recipient": {"chat_id": dialog_chat_id(user_id), "chat_type": "dialog",
                    "user_id": self.state.config.bot_user_id},
                "timestamp": now_ms(),
                "body": {"mid": mid, "seq": inner.seq, "text": text, "attachments": attachments},
            });
            inner.customer_messages.insert(mid, message.clone());
            message
        };
        self.emit(
            json!({"update_type": "message_created", "timestamp": now_ms(),
            "message": message, "user_locale": "ru"}),
        )
        .await
    }

    /// The customer edits their message `mid`; `None` if there is no such message.
    pub async fn customer_edits(&self, mid: &str, text: &str) -> Option<Delivery> {
        let message = {
            let mut inner = self.state.lock();
            let message = inner.customer_messages.get_mut(mid)?;
            message["body"]["text"] = json!(text);
            message.clone()
        };
        Some(
            self.emit(
                json!({"update_type": "message_edited", "timestamp": now_ms() + 1,
                "message": message}),
            )
            .await,
        )
    }

    /// The customer presses the callback button with `payload` in the last message the bot
    /// sent to their dialog that has one; `None` when there is no such button.
    pub async fn customer_presses(&self, user_id: i64, payload: &str) -> Option<Delivery> {
        let message = {
            let inner = self.state.lock();
            inner
                .sent
                .iter()
                .rev()
                .find(|sent| {
                    let to_user = sent.user_id == Some(user_id)
                        || sent.chat_id == Some(dialog_chat_id(user_id));
                    to_user && callback_payloads(&sent.body).iter().any(|p| p == payload)
                })?
                .clone()
        };
        let callback_id = format!("cb.{}", self.state.new_key());
        self.state
            .lock()
            .open_callbacks
            .insert(callback_id.clone(), user_id);
        let original = json!({
            "sender": self.state.bot(),
            "recipient": {"chat_id": dialog_chat_id(user_id), "chat_type": "dialog",
                "user_id": user_id},
            "timestamp": now_ms(),
            "body": {"mid": message.mid, "seq": 1, "text": message.body["text"],
                "attachments": message.body["attachments"]},
        });
        Some(
            self.emit(
                json!({"update_type": "message_callback", "timestamp": now_ms(),
                "callback": {"timestamp": now_ms(), "callback_id": callback_id,
                    "payload": payload, "user": customer(user_id)},
                "message": original, "user_locale": "ru"}),
            )
            .await,
        )
    }

    /// The customer presses Start (from a deep link with `payload`, if given).
    pub async fn customer_starts(&self, user_id: i64, payload: Option<&str>) -> Delivery {
        let mut update = json!({"update_type": "bot_started", "timestamp": now_ms(),
            "chat_id": dialog_chat_id(user_id), "user": customer(user_id), "user_locale": "ru"});
        if let Some(payload) = payload {
            update["payload"] = json!(payload);
        }
        self.emit(update).await
    }

    /// The customer stops the bot: a `bot_stopped` update, and sends to their dialog answer 403
    /// `chat.denied` ("Key: error.dialog.suspended, args: [<user id>,].") until they write
    /// again.
    pub async fn customer_stops_bot(&self, user_id: i64) -> Delivery {
        self.state.lock().stopped.insert(user_id);
        self.emit(json!({"update_type": "bot_stopped", "timestamp": now_ms(),
            "chat_id": dialog_chat_id(user_id), "user": customer(user_id), "user_locale": "ru"}))
            .await
    }

    /// Sends a logged update to the webhooks again, as MAX does after a failed delivery.
    pub async fn redeliver(&self, index: usize) -> Option<Delivery> {
        let update = self.state.lock().updates.get(index)?.clone();
        let answers = self.deliver(&update).await;
        Some(Delivery {
            index,
            update,
            answers,
        })
    }

    fn customer_attachment(&self, attachment: CustomerAttachment) -> Value {
        match attachment {
            CustomerAttachment::Image(bytes) => {
                let url = self
                    .state
                    .file_url(self.state.store_file(bytes, "image/jpeg"));
                json!({"type": "image", "payload": {"photo_id": 1, "token": self.state.new_key(),
                    "url": url}})
            }
            CustomerAttachment::File { name, bytes } => {
                let size = bytes.len();
                let url = self
                    .state
                    .file_url(self.state.store_file(bytes, "application/octet-stream"));
                json!({"type": "file", "payload": {"url": url, "token": self.state.new_key()},
                    "filename": name, "size": size})
            }
            CustomerAttachment::Location {
                latitude,
                longitude,
            } => json!({"type": "location", "latitude": latitude, "longitude": longitude}),
            CustomerAttachment::Contact { name, phone } => json!({"type": "contact", "payload": {
                "vcf_info": format!("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:{name}\r\nTEL;TYPE=cell:{phone}\r\nEND:VCARD"),
                "max_info": null}}),
        }
    }

    /// Logs the update, delivers it to the webhooks (or leaves it for long poll). An update that
    /// breaks MAX's own schema is a bug of the fake, recorded with the client's violations so
    /// no test passes on it.
    async fn emit(&self, update: Value) -> Delivery {
        for problem in self.state.spec.check_update(&update) {
            self.state
                .violations
                .record(format!("the sandbox's own {problem}"));
        }
        let index = {
            let mut inner = self.state.lock();
            inner.updates.push(update.clone());
            inner.updates.len() - 1
        };
        self.state.logged.send_replace(index + 1);
        let answers = self.deliver(&update).await;
        Delivery {
            index,
            update,
            answers,
        }
    }

    async fn deliver(&self, update: &Value) -> Vec<DeliveryAnswer> {
        let kind = update["update_type"].as_str().unwrap_or("");
        let subscriptions: Vec<Subscription> = self
            .state
            .lock()
            .subscriptions
            .iter()
            .filter(|s| s.update_types.is_empty() || s.update_types.iter().any(|t| t == kind))
            .cloned()
            .collect();
        let mut answers = Vec::new();
        for subscription in subscriptions {
            let mut request = self.state.http.post(&subscription.url).json(update);
            if let Some(secret) = &subscription.secret {
                request = request.header(SECRET_HEADER, secret);
            }
            let status = match request.send().await {
                Ok(response) => response.status().as_u16(),
                Err(_) => 0,
            };
            answers.push(DeliveryAnswer {
                url: subscription.url,
                status,
            });
        }
        answers
    }
}

impl Drop for MaxSandbox {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

fn error(status: u16, code: &str, message: &str) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
    HttpResponse::build(status).json(json!({"code": code, "message": message}))
}

/// Every documented operation: authentication, rate limit, schema check, injected failures,
/// then the operation itself.
async fn api(state: web::Data<State>, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    let method = request.method().as_str().to_string();
    let path = request.path().to_string();
    let operation = format!("{method} {path}");
    *state.lock().calls.entry(operation.clone()).or_default() += 1;
    if !state.spec.knows(&method, &path) {
        return error(404, "not.found", "Path not found");
    }
    let given = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if given != Some(state.config.token.as_str()) {
        return error(401, "verify.token", "Invalid access_token");
    }
    if !state
        .rate
        .admit(&state.config.token, state.config.requests_per_second)
    {
        state.lock().rate_limited += 1;
        return error(429, "too.many.requests", "Too many requests");
    }
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(request.query_string()).unwrap_or_default();
    let json_body = if body.is_empty() {
        None
    } else {
        let is_json = request
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json {
            state
                .violations
                .record(format!("{operation}: a body that is not application/json"));
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(value) => Some(value),
            Err(err) => {
                state
                    .violations
                    .record(format!("{operation}: the body is not JSON: {err}"));
                return error(400, "proto.payload", "Invalid JSON");
            }
        }
    };
    for problem in state.spec.check(&method, &path, &query, json_body.as_ref()) {
        state.violations.record(problem);
    }
    let injected = state
        .lock()
        .failures
        .get_mut(&operation)
        .and_then(VecDeque::pop_front);
    if let Some((status, code, message)) = injected {
        return error(status, &code, &message);
    }
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let body = json_body.unwrap_or(Value::Null);
    match (method.as_str(), path.as_str()) {
        ("GET", "/me") => HttpResponse::Ok().json(state.bot()),
        ("POST", "/messages") => send(&state, param("chat_id"), param("user_id"), body),
        ("POST", "/uploads") => upload_url(&state, param("type")),
        ("POST", "/answers") => answer(&state, param("callback_id"), body),
        ("GET", "/subscriptions") => {
            let list: Vec<Value> = state
                .lock()
                .subscriptions
                .iter()
                .map(|s| json!({"url": s.url, "time": now_ms(), "update_types": s.update_types}))
                .collect();
            HttpResponse::Ok().json(json!({"subscriptions": list}))
        }
        ("POST", "/subscriptions") => subscribe(&state, body),
        ("DELETE", "/subscriptions") => {
            let url = param("url").unwrap_or_default();
            let mut inner = state.lock();
            let before = inner.subscriptions.len();
            inner.subscriptions.retain(|s| s.url != url);
            let removed = inner.subscriptions.len() < before;
            HttpResponse::Ok().json(if removed {
                json!({"success": true})
            } else {
                json!({"success": false, "message": "subscription not found"})
            })
        }
        ("GET", "/updates") => {
            updates(
                &state,
                param("marker"),
                param("timeout"),
                param("limit"),
                param("types"),
            )
            .await
        }
        _ => error(
            405,
            "method.not.allowed",
            "Method is not supported by the sandbox",
        ),
    }
}

fn send(
    state: &State,
    chat_id: Option<String>,
    user_id: Option<String>,
    body: Value,
) -> HttpResponse {
    let chat_id = chat_id.and_then(|v| v.parse::<i64>().ok());
    let user_id = user_id.and_then(|v| v.parse::<i64>().ok());
    if chat_id.is_none() && user_id.is_none() {
        return error(400, "proto.payload", "chat_id or user_id is required");
    }
    let mut inner = state.lock();
    let stopped = |user: &i64| inner.stopped.contains(user);
    let dialog_user = chat_id.map(|chat| chat - dialog_chat_id(0));
    if let Some(user) = user_id.filter(stopped).or(dialog_user.filter(stopped)) {
        // The schema's "user suspended bot", in the words MAX answers it with.
        return error(
            403,
            "chat.denied",
            &format!("Key: error.dialog.suspended, args: [{user},]."),
        );
    }
    for attachment in body["attachments"].as_array().into_iter().flatten() {
        let tokens: Vec<&str> = match attachment["type"].as_str() {
            Some("image") => match attachment["payload"]["photos"].as_object() {
                Some(photos) => photos
                    .values()
                    .filter_map(|p| p["token"].as_str())
                    .collect(),
                None => attachment["payload"]["token"]
                    .as_str()
                    .into_iter()
                    .collect(),
            },
            Some("video" | "audio" | "file") => attachment["payload"]["token"]
                .as_str()
                .into_iter()
                .collect(),
            _ => Vec::new(),
        };
        if let Some(unknown) = tokens.iter().find(|t| !inner.tokens.contains_key(**t)) {
            return error(
                400,
                "attachment.invalid",
                &format!("unknown token {unknown}"),
            );
        }
    }
    inner.seq += 1;
    let mid = format!("mid.{}", state.new_key());
    inner.sent.push(SentMessage {
        mid: mid.clone(),
        chat_id,
        user_id,
        body: body.clone(),
    });
    let seq = inner.seq;
    drop(inner);
    HttpResponse::Ok().json(json!({"message": {
        "sender": state.bot(),
        "recipient": {"chat_id": chat_id, "chat_type": "dialog", "user_id": user_id},
        "timestamp": now_ms(),
        "body": {"mid": mid, "seq": seq, "text": body["text"], "attachments": body["attachments"]},
    }}))
}

fn upload_url(state: &State, kind: Option<String>) -> HttpResponse {
    let kind = kind.unwrap_or_default();
    if !matches!(kind.as_str(), "image" | "video" | "audio" | "file") {
        return error(400, "proto.payload", "unknown upload type");
    }
    let slot = state.new_key();
    let token = matches!(kind.as_str(), "video" | "audio").then(|| state.new_key());
    state
        .lock()
        .upload_slots
        .insert(slot.clone(), (kind, token.clone()));
    let mut answer = json!({"url": format!("{}upload/{slot}", state.base)});
    if let Some(token) = token {
        answer["token"] = json!(token);
    }
    HttpResponse::Ok().json(answer)
}

/// `POST /upload/<slot>`: the multipart upload a `POST /uploads` URL points to.
async fn upload(
    state: web::Data<State>,
    slot: web::Path<String>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let Some((kind, endpoint_token)) = state.lock().upload_slots.remove(slot.as_str()) else {
        return error(404, "not.found", "unknown upload URL");
    };
    let content_type = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let part = match multipart(content_type, &body) {
        Ok(parts) => parts.into_iter().find(|p| p.name == "data"),
        Err(err) => {
            state.violations.record(format!("upload: {err}"));
            return error(400, "proto.payload", &err);
        }
    };
    let Some(part) = part else {
        state.violations.record("upload: no multipart field data");
        return error(400, "proto.payload", "no field data");
    };
    let mime = part
        .content_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".into());
    let index = state.store_file(part.bytes, &mime);
    let token = endpoint_token.unwrap_or_else(|| state.new_key());
    state.lock().tokens.insert(token.clone(), index);
    HttpResponse::Ok().json(match kind.as_str() {
        "image" => json!({"photos": {state.new_key(): {"token": token}}}),
        "file" => json!({"fileId": index, "token": token}),
        _ => json!({}),
    })
}

fn answer(state: &State, callback_id: Option<String>, body: Value) -> HttpResponse {
    let callback_id = callback_id.unwrap_or_default();
    let mut inner = state.lock();
    if inner.open_callbacks.remove(&callback_id).is_none() {
        return error(404, "not.found", "callback not found");
    }
    inner.answers.push(CallbackAnswer { callback_id, body });
    HttpResponse::Ok().json(json!({"success": true}))
}

fn subscribe(state: &State, body: Value) -> HttpResponse {
    let Some(url) = body["url"].as_str().map(str::to_string) else {
        return error(400, "proto.payload", "url is required");
    };
    let subscription = Subscription {
        url: url.clone(),
        secret: body["secret"].as_str().map(str::to_string),
        update_types: body["update_types"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect(),
    };
    let mut inner = state.lock();
    inner.subscriptions.retain(|s| s.url != url);
    inner.subscriptions.push(subscription);
    HttpResponse::Ok().json(json!({"success": true}))
}

async fn updates(
    state: &State,
    marker: Option<String>,
    timeout: Option<String>,
    limit: Option<String>,
    types: Option<String>,
) -> HttpResponse {
    if !state.lock().subscriptions.is_empty() {
        return error(
            405,
            "method.not.allowed",
            "Long polling is off while a webhook is set",
        );
    }
    let from = {
        let mut inner = state.lock();
        // Passing a marker commits everything before it.
        if let Some(marker) = marker.and_then(|m| m.parse::<usize>().ok()) {
            inner.committed = marker.min(inner.updates.len());
        }
        inner.committed
    };
    let timeout = timeout
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(30)
        .min(90);
    let limit = limit
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 1000);
    let types: Vec<String> = types
        .map(|t| t.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let mut logged = state.logged.subscribe();
    let _ = tokio::time::timeout(
        Duration::from_secs(timeout),
        logged.wait_for(|count| *count > from),
    )
    .await;
    let inner = state.lock();
    let end = inner.updates.len().min(from + limit);
    let batch: Vec<Value> = inner.updates[from..end]
        .iter()
        .filter(|u| {
            types.is_empty()
                || types
                    .iter()
                    .any(|t| u["update_type"].as_str() == Some(t.as_str()))
        })
        .cloned()
        .collect();
    HttpResponse::Ok().json(json!({"updates": batch, "marker": end}))
}

async fn file(state: web::Data<State>, index: web::Path<usize>) -> HttpResponse {
    match state.lock().files.get(*index) {
        Some((bytes, content_type)) => HttpResponse::Ok()
            .content_type(content_type.as_str())
            .body(bytes.clone()),
        None => HttpResponse::NotFound().finish(),
    }
}

fn customer(user_id: i64) -> Value {
    json!({"user_id": user_id, "first_name": "Анна", "last_name": "Смирнова",
        "username": format!("anna{user_id}"), "is_bot": false, "last_activity_time": now_ms()})
}

fn callback_payloads(body: &Value) -> Vec<String> {
    body["attachments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["type"] == "inline_keyboard")
        .filter_map(|a| a["payload"]["buttons"].as_array())
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .filter(|b| b["type"] == "callback")
        .filter_map(|b| b["payload"].as_str().map(str::to_string))
        .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
