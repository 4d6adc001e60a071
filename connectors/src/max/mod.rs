//! MAX messenger bots (Bot API, OpenAPI v0.0.33).
//!
//! Built by [`MaxChannel::from_channel`] from the channel's stored credentials:
//!
//! | key | required | meaning |
//! |---|---|---|
//! | `token` | yes | the bot token, sent as `Authorization: <token>` |
//! | `webhook_secret` | for webhooks | 5–256 characters `[A-Za-z0-9_-]`; MAX sends it back in `X-Max-Bot-Api-Secret` |
//!
//! and settings `long_poll` (bool, default `false`: updates come by `GET /updates`, so
//! [`health`](ProviderChannel::health) expects no subscription) and `long_poll_timeout`
//! (seconds MAX holds a long poll, 0–90, default 30).
//!
//! Conversations are `chat:<chat_id>` or `user:<user_id>` (see [`Recipient`]); message ids are
//! MAX's `body.mid`. Texts longer than [`MAX_TEXT`] characters are refused (permanently), not
//! split. MAX has no idempotency key: a send retried after a lost answer can arrive twice. How
//! event ids are derived and what `bot_started` becomes is documented in [`updates`]. The long
//! poll cursor is MAX's `marker`.

mod api;
mod outbound;
pub mod updates;

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, Url};
use serde_json::{Value, json};

use crate::provider::{
    ConfigError, Health, Media, Polled, ProviderChannel, WebhookError, WebhookReply, WebhookRequest,
};
use crate::signing::constant_time_eq;
use crate::{OutboundChannel, OutboundMessage, SendError, SendReceipt};
use api::{CallError, MaxApi, network_error, permanent, read_bounded, transient};

pub use outbound::MAX_TEXT;
pub use updates::Recipient;

/// The header MAX puts the subscription's secret in.
pub const SECRET_HEADER: &str = "X-Max-Bot-Api-Secret";

/// The update types omnihub subscribes to and polls for.
pub const UPDATE_TYPES: [&str; 5] = [
    "message_created",
    "message_edited",
    "message_callback",
    "bot_started",
    "bot_stopped",
];

const MAX_DOWNLOAD: usize = 50 * 1024 * 1024;

/// One connected MAX bot.
pub struct MaxChannel {
    api: MaxApi,
    webhook_secret: Option<String>,
    long_poll: bool,
    long_poll_timeout: u64,
}

// Written by hand so that no secret reaches a log.
impl std::fmt::Debug for MaxChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaxChannel")
            .field("token", &"***")
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "***"),
            )
            .field("long_poll", &self.long_poll)
            .finish()
    }
}

impl MaxChannel {
    /// Builds the channel; `api_base` is `https://platform-api2.max.ru/` or a sandbox.
    pub fn from_channel(
        credentials: Option<&Value>,
        settings: &Value,
        api_base: &Url,
    ) -> Result<MaxChannel, ConfigError> {
        let credentials =
            credentials.ok_or_else(|| ConfigError("MAX credentials are missing".into()))?;
        let token = match credentials.get("token") {
            Some(Value::String(token)) if !token.trim().is_empty() => token.trim().to_string(),
            _ => return Err(ConfigError("credentials.token is required".into())),
        };
        let webhook_secret = match credentials.get("webhook_secret") {
            None | Some(Value::Null) => None,
            Some(Value::String(secret)) if valid_secret(secret) => Some(secret.clone()),
            Some(_) => {
                return Err(ConfigError(
                    "credentials.webhook_secret must be 5 to 256 characters A-Z, a-z, 0-9, _ or -"
                        .into(),
                ));
            }
        };
        let long_poll = match settings.get("long_poll") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(ConfigError(
                    "settings.long_poll must be true or false".into(),
                ));
            }
        };
        let long_poll_timeout = match settings.get("long_poll_timeout") {
            None | Some(Value::Null) => 30,
            Some(value) => value.as_u64().filter(|s| *s <= 90).ok_or_else(|| {
                ConfigError("settings.long_poll_timeout must be 0 to 90 seconds".into())
            })?,
        };
        if !matches!(api_base.scheme(), "http" | "https") {
            return Err(ConfigError(
                "the MAX API base must be an http(s) URL".into(),
            ));
        }
        Ok(MaxChannel {
            api: MaxApi::new(api_base, token).map_err(ConfigError)?,
            webhook_secret,
            long_poll,
            long_poll_timeout,
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, SendError> {
        self.api
            .call(method, path, query, body, None)
            .await
            .map_err(CallError::into_send_error)
    }
}

/// `SubscriptionRequestBody.secret`: 5–256 characters of `[A-Za-z0-9_-]`.
fn valid_secret(secret: &str) -> bool {
    (5..=256).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[async_trait]
impl OutboundChannel for MaxChannel {
    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let recipient = Recipient::parse(&message.conversation).ok_or_else(|| {
            permanent(format!(
                "not a MAX conversation (chat:<id> or user:<id>): {:?}",
                message.conversation
            ))
        })?;
        // Checked before uploading anything.
        outbound::check(message)?;
        let mut uploaded = Vec::with_capacity(message.attachments.len());
        for attachment in &message.attachments {
            uploaded.push(outbound::upload(&self.api, attachment).await?);
        }
        let body = outbound::message_body(message, uploaded)?;
        let query = match recipient {
            Recipient::Chat(id) => [("chat_id", id.to_string())],
            Recipient::User(id) => [("user_id", id.to_string())],
        };
        let answer = self
            .call(Method::POST, "messages", &query, Some(&body))
            .await?;
        Ok(SendReceipt {
            provider_message_id: answer
                .pointer("/message/body/mid")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }
}

#[async_trait]
impl ProviderChannel for MaxChannel {
    fn webhook(&self, request: &WebhookRequest<'_>) -> Result<WebhookReply, WebhookError> {
        if request.method != "POST" {
            return Err(WebhookError::MethodNotAllowed);
        }
        let authorized = match (request.header(SECRET_HEADER), &self.webhook_secret) {
            (Some(given), Some(ours)) => constant_time_eq(given.as_bytes(), ours.as_bytes()),
            _ => false,
        };
        if !authorized {
            return Err(WebhookError::Unauthorized);
        }
        let update: Value = serde_json::from_slice(request.body)
            .map_err(|err| WebhookError::Malformed(format!("not JSON: {err}")))?;
        let updates = updates::map_update(&update)
            .map_err(WebhookError::Malformed)?
            .into_iter()
            .collect();
        Ok(WebhookReply::Updates {
            updates,
            ack_body: "",
        })
    }

    async fn poll(&self, cursor: Option<&str>) -> Result<Polled, SendError> {
        let mut query = vec![
            ("timeout", self.long_poll_timeout.to_string()),
            ("types", UPDATE_TYPES.join(",")),
        ];
        if let Some(marker) = cursor {
            query.push(("marker", marker.to_string()));
        }
        let answer = self
            .api
            .call(
                Method::GET,
                "updates",
                &query,
                None,
                Some(Duration::from_secs(self.long_poll_timeout) + api::TIMEOUT),
            )
            .await
            .map_err(CallError::into_send_error)?;
        let updates = answer
            .get("updates")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|update| match updates::map_update(update) {
                Ok(update) => update,
                Err(reason) => {
                    tracing::warn!(%reason, "MAX long poll: update skipped");
                    None
                }
            })
            .collect();
        let cursor = match answer.get("marker") {
            Some(Value::Number(marker)) => Some(marker.to_string()),
            _ => cursor.map(str::to_string),
        };
        Ok(Polled { updates, cursor })
    }

    async fn download(&self, file_ref: &str) -> Result<Media, SendError> {
        let url = Url::parse(file_ref).map_err(|_| permanent("not a MAX file URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(permanent("not a MAX file URL"));
        }
        // MAX's file URLs are signed links on its CDN: no token goes with them.
        let response = self
            .api
            .client
            .get(url)
            .send()
            .await
            .map_err(network_error)?;
        let status = response.status();
        if !status.is_success() {
            let reason = format!("downloading failed: HTTP {}", status.as_u16());
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                transient(reason)
            } else {
                permanent(reason)
            });
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|value: &reqwest::header::HeaderValue| value.to_str().ok())
                .map(str::to_string)
        };
        let mime_type = header(reqwest::header::CONTENT_TYPE);
        let file_name = header(reqwest::header::CONTENT_DISPOSITION).and_then(|disposition| {
            let (_, name) = disposition.split_once("filename=")?;
            Some(name.trim_matches(['"', ' ']).to_string()).filter(|n| !n.is_empty())
        });
        let bytes = read_bounded(response, MAX_DOWNLOAD).await?;
        Ok(Media {
            bytes,
            mime_type,
            file_name,
        })
    }

    async fn set_webhook(&self, url: Option<&str>) -> Result<(), SendError> {
        match url {
            Some(url) => {
                let secret = self.webhook_secret.as_ref().ok_or_else(|| {
                    permanent("set credentials.webhook_secret before registering a webhook")
                })?;
                let body = json!({"url": url, "update_types": UPDATE_TYPES, "secret": secret});
                let answer = self
                    .call(Method::POST, "subscriptions", &[], Some(&body))
                    .await?;
                simple_result(&answer)
            }
            None => {
                let answer = self.call(Method::GET, "subscriptions", &[], None).await?;
                let urls: Vec<String> = answer
                    .get("subscriptions")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|s| s.get("url").and_then(Value::as_str).map(str::to_string))
                    .collect();
                for url in urls {
                    let answer = self
                        .call(Method::DELETE, "subscriptions", &[("url", url)], None)
                        .await?;
                    simple_result(&answer)?;
                }
                Ok(())
            }
        }
    }

    async fn answer_callback(&self, callback_id: &str) -> Result<(), SendError> {
        // An empty answer only stops the button's spinner: no notification, no edit.
        let answer = self
            .call(
                Method::POST,
                "answers",
                &[("callback_id", callback_id.to_string())],
                Some(&json!({})),
            )
            .await?;
        simple_result(&answer)
    }

    async fn health(&self) -> Health {
        match self.api.call(Method::GET, "me", &[], None, None).await {
            Ok(_) => {}
            Err(CallError::Status {
                status: 401,
                message,
                ..
            }) => return Health::InvalidToken(message),
            Err(CallError::Status {
                status: 429,
                message,
                ..
            }) => return Health::RateLimited(message),
            Err(err) => return Health::Failing(err.into_send_error().to_string()),
        }
        if self.long_poll {
            return Health::Ok;
        }
        match self.call(Method::GET, "subscriptions", &[], None).await {
            Ok(answer) => {
                let subscribed = answer
                    .get("subscriptions")
                    .and_then(Value::as_array)
                    .is_some_and(|list| !list.is_empty());
                if subscribed {
                    Health::Ok
                } else {
                    Health::WebhookNotSet("the bot has no webhook subscription".into())
                }
            }
            Err(err) => Health::of_error(&err),
        }
    }
}

/// `SimpleQueryResult`: `{"success": false, "message"}` is a refusal.
fn simple_result(answer: &Value) -> Result<(), SendError> {
    match answer.get("success").and_then(Value::as_bool) {
        Some(false) => Err(permanent(format!(
            "MAX refused: {}",
            answer
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no reason given")
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn channel() -> MaxChannel {
        MaxChannel::from_channel(
            Some(&json!({"token": "tok-9f8e7d", "webhook_secret": "s3cret_-X"})),
            &json!({}),
            &Url::parse("http://127.0.0.1:9/").unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn configuration_is_checked() {
        let base = Url::parse("http://127.0.0.1:9/").unwrap();
        for bad in [
            json!({}),
            json!({"token": ""}),
            json!({"token": "t", "webhook_secret": "abc"}),
            json!({"token": "t", "webhook_secret": "has space"}),
        ] {
            assert!(
                MaxChannel::from_channel(Some(&bad), &json!({}), &base).is_err(),
                "{bad}"
            );
        }
        let debug = format!("{:?}", channel());
        assert!(
            !debug.contains("tok-9f8e7d") && !debug.contains("s3cret"),
            "{debug}"
        );
    }

    #[test]
    fn webhook_checks_the_secret_header_first() {
        let body = br#"{"update_type":"message_created","timestamp":1,"message":{"recipient":{"chat_id":1,"chat_type":"dialog"},"timestamp":1,"body":{"mid":"m","seq":1,"text":"hi"}}}"#;
        let request = |secret: Option<&str>, body: &'static [u8]| {
            let headers = secret.map(|s| (SECRET_HEADER.to_string(), s.to_string()));
            channel().webhook(&WebhookRequest::new("POST", "", headers, body))
        };
        assert_eq!(request(None, body).unwrap_err(), WebhookError::Unauthorized);
        assert_eq!(
            request(Some("wrong"), body).unwrap_err(),
            WebhookError::Unauthorized
        );
        assert_eq!(
            request(Some("wrong"), b"junk").unwrap_err(),
            WebhookError::Unauthorized
        );
        assert!(matches!(
            request(Some("s3cret_-X"), b"junk"),
            Err(WebhookError::Malformed(_))
        ));
        let WebhookReply::Updates { updates, ack_body } = request(Some("s3cret_-X"), body).unwrap()
        else {
            panic!("expected updates");
        };
        assert_eq!((updates.len(), ack_body), (1, ""));
    }
}
