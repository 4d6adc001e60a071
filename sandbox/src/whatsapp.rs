//! A fake WhatsApp Cloud API (Meta's Graph API, v23.0 paths) and a scripted customer.
//!
//! Served, with `Authorization: Bearer <access token>` required on every call (a wrong token
//! answers 401 with Meta's error code 190):
//! - `POST /{version}/{phone-number-id}/messages`: the body is checked against Meta's `Message`
//!   schema (violations are recorded, see [`WhatsappSandbox::violations`], and answered with
//!   error 100); free-form messages to a customer who has not written in 24 hours are refused
//!   with error 131047, as Meta does; accepted messages get a wamid and, when a callback is set,
//!   `sent`, `delivered` and `read` status webhooks in that order;
//! - `POST /{version}/{phone-number-id}/media` (multipart: `messaging_product`, `file`): stores
//!   the file and answers its id;
//! - `GET /{version}/{media-id}`: the media's URL, type, hash and size; `GET /download/{id}`
//!   the bytes (also behind the token, like Meta's media URLs);
//! - `GET /{version}/{phone-number-id}`: the number's profile;
//! - `GET` / `POST` / `DELETE /{version}/{waba-id}/subscribed_apps`: lists the subscribed app,
//!   subscribes it (with an `override_callback_uri`, only after the GET handshake against that
//!   URL succeeded), or unsubscribes it (and forgets the callback: nothing is delivered).
//!
//! Templates: a `template` message names an approved template; the category of one can be set
//! with [`WhatsappSandbox::approve_template`] (names never approved are taken as approved
//! utility templates). A customer who chose to stop marketing messages
//! ([`WhatsappSandbox::customer_stops_marketing`]) does not get marketing templates: as Meta
//! does, the send is accepted (200 with a wamid) and a `failed` status webhook follows with error
//! 131050 ("This recipient has chosen to stop receiving marketing messages on WhatsApp from your
//! business"), and no `sent`/`delivered`/`read`. Free-form messages and other templates still
//! reach that customer.
//!
//! Limits and failures: a per-number rate limit ([`WhatsappConfig::rate_limit`]) answers Meta's
//! error 130429, and [`WhatsappSandbox::fail_next`] makes the next calls fail with any Graph
//! error.
//!
//! The customer ([`WhatsappSandbox::customer_sends`]) sends webhooks signed with
//! `X-Hub-Signature-256` from the app secret, as Meta does; [`WhatsappSandbox::configure_callback`]
//! performs the dashboard's GET handshake first.

mod graph;
pub mod payloads;
pub mod schema;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::webhook_delivery::{Caller, Delivery, hmac_sha256_hex};
pub use payloads::{Business, Customer, CustomerMessage, MARKETING_OPT_OUT};

/// Uploads larger than this are refused before they are read.
const MAX_UPLOAD: usize = 32 * 1024 * 1024;

/// The fake account's identity and behaviour.
#[derive(Clone, Debug)]
pub struct WhatsappConfig {
    pub access_token: String,
    pub app_secret: String,
    /// The verify token the dashboard (the person configuring the app) types in.
    pub verify_token: String,
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub waba_id: String,
    /// At most `.0` messages per `.1` from the number; more answer error 130429.
    pub rate_limit: Option<(usize, Duration)>,
    /// Send `sent`, `delivered` and `read` webhooks for every accepted message.
    pub auto_statuses: bool,
}

impl Default for WhatsappConfig {
    fn default() -> Self {
        WhatsappConfig {
            access_token: "EAAsandbox-token".into(),
            app_secret: "sandbox-app-secret".into(),
            verify_token: "sandbox-verify-token".into(),
            phone_number_id: "106540352242922".into(),
            display_phone_number: "15550783881".into(),
            waba_id: "419561257915477".into(),
            rate_limit: None,
            auto_statuses: true,
        }
    }
}

/// A Graph API error the next call answers with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphFailure {
    pub http_status: u16,
    pub code: i64,
    pub subcode: Option<i64>,
    pub message: String,
}

impl GraphFailure {
    pub fn rate_limit() -> GraphFailure {
        GraphFailure {
            http_status: 400,
            code: 130429,
            subcode: None,
            message: "(#130429) Rate limit hit".into(),
        }
    }

    pub fn service_unavailable() -> GraphFailure {
        GraphFailure {
            http_status: 503,
            code: 2,
            subcode: None,
            message: "Service temporarily unavailable".into(),
        }
    }

    pub fn invalid_token() -> GraphFailure {
        GraphFailure {
            http_status: 401,
            code: 190,
            subcode: Some(463),
            message: "Error validating access token: Session has expired".into(),
        }
    }
}

/// A message the business sent, as accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct SentMessage {
    pub wamid: String,
    pub to: String,
    pub body: Value,
}

/// A request that broke Meta's schema or protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub endpoint: String,
    pub detail: String,
}

/// A stored media file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMedia {
    pub mime_type: String,
    pub file_name: Option<String>,
    pub bytes: Vec<u8>,
}

/// Where the fake delivers webhooks.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Callback {
    url: String,
}

#[derive(Default)]
struct Records {
    sent: Vec<SentMessage>,
    media: HashMap<String, StoredMedia>,
    violations: Vec<Violation>,
    deliveries: Vec<Delivery>,
    callback: Option<Callback>,
    /// Whether the app is subscribed to the business account's webhooks.
    subscribed: bool,
    failures: VecDeque<GraphFailure>,
    recent_sends: VecDeque<Instant>,
    last_inbound: HashMap<String, DateTime<Utc>>,
    /// Approved templates by name, when a test set their category.
    templates: HashMap<String, TemplateCategory>,
    /// Customers (by `wa_id`) who chose to stop receiving marketing messages.
    marketing_opt_outs: HashSet<String>,
    next_id: u64,
}

/// The category Meta approved a template in; only marketing ones can be refused by opt-out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateCategory {
    Marketing,
    Utility,
    Authentication,
}

struct Shared {
    config: WhatsappConfig,
    base_url: String,
    schemas: schema::Schemas,
    records: Mutex<Records>,
    changed: watch::Sender<u64>,
    caller: Caller,
}

impl Shared {
    fn records(&self) -> MutexGuard<'_, Records> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn touch(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    fn business(&self) -> Business {
        Business {
            waba_id: self.config.waba_id.clone(),
            phone_number_id: self.config.phone_number_id.clone(),
            display_phone_number: self.config.display_phone_number.clone(),
        }
    }

    fn next_number(&self) -> u64 {
        let mut records = self.records();
        records.next_id += 1;
        records.next_id
    }

    fn next_id(&self, prefix: &str) -> String {
        format!("{prefix}{:016}", self.next_number())
    }

    /// Signs and delivers a webhook body to the callback, and records the delivery.
    async fn deliver(&self, body: &Value) -> Delivery {
        let callback = self.records().callback.clone();
        let bytes = body.to_string().into_bytes();
        let signature = format!(
            "sha256={}",
            hmac_sha256_hex(self.config.app_secret.as_bytes(), &bytes)
        );
        let headers = vec![("X-Hub-Signature-256".to_string(), signature)];
        let delivery = match callback {
            Some(callback) => self.caller.post(&callback.url, bytes, headers).await,
            None => Delivery {
                url: String::new(),
                body: bytes,
                headers,
                status: None,
                answer: "no callback URL is configured".into(),
            },
        };
        self.records().deliveries.push(delivery.clone());
        self.touch();
        delivery
    }
}

/// A running fake Graph API on an ephemeral loopback port; dropping it stops the server.
pub struct WhatsappSandbox {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: ServerHandle,
}

impl WhatsappSandbox {
    pub async fn start(config: WhatsappConfig) -> std::io::Result<WhatsappSandbox> {
        let schemas = schema::Schemas::load().map_err(std::io::Error::other)?;
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            base_url: format!("http://{addr}/"),
            schemas,
            records: Mutex::new(Records::default()),
            changed: watch::Sender::new(0),
            caller: Caller::new(),
        });
        let data = web::Data::from(Arc::clone(&shared));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(MAX_UPLOAD))
                .route("/download/{media_id}", web::get().to(graph::download))
                .route(
                    "/{version}/{node}/messages",
                    web::post().to(graph::send_message),
                )
                .route(
                    "/{version}/{node}/media",
                    web::post().to(graph::upload_media),
                )
                .route(
                    "/{version}/{node}/subscribed_apps",
                    web::get().to(graph::subscriptions),
                )
                .route(
                    "/{version}/{node}/subscribed_apps",
                    web::post().to(graph::subscribe),
                )
                .route(
                    "/{version}/{node}/subscribed_apps",
                    web::delete().to(graph::unsubscribe),
                )
                .route("/{version}/{node}", web::get().to(graph::get_node))
                .default_service(web::to(graph::not_found))
        })
        .workers(1)
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(WhatsappSandbox {
            addr,
            shared,
            server: handle,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base URL to give the connector (`http://127.0.0.1:PORT/`).
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    pub fn config(&self) -> &WhatsappConfig {
        &self.shared.config
    }

    /// The credentials object of a channel connected to this account (with `waba_id`).
    pub fn credentials(&self) -> Value {
        let config = &self.shared.config;
        json!({
            "access_token": config.access_token,
            "phone_number_id": config.phone_number_id,
            "app_secret": config.app_secret,
            "verify_token": config.verify_token,
            "waba_id": config.waba_id,
        })
    }

    /// What the app dashboard does when a callback URL is entered: the GET handshake with the
    /// configured verify token; the URL is kept only when the challenge comes back.
    pub async fn configure_callback(&self, url: &str) -> Result<(), String> {
        let verify_token = self.shared.config.verify_token.clone();
        let (status, answer, challenge) = self.handshake(url, &verify_token).await;
        if status == Some(200) && answer == challenge {
            self.shared.records().callback = Some(Callback { url: url.into() });
            Ok(())
        } else {
            Err(format!(
                "verification failed: status {status:?}, answer {answer:?}"
            ))
        }
    }

    /// One GET handshake against `url` with `verify_token`: the status, the answer and the
    /// challenge that was sent.
    pub async fn handshake(&self, url: &str, verify_token: &str) -> (Option<u16>, String, String) {
        graph::handshake(&self.shared, url, verify_token).await
    }

    /// The customer sends a message: media are stored (downloadable by id), the signed webhook
    /// is delivered, and the customer's 24-hour window opens.
    pub async fn customer_sends(&self, customer: &Customer, message: CustomerMessage) -> Delivery {
        let media_id = message.media().map(|(mime_type, bytes)| {
            let id = self.shared.next_id("9");
            let file_name = match &message {
                CustomerMessage::Document { file_name, .. } => Some(file_name.clone()),
                _ => None,
            };
            self.shared.records().media.insert(
                id.clone(),
                StoredMedia {
                    mime_type,
                    file_name,
                    bytes,
                },
            );
            id
        });
        let wamid = self.shared.next_id("wamid.IN");
        let now = Utc::now();
        let entry = payloads::message(
            &wamid,
            customer,
            &message,
            media_id.as_deref(),
            now.timestamp(),
        );
        self.shared
            .records()
            .last_inbound
            .insert(customer.wa_id.clone(), now);
        let body = payloads::message_webhook(&self.shared.business(), customer, entry);
        self.shared.deliver(&body).await
    }

    /// Delivers any body, signed, to the callback (e.g. one of the spec's examples).
    pub async fn deliver(&self, body: &Value) -> Delivery {
        self.shared.deliver(body).await
    }

    /// Delivers a recorded delivery again, byte for byte, as Meta retries.
    pub async fn redeliver(&self, delivery: &Delivery) -> Delivery {
        let again = self.shared.caller.redeliver(delivery).await;
        self.shared.records().deliveries.push(again.clone());
        self.shared.touch();
        again
    }

    /// A status webhook for a message the business sent (`failed` with an error).
    pub async fn send_status(
        &self,
        wamid: &str,
        status: &str,
        error: Option<(i64, &str)>,
    ) -> Delivery {
        let to = self
            .sent()
            .into_iter()
            .find(|sent| sent.wamid == wamid)
            .map(|sent| sent.to)
            .unwrap_or_default();
        let body = payloads::status_webhook(
            &self.shared.business(),
            wamid,
            &to,
            status,
            error,
            Utc::now().timestamp(),
        );
        self.shared.deliver(&body).await
    }

    /// Approves a template under this name in this category.
    pub fn approve_template(&self, name: &str, category: TemplateCategory) {
        self.shared
            .records()
            .templates
            .insert(name.into(), category);
    }

    /// The customer chooses to stop receiving marketing messages from the business (the
    /// "Stop" button under a marketing message, or the business's profile): marketing templates
    /// to them fail with error 131050 from now on.
    pub fn customer_stops_marketing(&self, customer: &Customer) {
        self.shared
            .records()
            .marketing_opt_outs
            .insert(customer.wa_id.clone());
    }

    /// A `failed` status webhook for a message the business sent, with these `errors[]`
    /// entries (e.g. [`payloads::marketing_opt_out_error`]).
    pub async fn report_failure(&self, wamid: &str, errors: Vec<Value>) -> Delivery {
        let to = self
            .sent()
            .into_iter()
            .find(|sent| sent.wamid == wamid)
            .map(|sent| sent.to)
            .unwrap_or_default();
        let body = payloads::failed_status_webhook(
            &self.shared.business(),
            wamid,
            &to,
            errors,
            Utc::now().timestamp(),
        );
        self.shared.deliver(&body).await
    }

    /// Pretends the customer last wrote at `at` (to test the 24-hour window).
    pub fn set_last_inbound(&self, wa_id: &str, at: DateTime<Utc>) {
        self.shared.records().last_inbound.insert(wa_id.into(), at);
    }

    /// The next calls fail like this, one failure per call, in order (every endpoint but the
    /// subscription changes and media downloads).
    pub fn fail_next(&self, failure: GraphFailure) {
        self.shared.records().failures.push_back(failure);
    }

    pub fn sent(&self) -> Vec<SentMessage> {
        self.shared.records().sent.clone()
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.records().deliveries.clone()
    }

    pub fn violations(&self) -> Vec<Violation> {
        self.shared.records().violations.clone()
    }

    pub fn media(&self, id: &str) -> Option<StoredMedia> {
        self.shared.records().media.get(id).cloned()
    }

    /// Waits until at least `count` webhooks were delivered (or `timeout` passed) and returns
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
}

impl Drop for WhatsappSandbox {
    fn drop(&mut self) {
        // The stop command is sent at once; its completion need not be awaited.
        drop(self.server.stop(false));
    }
}
