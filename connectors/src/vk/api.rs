//! Calling VK API methods: `POST {base}/method/<name>` form-encoded with `access_token` and
//! `v=5.199`, answered `{"response": …}` or `{"error": {"error_code", "error_msg", …}}`, and
//! what each failure means for the caller (retry or give up).

use std::time::Duration;

use reqwest::Url;
use serde_json::Value;

use crate::SendError;

/// The API version every call names; the schemas the sandbox checks us against are for it.
pub const API_VERSION: &str = "5.199";

/// One request (a method call, an upload, a download) must finish within this.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(15);

/// Answers larger than this are not read (method answers are small; downloads have their own
/// bound).
const MAX_ANSWER: usize = 1024 * 1024;

/// A reason shown to operators is cut to this many characters.
const MAX_REASON: usize = 500;

/// VK error codes this module acts on (see `errors.json` of the API schema).
pub mod codes {
    pub const UNKNOWN: i64 = 1;
    pub const AUTH_FAILED: i64 = 5;
    pub const TOO_MANY_REQUESTS: i64 = 6;
    pub const FLOOD_CONTROL: i64 = 9;
    pub const INTERNAL: i64 = 10;
    pub const RATE_LIMIT_REACHED: i64 = 29;
    /// The user put the community on their blacklist.
    pub const USER_BLOCKED: i64 = 900;
    /// The user has not allowed (or has denied) messages from the community.
    pub const DENY_SEND: i64 = 901;
}

/// Why a call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CallError {
    /// VK answered with an `error` object.
    Api { code: i64, message: String },
    /// No usable answer (network, HTTP status, not JSON): already classified.
    Transport(SendError),
}

impl CallError {
    /// What the caller should do: error 6 (too many requests per second), 9 (flood control),
    /// 10 (internal error) and 1 (unknown error, "try later") are worth retrying; 5 means the
    /// token is refused; 900 (blacklisted) and 901 (messages denied) mean the customer blocked
    /// the community; everything else (902 privacy, 7 denied…) is a refusal in VK's own words.
    pub(crate) fn into_send_error(self) -> SendError {
        match self {
            CallError::Transport(err) => err,
            CallError::Api { code, message } => match code {
                // The limit is per second: one second later the window has moved on.
                codes::TOO_MANY_REQUESTS => SendError::Transient {
                    retry_after: Some(Duration::from_secs(1)),
                    reason: format!("VK error {code}: {message}"),
                },
                // Flood control is VK's anti-spam brake on repeated sends; it lifts after a
                // while, not within a second.
                codes::FLOOD_CONTROL => SendError::Transient {
                    retry_after: Some(Duration::from_secs(30)),
                    reason: format!("VK error {code}: {message}"),
                },
                // A method's daily quota: it comes back within the day, not the minute.
                codes::RATE_LIMIT_REACHED => SendError::Transient {
                    retry_after: Some(Duration::from_secs(3600)),
                    reason: format!("VK error {code}: {message}"),
                },
                codes::INTERNAL | codes::UNKNOWN => SendError::Transient {
                    retry_after: None,
                    reason: format!("VK error {code}: {message}"),
                },
                codes::AUTH_FAILED => SendError::invalid_token(&format!(
                    "the community access token is refused: {message}"
                )),
                codes::USER_BLOCKED | codes::DENY_SEND => SendError::Blocked {
                    reason: format!("VK error {code}: {message}"),
                },
                _ => SendError::Permanent {
                    reason: format!("VK error {code}: {message}"),
                },
            },
        }
    }
}

/// The HTTP side shared by every VK call of one channel.
#[derive(Clone)]
pub(crate) struct VkApi {
    pub(crate) client: reqwest::Client,
    base: Url,
    token: String,
}

impl VkApi {
    pub(crate) fn new(base: &Url, token: String) -> Result<VkApi, String> {
        let mut base = base.clone();
        // `join` replaces the last path segment unless the path ends with a slash.
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
        Ok(VkApi {
            client,
            base,
            token,
        })
    }

    /// Points the community's callback server for `url` (one of `servers`, as
    /// `groups.getCallbackServers` listed them) at us with `title` and `secret`, adding it when
    /// there is none yet; returns its id.
    pub(crate) async fn upsert_callback_server(
        &self,
        group_id: i64,
        servers: &[Value],
        url: &str,
        title: &str,
        secret: String,
    ) -> Result<i64, SendError> {
        let existing = servers
            .iter()
            .find(|server| server.get("url").and_then(Value::as_str) == Some(url))
            .and_then(|server| server.get("id").and_then(Value::as_i64));
        let mut params = vec![
            ("group_id", group_id.to_string()),
            ("url", url.to_string()),
            ("title", title.to_string()),
            ("secret_key", secret),
        ];
        let added = match existing {
            Some(id) => {
                params.push(("server_id", id.to_string()));
                self.call("groups.editCallbackServer", &params)
                    .await
                    .map_err(CallError::into_send_error)?;
                return Ok(id);
            }
            None => self
                .call("groups.addCallbackServer", &params)
                .await
                .map_err(CallError::into_send_error)?,
        };
        added
            .get("server_id")
            .and_then(Value::as_i64)
            .ok_or_else(|| transient("groups.addCallbackServer returned no server_id"))
    }

    /// Calls `method` with `params` (plus the token and version) and returns its `response`.
    pub(crate) async fn call(
        &self,
        method: &str,
        params: &[(&str, String)],
    ) -> Result<Value, CallError> {
        let url = self
            .base
            .join(&format!("method/{method}"))
            .map_err(|err| CallError::Transport(permanent(format!("bad API base URL: {err}"))))?;
        let mut form: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        form.push(("access_token", &self.token));
        form.push(("v", API_VERSION));
        let response = self
            .client
            .post(url)
            .form(&form)
            .send()
            .await
            .map_err(|err| CallError::Transport(network_error(err)))?;
        let answer = read_json(response).await.map_err(CallError::Transport)?;
        parse_answer(answer)
    }
}

/// Splits a method answer into its `response` or its `error`.
pub(crate) fn parse_answer(answer: Value) -> Result<Value, CallError> {
    if let Some(error) = answer.get("error") {
        let code = error.get("error_code").and_then(Value::as_i64).unwrap_or(0);
        let message = error
            .get("error_msg")
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .chars()
            .take(MAX_REASON)
            .collect();
        return Err(CallError::Api { code, message });
    }
    match answer {
        Value::Object(mut map) => map.remove("response").ok_or_else(|| {
            CallError::Transport(transient("VK answered neither response nor error"))
        }),
        _ => Err(CallError::Transport(transient(
            "VK answered something that is not an object",
        ))),
    }
}

/// Reads a JSON answer of at most [`MAX_ANSWER`] bytes, classifying HTTP failures: 429 and 5xx
/// are transient, other non-2xx statuses permanent.
pub(crate) async fn read_json(response: reqwest::Response) -> Result<Value, SendError> {
    let status = response.status();
    let retry_after = crate::api::retry_after(response.headers(), chrono::Utc::now());
    let body = read_bounded(response, MAX_ANSWER).await?;
    if !status.is_success() {
        let text: String = String::from_utf8_lossy(&body)
            .trim()
            .chars()
            .take(MAX_REASON)
            .collect();
        let reason = format!("HTTP {}: {text}", status.as_u16());
        return Err(
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                SendError::Transient {
                    retry_after,
                    reason,
                }
            } else {
                SendError::Permanent { reason }
            },
        );
    }
    serde_json::from_slice(&body)
        .map_err(|err| transient(format!("VK answered invalid JSON: {err}")))
}

pub(crate) use crate::rest_client::{network_error, permanent, read_bounded, transient};

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn api_error(code: i64) -> SendError {
        CallError::Api {
            code,
            message: "msg".into(),
        }
        .into_send_error()
    }

    #[test]
    fn answers_split_into_response_or_error() {
        assert_eq!(parse_answer(json!({"response": 7})).unwrap(), json!(7));
        assert_eq!(
            parse_answer(json!({"error": {"error_code": 901, "error_msg": "Can't send"}}))
                .unwrap_err(),
            CallError::Api {
                code: 901,
                message: "Can't send".into()
            }
        );
        assert!(matches!(
            parse_answer(json!({"other": 1})),
            Err(CallError::Transport(SendError::Transient { .. }))
        ));
    }

    #[test]
    fn error_codes_are_classified() {
        assert_eq!(
            api_error(6),
            SendError::Transient {
                retry_after: Some(Duration::from_secs(1)),
                reason: "VK error 6: msg".into()
            }
        );
        assert!(api_error(9).is_transient());
        assert!(api_error(10).is_transient());
        assert!(api_error(29).is_transient());
        assert_eq!(
            api_error(5),
            SendError::Permanent {
                reason: "invalid token: the community access token is refused: msg".into()
            }
        );
        for code in [900, 901] {
            assert_eq!(
                api_error(code),
                SendError::Blocked {
                    reason: format!("VK error {code}: msg")
                }
            );
        }
        for code in [7, 902, 914] {
            assert_eq!(
                api_error(code),
                SendError::Permanent {
                    reason: format!("VK error {code}: msg")
                }
            );
        }
    }
}
