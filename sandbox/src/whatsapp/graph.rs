//! The fake Graph API's endpoints: token check, injected failures, rate limit, Meta's schema,
//! the 24-hour window, and Meta's error bodies (`{"error":{"message","type","code",…}}`).

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};

use super::{
    Callback, GraphFailure, SentMessage, Shared, StoredMedia, TemplateCategory, Violation, payloads,
};
use crate::support;

pub(super) async fn handshake(
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

pub(super) async fn send_message(
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
    let opted_out = {
        let records = shared.records();
        kind == "template"
            && records.marketing_opt_outs.contains(&to)
            && message["template"]["name"]
                .as_str()
                .and_then(|name| records.templates.get(name))
                == Some(&TemplateCategory::Marketing)
    };
    let wamid = shared.next_id("wamid.OUT");
    shared.records().sent.push(SentMessage {
        wamid: wamid.clone(),
        to: to.clone(),
        body: message,
    });
    shared.touch();
    if opted_out {
        // Accepted, then reported failed: Meta learns of the opt-out only on delivery.
        if shared.records().callback.is_some() {
            let shared = Arc::clone(&shared);
            let (wamid, to) = (wamid.clone(), to.clone());
            tokio::spawn(async move {
                let body = payloads::failed_status_webhook(
                    &shared.business(),
                    &wamid,
                    &to,
                    vec![payloads::marketing_opt_out_error()],
                    Utc::now().timestamp(),
                );
                shared.deliver(&body).await;
            });
        }
    } else if shared.config.auto_statuses && shared.records().callback.is_some() {
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

pub(super) async fn upload_media(
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
pub(super) async fn get_node(
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

pub(super) async fn download(
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

pub(super) async fn subscribe(
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

pub(super) async fn subscriptions(
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

pub(super) async fn unsubscribe(
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

pub(super) async fn not_found(shared: web::Data<Shared>, request: HttpRequest) -> HttpResponse {
    violation(
        &shared,
        &format!("{} {}", request.method(), request.path()),
        "no such endpoint".into(),
    );
    graph_error(StatusCode::NOT_FOUND, 100, None, "Unknown path components")
}
