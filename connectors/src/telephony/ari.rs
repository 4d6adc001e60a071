//! Asterisk REST Interface (ARI). The call is `POST /ari/channels` with HTTP Basic credentials
//! from `ari.conf`: `endpoint` is the operator's (`PJSIP/100`) or, for a number,
//! `Local/<number>@<context>`; once it answers Asterisk continues in the dialplan at
//! `extension` = the visitor's digits in `context`, which dials the visitor. Our call id is the
//! channel's `channelId`, so the events name it.
//!
//! Events come on the application's WebSocket (`GET /ari/events?app=NAME&subscribeAll=true`),
//! opened before the originate so none is missed: `Dial` events of our channel carry the
//! visitor leg's `dialstatus` (`ANSWER`, `BUSY`, `NOANSWER`, `CANCEL`, `CONGESTION`,
//! `CHANUNAVAIL`), and `ChannelDestroyed` ends the call with its Q.850 `cause`. The talk time is
//! the PBX's own timestamps: from the visitor's `ANSWER` to our channel's destruction.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, FixedOffset};
use futures_util::StreamExt;
use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::{
    CallHookReply, CallHookRequest, CallOutcome, CallRequest, CallStatus, FirstLeg, Originated,
    PlacedCall, Telephony, TelephonyError, dialable, digits, pbx_url, reason, secret, setting,
};
use crate::provider::{ConfigError, WebhookError};
use crate::rest_client;

/// The longest a call is followed; a PBX that never reports an end is not waited for forever.
const MAX_CALL: Duration = Duration::from_secs(4 * 60 * 60);

pub struct AriChannel {
    http: reqwest::Client,
    base: Url,
    username: String,
    password: String,
    app: String,
    context: String,
    tech: String,
}

impl AriChannel {
    pub fn from_channel(
        credentials: Option<&Value>,
        settings: &Value,
        private_allowed: bool,
    ) -> Result<Self, ConfigError> {
        let base = pbx_url(settings, "ari_url", private_allowed)?;
        if !matches!(base.scheme(), "http") {
            return Err(ConfigError(
                "settings.ari_url must be an http:// URL (the ARI port, usually 8088)".into(),
            ));
        }
        let word = |key: &str, default: &str| -> Result<String, ConfigError> {
            let value = setting(settings, key)?.unwrap_or_else(|| default.to_string());
            if dialable(&value) && !value.contains(['/', '@']) {
                Ok(value)
            } else {
                Err(ConfigError(format!(
                    "settings.{key}: `{value}` is not a valid name"
                )))
            }
        };
        Ok(AriChannel {
            http: rest_client::client().map_err(ConfigError)?,
            base,
            username: secret(credentials, "username")?,
            password: secret(credentials, "password")?,
            app: word("app", "omnihub")?,
            context: word("context", "from-internal")?,
            tech: word("endpoint_tech", "PJSIP")?,
        })
    }

    /// The originate's query parameters, as `POST /ari/channels` takes them.
    pub fn originate_params(
        &self,
        request: &CallRequest,
    ) -> Result<Vec<(String, String)>, TelephonyError> {
        let first = request.first.value();
        if !dialable(first) {
            return Err(TelephonyError::Refused(format!(
                "`{first}` cannot be dialled"
            )));
        }
        let endpoint = match &request.first {
            FirstLeg::Extension(ext) => format!("{}/{ext}", self.tech),
            FirstLeg::Number(number) => format!("Local/{}@{}", digits(number), self.context),
        };
        Ok(vec![
            ("endpoint".into(), endpoint),
            ("extension".into(), digits(&request.visitor)),
            ("context".into(), self.context.clone()),
            ("priority".into(), "1".into()),
            ("channelId".into(), request.call_id.clone()),
            ("timeout".into(), request.ring_timeout_secs.to_string()),
            ("callerId".into(), request.visitor.clone()),
        ])
    }

    fn events_url(&self) -> Result<Url, TelephonyError> {
        let mut url = self
            .base
            .join("ari/events")
            .map_err(|e| TelephonyError::Unavailable(e.to_string()))?;
        url.set_scheme("ws")
            .map_err(|_| TelephonyError::Unavailable("cannot make a ws:// URL".into()))?;
        url.query_pairs_mut()
            .append_pair("app", &self.app)
            .append_pair("subscribeAll", "true");
        Ok(url)
    }

    fn basic(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

#[async_trait]
impl Telephony for AriChannel {
    async fn originate(&self, request: &CallRequest) -> Result<Originated, TelephonyError> {
        let params = self.originate_params(request)?;
        let mut ws_request = self
            .events_url()?
            .as_str()
            .into_client_request()
            .map_err(|e| TelephonyError::Unavailable(e.to_string()))?;
        ws_request.headers_mut().insert(
            "Authorization",
            HeaderValue::from_str(&self.basic())
                .map_err(|_| TelephonyError::Unauthorized("unusable credentials".into()))?,
        );
        let connected = tokio::time::timeout(
            rest_client::TIMEOUT,
            tokio_tungstenite::connect_async(ws_request),
        )
        .await
        .map_err(|_| TelephonyError::Unavailable("the ARI event socket did not open".into()))?;
        let (mut events, _) = connected.map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(response)
                if response.status().as_u16() == 401 =>
            {
                TelephonyError::Unauthorized("ARI refused the credentials".into())
            }
            other => TelephonyError::Unavailable(reason(&other.to_string())),
        })?;
        let url = self
            .base
            .join("ari/channels")
            .map_err(|e| TelephonyError::Unavailable(e.to_string()))?;
        let answer = rest_client::fetch(
            self.http
                .post(url)
                .timeout(rest_client::TIMEOUT)
                .basic_auth(&self.username, Some(&self.password))
                .query(&params),
            rest_client::MAX_API_BODY,
        )
        .await
        .map_err(|e| TelephonyError::Unavailable(e.to_string()))?;
        let body = String::from_utf8_lossy(&answer.body).into_owned();
        match answer.status.as_u16() {
            200 => {}
            401 => return Err(TelephonyError::Unauthorized(reason(&body))),
            400 | 404 | 409 | 422 => return Err(TelephonyError::Refused(reason(&body))),
            status => {
                return Err(TelephonyError::Unavailable(reason(&format!(
                    "HTTP {status}: {body}"
                ))));
            }
        }
        let call_id = request.call_id.clone();
        let outcome = async move {
            let mut call = AriCall::new(call_id);
            let follow = async {
                while let Some(frame) = events.next().await {
                    match frame {
                        Ok(WsMessage::Text(text)) => {
                            if let Ok(event) = serde_json::from_str::<Value>(text.as_str())
                                && let Some(outcome) = call.apply(&event)
                            {
                                return outcome;
                            }
                        }
                        Ok(WsMessage::Close(_)) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
                CallOutcome::Failed {
                    reason: "the PBX's event stream closed before the call ended".into(),
                }
            };
            let outcome =
                tokio::time::timeout(MAX_CALL, follow)
                    .await
                    .unwrap_or(CallOutcome::Failed {
                        reason: "the PBX never reported the end of the call".into(),
                    });
            let _ = events.close(None).await;
            outcome
        };
        Ok(Originated {
            provider_call_id: Some(request.call_id.clone()),
            outcome: Some(Box::pin(outcome)),
        })
    }

    /// `GET /ari/channels/{channelId}`: a channel still there is a call still going; a gone
    /// one left no record of how it ended (ARI keeps none).
    async fn call_status(&self, call: &PlacedCall) -> Result<CallStatus, TelephonyError> {
        let id = call.provider_call_id.as_deref().unwrap_or(&call.call_id);
        if !dialable(id) || id.contains('/') {
            return Ok(CallStatus::Unknown);
        }
        let url = self
            .base
            .join(&format!("ari/channels/{id}"))
            .map_err(|e| TelephonyError::Unavailable(e.to_string()))?;
        let answer = rest_client::fetch(
            self.http
                .get(url)
                .timeout(rest_client::TIMEOUT)
                .basic_auth(&self.username, Some(&self.password)),
            rest_client::MAX_API_BODY,
        )
        .await
        .map_err(|e| TelephonyError::Unavailable(e.to_string()))?;
        match answer.status.as_u16() {
            200 => Ok(CallStatus::Going),
            404 => Ok(CallStatus::Unknown),
            401 => Err(TelephonyError::Unauthorized(reason(
                &String::from_utf8_lossy(&answer.body),
            ))),
            status => Err(TelephonyError::Unavailable(format!("HTTP {status}"))),
        }
    }

    fn call_hook(&self, _request: &CallHookRequest<'_>) -> Result<CallHookReply, WebhookError> {
        Err(WebhookError::MethodNotAllowed)
    }
}

/// The fields of ARI's `Channel` model we read.
#[derive(Clone, Debug, Deserialize)]
struct ChannelRef {
    id: String,
}

/// What is known of one call from its events so far.
#[derive(Clone, Debug)]
pub struct AriCall {
    channel_id: String,
    answered_at: Option<DateTime<FixedOffset>>,
    dial_outcome: Option<CallOutcome>,
}

/// ARI's `Date`: `2026-11-27T18:00:00.000+0000`.
fn timestamp(event: &Value) -> Option<DateTime<FixedOffset>> {
    let raw = event.get("timestamp")?.as_str()?;
    DateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(raw))
        .ok()
}

impl AriCall {
    pub fn new(channel_id: impl Into<String>) -> Self {
        AriCall {
            channel_id: channel_id.into(),
            answered_at: None,
            dial_outcome: None,
        }
    }

    /// Takes one event of the stream; the outcome once the call is over.
    pub fn apply(&mut self, event: &Value) -> Option<CallOutcome> {
        let of_ours = |key: &str| {
            event
                .get(key)
                .and_then(|c| serde_json::from_value::<ChannelRef>(c.clone()).ok())
                .is_some_and(|c| c.id == self.channel_id)
        };
        match event.get("type").and_then(Value::as_str)? {
            "Dial" if of_ours("caller") => {
                match event
                    .get("dialstatus")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                {
                    "ANSWER" => self.answered_at = timestamp(event),
                    "BUSY" => self.dial_outcome = Some(CallOutcome::Busy),
                    "NOANSWER" | "CANCEL" => self.dial_outcome = Some(CallOutcome::NoAnswer),
                    "" | "RINGING" | "PROGRESS" | "PROCEEDING" => {}
                    other => {
                        self.dial_outcome = Some(CallOutcome::Failed {
                            reason: reason(other),
                        })
                    }
                }
                None
            }
            "ChannelDestroyed" if of_ours("channel") => Some(self.end(event)),
            _ => None,
        }
    }

    fn end(&self, destroyed: &Value) -> CallOutcome {
        if let Some(answered) = self.answered_at {
            let ended = timestamp(destroyed).unwrap_or(answered);
            let secs = (ended - answered).num_seconds().max(0);
            return CallOutcome::Answered {
                duration_secs: u32::try_from(secs).unwrap_or(u32::MAX),
            };
        }
        if let Some(outcome) = &self.dial_outcome {
            return outcome.clone();
        }
        // The first leg never got to dial the visitor: its own cause says why.
        match destroyed.get("cause").and_then(Value::as_i64) {
            Some(17) => CallOutcome::Busy,
            Some(18 | 19) => CallOutcome::NoAnswer,
            _ => CallOutcome::Failed {
                reason: reason(
                    destroyed
                        .get("cause_txt")
                        .and_then(Value::as_str)
                        .unwrap_or("the call ended before the visitor was dialled"),
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn channel(id: &str) -> Value {
        json!({"id": id, "name": format!("PJSIP/100-{id}"), "state": "Up"})
    }

    #[test]
    fn the_visitors_answer_and_the_hangup_give_the_talk_time() {
        let mut call = AriCall::new("c1");
        assert_eq!(call.apply(&json!({"type": "Dial", "dialstatus": "", "caller": channel("c1"), "peer": channel("v"), "timestamp": "2026-11-27T18:00:00.000+0000"})), None);
        assert_eq!(call.apply(&json!({"type": "Dial", "dialstatus": "ANSWER", "caller": channel("c1"), "peer": channel("v"), "timestamp": "2026-11-27T18:00:05.000+0000"})), None);
        // Another channel's end is not ours.
        assert_eq!(call.apply(&json!({"type": "ChannelDestroyed", "cause": 16, "cause_txt": "Normal Clearing", "channel": channel("v"), "timestamp": "2026-11-27T18:01:00.000+0000"})), None);
        assert_eq!(
            call.apply(&json!({"type": "ChannelDestroyed", "cause": 16, "cause_txt": "Normal Clearing", "channel": channel("c1"), "timestamp": "2026-11-27T18:01:17.500+0000"})),
            Some(CallOutcome::Answered { duration_secs: 72 })
        );
    }

    #[test]
    fn busy_and_unanswered_legs() {
        let mut call = AriCall::new("c2");
        call.apply(&json!({"type": "Dial", "dialstatus": "BUSY", "caller": channel("c2"), "peer": channel("v"), "timestamp": "2026-11-27T18:00:05.000+0000"}));
        assert_eq!(
            call.apply(&json!({"type": "ChannelDestroyed", "cause": 16, "cause_txt": "Normal Clearing", "channel": channel("c2"), "timestamp": "2026-11-27T18:00:06.000+0000"})),
            Some(CallOutcome::Busy)
        );
        let mut operator_away = AriCall::new("c3");
        assert_eq!(
            operator_away.apply(&json!({"type": "ChannelDestroyed", "cause": 19, "cause_txt": "No answer", "channel": channel("c3"), "timestamp": "2026-11-27T18:00:30.000+0000"})),
            Some(CallOutcome::NoAnswer)
        );
    }
}
