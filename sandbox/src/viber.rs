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
//!   (subscribed), else 5 or 6; a picture's, video's or file's `media` URL is fetched as Viber
//!   does, and a URL that does not serve the announced file (not 200, a picture not JPEG, PNG
//!   or GIF, another size) is a violation answered `badData`; accepted messages get a
//!   `message_token` and, with a webhook set, `delivered` then `seen` callbacks;
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
use actix_web::{App, HttpServer, web};
use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::watch;

pub use crate::webhook_delivery::Fetched;
use crate::webhook_delivery::{Caller, Delivery, hmac_sha256_hex};

mod api;
pub mod rules;

/// Request bodies larger than this are refused before they are read.
const MAX_BODY: usize = 1024 * 1024;

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
    /// What the fake fetched from a picture's, video's or file's `media` URL.
    pub media: Option<Fetched>,
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
                .route("/pa/set_webhook", web::post().to(api::set_webhook))
                .route("/pa/send_message", web::post().to(api::send_message))
                .route("/pa/get_account_info", web::post().to(api::account_info))
                .route("/media/{id}", web::get().to(api::media))
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
            "sender": api::user(customer), "message": content, "silent": false});
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
            "user": api::user(customer), "subscribed": false});
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
