//! Asterisk Manager Interface (AMI), for PBXs older than ARI: a TCP connection (port 5038) that
//! speaks lines of `Key: Value` ended by an empty line. We send `Action: Login` (`manager.conf`
//! user and secret), then `Action: Originate` with `Async: true` and our call id as both
//! `ActionID` and `ChannelId`: `Channel` is the operator's (`PJSIP/100`) or, for a number,
//! `Local/<number>@<context>`, and on answer the dialplan continues at `Exten` = the visitor's
//! digits in `Context`.
//!
//! Events on the same connection tell the rest: `OriginateResponse` (`Response: Failure` with
//! `Reason` 3 = no answer, 5 = busy, others failed), `DialEnd` of our channel (the visitor's
//! `DialStatus`) and `Hangup` (with its Q.850 `Cause`). With `timestampevents = yes` every event
//! carries `Timestamp: <unix seconds>.<micro>`, and the talk time is measured on the PBX's clock;
//! without it, on ours.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Url;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;

use super::{
    CallHookReply, CallHookRequest, CallOutcome, CallRequest, FirstLeg, Originated, Telephony,
    TelephonyError, dialable, digits, pbx_url, reason, secret, setting,
};
use crate::provider::{ConfigError, WebhookError};
use crate::rest_client;

/// The longest a call is followed.
const MAX_CALL: Duration = Duration::from_secs(4 * 60 * 60);
/// A line longer than this is not AMI.
const MAX_LINE: usize = 8 * 1024;
/// Keys in one message at most.
const MAX_KEYS: usize = 256;

/// One AMI message: its `Key: Value` lines in order.
pub type AmiMessage = Vec<(String, String)>;

/// The value of a key (case-insensitive, as Asterisk treats them).
pub fn get<'a>(message: &'a AmiMessage, key: &str) -> Option<&'a str> {
    message
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

/// An action as it goes on the wire; values with line breaks are refused (they would inject
/// keys or whole actions).
pub fn encode(fields: &[(&str, &str)]) -> Result<String, TelephonyError> {
    let mut out = String::new();
    for (k, v) in fields {
        if k.contains(['\r', '\n', ':']) || v.contains(['\r', '\n']) {
            return Err(TelephonyError::Refused(format!("`{k}` holds a line break")));
        }
        out.push_str(k);
        out.push_str(": ");
        out.push_str(v);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    Ok(out)
}

/// Reads the next message; `None` at the end of the stream.
pub async fn read_message(
    reader: &mut BufReader<OwnedReadHalf>,
) -> std::io::Result<Option<AmiMessage>> {
    let mut message = AmiMessage::new();
    loop {
        let mut line = String::new();
        let read = (&mut *reader)
            .take(MAX_LINE as u64)
            .read_line(&mut line)
            .await?;
        if read == 0 {
            return Ok(None);
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            if message.is_empty() {
                continue;
            }
            return Ok(Some(message));
        }
        if let Some((k, v)) = line.split_once(':') {
            if message.len() >= MAX_KEYS {
                return Err(std::io::Error::other("an AMI message with too many keys"));
            }
            message.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
}

pub struct AmiChannel {
    address: String,
    username: String,
    secret: String,
    context: String,
    tech: String,
}

impl AmiChannel {
    pub fn from_channel(
        credentials: Option<&Value>,
        settings: &Value,
        private_allowed: bool,
    ) -> Result<Self, ConfigError> {
        let url: Url = pbx_url(settings, "ami_url", private_allowed)?;
        if url.scheme() != "tcp" {
            return Err(ConfigError(
                "settings.ami_url must be tcp://HOST:PORT (the manager port, usually 5038)".into(),
            ));
        }
        let host = url.host_str().unwrap_or_default();
        let address = format!("{host}:{}", url.port().unwrap_or(5038));
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
        let username = secret(credentials, "username")?;
        let password = secret(credentials, "secret")?;
        if username.contains(['\r', '\n']) || password.contains(['\r', '\n']) {
            return Err(ConfigError("credentials hold a line break".into()));
        }
        Ok(AmiChannel {
            address,
            username,
            secret: password,
            context: word("context", "from-internal")?,
            tech: word("endpoint_tech", "PJSIP")?,
        })
    }

    /// The `Originate` action's fields.
    pub fn originate_fields(
        &self,
        request: &CallRequest,
    ) -> Result<Vec<(String, String)>, TelephonyError> {
        let first = request.first.value();
        if !dialable(first) {
            return Err(TelephonyError::Refused(format!(
                "`{first}` cannot be dialled"
            )));
        }
        let channel = match &request.first {
            FirstLeg::Extension(ext) => format!("{}/{ext}", self.tech),
            FirstLeg::Number(number) => format!("Local/{}@{}", digits(number), self.context),
        };
        Ok(vec![
            ("Action".into(), "Originate".into()),
            ("ActionID".into(), request.call_id.clone()),
            ("Channel".into(), channel),
            ("Exten".into(), digits(&request.visitor)),
            ("Context".into(), self.context.clone()),
            ("Priority".into(), "1".into()),
            (
                "Timeout".into(),
                (u64::from(request.ring_timeout_secs) * 1000).to_string(),
            ),
            ("CallerID".into(), request.visitor.clone()),
            ("ChannelId".into(), request.call_id.clone()),
            ("Async".into(), "true".into()),
        ])
    }
}

/// Reads messages until the response to `action_id`.
async fn response_to(
    reader: &mut BufReader<OwnedReadHalf>,
    action_id: &str,
) -> Result<AmiMessage, TelephonyError> {
    loop {
        let message = read_message(reader)
            .await
            .map_err(|e| TelephonyError::Unavailable(e.to_string()))?
            .ok_or_else(|| TelephonyError::Unavailable("the PBX closed the connection".into()))?;
        if get(&message, "Response").is_some() && get(&message, "ActionID") == Some(action_id) {
            return Ok(message);
        }
    }
}

#[async_trait]
impl Telephony for AmiChannel {
    async fn originate(&self, request: &CallRequest) -> Result<Originated, TelephonyError> {
        let fields = self.originate_fields(request)?;
        let connect = TcpStream::connect(&self.address);
        let stream = tokio::time::timeout(rest_client::TIMEOUT, connect)
            .await
            .map_err(|_| TelephonyError::Unavailable("the AMI port did not answer".into()))?
            .map_err(|e| TelephonyError::Unavailable(e.to_string()))?;
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        let handshake = async {
            let mut greeting = String::new();
            (&mut reader)
                .take(MAX_LINE as u64)
                .read_line(&mut greeting)
                .await
                .map_err(|e| TelephonyError::Unavailable(e.to_string()))?;
            if !greeting.starts_with("Asterisk Call Manager/") {
                return Err(TelephonyError::Unavailable(
                    "not an Asterisk manager port".into(),
                ));
            }
            let login_id = format!("{}-login", request.call_id);
            let login = encode(&[
                ("Action", "Login"),
                ("ActionID", &login_id),
                ("Username", &self.username),
                ("Secret", &self.secret),
                ("Events", "call"),
            ])?;
            write
                .write_all(login.as_bytes())
                .await
                .map_err(|e| TelephonyError::Unavailable(e.to_string()))?;
            let answer = response_to(&mut reader, &login_id).await?;
            if get(&answer, "Response") != Some("Success") {
                return Err(TelephonyError::Unauthorized(reason(
                    get(&answer, "Message").unwrap_or("login refused"),
                )));
            }
            let borrowed: Vec<(&str, &str)> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            write
                .write_all(encode(&borrowed)?.as_bytes())
                .await
                .map_err(|e| TelephonyError::Unavailable(e.to_string()))?;
            let answer = response_to(&mut reader, &request.call_id).await?;
            if get(&answer, "Response") != Some("Success") {
                return Err(TelephonyError::Refused(reason(
                    get(&answer, "Message").unwrap_or("originate refused"),
                )));
            }
            Ok(())
        };
        tokio::time::timeout(rest_client::TIMEOUT, handshake)
            .await
            .map_err(|_| TelephonyError::Unavailable("the PBX did not answer in time".into()))??;
        let call_id = request.call_id.clone();
        let outcome = async move {
            let mut call = AmiCall::new(call_id);
            let follow = async {
                while let Ok(Some(message)) = read_message(&mut reader).await {
                    if let Some(outcome) = call.apply(&message, std::time::SystemTime::now()) {
                        return outcome;
                    }
                }
                CallOutcome::Failed {
                    reason: "the PBX closed the manager connection before the call ended".into(),
                }
            };
            let outcome =
                tokio::time::timeout(MAX_CALL, follow)
                    .await
                    .unwrap_or(CallOutcome::Failed {
                        reason: "the PBX never reported the end of the call".into(),
                    });
            if let Ok(logoff) = encode(&[("Action", "Logoff")]) {
                let _ = write.write_all(logoff.as_bytes()).await;
            }
            outcome
        };
        Ok(Originated {
            provider_call_id: Some(request.call_id.clone()),
            outcome: Some(Box::pin(outcome)),
        })
    }

    fn call_hook(&self, _request: &CallHookRequest<'_>) -> Result<CallHookReply, WebhookError> {
        Err(WebhookError::MethodNotAllowed)
    }
}

/// What is known of one call from its events so far.
#[derive(Clone, Debug)]
pub struct AmiCall {
    action_id: String,
    unique_id: Option<String>,
    answered_at: Option<f64>,
    dial_outcome: Option<CallOutcome>,
}

fn seconds(message: &AmiMessage, now: std::time::SystemTime) -> f64 {
    get(message, "Timestamp")
        .and_then(|t| t.parse::<f64>().ok())
        .unwrap_or_else(|| {
            now.duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or_default()
        })
}

impl AmiCall {
    pub fn new(action_id: impl Into<String>) -> Self {
        let action_id = action_id.into();
        AmiCall {
            // `ChannelId` makes the channel's Uniqueid our call id.
            unique_id: Some(action_id.clone()),
            action_id,
            answered_at: None,
            dial_outcome: None,
        }
    }

    fn ours(&self, message: &AmiMessage) -> bool {
        get(message, "Uniqueid").is_some_and(|u| Some(u) == self.unique_id.as_deref())
    }

    /// Takes one event; the outcome once the call is over. `now` stands in for a missing
    /// `Timestamp`.
    pub fn apply(
        &mut self,
        message: &AmiMessage,
        now: std::time::SystemTime,
    ) -> Option<CallOutcome> {
        match get(message, "Event")? {
            "OriginateResponse" if get(message, "ActionID") == Some(self.action_id.as_str()) => {
                if let Some(unique) =
                    get(message, "Uniqueid").filter(|u| !u.is_empty() && *u != "<null>")
                {
                    self.unique_id = Some(unique.to_string());
                }
                if get(message, "Response") == Some("Success") {
                    return None;
                }
                Some(match get(message, "Reason") {
                    Some("3") => CallOutcome::NoAnswer,
                    Some("5") => CallOutcome::Busy,
                    other => CallOutcome::Failed {
                        reason: format!("originate failed (reason {})", other.unwrap_or("?")),
                    },
                })
            }
            "DialEnd" if self.ours(message) => {
                match get(message, "DialStatus").unwrap_or("") {
                    "ANSWER" => self.answered_at = Some(seconds(message, now)),
                    "BUSY" => self.dial_outcome = Some(CallOutcome::Busy),
                    "NOANSWER" | "CANCEL" => self.dial_outcome = Some(CallOutcome::NoAnswer),
                    other => {
                        self.dial_outcome = Some(CallOutcome::Failed {
                            reason: reason(other),
                        })
                    }
                }
                None
            }
            "Hangup" if self.ours(message) => {
                if let Some(answered) = self.answered_at {
                    let talked = (seconds(message, now) - answered).max(0.0).round();
                    return Some(CallOutcome::Answered {
                        duration_secs: talked as u32,
                    });
                }
                if let Some(outcome) = &self.dial_outcome {
                    return Some(outcome.clone());
                }
                Some(match get(message, "Cause") {
                    Some("17") => CallOutcome::Busy,
                    Some("18" | "19") => CallOutcome::NoAnswer,
                    _ => CallOutcome::Failed {
                        reason: reason(get(message, "Cause-txt").unwrap_or("hung up")),
                    },
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(pairs: &[(&str, &str)]) -> AmiMessage {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn actions_refuse_injected_lines() {
        assert_eq!(
            encode(&[("Action", "Ping")]).unwrap(),
            "Action: Ping\r\n\r\n"
        );
        assert!(encode(&[("Secret", "x\r\nAction: Logoff")]).is_err());
    }

    #[test]
    fn events_give_the_outcome() {
        let now = std::time::SystemTime::now();
        let mut call = AmiCall::new("c1");
        assert_eq!(
            call.apply(
                &msg(&[
                    ("Event", "OriginateResponse"),
                    ("ActionID", "c1"),
                    ("Response", "Success"),
                    ("Reason", "4"),
                    ("Uniqueid", "c1")
                ]),
                now
            ),
            None
        );
        assert_eq!(
            call.apply(
                &msg(&[
                    ("Event", "DialEnd"),
                    ("Uniqueid", "c1"),
                    ("DialStatus", "ANSWER"),
                    ("Timestamp", "1000.250000")
                ]),
                now
            ),
            None
        );
        assert_eq!(
            call.apply(
                &msg(&[
                    ("Event", "Hangup"),
                    ("Uniqueid", "c1"),
                    ("Cause", "16"),
                    ("Timestamp", "1042.300000")
                ]),
                now
            ),
            Some(CallOutcome::Answered { duration_secs: 42 })
        );
        let mut busy = AmiCall::new("c2");
        assert_eq!(
            busy.apply(
                &msg(&[
                    ("Event", "OriginateResponse"),
                    ("ActionID", "c2"),
                    ("Response", "Failure"),
                    ("Reason", "5")
                ]),
                now
            ),
            Some(CallOutcome::Busy)
        );
        let mut other = AmiCall::new("c3");
        assert_eq!(
            other.apply(
                &msg(&[("Event", "Hangup"), ("Uniqueid", "zz"), ("Cause", "16")]),
                now
            ),
            None
        );
    }
}
