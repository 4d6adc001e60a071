//! The fake bot API's endpoints: token check, injected failures, rate limit, Viber's rules,
//! and Viber's answers (HTTP 200 with `{"status", "status_message"}`, refusals included).

use std::sync::Arc;
use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde_json::{Value, json};

use super::{Shared, ViberCustomer, ViberSent, ViberViolation, rules};

pub(super) fn user(customer: &ViberCustomer) -> Value {
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

pub(super) async fn set_webhook(
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

pub(super) async fn account_info(
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

pub(super) async fn send_message(
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
    let problems = rules::check_message(&message);
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
    let media = match fetch_media(&shared, &message).await {
        Ok(media) => media,
        Err(problem) => {
            violation(&shared, endpoint, problem);
            return status(3, "badData");
        }
    };
    let token = shared.next_token();
    shared.records().sent.push(ViberSent {
        message_token: token,
        body: message,
        media,
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

/// Viber fetches a picture's, video's or file's `media` URL itself: the fake does too, and
/// refuses the message when the URL does not serve the file it announces (not 200, a picture
/// that is not JPEG, PNG or GIF, a size other than `size`).
async fn fetch_media(shared: &Shared, message: &Value) -> Result<Option<super::Fetched>, String> {
    let kind = message["type"].as_str().unwrap_or_default();
    if !matches!(kind, "picture" | "video" | "file") {
        return Ok(None);
    }
    let url = message["media"].as_str().unwrap_or_default();
    let fetched = shared
        .caller
        .fetch(url)
        .await
        .map_err(|err| format!("media {url} is unreachable: {err}"))?;
    if fetched.status != 200 {
        return Err(format!("media {url} answered HTTP {}", fetched.status));
    }
    let content_type = fetched.content_type.as_deref().unwrap_or_default();
    if kind == "picture" && !["image/jpeg", "image/png", "image/gif"].contains(&content_type) {
        return Err(format!(
            "picture {url} is {content_type:?}, not JPEG, PNG or GIF"
        ));
    }
    if let Some(size) = message["size"].as_u64()
        && size != fetched.bytes.len() as u64
    {
        return Err(format!(
            "{kind} announces {size} bytes but {url} served {}",
            fetched.bytes.len()
        ));
    }
    Ok(Some(fetched))
}

pub(super) async fn media(shared: web::Data<Shared>, path: web::Path<String>) -> HttpResponse {
    let media = shared.records().media.get(path.as_str()).cloned();
    match media {
        Some((mime_type, bytes)) => HttpResponse::Ok().content_type(mime_type).body(bytes),
        None => HttpResponse::NotFound().finish(),
    }
}
