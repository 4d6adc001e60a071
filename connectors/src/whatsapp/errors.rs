//! What a Graph API error answer means for the caller. Meta answers errors as
//! `{"error":{"message","type","code","error_subcode","fbtrace_id"}}`; the code, more than the
//! HTTP status, says whether waiting helps.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

use crate::SendError;
use crate::rest_client::bounded_reason;

/// Meta's rate-limit codes: 4 (app), 17 (user), 32 (page), 613 (call rate), 80007 (WABA),
/// 130429 (Cloud API throughput), 131056 (pair rate: too many messages to one customer).
const RATE_LIMIT_CODES: [i64; 7] = [4, 17, 32, 613, 80007, 130429, 131056];
/// Code 190: the access token is invalid or expired.
pub const INVALID_TOKEN: i64 = 190;
/// Code 131047: more than 24 hours since the customer last wrote; only a template may go.
pub const REENGAGEMENT_NEEDED: i64 = 131047;
/// Code 131050: the customer chose to stop receiving *marketing* messages from this business.
/// Only that message fails: replies and other templates still reach them, so the conversation is
/// not marked blocked. (Meta normally reports it in a `failed` status webhook; the same code in
/// a call's answer reads the same.)
pub const RECIPIENT_STOPPED_MARKETING: i64 = 131050;
/// Codes 1 and 2 and 131000: Meta's own trouble ("unknown error", "service unavailable").
const SERVICE_TROUBLE_CODES: [i64; 3] = [1, 2, 131000];

#[derive(Debug, Deserialize)]
struct ErrorEnvelope {
    error: GraphError,
}

/// The `error` object of a Graph API answer.
#[derive(Debug, Default, Deserialize)]
pub struct GraphError {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub error_subcode: Option<i64>,
    #[serde(default)]
    pub fbtrace_id: Option<String>,
    #[serde(default)]
    pub is_transient: Option<bool>,
    #[serde(default)]
    pub error_data: Option<serde_json::Value>,
}

impl GraphError {
    /// The error object of an answer body, if it is one.
    pub fn parse(body: &[u8]) -> Option<GraphError> {
        serde_json::from_slice::<ErrorEnvelope>(body)
            .ok()
            .map(|envelope| envelope.error)
    }

    pub fn is_rate_limit(&self) -> bool {
        self.code
            .is_some_and(|code| RATE_LIMIT_CODES.contains(&code))
    }

    pub fn is_invalid_token(&self) -> bool {
        self.code == Some(INVALID_TOKEN)
    }

    /// Meta's words plus the codes support needs: `message (code 131047, fbtrace_id X)`.
    pub fn describe(&self) -> String {
        let mut codes = Vec::new();
        if let Some(code) = self.code {
            match self.error_subcode {
                Some(sub) => codes.push(format!("code {code}/{sub}")),
                None => codes.push(format!("code {code}")),
            }
        }
        if let Some(trace) = &self.fbtrace_id {
            codes.push(format!("fbtrace_id {trace}"));
        }
        let details = self
            .error_data
            .as_ref()
            .and_then(|data| data.get("details"))
            .and_then(|details| details.as_str())
            .filter(|details| !details.is_empty() && *details != self.message);
        let mut text = self.message.clone();
        if let Some(details) = details {
            text = format!("{text}: {details}");
        }
        if !codes.is_empty() {
            text = format!("{text} ({})", codes.join(", "));
        }
        bounded_reason(&text)
    }
}

/// The outcome of a failed Graph API call (`status` is not 2xx).
pub fn classify(status: StatusCode, retry_after: Option<Duration>, body: &[u8]) -> SendError {
    let Some(error) = GraphError::parse(body) else {
        let text = String::from_utf8_lossy(body);
        let reason = bounded_reason(&format!("HTTP {}: {}", status.as_u16(), text.trim()));
        return if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            SendError::Transient {
                retry_after,
                reason,
            }
        } else {
            SendError::Permanent { reason }
        };
    };
    let reason = error.describe();
    if error.is_invalid_token() {
        return SendError::invalid_token(&reason);
    }
    if error.code == Some(REENGAGEMENT_NEEDED) {
        return SendError::Permanent {
            reason: format!("outside_24h_window: {reason}"),
        };
    }
    let transient = status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
        || error.is_rate_limit()
        || error.is_transient == Some(true)
        || error
            .code
            .is_some_and(|code| SERVICE_TROUBLE_CODES.contains(&code));
    if transient {
        SendError::Transient {
            retry_after,
            reason,
        }
    } else {
        SendError::Permanent { reason }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn body(code: i64) -> Vec<u8> {
        serde_json::json!({"error": {"message": "boom", "type": "OAuthException", "code": code,
            "error_subcode": 2494010, "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn rate_limits_are_transient_whatever_the_status() {
        for code in [130429, 131056, 80007, 4] {
            let err = classify(
                StatusCode::BAD_REQUEST,
                Some(Duration::from_secs(7)),
                &body(code),
            );
            assert_eq!(
                err,
                SendError::Transient {
                    retry_after: Some(Duration::from_secs(7)),
                    reason: format!(
                        "boom (code {code}/2494010, fbtrace_id Az8or2yhqkZfEZ-_4Qn_Bam)"
                    ),
                }
            );
        }
    }

    #[test]
    fn token_and_window_errors_are_permanent_and_say_so() {
        let SendError::Permanent { reason } =
            classify(StatusCode::UNAUTHORIZED, None, &body(INVALID_TOKEN))
        else {
            panic!("expected permanent");
        };
        assert!(reason.starts_with("invalid token: boom"), "{reason}");
        // Opted out of marketing messages only: that message fails, the customer is not
        // blocked, and retrying cannot help.
        assert_eq!(
            classify(
                StatusCode::BAD_REQUEST,
                None,
                &body(RECIPIENT_STOPPED_MARKETING)
            ),
            SendError::Permanent {
                reason: "boom (code 131050/2494010, fbtrace_id Az8or2yhqkZfEZ-_4Qn_Bam)".into()
            }
        );
        let SendError::Permanent { reason } =
            classify(StatusCode::BAD_REQUEST, None, &body(REENGAGEMENT_NEEDED))
        else {
            panic!("expected permanent");
        };
        assert!(reason.starts_with("outside_24h_window: boom"), "{reason}");
        assert!(!classify(StatusCode::BAD_REQUEST, None, &body(100)).is_transient());
    }

    #[test]
    fn answers_that_are_not_graph_errors_fall_back_to_the_status() {
        assert!(classify(StatusCode::BAD_GATEWAY, None, b"<html>").is_transient());
        assert!(classify(StatusCode::TOO_MANY_REQUESTS, None, b"").is_transient());
        assert_eq!(
            classify(StatusCode::NOT_FOUND, None, b"nope"),
            SendError::Permanent {
                reason: "HTTP 404: nope".into()
            }
        );
    }
}
