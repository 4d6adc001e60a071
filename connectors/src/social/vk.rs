//! A VK community's wall (API v5.199): posts, comments and likes, published as the community.
//!
//! Built by [`VkWall::from_profile`] from the profile's stored credentials:
//!
//! | key | required | meaning |
//! |---|---|---|
//! | `access_token` | yes | the administrator's token with the `wall`, `photos`, `video`, `groups` scopes |
//! | `group_id` | yes | the community's id |
//! | `secret` | for webhooks | the Callback API secret key omnihub gave the callback server |
//! | `confirmation_code` | for webhooks | what the Callback API confirmation request must echo |
//!
//! Posts go out with `owner_id=-<group>` and `from_group=1`; images are uploaded to the wall
//! first (`photos.getWallUploadServer`, the multipart upload, `photos.saveWallPhoto`), videos
//! to the community's videos (`video.save` with the title and description, then the file to
//! its `upload_url`, streamed from storage as one multipart part of known length) and attached
//! as `video<owner>_<id>`; a
//! post's and a comment's `guid` is the idempotency key (VK publishes one post per `guid`).
//! Comments arrive by Callback API (`wall_reply_new`; `wall_post_new` for posts). VK has no
//! call to hide a wall comment and no dislikes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::Url;
use serde_json::{Value, json};

use super::{
    Action, Capabilities, CommentDelivery, Counters, Delivered, LikeTarget, Limits, Network,
    PostContent, RemoteComment, RemotePost, SocialEvent, SocialNetwork, Support, compose_text,
};
use crate::SendError;
use crate::provider::{ConfigError, WebhookError, WebhookRequest};
use crate::rest_client::{MEDIA_TIMEOUT, permanent, transient};
use crate::signing::constant_time_eq;
use crate::vk::api::{CallError, VkApi, codes};

/// The Callback API events a profile's callback server is told to deliver.
pub const EVENT_TYPES: [&str; 2] = ["wall_reply_new", "wall_post_new"];

/// The title omnihub's callback server gets in the community settings (VK allows 14 chars).
const CALLBACK_TITLE: &str = "omnihub-wall";

/// The longest title VK shows for a video.
const VIDEO_TITLE_CHARS: usize = 128;

/// The largest photo VK's wall takes; read whole into the upload's multipart body.
const MAX_IMAGE_BYTES: usize = 50 * 1024 * 1024;

/// What VK's wall allows, and what omnihub does of it.
pub const CAPABILITIES: Capabilities = Capabilities {
    network: Network::Vk,
    connect: Support::Supported,
    comments: CommentDelivery::Webhook,
    // VK's documented limits: 16,384 characters and 10 attachments a post.
    limits: Some(Limits {
        max_text_chars: 16_384,
        max_images: 10,
        image_types: &["image/jpeg", "image/png", "image/gif"],
        max_image_bytes: MAX_IMAGE_BYTES,
        // Videos are attachments like photos (`video{owner}_{id}`), mixed freely; VK's
        // uploader takes files of up to 256 GB.
        max_videos: 10,
        videos_with_images: true,
        video_types: &["video/mp4", "video/quicktime", "video/webm"],
        max_video_bytes: 256 << 30,
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
        (Action::EditPost, Support::Supported),
        (Action::DeletePost, Support::Supported),
        (Action::ListComments, Support::Supported),
        (Action::ReplyComment, Support::Supported),
        (Action::DeleteComment, Support::Supported),
        (
            Action::HideComment,
            Support::Unsupported("VK's API has no call to hide a wall comment; delete it instead"),
        ),
        (Action::LikePost, Support::Supported),
        (Action::UnlikePost, Support::Supported),
        (Action::LikeComment, Support::Supported),
        (Action::UnlikeComment, Support::Supported),
        (Action::Dislike, Support::Unsupported("VK has no dislikes")),
        (
            Action::DislikeComment,
            Support::Unsupported("VK has no dislikes"),
        ),
    ],
};

/// One connected VK community wall.
pub struct VkWall {
    api: VkApi,
    group_id: i64,
    secret: Option<String>,
    confirmation_code: Option<String>,
}

// Written by hand so that no secret reaches a log.
impl std::fmt::Debug for VkWall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VkWall")
            .field("group_id", &self.group_id)
            .field("access_token", &"***")
            .finish()
    }
}

impl VkWall {
    /// Builds the wall client; `api_base` is VK's API root or a sandbox.
    pub fn from_profile(credentials: &Value, api_base: &Url) -> Result<VkWall, ConfigError> {
        let text = |key: &str| {
            credentials
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let access_token = text("access_token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ConfigError("credentials.access_token is required".into()))?;
        let group_id = match credentials.get("group_id") {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
        .filter(|id| *id > 0)
        .ok_or_else(|| ConfigError("credentials.group_id must be the community's id".into()))?;
        if !matches!(api_base.scheme(), "http" | "https") {
            return Err(ConfigError("the VK API base must be an http(s) URL".into()));
        }
        Ok(VkWall {
            api: VkApi::new(api_base, access_token).map_err(ConfigError)?,
            group_id,
            secret: text("secret"),
            confirmation_code: text("confirmation_code"),
        })
    }

    fn owner(&self) -> String {
        (-self.group_id).to_string()
    }

    async fn call(&self, method: &str, params: &[(&str, String)]) -> Result<Value, SendError> {
        self.api
            .call(method, params)
            .await
            .map_err(CallError::into_send_error)
    }

    /// The code VK's confirmation request must be answered with (asked before a callback
    /// server is added, since VK confirms while adding it).
    pub async fn confirmation_code(&self) -> Result<String, SendError> {
        let answer = self
            .call(
                "groups.getCallbackConfirmationCode",
                &[("group_id", self.group_id.to_string())],
            )
            .await?;
        answer
            .get("code")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| transient("groups.getCallbackConfirmationCode gave no code"))
    }

    /// Uploads one image to the community's wall album: `photo<owner>_<id>`.
    async fn upload_image(&self, image: &super::PostMedia) -> Result<String, SendError> {
        let server = self
            .call(
                "photos.getWallUploadServer",
                &[("group_id", self.group_id.to_string())],
            )
            .await?;
        let upload_url = server
            .get("upload_url")
            .and_then(Value::as_str)
            .ok_or_else(|| transient("photos.getWallUploadServer gave no upload_url"))?;
        let part = super::source::image_part(image, MAX_IMAGE_BYTES as u64).await?;
        let form = reqwest::multipart::Form::new().part("photo", part);
        let response = self
            .api
            .client
            .post(upload_url)
            .multipart(form)
            .timeout(MEDIA_TIMEOUT)
            .send()
            .await
            // The upload URL is VK's own and carries no token of ours, but keep logs short.
            .map_err(|err| transient(format!("photo upload failed: {}", err.without_url())))?;
        let uploaded = crate::vk::api::read_json(response).await?;
        if let Some(error) = uploaded.get("error") {
            return Err(permanent(format!("VK refused the photo: {error}")));
        }
        let field = |key: &str| match uploaded.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let (Some(photo), Some(upload_server), Some(hash)) =
            (field("photo"), field("server"), field("hash"))
        else {
            return Err(transient(
                "the photo upload answered without photo, server or hash",
            ));
        };
        let saved = self
            .call(
                "photos.saveWallPhoto",
                &[
                    ("group_id", self.group_id.to_string()),
                    ("photo", photo),
                    ("server", upload_server),
                    ("hash", hash),
                ],
            )
            .await?;
        let first = saved.get(0).unwrap_or(&Value::Null);
        match (
            first.get("owner_id").and_then(Value::as_i64),
            first.get("id").and_then(Value::as_i64),
        ) {
            (Some(owner), Some(id)) => Ok(format!("photo{owner}_{id}")),
            _ => Err(transient("photos.saveWallPhoto gave no photo id")),
        }
    }

    /// Uploads a video to the community's videos (not to the wall: the post attaches it):
    /// `video.save`, then the file to its upload URL. Its title is the post's first line (or
    /// the file's name), its description the post's text.
    async fn upload_video(
        &self,
        video: &super::PostMedia,
        content: &PostContent,
    ) -> Result<String, SendError> {
        let title: String = content
            .text
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .unwrap_or(&video.file_name)
            .chars()
            .take(VIDEO_TITLE_CHARS)
            .collect();
        let saved = self
            .call(
                "video.save",
                &[
                    ("group_id", self.group_id.to_string()),
                    ("name", title),
                    ("description", content.text.clone()),
                    ("wallpost", "0".into()),
                ],
            )
            .await?;
        let upload_url = saved
            .get("upload_url")
            .and_then(Value::as_str)
            .ok_or_else(|| transient("video.save gave no upload_url"))?;
        // The file goes as it is read from storage, its length announced up front.
        let size = video.source.size();
        let reader = video
            .source
            .open()
            .await
            .map_err(super::source::read_failed)?;
        let body = reqwest::Body::wrap_stream(reader.into_stream());
        let part = reqwest::multipart::Part::stream_with_length(body, size)
            .file_name(video.file_name.clone())
            .mime_str(&video.mime_type)
            .map_err(|err| permanent(format!("bad video type: {err}")))?;
        let form = reqwest::multipart::Form::new().part("video_file", part);
        let response = self
            .api
            .client
            .post(upload_url)
            .multipart(form)
            .timeout(MEDIA_TIMEOUT + std::time::Duration::from_secs(size / (256 * 1024)))
            .send()
            .await
            .map_err(|err| transient(format!("video upload failed: {}", err.without_url())))?;
        let uploaded = crate::vk::api::read_json(response).await?;
        if let Some(error) = uploaded.get("error") {
            return Err(permanent(format!("VK refused the video: {error}")));
        }
        let number_of = |value: &Value, key: &str| match value.get(key) {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        let owner = number_of(&uploaded, "owner_id").or_else(|| number_of(&saved, "owner_id"));
        let id = number_of(&uploaded, "video_id").or_else(|| number_of(&saved, "video_id"));
        match (owner, id) {
            (Some(owner), Some(id)) => Ok(format!("video{owner}_{id}")),
            _ => Err(transient("the video upload answered without its id")),
        }
    }

    /// The parameters shared by `wall.post` and `wall.edit`.
    async fn content_params(
        &self,
        content: &PostContent,
    ) -> Result<Vec<(&'static str, String)>, SendError> {
        let mut attachments = Vec::with_capacity(content.images.len() + 1);
        for image in &content.images {
            attachments.push(self.upload_image(image).await?);
        }
        for video in &content.videos {
            attachments.push(self.upload_video(video, content).await?);
        }
        if let Some(link) = &content.link {
            attachments.push(link.clone());
        }
        let mut params = vec![
            ("owner_id", self.owner()),
            ("message", compose_text(content, mention)),
        ];
        if !attachments.is_empty() {
            params.push(("attachments", attachments.join(",")));
        }
        if let Some(place) = content.location.as_ref().and_then(|l| l.coordinates) {
            params.push(("lat", place.latitude.to_string()));
            params.push(("long", place.longitude.to_string()));
        }
        Ok(params)
    }

    fn like_params(
        &self,
        target: LikeTarget<'_>,
    ) -> Result<Vec<(&'static str, String)>, SendError> {
        let (kind, id) = match target {
            LikeTarget::Post(id) => ("post", id),
            LikeTarget::Comment(id) => ("comment", id),
        };
        Ok(vec![
            ("type", kind.to_string()),
            ("owner_id", self.owner()),
            ("item_id", number(id)?.to_string()),
        ])
    }
}

/// A mention as VK links it in text: `@club1`, `@id5`, `@durov`.
fn mention(who: &str) -> String {
    format!("@{}", who.trim_start_matches('@'))
}

/// A VK id given as text.
fn number(id: &str) -> Result<i64, SendError> {
    id.parse()
        .map_err(|_| permanent(format!("{id:?} is not a VK id")))
}

fn date(value: Option<&Value>) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(value?.as_i64()?, 0)
}

fn count(item: &Value, key: &str) -> u64 {
    item.get(key)
        .and_then(|c| c.get("count"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

fn post_of(item: &Value) -> Option<RemotePost> {
    Some(RemotePost {
        id: item.get("id")?.as_i64()?.to_string(),
        text: item
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        published_at: date(item.get("date")),
        counters: Counters {
            likes: count(item, "likes"),
            comments: count(item, "comments"),
            reposts: count(item, "reposts"),
            views: count(item, "views"),
        },
    })
}

/// A wall comment (`wall_wall_comment`); `post_id` from the item or the caller.
fn comment_of(item: &Value, group_id: i64, post_id: Option<&str>) -> Option<RemoteComment> {
    let from = item.get("from_id").and_then(Value::as_i64)?;
    Some(RemoteComment {
        id: item.get("id")?.as_i64()?.to_string(),
        post_id: match item.get("post_id").and_then(Value::as_i64) {
            Some(id) => id.to_string(),
            None => post_id?.to_string(),
        },
        author_id: from.to_string(),
        text: item
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        created_at: date(item.get("date")),
        reply_to: item
            .get("reply_to_comment")
            .and_then(Value::as_i64)
            .map(|id| id.to_string()),
        by_profile: from == -group_id,
    })
}

#[async_trait]
impl SocialNetwork for VkWall {
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn list_posts(&self, count: u32) -> Result<Vec<RemotePost>, SendError> {
        // wall.get names the wall by its short address in the v5.199 schema.
        let answer = self
            .call(
                "wall.get",
                &[
                    ("domain", format!("club{}", self.group_id)),
                    ("count", count.clamp(1, 100).to_string()),
                ],
            )
            .await?;
        Ok(answer
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(post_of)
            .collect())
    }

    async fn create_post(&self, content: &PostContent, guid: &str) -> Result<String, SendError> {
        let mut params = self.content_params(content).await?;
        params.push(("from_group", "1".into()));
        params.push(("guid", guid.to_string()));
        let answer = self.call("wall.post", &params).await?;
        answer
            .get("post_id")
            .and_then(Value::as_i64)
            .map(|id| id.to_string())
            .ok_or_else(|| transient("wall.post gave no post_id"))
    }

    async fn post_exists(&self, post_id: &str) -> Result<bool, SendError> {
        let answer = self
            .call(
                "wall.getById",
                &[("posts", format!("{}_{}", self.owner(), number(post_id)?))],
            )
            .await?;
        let items = answer
            .get("items")
            .or(Some(&answer))
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        Ok(items > 0)
    }

    async fn edit_post(&self, post_id: &str, content: &PostContent) -> Result<(), SendError> {
        let mut params = self.content_params(content).await?;
        params.push(("post_id", number(post_id)?.to_string()));
        self.call("wall.edit", &params).await.map(drop)
    }

    async fn delete_post(&self, post_id: &str) -> Result<(), SendError> {
        self.call(
            "wall.delete",
            &[
                ("owner_id", self.owner()),
                ("post_id", number(post_id)?.to_string()),
            ],
        )
        .await
        .map(drop)
    }

    async fn list_comments(&self, post_id: &str) -> Result<Vec<RemoteComment>, SendError> {
        let answer = self
            .call(
                "wall.getComments",
                &[
                    ("owner_id", self.owner()),
                    ("post_id", number(post_id)?.to_string()),
                    ("count", "100".into()),
                    ("need_likes", "1".into()),
                ],
            )
            .await?;
        Ok(answer
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|item| comment_of(item, self.group_id, Some(post_id)))
            .collect())
    }

    async fn comment(
        &self,
        post_id: &str,
        reply_to: Option<&str>,
        text: &str,
        guid: &str,
    ) -> Result<String, SendError> {
        let mut params = vec![
            ("owner_id", self.owner()),
            ("post_id", number(post_id)?.to_string()),
            ("from_group", self.group_id.to_string()),
            ("message", text.to_string()),
            ("guid", guid.to_string()),
        ];
        if let Some(reply_to) = reply_to {
            params.push(("reply_to_comment", number(reply_to)?.to_string()));
        }
        let answer = self.call("wall.createComment", &params).await?;
        answer
            .get("comment_id")
            .and_then(Value::as_i64)
            .map(|id| id.to_string())
            .ok_or_else(|| transient("wall.createComment gave no comment_id"))
    }

    async fn delete_comment(&self, _post_id: &str, comment_id: &str) -> Result<(), SendError> {
        self.call(
            "wall.deleteComment",
            &[
                ("owner_id", self.owner()),
                ("comment_id", number(comment_id)?.to_string()),
            ],
        )
        .await
        .map(drop)
    }

    async fn like(&self, target: LikeTarget<'_>) -> Result<(), SendError> {
        let params = self.like_params(target)?;
        self.call("likes.add", &params).await.map(drop)
    }

    async fn unlike(&self, target: LikeTarget<'_>) -> Result<(), SendError> {
        let params = self.like_params(target)?;
        self.call("likes.delete", &params).await.map(drop)
    }

    fn webhook(&self, request: &WebhookRequest<'_>) -> Result<Delivered, WebhookError> {
        if request.method != "POST" {
            return Err(WebhookError::MethodNotAllowed);
        }
        let event: Value = serde_json::from_slice(request.body)
            .map_err(|err| WebhookError::Malformed(format!("not JSON: {err}")))?;
        let group_matches = match event.get("group_id") {
            Some(Value::Number(n)) => n.as_i64() == Some(self.group_id),
            Some(Value::String(s)) => s.parse() == Ok(self.group_id),
            _ => false,
        };
        let secret_matches = match (event.get("secret").and_then(Value::as_str), &self.secret) {
            (Some(given), Some(ours)) => constant_time_eq(given.as_bytes(), ours.as_bytes()),
            _ => false,
        };
        let kind = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if kind == "confirmation" {
            let secret_ok = event.get("secret").is_none() || secret_matches;
            return match &self.confirmation_code {
                Some(code) if group_matches && secret_ok => Ok(Delivered {
                    event_id: None,
                    events: vec![SocialEvent::text_handshake(code.clone())],
                    ack_body: "ok",
                }),
                _ => Err(WebhookError::Unauthorized),
            };
        }
        if !secret_matches || !group_matches {
            return Err(WebhookError::Unauthorized);
        }
        let object = event.get("object").unwrap_or(&Value::Null);
        let social = match kind {
            "wall_reply_new" => {
                SocialEvent::Comment(comment_of(object, self.group_id, None).ok_or_else(|| {
                    WebhookError::Malformed("wall_reply_new without id, from_id or post_id".into())
                })?)
            }
            "wall_post_new" => SocialEvent::Post(post_of(object).ok_or_else(|| {
                WebhookError::Malformed("wall_post_new without a post id".into())
            })?),
            _ => SocialEvent::Ignored,
        };
        Ok(Delivered {
            event_id: event
                .get("event_id")
                .and_then(Value::as_str)
                .map(str::to_string),
            events: vec![social],
            ack_body: "ok",
        })
    }

    async fn subscribe(&self, url: &str) -> Result<(), SendError> {
        let secret = self
            .secret
            .clone()
            .ok_or_else(|| permanent("the profile has no callback secret"))?;
        let servers = self
            .call(
                "groups.getCallbackServers",
                &[("group_id", self.group_id.to_string())],
            )
            .await?;
        let servers = servers
            .get("items")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let server_id = self
            .api
            .upsert_callback_server(self.group_id, servers, url, CALLBACK_TITLE, secret)
            .await?;
        let mut params = vec![
            ("group_id", self.group_id.to_string()),
            ("server_id", server_id.to_string()),
            ("api_version", crate::vk::API_VERSION.to_string()),
        ];
        params.extend(EVENT_TYPES.iter().map(|event| (*event, "1".to_string())));
        self.call("groups.setCallbackSettings", &params)
            .await
            .map(drop)
    }
}

/// What `groups.getById` says of the community: its name (checks the token, too).
pub async fn community_name(wall: &VkWall) -> Result<String, SendError> {
    let answer = wall
        .api
        .call("groups.getById", &[("group_id", wall.group_id.to_string())])
        .await
        .map_err(|err| match err {
            CallError::Api { code, message } if code == codes::AUTH_FAILED => {
                permanent(format!("VK refused the token: {message}"))
            }
            other => other.into_send_error(),
        })?;
    let groups = answer
        .get("groups")
        .or(Some(&answer))
        .unwrap_or(&Value::Null);
    Ok(groups
        .get(0)
        .and_then(|g| g.get("name"))
        .and_then(Value::as_str)
        .map_or_else(|| format!("club{}", wall.group_id), str::to_string))
}

/// VK ID's authorization code flow with PKCE: the person's token administers their
/// communities' walls. VK ID sends `device_id` back with the code and wants it again at the
/// exchange and at every refresh.
pub const OAUTH: super::oauth::OAuthSpec = super::oauth::OAuthSpec {
    scopes: &["wall", "groups", "photos", "video"],
    scope_separator: " ",
    pkce: true,
    client_auth: super::oauth::ClientAuth::Form,
    extra_authorize_params: &[],
    callback_params: &["device_id"],
    needs_secret: false,
};

/// The communities the token's holder administers (`groups.get`, `filter=admin`).
pub async fn manageable_profiles(
    access_token: &str,
    endpoints: &crate::registry::Endpoints,
) -> Result<Vec<super::oauth::Manageable>, SendError> {
    let api = VkApi::new(&endpoints.vk, access_token.to_string()).map_err(permanent)?;
    let answer = api
        .call(
            "groups.get",
            &[
                ("filter", "admin".to_string()),
                ("extended", "1".to_string()),
                ("count", "1000".to_string()),
            ],
        )
        .await
        .map_err(CallError::into_send_error)?;
    let items = answer
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Ok(items
        .iter()
        .filter_map(|group| {
            let id = group.get("id").and_then(Value::as_i64)?;
            Some(super::oauth::Manageable {
                external_id: id.to_string(),
                name: group
                    .get("name")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("club{id}"), str::to_string),
                access_token: None,
            })
        })
        .collect())
}

/// Connects a community: checks the token by reading the community's name, and asks VK for
/// the code its Callback API confirmation must echo.
pub async fn connect(
    grant: &super::Grant<'_>,
    endpoints: &crate::registry::Endpoints,
) -> Result<super::Connected, super::ConnectFailure> {
    use super::ConnectFailure;
    let group_id: i64 = grant
        .external_id
        .trim()
        .parse()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(ConnectFailure::BadExternalId)?;
    // Only alphanumerics: VK's secret key takes up to 50 of them.
    let secret: String = grant
        .webhook_secret
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(50)
        .collect();
    let mut credentials = credentials(grant.access_token, group_id, &secret);
    let wall = VkWall::from_profile(&credentials, &endpoints.vk)
        .map_err(|err| ConnectFailure::Config(err.0))?;
    let name = community_name(&wall)
        .await
        .map_err(ConnectFailure::Network)?;
    let code = wall
        .confirmation_code()
        .await
        .map_err(ConnectFailure::Network)?;
    credentials["confirmation_code"] = code.into();
    Ok(super::Connected { name, credentials })
}

/// The credentials of a profile connected with `access_token` to community `group_id`.
pub fn credentials(access_token: &str, group_id: i64, secret: &str) -> Value {
    json!({"access_token": access_token, "group_id": group_id, "secret": secret})
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn wall() -> VkWall {
        VkWall::from_profile(
            &json!({"access_token": "t", "group_id": 7, "secret": "s3",
                "confirmation_code": "c0de"}),
            &Url::parse("http://127.0.0.1:9/").unwrap(),
        )
        .unwrap()
    }

    fn hook(body: &Value) -> Result<Delivered, WebhookError> {
        let bytes = serde_json::to_vec(body).unwrap();
        wall().webhook(&WebhookRequest::new("POST", "", Vec::new(), &bytes))
    }

    #[test]
    fn a_comment_event_with_the_secret_is_read() {
        let delivered = hook(
            &json!({"type": "wall_reply_new", "group_id": 7, "secret": "s3",
            "event_id": "e1", "object": {"id": 5, "from_id": 42, "post_id": 3, "owner_id": -7,
            "date": 1_700_000_000, "text": "hi", "reply_to_comment": 4}}),
        )
        .unwrap();
        assert_eq!(delivered.event_id.as_deref(), Some("e1"));
        let [SocialEvent::Comment(comment)] = delivered.events.as_slice() else {
            panic!("not a comment");
        };
        assert_eq!(
            (
                comment.id.as_str(),
                comment.post_id.as_str(),
                comment.author_id.as_str()
            ),
            ("5", "3", "42")
        );
        assert_eq!(comment.reply_to.as_deref(), Some("4"));
        assert!(!comment.by_profile);
    }

    #[test]
    fn a_wrong_secret_or_group_is_refused() {
        let event = |secret: &str, group: i64| {
            json!({"type": "wall_reply_new", "group_id": group, "secret": secret,
                "object": {"id": 5, "from_id": 42, "post_id": 3}})
        };
        assert_eq!(hook(&event("nope", 7)), Err(WebhookError::Unauthorized));
        assert_eq!(hook(&event("s3", 8)), Err(WebhookError::Unauthorized));
        assert_eq!(
            hook(&json!({"type": "confirmation", "group_id": 7}))
                .unwrap()
                .events,
            [SocialEvent::text_handshake("c0de")]
        );
    }
}
