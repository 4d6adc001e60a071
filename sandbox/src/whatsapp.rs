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
//! Limits and failures: a per-number rate limit ([`WhatsappConfig::rate_limit`]) answers Meta's
//! error 130429, and [`WhatsappSandbox::fail_next`] makes the next calls fail with any Graph
//! error.
//!
//! The customer ([`WhatsappSandbox::customer_sends`]) sends webhooks signed with
//! `X-Hub-Signature-256` from the app secret, as Meta does; [`WhatsappSandbox::configure_callback`]
//! performs the dashboard's GET handshake first.

pub mod payloads;
pub mod schema;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::support;
use crate::webhook_delivery::{Caller, Delivery, hmac_sha256_hex};
pub use payloads::{Business, Customer, CustomerMessage};

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
    next_id: u64,
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
                .route("/download/{media_id}", web::get().to(download))
                .route("/{version}/{node}/messages", web::post().to(send_message))
                .route("/{version}/{node}/media", web::post().to(upload_media))
                .route(
                    "/{version}/{node}/subscribed_apps",
                    web::get().to(subscriptions),
                )
                .route(
                    "/{version}/{node}/subscribed_apps",
                    web::post().to(subscribe),
                )
                .route(
                    "/{version}/{node}/subscribed_apps",
                    web::delete().to(unsubscribe),
                )
                .route("/{version}/{node}", web::get().to(get_node))
                .default_service(web::to(not_found))
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
        handshake(&self.shared, url, verify_token).await
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

async fn handshake(
    shared: &Shared,
    url: &str,
    verify_token: &str,
) -> (Option<u16>, String, String) {
    // Meta's challenges are numbers; any unpredictable-enough value serves a fake.
    let challenge = (1_158_201_444 + shared.next_number() * 7919).to_string();
    let (status, answer) = shared
        .caller
        .get(
            url,
            &[
                ("hub.mode", "subscribe"),
                ("hub.challenge", &challenge),
                ("hub.verify_token", verify_token),
            ],
        )
        .await;
    (status, answer, challenge)
}

fn graph_error(status: StatusCode, code: i64, subcode: Option<i64>, message: &str) -> HttpResponse {
    let mut error = json!({"message": message, "type": "OAuthException", "code": code,
        "fbtrace_id": "AsandboxTrace"});
    if let Some(subcode) = subcode {
        error["error_subcode"] = json!(subcode);
    }
    HttpResponse::build(status).json(json!({"error": error}))
}

fn failure_response(failure: &GraphFailure) -> HttpResponse {
    graph_error(
        StatusCode::from_u16(failure.http_status).unwrap_or(StatusCode::BAD_REQUEST),
        failure.code,
        failure.subcode,
        &failure.message,
    )
}

/// The token check every Graph call starts with.
/// `None` when the token is right, else the refusal to answer.
fn authorize(shared: &Shared, request: &HttpRequest) -> Option<HttpResponse> {
    let expected = format!("Bearer {}", shared.config.access_token);
    let given = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok());
    (given != Some(expected.as_str())).then(|| {
        graph_error(
            StatusCode::UNAUTHORIZED,
            190,
            None,
            "Invalid OAuth access token - Cannot parse access token",
        )
    })
}

/// Authorization, then an injected failure if one is queued.
fn admit(shared: &Shared, request: &HttpRequest) -> Option<HttpResponse> {
    if let Some(refusal) = authorize(shared, request) {
        return Some(refusal);
    }
    let failure = shared.records().failures.pop_front();
    failure.as_ref().map(failure_response)
}

fn violation(shared: &Shared, endpoint: &str, detail: String) {
    shared.records().violations.push(Violation {
        endpoint: endpoint.into(),
        detail,
    });
    shared.touch();
}

fn unknown_node(node: &str) -> HttpResponse {
    graph_error(
        StatusCode::BAD_REQUEST,
        100,
        Some(33),
        &format!(
            "Unsupported post request. Object with ID '{node}' does not exist, cannot be loaded \
             due to missing permissions, or does not support this operation"
        ),
    )
}

async fn send_message(
    shared: web::Data<Shared>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let (_version, node) = path.into_inner();
    if let Some(refusal) = admit(&shared, &request) {
        return refusal;
    }
    if node != shared.config.phone_number_id {
        return unknown_node(&node);
    }
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
            return failure_response(&GraphFailure::rate_limit());
        }
        records.recent_sends.push_back(now);
    }
    let endpoint = "POST /{phone-number-id}/messages";
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        violation(&shared, endpoint, "the body is not JSON".into());
        return graph_error(StatusCode::BAD_REQUEST, 100, None, "Invalid parameter");
    };
    let problems = support::errors(&shared.schemas.message, &message);
    if !problems.is_empty() {
        let detail = problems.join("; ");
        violation(&shared, endpoint, detail.clone());
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            None,
            &format!("Invalid parameter: {detail}"),
        );
    }
    let to = message["to"].as_str().unwrap_or_default().to_string();
    let kind = message["type"].as_str().unwrap_or_default().to_string();
    {
        let records = shared.records();
        let open = records
            .last_inbound
            .get(&to)
            .is_some_and(|at| Utc::now() - *at <= TimeDelta::hours(24));
        if kind != "template" && !open {
            return graph_error(
                StatusCode::BAD_REQUEST,
                131047,
                None,
                "Re-engagement message: more than 24 hours have passed since the recipient last \
                 replied to the sender number",
            );
        }
        if let Some(id) = message[kind.as_str()]["id"].as_str()
            && !records.media.contains_key(id)
        {
            return graph_error(
                StatusCode::BAD_REQUEST,
                131053,
                None,
                "Media upload error: unknown media id",
            );
        }
    }
    let wamid = shared.next_id("wamid.OUT");
    shared.records().sent.push(SentMessage {
        wamid: wamid.clone(),
        to: to.clone(),
        body: message,
    });
    shared.touch();
    if shared.config.auto_statuses && shared.records().callback.is_some() {
        let shared = Arc::clone(&shared);
        let (wamid, to) = (wamid.clone(), to.clone());
        tokio::spawn(async move {
            for status in ["sent", "delivered", "read"] {
                let body = payloads::status_webhook(
                    &shared.business(),
                    &wamid,
                    &to,
                    status,
                    None,
                    Utc::now().timestamp(),
                );
                shared.deliver(&body).await;
            }
        });
    }
    HttpResponse::Ok().json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to}],
        "messages": [{"id": wamid}],
    }))
}

async fn upload_media(
    shared: web::Data<Shared>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let (_version, node) = path.into_inner();
    if let Some(refusal) = admit(&shared, &request) {
        return refusal;
    }
    if node != shared.config.phone_number_id {
        return unknown_node(&node);
    }
    let endpoint = "POST /{phone-number-id}/media";
    let content_type = request
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("multipart/form-data") {
        violation(&shared, endpoint, format!("content type {content_type:?}"));
        return graph_error(StatusCode::BAD_REQUEST, 100, None, "Invalid parameter");
    }
    let parts = match support::multipart(content_type, &body) {
        Ok(parts) => parts,
        Err(error) => {
            violation(&shared, endpoint, error);
            return graph_error(StatusCode::BAD_REQUEST, 100, None, "Invalid parameter");
        }
    };
    let product = parts.iter().find(|part| part.name == "messaging_product");
    let file = parts.iter().find(|part| part.name == "file");
    let (Some(product), Some(file)) = (product, file) else {
        violation(
            &shared,
            endpoint,
            "messaging_product and file are required".into(),
        );
        return graph_error(StatusCode::BAD_REQUEST, 100, None, "Invalid parameter");
    };
    if product.bytes != b"whatsapp" {
        violation(
            &shared,
            endpoint,
            "messaging_product is not whatsapp".into(),
        );
        return graph_error(StatusCode::BAD_REQUEST, 100, None, "Invalid parameter");
    }
    let Some(mime_type) = file.content_type.clone() else {
        violation(&shared, endpoint, "the file has no content type".into());
        return graph_error(StatusCode::BAD_REQUEST, 100, None, "Invalid parameter");
    };
    let id = shared.next_id("7");
    shared.records().media.insert(
        id.clone(),
        StoredMedia {
            mime_type,
            file_name: file.file_name.clone(),
            bytes: file.bytes.clone(),
        },
    );
    shared.touch();
    HttpResponse::Ok().json(json!({"id": id}))
}

/// `GET /{version}/{id}`: the phone number, or a media object.
async fn get_node(
    shared: web::Data<Shared>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (_version, node) = path.into_inner();
    if let Some(refusal) = admit(&shared, &request) {
        return refusal;
    }
    if node == shared.config.phone_number_id {
        return HttpResponse::Ok().json(json!({
            "id": node,
            "display_phone_number": shared.config.display_phone_number,
            "verified_name": "Sandbox Shop",
            "quality_rating": "GREEN",
        }));
    }
    let media = shared.records().media.get(&node).cloned();
    match media {
        Some(media) => HttpResponse::Ok().json(json!({
            "messaging_product": "whatsapp",
            "id": node,
            "url": format!("{}download/{node}", shared.base_url),
            "mime_type": media.mime_type,
            "sha256": payloads::sha256_base64(&media.bytes),
            "file_size": media.bytes.len().to_string(),
        })),
        None => unknown_node(&node),
    }
}

async fn download(
    shared: web::Data<Shared>,
    request: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    if let Some(refusal) = authorize(&shared, &request) {
        return refusal;
    }
    let media = shared.records().media.get(path.as_str()).cloned();
    match media {
        Some(media) => HttpResponse::Ok()
            .content_type(media.mime_type)
            .body(media.bytes),
        None => HttpResponse::NotFound().finish(),
    }
}

async fn subscribe(
    shared: web::Data<Shared>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let (_version, node) = path.into_inner();
    if let Some(refusal) = authorize(&shared, &request) {
        return refusal;
    }
    if node != shared.config.waba_id {
        return unknown_node(&node);
    }
    let endpoint = "POST /{waba-id}/subscribed_apps";
    let subscription = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(value) => value,
            Err(_) => {
                violation(&shared, endpoint, "the body is not JSON".into());
                return graph_error(StatusCode::BAD_REQUEST, 100, None, "Invalid parameter");
            }
        }
    };
    let problems = support::errors(&shared.schemas.subscription, &subscription);
    if !problems.is_empty() {
        violation(&shared, endpoint, problems.join("; "));
        return graph_error(StatusCode::BAD_REQUEST, 100, None, "Invalid parameter");
    }
    if let Some(url) = subscription["override_callback_uri"].as_str() {
        let token = subscription["verify_token"].as_str().unwrap_or_default();
        let (status, answer, challenge) = handshake(&shared, url, token).await;
        if status != Some(200) || answer != challenge {
            return graph_error(
                StatusCode::BAD_REQUEST,
                2200,
                None,
                "Callback verification failed with the following errors: the callback did not \
                 echo hub.challenge",
            );
        }
        shared.records().callback = Some(Callback { url: url.into() });
    }
    shared.records().subscribed = true;
    HttpResponse::Ok().json(json!({"success": true}))
}

async fn subscriptions(
    shared: web::Data<Shared>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (_version, node) = path.into_inner();
    if let Some(refusal) = admit(&shared, &request) {
        return refusal;
    }
    if node != shared.config.waba_id {
        return unknown_node(&node);
    }
    let data = if shared.records().subscribed {
        json!([{"whatsapp_business_api_data": {"id": "1234567890123456",
            "name": "omnihub", "link": "https://www.facebook.com/games/?app_id=1234567890123456"}}])
    } else {
        json!([])
    };
    HttpResponse::Ok().json(json!({"data": data}))
}

async fn unsubscribe(
    shared: web::Data<Shared>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (_version, node) = path.into_inner();
    if let Some(refusal) = authorize(&shared, &request) {
        return refusal;
    }
    if node != shared.config.waba_id {
        return unknown_node(&node);
    }
    let mut records = shared.records();
    records.callback = None;
    records.subscribed = false;
    HttpResponse::Ok().json(json!({"success": true}))
}

async fn not_found(shared: web::Data<Shared>, request: HttpRequest) -> HttpResponse {
    violation(
        &shared,
        &format!("{} {}", request.method(), request.path()),
        "no such endpoint".into(),
    );
    graph_error(StatusCode::NOT_FOUND, 100, None, "Unknown path components")
}
