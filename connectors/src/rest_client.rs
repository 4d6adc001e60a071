//! Plumbing shared by the connectors that speak JSON over HTTPS to a provider (WhatsApp's
//! Graph API, Viber's REST bot API, VK, MAX): one client with bounded time and no redirects, bodies read
//! up to a cap, and network failures classified as transient.

use std::time::Duration;

use chrono::Utc;
use reqwest::StatusCode;

use crate::SendError;

/// The whole request, connection included, must finish within this.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// Media downloads and uploads move more bytes than an API call.
pub const MEDIA_TIMEOUT: Duration = Duration::from_secs(120);
/// An API answer larger than this is not one we need to read in full.
pub const MAX_API_BODY: usize = 256 * 1024;
/// A reason shown to operators is cut to this many characters.
pub const MAX_REASON: usize = 500;

/// A client for provider APIs: bounded time, and redirects are not followed (a provider API that
/// redirects is misconfigured, and following would hand our token to wherever it points).
pub fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|err| format!("http client: {err}"))
}

/// An answer read into memory: its status, `Retry-After`, content type and body.
pub struct Answer {
    pub status: StatusCode,
    pub retry_after: Option<Duration>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// Sends the request and reads the answer, at most `max_body` bytes (more is an error: the
/// provider sent something other than what we asked for).
pub async fn fetch(request: reqwest::RequestBuilder, max_body: usize) -> Result<Answer, SendError> {
    let response = request.send().await.map_err(network_error)?;
    let status = response.status();
    let retry_after = crate::api::retry_after(response.headers(), Utc::now());
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let body = read_bounded(response, max_body).await?;
    Ok(Answer {
        status,
        retry_after,
        content_type,
        body,
    })
}

/// The answer's body, at most `limit` bytes; more is a permanent error (asking again would
/// bring the same bytes back).
pub async fn read_bounded(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, SendError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(network_error)? {
        if body.len() + chunk.len() > limit {
            return Err(permanent(format!(
                "the provider's answer exceeds {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A failure worth retrying later.
pub fn transient(reason: impl Into<String>) -> SendError {
    SendError::Transient {
        retry_after: None,
        reason: reason.into(),
    }
}

/// A failure that asking again cannot mend.
pub fn permanent(reason: impl Into<String>) -> SendError {
    SendError::Permanent {
        reason: reason.into(),
    }
}

/// Network errors and timeouts are worth retrying.
pub fn network_error(err: reqwest::Error) -> SendError {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    // reqwest's Display names the URL (ids only), never headers, so no token leaks here.
    transient(format!("{what}: {}", err.without_url()))
}

/// `text` cut to [`MAX_REASON`] characters.
pub fn bounded_reason(text: &str) -> String {
    text.chars().take(MAX_REASON).collect()
}

/// `base` with `segments` appended as path segments, each percent-encoded, so an id can never
/// change the path's shape (`../`, `?`, `#`); empty, `.` and `..` segments are refused.
pub fn endpoint(base: &reqwest::Url, segments: &[&str]) -> Result<reqwest::Url, String> {
    if let Some(bad) = segments
        .iter()
        .find(|segment| matches!(**segment, "" | "." | ".."))
    {
        return Err(format!("{bad:?} is not a valid id"));
    }
    let mut url = base.clone();
    {
        let mut path = url
            .path_segments_mut()
            .map_err(|()| format!("the API base URL {base} cannot take a path"))?;
        path.pop_if_empty();
        for segment in segments {
            path.push(segment);
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn endpoints_encode_every_segment() {
        let base = reqwest::Url::parse("https://graph.example/").unwrap();
        assert_eq!(
            endpoint(&base, &["v23.0", "123", "messages"])
                .unwrap()
                .as_str(),
            "https://graph.example/v23.0/123/messages"
        );
        assert_eq!(
            endpoint(&base, &["v23.0", "../x?y#z"]).unwrap().as_str(),
            "https://graph.example/v23.0/..%2Fx%3Fy%23z"
        );
        for bad in ["", ".", ".."] {
            assert!(endpoint(&base, &["v23.0", bad]).is_err(), "{bad:?}");
        }
        let prefixed = reqwest::Url::parse("http://127.0.0.1:9/graph").unwrap();
        assert_eq!(
            endpoint(&prefixed, &["a"]).unwrap().as_str(),
            "http://127.0.0.1:9/graph/a"
        );
    }
}
