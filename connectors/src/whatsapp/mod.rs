//! WhatsApp Business through Meta's Cloud API (Graph API v23.0; the contract is Meta's OpenAPI,
//! a subset of which the sandbox keeps in `sandbox/specs/whatsapp/`).
//!
//! Credentials (a JSON object, stored encrypted):
//! - `access_token`: a system-user or business token, sent as `Authorization: Bearer`;
//! - `phone_number_id`: the number messages are sent from (the id, not the phone number);
//! - `app_secret`: the Meta app's secret, the HMAC key of `X-Hub-Signature-256`;
//! - `verify_token`: chosen by us, typed into the app dashboard for the GET handshake;
//! - `waba_id` (optional): the WhatsApp Business Account, for [`set_webhook`].
//!
//! Settings: `api_version` (default `v23.0`), `list_button_label` (the label of the button
//! that opens a list of more than three choices, default `Options`).
//!
//! Outbound rules (24-hour window, how buttons, media and templates map) are in [`outbound`];
//! inbound mapping in [`webhook`]; error classification in [`errors`].
//!
//! There is no long poll: [`poll`](ProviderChannel::poll) answers a permanent error. Meta
//! delivers only by webhook, to the callback URL configured in the app dashboard.
//!
//! [`set_webhook`]: WhatsappChannel::set_webhook

pub mod errors;
pub mod outbound;
pub mod webhook;

use async_trait::async_trait;
use chrono::Utc;
use reqwest::Url;
use reqwest::header::AUTHORIZATION;
use serde::Deserialize;
use serde_json::Value;

use crate::provider::{
    ConfigError, Health, Media, Polled, ProviderChannel, WebhookError, WebhookReply, WebhookRequest,
};
use crate::rest_client::{self, MAX_API_BODY, MEDIA_TIMEOUT, TIMEOUT};
use crate::{OutboundAttachment, OutboundChannel, OutboundMessage, SendError, SendReceipt};

/// The Graph API version used when the settings name none.
pub const DEFAULT_API_VERSION: &str = "v23.0";
/// Cloud API media are at most 100 MB (documents); nothing larger is downloaded.
pub const MAX_MEDIA_BYTES: usize = 100 * 1024 * 1024;

/// One connected WhatsApp number.
#[derive(Clone)]
pub struct WhatsappChannel {
    client: reqwest::Client,
    api_base: Url,
    api_version: String,
    access_token: String,
    phone_number_id: String,
    app_secret: String,
    verify_token: String,
    waba_id: Option<String>,
    list_button_label: String,
}

// Written by hand so that no secret reaches a log.
impl std::fmt::Debug for WhatsappChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhatsappChannel")
            .field("api_base", &self.api_base.as_str())
            .field("api_version", &self.api_version)
            .field("phone_number_id", &self.phone_number_id)
            .field("waba_id", &self.waba_id)
            .field("access_token", &"***")
            .field("app_secret", &"***")
            .field("verify_token", &"***")
            .finish()
    }
}

impl WhatsappChannel {
    /// Builds the channel from its stored credentials and settings (see the module doc for the
    /// keys); `api_base` is `https://graph.facebook.com/` in production, from the server's
    /// configuration.
    pub fn from_channel(
        credentials: Option<&Value>,
        settings: &Value,
        api_base: &Url,
    ) -> Result<WhatsappChannel, ConfigError> {
        let credentials =
            credentials.ok_or_else(|| ConfigError("WhatsApp needs credentials".into()))?;
        let required = |key: &str| -> Result<String, ConfigError> {
            credentials
                .get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|value| !value.is_empty())
                .map(str::to_string)
                .ok_or_else(|| ConfigError(format!("credentials.{key} is required")))
        };
        let phone_number_id = required("phone_number_id")?;
        let waba_id = credentials
            .get("waba_id")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_string);
        for (key, id) in [
            ("phone_number_id", Some(&phone_number_id)),
            ("waba_id", waba_id.as_ref()),
        ] {
            if id.is_some_and(|id| !id.chars().all(|c| c.is_ascii_digit())) {
                return Err(ConfigError(format!("credentials.{key} must be digits")));
            }
        }
        let api_version = match settings.get("api_version") {
            None | Some(Value::Null) => DEFAULT_API_VERSION.to_string(),
            Some(Value::String(version)) if is_version(version) => version.clone(),
            Some(_) => {
                return Err(ConfigError(
                    "settings.api_version must look like v23.0".into(),
                ));
            }
        };
        let list_button_label = settings
            .get("list_button_label")
            .and_then(Value::as_str)
            .filter(|label| !label.trim().is_empty())
            .unwrap_or("Options")
            .to_string();
        if api_base.cannot_be_a_base() || !matches!(api_base.scheme(), "http" | "https") {
            return Err(ConfigError(
                "the WhatsApp API base URL must be http(s)".into(),
            ));
        }
        Ok(WhatsappChannel {
            client: rest_client::client().map_err(ConfigError)?,
            api_base: api_base.clone(),
            api_version,
            access_token: required("access_token")?,
            phone_number_id,
            app_secret: required("app_secret")?,
            verify_token: required("verify_token")?,
            waba_id,
            list_button_label,
        })
    }

    pub fn phone_number_id(&self) -> &str {
        &self.phone_number_id
    }

    /// Sends one message: refused up front outside the 24-hour window unless it is a template;
    /// attachments are uploaded first and sent as media messages by id. The receipt carries the
    /// wamid of the last message sent (the one with the text, when there is text).
    ///
    /// The Cloud API has no idempotency key: a send that failed half-way (an attachment out, the
    /// text not) sends the attachment again when retried.
    pub async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        outbound::check_window(message, Utc::now())?;
        let bodies = match &message.template {
            Some(template) => vec![outbound::template_body(message, template)],
            None => {
                let mut media_ids = Vec::with_capacity(message.attachments.len());
                for attachment in &message.attachments {
                    media_ids.push(self.upload(attachment).await?);
                }
                outbound::free_form_bodies(message, &media_ids, &self.list_button_label)?
            }
        };
        let mut receipt = SendReceipt::default();
        for body in bodies {
            let answer: SendAnswer = self
                .call(
                    self.client
                        .post(self.url(&[&self.phone_number_id, "messages"])?)
                        .timeout(TIMEOUT)
                        .json(&body),
                )
                .await?;
            receipt.provider_message_id = answer.messages.into_iter().next().map(|m| m.id);
        }
        Ok(receipt)
    }

    /// `POST /{phone-number-id}/media` (multipart): the media id to send by.
    async fn upload(&self, attachment: &OutboundAttachment) -> Result<String, SendError> {
        let file = reqwest::multipart::Part::bytes(attachment.bytes.to_vec())
            .file_name(attachment.file_name.clone())
            .mime_str(&attachment.mime_type)
            .map_err(|_| SendError::Permanent {
                reason: format!("invalid MIME type {:?}", attachment.mime_type),
            })?;
        let form = reqwest::multipart::Form::new()
            .text("messaging_product", "whatsapp")
            .text("type", attachment.mime_type.clone())
            .part("file", file);
        let answer: IdAnswer = self
            .call(
                self.client
                    .post(self.url(&[&self.phone_number_id, "media"])?)
                    .timeout(MEDIA_TIMEOUT)
                    .multipart(form),
            )
            .await?;
        Ok(answer.id)
    }

    /// The bytes of a received media: `GET /{media-id}` gives a short-lived URL, fetched with the
    /// same token.
    pub async fn download(&self, media_id: &str) -> Result<Media, SendError> {
        let info: MediaInfo = self
            .call(self.client.get(self.url(&[media_id])?).timeout(TIMEOUT))
            .await?;
        let url = Url::parse(&info.url).map_err(|_| SendError::Permanent {
            reason: "the media URL Meta gave is not a URL".into(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SendError::Permanent {
                reason: "the media URL Meta gave is not http(s)".into(),
            });
        }
        let answer = rest_client::fetch(
            self.authorized(self.client.get(url).timeout(MEDIA_TIMEOUT)),
            MAX_MEDIA_BYTES,
        )
        .await?;
        if !answer.status.is_success() {
            return Err(errors::classify(
                answer.status,
                answer.retry_after,
                &answer.body,
            ));
        }
        Ok(Media {
            bytes: answer.body,
            mime_type: info.mime_type.or(answer.content_type),
            file_name: None,
        })
    }

    /// With a `waba_id`: `POST /{waba-id}/subscribed_apps` with `override_callback_uri` and our
    /// verify token (Meta then performs the GET handshake against `url` before it answers, so
    /// our endpoint must already answer it), or `DELETE` of the subscription for `None`.
    /// Without one there is nothing to call: the callback URL and the subscription are set in
    /// the Meta app dashboard, by hand, and this answers `Ok`.
    pub async fn set_webhook(&self, url: Option<&str>) -> Result<(), SendError> {
        let Some(waba_id) = &self.waba_id else {
            return Ok(());
        };
        let endpoint = self.url(&[waba_id, "subscribed_apps"])?;
        let request = match url {
            Some(url) => self
                .client
                .post(endpoint)
                .timeout(TIMEOUT)
                .json(&serde_json::json!({
                    "override_callback_uri": url,
                    "verify_token": self.verify_token,
                })),
            None => self.client.delete(endpoint).timeout(TIMEOUT),
        };
        let answer: SuccessAnswer = self.call(request).await?;
        if answer.success {
            Ok(())
        } else {
            Err(SendError::Permanent {
                reason: "Meta did not confirm the webhook subscription".into(),
            })
        }
    }

    /// `GET /{phone-number-id}`: the token works and the number is ours; with a `waba_id`,
    /// also `GET /{waba-id}/subscribed_apps`: without a subscribed app Meta delivers nothing.
    pub async fn health(&self) -> Health {
        if let Err(health) = self.probe(&[&self.phone_number_id]).await {
            return health;
        }
        let Some(waba_id) = &self.waba_id else {
            return Health::Ok;
        };
        match self.probe(&[waba_id, "subscribed_apps"]).await {
            Ok(answer)
                if answer["data"]
                    .as_array()
                    .is_some_and(|apps| !apps.is_empty()) =>
            {
                Health::Ok
            }
            Ok(_) => Health::WebhookNotSet(
                "no app is subscribed to the WhatsApp Business Account's webhooks".into(),
            ),
            Err(health) => health,
        }
    }

    /// A GET for [`health`](Self::health): the answer, or what its failure says of the account.
    async fn probe(&self, segments: &[&str]) -> Result<Value, Health> {
        let url = self
            .url(segments)
            .map_err(|err| Health::Failing(err.to_string()))?;
        let request = self.authorized(self.client.get(url).timeout(TIMEOUT));
        let answer = rest_client::fetch(request, MAX_API_BODY)
            .await
            .map_err(|err| Health::of_error(&err))?;
        if answer.status.is_success() {
            return serde_json::from_slice(&answer.body)
                .map_err(|err| Health::Failing(format!("unexpected answer: {err}")));
        }
        let Some(error) = errors::GraphError::parse(&answer.body) else {
            return Err(Health::Failing(format!("HTTP {}", answer.status.as_u16())));
        };
        Err(if error.is_invalid_token() {
            Health::InvalidToken(error.describe())
        } else if error.is_rate_limit() || answer.status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Health::RateLimited(error.describe())
        } else {
            Health::Failing(error.describe())
        })
    }

    /// Verifies and parses a webhook request (see [`webhook`]).
    pub fn webhook(&self, request: &WebhookRequest<'_>) -> Result<WebhookReply, WebhookError> {
        match request.method {
            "GET" => webhook::handshake(request, &self.verify_token),
            "POST" => {
                webhook::verify_signature(request, &self.app_secret)?;
                Ok(WebhookReply::Updates {
                    updates: webhook::parse(request.body, &self.phone_number_id)?,
                    ack_body: "",
                })
            }
            _ => Err(WebhookError::MethodNotAllowed),
        }
    }

    fn url(&self, segments: &[&str]) -> Result<Url, SendError> {
        let mut all = vec![self.api_version.as_str()];
        all.extend_from_slice(segments);
        rest_client::endpoint(&self.api_base, &all)
            .map_err(|reason| SendError::Permanent { reason })
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.header(AUTHORIZATION, format!("Bearer {}", self.access_token))
    }

    /// One Graph API call (the caller sets its timeout): the JSON answer on 2xx, the
    /// classified error otherwise.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, SendError> {
        let request = self.authorized(request);
        let answer = rest_client::fetch(request, MAX_API_BODY).await?;
        if !answer.status.is_success() {
            return Err(errors::classify(
                answer.status,
                answer.retry_after,
                &answer.body,
            ));
        }
        serde_json::from_slice(&answer.body).map_err(|err| SendError::Transient {
            retry_after: None,
            reason: format!("unexpected answer from the Graph API: {err}"),
        })
    }
}

fn is_version(version: &str) -> bool {
    version
        .strip_prefix('v')
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(major, minor)| {
            !major.is_empty()
                && !minor.is_empty()
                && major.chars().all(|c| c.is_ascii_digit())
                && minor.chars().all(|c| c.is_ascii_digit())
        })
}

#[derive(Deserialize)]
struct SendAnswer {
    #[serde(default)]
    messages: Vec<IdAnswer>,
}

#[derive(Deserialize)]
struct IdAnswer {
    id: String,
}

#[derive(Deserialize)]
struct SuccessAnswer {
    #[serde(default)]
    success: bool,
}

#[derive(Deserialize)]
struct MediaInfo {
    url: String,
    mime_type: Option<String>,
}

#[async_trait]
impl OutboundChannel for WhatsappChannel {
    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        WhatsappChannel::send(self, message).await
    }
}

#[async_trait]
impl ProviderChannel for WhatsappChannel {
    fn webhook(&self, request: &WebhookRequest<'_>) -> Result<WebhookReply, WebhookError> {
        WhatsappChannel::webhook(self, request)
    }

    async fn poll(&self, _cursor: Option<&str>) -> Result<Polled, SendError> {
        Err(SendError::Permanent {
            reason: "WhatsApp delivers by webhook only; there is no long poll".into(),
        })
    }

    async fn download(&self, file_ref: &str) -> Result<Media, SendError> {
        WhatsappChannel::download(self, file_ref).await
    }

    async fn set_webhook(&self, url: Option<&str>) -> Result<(), SendError> {
        WhatsappChannel::set_webhook(self, url).await
    }

    /// WhatsApp has no acknowledgement of a pressed button.
    async fn answer_callback(&self, _callback_id: &str) -> Result<(), SendError> {
        Ok(())
    }

    async fn health(&self) -> Health {
        WhatsappChannel::health(self).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn base() -> Url {
        Url::parse("https://graph.example/").unwrap()
    }

    fn credentials() -> Value {
        json!({"access_token": "EAAG-secret", "phone_number_id": "106540352242922",
               "app_secret": "app-secret", "verify_token": "verify-me"})
    }

    #[test]
    fn builds_from_credentials_and_hides_the_secrets() {
        let channel =
            WhatsappChannel::from_channel(Some(&credentials()), &json!({}), &base()).unwrap();
        assert_eq!(channel.api_version, "v23.0");
        let debug = format!("{channel:?}");
        for secret in ["EAAG-secret", "app-secret", "verify-me"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert_eq!(
            channel
                .url(&["106540352242922", "messages"])
                .unwrap()
                .as_str(),
            "https://graph.example/v23.0/106540352242922/messages"
        );
    }

    #[test]
    fn refuses_missing_or_odd_configuration() {
        let err = |credentials: Option<&Value>, settings: Value| {
            WhatsappChannel::from_channel(credentials, &settings, &base())
                .unwrap_err()
                .0
        };
        assert_eq!(err(None, json!({})), "WhatsApp needs credentials");
        for key in [
            "access_token",
            "phone_number_id",
            "app_secret",
            "verify_token",
        ] {
            let mut c = credentials();
            c.as_object_mut().unwrap().remove(key);
            assert_eq!(
                err(Some(&c), json!({})),
                format!("credentials.{key} is required")
            );
        }
        let mut c = credentials();
        c["phone_number_id"] = json!("../me");
        assert_eq!(
            err(Some(&c), json!({})),
            "credentials.phone_number_id must be digits"
        );
        assert!(err(Some(&credentials()), json!({"api_version": "23"})).contains("api_version"));
        let channel = WhatsappChannel::from_channel(
            Some(&credentials()),
            &json!({"api_version": "v24.0"}),
            &base(),
        )
        .unwrap();
        assert_eq!(channel.api_version, "v24.0");
    }
}
