//! VK community messages (API v5.199): a community's chat with its customers.
//!
//! Built by [`VkChannel::from_channel`] from the channel's stored credentials:
//!
//! | key | required | meaning |
//! |---|---|---|
//! | `access_token` | yes | the community token (messages, uploads, long poll, callback servers) |
//! | `group_id` | yes | the community's id (number or digits) |
//! | `secret` | for webhooks | the Callback API secret key: every event must carry it |
//! | `confirmation_code` | for webhooks | what the Callback API confirmation request must echo |
//!
//! and settings `long_poll` (bool, default `false`: the channel is served by Bots Long Poll,
//! so [`health`](ProviderChannel::health) does not expect a callback server) and
//! `long_poll_wait` (seconds VK holds a long poll, 1–90, default 25).
//!
//! The conversation id is VK's `peer_id`. A message id is VK's message `id`, or `c<n>` for a
//! group-chat message known only by its `conversation_message_id`; a reply to the latter goes
//! out as `forward` with `is_reply`. A retried send keeps its `random_id` (derived from the
//! idempotency key, see [`random_id`]), so VK delivers it once. The `callback_id` of a button
//! press is `<event_id>:<user_id>:<peer_id>`, which `messages.sendMessageEventAnswer` needs.
//!
//! Long poll: the cursor is VK's `ts` alone. The long-poll `key` and `server` are kept in
//! memory (they are a credential of sorts and expire) and fetched again when VK answers
//! `failed: 2` (key expired) or `failed: 3` (key and history lost: continue from VK's new
//! `ts`); `failed: 1` (history partly lost) continues from the `ts` VK gives.

pub(crate) mod api;
mod events;
mod outbound;

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Url;
use serde_json::Value;

use crate::provider::{
    ConfigError, Health, Media, Polled, ProviderChannel, WebhookError, WebhookReply, WebhookRequest,
};
use crate::signing::constant_time_eq;
use crate::{OutboundChannel, OutboundMessage, SendError, SendReceipt};
use api::{CallError, VkApi, codes, network_error, permanent, read_bounded, transient};

pub use api::API_VERSION;
pub use outbound::random_id;

/// Event types the callback server and long poll are told to deliver.
const EVENT_TYPES: [&str; 4] = [
    "message_new",
    "message_edit",
    "message_event",
    "message_deny",
];

/// Downloads larger than this are refused (VK's documents go up to 200 MB; the inbox keeps
/// what a person would open).
const MAX_DOWNLOAD: usize = 50 * 1024 * 1024;

/// The title omnihub's callback server gets in the community settings (VK allows 14 chars).
const CALLBACK_TITLE: &str = "omnihub";

/// One connected VK community.
pub struct VkChannel {
    api: VkApi,
    group_id: i64,
    secret: Option<String>,
    confirmation_code: Option<String>,
    long_poll: bool,
    long_poll_wait: u64,
    session: Mutex<Option<LongPollSession>>,
}

#[derive(Clone)]
struct LongPollSession {
    server: String,
    key: String,
}

// Written by hand so that no secret reaches a log.
impl std::fmt::Debug for VkChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VkChannel")
            .field("group_id", &self.group_id)
            .field("access_token", &"***")
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("long_poll", &self.long_poll)
            .finish()
    }
}

impl VkChannel {
    /// Builds the channel; `api_base` is VK's API root (`https://api.vk.com/`) or a sandbox.
    pub fn from_channel(
        credentials: Option<&Value>,
        settings: &Value,
        api_base: &Url,
    ) -> Result<VkChannel, ConfigError> {
        let credentials =
            credentials.ok_or_else(|| ConfigError("VK credentials are missing".into()))?;
        let access_token = string(credentials, "access_token")?
            .ok_or_else(|| ConfigError("credentials.access_token is required".into()))?;
        let group_id = match credentials.get("group_id") {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
        .filter(|id| *id > 0)
        .ok_or_else(|| ConfigError("credentials.group_id must be the community's id".into()))?;
        let secret = string(credentials, "secret")?;
        if secret.as_ref().is_some_and(|s| s.len() > 50) {
            return Err(ConfigError(
                "credentials.secret must be at most 50 characters".into(),
            ));
        }
        let confirmation_code = string(credentials, "confirmation_code")?;
        let long_poll = match settings.get("long_poll") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(ConfigError(
                    "settings.long_poll must be true or false".into(),
                ));
            }
        };
        let long_poll_wait = match settings.get("long_poll_wait") {
            None | Some(Value::Null) => 25,
            Some(value) => value
                .as_u64()
                .filter(|s| (1..=90).contains(s))
                .ok_or_else(|| {
                    ConfigError("settings.long_poll_wait must be 1 to 90 seconds".into())
                })?,
        };
        if !matches!(api_base.scheme(), "http" | "https") {
            return Err(ConfigError("the VK API base must be an http(s) URL".into()));
        }
        let api = VkApi::new(api_base, access_token).map_err(ConfigError)?;
        Ok(VkChannel {
            api,
            group_id,
            secret,
            confirmation_code,
            long_poll,
            long_poll_wait,
            session: Mutex::new(None),
        })
    }

    async fn call(&self, method: &str, params: &[(&str, String)]) -> Result<Value, SendError> {
        self.api
            .call(method, params)
            .await
            .map_err(CallError::into_send_error)
    }

    async fn fresh_session(&self) -> Result<(LongPollSession, String), SendError> {
        let answer = self
            .call(
                "groups.getLongPollServer",
                &[("group_id", self.group_id.to_string())],
            )
            .await?;
        let field = |key: &str| match answer.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let (Some(server), Some(key), Some(ts)) = (field("server"), field("key"), field("ts"))
        else {
            return Err(transient(
                "groups.getLongPollServer answered without server, key or ts",
            ));
        };
        let session = LongPollSession { server, key };
        self.remember(Some(session.clone()));
        Ok((session, ts))
    }

    fn remember(&self, session: Option<LongPollSession>) {
        if let Ok(mut slot) = self.session.lock() {
            *slot = session;
        }
    }

    fn cached_session(&self) -> Option<LongPollSession> {
        self.session.lock().ok().and_then(|slot| slot.clone())
    }

    async fn check(&self, session: &LongPollSession, ts: &str) -> Result<Value, SendError> {
        let mut url = Url::parse(&session.server)
            .map_err(|err| transient(format!("VK gave a bad long poll server: {err}")))?;
        url.query_pairs_mut()
            .append_pair("act", "a_check")
            .append_pair("key", &session.key)
            .append_pair("ts", ts)
            .append_pair("wait", &self.long_poll_wait.to_string());
        let response = self
            .api
            .client
            .get(url)
            .timeout(Duration::from_secs(self.long_poll_wait) + api::TIMEOUT)
            .send()
            .await
            // The URL carries the key: say what failed without it.
            .map_err(|err| transient(format!("long poll failed: {}", err.without_url())))?;
        api::read_json(response).await
    }

    async fn callback_servers(&self) -> Result<Vec<Value>, SendError> {
        let answer = self
            .call(
                "groups.getCallbackServers",
                &[("group_id", self.group_id.to_string())],
            )
            .await?;
        Ok(answer
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    async fn set_events(
        &self,
        method: &str,
        extra: &[(&str, String)],
        on: bool,
    ) -> Result<(), SendError> {
        let flag = if on { "1" } else { "0" };
        let mut params = vec![
            ("group_id", self.group_id.to_string()),
            ("api_version", API_VERSION.to_string()),
        ];
        params.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
        params.extend(EVENT_TYPES.iter().map(|event| (*event, flag.to_string())));
        self.call(method, &params).await.map(drop)
    }
}

#[async_trait]
impl OutboundChannel for VkChannel {
    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let peer_id = outbound::peer_id(&message.conversation)?;
        let mut attachments = Vec::with_capacity(message.attachments.len());
        for attachment in &message.attachments {
            attachments.push(outbound::upload(&self.api, peer_id, attachment).await?);
        }
        let params = outbound::send_params(message, peer_id, &attachments)?;
        let answer = self.call("messages.send", &params).await?;
        let provider_message_id = match &answer {
            Value::Number(id) => Some(id.to_string()),
            // With `peer_ids` VK answers a list; one peer still gets one id.
            Value::Array(items) => items
                .first()
                .and_then(|item| item.get("message_id"))
                .map(|id| id.to_string()),
            _ => None,
        };
        Ok(SendReceipt {
            provider_message_id,
        })
    }
}

#[async_trait]
impl ProviderChannel for VkChannel {
    fn webhook(&self, request: &WebhookRequest<'_>) -> Result<WebhookReply, WebhookError> {
        if request.method != "POST" {
            return Err(WebhookError::MethodNotAllowed);
        }
        let event: Value = serde_json::from_slice(request.body)
            .map_err(|err| WebhookError::Malformed(format!("not JSON: {err}")))?;
        let group_matches = match event.get("group_id") {
            Some(Value::Number(n)) => n.as_i64() == Some(self.group_id),
            Some(Value::String(s)) => s.parse() == Ok(self.group_id),
            _ => false,
        };
        let secret_matches = match (event.get("secret").and_then(Value::as_str), &self.secret) {
            (Some(given), Some(ours)) => constant_time_eq(given.as_bytes(), ours.as_bytes()),
            _ => false,
        };
        if event.get("type").and_then(Value::as_str) == Some("confirmation") {
            // VK adds the secret to confirmations too when one is set; a wrong one is not VK.
            let secret_ok = event.get("secret").is_none() || secret_matches;
            return match &self.confirmation_code {
                Some(code) if group_matches && secret_ok => {
                    Ok(WebhookReply::Handshake { body: code.clone() })
                }
                _ => Err(WebhookError::Unauthorized),
            };
        }
        if !secret_matches || !group_matches {
            return Err(WebhookError::Unauthorized);
        }
        let updates = events::map_event(&event)
            .map_err(WebhookError::Malformed)?
            .into_iter()
            .collect();
        Ok(WebhookReply::Updates {
            updates,
            ack_body: "ok",
        })
    }

    async fn poll(&self, cursor: Option<&str>) -> Result<Polled, SendError> {
        let (mut session, ts) = match (self.cached_session(), cursor) {
            (Some(session), Some(ts)) => (session, ts.to_string()),
            (None, Some(ts)) => (self.fresh_session().await?.0, ts.to_string()),
            (_, None) => self.fresh_session().await?,
        };
        // An expired key is renewed once within the same poll.
        for _ in 0..2 {
            let answer = self.check(&session, &ts).await?;
            match answer.get("failed").and_then(Value::as_i64) {
                None => {
                    let updates = answer
                        .get("updates")
                        .and_then(Value::as_array)
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|event| match events::map_event(event) {
                            Ok(update) => update,
                            Err(reason) => {
                                tracing::warn!(%reason, "VK long poll: event skipped");
                                None
                            }
                        })
                        .collect();
                    let next = scalar(answer.get("ts")).unwrap_or(ts);
                    return Ok(Polled {
                        updates,
                        cursor: Some(next),
                    });
                }
                Some(1) => {
                    tracing::warn!("VK long poll: history partly lost, continuing from VK's ts");
                    let next = scalar(answer.get("ts"))
                        .ok_or_else(|| transient("long poll failed 1 without a ts"))?;
                    return Ok(Polled {
                        updates: Vec::new(),
                        cursor: Some(next),
                    });
                }
                Some(2) => session = self.fresh_session().await?.0,
                Some(3) => {
                    tracing::warn!("VK long poll: key and history lost, continuing from VK's ts");
                    let (_, fresh_ts) = self.fresh_session().await?;
                    return Ok(Polled {
                        updates: Vec::new(),
                        cursor: Some(fresh_ts),
                    });
                }
                Some(other) => {
                    self.remember(None);
                    return Err(transient(format!("long poll failed with code {other}")));
                }
            }
        }
        Err(transient("the long poll key expired twice in a row"))
    }

    async fn download(&self, file_ref: &str) -> Result<Media, SendError> {
        let url = Url::parse(file_ref).map_err(|_| permanent("not a VK file URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(permanent("not a VK file URL"));
        }
        let file_name = url
            .path_segments()
            .and_then(|mut segments| segments.next_back())
            .filter(|name| !name.is_empty())
            .map(str::to_string);
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
        let mime_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let bytes = read_bounded(response, MAX_DOWNLOAD).await?;
        Ok(Media {
            bytes,
            mime_type,
            file_name,
        })
    }

    async fn set_webhook(&self, url: Option<&str>) -> Result<(), SendError> {
        let servers = self.callback_servers().await?;
        let Some(url) = url else {
            for server in &servers {
                if let Some(id) = server.get("id").and_then(Value::as_i64) {
                    self.set_events(
                        "groups.setCallbackSettings",
                        &[("server_id", id.to_string())],
                        false,
                    )
                    .await?;
                }
            }
            return self
                .set_events(
                    "groups.setLongPollSettings",
                    &[("enabled", "1".to_string())],
                    true,
                )
                .await;
        };
        let secret = self
            .secret
            .clone()
            .ok_or_else(|| permanent("set credentials.secret before registering a webhook"))?;
        let server_id = self
            .api
            .upsert_callback_server(self.group_id, &servers, url, CALLBACK_TITLE, secret)
            .await?;
        self.set_events(
            "groups.setCallbackSettings",
            &[("server_id", server_id.to_string())],
            true,
        )
        .await
    }

    async fn answer_callback(&self, callback_id: &str) -> Result<(), SendError> {
        let (event_id, user_id, peer_id) = events::split_callback_id(callback_id)
            .ok_or_else(|| permanent(format!("not a VK callback id: {callback_id:?}")))?;
        self.call(
            "messages.sendMessageEventAnswer",
            &[
                ("event_id", event_id.to_string()),
                ("user_id", user_id.to_string()),
                ("peer_id", peer_id.to_string()),
            ],
        )
        .await
        .map(drop)
    }

    async fn health(&self) -> Health {
        let probe = self
            .api
            .call("groups.getById", &[("group_id", self.group_id.to_string())])
            .await;
        match probe {
            Ok(_) => {}
            Err(CallError::Api { code, message }) => {
                return match code {
                    codes::AUTH_FAILED => Health::InvalidToken(message),
                    codes::TOO_MANY_REQUESTS | codes::FLOOD_CONTROL => Health::RateLimited(message),
                    _ => Health::Failing(format!("VK error {code}: {message}")),
                };
            }
            Err(CallError::Transport(err)) => return Health::of_error(&err),
        }
        if self.long_poll {
            return Health::Ok;
        }
        match self.callback_servers().await {
            Ok(servers)
                if servers
                    .iter()
                    .any(|s| s.get("status").and_then(Value::as_str) == Some("ok")) =>
            {
                Health::Ok
            }
            Ok(_) => Health::WebhookNotSet("the community has no confirmed callback server".into()),
            Err(err) => Health::of_error(&err),
        }
    }
}

fn string(credentials: &Value, key: &str) -> Result<Option<String>, ConfigError> {
    match credentials.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ConfigError(format!("credentials.{key} must be a string"))),
    }
}

fn scalar(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn channel() -> VkChannel {
        VkChannel::from_channel(
            Some(&json!({"access_token": "tok-9f8e7d", "group_id": 123456,
                "secret": "MY_SECRET", "confirmation_code": "c0de"})),
            &json!({}),
            &Url::parse("http://127.0.0.1:9/").unwrap(),
        )
        .unwrap()
    }

    fn post(body: &Value) -> Result<WebhookReply, WebhookError> {
        let body = body.to_string();
        channel().webhook(&WebhookRequest::new("POST", "", [], body.as_bytes()))
    }

    #[test]
    fn configuration_is_checked_and_secrets_stay_out_of_debug() {
        let base = Url::parse("http://127.0.0.1:9/").unwrap();
        assert!(VkChannel::from_channel(None, &json!({}), &base).is_err());
        assert!(
            VkChannel::from_channel(Some(&json!({"access_token": "t"})), &json!({}), &base)
                .is_err()
        );
        assert!(
            VkChannel::from_channel(
                Some(&json!({"access_token": "t", "group_id": "12"})),
                &json!({"long_poll_wait": 500}),
                &base
            )
            .is_err()
        );
        let debug = format!("{:?}", channel());
        assert!(
            !debug.contains("tok-9f8e7d") && !debug.contains("MY_SECRET"),
            "{debug}"
        );
    }

    #[test]
    fn confirmation_only_for_our_group() {
        assert_eq!(
            post(&json!({"type": "confirmation", "group_id": 123456})).unwrap(),
            WebhookReply::Handshake {
                body: "c0de".into()
            }
        );
        assert_eq!(
            post(&json!({"type": "confirmation", "group_id": 1})).unwrap_err(),
            WebhookError::Unauthorized
        );
    }

    #[test]
    fn events_need_our_secret() {
        let event = |secret: Option<&str>| {
            let mut event = json!({"type": "message_new", "group_id": 123456, "event_id": "e",
                "object": {"message": {"id": 1, "peer_id": 5, "from_id": 5, "text": "hi"}}});
            if let Some(secret) = secret {
                event["secret"] = json!(secret);
            }
            event
        };
        assert_eq!(post(&event(None)).unwrap_err(), WebhookError::Unauthorized);
        assert_eq!(
            post(&event(Some("MY_SECRET!"))).unwrap_err(),
            WebhookError::Unauthorized
        );
        let WebhookReply::Updates { updates, ack_body } = post(&event(Some("MY_SECRET"))).unwrap()
        else {
            panic!("expected updates");
        };
        assert_eq!((updates.len(), ack_body), (1, "ok"));
        let get = channel().webhook(&WebhookRequest::new("GET", "", [], b""));
        assert_eq!(get.unwrap_err(), WebhookError::MethodNotAllowed);
    }
}
