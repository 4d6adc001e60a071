//! Viber through its REST bot API (`https://chatapi.viber.com/pa/…`). There is no official
//! machine-readable spec; the sandbox keeps the hand-written samples the connector was built
//! against in `sandbox/specs/viber/`.
//!
//! Credentials: `auth_token`, sent as `X-Viber-Auth-Token` and the HMAC key of
//! `X-Viber-Content-Signature`.
//!
//! Settings: `sender_name` (required, at most 28 characters: Viber shows it on every message),
//! `sender_avatar` (an image URL), `min_api_version` (default 1). Outgoing attachments go as
//! signed links to omnihub's own public address, which Viber fetches (see [`outbound`]).
//!
//! Viber answers HTTP 200 with a status code even when it refuses ([`status`]); callbacks are
//! mapped in [`webhook`]. There is no long poll: [`poll`](ProviderChannel::poll) answers a
//! permanent error.

pub mod outbound;
pub mod status;
pub mod webhook;

use async_trait::async_trait;
use reqwest::Url;
use serde_json::{Value, json};

use crate::provider::{
    ConfigError, Health, Media, Polled, ProviderChannel, WebhookError, WebhookReply, WebhookRequest,
};
use crate::rest_client::{self, MAX_API_BODY, MEDIA_TIMEOUT, TIMEOUT};
use crate::{OutboundChannel, OutboundMessage, SendError, SendReceipt};
use outbound::{MAX_SENDER_NAME, SenderSettings};

/// Viber's own size limit on files sent to bots.
pub const MAX_MEDIA_BYTES: usize = 200 * 1024 * 1024;
/// The callbacks asked for on `set_webhook` (`message` and `webhook` always come).
pub const EVENT_TYPES: [&str; 6] = [
    "delivered",
    "seen",
    "failed",
    "subscribed",
    "unsubscribed",
    "conversation_started",
];

/// One connected Viber bot.
#[derive(Clone)]
pub struct ViberChannel {
    client: reqwest::Client,
    api_base: Url,
    auth_token: String,
    sender: SenderSettings,
}

// Written by hand so that the token never reaches a log.
impl std::fmt::Debug for ViberChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViberChannel")
            .field("api_base", &self.api_base.as_str())
            .field("sender", &self.sender)
            .field("auth_token", &"***")
            .finish()
    }
}

impl ViberChannel {
    /// Builds the channel from its stored credentials and settings (see the module doc);
    /// `api_base` is `https://chatapi.viber.com/` in production, from the server's configuration.
    pub fn from_channel(
        credentials: Option<&Value>,
        settings: &Value,
        api_base: &Url,
    ) -> Result<ViberChannel, ConfigError> {
        let auth_token = credentials
            .and_then(|c| c.get("auth_token"))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| ConfigError("credentials.auth_token is required".into()))?
            .to_string();
        let name = settings
            .get("sender_name")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .ok_or_else(|| ConfigError("settings.sender_name is required".into()))?;
        if name.chars().count() > MAX_SENDER_NAME {
            return Err(ConfigError(format!(
                "settings.sender_name is at most {MAX_SENDER_NAME} characters"
            )));
        }
        let avatar = settings
            .get("sender_avatar")
            .and_then(Value::as_str)
            .filter(|avatar| !avatar.is_empty())
            .map(str::to_string);
        let min_api_version = match settings.get("min_api_version") {
            None | Some(Value::Null) => 1,
            Some(version) => version
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .filter(|v| *v >= 1)
                .ok_or_else(|| {
                    ConfigError("settings.min_api_version must be a positive integer".into())
                })?,
        };
        if api_base.cannot_be_a_base() || !matches!(api_base.scheme(), "http" | "https") {
            return Err(ConfigError("the Viber API base URL must be http(s)".into()));
        }
        Ok(ViberChannel {
            client: rest_client::client().map_err(ConfigError)?,
            api_base: api_base.clone(),
            auth_token,
            sender: SenderSettings {
                name: name.to_string(),
                avatar,
                min_api_version,
            },
        })
    }

    /// Sends one message (maybe as several Viber messages, see [`outbound`]); the receipt
    /// carries the `message_token` of the last one, which carries the keyboard. Viber has no
    /// idempotency key.
    pub async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let mut receipt = SendReceipt::default();
        for body in outbound::bodies(message, &self.sender)? {
            let answer = self.call("send_message", &body).await?;
            receipt.provider_message_id = answer.message_token.map(|token| token.to_string());
        }
        Ok(receipt)
    }

    /// The bytes behind a media URL of a callback. Viber's media URLs are public links on its
    /// own storage: the auth token is not sent with them.
    pub async fn download(&self, url: &str) -> Result<Media, SendError> {
        let url = Url::parse(url)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .ok_or_else(|| SendError::Permanent {
                reason: "a Viber media reference must be an http(s) URL".into(),
            })?;
        let file_name = url
            .path_segments()
            .and_then(|mut segments| segments.next_back())
            .filter(|name| !name.is_empty())
            .map(str::to_string);
        let answer =
            rest_client::fetch(self.client.get(url).timeout(MEDIA_TIMEOUT), MAX_MEDIA_BYTES)
                .await?;
        if !answer.status.is_success() {
            let reason = format!("HTTP {} fetching the media", answer.status.as_u16());
            return Err(if answer.status.is_server_error() {
                SendError::Transient {
                    retry_after: answer.retry_after,
                    reason,
                }
            } else {
                SendError::Permanent { reason }
            });
        }
        Ok(Media {
            bytes: answer.body,
            mime_type: answer.content_type,
            file_name,
        })
    }

    /// `POST /pa/set_webhook`: Viber calls `url` with a signed `webhook` event before it
    /// answers, so our endpoint must already accept it. `None` sets the URL to `""`, which
    /// removes the webhook.
    pub async fn set_webhook(&self, url: Option<&str>) -> Result<(), SendError> {
        let body = match url {
            Some(url) => json!({"url": url, "event_types": EVENT_TYPES,
                "send_name": true, "send_photo": true}),
            None => json!({"url": ""}),
        };
        self.call("set_webhook", &body).await.map(|_| ())
    }

    /// `POST /pa/get_account_info`: the token works and a webhook is set.
    pub async fn health(&self) -> Health {
        let answer = match self.post("get_account_info", &json!({})).await {
            Ok(answer) => answer,
            Err(err) => return Health::of_error(&err),
        };
        let info = match status::check(answer.status, &answer.body) {
            Ok(info) => info,
            Err(err) => {
                let code = serde_json::from_slice::<status::Answer>(&answer.body)
                    .map(|answer| answer.status)
                    .ok();
                return match code {
                    Some(status::INVALID_AUTH_TOKEN) => Health::InvalidToken(err.to_string()),
                    Some(status::TOO_MANY_REQUESTS) => Health::RateLimited(err.to_string()),
                    _ => Health::Failing(err.to_string()),
                };
            }
        };
        if info.webhook.as_deref().unwrap_or_default().is_empty() {
            Health::WebhookNotSet("Viber has no webhook for this bot".into())
        } else {
            Health::Ok
        }
    }

    /// Verifies and parses a callback (see [`webhook`]).
    pub fn webhook(&self, request: &WebhookRequest<'_>) -> Result<WebhookReply, WebhookError> {
        if request.method != "POST" {
            return Err(WebhookError::MethodNotAllowed);
        }
        webhook::verify_signature(request, &self.auth_token)?;
        Ok(WebhookReply::Updates {
            updates: webhook::parse(request.body)?,
            ack_body: "",
        })
    }

    /// One API call: the answer for status 0, the classified refusal otherwise.
    async fn call(&self, method: &str, body: &Value) -> Result<status::Answer, SendError> {
        let answer = self.post(method, body).await?;
        status::check(answer.status, &answer.body)
    }

    async fn post(&self, method: &str, body: &Value) -> Result<rest_client::Answer, SendError> {
        let url = rest_client::endpoint(&self.api_base, &["pa", method])
            .map_err(|reason| SendError::Permanent { reason })?;
        let request = self
            .client
            .post(url)
            .timeout(TIMEOUT)
            .header("X-Viber-Auth-Token", &self.auth_token)
            .json(body);
        rest_client::fetch(request, MAX_API_BODY).await
    }
}

#[async_trait]
impl OutboundChannel for ViberChannel {
    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        ViberChannel::send(self, message).await
    }
}

#[async_trait]
impl ProviderChannel for ViberChannel {
    fn webhook(&self, request: &WebhookRequest<'_>) -> Result<WebhookReply, WebhookError> {
        ViberChannel::webhook(self, request)
    }

    async fn poll(&self, _cursor: Option<&str>) -> Result<Polled, SendError> {
        Err(SendError::Permanent {
            reason: "Viber delivers by webhook only; there is no long poll".into(),
        })
    }

    async fn download(&self, file_ref: &str) -> Result<Media, SendError> {
        ViberChannel::download(self, file_ref).await
    }

    async fn set_webhook(&self, url: Option<&str>) -> Result<(), SendError> {
        ViberChannel::set_webhook(self, url).await
    }

    /// Viber has no acknowledgement of a pressed button.
    async fn answer_callback(&self, _callback_id: &str) -> Result<(), SendError> {
        Ok(())
    }

    async fn health(&self) -> Health {
        ViberChannel::health(self).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn base() -> Url {
        Url::parse("https://chatapi.example/").unwrap()
    }

    #[test]
    fn configuration_is_checked_and_the_token_hidden() {
        let credentials =
            json!({"auth_token": "445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im9"});
        let channel = ViberChannel::from_channel(
            Some(&credentials),
            &json!({"sender_name": "Shop"}),
            &base(),
        )
        .unwrap();
        assert!(!format!("{channel:?}").contains("445da6az"));
        assert_eq!(channel.sender.min_api_version, 1);
        let err = |credentials: Option<&Value>, settings: Value| {
            ViberChannel::from_channel(credentials, &settings, &base())
                .unwrap_err()
                .0
        };
        assert_eq!(
            err(None, json!({"sender_name": "Shop"})),
            "credentials.auth_token is required"
        );
        assert_eq!(
            err(Some(&credentials), json!({})),
            "settings.sender_name is required"
        );
        assert!(err(Some(&credentials), json!({"sender_name": "x".repeat(29)})).contains("28"));
        assert!(
            err(
                Some(&credentials),
                json!({"sender_name": "S", "min_api_version": 0})
            )
            .contains("min_api_version")
        );
    }
}
