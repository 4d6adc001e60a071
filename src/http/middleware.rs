//! Cross-cutting request handling: request ids, the response language, security headers,
//! metrics.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, web};

use crate::http::error::{LANG, REQUEST_ID};
use crate::i18n::Lang;
use crate::state::AppState;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A caller-supplied request id is kept only when it is short and plain, so it cannot smuggle
/// anything into logs; otherwise a fresh one is made.
fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}

/// The language of the answer, from every `Accept-Language` field (RFC 9110 lets a list be
/// split over several).
fn request_lang(req: &ServiceRequest) -> Lang {
    let ranges: Vec<&str> = req
        .headers()
        .get_all(header::ACCEPT_LANGUAGE)
        .filter_map(|v| v.to_str().ok())
        .collect();
    if ranges.is_empty() {
        Lang::API_DEFAULT
    } else {
        Lang::from_accept_language(&ranges.join(","))
    }
}

/// Security headers every response carries; HSTS is added separately, only when omnihub
/// itself serves TLS. The CSP forbids inline script, framing and plugins; the console talks
/// only to its own origin.
const SECURITY_HEADERS: [(HeaderName, HeaderValue); 7] = [
    (
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; object-src 'none'; \
base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    ),
    (
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ),
    (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    (
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    ),
    (
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    ),
    (
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    ),
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
];

/// The one layer around every request: an id (in the response header, error bodies and the log
/// span), a language (for error messages), the security headers, and metrics of its status and
/// duration. One layer rather than several because each `from_fn` layer costs on every request.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = request_id(&req);
    let lang = request_lang(&req);
    let method = req.method().as_str().to_owned();
    let hsts = req
        .app_data::<web::Data<AppState>>()
        .and_then(|s| s.hsts.clone());
    let started = Instant::now();
    let span =
        tracing::info_span!("request", request_id = %id, method = %method, path = %req.path());
    let served = tracing::Instrument::instrument(next.call(req), span.clone());
    let mut res = LANG
        .scope(lang, REQUEST_ID.scope(id.clone(), served))
        .await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let status = res.status();
    let elapsed = started.elapsed().as_secs_f64();
    metrics::counter!("omnihub_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status.as_str().to_owned()).increment(1);
    metrics::histogram!("omnihub_http_request_duration_seconds", "method" => method, "route" => route).record(elapsed);
    span.in_scope(|| {
        tracing::debug!(
            status = status.as_u16(),
            elapsed_ms = elapsed * 1000.0,
            "served"
        )
    });

    let headers = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert(X_REQUEST_ID, v);
    }
    for (name, value) in &SECURITY_HEADERS {
        if !headers.contains_key(name) {
            headers.insert(name.clone(), value.clone());
        }
    }
    if let Some(v) = hsts {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, v);
    }
    Ok(res)
}
