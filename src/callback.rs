//! The call-back service: a visitor (through the website widget's public route) or an operator
//! (through `POST /api/v1/conversations/{id}/callback`) asks the client's telephony to call the
//! operator, or a configured number, and bridge the visitor's phone.
//!
//! It owns the rules around a call: the number parsed and validated as E.164 (`phonenumber`,
//! libphonenumber's metadata), the channel's working hours, the limits per number, per IP and
//! per visitor, and the captcha hook ([`CaptchaVerifier`], off unless configured). Each attempt
//! is a row of `calls` and a note of the system in the conversation ("call-back requested"),
//! its outcome another (answered with its duration, no answer, busy, failed), both pushed to
//! operators through the hub like any message. Outcomes arrive by webhook (Zadarma, Twilio:
//! [`call_hook`]) or from the PBX's own event stream (Asterisk), and the first one wins: a
//! provider's redelivery or a later leg changes nothing.
//!
//! The limits are counted in the store, not in memory: they must hold across restarts and
//! across the nodes of a scale-out, where a per-process `governor` would let each node allow
//! its own share. The counts are indexed reads of an hour of a client's calls.
//!
//! A restart cuts the PBX event streams this process followed, and a webhook may be lost while
//! it is down: [`CallSweep`] looks at every call still without an outcome some minutes after it
//! was placed, asks the provider where it has a way to ask ([`Telephony::call_status`]: ARI's
//! channel, Twilio's call resources, Zadarma's statistics) and records what it says; a call
//! the provider cannot tell about is marked failed with the reason `interrupted` once it is
//! known to be cut off (placed before this process started, or older than any call is
//! followed).

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use omnihub_connectors::telephony::{
    self, CallHookReply, CallHookRequest, CallOutcome, CallRef, CallRequest, CallStatus, FirstLeg,
    PlacedCall, Telephony,
};
use omnihub_core::model::{Call, CallOutcomeKind, Channel, Conversation, Provider};
use omnihub_core::routing::WeeklyHours;
use omnihub_core::{CallId, ChannelId, ClientId, ConversationId, UserId};
use omnihub_store::{CallsBy, InboundEvent, Ingest, NewCall, StoreError};
use serde::Deserialize;
use serde_json::Value;

use crate::http::error::{ApiError, ApiResult};
use crate::i18n::{Lang, Msg};
use crate::state::AppState;

/// A captcha check of a visitor's token, before any call is placed.
#[async_trait]
pub trait CaptchaVerifier: Send + Sync {
    /// Whether the token is a solved captcha; `false` on any doubt (the verifier unreachable
    /// included: a call-back is not worth an open door).
    async fn verify(&self, token: &str, ip: Option<IpAddr>) -> bool;
}

/// A "siteverify"-style verifier: POST `secret`, `response` and `remoteip` as a form, read
/// `success` of the JSON answer.
pub struct HttpCaptcha {
    http: reqwest::Client,
    url: reqwest::Url,
    secret: String,
}

impl HttpCaptcha {
    pub fn new(url: &str, secret: &str) -> Result<Self, String> {
        let url = reqwest::Url::parse(url).map_err(|e| format!("captcha_verify_url: {e}"))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(HttpCaptcha {
            http,
            url,
            secret: secret.to_string(),
        })
    }
}

#[derive(Deserialize)]
struct SiteVerify {
    success: bool,
}

#[async_trait]
impl CaptchaVerifier for HttpCaptcha {
    async fn verify(&self, token: &str, ip: Option<IpAddr>) -> bool {
        let mut form = vec![
            ("secret", self.secret.clone()),
            ("response", token.to_string()),
        ];
        if let Some(ip) = ip {
            form.push(("remoteip", ip.to_string()));
        }
        let answer = self.http.post(self.url.clone()).form(&form).send().await;
        match answer {
            Ok(response) if response.status().is_success() => {
                response.json::<SiteVerify>().await.is_ok_and(|v| v.success)
            }
            Ok(_) | Err(_) => false,
        }
    }
}

/// The call-back part of a telephony channel's settings (beside the provider's own keys).
#[derive(Clone, Debug, Deserialize)]
pub struct CallbackSettings {
    /// Whom the PBX calls first: `{"extension": "100"}` or `{"number": "+74951234567"}`.
    pub first: FirstLeg,
    /// When call-backs are taken; always, when absent.
    #[serde(default)]
    pub hours: Option<WeeklyHours>,
    #[serde(default)]
    pub limits: CallLimits,
    /// How long each leg rings, in seconds (5–120).
    #[serde(default = "default_ring")]
    pub ring_timeout_secs: u32,
    /// The region of numbers written without `+` (ISO 3166 code, e.g. `RU`); without it every
    /// number must start with `+`.
    #[serde(default)]
    pub default_region: Option<String>,
    /// The language of the notes in conversations, `ru` or `en`.
    #[serde(default = "default_language")]
    pub language: String,
}

fn default_ring() -> u32 {
    25
}

fn default_language() -> String {
    "ru".into()
}

/// Call-backs allowed per window, by number (whoever asks), by IP and by visitor (visitors).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallLimits {
    pub per_number: u32,
    pub per_ip: u32,
    pub per_visitor: u32,
    pub window_minutes: u32,
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits {
            per_number: 3,
            per_ip: 5,
            per_visitor: 3,
            window_minutes: 60,
        }
    }
}

impl CallbackSettings {
    /// The settings of a telephony channel, checked; the error names what is wrong.
    pub fn of(settings: &Value) -> Result<Self, String> {
        let parsed: CallbackSettings =
            serde_json::from_value(settings.clone()).map_err(|e| e.to_string())?;
        if let Some(hours) = &parsed.hours {
            hours.validate().map_err(|e| format!("hours: {e}"))?;
        }
        if !(5..=120).contains(&parsed.ring_timeout_secs) {
            return Err("ring_timeout_secs must be 5–120".into());
        }
        if parsed.limits.window_minutes == 0 || parsed.limits.window_minutes > 7 * 24 * 60 {
            return Err("limits.window_minutes must be 1–10080".into());
        }
        if let Some(region) = &parsed.default_region
            && region.parse::<phonenumber::country::Id>().is_err()
        {
            return Err(format!("default_region: `{region}` is not a country code"));
        }
        if !matches!(parsed.language.as_str(), "ru" | "en") {
            return Err("language must be `ru` or `en`".into());
        }
        match &parsed.first {
            FirstLeg::Number(n) => {
                e164(n, None).ok_or_else(|| format!("first.number: `{n}` is not E.164"))?;
            }
            FirstLeg::Extension(e) => {
                if e.is_empty()
                    || e.len() > 32
                    || !e
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.@+".contains(c))
                {
                    return Err(format!("first.extension: `{e}` is not an extension"));
                }
            }
        }
        Ok(parsed)
    }

    fn lang(&self) -> Lang {
        if self.language == "en" {
            Lang::En
        } else {
            Lang::Ru
        }
    }
}

/// Checks a telephony channel's settings and credentials before they are saved.
pub fn validate_channel(
    state: &AppState,
    provider: Provider,
    settings: &Value,
    credentials: Option<&Value>,
) -> ApiResult<()> {
    let invalid = |detail: String| ApiError::Validation(Msg::TelephonySettings { detail });
    CallbackSettings::of(settings).map_err(invalid)?;
    telephony::telephony_channel(provider, credentials, settings, &state.endpoints)
        .map_err(|e| invalid(e.0))?;
    Ok(())
}

/// A number as E.164 when it is a valid phone number (with `+`, or in `region`).
pub fn e164(raw: &str, region: Option<&str>) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > 40 {
        return None;
    }
    let region = region.and_then(|r| r.parse::<phonenumber::country::Id>().ok());
    if region.is_none() && !raw.starts_with('+') {
        return None;
    }
    let number = phonenumber::parse(region, raw).ok()?;
    phonenumber::is_valid(&number)
        .then(|| number.format().mode(phonenumber::Mode::E164).to_string())
}

/// Who asks for a call-back and where it shows.
#[derive(Clone, Debug)]
pub struct CallbackRequest {
    pub client_id: ClientId,
    /// The telephony channel to use; the client's first one when `None`.
    pub channel_id: Option<ChannelId>,
    /// The conversation the attempt shows in; a conversation of the telephony channel keyed by
    /// the number is found or opened when `None`.
    pub conversation_id: Option<ConversationId>,
    pub number: String,
    /// The website visitor's id, for visitors' requests.
    pub visitor: Option<String>,
    pub ip: Option<IpAddr>,
    pub captcha_token: Option<String>,
    /// The employee who asks; `None` for a visitor (who then faces the captcha and the
    /// per-IP and per-visitor limits).
    pub requested_by: Option<UserId>,
}

/// Places a call-back after every check; the call as recorded (its outcome follows).
pub async fn request_callback(state: &AppState, request: CallbackRequest) -> ApiResult<Call> {
    let client = request.client_id;
    let channel = telephony_channel_of(state, client, request.channel_id).await?;
    let settings = CallbackSettings::of(&channel.settings)
        .map_err(|detail| ApiError::Conflict(Msg::TelephonySettings { detail }))?;
    let number = e164(&request.number, settings.default_region.as_deref()).ok_or_else(|| {
        ApiError::Validation(Msg::InvalidPhone {
            number: request.number.chars().take(40).collect(),
        })
    })?;
    let visitor_asks = request.requested_by.is_none();
    if let Some(hours) = &settings.hours
        && !hours.is_open(Utc::now()).unwrap_or(false)
    {
        return Err(ApiError::OutOfHours);
    }
    if visitor_asks && let Some(captcha) = &state.captcha {
        let token = request.captcha_token.as_deref().unwrap_or_default();
        if token.is_empty() || token.len() > 4096 || !captcha.verify(token, request.ip).await {
            return Err(ApiError::CaptchaFailed);
        }
    }
    check_limits(
        state,
        client,
        &settings.limits,
        &number,
        &request,
        visitor_asks,
    )
    .await?;

    let call_id = CallId::new();
    let conversation = match request.conversation_id {
        Some(id) => state.store.get_conversation(client, id).await?,
        None => open_conversation(state, &channel, &number, call_id).await?,
    };
    let call = state
        .store
        .create_call(&NewCall {
            id: call_id,
            client_id: client,
            channel_id: channel.id,
            conversation_id: conversation.id,
            number: number.clone(),
            visitor: request.visitor.clone(),
            ip: request.ip.map(|ip| ip.to_string()),
            requested_by: request.requested_by,
        })
        .await?;
    let lang = settings.lang();
    state
        .hub
        .add_system_note(
            client,
            conversation.id,
            Msg::CallRequested {
                number: number.clone(),
            }
            .render(lang),
            format!("call:{call_id}:requested"),
        )
        .await?;

    let credentials = state.store.channel_credentials(client, channel.id).await?;
    let connector = match telephony::telephony_channel(
        channel.provider,
        credentials.as_ref(),
        &channel.settings,
        &state.endpoints,
    ) {
        Ok(connector) => connector,
        Err(e) => {
            return finish(state, &call, CallOutcome::Failed { reason: e.0 }, lang).await;
        }
    };
    let public = state.config.server.public_url.trim_end_matches('/');
    let placed = connector
        .originate(&CallRequest {
            call_id: call_id.to_string(),
            first: settings.first.clone(),
            visitor: number.clone(),
            ring_timeout_secs: settings.ring_timeout_secs,
            status_callback: format!(
                "{public}/hooks/{}/{}?call={call_id}",
                channel.provider.as_str(),
                channel.id
            ),
        })
        .await;
    let placed = match placed {
        Ok(placed) => placed,
        Err(e) => {
            return finish(
                state,
                &call,
                CallOutcome::Failed {
                    reason: e.to_string(),
                },
                lang,
            )
            .await;
        }
    };
    let mut call = call;
    if let Some(provider_id) = &placed.provider_call_id {
        call = state
            .store
            .set_call_provider_id(client, call.id, provider_id)
            .await?;
    }
    if let Some(outcome) = placed.outcome {
        let state = state.clone();
        let watched = call.clone();
        state.followed_calls.follow(watched.id);
        tokio::spawn(async move {
            let outcome = outcome.await;
            if let Err(e) = finish(&state, &watched, outcome, lang).await {
                tracing::warn!(call = %watched.id, error = %e, "could not record a call's outcome");
            }
            state.followed_calls.unfollow(watched.id);
        });
    }
    Ok(call)
}

async fn telephony_channel_of(
    state: &AppState,
    client: ClientId,
    id: Option<ChannelId>,
) -> ApiResult<Channel> {
    match id {
        Some(id) => {
            let channel = state.store.get_channel(client, id).await?;
            if telephony::is_telephony(channel.provider) {
                Ok(channel)
            } else {
                Err(ApiError::Validation(Msg::NotTelephony))
            }
        }
        None => state
            .store
            .list_channels(client)
            .await?
            .into_iter()
            .find(|c| telephony::is_telephony(c.provider))
            .ok_or(ApiError::Conflict(Msg::NoTelephony)),
    }
}

async fn check_limits(
    state: &AppState,
    client: ClientId,
    limits: &CallLimits,
    number: &str,
    request: &CallbackRequest,
    visitor_asks: bool,
) -> ApiResult<()> {
    let window = chrono::Duration::minutes(i64::from(limits.window_minutes));
    let since = Utc::now() - window;
    let retry = u64::from(limits.window_minutes) * 60;
    let over = |count: u64, limit: u32| count >= u64::from(limit);
    let store = &state.store;
    if over(
        store
            .count_calls(client, CallsBy::Number(number), since)
            .await?,
        limits.per_number,
    ) {
        return Err(ApiError::RateLimited(retry));
    }
    if visitor_asks {
        if let Some(ip) = request.ip {
            let ip = ip.to_string();
            if over(
                store.count_calls(client, CallsBy::Ip(&ip), since).await?,
                limits.per_ip,
            ) {
                return Err(ApiError::RateLimited(retry));
            }
        }
        if let Some(visitor) = &request.visitor
            && over(
                store
                    .count_calls(client, CallsBy::Visitor(visitor), since)
                    .await?,
                limits.per_visitor,
            )
        {
            return Err(ApiError::RateLimited(retry));
        }
    }
    Ok(())
}

/// The telephony channel's conversation with this number, opened by an inbound event so it
/// lands in the inbox and is routed like any new request.
async fn open_conversation(
    state: &AppState,
    channel: &Channel,
    number: &str,
    call_id: CallId,
) -> ApiResult<Conversation> {
    let ingested = state
        .hub
        .ingest(InboundEvent {
            client_id: channel.client_id,
            channel_id: channel.id,
            external_conversation_id: number.to_string(),
            external_user_id: number.to_string(),
            contact_name: number.to_string(),
            provider_event_id: format!("callback:{call_id}"),
            text: Msg::CallRequested {
                number: number.to_string(),
            }
            .render(
                CallbackSettings::of(&channel.settings)
                    .map(|s| s.lang())
                    .unwrap_or(Lang::Ru),
            ),
            attachments: Vec::new(),
        })
        .await?;
    match ingested {
        Ingest::New { conversation, .. } => Ok(conversation),
        Ingest::Duplicate(_) => Err(ApiError::internal("a fresh call id was a duplicate")),
    }
}

/// Records the outcome (the first one only) and its note; the call as it is now.
async fn finish(
    state: &AppState,
    call: &Call,
    outcome: CallOutcome,
    lang: Lang,
) -> ApiResult<Call> {
    let kind = match &outcome {
        CallOutcome::Answered { .. } => CallOutcomeKind::Answered,
        CallOutcome::NoAnswer => CallOutcomeKind::NoAnswer,
        CallOutcome::Busy => CallOutcomeKind::Busy,
        CallOutcome::Failed { .. } => CallOutcomeKind::Failed,
    };
    let reason: Option<String> = outcome.reason().map(|r| r.chars().take(500).collect());
    let finished = state
        .store
        .finish_call(
            call.client_id,
            call.id,
            kind,
            outcome.duration_secs().map(i64::from),
            reason.as_deref(),
        )
        .await?;
    let Some(finished) = finished else {
        return Ok(state.store.get_call(call.client_id, call.id).await?);
    };
    let number = finished.number.clone();
    let text = match &outcome {
        CallOutcome::Answered { duration_secs } => Msg::CallAnswered {
            number,
            duration: format!("{}:{:02}", duration_secs / 60, duration_secs % 60),
        },
        CallOutcome::NoAnswer => Msg::CallNoAnswer { number },
        CallOutcome::Busy => Msg::CallBusy { number },
        CallOutcome::Failed { .. } => Msg::CallFailed {
            number,
            reason: reason.unwrap_or_default(),
        },
    }
    .render(lang);
    state
        .hub
        .add_system_note(
            finished.client_id,
            finished.conversation_id,
            text,
            format!("call:{}:outcome", finished.id),
        )
        .await?;
    Ok(finished)
}

/// The calls this process follows on a PBX's event stream: the sweep leaves them alone.
#[derive(Default)]
pub struct FollowedCalls(Mutex<HashSet<CallId>>);

impl FollowedCalls {
    fn follow(&self, id: CallId) {
        if let Ok(mut f) = self.0.lock() {
            f.insert(id);
        }
    }

    fn unfollow(&self, id: CallId) {
        if let Ok(mut f) = self.0.lock() {
            f.remove(&id);
        }
    }

    fn contains(&self, id: CallId) -> bool {
        self.0.lock().map(|f| f.contains(&id)).unwrap_or(false)
    }
}

/// Calls are looked at by the sweep once this old: past both legs' longest ringing (two
/// minutes each), so a call still ringing is not judged.
pub const LOST_AFTER: chrono::Duration = chrono::Duration::minutes(5);
/// A call the provider cannot tell about is given up after this long even when placed since
/// this process started (an event stream is followed at most four hours).
pub const GIVE_UP_AFTER: chrono::Duration = chrono::Duration::hours(5);
/// The reason recorded for a call whose outcome was lost.
pub const INTERRUPTED: &str = "interrupted";
const SWEEP_EVERY: Duration = Duration::from_secs(60);
const SWEEP_BATCH: u32 = 200;

/// The sweep of calls whose outcome was lost (see the module's documentation).
pub struct CallSweep {
    /// When this process started: calls placed before it are cut off if still going.
    started_at: DateTime<Utc>,
}

impl CallSweep {
    pub fn new(started_at: DateTime<Utc>) -> Self {
        CallSweep { started_at }
    }

    /// Sweeps now and then every minute, until the process ends.
    pub fn start(state: AppState) -> tokio::task::JoinHandle<()> {
        let sweep = CallSweep::new(Utc::now());
        tokio::spawn(async move {
            loop {
                if let Err(e) = sweep.run_once(&state, Utc::now()).await {
                    tracing::warn!(error = %e, "sweeping lost calls failed");
                }
                tokio::time::sleep(SWEEP_EVERY).await;
            }
        })
    }

    /// One pass as of `now`: the calls given an outcome.
    pub async fn run_once(&self, state: &AppState, now: DateTime<Utc>) -> ApiResult<usize> {
        let calls = state
            .store
            .unfinished_calls(now - LOST_AFTER, SWEEP_BATCH)
            .await?;
        let mut resolved = 0;
        for call in calls {
            if state.followed_calls.contains(call.id) {
                continue;
            }
            match self.resolve(state, &call, now).await {
                Ok(true) => resolved += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(call = %call.id, error = %e, "a lost call was not resolved")
                }
            }
        }
        Ok(resolved)
    }

    /// Asks the provider about one call and records its outcome; false when it stays open.
    async fn resolve(&self, state: &AppState, call: &Call, now: DateTime<Utc>) -> ApiResult<bool> {
        let channel = state
            .store
            .get_channel(call.client_id, call.channel_id)
            .await?;
        let lang = CallbackSettings::of(&channel.settings)
            .map(|s| s.lang())
            .unwrap_or(Lang::Ru);
        let credentials = state
            .store
            .channel_credentials(call.client_id, channel.id)
            .await?;
        let asked = match telephony::telephony_channel(
            channel.provider,
            credentials.as_ref(),
            &channel.settings,
            &state.endpoints,
        ) {
            Ok(connector) => {
                connector
                    .call_status(&PlacedCall {
                        call_id: call.id.to_string(),
                        provider_call_id: call.provider_call_id.clone(),
                        visitor: call.number.clone(),
                        placed_at: call.created_at,
                    })
                    .await
            }
            // A channel whose settings no longer make a connector cannot be asked.
            Err(_) => Ok(CallStatus::Unknown),
        };
        let too_old = now - call.created_at > GIVE_UP_AFTER;
        let cut_off = call.created_at < self.started_at || too_old;
        let outcome = match asked {
            Ok(CallStatus::Ended(outcome)) => outcome,
            Ok(CallStatus::Going) => return Ok(false),
            Ok(CallStatus::Unknown) if cut_off => CallOutcome::Failed {
                reason: INTERRUPTED.into(),
            },
            // The provider could not be asked now: the next sweep asks again.
            Err(e) if too_old => {
                tracing::warn!(call = %call.id, error = %e, "giving up on a lost call");
                CallOutcome::Failed {
                    reason: INTERRUPTED.into(),
                }
            }
            Ok(CallStatus::Unknown) | Err(_) => return Ok(false),
        };
        finish(state, call, outcome, lang).await?;
        Ok(true)
    }
}

/// A call-event webhook of a telephony channel (`/hooks/{provider}/{channel}`), after the
/// route found the channel: the signature checked by the connector, each event matched to our
/// call (by the `call` parameter of the callback URL we gave, the provider's call id, or the
/// number called) and its outcome applied. The body to answer 200 with.
pub async fn call_hook(
    state: &AppState,
    channel: &Channel,
    connector: &Arc<dyn Telephony>,
    request: &CallHookRequest<'_>,
) -> ApiResult<String> {
    let reply = connector.call_hook(request)?;
    let events = match reply {
        CallHookReply::Echo(body) => return Ok(body),
        CallHookReply::Events(events) => events,
    };
    let named: Option<CallId> = query_param(request.query, "call").and_then(|c| c.parse().ok());
    let lang = CallbackSettings::of(&channel.settings)
        .map(|s| s.lang())
        .unwrap_or(Lang::Ru);
    for event in events {
        let Some(outcome) = event.outcome else {
            continue;
        };
        let found = match (named, &event.call) {
            (Some(id), _) => state.store.get_call(channel.client_id, id).await,
            (None, CallRef::ProviderId(id)) => {
                state.store.call_by_provider_id(channel.id, id).await
            }
            (None, CallRef::Destination(digits)) => {
                state
                    .store
                    .open_call_to(channel.id, &format!("+{digits}"))
                    .await
            }
        };
        let call = match found {
            // Calls omnihub did not place (the PBX's other traffic), or already ended.
            Err(StoreError::NotFound) => continue,
            Err(e) => return Err(e.into()),
            Ok(call) if call.channel_id != channel.id => continue,
            Ok(call) => call,
        };
        finish(state, &call, outcome, lang).await?;
    }
    Ok(String::new())
}

fn query_param(query: &str, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_e164_or_refused() {
        assert_eq!(
            e164("+7 (999) 123-45-67", None).as_deref(),
            Some("+79991234567")
        );
        assert_eq!(
            e164("8 999 123-45-67", Some("RU")).as_deref(),
            Some("+79991234567")
        );
        assert_eq!(e164("89991234567", None), None);
        assert_eq!(e164("+7 123", None), None);
        assert_eq!(e164("+1 555 0100", None), None);
        assert_eq!(e164("not a number", Some("RU")), None);
        assert_eq!(e164("", None), None);
    }

    #[test]
    fn settings_are_checked() {
        let ok = serde_json::json!({"first": {"extension": "100"}});
        let s = CallbackSettings::of(&ok).unwrap();
        assert_eq!(s.ring_timeout_secs, 25);
        assert_eq!(s.limits.per_number, 3);
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"first": {"number": "123"}}),
            serde_json::json!({"first": {"extension": "100\r\n"}}),
            serde_json::json!({"first": {"extension": "100"}, "ring_timeout_secs": 1}),
            serde_json::json!({"first": {"extension": "100"}, "default_region": "XX"}),
            serde_json::json!({"first": {"extension": "100"}, "limits": {"per_number": 1}}),
            serde_json::json!({"first": {"extension": "100"}, "hours": {"timezone": "Mars/Base", "always_open": false, "days": [[],[],[],[],[],[],[]]}}),
        ] {
            assert!(CallbackSettings::of(&bad).is_err(), "{bad}");
        }
    }
}
