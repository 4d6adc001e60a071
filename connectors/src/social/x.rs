//! An X account (API v2): its posts, the replies under them, likes and hidden replies, as
//! the account itself (OAuth 2.0 user context).
//!
//! Built by [`XAccount::from_profile`] from the profile's stored credentials:
//!
//! | key | required | meaning |
//! |---|---|---|
//! | `access_token` | yes | the account's OAuth 2.0 user token (scopes in [`OAUTH`]) |
//! | `user_id` | yes | the account's numeric id |
//!
//! Requests follow X's published OpenAPI (v2.167): fields are asked for with `post.fields`
//! and `expansions`; images go through the chunked media upload (`initialize`, one
//! `append`, `finalize`) and are attached by `media.media_ids`, with the mentioned accounts'
//! ids in `media.tagged_user_ids` when they are numeric ids; a video goes through the same
//! upload as a `tweet_video`, appended in segments of 4 MiB read from the file one at a time
//! (never the whole video in memory), and X processes it after `finalize`: its `STATUS` is
//! polled (as often as `check_after_secs` says) until it
//! `succeeded` before the post attaches it (one still processing is left to a later attempt,
//! one that `failed` fails with X's words); a location is the post's `geo.place_id` (X takes a
//! place of its catalogue, not coordinates); a reply is a post with
//! `reply.in_reply_to_tweet_id`; replies under a post are found by searching its
//! `conversation_id`.
//!
//! Idempotency: X takes no idempotency key, so exactly-once is approached honestly rather
//! than promised: before publishing, the account's latest posts (or the conversation's
//! replies) are searched for one with the same text, which is answered instead of posting
//! again; and X itself refuses a second post with identical text (403 "duplicate content"),
//! which is answered the same way. Two different posts with identical text are therefore one
//! post on X, as X wants it. Links are compared without their URLs, which X rewrites.
//!
//! Events come by the Account Activity webhook: `subscribe` registers the profile's URL with
//! the app's bearer token (app-only OAuth 2.0, `client_credentials` at `/oauth2/token` with
//! the application's key and secret) and subscribes the account to it with its own token.
//! X proves a webhook with a CRC (`GET ?crc_token=`), answered
//! `{"response_token":"sha256=<base64 HMAC-SHA256(consumer secret, token)>"}`, and signs
//! every delivery with `x-twitter-webhooks-signature: sha256=<base64 HMAC of the raw body>`.
//!
//! Errors: 429 (with `x-rate-limit-reset`) and 5xx are transient, 401 is a refused token,
//! 403 and other refusals are permanent with X's words.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use reqwest::{Method, Url};
use serde_json::{Value, json};
use sha2::Sha256;

use super::oauth::{ClientAuth, Manageable, OAuthSpec};
use super::{
    Action, Capabilities, CommentDelivery, Counters, Delivered, LikeTarget, Limits, Network,
    PostContent, RemoteComment, RemotePost, SocialEvent, SocialNetwork, Support, compose_text,
};
use crate::SendError;
use crate::provider::{ConfigError, WebhookError, WebhookRequest};
use crate::registry::{Endpoints, SocialApp};
use crate::rest_client::{
    self, MAX_API_BODY, MEDIA_TIMEOUT, TIMEOUT, bounded_reason, permanent, transient,
};
use crate::signing::constant_time_eq;

/// What X's OAuth 2.0 flow needs: PKCE, the client's secret by HTTP Basic, and the scopes
/// of everything this connector calls (the DM scopes are the Account Activity
/// subscription's, which X requires of it).
pub const OAUTH: OAuthSpec = OAuthSpec {
    scopes: &[
        "tweet.read",
        "tweet.write",
        "tweet.moderate.write",
        "users.read",
        "like.write",
        "media.write",
        "dm.read",
        "dm.write",
        "offline.access",
    ],
    scope_separator: " ",
    pkce: true,
    client_auth: ClientAuth::Basic,
    extra_authorize_params: &[],
    callback_params: &[],
    needs_secret: true,
};

/// The fields asked for with every post.
const POST_FIELDS: &str = "conversation_id,created_at,public_metrics,text";
/// The expansions that fill `author_id`, `in_reply_to_user_id` and `referenced_posts`.
const EXPANSIONS: &str = "author_id,in_reply_to_user_id,referenced_posts";
/// How many of the latest posts are searched for ours before publishing again.
const RECENT: u32 = 20;

/// The size of one `append` segment of a media upload.
const UPLOAD_SEGMENT: usize = 4 * 1024 * 1024;

/// How often, and how long at most each time, a video's processing is asked about within one
/// publishing attempt.
const MAX_STATUS_POLLS: u32 = 12;
const MAX_STATUS_WAIT_SECS: u64 = 10;

/// What X allows, and what omnihub does of it.
pub const CAPABILITIES: Capabilities = Capabilities {
    network: Network::X,
    connect: Support::Supported,
    comments: CommentDelivery::Webhook,
    // 280 characters a post (weighted; omnihub counts characters), 4 images.
    limits: Some(Limits {
        max_text_chars: 280,
        max_images: 4,
        image_types: &["image/jpeg", "image/png", "image/gif", "image/webp"],
        max_image_bytes: 5 * 1024 * 1024,
        // One video a post and no images beside it; MP4 or MOV of at most 512 MB
        // (`tweet_video`).
        max_videos: 1,
        videos_with_images: false,
        video_types: &["video/mp4", "video/quicktime"],
        max_video_bytes: 512 * 1024 * 1024,
    }),
    actions: &[
        (Action::ListPosts, Support::Supported),
        (Action::CreatePost, Support::Supported),
        (Action::PostImages, Support::Supported),
        (Action::PostVideo, Support::Supported),
        (Action::PostLink, Support::Supported),
        (Action::PostHashtags, Support::Supported),
        (Action::PostMentions, Support::Supported),
        (Action::PostLocation, Support::Supported),
        (
            Action::EditPost,
            Support::Unsupported("X API v2 cannot edit a post"),
        ),
        (Action::DeletePost, Support::Supported),
        (Action::ListComments, Support::Supported),
        (Action::ReplyComment, Support::Supported),
        (
            Action::DeleteComment,
            Support::Unsupported("only the author of a reply can delete it on X; hide it instead"),
        ),
        (Action::HideComment, Support::Supported),
        (Action::LikePost, Support::Supported),
        (Action::UnlikePost, Support::Supported),
        (Action::LikeComment, Support::Supported),
        (Action::UnlikeComment, Support::Supported),
        (Action::Dislike, Support::Unsupported("X has no dislikes")),
        (
            Action::DislikeComment,
            Support::Unsupported("X has no dislikes"),
        ),
    ],
};

/// One connected X account.
pub struct XAccount {
    client: reqwest::Client,
    base: Url,
    access_token: String,
    user_id: String,
    app: SocialApp,
}

// Written by hand so that no secret reaches a log.
impl std::fmt::Debug for XAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XAccount")
            .field("user_id", &self.user_id)
            .field("access_token", &"***")
            .finish()
    }
}

/// An X id: 1 to 19 digits.
fn is_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 19 && id.bytes().all(|b| b.is_ascii_digit())
}

fn id_param(id: &str) -> Result<&str, SendError> {
    if is_id(id) {
        Ok(id)
    } else {
        Err(permanent(format!("{id:?} is not an X id")))
    }
}

impl XAccount {
    /// Builds the account's client; `endpoints.x` is X's API root or a sandbox, and the
    /// application (`endpoints.apps.x`) keys the webhooks' signatures.
    pub fn from_profile(
        credentials: &Value,
        endpoints: &Endpoints,
    ) -> Result<XAccount, ConfigError> {
        let text = |key: &str| {
            credentials
                .get(key)
                .and_then(|v| match v {
                    Value::String(s) => Some(s.trim().to_string()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .filter(|s| !s.is_empty())
        };
        let access_token = text("access_token")
            .ok_or_else(|| ConfigError("credentials.access_token is required".into()))?;
        let user_id = text("user_id")
            .filter(|id| is_id(id))
            .ok_or_else(|| ConfigError("credentials.user_id must be the account's id".into()))?;
        Ok(XAccount {
            client: rest_client::client().map_err(ConfigError)?,
            base: endpoints.x.clone(),
            access_token,
            user_id,
            app: endpoints.apps.x.clone(),
        })
    }

    fn url(&self, segments: &[&str]) -> Result<Url, SendError> {
        rest_client::endpoint(&self.base, segments).map_err(permanent)
    }

    /// One call as the account.
    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, SendError> {
        let mut request = self
            .client
            .request(method, self.url(segments)?)
            .bearer_auth(&self.access_token)
            .timeout(TIMEOUT);
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        send(request).await
    }

    fn post_query() -> Vec<(&'static str, String)> {
        vec![
            ("post.fields", POST_FIELDS.into()),
            ("expansions", EXPANSIONS.into()),
        ]
    }

    /// The account's latest posts, raw.
    async fn timeline(&self, count: u32) -> Result<Vec<Value>, SendError> {
        let mut query = Self::post_query();
        query.push(("max_results", count.clamp(5, 100).to_string()));
        let answer = self
            .call(
                Method::GET,
                &["2", "users", &self.user_id, "tweets"],
                &query,
                None,
            )
            .await?;
        Ok(items(&answer))
    }

    /// The posts of a conversation (replies under a post), raw.
    async fn conversation(&self, post_id: &str) -> Result<Vec<Value>, SendError> {
        let mut query = Self::post_query();
        query.push(("query", format!("conversation_id:{}", id_param(post_id)?)));
        query.push(("max_results", "100".into()));
        let answer = self
            .call(
                Method::GET,
                &["2", "tweets", "search", "recent"],
                &query,
                None,
            )
            .await?;
        Ok(items(&answer))
    }

    /// Uploads one image (`tweet_image`) or video (`tweet_video`, processed before it may be
    /// attached): the media id to attach.
    async fn upload(&self, media: &super::PostMedia, category: &str) -> Result<String, SendError> {
        let started = self
            .call(
                Method::POST,
                &["2", "media", "upload", "initialize"],
                &[],
                Some(&json!({
                    "media_type": media.mime_type,
                    "total_bytes": media.source.size(),
                    "media_category": category,
                })),
            )
            .await?;
        let id = started
            .pointer("/data/id")
            .and_then(Value::as_str)
            .ok_or_else(|| transient("the media upload gave no id"))?
            .to_string();
        // Each segment is read from the file as it goes: one segment in memory at a time.
        let mut reader = media
            .source
            .open()
            .await
            .map_err(super::source::read_failed)?;
        for index in 0.. {
            let segment = reader
                .read_chunk(UPLOAD_SEGMENT)
                .await
                .map_err(super::source::read_failed)?;
            if segment.is_empty() {
                break;
            }
            let part = reqwest::multipart::Part::bytes(segment)
                .file_name(media.file_name.clone())
                .mime_str(&media.mime_type)
                .map_err(|err| permanent(format!("bad media type: {err}")))?;
            let form = reqwest::multipart::Form::new()
                .text("segment_index", index.to_string())
                .part("media", part);
            let request = self
                .client
                .post(self.url(&["2", "media", "upload", id_param(&id)?, "append"])?)
                .bearer_auth(&self.access_token)
                .multipart(form)
                .timeout(MEDIA_TIMEOUT);
            send(request).await?;
        }
        let finished = self
            .call(
                Method::POST,
                &["2", "media", "upload", &id, "finalize"],
                &[],
                None,
            )
            .await?;
        let mut processing = finished.pointer("/data/processing_info").cloned();
        let mut polls = 0;
        while let Some(info) = processing.take() {
            match info.get("state").and_then(Value::as_str) {
                Some("succeeded") | None => break,
                Some("failed") => {
                    return Err(permanent(format!("X could not process the media: {info}")));
                }
                Some(_) if polls >= MAX_STATUS_POLLS => {
                    return Err(transient(
                        "X is still processing the video; a later attempt posts it",
                    ));
                }
                Some(_) => {
                    let wait = info
                        .get("check_after_secs")
                        .and_then(Value::as_u64)
                        .unwrap_or(1)
                        .clamp(1, MAX_STATUS_WAIT_SECS);
                    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
                    polls += 1;
                    let status = self
                        .call(
                            Method::GET,
                            &["2", "media", "upload"],
                            &[("media_id", id.clone()), ("command", "STATUS".into())],
                            None,
                        )
                        .await?;
                    processing = Some(
                        status
                            .pointer("/data/processing_info")
                            .cloned()
                            .unwrap_or_else(|| json!({ "state": "succeeded" })),
                    );
                }
            }
        }
        Ok(id)
    }

    /// The app-only bearer token of the application, for the app's webhook settings.
    async fn app_token(&self) -> Result<String, SendError> {
        if !self.app.is_configured() {
            return Err(permanent(
                "the server's X application (client id and secret) is not configured",
            ));
        }
        let request = self
            .client
            .post(self.url(&["oauth2", "token"])?)
            .basic_auth(&self.app.client_id, Some(&self.app.client_secret))
            .form(&[("grant_type", "client_credentials")])
            .timeout(TIMEOUT);
        let token = send(request).await?;
        token
            .get("access_token")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| permanent("X gave the application no bearer token"))
    }

    /// One call with the application's bearer token: `segments`, then `id` when given.
    async fn app_call(
        &self,
        token: &str,
        method: Method,
        segments: &[&str],
        id: Option<String>,
        body: Option<Value>,
    ) -> Result<Value, SendError> {
        let mut all: Vec<&str> = segments.to_vec();
        if let Some(id) = &id {
            all.push(id);
        }
        let request = self
            .client
            .request(method, self.url(&all)?)
            .bearer_auth(token)
            .timeout(TIMEOUT);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        send(request).await
    }

    /// Our post among `posts` with this text, if one is there.
    fn find_same(posts: &[Value], text: &str, reply_to: Option<&str>) -> Option<String> {
        let wanted = without_urls(text);
        posts
            .iter()
            .find(|p| {
                let same_text = p
                    .get("text")
                    .and_then(Value::as_str)
                    .is_some_and(|t| without_urls(t) == wanted);
                let same_parent = replied_to(p) == reply_to;
                same_text && same_parent
            })
            .and_then(|p| p.get("id").and_then(Value::as_str).map(str::to_string))
    }
}

/// Sends the request; the answer's JSON, or the failure it means.
async fn send(request: reqwest::RequestBuilder) -> Result<Value, SendError> {
    let response = request.send().await.map_err(rest_client::network_error)?;
    let status = response.status();
    // X says when its rate-limit window resets, in Unix seconds.
    let reset = response
        .headers()
        .get("x-rate-limit-reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map(|at| Duration::from_secs((at - Utc::now().timestamp()).max(0) as u64));
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let raw = rest_client::read_bounded(response, MAX_API_BODY).await?;
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let status = status.as_u16();
    let words = bounded_reason(&error_words(&body, &raw));
    match status {
        429 => Err(SendError::Transient {
            retry_after: reset.or(retry_after),
            reason: format!("X rate limit (429): {words}"),
        }),
        401 => Err(SendError::invalid_token(&words)),
        500..=599 => Err(transient(format!("X answered {status}: {words}"))),
        _ => Err(permanent(format!("X refused ({status}): {words}"))),
    }
}

/// X's words for an error: the problem's `detail`, its `title`, or the first error's message.
fn error_words(body: &Value, raw: &[u8]) -> String {
    let pick = |v: &Value| {
        ["detail", "title", "message", "error_description", "error"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_string))
    };
    pick(body)
        .or_else(|| body.pointer("/errors/0").and_then(pick))
        .unwrap_or_else(|| String::from_utf8_lossy(raw).into_owned())
}

fn items(answer: &Value) -> Vec<Value> {
    answer
        .get("data")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn author(post: &Value) -> Option<&str> {
    post.get("author_id").and_then(Value::as_str)
}

/// The post this one replies to.
fn replied_to(post: &Value) -> Option<&str> {
    post.get("referenced_posts")
        .or_else(|| post.get("referenced_tweets"))
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r.get("type").and_then(Value::as_str) == Some("replied_to"))
        .and_then(|r| r.get("id").and_then(Value::as_str))
}

/// Text without its URLs (X rewrites links to t.co), whitespace collapsed.
fn without_urls(text: &str) -> String {
    text.split_whitespace()
        .filter(|word| !word.starts_with("http://") && !word.starts_with("https://"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn date(post: &Value) -> Option<DateTime<Utc>> {
    let text = post.get("created_at").and_then(Value::as_str)?;
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%a %b %d %H:%M:%S %z %Y"))
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

fn metric(post: &Value, key: &str) -> u64 {
    post.pointer(&format!("/public_metrics/{key}"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

fn post_of(post: &Value) -> Option<RemotePost> {
    Some(RemotePost {
        id: post.get("id")?.as_str()?.to_string(),
        text: post
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        published_at: date(post),
        counters: Counters {
            likes: metric(post, "like_count"),
            comments: metric(post, "reply_count"),
            reposts: metric(post, "repost_count") + metric(post, "quote_count"),
            views: metric(post, "impression_count"),
        },
    })
}

/// A mention as X links it in text.
fn mention(who: &str) -> String {
    let who = who.trim_start_matches('@');
    if is_id(who) {
        // A numeric id is tagged on the media, not written.
        String::new()
    } else {
        format!("@{who}")
    }
}

/// `sha256=<base64 HMAC-SHA256(key, message)>`, X's form for CRC answers and signatures.
pub fn signature(key: &[u8], message: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(message);
    format!("sha256={}", BASE64.encode(mac.finalize().into_bytes()))
}

/// A v1.1 tweet object of an Account Activity event as a comment or a post of `account`.
fn event_of(tweet: &Value, account: &str) -> SocialEvent {
    let text = |key: &str| tweet.get(key).and_then(Value::as_str);
    let Some(id) = text("id_str") else {
        return SocialEvent::Ignored;
    };
    let body = tweet
        .pointer("/extended_tweet/full_text")
        .and_then(Value::as_str)
        .or_else(|| text("text"))
        .unwrap_or_default()
        .to_string();
    let from = tweet
        .pointer("/user/id_str")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let created_at = date(tweet);
    let parent = text("in_reply_to_status_id_str");
    let parent_author = text("in_reply_to_user_id_str");
    match parent {
        // A reply to one of the account's posts (or to its replies), or the account's own.
        Some(parent) if parent_author == Some(account) || from == account => {
            SocialEvent::Comment(RemoteComment {
                id: id.to_string(),
                post_id: parent.to_string(),
                author_id: if from == account {
                    String::new()
                } else {
                    from.to_string()
                },
                text: body,
                created_at,
                reply_to: Some(parent.to_string()),
                by_profile: from == account,
            })
        }
        None if from == account => SocialEvent::Post(RemotePost {
            id: id.to_string(),
            text: body,
            published_at: created_at,
            counters: Counters::default(),
        }),
        _ => SocialEvent::Ignored,
    }
}

#[async_trait]
impl SocialNetwork for XAccount {
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn list_posts(&self, count: u32) -> Result<Vec<RemotePost>, SendError> {
        Ok(self
            .timeline(count)
            .await?
            .iter()
            .filter_map(post_of)
            .collect())
    }

    async fn create_post(&self, content: &PostContent, _guid: &str) -> Result<String, SendError> {
        let mut text = compose_text(content, mention);
        if let Some(link) = &content.link
            && !text.contains(link.as_str())
        {
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            text.push_str(link);
        }
        let text = text.trim().to_string();
        if let Some(id) = Self::find_same(&self.timeline(RECENT).await?, &text, None) {
            return Ok(id);
        }
        let mut body = json!({ "text": text });
        if !content.videos.is_empty() && !content.images.is_empty() {
            return Err(permanent("an X post takes a video without images"));
        }
        if !content.images.is_empty() || !content.videos.is_empty() {
            let mut ids = Vec::with_capacity(content.images.len() + content.videos.len());
            for image in &content.images {
                ids.push(self.upload(image, "tweet_image").await?);
            }
            for video in &content.videos {
                ids.push(self.upload(video, "tweet_video").await?);
            }
            body["media"] = json!({ "media_ids": ids });
            let tagged: Vec<&str> = content
                .mentions
                .iter()
                .map(|m| m.trim_start_matches('@'))
                .filter(|m| is_id(m))
                .take(10)
                .collect();
            if !tagged.is_empty() {
                body["media"]["tagged_user_ids"] = json!(tagged);
            }
        }
        if let Some(place) = content.place_id() {
            body["geo"] = json!({ "place_id": place });
        }
        match self
            .call(Method::POST, &["2", "tweets"], &[], Some(&body))
            .await
        {
            Ok(created) => created
                .pointer("/data/id")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| transient("X created the post without an id")),
            Err(SendError::Permanent { reason }) if reason.contains("duplicate") => {
                Self::find_same(&self.timeline(RECENT).await?, &text, None)
                    .ok_or(SendError::Permanent { reason })
            }
            Err(other) => Err(other),
        }
    }

    async fn post_exists(&self, post_id: &str) -> Result<bool, SendError> {
        match self
            .call(Method::GET, &["2", "tweets", id_param(post_id)?], &[], None)
            .await
        {
            Ok(answer) => Ok(answer.get("data").is_some()),
            Err(SendError::Permanent { reason }) if reason.contains("(404)") => Ok(false),
            Err(other) => Err(other),
        }
    }

    async fn edit_post(&self, _post_id: &str, _content: &PostContent) -> Result<(), SendError> {
        Err(super::unsupported(CAPABILITIES, Action::EditPost))
    }

    async fn delete_post(&self, post_id: &str) -> Result<(), SendError> {
        match self
            .call(
                Method::DELETE,
                &["2", "tweets", id_param(post_id)?],
                &[],
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(SendError::Permanent { reason }) if reason.contains("(404)") => Ok(()),
            Err(other) => Err(other),
        }
    }

    async fn list_comments(&self, post_id: &str) -> Result<Vec<RemoteComment>, SendError> {
        let mut replies: Vec<RemoteComment> = self
            .conversation(post_id)
            .await?
            .iter()
            .filter_map(|p| {
                let id = p.get("id")?.as_str()?.to_string();
                let from = author(p).unwrap_or_default();
                let ours = from == self.user_id;
                Some(RemoteComment {
                    id,
                    post_id: post_id.to_string(),
                    author_id: if ours {
                        String::new()
                    } else {
                        from.to_string()
                    },
                    text: p
                        .get("text")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .into(),
                    created_at: date(p),
                    reply_to: replied_to(p).map(str::to_string),
                    by_profile: ours,
                })
            })
            .filter(|c| c.id != post_id)
            .collect();
        // Search answers newest first; comments read oldest first.
        replies.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(replies)
    }

    async fn comment(
        &self,
        post_id: &str,
        reply_to: Option<&str>,
        text: &str,
        _guid: &str,
    ) -> Result<String, SendError> {
        let parent = id_param(reply_to.unwrap_or(post_id))?;
        let ours: Vec<Value> = self
            .conversation(post_id)
            .await?
            .into_iter()
            .filter(|p| author(p) == Some(self.user_id.as_str()))
            .collect();
        if let Some(id) = Self::find_same(&ours, text, Some(parent)) {
            return Ok(id);
        }
        let body = json!({ "text": text, "reply": { "in_reply_to_tweet_id": parent } });
        let created = self
            .call(Method::POST, &["2", "tweets"], &[], Some(&body))
            .await?;
        created
            .pointer("/data/id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| transient("X created the reply without an id"))
    }

    async fn delete_comment(&self, _post_id: &str, _comment_id: &str) -> Result<(), SendError> {
        Err(super::unsupported(CAPABILITIES, Action::DeleteComment))
    }

    async fn hide_comment(&self, _post_id: &str, comment_id: &str) -> Result<(), SendError> {
        self.call(
            Method::PUT,
            &["2", "tweets", id_param(comment_id)?, "hidden"],
            &[],
            Some(&json!({ "hidden": true })),
        )
        .await
        .map(drop)
    }

    async fn like(&self, target: LikeTarget<'_>) -> Result<(), SendError> {
        let (LikeTarget::Post(id) | LikeTarget::Comment(id)) = target;
        self.call(
            Method::POST,
            &["2", "users", &self.user_id, "likes"],
            &[],
            Some(&json!({ "tweet_id": id_param(id)? })),
        )
        .await
        .map(drop)
    }

    async fn unlike(&self, target: LikeTarget<'_>) -> Result<(), SendError> {
        let (LikeTarget::Post(id) | LikeTarget::Comment(id)) = target;
        self.call(
            Method::DELETE,
            &["2", "users", &self.user_id, "likes", id_param(id)?],
            &[],
            None,
        )
        .await
        .map(drop)
    }

    fn webhook(&self, request: &WebhookRequest<'_>) -> Result<Delivered, WebhookError> {
        let secret = self.app.client_secret.as_bytes();
        if secret.is_empty() {
            return Err(WebhookError::Unauthorized);
        }
        if request.method == "GET" {
            let token = request
                .query_param("crc_token")
                .filter(|t| !t.is_empty())
                .ok_or(WebhookError::Unauthorized)?;
            let body = json!({ "response_token": signature(secret, token.as_bytes()) });
            return Ok(Delivered {
                event_id: None,
                events: vec![SocialEvent::Handshake {
                    body: body.to_string(),
                    content_type: "application/json",
                }],
                ack_body: "",
            });
        }
        if request.method != "POST" {
            return Err(WebhookError::MethodNotAllowed);
        }
        let given = request
            .header("x-twitter-webhooks-signature")
            .ok_or(WebhookError::Unauthorized)?;
        let expected = signature(secret, request.body);
        if !constant_time_eq(given.trim().as_bytes(), expected.as_bytes()) {
            return Err(WebhookError::Unauthorized);
        }
        let event: Value = serde_json::from_slice(request.body)
            .map_err(|err| WebhookError::Malformed(format!("not JSON: {err}")))?;
        // One app webhook may carry other accounts' events: only ours are read.
        if event.get("for_user_id").and_then(Value::as_str) != Some(self.user_id.as_str()) {
            return Ok(Delivered {
                event_id: None,
                events: vec![SocialEvent::Ignored],
                ack_body: "",
            });
        }
        let events: Vec<SocialEvent> = event
            .get("tweet_create_events")
            .and_then(Value::as_array)
            .map(|tweets| tweets.iter().map(|t| event_of(t, &self.user_id)).collect())
            .unwrap_or_else(|| vec![SocialEvent::Ignored]);
        Ok(Delivered {
            event_id: None,
            events,
            ack_body: "",
        })
    }

    async fn subscribe(&self, url: &str) -> Result<(), SendError> {
        let app_token = self.app_token().await?;
        let app_call = |method: Method,
                        segments: &'static [&'static str],
                        id: Option<String>,
                        body: Option<Value>| {
            self.app_call(&app_token, method, segments, id, body)
        };
        let existing = app_call(Method::GET, &["2", "webhooks"], None, None).await?;
        let found = items(&existing)
            .into_iter()
            .find(|w| w.get("url").and_then(Value::as_str) == Some(url));
        let webhook = match found {
            Some(webhook) if webhook.get("valid").and_then(Value::as_bool) == Some(false) => {
                let id = webhook
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                // X checks the URL again (a CRC) on PUT.
                app_call(
                    Method::PUT,
                    &["2", "webhooks"],
                    Some(id_param(id)?.to_string()),
                    None,
                )
                .await?;
                webhook
            }
            Some(webhook) => webhook,
            None => app_call(
                Method::POST,
                &["2", "webhooks"],
                None,
                Some(json!({ "url": url })),
            )
            .await?
            .get("data")
            .cloned()
            .unwrap_or(Value::Null),
        };
        let id = webhook
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| transient("X registered the webhook without an id"))?
            .to_string();
        match self
            .call(
                Method::POST,
                &[
                    "2",
                    "account_activity",
                    "webhooks",
                    &id,
                    "subscriptions",
                    "all",
                ],
                &[],
                Some(&json!({})),
            )
            .await
        {
            Ok(_) => Ok(()),
            // Subscribed before: the subscription stands.
            Err(SendError::Permanent { reason })
                if reason.to_ascii_lowercase().contains("duplicate") =>
            {
                Ok(())
            }
            Err(other) => Err(other),
        }
    }
}

/// The account a token belongs to: `/2/users/me`.
async fn me(access_token: &str, endpoints: &Endpoints) -> Result<Value, SendError> {
    let client = rest_client::client().map_err(permanent)?;
    let url = rest_client::endpoint(&endpoints.x, &["2", "users", "me"]).map_err(permanent)?;
    let request = client
        .get(url)
        // id, name and username are the default fields.
        .bearer_auth(access_token)
        .timeout(TIMEOUT);
    let answer = send(request).await?;
    answer
        .get("data")
        .cloned()
        .ok_or_else(|| transient("X answered /2/users/me without data"))
}

/// The profiles a grant may connect: the account itself.
pub async fn manageable_profiles(
    access_token: &str,
    endpoints: &Endpoints,
) -> Result<Vec<Manageable>, SendError> {
    let me = me(access_token, endpoints).await?;
    let id = me.get("id").and_then(Value::as_str).unwrap_or_default();
    Ok(vec![Manageable {
        external_id: id.to_string(),
        name: display_name(&me),
        access_token: None,
    }])
}

fn display_name(me: &Value) -> String {
    match (
        me.get("name").and_then(Value::as_str),
        me.get("username").and_then(Value::as_str),
    ) {
        (Some(name), Some(username)) => format!("{name} (@{username})"),
        (Some(name), None) => name.to_string(),
        (None, Some(username)) => format!("@{username}"),
        (None, None) => "X account".to_string(),
    }
}

/// Connects an account: the token must be the account's named by `external_id` (its id or
/// its @username).
pub async fn connect(
    grant: &super::Grant<'_>,
    endpoints: &Endpoints,
) -> Result<super::Connected, super::ConnectFailure> {
    use super::ConnectFailure;
    let wanted = grant.external_id.trim().trim_start_matches('@');
    if wanted.is_empty() {
        return Err(ConnectFailure::BadExternalId);
    }
    let me = me(grant.access_token, endpoints)
        .await
        .map_err(ConnectFailure::Network)?;
    let id = me.get("id").and_then(Value::as_str).unwrap_or_default();
    let username = me
        .get("username")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if wanted != id && !wanted.eq_ignore_ascii_case(username) {
        return Err(ConnectFailure::BadExternalId);
    }
    Ok(super::Connected {
        name: display_name(&me),
        credentials: json!({ "access_token": grant.access_token, "user_id": id }),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn account() -> XAccount {
        let endpoints = Endpoints {
            x: Url::parse("http://127.0.0.1:9/").unwrap(),
            apps: crate::registry::SocialApps {
                x: SocialApp {
                    client_id: "key".into(),
                    client_secret: "consumer-secret".into(),
                    public_key: String::new(),
                },
                ..Default::default()
            },
            ..Endpoints::default()
        };
        XAccount::from_profile(&json!({"access_token": "t", "user_id": "42"}), &endpoints).unwrap()
    }

    #[test]
    fn the_crc_is_answered_with_the_hmac_of_the_token() {
        let delivered = account()
            .webhook(&WebhookRequest::new(
                "GET",
                "crc_token=abc",
                Vec::new(),
                b"",
            ))
            .unwrap();
        let [SocialEvent::Handshake { body, content_type }] = delivered.events.as_slice() else {
            panic!("not a handshake");
        };
        assert_eq!(*content_type, "application/json");
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            body["response_token"],
            signature(b"consumer-secret", b"abc").as_str()
        );
    }

    #[test]
    fn only_signed_deliveries_are_read() {
        let event = json!({"for_user_id": "42", "tweet_create_events": [{
            "id_str": "7", "text": "@acme size M?", "in_reply_to_status_id_str": "5",
            "in_reply_to_user_id_str": "42", "user": {"id_str": "9"},
            "created_at": "Wed Oct 10 20:19:24 +0000 2018"}]});
        let body = serde_json::to_vec(&event).unwrap();
        let signed = |sig: &str| {
            account().webhook(&WebhookRequest::new(
                "POST",
                "",
                vec![("X-Twitter-Webhooks-Signature".to_string(), sig.to_string())],
                &body,
            ))
        };
        assert_eq!(signed("sha256=forged"), Err(WebhookError::Unauthorized));
        let delivered = signed(&signature(b"consumer-secret", &body)).unwrap();
        let [SocialEvent::Comment(comment)] = delivered.events.as_slice() else {
            panic!("not a comment");
        };
        assert_eq!((comment.id.as_str(), comment.post_id.as_str()), ("7", "5"));
        assert_eq!(comment.author_id, "9");
        assert!(!comment.by_profile);
        assert!(comment.created_at.is_some());
    }

    #[test]
    fn recent_posts_with_the_same_text_are_ours_already() {
        let posts = [json!({"id": "1", "text": "Sale https://t.co/x", "author_id": "42"})];
        assert_eq!(
            XAccount::find_same(&posts, "Sale https://shop.example", None).as_deref(),
            Some("1")
        );
        assert_eq!(XAccount::find_same(&posts, "Other", None), None);
    }
}
