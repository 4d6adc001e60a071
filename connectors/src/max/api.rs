//! Calling the MAX Bot API: JSON over HTTPS with the bot token in `Authorization`, errors as
//! `{"code", "message"}` with an HTTP status, and what each failure means for the caller.

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use crate::SendError;

/// One request must finish within this (long polls add their own wait).
pub(crate) const TIMEOUT: Duration = Duration::from_secs(15);

const MAX_ANSWER: usize = 1024 * 1024;
const MAX_REASON: usize = 500;

/// The schema gives one code, 403 `chat.denied`, for every refusal of a send: the user
/// suspended (stopped) the bot, the bot has no access to the chat or channel, or forwarding from
/// it is prohibited. Only the first is the customer blocking the bot, and MAX says so in the
/// message: `Key: error.dialog.suspended, args: [<user id>,].`; the others are failures in
/// MAX's words.
const DIALOG_SUSPENDED: &str = "error.dialog.suspended";

/// How long to wait after a 429 that names no `Retry-After`: the limit is per second.
const RATE_LIMIT_PAUSE: Duration = Duration::from_secs(1);

/// Why a call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CallError {
    /// MAX answered with an error status.
    Status {
        status: u16,
        code: String,
        message: String,
        retry_after: Option<Duration>,
    },
    /// No answer, or not one we can read: already classified.
    Transport(SendError),
}

impl CallError {
    /// 429 and 5xx are worth retrying (429 after `Retry-After`, or a second); 401 means the
    /// token is refused; a 400 `attachment.not.ready` is an upload MAX is still processing,
    /// which the schema says to retry; every other status is a refusal in MAX's words.
    pub(crate) fn into_send_error(self) -> SendError {
        match self {
            CallError::Transport(err) => err,
            CallError::Status {
                status,
                code,
                message,
                retry_after,
            } => {
                let reason = format!("MAX {status} {code}: {message}");
                match status {
                    429 => SendError::Transient {
                        retry_after: Some(retry_after.unwrap_or(RATE_LIMIT_PAUSE)),
                        reason,
                    },
                    500.. => SendError::Transient {
                        retry_after,
                        reason,
                    },
                    400 if code == "attachment.not.ready" => SendError::Transient {
                        retry_after: Some(RATE_LIMIT_PAUSE),
                        reason,
                    },
                    401 => {
                        SendError::invalid_token(&format!("the bot token is refused: {message}"))
                    }
                    403 if code == "chat.denied" && message.contains(DIALOG_SUSPENDED) => {
                        SendError::Blocked { reason }
                    }
                    _ => SendError::Permanent { reason },
                }
            }
        }
    }
}

/// The HTTP side shared by every call of one MAX bot.
#[derive(Clone)]
pub(crate) struct MaxApi {
    pub(crate) client: reqwest::Client,
    base: Url,
    token: String,
}

impl MaxApi {
    pub(crate) fn new(base: &Url, token: String) -> Result<MaxApi, String> {
        let mut base = base.clone();
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| format!("http client: {err}"))?;
        Ok(MaxApi {
            client,
            base,
            token,
        })
    }

    /// `method path?query` with an optional JSON body; the JSON answer.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        timeout: Option<Duration>,
    ) -> Result<Value, CallError> {
        let mut url = self
            .base
            .join(path)
            .map_err(|err| CallError::Transport(permanent(format!("bad API base URL: {err}"))))?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in query {
                pairs.append_pair(key, value);
            }
        }
        let mut request = self
            .client
            .request(method, url)
            .header(reqwest::header::AUTHORIZATION, &self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let response = request
            .send()
            .await
            .map_err(|err| CallError::Transport(network_error(err)))?;
        read_answer(response).await
    }
}

/// Reads an answer: JSON on success, a [`CallError::Status`] otherwise.
pub(crate) async fn read_answer(response: reqwest::Response) -> Result<Value, CallError> {
    let status = response.status();
    let retry_after = crate::api::retry_after(response.headers(), chrono::Utc::now());
    let body = read_bounded(response, MAX_ANSWER)
        .await
        .map_err(CallError::Transport)?;
    if status.is_success() {
        if body.is_empty() {
            return Ok(Value::Null);
        }
        return serde_json::from_slice(&body).map_err(|err| {
            CallError::Transport(transient(format!("MAX answered invalid JSON: {err}")))
        });
    }
    let error: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let field = |key: &str| {
        error
            .get(key)
            .and_then(Value::as_str)
            .map(|s| s.chars().take(MAX_REASON).collect::<String>())
    };
    let message = field("message").unwrap_or_else(|| {
        String::from_utf8_lossy(&body)
            .trim()
            .chars()
            .take(MAX_REASON)
            .collect()
    });
    Err(CallError::Status {
        status: status.as_u16(),
        code: field("code").unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("error")
                .to_ascii_lowercase()
        }),
        message,
        retry_after: if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            retry_after
        } else {
            None
        },
    })
}

pub(crate) use crate::rest_client::{network_error, permanent, read_bounded, transient};

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, code: &str, retry_after: Option<Duration>) -> SendError {
        saying(status, code, "msg", retry_after)
    }

    fn saying(status: u16, code: &str, message: &str, retry_after: Option<Duration>) -> SendError {
        CallError::Status {
            status,
            code: code.into(),
            message: message.into(),
            retry_after,
        }
        .into_send_error()
    }

    #[test]
    fn only_a_suspended_dialog_is_the_customer_blocking_the_bot() {
        let suspended = "Key: error.dialog.suspended, args: [228532008,].";
        assert_eq!(
            saying(403, "chat.denied", suspended, None),
            SendError::Blocked {
                reason: format!("MAX 403 chat.denied: {suspended}")
            }
        );
        // The schema's example and the bot without access to a chat are no block.
        for words in [
            "Forwarding messages from this chat or channel is prohibited",
            "msg",
        ] {
            assert_eq!(
                saying(403, "chat.denied", words, None),
                SendError::Permanent {
                    reason: format!("MAX 403 chat.denied: {words}")
                }
            );
        }
    }

    #[test]
    fn statuses_are_classified() {
        assert_eq!(
            status(429, "too.many.requests", None),
            SendError::Transient {
                retry_after: Some(Duration::from_secs(1)),
                reason: "MAX 429 too.many.requests: msg".into()
            }
        );
        assert_eq!(
            status(429, "x", Some(Duration::from_secs(4))),
            SendError::Transient {
                retry_after: Some(Duration::from_secs(4)),
                reason: "MAX 429 x: msg".into()
            }
        );
        assert!(status(503, "x", None).is_transient());
        assert!(status(400, "attachment.not.ready", None).is_transient());
        assert_eq!(
            status(401, "verify.token", None),
            SendError::Permanent {
                reason: "invalid token: the bot token is refused: msg".into()
            }
        );
        assert!(matches!(
            status(403, "access.denied", None),
            SendError::Permanent { .. }
        ));
    }
}
