//! Twilio Voice: `POST /2010-04-01/Accounts/{AccountSid}/Calls.json`, form-encoded, HTTP Basic
//! `AccountSid:AuthToken`. Twilio calls `To` (the operator or the configured number) from the
//! channel's `From` number and, once answered, runs our TwiML: a `<Dial>` of the visitor whose
//! `<Number>` reports its own progress. Status callbacks of both legs come to our hook, signed
//! with `X-Twilio-Signature` = base64(HMAC-SHA1(AuthToken, URL + each POST parameter's name and
//! value, sorted by name)). The visitor's leg names the parent call in `ParentCallSid`.

use async_trait::async_trait;
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;
use sha1::Sha1;

use super::{
    CallEvent, CallHookReply, CallHookRequest, CallOutcome, CallRef, CallRequest, CallStatus,
    FirstLeg, Originated, PlacedCall, Telephony, TelephonyError, reason, secret, setting,
};
use crate::provider::{ConfigError, WebhookError};
use crate::rest_client;
use crate::signing::constant_time_eq;

/// The call-progress events we ask for.
pub const STATUS_EVENTS: [&str; 4] = ["initiated", "ringing", "answered", "completed"];

/// `X-Twilio-Signature` of a POST to `url` with these form parameters.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut text = url.to_string();
    for (k, v) in sorted {
        text.push_str(k);
        text.push_str(v);
    }
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()) else {
        return String::new();
    };
    mac.update(text.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The part of Twilio's call resource we read.
#[derive(Clone, Debug, Deserialize)]
pub struct CallResource {
    pub sid: String,
    #[serde(default)]
    pub status: Option<String>,
    /// Seconds, as a string; absent until the call ends.
    #[serde(default)]
    pub duration: Option<String>,
}

/// A page of `GET …/Calls.json`.
#[derive(Clone, Debug, Deserialize)]
pub struct CallList {
    #[serde(default)]
    pub calls: Vec<CallResource>,
}

/// Twilio's error body.
#[derive(Clone, Debug, Deserialize)]
pub struct TwilioError {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub message: Option<String>,
}

pub struct TwilioChannel {
    http: reqwest::Client,
    base: Url,
    account_sid: String,
    auth_token: String,
    from: String,
}

impl TwilioChannel {
    pub fn from_channel(
        credentials: Option<&Value>,
        settings: &Value,
        base: &Url,
    ) -> Result<Self, ConfigError> {
        let account_sid = secret(credentials, "account_sid")?;
        if !account_sid.starts_with("AC")
            || !account_sid[2..].chars().all(|c| c.is_ascii_hexdigit())
        {
            return Err(ConfigError(
                "credentials.account_sid must look like AC…".into(),
            ));
        }
        let from = setting(settings, "from_number")?
            .ok_or_else(|| ConfigError("settings.from_number is required".into()))?;
        Ok(TwilioChannel {
            http: rest_client::client().map_err(ConfigError)?,
            base: base.clone(),
            account_sid,
            auth_token: secret(credentials, "auth_token")?,
            from,
        })
    }

    /// The TwiML run when the first leg answers: dial the visitor, reporting that leg too.
    pub fn twiml(request: &CallRequest) -> String {
        let callback = xml_escape(&request.status_callback);
        format!(
            "<Response><Dial timeout=\"{}\"><Number statusCallbackEvent=\"{}\" \
             statusCallback=\"{callback}\" statusCallbackMethod=\"POST\">{}</Number></Dial></Response>",
            request.ring_timeout_secs,
            STATUS_EVENTS.join(" "),
            xml_escape(&request.visitor)
        )
    }
}

impl TwilioChannel {
    /// A GET of the REST API as JSON; `None` for 404.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<T>, TelephonyError> {
        let url = self
            .base
            .join(path)
            .map_err(|e| TelephonyError::Unavailable(e.to_string()))?;
        let answer = rest_client::fetch(
            self.http
                .get(url)
                .timeout(rest_client::TIMEOUT)
                .basic_auth(&self.account_sid, Some(&self.auth_token))
                .query(query),
            rest_client::MAX_API_BODY,
        )
        .await
        .map_err(|e| TelephonyError::Unavailable(e.to_string()))?;
        match answer.status.as_u16() {
            200 => serde_json::from_slice(&answer.body)
                .map(Some)
                .map_err(|e| TelephonyError::Unavailable(format!("unexpected answer: {e}"))),
            404 => Ok(None),
            401 | 403 => Err(TelephonyError::Unauthorized(format!(
                "HTTP {}",
                answer.status
            ))),
            status => Err(TelephonyError::Unavailable(format!("HTTP {status}"))),
        }
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[async_trait]
impl Telephony for TwilioChannel {
    async fn originate(&self, request: &CallRequest) -> Result<Originated, TelephonyError> {
        let to = match &request.first {
            FirstLeg::Number(n) => n.clone(),
            // A Twilio "extension" is a SIP address or a Client identity the account routes.
            FirstLeg::Extension(e) => e.clone(),
        };
        let url = self
            .base
            .join(&format!(
                "2010-04-01/Accounts/{}/Calls.json",
                self.account_sid
            ))
            .map_err(|e| TelephonyError::Unavailable(e.to_string()))?;
        let timeout = request.ring_timeout_secs.to_string();
        let mut form: Vec<(&str, String)> = vec![
            ("To", to),
            ("From", self.from.clone()),
            ("Twiml", Self::twiml(request)),
            ("StatusCallback", request.status_callback.clone()),
            ("StatusCallbackMethod", "POST".into()),
            ("Timeout", timeout),
        ];
        for event in STATUS_EVENTS {
            form.push(("StatusCallbackEvent", event.into()));
        }
        let answer = rest_client::fetch(
            self.http
                .post(url)
                .timeout(rest_client::TIMEOUT)
                .basic_auth(&self.account_sid, Some(&self.auth_token))
                .form(&form),
            rest_client::MAX_API_BODY,
        )
        .await
        .map_err(|e| TelephonyError::Unavailable(e.to_string()))?;
        let status = answer.status.as_u16();
        if (200..300).contains(&status) {
            let call: CallResource = serde_json::from_slice(&answer.body)
                .map_err(|e| TelephonyError::Unavailable(format!("unexpected answer: {e}")))?;
            return Ok(Originated {
                provider_call_id: Some(call.sid),
                outcome: None,
            });
        }
        let error: Option<TwilioError> = serde_json::from_slice(&answer.body).ok();
        let message = error
            .map(|e| {
                format!(
                    "{} {}",
                    e.code.unwrap_or_default(),
                    e.message.unwrap_or_default()
                )
            })
            .unwrap_or_else(|| format!("HTTP {status}"));
        Err(match status {
            401 | 403 => TelephonyError::Unauthorized(reason(&message)),
            400 | 404 | 422 => TelephonyError::Refused(reason(&message)),
            _ => TelephonyError::Unavailable(reason(&message)),
        })
    }

    /// The visitor's leg (`GET Calls.json?ParentCallSid=`) decides, as in the status
    /// callbacks; with none, the first leg (`GET Calls/{Sid}.json`): still going, or ended
    /// before the visitor was dialled.
    async fn call_status(&self, call: &PlacedCall) -> Result<CallStatus, TelephonyError> {
        let Some(sid) = call
            .provider_call_id
            .as_deref()
            .filter(|s| s.starts_with("CA") && s[2..].chars().all(|c| c.is_ascii_alphanumeric()))
        else {
            return Ok(CallStatus::Unknown);
        };
        let account = &self.account_sid;
        let children: CallList = self
            .get(
                &format!("2010-04-01/Accounts/{account}/Calls.json"),
                &[("ParentCallSid", sid)],
            )
            .await?
            .ok_or_else(|| TelephonyError::Unavailable("the call list is missing".into()))?;
        let (resource, visitor_leg) = match children.calls.into_iter().next() {
            Some(child) => (child, true),
            None => match self
                .get::<CallResource>(
                    &format!("2010-04-01/Accounts/{account}/Calls/{sid}.json"),
                    &[],
                )
                .await?
            {
                Some(parent) => (parent, false),
                None => return Ok(CallStatus::Unknown),
            },
        };
        let status = resource.status.unwrap_or_default();
        let duration = resource.duration.unwrap_or_default();
        match status_outcome(&status, &duration, visitor_leg) {
            Ok(Some(outcome)) => Ok(CallStatus::Ended(outcome)),
            Ok(None) => Ok(CallStatus::Going),
            Err(e) => Err(TelephonyError::Unavailable(reason(&format!("{e:?}")))),
        }
    }

    fn call_hook(&self, request: &CallHookRequest<'_>) -> Result<CallHookReply, WebhookError> {
        if request.method != "POST" {
            return Err(WebhookError::MethodNotAllowed);
        }
        let params: Vec<(String, String)> =
            serde_urlencoded::from_bytes(request.body).map_err(|_| WebhookError::Unauthorized)?;
        let given = request.header("x-twilio-signature").unwrap_or_default();
        let expected = signature(&self.auth_token, request.url, &params);
        if given.is_empty() || !constant_time_eq(expected.as_bytes(), given.as_bytes()) {
            return Err(WebhookError::Unauthorized);
        }
        let field = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_default()
        };
        if field("AccountSid") != self.account_sid {
            return Err(WebhookError::Unauthorized);
        }
        let call_sid = field("CallSid");
        if call_sid.is_empty() {
            return Err(WebhookError::Malformed("no CallSid".into()));
        }
        let parent = field("ParentCallSid");
        let call = if parent.is_empty() { call_sid } else { parent };
        let status = field("CallStatus");
        let outcome = status_outcome(status, field("CallDuration"), !parent.is_empty())?;
        Ok(CallHookReply::Events(vec![CallEvent {
            call: CallRef::ProviderId(call.to_string()),
            event_id: format!("{call_sid}:{status}:{}", field("SequenceNumber")),
            outcome,
        }]))
    }
}

/// A `CallStatus` as an outcome. The visitor's leg decides; the first leg's `completed` counts
/// only when the visitor's leg never reported (its own outcome is kept first otherwise).
pub fn status_outcome(
    status: &str,
    duration: &str,
    visitor_leg: bool,
) -> Result<Option<CallOutcome>, WebhookError> {
    Ok(match status {
        "queued" | "initiated" | "ringing" | "in-progress" | "answered" => None,
        "completed" if visitor_leg => Some(CallOutcome::Answered {
            duration_secs: duration
                .trim()
                .parse()
                .map_err(|_| WebhookError::Malformed(format!("CallDuration `{duration}`")))?,
        }),
        "completed" => Some(CallOutcome::Failed {
            reason: "the first leg ended before the visitor was connected".into(),
        }),
        "busy" => Some(CallOutcome::Busy),
        "no-answer" => Some(CallOutcome::NoAnswer),
        "failed" | "canceled" => Some(CallOutcome::Failed {
            reason: status.to_string(),
        }),
        other => return Err(WebhookError::Malformed(format!("CallStatus `{other}`"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_twilios_documented_example() {
        // The example of Twilio's "Webhooks security" page.
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            signature(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }

    #[test]
    fn statuses_map_to_outcomes() {
        assert_eq!(status_outcome("ringing", "", false).unwrap(), None);
        assert_eq!(
            status_outcome("completed", "17", true).unwrap(),
            Some(CallOutcome::Answered { duration_secs: 17 })
        );
        assert_eq!(
            status_outcome("busy", "", true).unwrap(),
            Some(CallOutcome::Busy)
        );
        assert_eq!(
            status_outcome("no-answer", "", false).unwrap(),
            Some(CallOutcome::NoAnswer)
        );
        assert!(status_outcome("exploded", "", false).is_err());
    }

    #[test]
    fn twiml_escapes_what_it_embeds() {
        let request = CallRequest {
            call_id: "c".into(),
            first: FirstLeg::Number("+74950000000".into()),
            visitor: "+79991234567".into(),
            ring_timeout_secs: 20,
            status_callback: "https://h/hooks/twilio/x?a=1&b=2".into(),
        };
        let twiml = TwilioChannel::twiml(&request);
        assert!(twiml.contains("a=1&amp;b=2"));
        assert!(twiml.contains(">+79991234567</Number>"));
    }
}
