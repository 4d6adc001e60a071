//! A fake YouTube Data API v3 for one channel, speaking Google's wire contract:
//!
//! - the methods omnihub uses (`channels.list`, `playlistItems.list`, `videos.list`,
//!   `videos.delete`, `videos.rate`, `videos.getRating`, `commentThreads.list`,
//!   `commentThreads.insert`,
//!   `comments.insert`, `comments.delete`, `comments.setModerationStatus`) under
//!   `/youtube/v3/`, each request checked against Google's discovery document ([`spec`]);
//!   what breaks it is recorded in [`YoutubeSandbox::violations`] and the call is still
//!   served, so a test sees both;
//! - Google's errors (`{"error": {"code", "message", "errors": [{"message", "domain",
//!   "reason"}]}}`): 401 `authError` for an unknown token, 404 `videoNotFound` and
//!   `commentNotFound`, 403 `forbidden` for deleting someone else's comment (the API lets
//!   only the author delete; the channel moderates instead), 400 `invalidRating` for a
//!   rating that is not `like`, `dislike` or `none`, and whatever reason a test
//!   injects with [`YoutubeSandbox::fail_next`] (`quotaExceeded` is 403 as at Google);
//! - Google's OAuth 2.0: `/o/oauth2/v2/auth` approves at once and redirects back with `code`
//!   and `state` (an S256 challenge, when sent, is checked at the exchange), `/token`
//!   exchanges codes and refresh tokens with the client's id and secret in the form.
//!
//! - `videos.insert` over Google's resumable upload protocol: `POST
//!   /upload/youtube/v3/videos?uploadType=resumable` (or the discovery document's
//!   `/resumable/upload/…` path) with the video's metadata as JSON, checked against the
//!   document's `Video` schema and YouTube's rules for titles (1–100 characters, no `<` or
//!   `>`: `invalidTitle`) and descriptions (5,000 bytes, no `<` or `>`:
//!   `invalidDescription`), and the `X-Upload-Content-Type` (`video/*` or
//!   `application/octet-stream`, as `mediaUpload.accept` says) and `X-Upload-Content-Length`
//!   headers, answers 200 with the session's URI in `Location`; the bytes are `PUT` there
//!   whole, or in chunks with `Content-Range` (every chunk but the last a multiple of
//!   256 KiB, each answered 308 "Resume Incomplete" with the bytes kept in `Range`; a test can
//!   make the fake keep less of a chunk, as Google may, with
//!   [`YoutubeSandbox::keep_of_next_chunk`]); the complete file (as many bytes as announced,
//!   and a video by its first bytes) creates the video, which keeps its bytes and privacy and
//!   is listed from then on.
//!
//! There are no comment webhooks at YouTube: a person's comment ([`YoutubeSandbox::person_comments`])
//! is only there to be listed. A video's rating is the channel's own (one rating per video:
//! a dislike replaces a like), counted in its `likeCount` and `dislikeCount` (which YouTube
//! shows the video's owner only; every video here is the channel's). Deviations on purpose:
//! ids are short counters with YouTube's prefixes; `viewCount` is ten per like plus one.

mod spec;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::oauth::{
    ClientAuth, Granted, OAuthConfig, OAuthServer, OfflineAccess, TokenRequest, bearer,
};
use crate::support::Violations;
use spec::YoutubeSpec;

const SERVED: [&str; 12] = [
    "youtube.videos.insert",
    "youtube.channels.list",
    "youtube.playlistItems.list",
    "youtube.videos.list",
    "youtube.videos.delete",
    "youtube.videos.rate",
    "youtube.videos.getRating",
    "youtube.commentThreads.list",
    "youtube.commentThreads.insert",
    "youtube.comments.insert",
    "youtube.comments.delete",
    "youtube.comments.setModerationStatus",
];

/// The channel and the Google OAuth client the fake serves.
#[derive(Clone, Debug)]
pub struct YoutubeConfig {
    pub channel_id: String,
    pub title: String,
    /// A token good from the start (as if pasted).
    pub access_token: String,
    pub client_id: String,
    pub client_secret: String,
    /// How long the access tokens the OAuth flow issues live.
    pub oauth_token_ttl_secs: u64,
}

impl Default for YoutubeConfig {
    fn default() -> Self {
        YoutubeConfig {
            channel_id: "UCsandboxChannel0000001".into(),
            title: "Sandbox Channel".into(),
            access_token: "ya29.sandbox-token".into(),
            client_id: "sandbox.apps.googleusercontent.com".into(),
            client_secret: "google-client-secret".into(),
            oauth_token_ttl_secs: 3599,
        }
    }
}

/// A video of the channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Video {
    pub id: String,
    pub title: String,
    pub description: String,
    pub published_at: DateTime<Utc>,
    pub likes: u64,
    pub dislikes: u64,
    /// The channel's own rating: `like`, `dislike` or `none`.
    pub rating: String,
    pub deleted: bool,
    /// `public`, `unlisted` or `private`.
    pub privacy_status: String,
    /// The uploaded file's type and bytes (empty for a seeded video).
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// A resumable upload session waiting for its bytes.
#[derive(Clone, Debug)]
struct Upload {
    title: String,
    description: String,
    privacy_status: String,
    content_type: String,
    length: usize,
    /// The bytes kept so far from `Content-Range` chunks.
    received: Vec<u8>,
}

/// A comment under a video.
#[derive(Clone, Debug, PartialEq)]
pub struct Comment {
    /// `Ug…` for a top-level comment, `<parent>.<n>` for a reply.
    pub id: String,
    pub video_id: String,
    pub parent_id: Option<String>,
    pub author_channel_id: String,
    pub author_name: String,
    pub text: String,
    pub published_at: DateTime<Utc>,
    /// `published`, `heldForReview`, `likelySpam` or `rejected`.
    pub moderation_status: String,
    pub deleted: bool,
}

#[derive(Default)]
struct Inner {
    next: u64,
    videos: Vec<Video>,
    uploads: HashMap<String, Upload>,
    comments: Vec<Comment>,
    failures: HashMap<String, VecDeque<String>>,
    calls: HashMap<String, usize>,
    /// How many bytes of the next upload chunk to keep ([`YoutubeSandbox::keep_of_next_chunk`]).
    keep_of_next_chunk: Option<usize>,
    /// How many upload chunks were received.
    chunks: usize,
}

struct State {
    config: YoutubeConfig,
    spec: YoutubeSpec,
    oauth: OAuthServer,
    violations: Violations,
    inner: Mutex<Inner>,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next(&self) -> u64 {
        let mut inner = self.lock();
        inner.next += 1;
        inner.next
    }

    fn uploads(&self) -> String {
        format!("UU{}", self.config.channel_id.trim_start_matches("UC"))
    }

    fn comment_json(&self, c: &Comment) -> Value {
        let mut snippet = json!({
            "channelId": self.config.channel_id,
            "videoId": c.video_id,
            "textDisplay": c.text,
            "textOriginal": c.text,
            "authorDisplayName": c.author_name,
            "authorChannelId": { "value": c.author_channel_id },
            "canRate": true,
            "viewerRating": "none",
            "likeCount": 0,
            "moderationStatus": c.moderation_status,
            "publishedAt": stamp(c.published_at),
            "updatedAt": stamp(c.published_at),
        });
        if let Some(parent) = &c.parent_id {
            snippet["parentId"] = json!(parent);
        }
        json!({ "kind": "youtube#comment", "etag": format!("e{}", c.id), "id": c.id, "snippet": snippet })
    }

    fn thread_json(&self, top: &Comment, replies: &[Comment], with_replies: bool) -> Value {
        let mut thread = json!({
            "kind": "youtube#commentThread", "etag": format!("t{}", top.id), "id": top.id,
            "snippet": {
                "channelId": self.config.channel_id, "videoId": top.video_id,
                "topLevelComment": self.comment_json(top), "canReply": true,
                "totalReplyCount": replies.len(), "isPublic": true,
            },
        });
        if with_replies && !replies.is_empty() {
            thread["replies"] = json!({ "comments": replies.iter().map(|r| self.comment_json(r)).collect::<Vec<_>>() });
        }
        thread
    }
}

fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Google's error answer.
fn google_error(status: u16, reason: &str, message: &str) -> HttpResponse {
    let domain = match reason {
        "quotaExceeded" | "rateLimitExceeded" => "youtube.quota",
        _ => "youtube.api",
    };
    let code = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
    HttpResponse::build(code).json(json!({ "error": {
        "code": status, "message": message,
        "errors": [{ "message": message, "domain": domain, "reason": reason }],
    } }))
}

fn list(kind: &str, items: Vec<Value>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "kind": kind, "etag": "sandbox",
        "pageInfo": { "totalResults": items.len(), "resultsPerPage": items.len() },
        "items": items,
    }))
}

/// A running fake YouTube on an ephemeral loopback port; dropping it stops the server.
pub struct YoutubeSandbox {
    addr: SocketAddr,
    state: Arc<State>,
    handle: ServerHandle,
}

impl YoutubeSandbox {
    pub async fn start(config: YoutubeConfig) -> std::io::Result<YoutubeSandbox> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let spec = YoutubeSpec::load(&SERVED).map_err(std::io::Error::other)?;
        let oauth = OAuthServer::new(OAuthConfig {
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            client_auth: ClientAuth::Form,
            pkce_required: false,
            rotate_refresh: false,
            offline: OfflineAccess::AccessType,
            token_ttl_secs: config.oauth_token_ttl_secs,
        });
        oauth.accept(&config.access_token);
        let state = Arc::new(State {
            config,
            spec,
            oauth,
            violations: Violations::default(),
            inner: Mutex::default(),
        });
        let data = web::Data::from(Arc::clone(&state));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/o/oauth2/v2/auth", web::get().to(authorize))
                .route("/token", web::post().to(token))
                .service(
                    web::scope("/upload/youtube/v3/videos")
                        .app_data(web::PayloadConfig::new(MAX_VIDEO_BYTES))
                        .route("", web::post().to(start_upload))
                        .route("", web::put().to(finish_upload)),
                )
                .service(
                    web::scope("/resumable/upload/youtube/v3/videos")
                        .app_data(web::PayloadConfig::new(MAX_VIDEO_BYTES))
                        .route("", web::post().to(start_upload))
                        .route("", web::put().to(finish_upload)),
                )
                .default_service(web::to(api))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(YoutubeSandbox {
            addr,
            state,
            handle,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base to give the connector (`http://127.0.0.1:<port>/`).
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn authorize_url(&self) -> String {
        format!("http://{}/o/oauth2/v2/auth", self.addr)
    }

    pub fn token_url(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    pub fn config(&self) -> &YoutubeConfig {
        &self.state.config
    }

    /// Requests that broke the discovery document (or OAuth's rules).
    pub fn violations(&self) -> Vec<String> {
        self.state.violations.all()
    }

    pub fn videos(&self) -> Vec<Video> {
        self.state.lock().videos.clone()
    }

    /// Every comment, deleted ones included (marked).
    pub fn comments(&self) -> Vec<Comment> {
        self.state.lock().comments.clone()
    }

    pub fn comment(&self, id: &str) -> Option<Comment> {
        self.state
            .lock()
            .comments
            .iter()
            .find(|c| c.id == id)
            .cloned()
    }

    pub fn calls(&self, method_id: &str) -> usize {
        self.state.lock().calls.get(method_id).copied().unwrap_or(0)
    }

    pub fn grants(&self) -> Vec<Granted> {
        self.state.oauth.grants()
    }

    /// Every request to the OAuth token endpoint, in order, with its outcome.
    pub fn oauth_requests(&self) -> Vec<TokenRequest> {
        self.state.oauth.token_requests()
    }

    /// The next call of `method_id` fails with Google's `reason` (`quotaExceeded`,
    /// `rateLimitExceeded`, `forbidden`, …); queued.
    pub fn fail_next(&self, method_id: &str, reason: &str) {
        self.state
            .lock()
            .failures
            .entry(method_id.to_string())
            .or_default()
            .push_back(reason.to_string());
    }

    /// Keeps only the first `bytes` of the next upload chunk, as Google may (the 308 answer's
    /// `Range` says so and the client sends the rest again).
    pub fn keep_of_next_chunk(&self, bytes: usize) {
        self.state.lock().keep_of_next_chunk = Some(bytes);
    }

    /// How many `Content-Range` chunks of uploads were received.
    pub fn upload_chunks(&self) -> usize {
        self.state.lock().chunks
    }

    /// A video the channel uploaded (in YouTube Studio): its id.
    pub fn seed_video(&self, title: &str, description: &str) -> String {
        let id = format!("vid{:08}", self.state.next());
        self.state.lock().videos.push(Video {
            id: id.clone(),
            title: title.to_string(),
            description: description.to_string(),
            published_at: Utc::now(),
            likes: 0,
            dislikes: 0,
            rating: "none".into(),
            deleted: false,
            privacy_status: "public".into(),
            content_type: String::new(),
            bytes: Vec::new(),
        });
        id
    }

    /// A person comments under a video (answering the top-level comment `parent` when
    /// given): the comment's id, or `None` when there is no such video or thread.
    pub fn person_comments(
        &self,
        video_id: &str,
        author_channel_id: &str,
        author_name: &str,
        text: &str,
        parent: Option<&str>,
    ) -> Option<String> {
        let n = self.state.next();
        let mut inner = self.state.lock();
        if !inner.videos.iter().any(|v| v.id == video_id && !v.deleted) {
            return None;
        }
        let id = match parent {
            Some(parent) => {
                inner
                    .comments
                    .iter()
                    .find(|c| c.id == parent && c.parent_id.is_none())?;
                format!("{parent}.r{n}")
            }
            None => format!("Ugz{n:08}"),
        };
        inner.comments.push(Comment {
            id: id.clone(),
            video_id: video_id.to_string(),
            parent_id: parent.map(str::to_string),
            author_channel_id: author_channel_id.to_string(),
            author_name: author_name.to_string(),
            text: text.to_string(),
            published_at: Utc::now(),
            moderation_status: "published".into(),
            deleted: false,
        });
        Some(id)
    }
}

impl Drop for YoutubeSandbox {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

async fn authorize(state: web::Data<State>, request: HttpRequest) -> HttpResponse {
    state.oauth.authorize(&request, &state.violations)
}

async fn token(state: web::Data<State>, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    state.oauth.token(&request, &body, &state.violations)
}

/// The largest video the fake takes (YouTube takes 256 GB; tests send a few kilobytes).
const MAX_VIDEO_BYTES: usize = 64 * 1024 * 1024;

/// The query of a request as pairs.
fn query_of(request: &HttpRequest) -> Vec<(String, String)> {
    serde_urlencoded::from_str(request.query_string()).unwrap_or_default()
}

fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The injected failure of `method`, if one is queued.
fn injected(state: &State, method: &str) -> Option<HttpResponse> {
    let reason = state
        .lock()
        .failures
        .get_mut(method)
        .and_then(VecDeque::pop_front)?;
    let status = if reason == "backendError" { 500 } else { 403 };
    Some(google_error(
        status,
        &reason,
        &format!("The request failed: {reason}."),
    ))
}

/// YouTube's own rules for a video's title and description beyond the schema's types.
fn metadata_problem(title: &str, description: &str) -> Option<HttpResponse> {
    if title.trim().is_empty() || title.chars().count() > 100 || title.contains(['<', '>']) {
        return Some(google_error(
            400,
            "invalidTitle",
            "The request metadata specifies an invalid or empty video title.",
        ));
    }
    if description.len() > 5_000 || description.contains(['<', '>']) {
        return Some(google_error(
            400,
            "invalidDescription",
            "The request metadata specifies an invalid video description.",
        ));
    }
    None
}

/// Whether the bytes open like a video (an ISO media `ftyp` box or an EBML header).
fn looks_like_video(bytes: &[u8]) -> bool {
    (bytes.len() >= 12 && &bytes[4..8] == b"ftyp") || bytes.starts_with(&[0x1a, 0x45, 0xdf, 0xa3])
}

/// `videos.insert`, first request of the resumable protocol: the metadata, checked, opens a
/// session whose URI is answered in `Location`.
async fn start_upload(
    state: web::Data<State>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let query = query_of(&request);
    let metadata: Option<Value> = serde_json::from_slice(&body).ok();
    let Some(matched) = state.spec.check(
        "POST",
        "/youtube/v3/videos",
        &query,
        metadata.as_ref(),
        body.len(),
    ) else {
        state
            .violations
            .record("videos.insert is not in the discovery document".to_string());
        return google_error(404, "notFound", "Not Found");
    };
    for problem in &matched.problems {
        state.violations.record(problem.clone());
    }
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    if param("uploadType") != "resumable" {
        state.violations.record(format!(
            "youtube.videos.insert: the fake serves uploadType=resumable, not {:?}",
            param("uploadType")
        ));
        return google_error(400, "badRequest", "Unsupported upload type.");
    }
    let declared_type = header(&request, "X-Upload-Content-Type").unwrap_or_default();
    if !(declared_type.starts_with("video/") || declared_type == "application/octet-stream") {
        state.violations.record(format!(
            "youtube.videos.insert: X-Upload-Content-Type {declared_type:?} is not video/* or application/octet-stream"
        ));
    }
    let length = header(&request, "X-Upload-Content-Length").and_then(|v| v.parse::<usize>().ok());
    let Some(length) = length.filter(|n| *n > 0) else {
        state.violations.record(
            "youtube.videos.insert: X-Upload-Content-Length must announce the video's size"
                .to_string(),
        );
        return google_error(400, "badRequest", "X-Upload-Content-Length is required.");
    };
    *state
        .lock()
        .calls
        .entry("youtube.videos.insert".to_string())
        .or_default() += 1;
    if !bearer(&request).is_some_and(|t| state.oauth.knows(&t)) {
        return google_error(
            401,
            "authError",
            "Request had invalid authentication credentials.",
        );
    }
    if let Some(failure) = injected(&state, "youtube.videos.insert") {
        return failure;
    }
    let metadata = metadata.unwrap_or(Value::Null);
    let parts = param("part");
    for (part, present) in [
        ("snippet", metadata.get("snippet").is_some()),
        ("status", metadata.get("status").is_some()),
    ] {
        if present && !parts.split(',').any(|p| p.trim() == part) {
            state.violations.record(format!(
                "youtube.videos.insert: the body sets {part} but part={parts:?} does not name it"
            ));
        }
    }
    let text = |pointer: &str| {
        metadata
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (title, description) = (text("/snippet/title"), text("/snippet/description"));
    if let Some(refused) = metadata_problem(&title, &description) {
        return refused;
    }
    let privacy_status = match text("/status/privacyStatus").as_str() {
        "" => "public".to_string(),
        other => other.to_string(),
    };
    let upload_id = format!("upl{:08}", state.next());
    state.lock().uploads.insert(
        upload_id.clone(),
        Upload {
            title,
            description,
            privacy_status,
            content_type: declared_type.to_string(),
            length,
            received: Vec::new(),
        },
    );
    let session = format!(
        "http://{}{}?uploadType=resumable&upload_id={upload_id}",
        request.connection_info().host(),
        request.path()
    );
    HttpResponse::Ok()
        .insert_header((actix_web::http::header::LOCATION, session))
        .finish()
}

/// Google's granularity of upload chunks: every chunk but the last is a multiple of it.
const CHUNK_GRANULARITY: usize = 256 * 1024;

/// What a `Content-Range` of an upload request says.
enum ContentRange {
    /// `bytes */<total>`: how far is the upload?
    Status { total: usize },
    /// `bytes <first>-<last>/<total>`: these bytes.
    Chunk {
        first: usize,
        last: usize,
        total: usize,
    },
}

fn content_range(value: &str) -> Option<ContentRange> {
    let (range, total) = value.trim().strip_prefix("bytes ")?.split_once('/')?;
    let total = total.parse().ok()?;
    if range == "*" {
        return Some(ContentRange::Status { total });
    }
    let (first, last) = range.split_once('-')?;
    let (first, last) = (first.parse().ok()?, last.parse().ok()?);
    (first <= last).then_some(ContentRange::Chunk { first, last, total })
}

/// Google's 308 "Resume Incomplete": the bytes kept so far in `Range` (none: no `Range`).
fn resume_incomplete(kept: usize) -> HttpResponse {
    let mut answer = HttpResponse::build(actix_web::http::StatusCode::PERMANENT_REDIRECT);
    if kept > 0 {
        answer.insert_header(("Range", format!("bytes=0-{}", kept - 1)));
    }
    answer.finish()
}

/// `videos.insert`, the bytes of an open session, per Google's resumable protocol: the whole
/// file in one `PUT`, or chunks with `Content-Range: bytes <first>-<last>/<total>` (each but
/// the last a multiple of 256 KiB, each starting where the kept bytes end) answered 308 with
/// the kept bytes in `Range` until the last one; `Content-Range: bytes */<total>` with no body
/// asks how far the upload is. The complete file creates the video.
async fn finish_upload(
    state: web::Data<State>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let query = query_of(&request);
    let upload_id = query
        .iter()
        .find(|(k, _)| k == "upload_id")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    if !bearer(&request).is_some_and(|t| state.oauth.knows(&t)) {
        return google_error(
            401,
            "authError",
            "Request had invalid authentication credentials.",
        );
    }
    let Some(mut upload) = state.lock().uploads.get(&upload_id).cloned() else {
        state
            .violations
            .record(format!("youtube upload: no session {upload_id:?}"));
        return google_error(404, "notFound", "The upload session does not exist.");
    };
    let range = header(&request, "Content-Range");
    let range = match range.map(|value| (value, content_range(value))) {
        None => None,
        Some((_, Some(range))) => Some(range),
        Some((value, None)) => {
            state.violations.record(format!(
                "youtube upload: Content-Range {value:?} is not bytes <first>-<last>/<total> or bytes */<total>"
            ));
            return google_error(400, "badRequest", "Invalid Content-Range.");
        }
    };
    let complete = match range {
        None => {
            if !upload.received.is_empty() {
                state.violations.record(format!(
                    "youtube upload: a whole-file PUT after {} bytes were sent in chunks",
                    upload.received.len()
                ));
                return google_error(400, "badRequest", "Content-Range is required.");
            }
            if body.len() != upload.length {
                state.violations.record(format!(
                    "youtube upload: {} bytes sent where {} were announced",
                    body.len(),
                    upload.length
                ));
                return google_error(400, "badRequest", "The upload is incomplete.");
            }
            body.to_vec()
        }
        Some(ContentRange::Status { total }) | Some(ContentRange::Chunk { total, .. })
            if total != upload.length =>
        {
            state.violations.record(format!(
                "youtube upload: Content-Range total {total} where {} were announced",
                upload.length
            ));
            return google_error(400, "badRequest", "Invalid Content-Range.");
        }
        Some(ContentRange::Status { .. }) => {
            if !body.is_empty() {
                state.violations.record(
                    "youtube upload: a status query (bytes */<total>) carries a body".to_string(),
                );
            }
            return resume_incomplete(upload.received.len());
        }
        Some(ContentRange::Chunk { first, last, total }) => {
            let problem = if first != upload.received.len() {
                Some(format!(
                    "a chunk starts at byte {first} where {} bytes are kept",
                    upload.received.len()
                ))
            } else if body.len() != last - first + 1 {
                Some(format!(
                    "a chunk of {} bytes says it holds bytes {first}-{last}",
                    body.len()
                ))
            } else if last >= total {
                Some(format!(
                    "a chunk ends at byte {last} of a {total}-byte file"
                ))
            } else if last + 1 < total && !body.len().is_multiple_of(CHUNK_GRANULARITY) {
                Some(format!(
                    "a chunk of {} bytes that is not the last is not a multiple of 256 KiB",
                    body.len()
                ))
            } else {
                None
            };
            if let Some(problem) = problem {
                state
                    .violations
                    .record(format!("youtube upload: {problem}"));
                return google_error(400, "badRequest", "Invalid Content-Range.");
            }
            let kept = {
                let mut inner = state.lock();
                inner.chunks += 1;
                inner
                    .keep_of_next_chunk
                    .take()
                    .map_or(body.len(), |keep| keep.min(body.len()))
            };
            upload.received.extend_from_slice(&body[..kept]);
            if upload.received.len() < total {
                let kept = upload.received.len();
                state.lock().uploads.insert(upload_id, upload);
                return resume_incomplete(kept);
            }
            std::mem::take(&mut upload.received)
        }
    };
    if !looks_like_video(&complete) {
        return google_error(
            400,
            "invalidVideoFile",
            "The uploaded file is not a video YouTube can process.",
        );
    }
    let id = format!("vid{:08}", state.next());
    let video = Video {
        id: id.clone(),
        title: upload.title,
        description: upload.description,
        published_at: Utc::now(),
        likes: 0,
        dislikes: 0,
        rating: "none".into(),
        deleted: false,
        privacy_status: upload.privacy_status,
        content_type: header(&request, "Content-Type")
            .map(str::to_string)
            .unwrap_or(upload.content_type),
        bytes: complete,
    };
    let answer = json!({
        "kind": "youtube#video", "etag": "v", "id": id,
        "snippet": { "title": video.title, "description": video.description,
            "channelId": state.config.channel_id, "publishedAt": stamp(video.published_at) },
        "status": { "uploadStatus": "uploaded", "privacyStatus": video.privacy_status },
    });
    let mut inner = state.lock();
    inner.uploads.remove(&upload_id);
    inner.videos.push(video);
    HttpResponse::Ok().json(answer)
}

async fn api(state: web::Data<State>, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(request.query_string()).unwrap_or_default();
    let json_body: Option<Value> = if body.is_empty() {
        None
    } else {
        serde_json::from_slice(&body).ok()
    };
    let Some(matched) = state.spec.check(
        request.method().as_str(),
        request.path(),
        &query,
        json_body.as_ref(),
        body.len(),
    ) else {
        state.violations.record(format!(
            "{} {}: not a method the fake serves",
            request.method(),
            request.path()
        ));
        return google_error(404, "notFound", "Not Found");
    };
    for problem in &matched.problems {
        state.violations.record(problem.clone());
    }
    let method = matched.method_id.as_str();
    *state.lock().calls.entry(method.to_string()).or_default() += 1;
    if !bearer(&request).is_some_and(|t| state.oauth.knows(&t)) {
        return google_error(
            401,
            "authError",
            "Request had invalid authentication credentials.",
        );
    }
    let failure = state
        .lock()
        .failures
        .get_mut(method)
        .and_then(VecDeque::pop_front);
    if let Some(reason) = failure {
        let status = if reason == "backendError" { 500 } else { 403 };
        return google_error(status, &reason, &format!("The request failed: {reason}."));
    }
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let parts = param("part");
    let has_part = |p: &str| parts.split(',').any(|x| x.trim() == p);
    let body = json_body.unwrap_or(Value::Null);
    let channel = state.config.channel_id.clone();
    match method {
        // Metadata alone makes no video.
        "youtube.videos.insert" => {
            state
                .violations
                .record("youtube.videos.insert without the upload protocol (no media)".to_string());
            google_error(
                400,
                "mediaBodyRequired",
                "The request does not include the video content.",
            )
        }
        "youtube.channels.list" => {
            let mine = param("mine") == "true" || param("id").split(',').any(|i| i == channel);
            let mut item = json!({ "kind": "youtube#channel", "etag": "c", "id": channel });
            if has_part("snippet") {
                item["snippet"] = json!({ "title": state.config.title, "description": "",
                    "publishedAt": "2020-01-01T00:00:00Z" });
            }
            if has_part("contentDetails") {
                item["contentDetails"] =
                    json!({ "relatedPlaylists": { "likes": "", "uploads": state.uploads() } });
            }
            list(
                "youtube#channelListResponse",
                if mine { vec![item] } else { Vec::new() },
            )
        }
        "youtube.playlistItems.list" => {
            if param("playlistId") != state.uploads() {
                return google_error(404, "playlistNotFound", "The playlist cannot be found.");
            }
            let max = param("maxResults").parse::<usize>().unwrap_or(5);
            let items: Vec<Value> = state
                .lock()
                .videos
                .iter()
                .rev()
                .filter(|v| !v.deleted)
                .take(max)
                .map(|v| json!({ "kind": "youtube#playlistItem", "etag": "p", "id": format!("pl{}", v.id),
                    "contentDetails": { "videoId": v.id, "videoPublishedAt": stamp(v.published_at) } }))
                .collect();
            list("youtube#playlistItemListResponse", items)
        }
        "youtube.videos.list" => {
            let ids: Vec<String> = param("id").split(',').map(str::to_string).collect();
            let inner = state.lock();
            let items: Vec<Value> = inner
                .videos
                .iter()
                .filter(|v| !v.deleted && ids.contains(&v.id))
                .map(|v| {
                    let comments = inner
                        .comments
                        .iter()
                        .filter(|c| {
                            c.video_id == v.id && !c.deleted && c.moderation_status == "published"
                        })
                        .count();
                    let mut item = json!({ "kind": "youtube#video", "etag": "v", "id": v.id });
                    if has_part("snippet") {
                        item["snippet"] = json!({ "title": v.title, "description": v.description,
                            "channelId": channel, "publishedAt": stamp(v.published_at) });
                    }
                    if has_part("status") {
                        item["status"] = json!({ "uploadStatus": "processed",
                            "privacyStatus": v.privacy_status });
                    }
                    if has_part("statistics") {
                        item["statistics"] = json!({
                            "viewCount": (v.likes * 10 + 1).to_string(),
                            "likeCount": v.likes.to_string(),
                            "dislikeCount": v.dislikes.to_string(),
                            "favoriteCount": "0",
                            "commentCount": comments.to_string(),
                        });
                    }
                    item
                })
                .collect();
            list("youtube#videoListResponse", items)
        }
        "youtube.videos.delete" => {
            let id = param("id");
            let mut inner = state.lock();
            match inner.videos.iter_mut().find(|v| v.id == id && !v.deleted) {
                Some(video) => {
                    video.deleted = true;
                    HttpResponse::NoContent().finish()
                }
                None => google_error(
                    404,
                    "videoNotFound",
                    "The video that you are trying to delete cannot be found.",
                ),
            }
        }
        "youtube.videos.rate" => {
            let id = param("id");
            let rating = param("rating");
            if !matches!(rating.as_str(), "like" | "dislike" | "none") {
                return google_error(
                    400,
                    "invalidRating",
                    "The request contained an unexpected value for the rating parameter.",
                );
            }
            let mut inner = state.lock();
            match inner.videos.iter_mut().find(|v| v.id == id && !v.deleted) {
                Some(video) => {
                    // One rating per video: the new one replaces the old one in the counters.
                    match video.rating.as_str() {
                        "like" => video.likes = video.likes.saturating_sub(1),
                        "dislike" => video.dislikes = video.dislikes.saturating_sub(1),
                        _ => {}
                    }
                    match rating.as_str() {
                        "like" => video.likes += 1,
                        "dislike" => video.dislikes += 1,
                        _ => {}
                    }
                    video.rating = rating;
                    HttpResponse::NoContent().finish()
                }
                None => google_error(
                    404,
                    "videoNotFound",
                    "The video that you are trying to rate cannot be found.",
                ),
            }
        }
        // The channel's ratings of the videos asked about; ids of no video are left out.
        "youtube.videos.getRating" => {
            let ids: Vec<&str> = query
                .iter()
                .filter(|(k, _)| k == "id")
                .flat_map(|(_, v)| v.split(','))
                .collect();
            let items: Vec<Value> = state
                .lock()
                .videos
                .iter()
                .filter(|v| !v.deleted && ids.contains(&v.id.as_str()))
                .map(|v| json!({ "videoId": v.id, "rating": v.rating }))
                .collect();
            HttpResponse::Ok().json(json!({
                "kind": "youtube#videoGetRatingResponse", "etag": "r", "items": items,
            }))
        }
        "youtube.commentThreads.list" => {
            let video = param("videoId");
            let with_replies = has_part("replies");
            let wanted_status = match param("moderationStatus").as_str() {
                "" => "published".to_string(),
                other => other.to_string(),
            };
            let max = param("maxResults").parse::<usize>().unwrap_or(20);
            let comments: Vec<Comment> = state
                .lock()
                .comments
                .iter()
                .filter(|c| c.video_id == video && !c.deleted)
                .cloned()
                .collect();
            if !state
                .lock()
                .videos
                .iter()
                .any(|v| v.id == video && !v.deleted)
            {
                return google_error(
                    404,
                    "videoNotFound",
                    "The video identified by the videoId parameter could not be found.",
                );
            }
            let items: Vec<Value> = comments
                .iter()
                .rev()
                .filter(|c| c.parent_id.is_none() && c.moderation_status == wanted_status)
                .take(max)
                .map(|top| {
                    let replies: Vec<Comment> = comments
                        .iter()
                        .filter(|r| {
                            r.parent_id.as_deref() == Some(top.id.as_str())
                                && r.moderation_status == "published"
                        })
                        .cloned()
                        .collect();
                    state.thread_json(top, &replies, with_replies)
                })
                .collect();
            list("youtube#commentThreadListResponse", items)
        }
        "youtube.commentThreads.insert" => {
            let video = body
                .pointer("/snippet/videoId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let text = body
                .pointer("/snippet/topLevelComment/snippet/textOriginal")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if text.is_empty() {
                return google_error(400, "commentTextRequired", "The comment must contain text.");
            }
            if !state
                .lock()
                .videos
                .iter()
                .any(|v| v.id == video && !v.deleted)
            {
                return google_error(
                    404,
                    "videoNotFound",
                    "The specified video could not be found.",
                );
            }
            let id = format!("Ugz{:08}", state.next());
            let comment = Comment {
                id,
                video_id: video,
                parent_id: None,
                author_channel_id: channel.clone(),
                author_name: state.config.title.clone(),
                text,
                published_at: Utc::now(),
                moderation_status: "published".into(),
                deleted: false,
            };
            state.lock().comments.push(comment.clone());
            HttpResponse::Ok().json(state.thread_json(&comment, &[], false))
        }
        "youtube.comments.insert" => {
            let parent = body
                .pointer("/snippet/parentId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let text = body
                .pointer("/snippet/textOriginal")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if text.is_empty() {
                return google_error(400, "commentTextRequired", "The comment must contain text.");
            }
            let video = state
                .lock()
                .comments
                .iter()
                .find(|c| c.id == parent && c.parent_id.is_none() && !c.deleted)
                .map(|c| c.video_id.clone());
            let Some(video) = video else {
                return google_error(
                    404,
                    "parentCommentNotFound",
                    "The parent comment could not be found.",
                );
            };
            let id = format!("{parent}.r{}", state.next());
            let comment = Comment {
                id,
                video_id: video,
                parent_id: Some(parent),
                author_channel_id: channel.clone(),
                author_name: state.config.title.clone(),
                text,
                published_at: Utc::now(),
                moderation_status: "published".into(),
                deleted: false,
            };
            state.lock().comments.push(comment.clone());
            HttpResponse::Ok().json(state.comment_json(&comment))
        }
        "youtube.comments.delete" => {
            let id = param("id");
            let mut inner = state.lock();
            match inner.comments.iter_mut().find(|c| c.id == id && !c.deleted) {
                None => google_error(404, "commentNotFound", "The comment could not be found."),
                Some(c) if c.author_channel_id != channel => google_error(
                    403,
                    "forbidden",
                    "The comment could not be deleted: only its author may delete it.",
                ),
                Some(c) => {
                    c.deleted = true;
                    HttpResponse::NoContent().finish()
                }
            }
        }
        "youtube.comments.setModerationStatus" => {
            let status = param("moderationStatus");
            let ids: Vec<String> = param("id").split(',').map(str::to_string).collect();
            let mut inner = state.lock();
            let ours: Vec<String> = inner
                .videos
                .iter()
                .filter(|v| !v.deleted)
                .map(|v| v.id.clone())
                .collect();
            for id in &ids {
                match inner
                    .comments
                    .iter_mut()
                    .find(|c| &c.id == id && !c.deleted)
                {
                    None => {
                        return google_error(
                            404,
                            "commentNotFound",
                            "The comment could not be found.",
                        );
                    }
                    Some(c) if !ours.contains(&c.video_id) => {
                        return google_error(
                            403,
                            "forbidden",
                            "The comment is not on the channel's video.",
                        );
                    }
                    Some(c) => c.moderation_status = status.clone(),
                }
            }
            HttpResponse::NoContent().finish()
        }
        other => google_error(404, "notFound", &format!("{other} is not served")),
    }
}
