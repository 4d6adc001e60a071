//! Zadarma's callback API and its call notifications.
//!
//! - Request: `GET /v1/request/callback/?from=&to=[&sip=][&predicted=]`; Zadarma calls `from`
//!   (an extension or number) first, then `to`. Every API call carries
//!   `Authorization: <userKey>:<signature>`, where the signature is
//!   `base64(hex(HMAC-SHA1(secret, path + query + md5hex(query))))` over the parameters sorted by
//!   name and form-encoded (RFC 1738). Zadarma's own libraries base64 the *hex* digest.
//! - Notifications: form POSTs to our URL with a `Signature` header, the same base64-of-hex
//!   HMAC-SHA1 keyed with the secret over selected fields (`internal + destination + call_start`
//!   for `NOTIFY_OUT_START` and `NOTIFY_OUT_END`). A GET with `zd_echo` is the URL check and is
//!   answered with its value.
//! - Statistics: `GET /v1/statistics/?start=&end=`, signed the same way, lists the account's
//!   calls with their `disposition` and `billseconds`: how a call whose notifications were lost
//!   ended. Its times are read as UTC (the account's time zone must be UTC for a lost call to
//!   be found; otherwise it is marked interrupted).

use async_trait::async_trait;
use base64::Engine;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;
use sha1::Sha1;

use super::{
    CallEvent, CallHookReply, CallHookRequest, CallOutcome, CallRef, CallRequest, CallStatus,
    Originated, PlacedCall, Telephony, TelephonyError, digits, reason, secret,
};
use crate::provider::{ConfigError, WebhookError};
use crate::rest_client;
use crate::signing::constant_time_eq;

/// The callback method's path, as signed.
pub const CALLBACK_PATH: &str = "/v1/request/callback/";
/// The statistics method's path, as signed.
pub const STATISTICS_PATH: &str = "/v1/statistics/";
/// The statistics' date format.
const STAT_TIME: &str = "%Y-%m-%d %H:%M:%S";

/// Form-encodes parameters sorted by name, as Zadarma signs them (spaces as `+`).
pub fn sorted_query(params: &[(&str, &str)]) -> String {
    let mut sorted: Vec<(&str, &str)> = params.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    serde_urlencoded::to_string(sorted).unwrap_or_default()
}

/// `base64(hex(HMAC-SHA1(secret, text)))`, the form Zadarma uses for requests and notifications.
pub fn sign(secret: &str, text: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(text.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    base64::engine::general_purpose::STANDARD.encode(hex)
}

/// The `Authorization` header of an API call: `userKey:signature`.
pub fn authorization(user_key: &str, secret: &str, path: &str, query: &str) -> String {
    let md5: String = Md5::digest(query.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{user_key}:{}",
        sign(secret, &format!("{path}{query}{md5}"))
    )
}

/// Zadarma's answer to the callback request.
#[derive(Clone, Debug, Deserialize)]
pub struct CallbackAnswer {
    pub status: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub time: Option<i64>,
}

/// Zadarma's answer to a statistics request (the fields we read).
#[derive(Clone, Debug, Deserialize)]
pub struct Statistics {
    pub status: String,
    #[serde(default)]
    pub stats: Vec<CallRecord>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct CallRecord {
    pub callstart: String,
    pub to: String,
    pub disposition: String,
    #[serde(default)]
    pub billseconds: i64,
}

pub struct ZadarmaChannel {
    http: reqwest::Client,
    base: Url,
    user_key: String,
    secret: String,
}

impl ZadarmaChannel {
    pub fn from_channel(credentials: Option<&Value>, base: &Url) -> Result<Self, ConfigError> {
        Ok(ZadarmaChannel {
            http: rest_client::client().map_err(ConfigError)?,
            base: base.clone(),
            user_key: secret(credentials, "user_key")?,
            secret: secret(credentials, "secret")?,
        })
    }
}

#[async_trait]
impl Telephony for ZadarmaChannel {
    async fn originate(&self, request: &CallRequest) -> Result<Originated, TelephonyError> {
        let from = digits(request.first.value());
        let to = digits(&request.visitor);
        let query = sorted_query(&[("from", &from), ("to", &to)]);
        let mut url = self
            .base
            .join(CALLBACK_PATH.trim_start_matches('/'))
            .map_err(|e| TelephonyError::Unavailable(e.to_string()))?;
        url.set_query(Some(&query));
        let answer = rest_client::fetch(
            self.http.get(url).timeout(rest_client::TIMEOUT).header(
                "Authorization",
                authorization(&self.user_key, &self.secret, CALLBACK_PATH, &query),
            ),
            rest_client::MAX_API_BODY,
        )
        .await
        .map_err(|e| TelephonyError::Unavailable(e.to_string()))?;
        let parsed: Option<CallbackAnswer> = serde_json::from_slice(&answer.body).ok();
        let message = parsed
            .as_ref()
            .and_then(|a| a.message.clone())
            .unwrap_or_else(|| String::from_utf8_lossy(&answer.body).into_owned());
        match answer.status.as_u16() {
            200 if parsed.as_ref().is_some_and(|a| a.status == "success") => Ok(Originated {
                provider_call_id: None,
                outcome: None,
            }),
            401 | 403 => Err(TelephonyError::Unauthorized(reason(&message))),
            200 | 400 | 404 | 422 => Err(TelephonyError::Refused(reason(&message))),
            status => Err(TelephonyError::Unavailable(reason(&format!(
                "HTTP {status}: {message}"
            )))),
        }
    }

    /// The first call to the visitor's number in the statistics since it was placed (a
    /// minute's leeway for clocks); none there yet is `Unknown`.
    async fn call_status(&self, call: &PlacedCall) -> Result<CallStatus, TelephonyError> {
        let since = call.placed_at - chrono::Duration::minutes(1);
        let start = since.format(STAT_TIME).to_string();
        let end = chrono::Utc::now().format(STAT_TIME).to_string();
        let query = sorted_query(&[("start", &start), ("end", &end)]);
        let mut url = self
            .base
            .join(STATISTICS_PATH.trim_start_matches('/'))
            .map_err(|e| TelephonyError::Unavailable(e.to_string()))?;
        url.set_query(Some(&query));
        let answer = rest_client::fetch(
            self.http.get(url).timeout(rest_client::TIMEOUT).header(
                "Authorization",
                authorization(&self.user_key, &self.secret, STATISTICS_PATH, &query),
            ),
            rest_client::MAX_API_BODY,
        )
        .await
        .map_err(|e| TelephonyError::Unavailable(e.to_string()))?;
        match answer.status.as_u16() {
            200 => {}
            401 | 403 => {
                return Err(TelephonyError::Unauthorized(reason(
                    &String::from_utf8_lossy(&answer.body),
                )));
            }
            status => return Err(TelephonyError::Unavailable(format!("HTTP {status}"))),
        }
        let parsed: Statistics = serde_json::from_slice(&answer.body)
            .map_err(|e| TelephonyError::Unavailable(format!("unexpected answer: {e}")))?;
        if parsed.status != "success" {
            return Err(TelephonyError::Unavailable(reason(&parsed.status)));
        }
        let visitor = digits(&call.visitor);
        let first = parsed
            .stats
            .iter()
            .filter(|r| digits(&r.to) == visitor)
            .filter_map(|r| {
                chrono::NaiveDateTime::parse_from_str(&r.callstart, STAT_TIME)
                    .ok()
                    .filter(|at| *at >= since.naive_utc())
                    .map(|at| (at, r))
            })
            .min_by_key(|(at, _)| *at);
        Ok(match first {
            Some((_, record)) => CallStatus::Ended(
                outcome(&record.disposition, &record.billseconds.to_string())
                    .map_err(|e| TelephonyError::Unavailable(reason(&format!("{e:?}"))))?,
            ),
            None => CallStatus::Unknown,
        })
    }

    fn call_hook(&self, request: &CallHookRequest<'_>) -> Result<CallHookReply, WebhookError> {
        if request.method == "GET" {
            let echo = url_param(request.query, "zd_echo").ok_or(WebhookError::Unauthorized)?;
            return Ok(CallHookReply::Echo(echo));
        }
        if request.method != "POST" {
            return Err(WebhookError::MethodNotAllowed);
        }
        let form: Vec<(String, String)> =
            serde_urlencoded::from_bytes(request.body).map_err(|_| WebhookError::Unauthorized)?;
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_default()
        };
        let event = field("event");
        let signed = match event {
            "NOTIFY_OUT_START" | "NOTIFY_OUT_END" => {
                format!(
                    "{}{}{}",
                    field("internal"),
                    field("destination"),
                    field("call_start")
                )
            }
            "NOTIFY_START" | "NOTIFY_END" => format!(
                "{}{}{}",
                field("caller_id"),
                field("called_did"),
                field("call_start")
            ),
            // Events a callback never causes still need a valid signature to be acknowledged.
            _ => format!("{}{}", field("pbx_call_id"), field("call_start")),
        };
        let given = request.header("signature").unwrap_or_default();
        if given.is_empty()
            || !constant_time_eq(sign(&self.secret, &signed).as_bytes(), given.as_bytes())
        {
            return Err(WebhookError::Unauthorized);
        }
        let event_id = format!("{}:{event}", field("pbx_call_id"));
        let destination = digits(field("destination"));
        let events = match event {
            "NOTIFY_OUT_START" if !destination.is_empty() => vec![CallEvent {
                call: CallRef::Destination(destination),
                event_id,
                outcome: None,
            }],
            "NOTIFY_OUT_END" if !destination.is_empty() => vec![CallEvent {
                call: CallRef::Destination(destination),
                event_id,
                outcome: Some(outcome(field("disposition"), field("duration"))?),
            }],
            "NOTIFY_OUT_START" | "NOTIFY_OUT_END" => {
                return Err(WebhookError::Malformed("no destination".into()));
            }
            _ => Vec::new(),
        };
        Ok(CallHookReply::Events(events))
    }
}

/// `NOTIFY_OUT_END`'s disposition and duration as an outcome.
pub fn outcome(disposition: &str, duration: &str) -> Result<CallOutcome, WebhookError> {
    Ok(match disposition {
        "answered" => CallOutcome::Answered {
            duration_secs: duration
                .trim()
                .parse()
                .map_err(|_| WebhookError::Malformed(format!("duration `{duration}`")))?,
        },
        "busy" => CallOutcome::Busy,
        "no answer" | "cancel" => CallOutcome::NoAnswer,
        "" => return Err(WebhookError::Malformed("no disposition".into())),
        other => CallOutcome::Failed {
            reason: reason(other),
        },
    })
}

fn url_param(query: &str, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_zadarmas_libraries() {
        // The digest is hex first, then base64: 40 hex characters make 56 base64 characters.
        let s = sign("secret", "text");
        assert_eq!(s.len(), 56);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&s)
            .unwrap();
        assert!(decoded.iter().all(u8::is_ascii_hexdigit));
        assert_eq!(
            sorted_query(&[("to", "7999"), ("from", "100")]),
            "from=100&to=7999"
        );
        assert_eq!(sorted_query(&[("a", "b c+")]), "a=b+c%2B");
        // Computed independently with Python's hmac/hashlib, the PHP library's algorithm.
        assert_eq!(
            authorization("key", "secret", CALLBACK_PATH, "from=100&to=7999"),
            "key:OWM5YmQ2YTVlZjc2MzFlYzY4OWU3ZDVkZWNiZDI4NDI1ZjNmYzAzZg=="
        );
    }

    #[test]
    fn dispositions_map_to_outcomes() {
        assert_eq!(
            outcome("answered", "42").unwrap(),
            CallOutcome::Answered { duration_secs: 42 }
        );
        assert_eq!(outcome("busy", "0").unwrap(), CallOutcome::Busy);
        assert_eq!(outcome("no answer", "0").unwrap(), CallOutcome::NoAnswer);
        assert!(matches!(
            outcome("no money", "0").unwrap(),
            CallOutcome::Failed { .. }
        ));
        assert!(outcome("answered", "x").is_err());
    }
}
