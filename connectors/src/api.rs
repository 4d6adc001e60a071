//! The generic "API channel": any system can exchange messages with omnihub through it. Inbound,
//! the system posts to omnihub (the HTTP layer handles that); outbound, omnihub POSTs every reply
//! as JSON to the channel's `settings.outbound_url`:
//!
//! ```text
//! POST {outbound_url}
//! Content-Type: application/json
//! Idempotency-Key: {idempotency_key}
//! Authorization: Bearer {credentials.outbound_token}      (only when a token is set)
//!
//! {"message_id": "…", "conversation": "<external conversation id>", "text": "…",
//!  "idempotency_key": "…", "attachments": [{"file_name": "…", "mime_type": "…",
//!  "size": 123, "content_base64": "…"}]}
//! ```
//!
//! `attachments` holds the reply's files, their bytes in base64; it is absent when there are none.
//!
//! The answer decides the outcome: 2xx is sent (the JSON answer's `id`, if any, becomes the
//! provider's message id that delivery callbacks refer to); 429 and 5xx are transient, honouring
//! `Retry-After`; any other status is a permanent refusal whose reason is the body's `error` (or
//! its text); network errors and timeouts are transient. Redirects are not followed: a
//! receiver that moved must be reconfigured, not silently chased.
//!
//! TLS: reqwest uses the process-wide rustls crypto provider when one is installed (`main`
//! installs `ring`), and its own default otherwise, so nothing needs choosing here.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, RETRY_AFTER};

use crate::{OutboundChannel, OutboundMessage, SendError, SendReceipt};

/// The whole request, connection included, must finish within this.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Only this much of an answer is read: enough for an id or an error message, and a receiver
/// answering with megabytes cannot make us hold them.
const MAX_BODY: usize = 64 * 1024;

/// A reason shown to operators is cut to this many characters.
const MAX_REASON: usize = 500;

/// The outbound side of one API channel.
#[derive(Clone)]
pub struct ApiChannel {
    client: reqwest::Client,
    url: reqwest::Url,
    token: Option<String>,
}

// Written by hand so that the token never reaches a log.
impl std::fmt::Debug for ApiChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiChannel")
            .field("url", &self.url.as_str())
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl ApiChannel {
    /// A channel posting to `outbound_url` (http or https), with `Authorization: Bearer token`
    /// when a token is given. A URL that cannot work is a permanent error: every message sent
    /// through this channel would fail the same way until the channel is reconfigured.
    pub fn new(outbound_url: &str, token: Option<String>) -> Result<ApiChannel, SendError> {
        let url = reqwest::Url::parse(outbound_url).map_err(|err| SendError::Permanent {
            reason: format!("invalid outbound_url: {err}"),
        })?;
        if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
            return Err(SendError::Permanent {
                reason: "invalid outbound_url: expected an http:// or https:// URL".into(),
            });
        }
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| SendError::Transient {
                retry_after: None,
                reason: format!("http client: {err}"),
            })?;
        Ok(ApiChannel {
            client,
            url,
            token: token.filter(|t| !t.is_empty()),
        })
    }

    pub async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let attachments: Vec<_> = message
            .attachments
            .iter()
            .map(|file| {
                serde_json::json!({
                    "file_name": file.file_name,
                    "mime_type": file.mime_type,
                    "size": file.bytes.len(),
                    "content_base64": BASE64.encode(&file.bytes),
                })
            })
            .collect();
        let mut body = serde_json::json!({
            "message_id": message.message_id,
            "conversation": message.conversation,
            "text": message.text,
            "idempotency_key": message.idempotency_key,
        });
        if !attachments.is_empty() {
            body["attachments"] = serde_json::Value::Array(attachments);
        }
        let mut request = self
            .client
            .post(self.url.clone())
            .header("Idempotency-Key", &message.idempotency_key)
            .json(&body);
        if let Some(token) = &self.token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let mut response = request.send().await.map_err(network_error)?;
        let status = response.status();
        let retry_after = retry_after(response.headers(), Utc::now());
        let mut body = Vec::new();
        // A body cut short by the network after a 2xx still means the receiver took the
        // message; only a failed status needs the body for its reason.
        while body.len() < MAX_BODY {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(err) if status.is_success() => {
                    tracing::debug!(error = %err, "API channel answer body cut short");
                    break;
                }
                Err(err) => return Err(network_error(err)),
            }
        }
        body.truncate(MAX_BODY);
        classify(status, retry_after, &body)
    }
}

#[async_trait]
impl OutboundChannel for ApiChannel {
    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        ApiChannel::send(self, message).await
    }
}

fn network_error(err: reqwest::Error) -> SendError {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    // reqwest's Display names the URL, never headers, so the token cannot leak here.
    SendError::Transient {
        retry_after: None,
        reason: format!("{what}: {err}"),
    }
}

/// Maps the receiver's answer to the outcome of the send.
pub(crate) fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<SendReceipt, SendError> {
    if status.is_success() {
        return Ok(SendReceipt {
            provider_message_id: provider_id(body),
        });
    }
    let reason = reason(status, body);
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        return Err(SendError::Transient {
            retry_after,
            reason,
        });
    }
    Err(SendError::Permanent { reason })
}

/// The JSON answer's `id`, as a string even when the receiver sent a number.
fn provider_id(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    match value.get("id")? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The receiver's own words: the JSON body's `error` (a string, or an object's `message`),
/// else the body's text, else the status line.
fn reason(status: StatusCode, body: &[u8]) -> String {
    let from_json = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| match v.get("error")? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Object(o) => o.get("message")?.as_str().map(str::to_string),
            _ => None,
        });
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    let text: String = text.chars().take(MAX_REASON).collect();
    if text.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {}: {text}", status.as_u16())
    }
}

/// `Retry-After` as delta-seconds or an HTTP date; a date in the past means "now".
pub(crate) fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn success_takes_the_id_from_the_answer() {
        let ok = |body: &str| classify(StatusCode::OK, None, body.as_bytes()).unwrap();
        assert_eq!(
            ok(r#"{"id":"abc"}"#).provider_message_id.as_deref(),
            Some("abc")
        );
        assert_eq!(
            ok(r#"{"id":42}"#).provider_message_id.as_deref(),
            Some("42")
        );
        assert_eq!(ok("").provider_message_id, None);
        assert_eq!(ok("not json").provider_message_id, None);
        assert_eq!(ok(r#"{"id":null}"#).provider_message_id, None);
        let accepted = classify(StatusCode::ACCEPTED, None, b"{}").unwrap();
        assert_eq!(accepted, SendReceipt::default());
    }

    #[test]
    fn rate_limits_and_outages_are_transient() {
        for status in [
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::BAD_GATEWAY,
            StatusCode::INTERNAL_SERVER_ERROR,
        ] {
            let err = classify(status, Some(Duration::from_secs(3)), b"busy").unwrap_err();
            assert_eq!(
                err,
                SendError::Transient {
                    retry_after: Some(Duration::from_secs(3)),
                    reason: format!("HTTP {}: busy", status.as_u16()),
                },
                "{status}"
            );
        }
    }

    #[test]
    fn other_client_errors_are_permanent_with_the_receivers_reason() {
        let err = classify(
            StatusCode::BAD_REQUEST,
            None,
            br#"{"error":"unknown conversation"}"#,
        )
        .unwrap_err();
        assert_eq!(
            err,
            SendError::Permanent {
                reason: "HTTP 400: unknown conversation".into()
            }
        );
        let err = classify(
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            br#"{"error":{"message":"text too long"}}"#,
        )
        .unwrap_err();
        assert_eq!(
            err,
            SendError::Permanent {
                reason: "HTTP 422: text too long".into()
            }
        );
        let err = classify(StatusCode::FORBIDDEN, None, b"  go away \n").unwrap_err();
        assert_eq!(
            err,
            SendError::Permanent {
                reason: "HTTP 403: go away".into()
            }
        );
        let err = classify(StatusCode::NOT_FOUND, None, b"").unwrap_err();
        assert_eq!(
            err,
            SendError::Permanent {
                reason: "HTTP 404 Not Found".into()
            }
        );
        // A redirect is not followed, and not retried either.
        assert!(
            !classify(StatusCode::FOUND, None, b"")
                .unwrap_err()
                .is_transient()
        );
    }

    #[test]
    fn reasons_are_bounded() {
        let body = "x".repeat(10_000);
        let SendError::Permanent { reason } =
            classify(StatusCode::BAD_REQUEST, None, body.as_bytes()).unwrap_err()
        else {
            panic!("expected a permanent error");
        };
        assert_eq!(reason.len(), "HTTP 400: ".len() + MAX_REASON);
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let headers = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, HeaderValue::from_static(v));
            h
        };
        assert_eq!(
            retry_after(&headers("120"), now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:28:30 GMT"), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:00:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn unusable_urls_are_refused() {
        for url in ["", "not a url", "ftp://example.com/x", "file:///etc/passwd"] {
            assert!(
                matches!(ApiChannel::new(url, None), Err(SendError::Permanent { .. })),
                "{url}"
            );
        }
        let channel = ApiChannel::new("http://127.0.0.1:9/hook", Some("secret".into())).unwrap();
        assert!(!format!("{channel:?}").contains("secret"));
    }
}
