//! Click-to-call through the client's telephony: one small trait, [`Telephony`], that asks a
//! PBX or a voice provider to call the operator (or a configured number) first and bridge the
//! visitor, and one outcome type, [`CallOutcome`], that every provider's call events map to.
//!
//! Each provider is a module with its wire types, client and mapping:
//! - [`ari`]: Asterisk REST Interface, `POST /ari/channels` (HTTP Basic), events read from the
//!   application's WebSocket (`/ari/events`);
//! - [`ami`]: Asterisk Manager Interface over TCP, `Login` then `Originate` (async), events on the
//!   same connection (`OriginateResponse`, `DialEnd`, `Hangup`);
//! - [`zadarma`]: `GET /v1/request/callback/` signed with Zadarma's `Authorization` scheme, call
//!   notifications (`NOTIFY_OUT_START`/`NOTIFY_OUT_END`) posted to our webhook with a `Signature`;
//! - [`twilio`]: `POST /2010-04-01/Accounts/{Sid}/Calls.json` (Basic `AccountSid:AuthToken`,
//!   form-encoded), status callbacks signed with `X-Twilio-Signature`.
//!
//! Asterisk has no webhooks: a PBX reports on its own event stream, which the originate opens
//! and hands back as [`Originated::outcome`]. Zadarma and Twilio report to
//! `/hooks/{provider}/{channel}`, parsed by [`Telephony::call_hook`] after the signature check.

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use omnihub_core::model::Provider;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::provider::{ConfigError, WebhookError};
use crate::registry::Endpoints;

pub mod ami;
pub mod ari;
pub mod twilio;
pub mod zadarma;

/// The telephony providers a click-to-call channel can be connected to.
pub const PROVIDERS: [Provider; 4] = [
    Provider::AsteriskAri,
    Provider::AsteriskAmi,
    Provider::Zadarma,
    Provider::Twilio,
];

pub fn is_telephony(provider: Provider) -> bool {
    PROVIDERS.contains(&provider)
}

/// Whom the PBX calls first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FirstLeg {
    /// An operator's extension on the PBX (`100`).
    Extension(String),
    /// A phone number in E.164 (`+74951234567`), e.g. the office's.
    Number(String),
}

impl FirstLeg {
    pub fn value(&self) -> &str {
        match self {
            FirstLeg::Extension(s) | FirstLeg::Number(s) => s,
        }
    }
}

/// One call-back to place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRequest {
    /// Our id of the call: the PBX channel id (ARI, AMI) where the provider takes one, so its
    /// events name it.
    pub call_id: String,
    pub first: FirstLeg,
    /// The visitor's number in E.164, `+` included.
    pub visitor: String,
    /// How long each leg rings before it counts as not answered, in seconds.
    pub ring_timeout_secs: u32,
    /// Where the provider posts call events (Twilio's `StatusCallback`), on our public URL.
    pub status_callback: String,
}

/// What a call came to. `Answered` means the visitor was connected; its duration is the time
/// they talked, in seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CallOutcome {
    Answered { duration_secs: u32 },
    NoAnswer,
    Busy,
    Failed { reason: String },
}

impl CallOutcome {
    /// The stable name stored and shown (`answered`, `no_answer`, `busy`, `failed`).
    pub fn as_str(&self) -> &'static str {
        match self {
            CallOutcome::Answered { .. } => "answered",
            CallOutcome::NoAnswer => "no_answer",
            CallOutcome::Busy => "busy",
            CallOutcome::Failed { .. } => "failed",
        }
    }

    pub fn duration_secs(&self) -> Option<u32> {
        match self {
            CallOutcome::Answered { duration_secs } => Some(*duration_secs),
            _ => None,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            CallOutcome::Failed { reason } => Some(reason),
            _ => None,
        }
    }
}

/// How a provider's event names its call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallRef {
    /// The provider's own id, as [`Originated::provider_call_id`] gave it (Twilio's `CallSid`).
    ProviderId(String),
    /// Only the number called, digits only (Zadarma's notifications carry no id of the
    /// callback request).
    Destination(String),
}

/// One call event from a webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallEvent {
    pub call: CallRef,
    /// Unique per delivery of the provider's event and the same on a redelivery.
    pub event_id: String,
    /// `None` for progress (started, ringing) that decides nothing.
    pub outcome: Option<CallOutcome>,
}

/// What to answer a verified call-event webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallHookReply {
    /// A URL check (Zadarma's `zd_echo`): answer 200 with exactly this body.
    Echo(String),
    /// Events to apply; answer 200 once they are committed.
    Events(Vec<CallEvent>),
}

/// A webhook request as it arrived, with the public URL it was addressed to (Twilio signs the
/// URL).
#[derive(Clone, Debug)]
pub struct CallHookRequest<'a> {
    pub method: &'a str,
    /// The public URL the provider called, query included.
    pub url: &'a str,
    pub query: &'a str,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
}

impl CallHookRequest<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A call the provider accepted.
pub struct Originated {
    /// The provider's id of the call, when it gives one (Twilio's `CallSid`, ARI's channel id).
    pub provider_call_id: Option<String>,
    /// For PBXs that report on their own event stream (ARI, AMI): resolves to the outcome when
    /// the call ends (or the stream breaks: `Failed`). `None` when the outcome comes by webhook.
    pub outcome: Option<BoxFuture<'static, CallOutcome>>,
}

impl std::fmt::Debug for Originated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Originated")
            .field("provider_call_id", &self.provider_call_id)
            .field("outcome", &self.outcome.is_some())
            .finish()
    }
}

/// Why a call could not be placed; `reason` is in the provider's words and shown to operators.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TelephonyError {
    /// The PBX or provider refused our credentials.
    #[error("the provider refused the credentials: {0}")]
    Unauthorized(String),
    /// The provider refused the request (bad number, no money, unknown extension…).
    #[error("the provider refused the call: {0}")]
    Refused(String),
    /// It could not be reached or answered nonsense.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
}

/// A call placed earlier that nobody follows any more (the process that placed it restarted
/// before its outcome came), to ask the provider about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacedCall {
    /// Our id of the call ([`CallRequest::call_id`]).
    pub call_id: String,
    /// The provider's id, when it gave one.
    pub provider_call_id: Option<String>,
    /// The visitor's number in E.164.
    pub visitor: String,
    pub placed_at: chrono::DateTime<chrono::Utc>,
}

/// What a provider knows of a placed call now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallStatus {
    /// Still going: ask again later.
    Going,
    Ended(CallOutcome),
    /// The provider keeps no record of it, or cannot be asked.
    Unknown,
}

/// A connected telephony account.
#[async_trait]
pub trait Telephony: Send + Sync {
    /// Asks the provider to call `request.first` and, once answered, to bridge the visitor.
    async fn originate(&self, request: &CallRequest) -> Result<Originated, TelephonyError>;

    /// Asks the provider where a call nobody follows any more stands. Providers without a way
    /// to ask (AMI's events are gone with the connection) answer `Unknown`.
    async fn call_status(&self, _call: &PlacedCall) -> Result<CallStatus, TelephonyError> {
        Ok(CallStatus::Unknown)
    }

    /// Checks a call-event webhook's signature and parses it. PBXs without webhooks (Asterisk)
    /// answer [`WebhookError::MethodNotAllowed`].
    fn call_hook(&self, request: &CallHookRequest<'_>) -> Result<CallHookReply, WebhookError>;
}

/// The connected account of a telephony channel, from its stored credentials and settings.
pub fn telephony_channel(
    provider: Provider,
    credentials: Option<&Value>,
    settings: &Value,
    endpoints: &Endpoints,
) -> Result<Arc<dyn Telephony>, ConfigError> {
    Ok(match provider {
        Provider::AsteriskAri => Arc::new(ari::AriChannel::from_channel(
            credentials,
            settings,
            endpoints.private_pbx_hosts,
        )?),
        Provider::AsteriskAmi => Arc::new(ami::AmiChannel::from_channel(
            credentials,
            settings,
            endpoints.private_pbx_hosts,
        )?),
        Provider::Zadarma => Arc::new(zadarma::ZadarmaChannel::from_channel(
            credentials,
            &endpoints.zadarma,
        )?),
        Provider::Twilio => Arc::new(twilio::TwilioChannel::from_channel(
            credentials,
            settings,
            &endpoints.twilio,
        )?),
        other => {
            return Err(ConfigError(format!(
                "{} is not a telephony provider",
                other.as_str()
            )));
        }
    })
}

/// A required non-empty string of the credentials.
pub(crate) fn secret(credentials: Option<&Value>, key: &str) -> Result<String, ConfigError> {
    credentials
        .and_then(|c| c.get(key))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ConfigError(format!("credentials.{key} is required")))
}

/// An optional string setting; present but not a string is an error.
pub(crate) fn setting(settings: &Value, key: &str) -> Result<Option<String>, ConfigError> {
    match settings.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
        Some(_) => Err(ConfigError(format!(
            "settings.{key} must be a non-empty string"
        ))),
    }
}

/// A PBX's own address from the settings: an http(s) URL (ARI) or a host (AMI), refused when it
/// names the server's own network unless the server allows it (a tenant must not make the
/// server connect to internal services).
pub(crate) fn pbx_url(
    settings: &Value,
    key: &str,
    private_allowed: bool,
) -> Result<Url, ConfigError> {
    let raw = setting(settings, key)?
        .ok_or_else(|| ConfigError(format!("settings.{key} is required")))?;
    let url = Url::parse(&raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https" | "tcp") && u.has_host())
        .ok_or_else(|| ConfigError(format!("settings.{key}: `{raw}` is not a URL")))?;
    if !private_allowed && url.host_str().is_some_and(is_private_host) {
        return Err(ConfigError(format!(
            "settings.{key}: `{raw}` is an address on the server's own network, which PBXs may \
             not use unless the server allows it"
        )));
    }
    Ok(url)
}

/// `localhost` and addresses of the server's own network, as written (see [`crate::net_guard`]).
pub(crate) fn is_private_host(host: &str) -> bool {
    crate::net_guard::is_private_host(host)
}

/// The digits of a number (`+7 495…` → `7495…`): what PBX dialplans and Zadarma take.
pub fn digits(number: &str) -> String {
    number.chars().filter(char::is_ascii_digit).collect()
}

/// Characters a dial string may carry; anything else could inject into a PBX's dial string or
/// an AMI message.
pub(crate) fn dialable(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '_' | '.' | '@' | '/'))
}

/// A reason from a provider, cut and without control characters.
pub(crate) fn reason(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(crate::rest_client::MAX_REASON)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dial_strings_refuse_injection() {
        assert!(dialable("100"));
        assert!(dialable("+74951234567"));
        assert!(!dialable("100\r\nAction: Logoff"));
        assert!(!dialable("100&app=x"));
        assert!(!dialable(""));
        assert_eq!(digits("+7 (495) 123-45-67"), "74951234567");
    }

    #[test]
    fn private_pbx_hosts_are_recognised() {
        for host in ["localhost", "127.0.0.1", "10.0.0.5", "[::1]", "192.168.1.1"] {
            assert!(is_private_host(host), "{host}");
        }
        assert!(!is_private_host("pbx.example.com"));
        assert!(!is_private_host("8.8.8.8"));
    }

    #[test]
    fn outcomes_have_stable_names() {
        assert_eq!(
            CallOutcome::Answered { duration_secs: 3 }.as_str(),
            "answered"
        );
        assert_eq!(CallOutcome::NoAnswer.as_str(), "no_answer");
        assert_eq!(CallOutcome::Busy.as_str(), "busy");
        assert_eq!(
            CallOutcome::Failed { reason: "x".into() }.reason(),
            Some("x")
        );
    }
}
