//! A fake Viber REST bot API (`/pa/…`) and a scripted customer, after the hand-written samples
//! in `sandbox/specs/viber/callbacks.json` (Viber publishes no machine-readable spec).
//!
//! Every call needs `X-Viber-Auth-Token`; like Viber, the fake answers HTTP 200 with
//! `{"status", "status_message"}` even when it refuses (2 `invalidAuthToken`, 3 `badData`,
//! 5 `receiverNotRegistered`, 6 `receiverNotSubscribed`, 12 `tooManyRequests`):
//! - `POST /pa/set_webhook`: delivers a signed `webhook` event to the URL first and keeps the
//!   URL only when it answers 200; `url: ""` removes the webhook;
//! - `POST /pa/send_message`: the body is checked field by field against Viber's documented
//!   rules (violations recorded, answered `badData`); the receiver must be a customer who wrote
//!   (subscribed), else 5 or 6; accepted messages get a `message_token` and, with a webhook
//!   set, `delivered` then `seen` callbacks;
//! - `POST /pa/get_account_info`: the bot's profile and webhook.
//!
//! Callbacks carry `X-Viber-Content-Signature`, hex HMAC-SHA256 of the body keyed with the auth
//! token. Media the customer sends are served, without a token like Viber's CDN links, at
//! `GET /media/{id}`. [`ViberSandbox::fail_next`] makes the next calls answer any status.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::webhook_delivery::{Caller, Delivery, hmac_sha256_hex};

const MAX_BODY: usize = 1024 * 1024;
const MESSAGE_TYPES: [&str; 8] = [
    "text", "picture", "video", "file", "location", "contact", "sticker", "url",
];
const MESSAGE_FIELDS: [&str; 17] = [
    "receiver",
    "min_api_version",
    "sender",
    "tracking_data",
    "type",
    "text",
    "media",
    "thumbnail",
    "size",
    "duration",
    "file_name",
    "contact",
    "location",
    "sticker_id",
    "keyboard",
    "rich_media",
    "alt_text",
];
const ACTION_TYPES: [&str; 6] = [
    "reply",
    "open-url",
    "location-picker",
    "share-phone",
    "none",
    "open-map",
];

/// The fake bot's identity and behaviour.
#[derive(Clone, Debug)]
pub struct ViberConfig {
    pub auth_token: String,
    pub bot_name: String,
    /// At most `.0` messages per `.1` from the bot; more answer status 12.
    pub rate_limit: Option<(usize, Duration)>,
    /// Send `delivered` and `seen` callbacks for every accepted message.
    pub auto_statuses: bool,
}

impl Default for ViberConfig {
    fn default() -> Self {
        ViberConfig {
            auth_token: "445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im9".into(),
            bot_name: "Sandbox Shop".into(),
            rate_limit: None,
            auto_statuses: true,
        }
    }
}

/// A Viber user the fake plays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViberCustomer {
    pub id: String,
    pub name: String,
}

impl ViberCustomer {
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> ViberCustomer {
        ViberCustomer {
            id: id.into(),
            name: name.into(),
        }
    }
}

/// What the customer sends.
#[derive(Clone, Debug, PartialEq)]
pub enum ViberCustomerMessage {
    Text(String),
    Picture {
        caption: String,
        file_name: String,
        bytes: Vec<u8>,
    },
    Video {
        bytes: Vec<u8>,
    },
    File {
        file_name: String,
        bytes: Vec<u8>,
    },
    Sticker {
        sticker_id: u64,
    },
    Contact {
        name: String,
        phone: String,
    },
    Location {
        lat: f64,
        lon: f64,
    },
    Url(String),
}

/// A message the bot sent, as accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct ViberSent {
    pub message_token: u64,
    pub body: Value,
}

/// A request that broke Viber's documented rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViberViolation {
    pub endpoint: String,
    pub detail: String,
}

#[derive(Default)]
struct Records {
    webhook: Option<String>,
    event_types: Vec<Value>,
    sent: Vec<ViberSent>,
    violations: Vec<ViberViolation>,
    deliveries: Vec<Delivery>,
    failures: VecDeque<(i64, String)>,
    recent_sends: VecDeque<Instant>,
    known: HashSet<String>,
    subscribed: HashSet<String>,
    media: HashMap<String, (String, Vec<u8>)>,
    next_token: u64,
}

struct Shared {
    config: ViberConfig,
    base_url: String,
    records: Mutex<Records>,
    changed: watch::Sender<u64>,
    caller: Caller,
}

impl Shared {
    fn records(&self) -> MutexGuard<'_, Records> {
        self.records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn touch(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// Viber's tokens are large integers.
    fn next_token(&self) -> u64 {
        let mut records = self.records();
        records.next_token += 1;
        5_000_000_000_000_000_000 + records.next_token
    }

    /// Signs `body` and POSTs it to `url`, recording the delivery.
    async fn deliver_to(&self, url: &str, body: &Value) -> Delivery {
        let bytes = body.to_string().into_bytes();
        let signature = hmac_sha256_hex(self.config.auth_token.as_bytes(), &bytes);
        let headers = vec![("X-Viber-Content-Signature".to_string(), signature)];
        let delivery = self.caller.post(url, bytes, headers).await;
        self.records().deliveries.push(delivery.clone());
        self.touch();
        delivery
    }

    async fn deliver(&self, body: &Value) -> Delivery {
        let webhook = self.records().webhook.clone();
        match webhook {
            Some(url) => self.deliver_to(&url, body).await,
            None => {
                let delivery = Delivery {
                    url: String::new(),
                    body: body.to_string().into_bytes(),
                    headers: Vec::new(),
                    status: None,
                    answer: "no webhook is set".into(),
                };
                self.records().deliveries.push(delivery.clone());
                delivery
            }
        }
    }
}

/// A running fake Viber API on an ephemeral loopback port; dropping it stops the server.
pub struct ViberSandbox {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: ServerHandle,
}

impl ViberSandbox {
    pub async fn start(config: ViberConfig) -> std::io::Result<ViberSandbox> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            base_url: format!("http://{addr}/"),
            records: Mutex::new(Records::default()),
            changed: watch::Sender::new(0),
            caller: Caller::new(),
        });
        let data = web::Data::from(Arc::clone(&shared));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(MAX_BODY))
                .route("/pa/set_webhook", web::post().to(set_webhook))
                .route("/pa/send_message", web::post().to(send_message))
                .route("/pa/get_account_info", web::post().to(account_info))
                .route("/media/{id}", web::get().to(media))
        })
        .workers(1)
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(ViberSandbox {
            addr,
            shared,
            server: handle,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base URL to give the connector.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    pub fn config(&self) -> &ViberConfig {
        &self.shared.config
    }

    /// The credentials object of a channel connected to this bot.
    pub fn credentials(&self) -> Value {
        json!({"auth_token": self.shared.config.auth_token})
    }

    /// The webhook Viber delivers to, if set.
    pub fn webhook(&self) -> Option<String> {
        self.shared.records().webhook.clone()
    }

    /// The customer writes: a `message` callback (media stored and served at `/media/{id}`).
    /// Writing subscribes the customer, so the bot may answer.
    pub async fn customer_sends(
        &self,
        customer: &ViberCustomer,
        message: ViberCustomerMessage,
    ) -> Delivery {
        let token = self.shared.next_token();
        let mut content = match &message {
            ViberCustomerMessage::Text(text) => json!({"type": "text", "text": text}),
            ViberCustomerMessage::Picture {
                caption,
                file_name,
                bytes,
            } => json!({"type": "picture",
                "text": caption, "media": self.store(token, "image/jpeg", bytes),
                "thumbnail": self.store(token + 1, "image/jpeg", bytes),
                "file_name": file_name, "size": bytes.len()}),
            ViberCustomerMessage::Video { bytes } => json!({"type": "video",
                "media": self.store(token, "video/mp4", bytes), "size": bytes.len(), "duration": 3}),
            ViberCustomerMessage::File { file_name, bytes } => json!({"type": "file",
                "media": self.store(token, "application/octet-stream", bytes),
                "file_name": file_name, "size": bytes.len()}),
            ViberCustomerMessage::Sticker { sticker_id } => json!({"type": "sticker",
                "sticker_id": sticker_id,
                "media": format!("{}media/sticker-{sticker_id}.png", self.shared.base_url)}),
            ViberCustomerMessage::Contact { name, phone } => json!({"type": "contact",
                "contact": {"name": name, "phone_number": phone}}),
            ViberCustomerMessage::Location { lat, lon } => json!({"type": "location",
                "location": {"lat": lat, "lon": lon}}),
            ViberCustomerMessage::Url(url) => json!({"type": "url", "media": url}),
        };
        content["tracking_data"] = json!("");
        {
            let mut records = self.shared.records();
            records.known.insert(customer.id.clone());
            records.subscribed.insert(customer.id.clone());
        }
        let body = json!({"event": "message", "timestamp": Utc::now().timestamp_millis(),
            "chat_hostname": "SN-CHAT-01_", "message_token": token,
            "sender": user(customer), "message": content, "silent": false});
        self.shared.deliver(&body).await
    }

    /// The customer opens the chat (before writing), with the deep link's `context` if any.
    pub async fn conversation_started(
        &self,
        customer: &ViberCustomer,
        context: Option<&str>,
    ) -> Delivery {
        self.shared.records().known.insert(customer.id.clone());
        let mut body = json!({"event": "conversation_started",
            "timestamp": Utc::now().timestamp_millis(), "chat_hostname": "SN-CHAT-01_",
            "message_token": self.shared.next_token(), "type": "open",
            "user": user(customer), "subscribed": false});
        if let Some(context) = context {
            body["context"] = json!(context);
        }
        self.shared.deliver(&body).await
    }

    /// The customer unsubscribes: later messages to them answer status 6.
    pub async fn unsubscribes(&self, customer: &ViberCustomer) -> Delivery {
        self.shared.records().subscribed.remove(&customer.id);
        let body = json!({"event": "unsubscribed", "timestamp": Utc::now().timestamp_millis(),
            "chat_hostname": "SN-CHAT-01_", "user_id": customer.id,
            "message_token": self.shared.next_token()});
        self.shared.deliver(&body).await
    }

    /// A `failed` callback for a message the bot sent.
    pub async fn fail_delivery(&self, message_token: u64, description: &str) -> Delivery {
        let body = json!({"event": "failed", "timestamp": Utc::now().timestamp_millis(),
            "chat_hostname": "SN-CHAT-01_", "message_token": message_token,
            "user_id": self.receiver_of(message_token), "desc": description});
        self.shared.deliver(&body).await
    }

    /// Delivers any body, signed, to the webhook.
    pub async fn deliver(&self, body: &Value) -> Delivery {
        self.shared.deliver(body).await
    }

    /// Delivers a recorded delivery again, byte for byte.
    pub async fn redeliver(&self, delivery: &Delivery) -> Delivery {
        let again = self.shared.caller.redeliver(delivery).await;
        self.shared.records().deliveries.push(again.clone());
        self.shared.touch();
        again
    }

    /// The next API calls answer these statuses, one per call, in order (e.g. 12
    /// `tooManyRequests`).
    pub fn fail_next(&self, status: i64, status_message: &str) {
        self.shared
            .records()
            .failures
            .push_back((status, status_message.into()));
    }

    pub fn sent(&self) -> Vec<ViberSent> {
        self.shared.records().sent.clone()
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.records().deliveries.clone()
    }

    pub fn violations(&self) -> Vec<ViberViolation> {
        self.shared.records().violations.clone()
    }

    /// Waits until at least `count` callbacks were delivered (or `timeout` passed) and returns
    /// them all either way.
    pub async fn wait_for_deliveries(&self, count: usize, timeout: Duration) -> Vec<Delivery> {
        let mut changes = self.shared.changed.subscribe();
        let shared = Arc::clone(&self.shared);
        let _ = tokio::time::timeout(
            timeout,
            changes.wait_for(|_| shared.records().deliveries.len() >= count),
        )
        .await;
        self.deliveries()
    }

    fn store(&self, id: u64, mime_type: &str, bytes: &[u8]) -> String {
        self.shared
            .records()
            .media
            .insert(id.to_string(), (mime_type.into(), bytes.to_vec()));
        format!("{}media/{id}", self.shared.base_url)
    }

    fn receiver_of(&self, message_token: u64) -> String {
        self.sent()
            .into_iter()
            .find(|sent| sent.message_token == message_token)
            .and_then(|sent| sent.body["receiver"].as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

impl Drop for ViberSandbox {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

fn user(customer: &ViberCustomer) -> Value {
    json!({"id": customer.id, "name": customer.name, "avatar": "https://avatar.example.com",
        "country": "RU", "language": "ru", "api_version": 10})
}

fn status(status: i64, message: &str) -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": status, "status_message": message}))
}

/// Token check, then an injected failure if one is queued, then the JSON body.
fn admit(
    shared: &Shared,
    request: &HttpRequest,
    body: &[u8],
    endpoint: &str,
) -> Result<Value, Box<HttpResponse>> {
    let token = request
        .headers()
        .get("x-viber-auth-token")
        .and_then(|value| value.to_str().ok());
    if token != Some(shared.config.auth_token.as_str()) {
        return Err(Box::new(status(2, "invalidAuthToken")));
    }
    if let Some((code, message)) = shared.records().failures.pop_front() {
        return Err(Box::new(status(code, &message)));
    }
    serde_json::from_slice(body).map_err(|_| {
        violation(shared, endpoint, "the body is not JSON".into());
        Box::new(status(3, "badData"))
    })
}

fn violation(shared: &Shared, endpoint: &str, detail: String) {
    shared.records().violations.push(ViberViolation {
        endpoint: endpoint.into(),
        detail,
    });
    shared.touch();
}

async fn set_webhook(
    shared: web::Data<Shared>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let endpoint = "/pa/set_webhook";
    let body = match admit(&shared, &request, &body, endpoint) {
        Ok(body) => body,
        Err(refusal) => return *refusal,
    };
    let Some(url) = body["url"].as_str() else {
        violation(&shared, endpoint, "url is required".into());
        return status(3, "badData");
    };
    if let Some(types) = body.get("event_types") {
        let known = [
            "delivered",
            "seen",
            "failed",
            "subscribed",
            "unsubscribed",
            "conversation_started",
        ];
        let valid = types.as_array().is_some_and(|types| {
            types
                .iter()
                .all(|t| t.as_str().is_some_and(|t| known.contains(&t)))
        });
        if !valid {
            violation(&shared, endpoint, format!("event_types {types}"));
            return status(3, "badData");
        }
    }
    if url.is_empty() {
        shared.records().webhook = None;
        return status(0, "ok");
    }
    let check = json!({"event": "webhook", "timestamp": Utc::now().timestamp_millis(),
        "chat_hostname": "SN-CHAT-01_", "message_token": shared.next_token()});
    let delivery = shared.deliver_to(url, &check).await;
    if delivery.status != Some(200) {
        return status(1, "invalidUrl");
    }
    let event_types = body
        .get("event_types")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    {
        let mut records = shared.records();
        records.webhook = Some(url.to_string());
        records.event_types = event_types.clone();
    }
    HttpResponse::Ok()
        .json(json!({"status": 0, "status_message": "ok", "event_types": event_types}))
}

async fn account_info(
    shared: web::Data<Shared>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    if let Err(refusal) = admit(&shared, &request, &body, "/pa/get_account_info") {
        return *refusal;
    }
    let records = shared.records();
    HttpResponse::Ok().json(
        json!({"status": 0, "status_message": "ok", "id": "pa:75346594275468546724",
        "name": shared.config.bot_name, "uri": "sandboxshop", "category": "Shopping",
        "webhook": records.webhook.clone().unwrap_or_default(), "event_types": records.event_types,
        "subscribers_count": records.subscribed.len(), "members": []}),
    )
}

async fn send_message(
    shared: web::Data<Shared>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let endpoint = "/pa/send_message";
    let message = match admit(&shared, &request, &body, endpoint) {
        Ok(body) => body,
        Err(refusal) => return *refusal,
    };
    if let Some((limit, window)) = shared.config.rate_limit {
        let mut records = shared.records();
        let now = Instant::now();
        while records
            .recent_sends
            .front()
            .is_some_and(|at| now.duration_since(*at) > window)
        {
            records.recent_sends.pop_front();
        }
        if records.recent_sends.len() >= limit {
            return status(12, "tooManyRequests");
        }
        records.recent_sends.push_back(now);
    }
    let problems = check_message(&message);
    if !problems.is_empty() {
        violation(&shared, endpoint, problems.join("; "));
        return status(3, "badData");
    }
    let receiver = message["receiver"].as_str().unwrap_or_default().to_string();
    {
        let records = shared.records();
        if !records.known.contains(&receiver) {
            return status(5, "receiverNotRegistered");
        }
        if !records.subscribed.contains(&receiver) {
            return status(6, "receiverNotSubscribed");
        }
    }
    let token = shared.next_token();
    shared.records().sent.push(ViberSent {
        message_token: token,
        body: message,
    });
    shared.touch();
    if shared.config.auto_statuses && shared.records().webhook.is_some() {
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            for event in ["delivered", "seen"] {
                let body = json!({"event": event, "timestamp": Utc::now().timestamp_millis(),
                    "chat_hostname": "SN-CHAT-01_", "message_token": token, "user_id": receiver});
                shared.deliver(&body).await;
            }
        });
    }
    HttpResponse::Ok().json(
        json!({"status": 0, "status_message": "ok", "message_token": token,
        "chat_hostname": "SN-CHAT-01_", "billing_status": 1}),
    )
}

async fn media(shared: web::Data<Shared>, path: web::Path<String>) -> HttpResponse {
    let media = shared.records().media.get(path.as_str()).cloned();
    match media {
        Some((mime_type, bytes)) => HttpResponse::Ok().content_type(mime_type).body(bytes),
        None => HttpResponse::NotFound().finish(),
    }
}

/// Viber's documented rules for `send_message`, as a list of what is wrong.
pub fn check_message(message: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(fields) = message.as_object() else {
        return vec!["the body is not an object".into()];
    };
    for key in fields.keys() {
        if !MESSAGE_FIELDS.contains(&key.as_str()) {
            problems.push(format!("unknown field {key}"));
        }
    }
    if message["receiver"].as_str().is_none_or(str::is_empty) {
        problems.push("receiver is required".into());
    }
    match message["sender"]["name"].as_str() {
        Some(name) if !name.is_empty() && name.chars().count() <= 28 => {}
        _ => problems.push("sender.name is required, at most 28 characters".into()),
    }
    if let Some(version) = message.get("min_api_version")
        && version.as_u64().is_none_or(|v| v < 1)
    {
        problems.push("min_api_version must be a positive integer".into());
    }
    if let Some(tracking) = message.get("tracking_data")
        && tracking.as_str().is_none_or(|t| t.len() > 4096)
    {
        problems.push("tracking_data must be a string of at most 4096 characters".into());
    }
    let kind = message["type"].as_str().unwrap_or_default();
    if !MESSAGE_TYPES.contains(&kind) {
        problems.push(format!("type {kind:?} is not a message type"));
    }
    let text = message["text"].as_str();
    let media_url = message["media"]
        .as_str()
        .is_some_and(|m| m.starts_with("http://") || m.starts_with("https://"));
    let size = message["size"].as_u64().is_some();
    match kind {
        "text" if text.is_none_or(|t| t.is_empty() || t.chars().count() > 7000) => {
            problems.push("text messages need text of 1 to 7000 characters".into());
        }
        "picture" => {
            if !media_url {
                problems.push("picture needs a media URL".into());
            }
            if text.is_some_and(|t| t.chars().count() > 120) {
                problems.push("a picture's text is at most 120 characters".into());
            }
        }
        "video" if !media_url || !size => problems.push("video needs media and size".into()),
        "file"
            if !media_url || !size || message["file_name"].as_str().is_none_or(str::is_empty) =>
        {
            problems.push("file needs media, size and file_name".into());
        }
        _ => {}
    }
    if let Some(keyboard) = message.get("keyboard") {
        problems.extend(check_keyboard(keyboard));
    }
    problems
}

fn check_keyboard(keyboard: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if keyboard["Type"] != "keyboard" {
        problems.push("keyboard.Type must be \"keyboard\"".into());
    }
    let buttons = keyboard["Buttons"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if buttons.is_empty() || buttons.len() > 24 {
        problems.push("keyboard.Buttons must hold 1 to 24 buttons".into());
    }
    for (i, button) in buttons.iter().enumerate() {
        if button["ActionBody"].as_str().is_none_or(str::is_empty) {
            problems.push(format!("Buttons[{i}].ActionBody is required"));
        }
        let action = button["ActionType"].as_str().unwrap_or("reply");
        if !ACTION_TYPES.contains(&action) {
            problems.push(format!("Buttons[{i}].ActionType {action:?} is unknown"));
        }
        if action == "open-url"
            && !button["ActionBody"]
                .as_str()
                .is_some_and(|url| url.starts_with("http://") || url.starts_with("https://"))
        {
            problems.push(format!("Buttons[{i}] opens something that is not a URL"));
        }
        if let Some(columns) = button.get("Columns")
            && !columns.as_u64().is_some_and(|c| (1..=6).contains(&c))
        {
            problems.push(format!("Buttons[{i}].Columns must be 1 to 6"));
        }
        if let Some(rows) = button.get("Rows")
            && !rows.as_u64().is_some_and(|r| (1..=2).contains(&r))
        {
            problems.push(format!("Buttons[{i}].Rows must be 1 or 2"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_sample_request_passes_the_checks() {
        let samples: Value =
            serde_json::from_str(include_str!("../specs/viber/callbacks.json")).unwrap_or_default();
        assert_eq!(
            check_message(&samples["send_message_request"]),
            Vec::<String>::new()
        );
        let mut broken = samples["send_message_request"].clone();
        broken["sender"]["name"] = json!("x".repeat(29));
        broken["colour"] = json!("red");
        assert_eq!(check_message(&broken).len(), 2);
    }
}
