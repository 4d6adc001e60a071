//! A fake VK API for one community (API v5.199), speaking VK's wire contract:
//!
//! - `POST /method/<name>` with form-encoded (or query) parameters, answered
//!   `{"response": …}` or `{"error": {"error_code", "error_msg", "request_params"}}` with VK's
//!   official codes and wording (`errors.json`): 5 for a wrong token, 6 past
//!   [`VkConfig::requests_per_second`] (VK's 20 per community token), 3 for an unknown method,
//!   100 for invalid parameters;
//! - upload endpoints handed out by `photos.getMessagesUploadServer` and
//!   `docs.getMessagesUploadServer` (multipart fields `photo` and `file`), and by `video.save`
//!   (multipart field `video_file`, a video by its first bytes, which becomes the attachment
//!   `video<owner>_<id>`), and the uploaded or customer-sent files under `/files/<n>`;
//! - the Bots Long Poll server returned by `groups.getLongPollServer`
//!   (`?act=a_check&key=&ts=&wait=`, with `failed` 1, 2 and 3 as VK documents);
//! - Callback API delivery: a server added by `groups.addCallbackServer` is sent
//!   `{"type":"confirmation","group_id"}` and must answer the community's confirmation code;
//!   only then does it get events, each carrying the server's `secret`, and VK expects `ok`.
//!
//! Every method call is checked against the method's parameters in VK's published JSON Schema
//! (see [`spec`]); what breaks it is recorded in [`VkSandbox::violations`] and the call is
//! still served, so a test sees both. A scripted customer ([`VkSandbox::customer_writes`] and
//! friends) writes, sends files, presses callback buttons and edits; its events go to every
//! confirmed callback server that enabled their type, and to the long poll queue when long poll
//! is enabled. Failures are injected with [`VkSandbox::fail_next`] and the long poll helpers.
//!
//! Deviations from VK, on purpose: `random_id` duplicates answer the first message's id (VK
//! silently drops the duplicate); long poll is off until `groups.setLongPollSettings enabled=1`
//! and `groups.getLongPollServer` then answers error 100; events are delivered once (a test
//! repeats one with [`VkSandbox::redeliver`]).

mod methods;
mod oauth;
mod spec;
mod wall;

pub use wall::{WallComment, WallPost};

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::support::{RateWindow, Violations};
use spec::VkSpec;

/// The community the fake serves.
#[derive(Clone, Debug)]
pub struct VkConfig {
    pub group_id: i64,
    pub access_token: String,
    /// What `groups.getCallbackConfirmationCode` would give, and what a callback server must
    /// answer to the confirmation request.
    pub confirmation_code: String,
    /// Method calls per second per token before error 6.
    pub requests_per_second: u32,
    /// The VK ID application whose authorization flow the fake serves.
    pub client_id: String,
    /// How long access tokens issued by that flow live.
    pub oauth_token_ttl_secs: u64,
    /// The person who authorizes: an administrator of the community.
    pub admin_user_id: i64,
}

impl Default for VkConfig {
    fn default() -> Self {
        VkConfig {
            group_id: 123456,
            access_token: "vk1.a.community-token".into(),
            confirmation_code: "a1b2c3d4".into(),
            requests_per_second: 20,
            client_id: "51900000".into(),
            oauth_token_ttl_secs: 3600,
            admin_user_id: 777,
        }
    }
}

/// A `messages.send` that VK accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct SentMessage {
    pub message_id: i64,
    pub peer_id: i64,
    pub random_id: i64,
    pub text: String,
    /// The `keyboard` parameter, parsed.
    pub keyboard: Option<Value>,
    /// The `attachment` references (`photo-1_2`, `doc-1_3`).
    pub attachments: Vec<String>,
    pub reply_to: Option<i64>,
    /// The `forward` parameter, parsed.
    pub forward: Option<Value>,
}

/// A `messages.sendMessageEventAnswer`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventAnswer {
    pub event_id: String,
    pub user_id: i64,
    pub peer_id: i64,
}

/// A callback server as `groups.getCallbackServers` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackServer {
    pub id: i64,
    pub url: String,
    pub title: String,
    pub secret_key: String,
    /// `unconfigured`, `failed` or `ok` (confirmed).
    pub status: String,
    /// Event types enabled by `groups.setCallbackSettings`.
    pub events: Vec<String>,
}

/// What a callback server answered to one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryAnswer {
    pub server_id: i64,
    /// The HTTP status, or 0 when the server could not be reached.
    pub status: u16,
    pub body: String,
}

/// One event the customer caused, and how the callback servers took it.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub event_id: String,
    /// The event as VK sends it (without the per-server `secret`).
    pub event: Value,
    pub answers: Vec<DeliveryAnswer>,
}

/// A file the customer sends.
#[derive(Clone, Debug)]
pub enum CustomerAttachment {
    Photo(Vec<u8>),
    Document { title: String, bytes: Vec<u8> },
    Voice(Vec<u8>),
    Geo { latitude: f64, longitude: f64 },
}

#[derive(Default)]
struct LongPoll {
    enabled: bool,
    key: String,
    events: Vec<(u64, Value)>,
    /// Events before this ts are forgotten (history lost).
    oldest: u64,
    next_ts: u64,
    /// The next check answers `failed: 3`.
    lose_key: bool,
}

#[derive(Default)]
struct Inner {
    next_id: i64,
    sent: Vec<SentMessage>,
    sent_by_random_id: HashMap<(i64, i64), i64>,
    answers: Vec<EventAnswer>,
    /// Upload slots handed out: slot id → `photo`, `doc` or `video`.
    upload_slots: HashMap<String, &'static str>,
    /// The video each `video.save` slot is for: slot id → video id.
    video_slots: HashMap<String, i64>,
    /// Uploaded, not yet saved: token → file index.
    pending_uploads: HashMap<String, usize>,
    /// Saved media: `photo-1_2` → file index.
    media: HashMap<String, usize>,
    files: Vec<(Vec<u8>, String)>,
    servers: Vec<CallbackServer>,
    long_poll: LongPoll,
    failures: HashMap<String, VecDeque<i64>>,
    calls: HashMap<String, usize>,
    rate_limited: u64,
    /// Events by id, for redelivery.
    events: HashMap<String, Value>,
    /// Button presses not yet answered: event_id → (user, peer).
    presses: HashMap<String, (i64, i64)>,
    /// The customer's messages by id, for edits.
    customer_messages: HashMap<i64, Value>,
    /// The community's wall.
    wall: wall::Wall,
    /// Customers who denied the community messages; writing to it allows them again.
    denied: HashSet<i64>,
    /// The VK ID flow's codes and tokens.
    oauth: oauth::Issued,
}

pub(crate) struct State {
    config: VkConfig,
    base: String,
    spec: VkSpec,
    rate: RateWindow,
    violations: Violations,
    inner: Mutex<Inner>,
    /// Bumped whenever a long poll event is queued.
    long_poll_ts: watch::Sender<u64>,
    http: reqwest::Client,
    ids: std::sync::atomic::AtomicU64,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not take the fake down with it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The community's own token, or a live one issued by the VK ID flow.
    pub(crate) fn token_accepted(&self, token: &str) -> bool {
        token == self.config.access_token
            || self
                .lock()
                .oauth
                .access
                .get(token)
                .is_some_and(|until| *until > std::time::Instant::now())
    }

    fn file_url(&self, index: usize) -> String {
        format!("{}files/{index}", self.base)
    }

    fn store_file(&self, bytes: Vec<u8>, content_type: &str) -> usize {
        let mut inner = self.lock();
        inner.files.push((bytes, content_type.to_string()));
        inner.files.len() - 1
    }
}

/// A running fake VK API on an ephemeral loopback port; dropping it stops the server.
pub struct VkSandbox {
    addr: SocketAddr,
    state: Arc<State>,
    handle: ServerHandle,
}

impl VkSandbox {
    pub async fn start(config: VkConfig) -> std::io::Result<VkSandbox> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let spec = VkSpec::load().map_err(std::io::Error::other)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            // Webhooks go to a local omnihub, whose demo certificate is self-signed.
            .danger_accept_invalid_certs(true)
            .build()
            .map_err(std::io::Error::other)?;
        let state = Arc::new(State {
            config,
            base: format!("http://{addr}/"),
            spec,
            rate: RateWindow::default(),
            violations: Violations::default(),
            inner: Mutex::new(Inner {
                next_id: 1,
                long_poll: LongPoll {
                    next_ts: 1,
                    oldest: 1,
                    ..LongPoll::default()
                },
                ..Inner::default()
            }),
            long_poll_ts: watch::Sender::new(1),
            http,
            ids: std::sync::atomic::AtomicU64::new(0),
        });
        let key = state.new_key();
        state.lock().long_poll.key = key;
        let data = web::Data::from(Arc::clone(&state));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
                .route("/method/{name}", web::post().to(method))
                .route("/method/{name}", web::get().to(method))
                .route("/upload/{kind}/{slot}", web::post().to(methods::upload))
                .route("/lp/{group}", web::get().to(long_poll))
                .route("/files/{index}", web::get().to(file))
                .route("/authorize", web::get().to(oauth::authorize))
                .route("/oauth2/auth", web::post().to(oauth::token))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(VkSandbox {
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
        self.state.base.clone()
    }

    pub fn config(&self) -> &VkConfig {
        &self.state.config
    }

    /// The VK ID flow's authorization endpoint (`…/authorize`).
    pub fn oauth_authorize_url(&self) -> String {
        format!("{}authorize", self.state.base)
    }

    /// The VK ID flow's token endpoint (`…/oauth2/auth`).
    pub fn oauth_token_url(&self) -> String {
        format!("{}oauth2/auth", self.state.base)
    }

    /// Every code exchange and refresh the token endpoint served: (`grant_type`, accepted).
    pub fn oauth_requests(&self) -> Vec<(String, bool)> {
        self.state.lock().oauth.requests.clone()
    }

    /// Whether `token` is one the API methods accept now.
    pub fn token_accepted(&self, token: &str) -> bool {
        self.state.token_accepted(token)
    }

    /// Every message sent (duplicates by `random_id` are not repeated here).
    pub fn sent(&self) -> Vec<SentMessage> {
        self.state.lock().sent.clone()
    }

    pub fn event_answers(&self) -> Vec<EventAnswer> {
        self.state.lock().answers.clone()
    }

    pub fn callback_servers(&self) -> Vec<CallbackServer> {
        self.state.lock().servers.clone()
    }

    pub fn long_poll_enabled(&self) -> bool {
        self.state.lock().long_poll.enabled
    }

    /// Requests that broke VK's schema.
    pub fn violations(&self) -> Vec<String> {
        self.state.violations.all()
    }

    /// How many calls were refused with error 6.
    pub fn rate_limited(&self) -> u64 {
        self.state.lock().rate_limited
    }

    /// How many times `method` was called (refused calls included).
    pub fn calls(&self, method: &str) -> usize {
        self.state.lock().calls.get(method).copied().unwrap_or(0)
    }

    /// The bytes of a file the fake serves, by its URL.
    pub fn file(&self, url: &str) -> Option<Vec<u8>> {
        let index: usize = url
            .strip_prefix(&format!("{}files/", self.state.base))?
            .parse()
            .ok()?;
        self.state
            .lock()
            .files
            .get(index)
            .map(|(bytes, _)| bytes.clone())
    }

    /// The bytes behind a saved `photo<owner>_<id>` or `doc<owner>_<id>` reference.
    pub fn media(&self, reference: &str) -> Option<Vec<u8>> {
        let inner = self.state.lock();
        let index = *inner.media.get(reference)?;
        inner.files.get(index).map(|(bytes, _)| bytes.clone())
    }

    /// The next call of `method` fails with VK error `code` (queued: call again to fail more).
    pub fn fail_next(&self, method: &str, code: i64) {
        self.state
            .lock()
            .failures
            .entry(method.to_string())
            .or_default()
            .push_back(code);
    }

    /// The long poll key expires: the next check answers `failed: 2`.
    pub fn expire_long_poll_key(&self) {
        let key = self.state.new_key();
        self.state.lock().long_poll.key = key;
    }

    /// Events queued so far are forgotten: a check from before answers `failed: 1` with the
    /// current ts.
    pub fn lose_long_poll_history(&self) {
        let mut inner = self.state.lock();
        inner.long_poll.oldest = inner.long_poll.next_ts;
        inner.long_poll.events.clear();
    }

    /// The key and history are lost: the next check answers `failed: 3`.
    pub fn lose_long_poll_key(&self) {
        let key = self.state.new_key();
        let mut inner = self.state.lock();
        inner.long_poll.lose_key = true;
        inner.long_poll.key = key;
    }

    /// The customer `from_id` writes `text` in their dialog with the community.
    pub async fn customer_writes(&self, from_id: i64, text: &str) -> Delivery {
        self.customer_sends(from_id, text, Vec::new()).await
    }

    /// The customer writes with files (uploaded to the fake's `/files/`).
    pub async fn customer_sends(
        &self,
        from_id: i64,
        text: &str,
        attachments: Vec<CustomerAttachment>,
    ) -> Delivery {
        self.state.lock().denied.remove(&from_id);
        let message = self.customer_message(from_id, text, attachments, None);
        let object = json!({"message": message, "client_info": client_info()});
        self.emit("message_new", object).await
    }

    /// The customer forbids the community to write to them: a `message_deny` event, and
    /// `messages.send` to them answers error 901 until they write again.
    pub async fn customer_denies_messages(&self, user_id: i64) -> Delivery {
        self.state.lock().denied.insert(user_id);
        self.emit("message_deny", json!({"user_id": user_id})).await
    }

    /// The customer presses a text button: a message whose text is the label and whose
    /// `payload` is the button's.
    pub async fn customer_taps_text_button(
        &self,
        from_id: i64,
        label: &str,
        payload: &str,
    ) -> Delivery {
        let message = self.customer_message(from_id, label, Vec::new(), Some(payload));
        let object = json!({"message": message, "client_info": client_info()});
        self.emit("message_new", object).await
    }

    /// The customer presses the callback button carrying `payload` in the last message sent to
    /// them that has one; `None` when no such button was sent.
    pub async fn customer_presses(&self, user_id: i64, payload: &str) -> Option<Delivery> {
        let (conversation_message_id, button_payload) = {
            let inner = self.state.lock();
            inner.sent.iter().rev().find_map(|sent| {
                if sent.peer_id != user_id {
                    return None;
                }
                let found = callback_payloads(sent.keyboard.as_ref())
                    .into_iter()
                    .find(|p| p == payload || decoded(p) == payload)?;
                Some((sent.message_id, found))
            })?
        };
        let press_id = self.state.new_key();
        self.state
            .lock()
            .presses
            .insert(press_id.clone(), (user_id, user_id));
        let object = json!({
            "user_id": user_id,
            "peer_id": user_id,
            "event_id": press_id,
            "payload": button_payload,
            "conversation_message_id": conversation_message_id,
        });
        Some(self.emit("message_event", object).await)
    }

    /// The customer edits their message `message_id`; `None` if there is no such message.
    pub async fn customer_edits(&self, message_id: i64, text: &str) -> Option<Delivery> {
        let message = {
            let mut inner = self.state.lock();
            let message = inner.customer_messages.get_mut(&message_id)?;
            message["text"] = json!(text);
            message["update_time"] = json!(now_secs() + 1);
            message.clone()
        };
        Some(self.emit("message_edit", message).await)
    }

    /// Sends an earlier event again to the callback servers, as VK does when it got no `ok`.
    pub async fn redeliver(&self, event_id: &str) -> Option<Delivery> {
        let event = self.state.lock().events.get(event_id).cloned()?;
        let answers = self.deliver(&event).await;
        Some(Delivery {
            event_id: event_id.to_string(),
            event,
            answers,
        })
    }

    fn customer_message(
        &self,
        from_id: i64,
        text: &str,
        attachments: Vec<CustomerAttachment>,
        payload: Option<&str>,
    ) -> Value {
        let mut geo = None;
        let mut listed = Vec::new();
        for attachment in attachments {
            match attachment {
                CustomerAttachment::Photo(bytes) => {
                    let url = self
                        .state
                        .file_url(self.state.store_file(bytes, "image/jpeg"));
                    listed.push(json!({"type": "photo", "photo": {
                        "id": 1, "owner_id": from_id, "album_id": -3, "date": now_secs(),
                        "sizes": [{"type": "x", "url": url, "width": 604, "height": 453}]}}));
                }
                CustomerAttachment::Document { title, bytes } => {
                    let size = bytes.len();
                    let url = self
                        .state
                        .file_url(self.state.store_file(bytes, "application/octet-stream"));
                    let ext = title.rsplit('.').next().unwrap_or("").to_string();
                    listed.push(json!({"type": "doc", "doc": {
                        "id": 1, "owner_id": from_id, "title": title, "size": size,
                        "ext": ext, "url": url, "date": now_secs(), "type": 8}}));
                }
                CustomerAttachment::Voice(bytes) => {
                    let url = self
                        .state
                        .file_url(self.state.store_file(bytes, "audio/ogg"));
                    listed.push(json!({"type": "audio_message", "audio_message": {
                        "id": 1, "owner_id": from_id, "duration": 2, "waveform": [0, 1],
                        "link_ogg": url, "link_mp3": url}}));
                }
                CustomerAttachment::Geo {
                    latitude,
                    longitude,
                } => {
                    geo = Some(json!({"type": "point",
                        "coordinates": {"latitude": latitude, "longitude": longitude}}));
                }
            }
        }
        let mut inner = self.state.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        let mut message = json!({
            "id": id, "date": now_secs(), "peer_id": from_id, "from_id": from_id,
            "text": text, "conversation_message_id": id, "attachments": listed,
            "important": false, "is_hidden": false, "out": 0, "fwd_messages": [],
        });
        if let Some(geo) = geo {
            message["geo"] = geo;
        }
        if let Some(payload) = payload {
            message["payload"] = json!(payload);
        }
        inner.customer_messages.insert(id, message.clone());
        message
    }

    /// Builds the event, queues it for long poll, delivers it to the callback servers.
    pub(crate) async fn emit(&self, kind: &str, object: Value) -> Delivery {
        let event_id = self.state.new_key();
        let event = json!({
            "group_id": self.state.config.group_id,
            "type": kind,
            "event_id": event_id,
            "v": methods::API_VERSION,
            "object": object,
        });
        {
            let mut inner = self.state.lock();
            inner.events.insert(event_id.clone(), event.clone());
            if inner.long_poll.enabled {
                let ts = inner.long_poll.next_ts;
                inner.long_poll.events.push((ts, event.clone()));
                inner.long_poll.next_ts += 1;
                self.state.long_poll_ts.send_replace(ts + 1);
            }
        }
        let answers = self.deliver(&event).await;
        Delivery {
            event_id,
            event,
            answers,
        }
    }

    async fn deliver(&self, event: &Value) -> Vec<DeliveryAnswer> {
        let kind = event["type"].as_str().unwrap_or("");
        let servers: Vec<CallbackServer> = self
            .state
            .lock()
            .servers
            .iter()
            .filter(|s| s.status == "ok" && s.events.iter().any(|e| e == kind))
            .cloned()
            .collect();
        let mut answers = Vec::new();
        for server in servers {
            let mut body = event.clone();
            if !server.secret_key.is_empty() {
                body["secret"] = json!(server.secret_key);
            }
            let (status, text) = post_json(&self.state.http, &server.url, &body).await;
            answers.push(DeliveryAnswer {
                server_id: server.id,
                status,
                body: text,
            });
        }
        answers
    }
}

impl Drop for VkSandbox {
    fn drop(&mut self) {
        // Stopping is asynchronous; the server's task ends on its own once stopped.
        drop(self.handle.stop(false));
    }
}

/// POSTs JSON and returns (status, body); status 0 when the server could not be reached.
pub(crate) async fn post_json(http: &reqwest::Client, url: &str, body: &Value) -> (u16, String) {
    match http.post(url).json(body).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }
        Err(err) => (0, err.to_string()),
    }
}

async fn method(
    state: web::Data<State>,
    name: web::Path<String>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let name = name.into_inner();
    let mut params: Vec<(String, String)> =
        serde_urlencoded::from_str(request.query_string()).unwrap_or_default();
    let is_form = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        match serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) {
            Ok(form) => params.extend(form),
            Err(err) => state
                .violations
                .record(format!("{name}: the form body does not parse: {err}")),
        }
    } else if !body.is_empty() {
        state
            .violations
            .record(format!("{name}: a body that is not form-encoded"));
    }
    let answer = methods::call(&state, &name, &params).await;
    HttpResponse::Ok().json(answer)
}

#[derive(serde::Deserialize)]
struct CheckQuery {
    act: Option<String>,
    key: Option<String>,
    ts: Option<String>,
    wait: Option<u64>,
}

async fn long_poll(
    state: web::Data<State>,
    group: web::Path<i64>,
    query: web::Query<CheckQuery>,
) -> HttpResponse {
    if *group != state.config.group_id || query.act.as_deref() != Some("a_check") {
        return HttpResponse::NotFound().finish();
    }
    let ts: u64 = match query.ts.as_deref().map(str::parse) {
        Some(Ok(ts)) => ts,
        _ => {
            return HttpResponse::Ok()
                .json(json!({"failed": 1, "ts": state.lock().long_poll.next_ts.to_string()}));
        }
    };
    {
        let mut inner = state.lock();
        if inner.long_poll.lose_key {
            inner.long_poll.lose_key = false;
            return HttpResponse::Ok().json(json!({"failed": 3}));
        }
        if query.key.as_deref() != Some(inner.long_poll.key.as_str()) {
            return HttpResponse::Ok().json(json!({"failed": 2}));
        }
        if ts < inner.long_poll.oldest || ts > inner.long_poll.next_ts {
            return HttpResponse::Ok()
                .json(json!({"failed": 1, "ts": inner.long_poll.next_ts.to_string()}));
        }
    }
    let wait = Duration::from_secs(query.wait.unwrap_or(25).min(90));
    let mut changes = state.long_poll_ts.subscribe();
    // Waiting ends early when an event at or after `ts` exists.
    let _ = tokio::time::timeout(wait, changes.wait_for(|next| *next > ts)).await;
    let inner = state.lock();
    let updates: Vec<Value> = inner
        .long_poll
        .events
        .iter()
        .filter(|(at, _)| *at >= ts)
        .map(|(_, event)| event.clone())
        .collect();
    HttpResponse::Ok().json(json!({
        "ts": inner.long_poll.next_ts.max(ts).to_string(),
        "updates": updates,
    }))
}

async fn file(state: web::Data<State>, index: web::Path<usize>) -> HttpResponse {
    match state.lock().files.get(*index) {
        Some((bytes, content_type)) => HttpResponse::Ok()
            .content_type(content_type.as_str())
            .body(bytes.clone()),
        None => HttpResponse::NotFound().finish(),
    }
}

fn client_info() -> Value {
    json!({"button_actions": ["text", "vkpay", "open_app", "location", "open_link", "callback"],
        "keyboard": true, "inline_keyboard": true, "carousel": true, "lang_id": 0})
}

/// The `payload`s of the callback buttons in a `keyboard` parameter.
fn callback_payloads(keyboard: Option<&Value>) -> Vec<String> {
    keyboard
        .and_then(|k| k["buttons"].as_array())
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .filter(|button| button["action"]["type"] == "callback")
        .filter_map(|button| button["action"]["payload"].as_str().map(str::to_string))
        .collect()
}

/// A payload that is a JSON string, unwrapped.
fn decoded(payload: &str) -> String {
    match serde_json::from_str::<Value>(payload) {
        Ok(Value::String(text)) => text,
        _ => payload.to_string(),
    }
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl State {
    /// A fresh hex id like VK's event ids and long poll keys: the clock mixed with a counter,
    /// so two ids made in the same tick differ.
    pub(crate) fn new_key(&self) -> String {
        let count = self.ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mixed =
            (nanos ^ count.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        format!("{mixed:016x}")
    }
}
