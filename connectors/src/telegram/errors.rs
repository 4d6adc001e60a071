//! How Telegram's refusals and transport failures become [`SendError`]s and [`Health`] states.
//!
//! Telegram answers every failed call with `{"ok":false,"error_code","description",
//! "parameters":{"retry_after"}}`. The classification: 429 is transient after `retry_after`
//! seconds; 5xx and network trouble are transient; 401 (and 404, which Telegram answers for a
//! token it cannot parse) mean the token is wrong; 403 "bot was blocked by the user" is
//! [`SendError::Blocked`]; every other refusal — 400 (bad request, chat not found), other 403s,
//! 409 (webhook and getUpdates conflict) — is permanent, in Telegram's own words.

use std::time::Duration;

use frankenstein::response::ErrorResponse;

use crate::SendError;
use crate::provider::Health;

/// A reason shown to operators is cut to this many characters.
const MAX_REASON: usize = 500;

/// One refusal by the Bot API, from its JSON error answer (or the HTTP status without one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiRefusal {
    pub code: u16,
    pub description: String,
    pub retry_after: Option<Duration>,
}

impl ApiRefusal {
    pub fn from_response(response: &ErrorResponse) -> ApiRefusal {
        ApiRefusal {
            code: u16::try_from(response.error_code).unwrap_or(u16::MAX),
            description: bounded(&response.description),
            retry_after: response
                .parameters
                .and_then(|p| p.retry_after)
                .map(|secs| Duration::from_secs(u64::from(secs))),
        }
    }

    /// An error answer read by hand (the calls reqwest makes directly): Telegram's JSON when
    /// the body is one, else the status alone (a proxy's HTML error page, say).
    pub fn from_body(status: reqwest::StatusCode, body: &[u8]) -> ApiRefusal {
        match serde_json::from_slice::<ErrorResponse>(body) {
            Ok(response) => ApiRefusal::from_response(&response),
            Err(_) => ApiRefusal {
                code: status.as_u16(),
                description: format!("HTTP {status}"),
                retry_after: None,
            },
        }
    }

    fn is_invalid_token(&self) -> bool {
        matches!(self.code, 401 | 404)
    }

    /// 403 "Forbidden: bot was blocked by the user" (and "user is deactivated": the account is
    /// gone, which reaches nobody either).
    fn is_blocked(&self) -> bool {
        self.code == 403
            && (self.description.contains("blocked by the user")
                || self.description.contains("user is deactivated"))
    }

    pub fn into_send_error(self) -> SendError {
        match self.code {
            429 => SendError::Transient {
                retry_after: self.retry_after,
                reason: self.description,
            },
            500..=599 => SendError::Transient {
                retry_after: self.retry_after,
                reason: self.description,
            },
            _ if self.is_invalid_token() => SendError::invalid_token(&self.description),
            _ if self.is_blocked() => SendError::Blocked {
                reason: self.description,
            },
            _ => SendError::Permanent {
                reason: self.description,
            },
        }
    }

    pub fn into_health(self) -> Health {
        if self.is_invalid_token() {
            Health::InvalidToken(format!(
                "Telegram refuses the bot token: {}",
                self.description
            ))
        } else if self.code == 429 {
            Health::RateLimited(self.description)
        } else {
            Health::Failing(self.description)
        }
    }
}

/// What went wrong with one call made through frankenstein.
pub(crate) enum CallError {
    Refused(ApiRefusal),
    Transport(SendError),
}

impl CallError {
    pub fn into_send_error(self) -> SendError {
        match self {
            CallError::Refused(refusal) => refusal.into_send_error(),
            CallError::Transport(error) => error,
        }
    }

    pub fn into_health(self) -> Health {
        match self {
            CallError::Refused(refusal) => refusal.into_health(),
            CallError::Transport(error) => Health::of_error(&error),
        }
    }
}

impl From<frankenstein::Error> for CallError {
    fn from(error: frankenstein::Error) -> Self {
        match error {
            frankenstein::Error::Api(response) => {
                CallError::Refused(ApiRefusal::from_response(&response))
            }
            // frankenstein strips the URL (which holds the token) from reqwest's errors.
            frankenstein::Error::HttpReqwest(error) => CallError::Transport(transport(&error)),
            // A 2xx that is not the Bot API's JSON: a proxy or an outage page in between.
            frankenstein::Error::JsonDecode { source, .. } => {
                CallError::Transport(SendError::Transient {
                    retry_after: None,
                    reason: bounded(&format!("unreadable answer from Telegram: {source}")),
                })
            }
            // Encoding our own parameters failed: retrying cannot help.
            other => CallError::Transport(SendError::Permanent {
                reason: bounded(&other.to_string()),
            }),
        }
    }
}

/// A network failure of a call. The caller must have removed the URL (it holds the token),
/// as `reqwest::Error::without_url` does.
pub(crate) fn transport(error: &reqwest::Error) -> SendError {
    let what = if error.is_timeout() {
        "Telegram did not answer in time"
    } else if error.is_connect() {
        "could not connect to Telegram"
    } else {
        "request to Telegram failed"
    };
    SendError::Transient {
        retry_after: None,
        reason: bounded(&format!("{what}: {error}")),
    }
}

fn bounded(text: &str) -> String {
    text.chars().take(MAX_REASON).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use reqwest::StatusCode;

    fn refusal(body: &str) -> ApiRefusal {
        ApiRefusal::from_body(StatusCode::BAD_REQUEST, body.as_bytes())
    }

    #[test]
    fn too_many_requests_is_transient_with_telegrams_wait() {
        let error = refusal(
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#,
        )
        .into_send_error();
        assert_eq!(
            error,
            SendError::Transient {
                retry_after: Some(Duration::from_secs(7)),
                reason: "Too Many Requests: retry after 7".into()
            }
        );
    }

    #[test]
    fn blocked_and_bad_requests_are_permanent_in_telegrams_words() {
        let error = refusal(
            r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#,
        )
        .into_send_error();
        assert_eq!(
            error,
            SendError::Blocked {
                reason: "Forbidden: bot was blocked by the user".into()
            }
        );
        assert_eq!(error.problem(), crate::provider::Problem::BlockedByUser);
        let other = refusal(
            r#"{"ok":false,"error_code":403,"description":"Forbidden: bot is not a member of the group chat"}"#,
        )
        .into_send_error();
        assert!(matches!(other, SendError::Permanent { .. }), "{other:?}");
        let error =
            refusal(r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#)
                .into_send_error();
        assert!(!error.is_transient());
    }

    #[test]
    fn a_refused_token_is_permanent_and_unhealthy() {
        let unauthorized = r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#;
        assert_eq!(
            refusal(unauthorized).into_send_error(),
            SendError::Permanent {
                reason: "invalid token: Unauthorized".into()
            }
        );
        assert_eq!(
            refusal(unauthorized).into_send_error().problem(),
            crate::provider::Problem::InvalidToken
        );
        assert!(matches!(
            refusal(unauthorized).into_health(),
            Health::InvalidToken(_)
        ));
    }

    #[test]
    fn outages_without_json_are_transient() {
        let error = ApiRefusal::from_body(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>")
            .into_send_error();
        assert_eq!(
            error,
            SendError::Transient {
                retry_after: None,
                reason: "HTTP 502 Bad Gateway".into()
            }
        );
    }

    #[test]
    fn reasons_are_bounded() {
        let long = "x".repeat(5000);
        let body = serde_json::json!({"ok":false,"error_code":400,"description":long});
        let refusal = refusal(&body.to_string());
        assert_eq!(refusal.description.len(), MAX_REASON);
    }
}
