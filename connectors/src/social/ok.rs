//! An OK (Odnoklassniki) group: topics, comments and "Класс!" likes, published as the group
//! through OK's REST API (`POST {base}/fb.do`).
//!
//! Built by [`OkGroup::from_profile`] from the profile's stored credentials and the server's OK
//! application (`endpoints.apps.ok`: `public_key` is the application key sent with every call,
//! `client_secret` the secret key the calls are signed with):
//!
//! | key | required | meaning |
//! |---|---|---|
//! | `access_token` | yes | a moderator's token with `VALUABLE_ACCESS`, `GROUP_CONTENT`, `PHOTO_CONTENT` |
//! | `group_id` | yes | the group's id (digits) |
//! | `refresh_token` | no | kept by the OAuth flow to renew the access token |
//!
//! Every call is signed: `sig = md5(k1=v1k2=v2… + md5(access_token + secret key))`, the
//! parameters sorted by name, raw (not URL-encoded), `sig` and `access_token` left out, every
//! hex digest lower case. Topics go out with `mediatopic.post` (`type=GROUP_THEME`, the content
//! as the `attachment` JSON's `media` list); photos are uploaded first (`photosV2.getUploadUrl`
//! with the group, the multipart upload, whose tokens name the photos in the topic; OK's docs
//! say not to call `photosV2.commit` for group topics). Comments are `discussions.*` on the
//! topic's discussion (`GROUP_TOPIC`); a comment's id here is `<topic>_<comment>`, since OK's
//! calls on a comment need its topic too.
//!
//! OK has no webhook for group comments: they are polled (the capability row says so). Nor has
//! it an idempotency key: a publication is made exactly once by looking, before posting, among
//! the group's latest topics (comments) for one the group published in the last
//! [`SAME_WITHIN`] with the same text, and answering its id instead of posting again. A retry
//! after a lost answer therefore finds the first post; the price is that the group cannot
//! publish the very same text twice within that window, which is what a group would rarely
//! want anyway.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use md5::{Digest, Md5};
use reqwest::Url;
use serde_json::{Value, json};

use super::oauth::{ClientAuth, Manageable, OAuthSpec};
use super::{
    Action, Capabilities, CommentDelivery, Counters, Delivered, LikeTarget, Limits, Network,
    PostContent, RemoteComment, RemotePost, SocialNetwork, Support, compose_text,
};
use crate::SendError;
use crate::provider::{ConfigError, WebhookError, WebhookRequest};
use crate::registry::{Endpoints, SocialApp};
use crate::rest_client::{
    MAX_REASON, MEDIA_TIMEOUT, TIMEOUT, network_error, permanent, read_bounded, transient,
};

/// A publication with the same text as one of the group's within this long is taken for an
/// earlier attempt of it (OK has no idempotency key).
pub const SAME_WITHIN: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// How many of the latest topics are searched for an earlier attempt.
const LOOK_BACK_TOPICS: u32 = 20;

/// The discussion type of a group topic.
const GROUP_TOPIC: &str = "GROUP_TOPIC";

/// The fields `mediatopic.getTopics` and `mediatopic.getByIds` are asked for.
const TOPIC_FIELDS: &str = "media_topic.*";

/// The roles in a group that may publish and moderate (`group.getUserGroups*` statuses).
const MANAGING_ROLES: [&str; 4] = ["ADMIN", "MODERATOR", "SUPER_MODERATOR", "EDITOR"];

/// Answers larger than this are not read.
const MAX_ANSWER: usize = 1024 * 1024;

/// What OK's OAuth needs: its permissions (`;`-separated), no PKCE, the secret in the form.
/// `LONG_ACCESS_TOKEN` asks for a token that lives 30 days instead of 30 minutes.
pub const OAUTH: OAuthSpec = OAuthSpec {
    scopes: &[
        "VALUABLE_ACCESS",
        "LONG_ACCESS_TOKEN",
        "GROUP_CONTENT",
        "PHOTO_CONTENT",
    ],
    scope_separator: ";",
    pkce: false,
    client_auth: ClientAuth::Form,
    extra_authorize_params: &[],
    callback_params: &[],
    needs_secret: true,
};

/// OK error codes this module acts on.
pub mod codes {
    pub const UNKNOWN: i64 = 1;
    pub const SERVICE: i64 = 2;
    pub const FLOOD_BLOCKED: i64 = 8;
    pub const PERMISSION_DENIED: i64 = 10;
    pub const LIMIT_REACHED: i64 = 11;
    pub const PARAM: i64 = 100;
    pub const PARAM_API_KEY: i64 = 101;
    pub const PARAM_SESSION_EXPIRED: i64 = 102;
    pub const PARAM_SESSION_KEY: i64 = 103;
    pub const PARAM_SIGNATURE: i64 = 104;
    pub const NOT_FOUND: i64 = 300;
    pub const SYSTEM: i64 = 9999;
}

/// The largest photo taken for a topic; read whole into the upload's multipart body.
const MAX_IMAGE_BYTES: usize = 20 * 1024 * 1024;

/// What OK's group API allows, and what omnihub does of it.
pub const CAPABILITIES: Capabilities = Capabilities {
    network: Network::Ok,
    connect: Support::Supported,
    comments: CommentDelivery::Polling,
    // OK's docs give no limit for a topic's text or its number of photos: these are bounds of
    // our own, well inside what OK's site takes.
    limits: Some(Limits {
        max_text_chars: 10_000,
        max_images: 20,
        image_types: &["image/jpeg", "image/png", "image/gif"],
        max_image_bytes: MAX_IMAGE_BYTES,
        // A topic's `movie` block names one uploaded video, beside photo blocks; OK's uploader
        // takes MP4, MOV and WebM among others.
        max_videos: 1,
        videos_with_images: true,
        video_types: &["video/mp4", "video/quicktime", "video/webm"],
        max_video_bytes: 32 << 30,
    }),
    actions: &[
        (Action::ListPosts, Support::Supported),
        (Action::CreatePost, Support::Supported),
        (Action::PostImages, Support::Supported),
        (
            Action::PostVideo,
            Support::Planned(
                "OK takes videos through video.getUploadUrl; the upload is not built yet",
            ),
        ),
        (Action::PostLink, Support::Supported),
        (Action::PostHashtags, Support::Supported),
        (
            Action::PostMentions,
            Support::Unsupported(
                "OK's REST API has no way to mention a person or group in a topic",
            ),
        ),
        (
            Action::PostLocation,
            Support::Planned(
                "OK ties a topic to a place of its own catalogue, but its method docs do not say how \
                 a topic's attachment carries one; not built until they do",
            ),
        ),
        (
            Action::EditPost,
            Support::Planned("OK edits topics through mediatopic.edit; not built yet"),
        ),
        (Action::DeletePost, Support::Supported),
        (Action::ListComments, Support::Supported),
        (Action::ReplyComment, Support::Supported),
        (Action::DeleteComment, Support::Supported),
        (
            Action::HideComment,
            Support::Unsupported("OK's API has no call to hide a comment; delete it instead"),
        ),
        (Action::LikePost, Support::Supported),
        (
            Action::UnlikePost,
            Support::Unsupported("OK's API has no call to take a like back"),
        ),
        (Action::LikeComment, Support::Supported),
        (
            Action::UnlikeComment,
            Support::Unsupported("OK's API has no call to take a like back"),
        ),
        (Action::Dislike, Support::Unsupported("OK has no dislikes")),
        (
            Action::DislikeComment,
            Support::Unsupported("OK has no dislikes"),
        ),
    ],
};

/// Why a call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
enum CallError {
    /// OK answered `{"error_code", "error_msg"}`.
    Api { code: i64, message: String },
    /// No usable answer: already classified.
    Transport(SendError),
}

impl CallError {
    /// Flood control, the per-day limits and OK's own failures are worth retrying; an expired
    /// or refused session is a refused token; everything else is a refusal in OK's words.
    fn into_send_error(self) -> SendError {
        match self {
            CallError::Transport(err) => err,
            CallError::Api { code, message } => {
                let reason = format!("OK error {code}: {message}");
                match code {
                    codes::FLOOD_BLOCKED => SendError::Transient {
                        retry_after: Some(Duration::from_secs(60)),
                        reason,
                    },
                    codes::LIMIT_REACHED => SendError::Transient {
                        retry_after: Some(Duration::from_secs(3600)),
                        reason,
                    },
                    codes::UNKNOWN | codes::SERVICE | codes::SYSTEM => SendError::Transient {
                        retry_after: None,
                        reason,
                    },
                    codes::PARAM_SESSION_EXPIRED | codes::PARAM_SESSION_KEY => {
                        SendError::invalid_token(&format!("the OK session is refused: {message}"))
                    }
                    codes::PARAM_SIGNATURE | codes::PARAM_API_KEY => SendError::Permanent {
                        reason: format!(
                            "{reason} (check the server's OK application key and secret key)"
                        ),
                    },
                    _ => SendError::Permanent { reason },
                }
            }
        }
    }
}

/// The signature of a call: `md5(sorted k=v pairs + md5(access_token + secret key))`, lower-case
/// hex; `sig` and `access_token` are not among the pairs.
pub fn signature(params: &[(&str, &str)], access_token: &str, secret_key: &str) -> String {
    let session_secret = hex(&Md5::digest(
        format!("{access_token}{secret_key}").as_bytes(),
    ));
    let mut pairs: Vec<&(&str, &str)> = params
        .iter()
        .filter(|(k, _)| *k != "sig" && *k != "access_token")
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut text = String::new();
    for (key, value) in pairs {
        text.push_str(key);
        text.push('=');
        text.push_str(value);
    }
    text.push_str(&session_secret);
    hex(&Md5::digest(text.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The signed REST side shared by every call with one token.
struct OkApi {
    client: reqwest::Client,
    endpoint: Url,
    application_key: String,
    secret_key: String,
    token: String,
}

impl OkApi {
    fn new(base: &Url, app: &SocialApp, token: String) -> Result<OkApi, ConfigError> {
        if !matches!(base.scheme(), "http" | "https") {
            return Err(ConfigError("the OK API base must be an http(s) URL".into()));
        }
        if app.public_key.is_empty() || app.client_secret.is_empty() {
            return Err(ConfigError(
                "the server's OK application is not set ([social] ok_public_key and ok_client_secret)"
                    .into(),
            ));
        }
        let mut base = base.clone();
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let endpoint = base
            .join("fb.do")
            .map_err(|err| ConfigError(format!("bad OK API base: {err}")))?;
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| ConfigError(format!("http client: {err}")))?;
        Ok(OkApi {
            client,
            endpoint,
            application_key: app.public_key.clone(),
            secret_key: app.client_secret.clone(),
            token,
        })
    }

    /// Calls `method` with `params` (plus the application key, the format and the signature)
    /// and returns its answer.
    async fn call(&self, method: &str, params: &[(&str, String)]) -> Result<Value, CallError> {
        let mut form: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        form.push(("application_key", &self.application_key));
        form.push(("method", method));
        form.push(("format", "json"));
        let sig = signature(&form, &self.token, &self.secret_key);
        form.push(("sig", &sig));
        form.push(("access_token", &self.token));
        let response = self
            .client
            .post(self.endpoint.clone())
            .form(&form)
            .send()
            .await
            .map_err(|err| CallError::Transport(network_error(err)))?;
        let answer = read_json(response).await.map_err(CallError::Transport)?;
        match answer.get("error_code") {
            Some(code) => Err(CallError::Api {
                code: code
                    .as_i64()
                    .or_else(|| code.as_str().and_then(|s| s.parse().ok()))
                    .unwrap_or(0),
                message: answer
                    .get("error_msg")
                    .and_then(Value::as_str)
                    .unwrap_or("no message")
                    .chars()
                    .take(MAX_REASON)
                    .collect(),
            }),
            None => Ok(answer),
        }
    }

    async fn send(&self, method: &str, params: &[(&str, String)]) -> Result<Value, SendError> {
        self.call(method, params)
            .await
            .map_err(CallError::into_send_error)
    }
}

/// Reads a JSON answer, classifying HTTP failures: 429 and 5xx are transient, others permanent.
async fn read_json(response: reqwest::Response) -> Result<Value, SendError> {
    let status = response.status();
    let body = read_bounded(response, MAX_ANSWER).await?;
    if !status.is_success() {
        let text: String = String::from_utf8_lossy(&body)
            .trim()
            .chars()
            .take(MAX_REASON)
            .collect();
        let reason = format!("HTTP {}: {text}", status.as_u16());
        return Err(
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                transient(reason)
            } else {
                permanent(reason)
            },
        );
    }
    serde_json::from_slice(&body)
        .map_err(|err| transient(format!("OK answered invalid JSON: {err}")))
}

/// One connected OK group.
pub struct OkGroup {
    api: OkApi,
    group_id: String,
}

// Written by hand so that no secret reaches a log.
impl std::fmt::Debug for OkGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OkGroup")
            .field("group_id", &self.group_id)
            .field("access_token", &"***")
            .finish()
    }
}

/// An OK id (group, topic, user): digits only.
fn is_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 40 && id.bytes().all(|b| b.is_ascii_digit())
}

impl OkGroup {
    /// Builds the group client; `api_base` is OK's API root or a sandbox, `app` the server's
    /// OK application.
    pub fn from_profile(
        credentials: &Value,
        api_base: &Url,
        app: &SocialApp,
    ) -> Result<OkGroup, ConfigError> {
        let access_token = credentials
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ConfigError("credentials.access_token is required".into()))?
            .to_string();
        let group_id = match credentials.get("group_id") {
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
        .filter(|id| is_id(id))
        .ok_or_else(|| ConfigError("credentials.group_id must be the group's id".into()))?;
        Ok(OkGroup {
            api: OkApi::new(api_base, app, access_token)?,
            group_id,
        })
    }

    /// The group's name (checks the token and the signature too).
    pub async fn name(&self) -> Result<String, SendError> {
        let answer = self
            .api
            .send(
                "group.getInfo",
                &[
                    ("uids", self.group_id.clone()),
                    ("fields", "uid,name".into()),
                ],
            )
            .await?;
        let groups = answer.get("groups").unwrap_or(&answer);
        let group = groups
            .as_array()
            .and_then(|list| list.first())
            .ok_or_else(|| permanent(format!("OK knows no group {}", self.group_id)))?;
        Ok(group
            .get("name")
            .and_then(Value::as_str)
            .map_or_else(|| format!("group {}", self.group_id), str::to_string))
    }

    /// Whether the token's user may publish in and moderate the group.
    async fn manages(&self) -> Result<bool, SendError> {
        let me = current_user(&self.api).await?;
        let answer = self
            .api
            .send(
                "group.getUserGroupsByIds",
                &[("group_id", self.group_id.clone()), ("uids", me)],
            )
            .await?;
        let rows = answer.get("users").unwrap_or(&answer);
        Ok(rows.as_array().into_iter().flatten().any(|row| {
            row.get("status")
                .and_then(Value::as_str)
                .is_some_and(|s| MANAGING_ROLES.contains(&s))
        }))
    }

    async fn topics(&self, count: u32) -> Result<Vec<Value>, SendError> {
        let answer = self
            .api
            .send(
                "mediatopic.getTopics",
                &[
                    ("gid", self.group_id.clone()),
                    ("count", count.clamp(1, 100).to_string()),
                    ("fields", TOPIC_FIELDS.into()),
                ],
            )
            .await?;
        Ok(media_topics(&answer))
    }

    /// Uploads one image for a group topic: the token the topic names it by.
    async fn upload_image(&self, image: &super::PostMedia) -> Result<String, SendError> {
        let slot = self
            .api
            .send(
                "photosV2.getUploadUrl",
                &[("gid", self.group_id.clone()), ("count", "1".into())],
            )
            .await?;
        let upload_url = slot
            .get("upload_url")
            .and_then(Value::as_str)
            .ok_or_else(|| transient("photosV2.getUploadUrl gave no upload_url"))?;
        let photo_id = slot
            .get("photo_ids")
            .and_then(|ids| ids.get(0))
            .and_then(Value::as_str)
            .ok_or_else(|| transient("photosV2.getUploadUrl gave no photo id"))?;
        let part = super::source::image_part(image, MAX_IMAGE_BYTES as u64).await?;
        let response = self
            .api
            .client
            .post(upload_url)
            .multipart(reqwest::multipart::Form::new().part("pic1", part))
            .timeout(MEDIA_TIMEOUT)
            .send()
            .await
            .map_err(|err| transient(format!("photo upload failed: {}", err.without_url())))?;
        let uploaded = read_json(response).await?;
        if let Some(code) = uploaded.get("error_code") {
            return Err(permanent(format!(
                "OK refused the photo: error {code}: {}",
                uploaded
                    .get("error_msg")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            )));
        }
        uploaded
            .get("photos")
            .and_then(|photos| photos.get(photo_id))
            .and_then(|photo| photo.get("token"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| transient("the photo upload answered without the photo's token"))
    }

    fn discussion(&self, topic: &str) -> Result<Vec<(&'static str, String)>, SendError> {
        Ok(vec![
            ("discussionId", topic_id(topic)?.to_string()),
            ("discussionType", GROUP_TOPIC.into()),
        ])
    }

    fn is_ours(&self, comment: &Value) -> bool {
        let author = text_field(comment, "author_id");
        comment.get("author_type").and_then(Value::as_str) == Some("GROUP")
            || author == self.group_id
    }

    async fn raw_comments(&self, topic: &str) -> Result<Vec<Value>, SendError> {
        let mut params = self.discussion(topic)?;
        params.push(("count", "100".into()));
        let answer = self.api.send("discussions.getComments", &params).await?;
        Ok(answer
            .get("comments")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }
}

/// The `media_topics` of an answer.
fn media_topics(answer: &Value) -> Vec<Value> {
    answer
        .get("media_topics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// A field OK gives as a string or a number, as text.
fn text_field(item: &Value, key: &str) -> String {
    match item.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn topic_id(id: &str) -> Result<&str, SendError> {
    Some(id.trim())
        .filter(|id| is_id(id))
        .ok_or_else(|| permanent(format!("{id:?} is not an OK topic id")))
}

/// Our id of a comment: `<topic>_<comment>`.
fn comment_key(topic: &str, comment: &str) -> String {
    format!("{topic}_{comment}")
}

/// The topic and OK's comment id in our id of a comment (`fallback_topic` for a bare one).
fn comment_parts<'a>(
    key: &'a str,
    fallback_topic: Option<&'a str>,
) -> Result<(&'a str, &'a str), SendError> {
    match key.split_once('_') {
        Some((topic, comment)) if is_id(topic) && !comment.is_empty() => Ok((topic, comment)),
        _ => match fallback_topic {
            Some(topic) if !key.is_empty() => Ok((topic_id(topic)?, key)),
            _ => Err(permanent(format!("{key:?} is not an OK comment id"))),
        },
    }
}

/// The text of a topic: its `text` media joined.
fn topic_text(topic: &Value) -> String {
    topic
        .get("media")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|m| m.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|m| m.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn summary(topic: &Value, key: &str, count: &str) -> u64 {
    topic
        .get(key)
        .and_then(|s| s.get(count))
        .and_then(|c| {
            c.as_u64()
                .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(0)
}

fn post_of(topic: &Value) -> Option<RemotePost> {
    let id = text_field(topic, "id");
    if id.is_empty() {
        return None;
    }
    Some(RemotePost {
        id,
        text: topic_text(topic),
        published_at: topic
            .get("created_ms")
            .and_then(Value::as_i64)
            .and_then(DateTime::from_timestamp_millis),
        counters: Counters {
            likes: summary(topic, "like_summary", "count"),
            comments: summary(topic, "discussion_summary", "comments_count"),
            reposts: summary(topic, "reshare_summary", "count"),
            views: topic
                .get("views_count")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        },
    })
}

/// A comment's `date`: `yyyy-MM-dd HH:mm:ss`, read as Moscow time (UTC+3 all year), the zone
/// OK states its dates in.
fn comment_date(value: Option<&Value>) -> Option<DateTime<Utc>> {
    let text = value?.as_str()?;
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").ok()?;
    let moscow = chrono::FixedOffset::east_opt(3 * 3600)?;
    moscow
        .from_local_datetime(&naive)
        .single()
        .map(|at| at.with_timezone(&Utc))
}

/// The `attachment` of `mediatopic.post`: the text (hashtags appended), the link, the photos,
/// as the group.
fn attachment(content: &PostContent, photo_tokens: &[String]) -> Value {
    let mut media = Vec::new();
    let text = compose_text(
        &PostContent {
            mentions: Vec::new(),
            ..content.clone()
        },
        str::to_string,
    );
    if !text.is_empty() {
        media.push(json!({"type": "text", "text": text}));
    }
    if let Some(link) = &content.link {
        media.push(json!({"type": "link", "url": link}));
    }
    if !photo_tokens.is_empty() {
        let list: Vec<Value> = photo_tokens.iter().map(|t| json!({"id": t})).collect();
        media.push(json!({"type": "photo", "list": list}));
    }
    // Published as the group, not as the moderator whose token it is.
    json!({"media": media, "onBehalfOfGroup": "true"})
}

/// The text as it will be compared with the group's topics.
fn topic_text_of(content: &PostContent) -> String {
    let attachment = attachment(content, &[]);
    topic_text(&attachment)
}

fn recent(at: Option<DateTime<Utc>>) -> bool {
    at.is_some_and(|at| Utc::now() - at < SAME_WITHIN)
}

#[async_trait]
impl SocialNetwork for OkGroup {
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn list_posts(&self, count: u32) -> Result<Vec<RemotePost>, SendError> {
        Ok(self
            .topics(count)
            .await?
            .iter()
            .filter_map(post_of)
            .collect())
    }

    async fn create_post(&self, content: &PostContent, _guid: &str) -> Result<String, SendError> {
        if content.location.is_some() {
            return Err(super::unsupported(CAPABILITIES, Action::PostLocation));
        }
        if !content.mentions.is_empty() {
            return Err(super::unsupported(CAPABILITIES, Action::PostMentions));
        }
        // No idempotency key on OK: an earlier attempt is recognised by its text (module doc).
        let text = topic_text_of(content);
        if !text.is_empty()
            && let Some(earlier) = self
                .topics(LOOK_BACK_TOPICS)
                .await?
                .iter()
                .filter_map(post_of)
                .find(|p| p.text == text && recent(p.published_at))
        {
            return Ok(earlier.id);
        }
        let mut tokens = Vec::with_capacity(content.images.len());
        for image in &content.images {
            tokens.push(self.upload_image(image).await?);
        }
        let answer = self
            .api
            .send(
                "mediatopic.post",
                &[
                    ("gid", self.group_id.clone()),
                    ("type", "GROUP_THEME".into()),
                    ("attachment", attachment(content, &tokens).to_string()),
                ],
            )
            .await?;
        match answer {
            Value::String(id) if is_id(&id) => Ok(id),
            Value::Number(id) => Ok(id.to_string()),
            other => Err(transient(format!(
                "mediatopic.post gave no topic id: {}",
                other.to_string().chars().take(100).collect::<String>()
            ))),
        }
    }

    async fn post_exists(&self, post_id: &str) -> Result<bool, SendError> {
        let answer = self
            .api
            .send(
                "mediatopic.getByIds",
                &[
                    ("topic_ids", topic_id(post_id)?.to_string()),
                    ("fields", TOPIC_FIELDS.into()),
                ],
            )
            .await?;
        Ok(media_topics(&answer)
            .iter()
            .any(|t| text_field(t, "id") == post_id))
    }

    async fn edit_post(&self, _post_id: &str, _content: &PostContent) -> Result<(), SendError> {
        Err(super::unsupported(CAPABILITIES, Action::EditPost))
    }

    async fn delete_post(&self, post_id: &str) -> Result<(), SendError> {
        let deleted = self
            .api
            .call(
                "mediatopic.deleteTopic",
                &[
                    ("topic_id", topic_id(post_id)?.to_string()),
                    ("gid", self.group_id.clone()),
                ],
            )
            .await;
        match deleted {
            Ok(_) => Ok(()),
            // Already gone.
            Err(CallError::Api { code, .. }) if code == codes::NOT_FOUND => Ok(()),
            Err(err) => Err(err.into_send_error()),
        }
    }

    async fn list_comments(&self, post_id: &str) -> Result<Vec<RemoteComment>, SendError> {
        let topic = topic_id(post_id)?;
        Ok(self
            .raw_comments(topic)
            .await?
            .iter()
            .filter_map(|c| {
                let id = text_field(c, "id");
                if id.is_empty() {
                    return None;
                }
                let reply_to = text_field(c, "reply_to_comment_id");
                Some(RemoteComment {
                    id: comment_key(topic, &id),
                    post_id: topic.to_string(),
                    author_id: text_field(c, "author_id"),
                    text: c
                        .get("text")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    created_at: comment_date(c.get("date")),
                    reply_to: (!reply_to.is_empty()).then(|| comment_key(topic, &reply_to)),
                    by_profile: self.is_ours(c),
                })
            })
            .collect())
    }

    async fn comment(
        &self,
        post_id: &str,
        reply_to: Option<&str>,
        text: &str,
        _guid: &str,
    ) -> Result<String, SendError> {
        let topic = topic_id(post_id)?;
        let reply_to = reply_to
            .map(|key| comment_parts(key, Some(topic)).map(|(_, c)| c.to_string()))
            .transpose()?;
        // No idempotency key on OK: an earlier attempt is the group's own comment with the
        // same text answering the same comment, recently.
        let earlier = self.raw_comments(topic).await?.into_iter().find(|c| {
            self.is_ours(c)
                && c.get("text").and_then(Value::as_str) == Some(text)
                && text_field(c, "reply_to_comment_id") == reply_to.clone().unwrap_or_default()
                && recent(comment_date(c.get("date")))
        });
        if let Some(earlier) = earlier {
            return Ok(comment_key(topic, &text_field(&earlier, "id")));
        }
        let mut params = vec![
            ("entityId", topic.to_string()),
            ("entityType", GROUP_TOPIC.to_string()),
            ("comment", text.to_string()),
            ("as_admin", "true".into()),
        ];
        if let Some(reply_to) = reply_to {
            params.push(("reply_to_comment_id", reply_to));
        }
        let answer = self
            .api
            .send("discussions.addDiscussionComment", &params)
            .await?;
        let id = match &answer {
            Value::String(id) => id.clone(),
            other => text_field(other, "id"),
        };
        if id.is_empty() {
            return Err(transient("discussions.addDiscussionComment gave no id"));
        }
        Ok(comment_key(topic, &id))
    }

    async fn delete_comment(&self, post_id: &str, comment_id: &str) -> Result<(), SendError> {
        let (topic, comment) = comment_parts(comment_id, Some(post_id))?;
        let mut params = self.discussion(topic)?;
        params.push(("comment_id", comment.to_string()));
        match self
            .api
            .call("discussions.deleteDiscussionComment", &params)
            .await
        {
            Ok(_) => Ok(()),
            Err(CallError::Api { code, .. }) if code == codes::NOT_FOUND => Ok(()),
            Err(err) => Err(err.into_send_error()),
        }
    }

    async fn like(&self, target: LikeTarget<'_>) -> Result<(), SendError> {
        let (method, params) = match target {
            LikeTarget::Post(id) => ("discussions.addDiscussionLike", self.discussion(id)?),
            LikeTarget::Comment(key) => {
                let (topic, comment) = comment_parts(key, None)?;
                let mut params = self.discussion(topic)?;
                params.push(("comment_id", comment.to_string()));
                ("discussions.addCommentLike", params)
            }
        };
        self.api.send(method, &params).await.map(drop)
    }

    async fn unlike(&self, target: LikeTarget<'_>) -> Result<(), SendError> {
        let action = match target {
            LikeTarget::Post(_) => Action::UnlikePost,
            LikeTarget::Comment(_) => Action::UnlikeComment,
        };
        Err(super::unsupported(CAPABILITIES, action))
    }

    /// OK delivers no group events to a webhook (comments are polled): whatever arrives is
    /// not OK's.
    fn webhook(&self, _request: &WebhookRequest<'_>) -> Result<Delivered, WebhookError> {
        Err(WebhookError::Unauthorized)
    }

    /// Nothing to point anywhere: the poller asks OK.
    async fn subscribe(&self, _url: &str) -> Result<(), SendError> {
        Ok(())
    }
}

/// The uid of the token's user.
async fn current_user(api: &OkApi) -> Result<String, SendError> {
    let me = api
        .send("users.getCurrentUser", &[("fields", "uid,name".into())])
        .await?;
    let uid = text_field(&me, "uid");
    if uid.is_empty() {
        return Err(transient("users.getCurrentUser gave no uid"));
    }
    Ok(uid)
}

/// Connects a group: checks the token and signature by reading the group's name, and that the
/// token's user manages the group.
pub async fn connect(
    grant: &super::Grant<'_>,
    endpoints: &Endpoints,
) -> Result<super::Connected, super::ConnectFailure> {
    use super::ConnectFailure;
    let group_id = grant.external_id.trim();
    if !is_id(group_id) {
        return Err(ConnectFailure::BadExternalId);
    }
    let credentials = credentials(grant.access_token, group_id);
    let group = OkGroup::from_profile(&credentials, &endpoints.ok, &endpoints.apps.ok)
        .map_err(|err| ConnectFailure::Config(err.0))?;
    let name = group.name().await.map_err(ConnectFailure::Network)?;
    if !group.manages().await.map_err(ConnectFailure::Network)? {
        return Err(ConnectFailure::Network(permanent(
            "the token's OK user is not an administrator or moderator of the group",
        )));
    }
    Ok(super::Connected { name, credentials })
}

/// The credentials of a profile connected with `access_token` to group `group_id`.
pub fn credentials(access_token: &str, group_id: &str) -> Value {
    json!({"access_token": access_token, "group_id": group_id})
}

/// The groups the token's user administers or moderates, with their names.
pub async fn manageable_profiles(
    access_token: &str,
    endpoints: &Endpoints,
) -> Result<Vec<Manageable>, SendError> {
    let api = OkApi::new(&endpoints.ok, &endpoints.apps.ok, access_token.to_string())
        .map_err(|err| permanent(err.0))?;
    let me = current_user(&api).await?;
    let mut ids = Vec::new();
    let mut anchor: Option<String> = None;
    // Pages of 100; a person moderating more than a thousand groups is not expected.
    for _ in 0..10 {
        let mut params = vec![("uid", me.clone()), ("count", "100".to_string())];
        if let Some(anchor) = &anchor {
            params.push(("anchor", anchor.clone()));
        }
        let page = api.send("group.getUserGroupsV2", &params).await?;
        let groups = page
            .get("groups")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        ids.extend(
            groups
                .iter()
                .filter(|g| {
                    g.get("status")
                        .and_then(Value::as_str)
                        .is_some_and(|s| MANAGING_ROLES.contains(&s))
                })
                .map(|g| text_field(g, "groupId"))
                .filter(|id| is_id(id)),
        );
        anchor = page
            .get("anchor")
            .and_then(Value::as_str)
            .map(str::to_string);
        if groups.is_empty() || anchor.is_none() {
            break;
        }
    }
    let mut profiles = Vec::new();
    // group.getInfo takes up to 100 ids a call.
    for chunk in ids.chunks(100) {
        let answer = api
            .send(
                "group.getInfo",
                &[("uids", chunk.join(",")), ("fields", "uid,name".into())],
            )
            .await?;
        let groups = answer.get("groups").unwrap_or(&answer);
        for id in chunk {
            let name = groups
                .as_array()
                .into_iter()
                .flatten()
                .find(|g| text_field(g, "uid") == *id)
                .and_then(|g| g.get("name").and_then(Value::as_str))
                .map_or_else(|| format!("group {id}"), str::to_string);
            profiles.push(Manageable {
                external_id: id.clone(),
                name,
                access_token: None,
            });
        }
    }
    Ok(profiles)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_signature_sorts_raw_pairs_and_appends_the_session_secret() {
        let params = [
            ("method", "users.getCurrentUser"),
            ("application_key", "CBA"),
            ("format", "json"),
            ("access_token", "tok"),
        ];
        let session = hex(&Md5::digest(b"toksecret"));
        let expected = hex(&Md5::digest(
            format!("application_key=CBAformat=jsonmethod=users.getCurrentUser{session}")
                .as_bytes(),
        ));
        assert_eq!(signature(&params, "tok", "secret"), expected);
        assert_eq!(expected.len(), 32);
        assert!(expected.chars().all(|c| !c.is_ascii_uppercase()));
    }

    #[test]
    fn comment_ids_carry_their_topic() {
        assert_eq!(comment_parts("155_MTE=", None).unwrap(), ("155", "MTE="));
        assert_eq!(comment_parts("abc", Some("7")).unwrap(), ("7", "abc"));
        assert!(comment_parts("abc", None).is_err());
    }

    #[test]
    fn errors_are_classified() {
        let err = |code| {
            CallError::Api {
                code,
                message: "m".into(),
            }
            .into_send_error()
        };
        assert!(err(codes::FLOOD_BLOCKED).is_transient());
        assert!(err(codes::SERVICE).is_transient());
        assert!(!err(codes::PERMISSION_DENIED).is_transient());
        assert!(
            err(codes::PARAM_SESSION_EXPIRED)
                .to_string()
                .contains("invalid token")
        );
    }

    #[test]
    fn the_attachment_has_text_link_and_photos() {
        let content = PostContent {
            text: "Sale".into(),
            hashtags: vec!["spring".into()],
            link: Some("https://example.com".into()),
            ..PostContent::default()
        };
        assert_eq!(
            attachment(&content, &["t1".into()]),
            json!({"media": [{"type": "text", "text": "Sale\n\n#spring"},
                {"type": "link", "url": "https://example.com"},
                {"type": "photo", "list": [{"id": "t1"}]}], "onBehalfOfGroup": "true"})
        );
        assert_eq!(
            comment_date(Some(&json!("2026-01-01 03:00:00"))),
            DateTime::from_timestamp(1_767_225_600, 0)
        );
    }
}
