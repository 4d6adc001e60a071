//! Meta's Graph API (v23.0) as the Facebook Page and Instagram connectors share it: calls with
//! the profile's token, errors read into transient and permanent failures, the webhook
//! contract (`hub.challenge` handshake, `X-Hub-Signature-256` over the raw body keyed by the
//! server's Meta app secret), Meta's OAuth scopes, and the list of Pages (with their Instagram
//! accounts) a person's grant can connect.
//!
//! Calls carry the token as `Authorization: Bearer`, so it never sits in a URL; bodies are
//! form-encoded as Graph takes them.

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use super::oauth::{ClientAuth, Manageable, OAuthSpec};
use super::{Delivered, RemoteComment};
use crate::SendError;
use crate::provider::{WebhookError, WebhookReply, WebhookRequest};
use crate::registry::Endpoints;
use crate::rest_client::{self, MAX_API_BODY, bounded_reason, endpoint, permanent};
use crate::whatsapp::errors::GraphError;

/// The Graph API version every path starts with.
pub const VERSION: &str = "v23.0";

/// Meta's OAuth flow for Pages and their Instagram accounts (Facebook Login): the scopes a
/// Page's publishing and moderation need, and those of its Instagram business account.
pub const OAUTH: OAuthSpec = OAuthSpec {
    scopes: &[
        "pages_show_list",
        "pages_manage_posts",
        "pages_read_engagement",
        "pages_manage_engagement",
        "instagram_basic",
        "instagram_content_publish",
        "instagram_manage_comments",
    ],
    scope_separator: ",",
    pkce: false,
    client_auth: ClientAuth::Form,
    extra_authorize_params: &[],
    callback_params: &[],
    needs_secret: true,
};

/// Rate limits: 4 (application), 17 (user), 32 (Page), 613 (call rate), and the business use
/// case limits 80001–80014.
fn is_rate_limit(code: i64) -> bool {
    matches!(code, 4 | 17 | 32 | 613) || (80_001..=80_014).contains(&code)
}

/// How long to wait after a rate limit when Meta names no time: its windows are an hour long,
/// but the counters decay, so a few minutes usually suffice.
const RATE_LIMIT_WAIT: Duration = Duration::from_secs(300);

/// Why a Graph call failed: Meta's error (with its code) or the transport.
#[derive(Debug)]
pub enum CallError {
    Graph {
        status: StatusCode,
        code: Option<i64>,
        subcode: Option<i64>,
        failure: SendError,
    },
    Other(SendError),
}

impl CallError {
    pub fn into_send_error(self) -> SendError {
        match self {
            CallError::Graph { failure, .. } | CallError::Other(failure) => failure,
        }
    }

    /// Graph's "the object does not exist" (code 100, subcode 33, or a 404): deleting or
    /// hiding what is gone.
    pub fn is_gone(&self) -> bool {
        match self {
            CallError::Graph {
                status,
                code,
                subcode,
                ..
            } => *status == StatusCode::NOT_FOUND || (*code == Some(100) && *subcode == Some(33)),
            CallError::Other(_) => false,
        }
    }
}

/// The failure a Graph error answer means: rate limits (4, 17, 32, 613, 80001–80014), Meta's
/// own trouble (1, 2, `is_transient`, 5xx) are transient; an invalid token (190, 102) and
/// missing permissions (10, 200–299) and every other refusal are permanent.
pub fn classify(status: StatusCode, retry_after: Option<Duration>, body: &[u8]) -> CallError {
    let Some(error) = GraphError::parse(body) else {
        let reason = bounded_reason(&format!(
            "HTTP {}: {}",
            status.as_u16(),
            String::from_utf8_lossy(body).trim()
        ));
        let failure = if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            SendError::Transient {
                retry_after,
                reason,
            }
        } else {
            SendError::Permanent { reason }
        };
        return CallError::Graph {
            status,
            code: None,
            subcode: None,
            failure,
        };
    };
    let reason = error.describe();
    let code = error.code.unwrap_or_default();
    let failure = if matches!(code, 190 | 102) {
        SendError::invalid_token(&reason)
    } else if code == 10 || (200..=299).contains(&code) {
        permanent(format!("missing permission: {reason}"))
    } else if is_rate_limit(code) {
        SendError::Transient {
            retry_after: retry_after.or(Some(RATE_LIMIT_WAIT)),
            reason: format!("rate limit: {reason}"),
        }
    } else if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || matches!(code, 1 | 2)
        || error.is_transient == Some(true)
    {
        SendError::Transient {
            retry_after,
            reason,
        }
    } else {
        SendError::Permanent { reason }
    };
    CallError::Graph {
        status,
        code: error.code,
        subcode: error.error_subcode,
        failure,
    }
}

/// One token's view of the Graph API.
#[derive(Clone)]
pub struct GraphApi {
    client: reqwest::Client,
    base: Url,
    token: String,
}

// Written by hand so that the token never reaches a log.
impl std::fmt::Debug for GraphApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphApi")
            .field("base", &self.base.as_str())
            .field("token", &"***")
            .finish()
    }
}

impl GraphApi {
    /// `base` is Graph's root (`https://graph.facebook.com`) or a sandbox.
    pub fn new(base: &Url, token: impl Into<String>) -> Result<GraphApi, String> {
        if !matches!(base.scheme(), "http" | "https") {
            return Err("the Graph API base must be an http(s) URL".into());
        }
        Ok(GraphApi {
            client: rest_client::client()?,
            base: base.clone(),
            token: token.into(),
        })
    }

    /// Calls `{base}/v23.0/{path…}`: the query for GET and DELETE, a form body for POST.
    pub async fn call(
        &self,
        method: Method,
        path: &[&str],
        params: &[(&str, String)],
    ) -> Result<Value, CallError> {
        let mut segments = vec![VERSION];
        segments.extend_from_slice(path);
        let url =
            endpoint(&self.base, &segments).map_err(|err| CallError::Other(permanent(err)))?;
        let mut request = self
            .client
            .request(method.clone(), url)
            .bearer_auth(&self.token)
            .timeout(rest_client::TIMEOUT);
        request = if method == Method::POST {
            request.form(params)
        } else {
            request.query(params)
        };
        let answer = rest_client::fetch(request, MAX_API_BODY)
            .await
            .map_err(CallError::Other)?;
        if !answer.status.is_success() {
            return Err(classify(answer.status, answer.retry_after, &answer.body));
        }
        if answer.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&answer.body).map_err(|err| {
            CallError::Other(rest_client::transient(format!(
                "Graph answered something that is not JSON: {err}"
            )))
        })
    }

    pub async fn get(&self, path: &[&str], params: &[(&str, String)]) -> Result<Value, SendError> {
        self.call(Method::GET, path, params)
            .await
            .map_err(CallError::into_send_error)
    }

    pub async fn post(&self, path: &[&str], params: &[(&str, String)]) -> Result<Value, SendError> {
        self.call(Method::POST, path, params)
            .await
            .map_err(CallError::into_send_error)
    }

    /// DELETE; an object that is already gone is not an error.
    pub async fn delete(&self, path: &[&str]) -> Result<(), SendError> {
        match self.call(Method::DELETE, path, &[]).await {
            Ok(_) => Ok(()),
            Err(err) if err.is_gone() => Ok(()),
            Err(err) => Err(err.into_send_error()),
        }
    }
}

/// The `id` Graph answered a creation with.
pub fn created_id(answer: &Value, what: &str) -> Result<String, SendError> {
    match answer.get("id") {
        Some(Value::String(id)) if !id.is_empty() => Ok(id.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(rest_client::transient(format!("{what} gave no id"))),
    }
}

/// The `data` array of a Graph list answer.
pub fn data(answer: &Value) -> impl Iterator<Item = &Value> {
    answer
        .get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// A Graph time: ISO 8601 (`2026-11-27T10:00:00+0000`) or Unix seconds (webhooks).
pub fn time(value: Option<&Value>) -> Option<chrono::DateTime<chrono::Utc>> {
    match value? {
        Value::Number(n) => chrono::DateTime::from_timestamp(n.as_i64()?, 0),
        Value::String(s) => chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z")
            .or_else(|_| chrono::DateTime::parse_from_rfc3339(s))
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc)),
        _ => None,
    }
}

pub fn text(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A Graph id: text, or a number in some webhook payloads.
pub fn id_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// How long before now a post or comment found on the profile may be taken as one a lost
/// answer hid from us (see the connectors' idempotency notes).
pub const RECENT: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// What a comment listed without a time is, when looking for an earlier attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Untimed {
    /// Not one: Facebook gives every comment its time, so one without is not recent.
    NotRecent,
    /// Perhaps one: Instagram's comments may come without a time.
    Recent,
}

/// The profile's own comment among `comments` with the same text and parent, made within
/// [`RECENT`]: an earlier attempt whose answer was lost (Graph takes no idempotency key), whose
/// id answers the comment instead of writing it again.
pub fn earlier_comment(
    comments: impl IntoIterator<Item = RemoteComment>,
    reply_to: Option<&str>,
    text: &str,
    untimed: Untimed,
) -> Option<String> {
    let since = chrono::Utc::now() - RECENT;
    comments
        .into_iter()
        .find(|c| {
            c.by_profile
                && c.text == text
                && c.reply_to.as_deref() == reply_to
                && c.created_at
                    .map_or(untimed == Untimed::Recent, |t| t >= since)
        })
        .map(|c| c.id)
}

/// Checks a Meta webhook request: a GET is the subscription handshake, answered with
/// `hub.challenge` only when `hub.verify_token` is the profile's; a POST must carry
/// `X-Hub-Signature-256` over the raw body keyed by the app secret. `Ok(Some)` is the
/// handshake's answer, `Ok(None)` a verified POST whose body the caller reads.
pub fn verify(
    request: &WebhookRequest<'_>,
    verify_token: Option<&str>,
    app_secret: &str,
) -> Result<Option<Delivered>, WebhookError> {
    match request.method {
        "GET" => {
            let WebhookReply::Handshake { body } =
                crate::whatsapp::webhook::handshake(request, verify_token.unwrap_or_default())?
            else {
                return Err(WebhookError::Unauthorized);
            };
            Ok(Some(Delivered {
                event_id: None,
                events: vec![super::SocialEvent::text_handshake(body)],
                ack_body: "",
            }))
        }
        "POST" => {
            if app_secret.is_empty() {
                return Err(WebhookError::Unauthorized);
            }
            crate::whatsapp::webhook::verify_signature(request, app_secret)?;
            Ok(None)
        }
        _ => Err(WebhookError::MethodNotAllowed),
    }
}

/// The `entry[]` of a verified Meta webhook body for `object`, only those about `account`
/// (Meta's callback is the application's, so other Pages' events may come by).
pub fn entries<'a>(
    body: &'a Value,
    object: &str,
    account: &'a str,
) -> Result<impl Iterator<Item = &'a Value>, WebhookError> {
    if body.get("object").and_then(Value::as_str) != Some(object) {
        return Err(WebhookError::Malformed(format!(
            "not an `{object}` webhook body"
        )));
    }
    Ok(body
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |entry| id_of(entry.get("id")).as_deref() == Some(account)))
}

/// The profiles a person's Facebook Login grant can connect: each Page they manage (with the
/// Page's own token), or each Page's Instagram business account (with that Page's token).
pub async fn manageable_profiles(
    endpoints: &Endpoints,
    user_token: &str,
    instagram: bool,
) -> Result<Vec<Manageable>, SendError> {
    let api = GraphApi::new(&endpoints.graph, user_token).map_err(permanent)?;
    let answer = api
        .get(
            &["me", "accounts"],
            &[
                (
                    "fields",
                    "id,name,access_token,instagram_business_account{id,username}".into(),
                ),
                ("limit", "100".into()),
            ],
        )
        .await?;
    Ok(data(&answer)
        .filter_map(|page| {
            let token = page
                .get("access_token")
                .and_then(Value::as_str)
                .map(str::to_string);
            if instagram {
                let account = page.get("instagram_business_account")?;
                Some(Manageable {
                    external_id: id_of(account.get("id"))?,
                    name: Some(text(account, "username"))
                        .filter(|n| !n.is_empty())
                        .unwrap_or_else(|| text(page, "name")),
                    access_token: token,
                })
            } else {
                Some(Manageable {
                    external_id: id_of(page.get("id"))?,
                    name: text(page, "name"),
                    access_token: token,
                })
            }
        })
        .collect())
}

/// Exchanges a short-lived user token for a long-lived one (about 60 days):
/// `GET /oauth/access_token?grant_type=fb_exchange_token`. Page tokens read with a long-lived
/// user token do not expire. Answers the token and its lifetime when Meta states one.
pub async fn long_lived_token(
    endpoints: &Endpoints,
    short_lived: &str,
) -> Result<(String, Option<Duration>), SendError> {
    let app = &endpoints.apps.meta;
    if !app.is_configured() {
        return Err(permanent("the server's Meta application is not set"));
    }
    let client = rest_client::client().map_err(permanent)?;
    let url = endpoint(&endpoints.graph, &[VERSION, "oauth", "access_token"]).map_err(permanent)?;
    let request = client.get(url).timeout(rest_client::TIMEOUT).query(&[
        ("grant_type", "fb_exchange_token"),
        ("client_id", app.client_id.as_str()),
        ("client_secret", app.client_secret.as_str()),
        ("fb_exchange_token", short_lived),
    ]);
    let answer = rest_client::fetch(request, MAX_API_BODY).await?;
    if !answer.status.is_success() {
        return Err(classify(answer.status, answer.retry_after, &answer.body).into_send_error());
    }
    let body: Value = serde_json::from_slice(&answer.body)
        .map_err(|err| rest_client::transient(format!("not JSON: {err}")))?;
    let token = body
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| rest_client::transient("the exchange gave no access_token"))?;
    let lifetime = body
        .get("expires_in")
        .and_then(Value::as_u64)
        .map(Duration::from_secs);
    Ok((token.to_string(), lifetime))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_earlier_comment_is_the_profiles_own_recent_one_with_the_same_text_and_parent() {
        let now = chrono::Utc::now();
        let comment =
            |id: &str, by_profile: bool, text: &str, reply_to: Option<&str>, hours: Option<i64>| {
                RemoteComment {
                    id: id.into(),
                    post_id: "p".into(),
                    author_id: String::new(),
                    text: text.into(),
                    created_at: hours.map(|h| now - chrono::TimeDelta::hours(h)),
                    reply_to: reply_to.map(str::to_string),
                    by_profile,
                }
            };
        let listed = vec![
            comment("someone", false, "Thanks!", Some("c1"), Some(1)),
            comment("old", true, "Thanks!", Some("c1"), Some(25)),
            comment("top", true, "Thanks!", None, Some(1)),
            comment("untimed", true, "Thanks!", Some("c1"), None),
            comment("ours", true, "Thanks!", Some("c1"), Some(1)),
        ];
        let find = |untimed| earlier_comment(listed.clone(), Some("c1"), "Thanks!", untimed);
        // A comment without a time is taken only where comments may come without one.
        assert_eq!(find(Untimed::NotRecent).as_deref(), Some("ours"));
        assert_eq!(find(Untimed::Recent).as_deref(), Some("untimed"));
        assert_eq!(
            earlier_comment(listed.clone(), None, "Thanks!", Untimed::NotRecent).as_deref(),
            Some("top")
        );
        assert_eq!(
            earlier_comment(listed, Some("c1"), "Thank you", Untimed::Recent),
            None
        );
    }

    fn failure(status: u16, body: &str) -> SendError {
        classify(StatusCode::from_u16(status).unwrap(), None, body.as_bytes()).into_send_error()
    }

    #[test]
    fn graph_errors_are_classified_by_code() {
        let error = |code: i64| {
            format!(r#"{{"error":{{"message":"m","type":"OAuthException","code":{code}}}}}"#)
        };
        for code in [4, 17, 32, 613, 80001] {
            assert!(failure(400, &error(code)).is_transient(), "{code}");
        }
        assert!(failure(500, &error(1)).is_transient());
        assert!(failure(503, "upstream down").is_transient());
        assert_eq!(
            failure(400, &error(190)).problem(),
            crate::provider::Problem::InvalidToken
        );
        for code in [10, 200, 100] {
            assert!(!failure(403, &error(code)).is_transient(), "{code}");
        }
        let gone = classify(
            StatusCode::BAD_REQUEST,
            None,
            br#"{"error":{"message":"does not exist","code":100,"error_subcode":33}}"#,
        );
        assert!(gone.is_gone());
    }

    #[test]
    fn graph_times_read_both_forms() {
        let iso = time(Some(&Value::from("2026-11-27T10:00:00+0000"))).unwrap();
        assert_eq!(iso.timestamp(), 1_795_773_600);
        assert_eq!(time(Some(&Value::from(1_795_773_600))), Some(iso));
    }
}
