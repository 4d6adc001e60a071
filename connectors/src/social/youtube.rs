//! A YouTube channel (Data API v3): its videos with their statistics, the comments under
//! them and their moderation, and ratings, as the channel's owner (OAuth 2.0).
//!
//! Built by [`YoutubeChannel::from_profile`] from the profile's stored credentials:
//!
//! | key | required | meaning |
//! |---|---|---|
//! | `access_token` | yes | the owner's Google token with the `youtube.force-ssl` scope |
//! | `channel_id` | yes | the channel's id (`UC…`) |
//!
//! A channel's posts are its videos: they are listed from the channel's uploads playlist
//! (`channels.list` → `playlistItems.list` → `videos.list` with `statistics`). Comments are
//! `commentThreads` (a top-level comment and its replies); the channel answers with
//! `comments.insert` (`snippet.parentId`, always a top-level comment: YouTube threads are one
//! level deep) or starts a thread with `commentThreads.insert`; deleting deletes the
//! channel's own comments and rejects a person's (only an author may delete a comment, the
//! channel moderates the others off its videos); hiding holds a comment for
//! review (`comments.setModerationStatus`, `heldForReview`, which the owner can publish
//! again). Likes and dislikes are the channel's rating of a video (`videos.rate` with
//! `rating=like` or `dislike`; the Data API cannot rate comments). A video has one rating, so
//! a dislike replaces a like and the other way round, and taking either back is
//! `rating=none`, which would clear the other one just the same: unliking or undisliking asks
//! `videos.getRating` first and clears only the rating it takes back (a rating changed on
//! YouTube in the moment between the two calls would be cleared too). YouTube has no comment
//! webhooks: comments are polled through [`SocialNetwork::list_posts`] and
//! [`SocialNetwork::list_comments`].
//!
//! Publishing a post uploads its one video with `videos.insert` over Google's resumable upload
//! protocol: `POST /upload/youtube/v3/videos?uploadType=resumable&part=snippet,status` with the
//! video's metadata as JSON (`snippet.title` is the text's first line, `snippet.description`
//! the whole text with the link, mentions and hashtags, since a video has no fields for them;
//! `status.privacyStatus` the post's video privacy) answers with the upload session's URI in
//! `Location`; the file is then `PUT` there in chunks of 8 MiB read from storage as they go,
//! each with its `Content-Range`, Google answering 308 with the bytes it has kept in `Range`
//! until the last chunk creates the video.
//!
//! Idempotency: the Data API takes no idempotency key, so before commenting the channel's
//! comments under the video are searched for one of its own with the same text and parent,
//! which is answered instead of writing it again; before uploading, the channel's recent
//! uploads are searched for a video with the same title and description, which is answered
//! instead of uploading it again.
//!
//! Errors come as `{"error": {"code", "message", "errors": [{"reason"}]}}`: the quota and
//! rate reasons (`quotaExceeded`, `rateLimitExceeded`, `userRateLimitExceeded`) and 5xx are
//! transient, 401 is a refused token, everything else is permanent with Google's words.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::{Method, Url};
use serde_json::{Value, json};

use super::oauth::{ClientAuth, Manageable, OAuthSpec};
use super::source::read_failed;
use super::{
    Action, Capabilities, CommentDelivery, Counters, Delivered, LikeTarget, Limits, Network,
    PostContent, PostMedia, RemoteComment, RemotePost, SocialNetwork, Support,
};
use crate::SendError;
use crate::provider::{ConfigError, WebhookError, WebhookRequest};
use crate::registry::Endpoints;
use crate::rest_client::{self, MAX_API_BODY, TIMEOUT, bounded_reason, permanent, transient};

/// What Google's OAuth flow needs for YouTube: the `youtube.force-ssl` scope (comments and
/// ratings), PKCE, and `access_type=offline` with `prompt=consent` so that Google issues a
/// refresh token every time.
pub const OAUTH: OAuthSpec = OAuthSpec {
    scopes: &["https://www.googleapis.com/auth/youtube.force-ssl"],
    scope_separator: " ",
    pkce: true,
    client_auth: ClientAuth::Form,
    extra_authorize_params: &[("access_type", "offline"), ("prompt", "consent")],
    callback_params: &[],
    needs_secret: true,
};

/// YouTube's bounds of a video's metadata: a title of 100 characters, a description of 5,000
/// bytes.
const MAX_TITLE_CHARS: usize = 100;
const MAX_DESCRIPTION_BYTES: usize = 5_000;

/// The size of one chunk of a resumable upload: 8 MiB, a multiple of the 256 KiB Google
/// requires of every chunk but the last.
const UPLOAD_CHUNK: usize = 32 * 256 * 1024;

/// Google's "Resume Incomplete" answer to a chunk that is not the last.
const RESUME_INCOMPLETE: u16 = 308;

/// How many chunks in a row Google may keep nothing of before the upload is left to a later
/// attempt.
const MAX_STALLED_CHUNKS: u32 = 3;

/// How many of the channel's latest uploads are searched for a post's video before uploading.
const RECENT_UPLOADS: u32 = 50;

/// Google's reasons that mean "later", not "never".
const TRANSIENT_REASONS: [&str; 4] = [
    "quotaExceeded",
    "rateLimitExceeded",
    "userRateLimitExceeded",
    "backendError",
];

/// What the Data API allows, and what omnihub does of it.
pub const CAPABILITIES: Capabilities = Capabilities {
    network: Network::Youtube,
    connect: Support::Supported,
    comments: CommentDelivery::Polling,
    // A post is one video (its title the text's first line, its description the whole text
    // with the link, mentions and hashtags) and nothing else. A description takes 5,000
    // bytes; a video up to 256 GB (the discovery document's `maxSize`).
    limits: Some(Limits {
        max_text_chars: MAX_DESCRIPTION_BYTES,
        max_images: 0,
        image_types: &[],
        max_image_bytes: 0,
        max_videos: 1,
        videos_with_images: false,
        video_types: &["video/mp4", "video/quicktime", "video/webm"],
        max_video_bytes: 256 << 30,
    }),
    actions: &[
        (Action::ListPosts, Support::Supported),
        (
            Action::CreatePost,
            Support::Unsupported(
                "a YouTube channel's posts are videos; community posts have no API",
            ),
        ),
        (
            Action::PostImages,
            Support::Unsupported("YouTube publishes videos only"),
        ),
        (Action::PostVideo, Support::Supported),
        // A video has no fields for these: they go in its description.
        (Action::PostLink, Support::Supported),
        (Action::PostHashtags, Support::Supported),
        (Action::PostMentions, Support::Supported),
        (
            Action::PostLocation,
            Support::Unsupported("the Data API has no location for uploads"),
        ),
        (
            Action::EditPost,
            Support::Planned("videos.update of the title and description is not built yet"),
        ),
        (Action::DeletePost, Support::Supported),
        (Action::ListComments, Support::Supported),
        (Action::ReplyComment, Support::Supported),
        (Action::DeleteComment, Support::Supported),
        (Action::HideComment, Support::Supported),
        (Action::LikePost, Support::Supported),
        (Action::UnlikePost, Support::Supported),
        (
            Action::LikeComment,
            Support::Unsupported("the Data API cannot rate comments"),
        ),
        (
            Action::UnlikeComment,
            Support::Unsupported("the Data API cannot rate comments"),
        ),
        // Videos only: `videos.rate` takes a dislike, nothing rates a comment.
        (Action::Dislike, Support::Supported),
        (
            Action::DislikeComment,
            Support::Unsupported("the Data API cannot rate comments"),
        ),
    ],
};

/// One connected YouTube channel.
pub struct YoutubeChannel {
    client: reqwest::Client,
    base: Url,
    access_token: String,
    channel_id: String,
}

// Written by hand so that no secret reaches a log.
impl std::fmt::Debug for YoutubeChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YoutubeChannel")
            .field("channel_id", &self.channel_id)
            .field("access_token", &"***")
            .finish()
    }
}

/// A YouTube id as the API gives them: letters, digits, `-`, `_` and, in a reply's id, `.`.
fn is_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn id_param(id: &str) -> Result<&str, SendError> {
    if is_id(id) {
        Ok(id)
    } else {
        Err(permanent(format!("{id:?} is not a YouTube id")))
    }
}

/// The channel's own rating of a video, as `videos.rate` takes it and `videos.getRating`
/// gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rating {
    None,
    Like,
    Dislike,
}

impl Rating {
    fn as_str(self) -> &'static str {
        match self {
            Rating::None => "none",
            Rating::Like => "like",
            Rating::Dislike => "dislike",
        }
    }

    fn parse(value: &str) -> Option<Rating> {
        [Rating::None, Rating::Like, Rating::Dislike]
            .into_iter()
            .find(|r| r.as_str() == value)
    }
}

/// The query of `videos.rate` giving a video the channel's `rating`.
fn rate_query(video_id: &str, rating: Rating) -> Result<[(&'static str, String); 2], SendError> {
    Ok([
        ("id", id_param(video_id)?.to_string()),
        ("rating", rating.as_str().to_string()),
    ])
}

/// The channel's rating of `video_id` in a `videos.getRating` answer; a video the answer does
/// not list (gone) has none.
fn rating_in(answer: &Value, video_id: &str) -> Option<Rating> {
    answer
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|item| item.get("videoId").and_then(Value::as_str) == Some(video_id))
        .and_then(|item| item.get("rating").and_then(Value::as_str))
        .and_then(Rating::parse)
}

/// The thread (top-level comment) a comment belongs to: a reply's id is `<parent>.<reply>`.
fn thread_of(comment_id: &str) -> &str {
    comment_id.split('.').next().unwrap_or(comment_id)
}

impl YoutubeChannel {
    /// Builds the channel's client; `api_base` is Google's API root or a sandbox.
    pub fn from_profile(
        credentials: &Value,
        api_base: &Url,
    ) -> Result<YoutubeChannel, ConfigError> {
        let text = |key: &str| {
            credentials
                .get(key)
                .and_then(Value::as_str)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let access_token = text("access_token")
            .ok_or_else(|| ConfigError("credentials.access_token is required".into()))?;
        let channel_id = text("channel_id")
            .filter(|id| is_id(id))
            .ok_or_else(|| ConfigError("credentials.channel_id must be the channel's id".into()))?;
        Ok(YoutubeChannel {
            client: rest_client::client().map_err(ConfigError)?,
            base: api_base.clone(),
            access_token,
            channel_id,
        })
    }

    async fn call(
        &self,
        method: Method,
        resource: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, SendError> {
        call(
            &self.client,
            &self.base,
            &self.access_token,
            method,
            resource,
            query,
            body,
        )
        .await
    }

    /// The channel's uploads playlist.
    async fn uploads(&self) -> Result<String, SendError> {
        let answer = self
            .call(
                Method::GET,
                &["channels"],
                &[
                    ("part", "contentDetails".into()),
                    ("id", self.channel_id.clone()),
                ],
                None,
            )
            .await?;
        answer
            .pointer("/items/0/contentDetails/relatedPlaylists/uploads")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| permanent("YouTube knows no uploads playlist of this channel"))
    }

    /// Every comment under a video: the top-level ones with their replies.
    async fn threads(&self, video_id: &str) -> Result<Vec<RemoteComment>, SendError> {
        let mut comments = Vec::new();
        let mut page: Option<String> = None;
        // Up to 500 threads; older ones are not what operators answer.
        for _ in 0..5 {
            let mut query = vec![
                ("part", "snippet,replies".to_string()),
                ("videoId", id_param(video_id)?.to_string()),
                ("maxResults", "100".into()),
                ("textFormat", "plainText".into()),
            ];
            if let Some(token) = &page {
                query.push(("pageToken", token.clone()));
            }
            let answer = self
                .call(Method::GET, &["commentThreads"], &query, None)
                .await?;
            for thread in answer
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(top) = thread.pointer("/snippet/topLevelComment") {
                    comments.extend(self.comment_of(top, video_id, None));
                    let top_id = top.get("id").and_then(Value::as_str);
                    for reply in thread
                        .pointer("/replies/comments")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        comments.extend(self.comment_of(reply, video_id, top_id));
                    }
                }
            }
            page = answer
                .get("nextPageToken")
                .and_then(Value::as_str)
                .map(str::to_string);
            if page.is_none() {
                break;
            }
        }
        comments.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(comments)
    }

    fn comment_of(
        &self,
        comment: &Value,
        video_id: &str,
        parent: Option<&str>,
    ) -> Option<RemoteComment> {
        let snippet = comment.get("snippet")?;
        let author = snippet
            .pointer("/authorChannelId/value")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let ours = author == self.channel_id;
        Some(RemoteComment {
            id: comment.get("id")?.as_str()?.to_string(),
            post_id: snippet
                .get("videoId")
                .and_then(Value::as_str)
                .unwrap_or(video_id)
                .to_string(),
            author_id: if ours {
                String::new()
            } else {
                author.to_string()
            },
            text: snippet
                .get("textOriginal")
                .or_else(|| snippet.get("textDisplay"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            created_at: date(snippet.get("publishedAt")),
            reply_to: snippet
                .get("parentId")
                .and_then(Value::as_str)
                .or(parent)
                .map(str::to_string),
            by_profile: ours,
        })
    }

    /// Opens a resumable upload session for `video` with its metadata: the session's URI.
    async fn start_upload(&self, metadata: &Value, video: &PostMedia) -> Result<Url, SendError> {
        let url = rest_client::endpoint(&self.base, &["upload", "youtube", "v3", "videos"])
            .map_err(permanent)?;
        let response = self
            .client
            .post(url)
            .bearer_auth(&self.access_token)
            .timeout(TIMEOUT)
            .query(&[("uploadType", "resumable"), ("part", "snippet,status")])
            .header("X-Upload-Content-Length", video.source.size().to_string())
            .header("X-Upload-Content-Type", video.mime_type.as_str())
            .json(metadata)
            .send()
            .await
            .map_err(rest_client::network_error)?;
        let status = response.status();
        let retry_after = crate::api::retry_after(response.headers(), Utc::now());
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let raw = rest_client::read_bounded(response, MAX_API_BODY).await?;
        if !status.is_success() {
            let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
            return Err(google_error(status.as_u16(), retry_after, &body, &raw));
        }
        let location =
            location.ok_or_else(|| transient("YouTube opened no upload session (no Location)"))?;
        // Google gives an absolute URI; a relative one is taken against the API's base.
        self.base
            .join(&location)
            .map_err(|err| permanent(format!("YouTube's upload session {location:?}: {err}")))
    }

    /// Sends the video to the upload session in chunks of [`UPLOAD_CHUNK`] read from the file
    /// (one chunk in memory at a time), each with its `Content-Range`: Google answers 308
    /// "Resume Incomplete" with the bytes it has kept in `Range` until the last chunk, whose
    /// answer is the created video. Bytes Google did not keep of a chunk are sent again.
    async fn upload_to(&self, session: &Url, video: &PostMedia) -> Result<Value, SendError> {
        let total = video.source.size();
        if total == 0 {
            return Err(permanent("the video file is empty"));
        }
        let mut reader = video.source.open().await.map_err(read_failed)?;
        // Google has kept the bytes before `start`; `pending` are the next ones, read but not
        // kept yet.
        let mut start: u64 = 0;
        let mut pending: Vec<u8> = Vec::new();
        // Chunks in a row of which Google kept nothing: a few, then a later attempt.
        let mut stalled = 0;
        loop {
            if pending.len() < UPLOAD_CHUNK {
                let more = reader
                    .read_chunk(UPLOAD_CHUNK - pending.len())
                    .await
                    .map_err(read_failed)?;
                pending.extend_from_slice(&more);
            }
            if pending.is_empty() {
                return Err(transient(
                    "YouTube kept the whole video but did not create it",
                ));
            }
            let chunk = bytes::Bytes::from(std::mem::take(&mut pending));
            let end = start + chunk.len() as u64 - 1;
            let response = self
                .client
                .put(session.clone())
                .bearer_auth(&self.access_token)
                .timeout(upload_timeout(chunk.len()))
                .header(reqwest::header::CONTENT_TYPE, video.mime_type.as_str())
                .header(
                    reqwest::header::CONTENT_RANGE,
                    format!("bytes {start}-{end}/{total}"),
                )
                .body(chunk.clone())
                .send()
                .await
                .map_err(rest_client::network_error)?;
            let status = response.status();
            let retry_after = crate::api::retry_after(response.headers(), Utc::now());
            let kept = response
                .headers()
                .get(reqwest::header::RANGE)
                .and_then(|v| v.to_str().ok())
                .map(kept_of_range);
            let raw = rest_client::read_bounded(response, MAX_API_BODY).await?;
            if status.as_u16() == RESUME_INCOMPLETE {
                // No `Range` at all: Google has kept nothing yet.
                let kept = kept.unwrap_or(Some(0)).ok_or_else(|| {
                    transient("YouTube answered the upload with an unreadable Range")
                })?;
                if kept < start || kept > end + 1 {
                    // Bytes already dropped from memory are lost to this session: a later
                    // attempt uploads the file again.
                    return Err(transient(format!(
                        "YouTube kept {kept} bytes of the upload where {start} to {} were expected",
                        end + 1
                    )));
                }
                stalled = if kept == start { stalled + 1 } else { 0 };
                if stalled >= MAX_STALLED_CHUNKS {
                    return Err(transient("YouTube keeps none of the upload's chunks"));
                }
                pending = chunk.slice((kept - start) as usize..).to_vec();
                start = kept;
                continue;
            }
            let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
            return if status.is_success() {
                Ok(body)
            } else {
                Err(google_error(status.as_u16(), retry_after, &body, &raw))
            };
        }
    }

    async fn rate(&self, video_id: &str, rating: Rating) -> Result<(), SendError> {
        self.call(
            Method::POST,
            &["videos", "rate"],
            &rate_query(video_id, rating)?,
            None,
        )
        .await
        .map(drop)
    }

    /// Takes back the channel's `rating` of a video: `rating=none` when the video has that
    /// rating, nothing otherwise, so that taking back a like leaves a dislike alone and the
    /// other way round.
    async fn take_back(&self, video_id: &str, rating: Rating) -> Result<(), SendError> {
        let answer = self
            .call(
                Method::GET,
                &["videos", "getRating"],
                &[("id", id_param(video_id)?.to_string())],
                None,
            )
            .await?;
        if rating_in(&answer, video_id) == Some(rating) {
            self.rate(video_id, Rating::None).await
        } else {
            Ok(())
        }
    }
}

/// One Data API call with `access_token`.
async fn call(
    client: &reqwest::Client,
    base: &Url,
    access_token: &str,
    method: Method,
    resource: &[&str],
    query: &[(&str, String)],
    body: Option<&Value>,
) -> Result<Value, SendError> {
    let mut segments = vec!["youtube", "v3"];
    segments.extend_from_slice(resource);
    let url = rest_client::endpoint(base, &segments).map_err(permanent)?;
    let mut request = client
        .request(method, url)
        .bearer_auth(access_token)
        .timeout(TIMEOUT);
    if !query.is_empty() {
        request = request.query(query);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let answer = rest_client::fetch(request, MAX_API_BODY).await?;
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    if answer.status.is_success() {
        return Ok(body);
    }
    Err(google_error(
        answer.status.as_u16(),
        answer.retry_after,
        &body,
        &answer.body,
    ))
}

/// The failure a Google error answer means.
fn google_error(
    status: u16,
    retry_after: Option<std::time::Duration>,
    body: &Value,
    raw: &[u8],
) -> SendError {
    let reason = body
        .pointer("/error/errors/0/reason")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let message = body
        .pointer("/error/message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(raw).into_owned());
    let words = bounded_reason(&if reason.is_empty() {
        message
    } else {
        format!("{reason}: {message}")
    });
    if TRANSIENT_REASONS.contains(&reason) || status == 429 || status >= 500 {
        SendError::Transient {
            retry_after,
            reason: format!("YouTube rate limit or outage ({status}): {words}"),
        }
    } else if status == 401 {
        SendError::invalid_token(&words)
    } else {
        permanent(format!("YouTube refused ({status}): {words}"))
    }
}

/// How many bytes Google has kept by its `Range: bytes=0-<last>` answer (`None` when it is
/// not of that shape).
fn kept_of_range(range: &str) -> Option<u64> {
    let last = range.trim().strip_prefix("bytes=0-")?;
    last.parse::<u64>().ok()?.checked_add(1)
}

/// How long one upload request may take: two minutes, and a second more per 256 KiB (a slow
/// uplink of 2 Mbit/s).
fn upload_timeout(bytes: usize) -> std::time::Duration {
    rest_client::MEDIA_TIMEOUT + std::time::Duration::from_secs((bytes / (256 * 1024)) as u64)
}

/// A video's title and description from a post: the title is the text's first line (or the
/// file's name without its extension), within YouTube's 100 characters; the description is
/// the whole text with the link, the mentions and the hashtags, within 5,000 bytes. YouTube
/// refuses `<` and `>` in both, so they become look-alike angle quotes.
fn video_metadata(content: &PostContent, file_name: &str) -> (String, String) {
    let clean = |text: &str| text.replace('<', "‹").replace('>', "›");
    let first_line = content
        .text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| {
            let stem = file_name
                .rsplit_once('.')
                .map_or(file_name, |(stem, _)| stem);
            stem.trim().to_string()
        });
    let mut title: String = clean(&first_line);
    if title.chars().count() > MAX_TITLE_CHARS {
        title = title.chars().take(MAX_TITLE_CHARS - 1).collect::<String>();
        title = format!("{}…", title.trim_end());
    }
    if title.trim().is_empty() {
        title = "Video".into();
    }
    let mut with_link = content.clone();
    if let Some(link) = &content.link
        && !content.text.contains(link.as_str())
    {
        with_link.text = if content.text.trim().is_empty() {
            link.clone()
        } else {
            format!("{}\n\n{link}", content.text.trim_end())
        };
    }
    let mut description = clean(&super::compose_text(&with_link, |m| {
        format!("@{}", m.trim_start_matches('@'))
    }));
    if description.len() > MAX_DESCRIPTION_BYTES {
        let mut end = MAX_DESCRIPTION_BYTES;
        while !description.is_char_boundary(end) {
            end -= 1;
        }
        description.truncate(end);
    }
    (title, description)
}

/// The text a video is listed with (see `video_of`), for finding an upload again.
fn remote_text(title: &str, description: &str) -> String {
    if description.is_empty() {
        title.to_string()
    } else {
        format!("{title}\n\n{description}")
    }
}

fn is_not_found(err: &SendError) -> bool {
    matches!(err, SendError::Permanent { reason } if reason.contains("(404)"))
}

fn date(value: Option<&Value>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value?.as_str()?)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// Google's statistics are decimal strings.
fn stat(video: &Value, key: &str) -> u64 {
    match video.pointer(&format!("/statistics/{key}")) {
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        _ => 0,
    }
}

fn video_of(video: &Value) -> Option<RemotePost> {
    let snippet = video.get("snippet");
    let title = snippet
        .and_then(|s| s.get("title"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let description = snippet
        .and_then(|s| s.get("description"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let text = remote_text(title, description);
    Some(RemotePost {
        id: video.get("id")?.as_str()?.to_string(),
        text,
        published_at: date(snippet.and_then(|s| s.get("publishedAt"))),
        counters: Counters {
            likes: stat(video, "likeCount"),
            comments: stat(video, "commentCount"),
            reposts: 0,
            views: stat(video, "viewCount"),
        },
    })
}

#[async_trait]
impl SocialNetwork for YoutubeChannel {
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn list_posts(&self, count: u32) -> Result<Vec<RemotePost>, SendError> {
        let uploads = self.uploads().await?;
        let items = self
            .call(
                Method::GET,
                &["playlistItems"],
                &[
                    ("part", "contentDetails".into()),
                    ("playlistId", uploads),
                    ("maxResults", count.clamp(1, 50).to_string()),
                ],
                None,
            )
            .await?;
        let ids: Vec<&str> = items
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|i| i.pointer("/contentDetails/videoId").and_then(Value::as_str))
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let videos = self
            .call(
                Method::GET,
                &["videos"],
                &[("part", "snippet,statistics".into()), ("id", ids.join(","))],
                None,
            )
            .await?;
        let mut posts: Vec<RemotePost> = videos
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(video_of)
            .collect();
        // Newest first, like the uploads playlist.
        posts.sort_by_key(|p| std::cmp::Reverse(p.published_at));
        Ok(posts)
    }

    async fn create_post(&self, content: &PostContent, _guid: &str) -> Result<String, SendError> {
        let [video] = content.videos.as_slice() else {
            return Err(permanent("a YouTube post is exactly one video"));
        };
        if !content.images.is_empty() {
            return Err(super::unsupported(CAPABILITIES, Action::PostImages));
        }
        let (title, description) = video_metadata(content, &video.file_name);
        let same_text = remote_text(&title, &description);
        if let Some(done) = self
            .list_posts(RECENT_UPLOADS)
            .await?
            .into_iter()
            .find(|p| p.text == same_text)
        {
            return Ok(done.id);
        }
        let metadata = json!({
            "snippet": { "title": title, "description": description, "categoryId": "22" },
            "status": {
                "privacyStatus": content.video_privacy.as_str(),
                "selfDeclaredMadeForKids": false,
            },
        });
        let session = self.start_upload(&metadata, video).await?;
        let created = self.upload_to(&session, video).await?;
        created
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| transient("YouTube took the upload without a video id"))
    }

    async fn post_exists(&self, post_id: &str) -> Result<bool, SendError> {
        let answer = self
            .call(
                Method::GET,
                &["videos"],
                &[
                    ("part", "id".into()),
                    ("id", id_param(post_id)?.to_string()),
                ],
                None,
            )
            .await?;
        Ok(answer
            .get("items")
            .and_then(Value::as_array)
            .is_some_and(|items| !items.is_empty()))
    }

    async fn edit_post(&self, _post_id: &str, _content: &PostContent) -> Result<(), SendError> {
        Err(super::unsupported(CAPABILITIES, Action::EditPost))
    }

    async fn delete_post(&self, post_id: &str) -> Result<(), SendError> {
        match self
            .call(
                Method::DELETE,
                &["videos"],
                &[("id", id_param(post_id)?.to_string())],
                None,
            )
            .await
        {
            Err(err) if is_not_found(&err) => Ok(()),
            other => other.map(drop),
        }
    }

    async fn list_comments(&self, post_id: &str) -> Result<Vec<RemoteComment>, SendError> {
        self.threads(post_id).await
    }

    async fn comment(
        &self,
        post_id: &str,
        reply_to: Option<&str>,
        text: &str,
        _guid: &str,
    ) -> Result<String, SendError> {
        let parent = match reply_to {
            Some(id) => Some(thread_of(id_param(id)?)),
            None => None,
        };
        let existing = self.threads(post_id).await?;
        if let Some(same) = existing.iter().find(|c| {
            c.by_profile && c.text.trim() == text.trim() && c.reply_to.as_deref() == parent
        }) {
            return Ok(same.id.clone());
        }
        let created = match parent {
            Some(parent) => {
                let body = json!({ "snippet": { "parentId": parent, "textOriginal": text } });
                self.call(
                    Method::POST,
                    &["comments"],
                    &[("part", "snippet".into())],
                    Some(&body),
                )
                .await?
            }
            None => {
                let body = json!({ "snippet": {
                    "channelId": self.channel_id,
                    "videoId": id_param(post_id)?,
                    "topLevelComment": { "snippet": { "textOriginal": text } },
                } });
                let thread = self
                    .call(
                        Method::POST,
                        &["commentThreads"],
                        &[("part", "snippet".into())],
                        Some(&body),
                    )
                    .await?;
                thread
                    .pointer("/snippet/topLevelComment")
                    .cloned()
                    .unwrap_or(thread)
            }
        };
        created
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| transient("YouTube created the comment without an id"))
    }

    async fn delete_comment(&self, _post_id: &str, comment_id: &str) -> Result<(), SendError> {
        match self
            .call(
                Method::DELETE,
                &["comments"],
                &[("id", id_param(comment_id)?.to_string())],
                None,
            )
            .await
        {
            Err(err) if is_not_found(&err) => Ok(()),
            // Only a comment's author may delete it; the channel removes a person's comment
            // from view by rejecting it.
            Err(SendError::Permanent { reason }) if reason.contains("(403)") => self
                .call(
                    Method::POST,
                    &["comments", "setModerationStatus"],
                    &[
                        ("id", comment_id.to_string()),
                        ("moderationStatus", "rejected".into()),
                    ],
                    None,
                )
                .await
                .map(drop),
            other => other.map(drop),
        }
    }

    async fn hide_comment(&self, _post_id: &str, comment_id: &str) -> Result<(), SendError> {
        self.call(
            Method::POST,
            &["comments", "setModerationStatus"],
            &[
                ("id", id_param(comment_id)?.to_string()),
                ("moderationStatus", "heldForReview".into()),
            ],
            None,
        )
        .await
        .map(drop)
    }

    async fn like(&self, target: LikeTarget<'_>) -> Result<(), SendError> {
        match target {
            LikeTarget::Post(id) => self.rate(id, Rating::Like).await,
            LikeTarget::Comment(_) => Err(super::unsupported(CAPABILITIES, Action::LikeComment)),
        }
    }

    async fn unlike(&self, target: LikeTarget<'_>) -> Result<(), SendError> {
        match target {
            LikeTarget::Post(id) => self.take_back(id, Rating::Like).await,
            LikeTarget::Comment(_) => Err(super::unsupported(CAPABILITIES, Action::UnlikeComment)),
        }
    }

    async fn dislike(&self, target: LikeTarget<'_>) -> Result<(), SendError> {
        match target {
            LikeTarget::Post(id) => self.rate(id, Rating::Dislike).await,
            LikeTarget::Comment(_) => Err(super::unsupported(CAPABILITIES, Action::DislikeComment)),
        }
    }

    async fn undislike(&self, target: LikeTarget<'_>) -> Result<(), SendError> {
        match target {
            LikeTarget::Post(id) => self.take_back(id, Rating::Dislike).await,
            LikeTarget::Comment(_) => Err(super::unsupported(CAPABILITIES, Action::DislikeComment)),
        }
    }

    /// YouTube has no comment webhooks: nothing may claim to be one.
    fn webhook(&self, _request: &WebhookRequest<'_>) -> Result<Delivered, WebhookError> {
        Err(WebhookError::Unauthorized)
    }

    /// Comments are polled: there is nothing to point anywhere.
    async fn subscribe(&self, _url: &str) -> Result<(), SendError> {
        Ok(())
    }
}

/// The channels a token's owner has: `channels.list?mine=true`.
async fn my_channels(access_token: &str, endpoints: &Endpoints) -> Result<Vec<Value>, SendError> {
    let client = rest_client::client().map_err(permanent)?;
    let answer = call(
        &client,
        &endpoints.youtube,
        access_token,
        Method::GET,
        &["channels"],
        &[("part", "snippet".into()), ("mine", "true".into())],
        None,
    )
    .await?;
    Ok(answer
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

fn channel_name(channel: &Value) -> String {
    channel
        .pointer("/snippet/title")
        .and_then(Value::as_str)
        .unwrap_or("YouTube channel")
        .to_string()
}

/// The profiles a grant may connect: the owner's channels.
pub async fn manageable_profiles(
    access_token: &str,
    endpoints: &Endpoints,
) -> Result<Vec<Manageable>, SendError> {
    Ok(my_channels(access_token, endpoints)
        .await?
        .iter()
        .filter_map(|c| {
            Some(Manageable {
                external_id: c.get("id")?.as_str()?.to_string(),
                name: channel_name(c),
                access_token: None,
            })
        })
        .collect())
}

/// Connects a channel: the token's owner must have the channel named by `external_id`.
pub async fn connect(
    grant: &super::Grant<'_>,
    endpoints: &Endpoints,
) -> Result<super::Connected, super::ConnectFailure> {
    use super::ConnectFailure;
    let wanted = grant.external_id.trim();
    if !is_id(wanted) {
        return Err(ConnectFailure::BadExternalId);
    }
    let channels = my_channels(grant.access_token, endpoints)
        .await
        .map_err(ConnectFailure::Network)?;
    let channel = channels
        .iter()
        .find(|c| c.get("id").and_then(Value::as_str) == Some(wanted))
        .ok_or(ConnectFailure::BadExternalId)?;
    Ok(super::Connected {
        name: channel_name(channel),
        credentials: json!({ "access_token": grant.access_token, "channel_id": wanted }),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn quota_is_transient_and_other_refusals_are_not() {
        let body = |reason: &str| json!({"error": {"code": 403, "message": "m", "errors": [{"reason": reason}]}});
        assert!(google_error(403, None, &body("quotaExceeded"), b"").is_transient());
        assert!(google_error(403, None, &body("rateLimitExceeded"), b"").is_transient());
        let refused = google_error(403, None, &body("forbidden"), b"");
        assert!(!refused.is_transient());
        assert!(refused.reason().contains("forbidden"), "{refused:?}");
        assert_eq!(
            google_error(401, None, &body("authError"), b"").problem(),
            crate::provider::Problem::InvalidToken
        );
    }

    #[test]
    fn a_post_becomes_a_title_and_a_description() {
        let content = PostContent {
            text: "Spring <collection>\nAll new.".into(),
            link: Some("https://shop.example/spring".into()),
            hashtags: vec!["spring".into()],
            mentions: vec!["@friend".into()],
            ..PostContent::default()
        };
        let (title, description) = video_metadata(&content, "clip.mp4");
        assert_eq!(title, "Spring ‹collection›");
        assert_eq!(
            description,
            "Spring ‹collection›\nAll new.\n\nhttps://shop.example/spring\n\n@friend\n\n#spring"
        );
        let (title, description) = video_metadata(&PostContent::default(), "Our day.mov");
        assert_eq!((title.as_str(), description.as_str()), ("Our day", ""));
        let long = PostContent {
            text: "я".repeat(3_000),
            ..PostContent::default()
        };
        let (title, description) = video_metadata(&long, "a.mp4");
        assert_eq!(title.chars().count(), MAX_TITLE_CHARS);
        assert!(title.ends_with('…'));
        assert_eq!(description.len(), MAX_DESCRIPTION_BYTES);
    }

    #[test]
    fn ratings_are_sent_as_the_data_api_takes_them() {
        let query = |rating| {
            rate_query("dQw4w9WgXcQ", rating)
                .unwrap()
                .map(|(k, v)| format!("{k}={v}"))
        };
        assert_eq!(query(Rating::Dislike), ["id=dQw4w9WgXcQ", "rating=dislike"]);
        assert_eq!(query(Rating::Like), ["id=dQw4w9WgXcQ", "rating=like"]);
        assert_eq!(query(Rating::None), ["id=dQw4w9WgXcQ", "rating=none"]);
        assert!(rate_query("v1&rating=like", Rating::Dislike).is_err());
        // The discovery document's enum, both ways.
        for value in ["none", "like", "dislike"] {
            assert_eq!(Rating::parse(value).map(Rating::as_str), Some(value));
        }
        assert_eq!(Rating::parse("unspecified"), None);
    }

    #[test]
    fn the_rating_is_read_from_get_rating() {
        let answer = json!({"kind": "youtube#videoGetRatingResponse", "items": [
            {"videoId": "other", "rating": "like"},
            {"videoId": "v1", "rating": "dislike"},
        ]});
        assert_eq!(rating_in(&answer, "v1"), Some(Rating::Dislike));
        assert_eq!(rating_in(&answer, "other"), Some(Rating::Like));
        assert_eq!(rating_in(&answer, "gone"), None);
    }

    #[tokio::test]
    async fn comments_cannot_be_disliked_and_nothing_is_asked_of_youtube() {
        // Nothing listens on the discard port: a request would fail as transient.
        let channel = YoutubeChannel::from_profile(
            &json!({"access_token": "t", "channel_id": "UCx"}),
            &Url::parse("http://127.0.0.1:9/").unwrap(),
        )
        .unwrap();
        for refused in [
            channel.dislike(LikeTarget::Comment("Ugx1")).await,
            channel.undislike(LikeTarget::Comment("Ugx1.r2")).await,
        ] {
            let err = refused.unwrap_err();
            assert!(!err.is_transient(), "{err:?}");
            assert!(err.reason().contains("cannot rate comments"), "{err:?}");
        }
        assert_eq!(CAPABILITIES.support(Action::Dislike), Support::Supported);
    }

    #[test]
    fn replies_answer_their_thread() {
        assert_eq!(thread_of("Ugx1.abc"), "Ugx1");
        assert_eq!(thread_of("Ugx1"), "Ugx1");
        assert!(!is_id("a/b"));
    }
}
