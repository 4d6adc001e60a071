//! Telegram bots through the Bot API: one [`TelegramChannel`] per connected bot.
//!
//! Built with [`TelegramChannel::from_channel`] from the channel's stored values:
//!
//! | where | key | |
//! |---|---|---|
//! | credentials | `bot_token` | required: the token BotFather gave, `<bot id>:<secret>` |
//! | credentials | `webhook_secret` | the `secret_token` given to `setWebhook` (1–256 characters of `A-Z a-z 0-9 _ -`); Telegram sends it back in the `X-Telegram-Bot-Api-Secret-Token` header of every webhook request. Without it every webhook request is refused and `set_webhook` refuses to register one |
//! | settings | `updates` | `"webhook"` (default) or `"long_poll"`: how updates arrive; only [`health`](ProviderChannel::health) reads it (a webhook must be set, or must not be) |
//!
//! and the API base URL from the server's configuration (`https://api.telegram.org`, or a
//! local Bot API server, or the sandbox): methods are called at `{api_base}/bot<token>/<method>`
//! and files fetched from `{api_base}/file/bot<token>/<file_path>`.
//!
//! Calls go through `frankenstein`'s reqwest client, except two it cannot make: uploads
//! (frankenstein uploads only from file paths, and our files are bytes in memory) and file
//! downloads (not part of its API); those use reqwest directly with the same error handling.
//! `getUpdates` also goes through frankenstein's raw `request`, as JSON values, so that one
//! update frankenstein cannot parse does not block every update after it.
//!
//! The bot token is part of every URL: it never appears in `Debug` output or in errors
//! (reqwest errors are stripped of their URL).
//!
//! Telegram numbers messages per chat, so omnihub's id of a Telegram message (inbound, in a
//! receipt, in `reply_to`) is `<chat id>:<message id>`.
//!
//! Text goes as plain text (no `parse_mode`), so nothing a customer or operator types is read as
//! markup. Telegram has neither message templates nor a reply window, so `template` and
//! `last_inbound_at` of an [`OutboundMessage`] play no part here.
//!
//! Sending is not atomic when a message needs several calls (text longer than 4096
//! characters, several files): Telegram has no idempotency key, so once the first call went
//! through, later calls are retried in place on short rate-limit waits, and a later failure is
//! reported as permanent ("only n of m parts were delivered") instead of transient, because a
//! retry of the whole message would repeat the parts already delivered.

mod config;
mod errors;
mod inbound;
mod outbound;

use std::time::Duration;

use async_trait::async_trait;
use frankenstein::AsyncTelegramApi;
use frankenstein::client_reqwest::Bot;
use frankenstein::methods::{
    AnswerCallbackQueryParams, DeleteWebhookParams, GetFileParams, GetUpdatesParams,
    SendMessageParams, SetWebhookParams,
};
use frankenstein::response::MethodResponse;
use frankenstein::types::{AllowedUpdate, ChatId};

pub use config::UpdateDelivery;
pub use inbound::SECRET_HEADER;

use crate::provider::{
    ConfigError, Health, Media, Polled, ProviderChannel, WebhookError, WebhookReply, WebhookRequest,
};
use crate::{OutboundChannel, OutboundMessage, SendError, SendReceipt};
use config::TelegramConfig;
use errors::{ApiRefusal, CallError};
use outbound::{Part, PlannedPart};

/// An ordinary Bot API call must finish within this.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// An upload of up to 50 MB, or a download of up to 20 MB, must finish within this.
pub const FILE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long `getUpdates` waits for an update before answering with none.
pub const DEFAULT_POLL_TIMEOUT: Duration = Duration::from_secs(25);
/// Bots can download files of at most 20 MB; a larger answer is not read.
pub const MAX_DOWNLOAD_BYTES: usize = 20 * 1024 * 1024;
/// Telegram keeps the last webhook delivery error forever; an older one no longer means the
/// webhook is failing.
const RECENT_WEBHOOK_ERROR: Duration = Duration::from_secs(3600);
/// A later part of a multi-part send waits in place at most this long for a rate limit.
const MAX_IN_PLACE_WAIT: Duration = Duration::from_secs(10);
const IN_PLACE_ATTEMPTS: usize = 3;
/// Only this much of an error answer is read.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// A sent message as JSON is far smaller than this.
const MAX_ANSWER: usize = 1024 * 1024;

/// One connected Telegram bot.
pub struct TelegramChannel {
    /// Ordinary calls.
    bot: Bot,
    /// `getUpdates`, whose answer takes up to the poll timeout: no overall client timeout,
    /// the call is bounded by `tokio::time::timeout` instead.
    poll_bot: Bot,
    /// Uploads and downloads.
    http: reqwest::Client,
    /// `{api_base}/bot<token>`: secret.
    method_base: String,
    /// `{api_base}/file/bot<token>`: secret.
    file_base: String,
    webhook_secret: Option<String>,
    delivery: UpdateDelivery,
    poll_timeout: Duration,
}

// Written by hand: the URLs and the secret must never reach a log.
impl std::fmt::Debug for TelegramChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramChannel")
            .field("bot_token", &"***")
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "***"),
            )
            .field("delivery", &self.delivery)
            .field("poll_timeout", &self.poll_timeout)
            .finish()
    }
}

impl TelegramChannel {
    /// The channel of one bot, from its stored credentials and settings (see the module doc
    /// for the keys) and the Bot API base URL of the server's configuration.
    pub fn from_channel(
        credentials: Option<&serde_json::Value>,
        settings: &serde_json::Value,
        api_base: &reqwest::Url,
    ) -> Result<TelegramChannel, ConfigError> {
        let config = TelegramConfig::parse(credentials, settings)?;
        if !matches!(api_base.scheme(), "http" | "https") || !api_base.has_host() {
            return Err(ConfigError(
                "the Telegram API base URL must be an http:// or https:// URL".into(),
            ));
        }
        let base = api_base.as_str().trim_end_matches('/');
        let token = config.token.as_str();
        let method_base = format!("{base}/bot{token}");
        let file_base = format!("{base}/file/bot{token}");
        let client = |timeout: Option<Duration>| {
            let builder = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none());
            let builder = match timeout {
                Some(timeout) => builder.timeout(timeout),
                None => builder,
            };
            builder
                .build()
                .map_err(|error| ConfigError(format!("HTTP client: {error}")))
        };
        let http = client(Some(CALL_TIMEOUT))?;
        Ok(TelegramChannel {
            bot: Bot::builder()
                .api_url(method_base.clone())
                .client(http.clone())
                .build(),
            poll_bot: Bot::builder()
                .api_url(method_base.clone())
                .client(client(None)?)
                .build(),
            http,
            method_base,
            file_base,
            webhook_secret: config.webhook_secret,
            delivery: config.delivery,
            poll_timeout: DEFAULT_POLL_TIMEOUT,
        })
    }

    /// Makes `getUpdates` wait at most `timeout` (whole seconds, at least one) for an update;
    /// [`DEFAULT_POLL_TIMEOUT`] otherwise.
    pub fn with_poll_timeout(mut self, timeout: Duration) -> TelegramChannel {
        self.poll_timeout = Duration::from_secs(timeout.as_secs().max(1));
        self
    }

    /// How this bot's updates arrive (settings `updates`).
    pub fn delivery(&self) -> UpdateDelivery {
        self.delivery
    }

    async fn send_part(&self, chat: &ChatId, planned: &PlannedPart<'_>) -> Result<i32, SendError> {
        match &planned.part {
            Part::Text(text) => {
                let params = SendMessageParams::builder()
                    .chat_id(chat.clone())
                    .text(text.clone())
                    .maybe_reply_parameters(planned.reply_to.map(outbound::reply_parameters))
                    .maybe_reply_markup(planned.keyboard.clone().map(outbound::reply_markup))
                    .build();
                let sent = self
                    .bot
                    .send_message(&params)
                    .await
                    .map_err(|error| CallError::from(error).into_send_error())?;
                Ok(sent.result.message_id)
            }
            Part::File {
                attachment,
                as_photo,
                caption,
            } => {
                let (method, field) = if *as_photo {
                    ("sendPhoto", "photo")
                } else {
                    ("sendDocument", "document")
                };
                let chat = match chat {
                    ChatId::Integer(id) => id.to_string(),
                    ChatId::String(name) => name.clone(),
                };
                let mut form = reqwest::multipart::Form::new().text("chat_id", chat);
                if let Some(caption) = caption {
                    form = form.text("caption", caption.clone());
                }
                if let Some(reply_to) = planned.reply_to {
                    form = form.text(
                        "reply_parameters",
                        to_json(&outbound::reply_parameters(reply_to))?,
                    );
                }
                if let Some(keyboard) = &planned.keyboard {
                    form = form.text("reply_markup", to_json(keyboard)?);
                }
                let mut file = reqwest::multipart::Part::bytes(attachment.bytes.to_vec())
                    .file_name(attachment.file_name.clone());
                if is_plausible_mime(&attachment.mime_type) {
                    file =
                        file.mime_str(&attachment.mime_type)
                            .map_err(|_| SendError::Permanent {
                                reason: format!("invalid MIME type {:?}", attachment.mime_type),
                            })?;
                }
                form = form.part(field, file);
                let response = self
                    .http
                    .post(format!("{}/{method}", self.method_base))
                    .multipart(form)
                    .timeout(FILE_TIMEOUT)
                    .send()
                    .await
                    .map_err(|error| errors::transport(&error.without_url()))?;
                let status = response.status();
                let body = read_bounded(response, MAX_ANSWER).await?;
                if !status.is_success() {
                    return Err(ApiRefusal::from_body(status, &body).into_send_error());
                }
                serde_json::from_slice::<MethodResponse<serde_json::Value>>(&body)
                    .ok()
                    .and_then(|answer| answer.result.get("message_id")?.as_i64())
                    .and_then(|id| i32::try_from(id).ok())
                    .ok_or_else(|| SendError::Transient {
                        retry_after: None,
                        reason: format!("unreadable answer from Telegram to {method}"),
                    })
            }
        }
    }

    /// A part after the first: the message is already partly delivered, so short waits are
    /// taken here and a failure is final (see the module doc).
    async fn send_later_part(
        &self,
        chat: &ChatId,
        planned: &PlannedPart<'_>,
        index: usize,
        total: usize,
    ) -> Result<i32, SendError> {
        let mut attempt = 1;
        loop {
            let error = match self.send_part(chat, planned).await {
                Ok(id) => return Ok(id),
                Err(error) => error,
            };
            let wait = match &error {
                SendError::Transient { retry_after, .. } => {
                    retry_after.unwrap_or(Duration::from_secs(1))
                }
                SendError::Permanent { .. } | SendError::Blocked { .. } => Duration::MAX,
            };
            if attempt >= IN_PLACE_ATTEMPTS || wait > MAX_IN_PLACE_WAIT {
                let reason = format!(
                    "only {index} of {total} parts of the message were delivered: {}",
                    error.reason()
                );
                return Err(match error {
                    SendError::Blocked { .. } => SendError::Blocked { reason },
                    _ => SendError::Permanent { reason },
                });
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

#[async_trait]
impl OutboundChannel for TelegramChannel {
    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let chat = outbound::chat_id(&message.conversation)?;
        let parts = outbound::plan(message)?;
        let total = parts.len();
        let mut first = None;
        for (index, part) in parts.into_iter().enumerate() {
            let id = if index == 0 {
                self.send_part(&chat, &part).await?
            } else {
                self.send_later_part(&chat, &part, index, total).await?
            };
            first.get_or_insert(id);
        }
        Ok(SendReceipt {
            provider_message_id: first
                .map(|id| inbound::provider_message_id(&message.conversation, id)),
        })
    }
}

#[async_trait]
impl ProviderChannel for TelegramChannel {
    fn webhook(&self, request: &WebhookRequest<'_>) -> Result<WebhookReply, WebhookError> {
        if request.method != "POST" {
            return Err(WebhookError::MethodNotAllowed);
        }
        // The secret is checked before a byte of the body is looked at.
        if !inbound::secret_matches(
            self.webhook_secret.as_deref(),
            request.header(SECRET_HEADER),
        ) {
            return Err(WebhookError::Unauthorized);
        }
        let update: serde_json::Value = serde_json::from_slice(request.body)
            .map_err(|error| WebhookError::Malformed(format!("not JSON: {error}")))?;
        let updates = inbound::map_update(&update)
            .map_err(WebhookError::Malformed)?
            .into_iter()
            .collect();
        Ok(WebhookReply::Updates {
            updates,
            ack_body: "",
        })
    }

    /// `cursor` is the last `update_id` seen; asking for `offset = cursor + 1` also confirms
    /// everything up to it to Telegram, which then forgets those updates.
    async fn poll(&self, cursor: Option<&str>) -> Result<Polled, SendError> {
        let last_seen = cursor
            .map(|cursor| {
                cursor.parse::<i64>().map_err(|_| SendError::Permanent {
                    reason: format!("invalid Telegram poll cursor {cursor:?}"),
                })
            })
            .transpose()?;
        let params = GetUpdatesParams::builder()
            .maybe_offset(last_seen.map(|id| id + 1))
            .timeout(u32::try_from(self.poll_timeout.as_secs()).unwrap_or(u32::MAX))
            .allowed_updates(allowed_updates())
            .build();
        let call = self
            .poll_bot
            .request::<_, MethodResponse<Vec<serde_json::Value>>>("getUpdates", Some(&params));
        let answer = tokio::time::timeout(self.poll_timeout + CALL_TIMEOUT, call)
            .await
            .map_err(|_| SendError::Transient {
                retry_after: None,
                reason: "Telegram did not answer getUpdates in time".into(),
            })?
            .map_err(|error| CallError::from(error).into_send_error())?;
        let mut newest = last_seen;
        let mut updates = Vec::new();
        for update in &answer.result {
            let id = update.get("update_id").and_then(serde_json::Value::as_i64);
            newest = newest.max(id);
            match inbound::map_update(update) {
                Ok(Some(mapped)) => updates.push(mapped),
                Ok(None) => {}
                // Skipped, not retried: refusing it would stop every later update too.
                Err(error) => {
                    tracing::warn!(update_id = ?id, %error, "unreadable Telegram update skipped")
                }
            }
        }
        Ok(Polled {
            updates,
            cursor: newest.map(|id| id.to_string()),
        })
    }

    async fn download(&self, file_ref: &str) -> Result<Media, SendError> {
        let params = GetFileParams::builder().file_id(file_ref).build();
        let file = self
            .bot
            .get_file(&params)
            .await
            .map_err(|error| CallError::from(error).into_send_error())?
            .result;
        let path = file.file_path.ok_or_else(|| SendError::Permanent {
            reason:
                "Telegram has no downloadable copy of this file (bots may download up to 20 MB)"
                    .into(),
        })?;
        // The path comes from Telegram, but it is joined to a URL holding the token.
        if path.contains("..") || path.contains(['?', '#', '\\']) || path.starts_with('/') {
            return Err(SendError::Permanent {
                reason: "Telegram gave an unusable file path".into(),
            });
        }
        let response = self
            .http
            .get(format!("{}/{path}", self.file_base))
            .timeout(FILE_TIMEOUT)
            .send()
            .await
            .map_err(|error| errors::transport(&error.without_url()))?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let limit = if status.is_success() {
            MAX_DOWNLOAD_BYTES
        } else {
            MAX_ERROR_BODY
        };
        let bytes = read_bounded(response, limit).await?;
        if !status.is_success() {
            return Err(ApiRefusal::from_body(status, &bytes).into_send_error());
        }
        let file_name = path.rsplit('/').next().map(str::to_string);
        let mime_type = content_type
            .filter(|mime| !mime.starts_with("application/octet-stream"))
            .or_else(|| mime_from_extension(&path).map(str::to_string));
        Ok(Media {
            bytes,
            mime_type,
            file_name,
        })
    }

    async fn set_webhook(&self, url: Option<&str>) -> Result<(), SendError> {
        let result = match url {
            Some(url) => {
                let secret = self
                    .webhook_secret
                    .clone()
                    .ok_or_else(|| SendError::Permanent {
                        reason: "credentials.webhook_secret is not set: every webhook request \
                             would be refused"
                            .into(),
                    })?;
                let params = SetWebhookParams::builder()
                    .url(url)
                    .secret_token(secret)
                    .allowed_updates(allowed_updates())
                    .build();
                self.bot.set_webhook(&params).await
            }
            None => {
                self.bot
                    .delete_webhook(&DeleteWebhookParams::builder().build())
                    .await
            }
        };
        result
            .map(|_| ())
            .map_err(|error| CallError::from(error).into_send_error())
    }

    async fn answer_callback(&self, callback_id: &str) -> Result<(), SendError> {
        let params = AnswerCallbackQueryParams::builder()
            .callback_query_id(callback_id)
            .build();
        self.bot
            .answer_callback_query(&params)
            .await
            .map(|_| ())
            .map_err(|error| CallError::from(error).into_send_error())
    }

    async fn health(&self) -> Health {
        if let Err(error) = self.bot.get_me().await {
            return CallError::from(error).into_health();
        }
        let info = match self.bot.get_webhook_info().await {
            Ok(answer) => answer.result,
            Err(error) => return CallError::from(error).into_health(),
        };
        match self.delivery {
            UpdateDelivery::Webhook if info.url.is_empty() => {
                Health::WebhookNotSet("no webhook is set for this bot".into())
            }
            UpdateDelivery::Webhook => {
                let recent = info.last_error_date.is_some_and(|at| {
                    let now = chrono::Utc::now().timestamp().max(0).cast_unsigned();
                    now.saturating_sub(at) <= RECENT_WEBHOOK_ERROR.as_secs()
                });
                match info.last_error_message {
                    Some(message) if recent => Health::Failing(format!(
                        "Telegram cannot deliver to the webhook: {message}"
                    )),
                    _ => Health::Ok,
                }
            }
            UpdateDelivery::LongPoll if !info.url.is_empty() => {
                Health::Failing("a webhook is set, so long polling receives nothing".into())
            }
            UpdateDelivery::LongPoll => Health::Ok,
        }
    }
}

fn allowed_updates() -> Vec<AllowedUpdate> {
    vec![
        AllowedUpdate::Message,
        AllowedUpdate::EditedMessage,
        AllowedUpdate::CallbackQuery,
        AllowedUpdate::MyChatMember,
    ]
}

fn to_json(value: &impl serde::Serialize) -> Result<String, SendError> {
    serde_json::to_string(value).map_err(|error| SendError::Permanent {
        reason: format!("could not encode a Telegram parameter: {error}"),
    })
}

/// `type/subtype` of token characters: anything else is left out of the upload.
fn is_plausible_mime(mime: &str) -> bool {
    mime.split_once('/').is_some_and(|(kind, subtype)| {
        let token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
        };
        token(kind) && token(subtype)
    })
}

/// Telegram's file server answers `application/octet-stream`; the path's extension tells more.
fn mime_from_extension(path: &str) -> Option<&'static str> {
    let extension = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match extension.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "oga" | "ogg" => "audio/ogg",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "tgs" => "application/x-tgsticker",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        _ => return None,
    })
}

/// Reads at most `limit` bytes of the answer; more is an error (a download over Telegram's
/// limit, or an answer no Bot API server gives).
async fn read_bounded(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, SendError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| errors::transport(&error.without_url()))?
    {
        if body.len() + chunk.len() > limit {
            return Err(SendError::Permanent {
                reason: format!("Telegram's answer is larger than {limit} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn channel(credentials: serde_json::Value) -> TelegramChannel {
        let base = reqwest::Url::parse("http://127.0.0.1:9/").unwrap();
        TelegramChannel::from_channel(Some(&credentials), &json!({}), &base).unwrap()
    }

    #[test]
    fn nothing_secret_in_debug() {
        let channel =
            channel(json!({"bot_token": "42:SECRETTOKEN", "webhook_secret": "HOOKSECRET"}));
        let debug = format!("{channel:?}");
        assert!(
            !debug.contains("SECRETTOKEN") && !debug.contains("HOOKSECRET"),
            "{debug}"
        );
        assert_eq!(channel.method_base, "http://127.0.0.1:9/bot42:SECRETTOKEN");
    }

    #[test]
    fn webhook_checks_the_secret_before_the_body() {
        let with_secret = channel(json!({"bot_token": "42:T", "webhook_secret": "right"}));
        let body = b"not even json";
        let request = |secret: Option<&str>| {
            let headers = secret
                .map(|s| (SECRET_HEADER.to_string(), s.to_string()))
                .into_iter();
            WebhookRequest::new("POST", "", headers, body)
        };
        assert_eq!(
            with_secret.webhook(&request(Some("wrong"))),
            Err(WebhookError::Unauthorized)
        );
        assert_eq!(
            with_secret.webhook(&request(None)),
            Err(WebhookError::Unauthorized)
        );
        assert!(matches!(
            with_secret.webhook(&request(Some("right"))),
            Err(WebhookError::Malformed(_))
        ));
        let get = WebhookRequest::new("GET", "", Vec::new(), b"");
        assert_eq!(
            with_secret.webhook(&get),
            Err(WebhookError::MethodNotAllowed)
        );
        let without_secret = channel(json!({"bot_token": "42:T"}));
        assert_eq!(
            without_secret.webhook(&request(Some(""))),
            Err(WebhookError::Unauthorized)
        );
    }

    #[test]
    fn mime_types() {
        assert!(is_plausible_mime("image/png"));
        assert!(is_plausible_mime("application/vnd.ms-excel"));
        assert!(!is_plausible_mime("image"));
        assert!(!is_plausible_mime("text/plain\r\nX: y"));
        assert_eq!(mime_from_extension("voice/file_3.oga"), Some("audio/ogg"));
        assert_eq!(mime_from_extension("documents/file"), None);
    }
}
