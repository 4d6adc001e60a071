//! What Viber's answers mean. Viber answers HTTP 200 with `{"status": N, "status_message"}`
//! even when it refuses; the status code says whether waiting helps.

use reqwest::StatusCode;
use serde::Deserialize;

use crate::SendError;
use crate::rest_client::bounded_reason;

pub const OK: i64 = 0;
pub const INVALID_AUTH_TOKEN: i64 = 2;
pub const RECEIVER_NOT_REGISTERED: i64 = 5;
pub const RECEIVER_NOT_SUBSCRIBED: i64 = 6;
pub const TOO_MANY_REQUESTS: i64 = 12;

/// The common part of every Viber answer, plus the fields the connector reads.
#[derive(Debug, Default, Deserialize)]
pub struct Answer {
    pub status: i64,
    #[serde(default)]
    pub status_message: String,
    pub message_token: Option<serde_json::Number>,
    /// `get_account_info`: the webhook Viber delivers to.
    pub webhook: Option<String>,
}

/// The answer's outcome: the answer itself for status 0, the classified refusal otherwise.
pub fn check(http: StatusCode, body: &[u8]) -> Result<Answer, SendError> {
    if !http.is_success() {
        let reason = bounded_reason(&format!(
            "HTTP {}: {}",
            http.as_u16(),
            String::from_utf8_lossy(body).trim()
        ));
        return Err(
            if http == StatusCode::TOO_MANY_REQUESTS || http.is_server_error() {
                SendError::Transient {
                    retry_after: None,
                    reason,
                }
            } else {
                SendError::Permanent { reason }
            },
        );
    }
    let answer: Answer = serde_json::from_slice(body).map_err(|err| SendError::Transient {
        retry_after: None,
        reason: format!("unexpected answer from Viber: {err}"),
    })?;
    if answer.status == OK {
        return Ok(answer);
    }
    let reason = bounded_reason(&format!(
        "{} (status {})",
        answer.status_message, answer.status
    ));
    Err(match answer.status {
        TOO_MANY_REQUESTS => SendError::Transient {
            retry_after: None,
            reason,
        },
        INVALID_AUTH_TOKEN => SendError::invalid_token(&reason),
        // The customer unsubscribed (blocked the bot); Viber delivers nothing until they write.
        RECEIVER_NOT_SUBSCRIBED => SendError::Blocked { reason },
        RECEIVER_NOT_REGISTERED => SendError::Permanent {
            reason: format!("receiver_unavailable: {reason}"),
        },
        _ => SendError::Permanent { reason },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn answer(status: i64, message: &str) -> Vec<u8> {
        serde_json::json!({"status": status, "status_message": message})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn status_codes_decide() {
        let ok = check(
            StatusCode::OK,
            br#"{"status":0,"status_message":"ok","message_token":5098034272017990000}"#,
        )
        .unwrap();
        assert_eq!(ok.message_token.unwrap().to_string(), "5098034272017990000");
        assert!(
            check(StatusCode::OK, &answer(12, "tooManyRequests"))
                .unwrap_err()
                .is_transient()
        );
        assert_eq!(
            check(StatusCode::OK, &answer(2, "invalidAuthToken")).unwrap_err(),
            SendError::Permanent {
                reason: "invalid token: invalidAuthToken (status 2)".into()
            }
        );
        assert!(matches!(
            check(StatusCode::OK, &answer(5, "receiverNotRegistered")).unwrap_err(),
            SendError::Permanent { .. }
        ));
        assert_eq!(
            check(StatusCode::OK, &answer(6, "receiverNotSubscribed")).unwrap_err(),
            SendError::Blocked {
                reason: "receiverNotSubscribed (status 6)".into()
            }
        );
        assert!(
            check(StatusCode::BAD_GATEWAY, b"")
                .unwrap_err()
                .is_transient()
        );
        assert!(check(StatusCode::OK, b"<html>").unwrap_err().is_transient());
    }
}
