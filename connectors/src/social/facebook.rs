//! A Facebook Page (Graph API v23.0): posts, comments and likes, as the Page.
//!
//! Built by [`FacebookPage::from_profile`] from the profile's stored credentials:
//!
//! | key | required | meaning |
//! |---|---|---|
//! | `access_token` | yes | the Page's access token (`pages_manage_posts`, `pages_read_engagement`, `pages_manage_engagement`) |
//! | `page_id` | yes | the Page's id |
//! | `verify_token` | for webhooks | what Meta's subscription handshake must present as `hub.verify_token` |
//!
//! Images go first to `/{page-id}/photos` unpublished, by URL (Graph fetches each from the
//! server's signed media link), and are attached to the post as `attached_media`; mentions
//! are written as Graph's `@[id]` tags in the message, hashtags into it, and a location as
//! the post's `place` (the id of a place Page). A video is a post of its own:
//! `/{page-id}/videos` with `file_url` (the signed media link again, which Graph fetches) and
//! the message as its `description`; the post it makes is found in the Page's posts by that
//! message (the video's id stands for it when the post has no words). Comments arrive by
//! webhook (`feed` changes of the `page` object, signed with the Meta app's secret); the Page
//! subscribes the application with `POST /{page-id}/subscribed_apps?subscribed_fields=feed`.
//!
//! Idempotency: Graph takes no idempotency key. Before publishing, the Page's recent posts are
//! read, and a post made by the server's application in the last 24 hours with exactly this
//! message is taken as the one an earlier attempt made (its answer lost); comments the same
//! way among the Page's own comments under the same post. So a retry publishes once; the
//! price is that the same text sent twice on purpose within a day by omnihub is one post.

use async_trait::async_trait;
use reqwest::Url;
use serde_json::{Value, json};

use super::graph::{self, GraphApi, created_id, data, id_of, text};
use super::{
    Action, Capabilities, CommentDelivery, Counters, Delivered, LikeTarget, Limits, Network,
    PostContent, RemoteComment, RemotePost, SocialEvent, SocialNetwork, Support, compose_text,
};
use crate::SendError;
use crate::provider::{ConfigError, WebhookError, WebhookRequest};
use crate::rest_client::{permanent, transient};

/// What a Facebook Page allows, and what omnihub does of it.
pub const CAPABILITIES: Capabilities = Capabilities {
    network: Network::Facebook,
    connect: Support::Supported,
    comments: CommentDelivery::Webhook,
    // A post's text takes 63,206 characters; photos up to 10 MB (JPEG, PNG, GIF, BMP, TIFF);
    // omnihub attaches up to 10 to one post.
    limits: Some(Limits {
        max_text_chars: 63_206,
        max_images: 10,
        image_types: &["image/jpeg", "image/png", "image/gif"],
        max_image_bytes: 10 * 1024 * 1024,
        // A video is a post of its own (`/{page-id}/videos`), without photos; by `file_url`
        // Meta fetches up to 1 GB. MP4 and MOV are what Meta recommends; WebM is accepted.
        max_videos: 1,
        videos_with_images: false,
        video_types: &["video/mp4", "video/quicktime", "video/webm"],
        max_video_bytes: 1 << 30,
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
        (Action::HideComment, Support::Supported),
        (Action::LikePost, Support::Supported),
        (Action::UnlikePost, Support::Supported),
        (Action::LikeComment, Support::Supported),
        (Action::UnlikeComment, Support::Supported),
        (
            Action::Dislike,
            Support::Unsupported("Facebook has no dislikes"),
        ),
        (
            Action::DislikeComment,
            Support::Unsupported("Facebook has no dislikes"),
        ),
    ],
};

/// One connected Facebook Page.
pub struct FacebookPage {
    api: GraphApi,
    page_id: String,
    verify_token: Option<String>,
    app_id: String,
    app_secret: String,
}

// Written by hand so that no secret reaches a log.
impl std::fmt::Debug for FacebookPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FacebookPage")
            .field("page_id", &self.page_id)
            .field("access_token", &"***")
            .finish()
    }
}

/// A credential as text (ids may have been stored as numbers).
pub(crate) fn credential(credentials: &Value, key: &str) -> Option<String> {
    id_of(credentials.get(key)).filter(|v| !v.trim().is_empty())
}

/// Whether `id` looks like a Graph object id (digits, maybe `_`-joined).
pub(crate) fn is_graph_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .split('_')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

impl FacebookPage {
    /// Builds the Page client; `graph_base` is Graph's root or a sandbox, `app` the server's
    /// Meta application (its secret checks webhook signatures).
    pub fn from_profile(
        credentials: &Value,
        graph_base: &Url,
        app: &crate::registry::SocialApp,
    ) -> Result<FacebookPage, ConfigError> {
        let access_token = credential(credentials, "access_token")
            .ok_or_else(|| ConfigError("credentials.access_token is required".into()))?;
        let page_id = credential(credentials, "page_id")
            .filter(|id| is_graph_id(id))
            .ok_or_else(|| ConfigError("credentials.page_id must be the Page's id".into()))?;
        Ok(FacebookPage {
            api: GraphApi::new(graph_base, access_token).map_err(ConfigError)?,
            page_id,
            verify_token: credential(credentials, "verify_token"),
            app_id: app.client_id.clone(),
            app_secret: app.client_secret.clone(),
        })
    }

    /// The message of a post: text, hashtags, mentions as `@[id]` tags, and the link when
    /// photos take the attachment's place.
    fn message(content: &PostContent, link_in_text: bool) -> String {
        let mut content = content.clone();
        if !link_in_text {
            content.link = None;
        }
        let mut message = compose_text(&content, |m| format!("@[{}]", m.trim_start_matches('@')));
        if let Some(link) = content.link.as_deref().filter(|l| !message.contains(l)) {
            if !message.is_empty() {
                message.push_str("\n\n");
            }
            message.push_str(link);
        }
        message
    }

    /// Uploads an image unpublished (Graph fetches it by URL): its photo id.
    async fn upload_image(&self, image: &super::PostMedia) -> Result<String, SendError> {
        let url = image.public_url.clone().ok_or_else(|| {
            permanent("Facebook fetches images by URL: the server needs a public URL")
        })?;
        let answer = self
            .api
            .post(
                &[&self.page_id, "photos"],
                &[("url", url), ("published", "false".into())],
            )
            .await?;
        created_id(&answer, "/photos")
    }

    /// Publishes a post that is one video, by URL: the post's id (the video's id when the post
    /// has no message to find it by).
    async fn create_video_post(&self, content: &PostContent) -> Result<String, SendError> {
        let [video] = content.videos.as_slice() else {
            return Err(permanent("a Facebook post takes one video"));
        };
        if !content.images.is_empty() {
            return Err(permanent("a Facebook video is posted without images"));
        }
        let url = video.public_url.clone().ok_or_else(|| {
            permanent("Facebook fetches videos by URL: the server needs a public URL")
        })?;
        // A video post has no link attachment: the link goes into its words.
        let message = Self::message(content, true);
        if !message.is_empty()
            && let Some(id) = self.find_recent_post(&message).await?
        {
            return Ok(id);
        }
        let mut params = vec![("file_url", url), ("published", "true".into())];
        if !message.is_empty() {
            params.push(("description", message.clone()));
        }
        let answer = self.api.post(&[&self.page_id, "videos"], &params).await?;
        let video_id = created_id(&answer, "/videos")?;
        if message.is_empty() {
            return Ok(video_id);
        }
        Ok(self.find_recent_post(&message).await?.unwrap_or(video_id))
    }

    /// A recent post of the Page made by our application with exactly `message`.
    async fn find_recent_post(&self, message: &str) -> Result<Option<String>, SendError> {
        let answer = self
            .api
            .get(
                &[&self.page_id, "published_posts"],
                &[
                    ("fields", "id,message,created_time,application".into()),
                    ("limit", "25".into()),
                ],
            )
            .await?;
        let since = chrono::Utc::now() - graph::RECENT;
        Ok(data(&answer)
            .find(|post| {
                let ours = self.app_id.is_empty()
                    || post.pointer("/application/id").and_then(Value::as_str)
                        == Some(self.app_id.as_str());
                ours && text(post, "message") == message
                    && graph::time(post.get("created_time")).is_some_and(|t| t >= since)
            })
            .and_then(|post| id_of(post.get("id"))))
    }
}

fn summary_count(item: &Value, key: &str) -> u64 {
    item.get(key)
        .and_then(|c| c.pointer("/summary/total_count"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

fn post_of(item: &Value) -> Option<RemotePost> {
    Some(RemotePost {
        id: id_of(item.get("id"))?,
        text: text(item, "message"),
        published_at: graph::time(item.get("created_time")),
        counters: Counters {
            likes: summary_count(item, "likes"),
            comments: summary_count(item, "comments"),
            reposts: item
                .pointer("/shares/count")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            // Views are Page Insights, not a field of the post.
            views: 0,
        },
    })
}

/// A comment as `/comments` lists it (`parent` only on replies).
fn comment_of(item: &Value, post_id: &str, page_id: &str) -> Option<RemoteComment> {
    let author = id_of(item.pointer("/from/id")).unwrap_or_default();
    Some(RemoteComment {
        id: id_of(item.get("id"))?,
        post_id: post_id.to_string(),
        by_profile: author == page_id,
        author_id: author,
        text: text(item, "message"),
        created_at: graph::time(item.get("created_time")),
        reply_to: id_of(item.pointer("/parent/id")),
    })
}

#[async_trait]
impl SocialNetwork for FacebookPage {
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn list_posts(&self, count: u32) -> Result<Vec<RemotePost>, SendError> {
        let answer = self
            .api
            .get(
                &[&self.page_id, "published_posts"],
                &[
                    (
                        "fields",
                        "id,message,created_time,shares,likes.summary(true).limit(0),\
                         comments.summary(true).limit(0)"
                            .into(),
                    ),
                    ("limit", count.clamp(1, 100).to_string()),
                ],
            )
            .await?;
        Ok(data(&answer).filter_map(post_of).collect())
    }

    async fn create_post(&self, content: &PostContent, _guid: &str) -> Result<String, SendError> {
        if !content.videos.is_empty() {
            if content.place_id().is_some() {
                return Err(permanent(
                    "omnihub ties a place to a Page's text or photo post, not to a video",
                ));
            }
            return self.create_video_post(content).await;
        }
        let message = Self::message(content, !content.images.is_empty());
        // A post without words has nothing to be recognised by.
        if !message.is_empty()
            && let Some(id) = self.find_recent_post(&message).await?
        {
            return Ok(id);
        }
        let mut params = Vec::new();
        if !message.is_empty() {
            params.push(("message", message));
        }
        if content.images.is_empty()
            && let Some(link) = &content.link
        {
            params.push(("link", link.clone()));
        }
        let mut photos = Vec::with_capacity(content.images.len());
        for image in &content.images {
            photos.push(json!({"media_fbid": self.upload_image(image).await?}));
        }
        if !photos.is_empty() {
            params.push(("attached_media", Value::Array(photos).to_string()));
        }
        // Meta's spec types `place` as an Object: the place Page, by its id.
        if let Some(place) = content.place_id() {
            params.push(("place", json!({ "id": place }).to_string()));
        }
        let answer = self.api.post(&[&self.page_id, "feed"], &params).await?;
        created_id(&answer, "/feed")
    }

    async fn post_exists(&self, post_id: &str) -> Result<bool, SendError> {
        match self
            .api
            .call(reqwest::Method::GET, &[post_id], &[("fields", "id".into())])
            .await
        {
            Ok(answer) => Ok(answer.get("id").is_some()),
            Err(err) if err.is_gone() => Ok(false),
            Err(err) => Err(err.into_send_error()),
        }
    }

    async fn edit_post(&self, post_id: &str, content: &PostContent) -> Result<(), SendError> {
        // A post's photos stay as they were: Graph edits the message.
        let message = Self::message(
            content,
            !content.images.is_empty() || content.link.is_some(),
        );
        self.api
            .post(&[post_id], &[("message", message)])
            .await
            .map(drop)
    }

    async fn delete_post(&self, post_id: &str) -> Result<(), SendError> {
        self.api.delete(&[post_id]).await
    }

    async fn list_comments(&self, post_id: &str) -> Result<Vec<RemoteComment>, SendError> {
        let answer = self
            .api
            .get(
                &[post_id, "comments"],
                &[
                    ("fields", "id,message,from,created_time,parent".into()),
                    // Replies too, oldest first.
                    ("filter", "stream".into()),
                    ("order", "chronological".into()),
                    ("limit", "100".into()),
                ],
            )
            .await?;
        Ok(data(&answer)
            .filter_map(|item| comment_of(item, post_id, &self.page_id))
            .collect())
    }

    async fn comment(
        &self,
        post_id: &str,
        reply_to: Option<&str>,
        text: &str,
        _guid: &str,
    ) -> Result<String, SendError> {
        let listed = self.list_comments(post_id).await?;
        if let Some(earlier) =
            graph::earlier_comment(listed, reply_to, text, graph::Untimed::NotRecent)
        {
            return Ok(earlier);
        }
        // A reply is a comment on the comment.
        let target = reply_to.unwrap_or(post_id);
        let answer = self
            .api
            .post(&[target, "comments"], &[("message", text.to_string())])
            .await?;
        created_id(&answer, "/comments")
    }

    async fn delete_comment(&self, _post_id: &str, comment_id: &str) -> Result<(), SendError> {
        self.api.delete(&[comment_id]).await
    }

    async fn hide_comment(&self, _post_id: &str, comment_id: &str) -> Result<(), SendError> {
        self.api
            .post(&[comment_id], &[("is_hidden", "true".into())])
            .await
            .map(drop)
    }

    async fn like(&self, target: LikeTarget<'_>) -> Result<(), SendError> {
        let (LikeTarget::Post(id) | LikeTarget::Comment(id)) = target;
        self.api.post(&[id, "likes"], &[]).await.map(drop)
    }

    async fn unlike(&self, target: LikeTarget<'_>) -> Result<(), SendError> {
        let (LikeTarget::Post(id) | LikeTarget::Comment(id)) = target;
        self.api.delete(&[id, "likes"]).await
    }

    fn webhook(&self, request: &WebhookRequest<'_>) -> Result<Delivered, WebhookError> {
        if let Some(handshake) =
            graph::verify(request, self.verify_token.as_deref(), &self.app_secret)?
        {
            return Ok(handshake);
        }
        let body: Value = serde_json::from_slice(request.body)
            .map_err(|err| WebhookError::Malformed(format!("not JSON: {err}")))?;
        let mut events = Vec::new();
        for entry in graph::entries(&body, "page", &self.page_id)? {
            events.extend(entry_events(entry, &self.page_id)?);
        }
        Ok(Delivered {
            event_id: None,
            events,
            ack_body: "",
        })
    }

    async fn subscribe(&self, _url: &str) -> Result<(), SendError> {
        // Where Meta delivers is the application's callback URL; the Page subscribes the
        // application to its `feed`.
        let answer = self
            .api
            .post(
                &[&self.page_id, "subscribed_apps"],
                &[("subscribed_fields", "feed".into())],
            )
            .await?;
        if answer.get("success").and_then(Value::as_bool) == Some(false) {
            return Err(transient("subscribed_apps answered success: false"));
        }
        Ok(())
    }
}

/// The events of one verified `page` webhook entry about the Page `page_id`: its `feed`
/// changes that add something (the rest are acknowledged and ignored).
pub(crate) fn entry_events(entry: &Value, page_id: &str) -> Result<Vec<SocialEvent>, WebhookError> {
    let mut events = Vec::new();
    let changes = entry.get("changes").and_then(Value::as_array);
    for change in changes.into_iter().flatten() {
        let value = change.get("value").unwrap_or(&Value::Null);
        if change.get("field").and_then(Value::as_str) != Some("feed")
            || value.get("verb").and_then(Value::as_str) != Some("add")
        {
            events.push(SocialEvent::Ignored);
            continue;
        }
        events.push(feed_event(value, page_id)?);
    }
    Ok(events)
}

/// One `feed` change that adds something: a comment (or reply), or a post.
fn feed_event(value: &Value, page_id: &str) -> Result<SocialEvent, WebhookError> {
    let malformed = |what: &str| WebhookError::Malformed(format!("a feed change without {what}"));
    match value.get("item").and_then(Value::as_str) {
        Some("comment") => {
            let post_id = id_of(value.get("post_id")).ok_or_else(|| malformed("post_id"))?;
            let author = id_of(value.pointer("/from/id")).ok_or_else(|| malformed("from.id"))?;
            let parent = id_of(value.get("parent_id")).filter(|p| *p != post_id);
            Ok(SocialEvent::Comment(RemoteComment {
                id: id_of(value.get("comment_id")).ok_or_else(|| malformed("comment_id"))?,
                post_id,
                by_profile: author == page_id,
                author_id: author,
                text: text(value, "message"),
                created_at: graph::time(value.get("created_time")),
                reply_to: parent,
            }))
        }
        Some("status" | "post" | "photo" | "video" | "share") => {
            let id = id_of(value.get("post_id")).ok_or_else(|| malformed("post_id"))?;
            Ok(SocialEvent::Post(RemotePost {
                id,
                text: text(value, "message"),
                published_at: graph::time(value.get("created_time")),
                counters: Counters::default(),
            }))
        }
        _ => Ok(SocialEvent::Ignored),
    }
}

/// Connects a Page: checks the token by reading the Page's name.
pub async fn connect(
    grant: &super::Grant<'_>,
    endpoints: &crate::registry::Endpoints,
) -> Result<super::Connected, super::ConnectFailure> {
    use super::ConnectFailure;
    let page_id = grant.external_id.trim();
    if !is_graph_id(page_id) {
        return Err(ConnectFailure::BadExternalId);
    }
    let credentials = json!({
        "access_token": grant.access_token,
        "page_id": page_id,
        "verify_token": grant.webhook_secret,
    });
    let page = FacebookPage::from_profile(&credentials, &endpoints.graph, &endpoints.apps.meta)
        .map_err(|err| ConnectFailure::Config(err.0))?;
    let answer = page
        .api
        .get(&[page_id], &[("fields", "id,name".into())])
        .await
        .map_err(ConnectFailure::Network)?;
    let name = Some(text(&answer, "name"))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("Page {page_id}"));
    Ok(super::Connected { name, credentials })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::signing::hmac_sha256_hex;

    fn page() -> FacebookPage {
        FacebookPage::from_profile(
            &json!({"access_token": "t", "page_id": "1001", "verify_token": "vt"}),
            &Url::parse("http://127.0.0.1:9/").unwrap(),
            &crate::registry::SocialApp {
                client_id: "app".into(),
                client_secret: "shh".into(),
                public_key: String::new(),
            },
        )
        .unwrap()
    }

    fn signed(body: &Value, key: &str) -> (Vec<u8>, Vec<(String, String)>) {
        let bytes = serde_json::to_vec(body).unwrap();
        let signature = format!("sha256={}", hmac_sha256_hex(key.as_bytes(), &bytes));
        (bytes, vec![("X-Hub-Signature-256".into(), signature)])
    }

    #[test]
    fn a_signed_feed_comment_is_read_and_a_forged_one_refused() {
        let body = json!({"object": "page", "entry": [{"id": "1001", "time": 1, "changes": [
            {"field": "feed", "value": {"item": "comment", "verb": "add",
                "post_id": "1001_5", "comment_id": "5_9", "parent_id": "5_8",
                "created_time": 1_795_773_600, "message": "hi",
                "from": {"id": "77", "name": "Jane"}}},
            {"field": "feed", "value": {"item": "reaction", "verb": "add", "post_id": "1001_5"}}]},
            {"id": "2002", "changes": [{"field": "feed", "value": {"item": "comment",
                "verb": "add", "post_id": "2002_1", "comment_id": "1_1", "from": {"id": "1"}}}]}]});
        let (bytes, headers) = signed(&body, "shh");
        let delivered = page()
            .webhook(&WebhookRequest::new("POST", "", headers, &bytes))
            .unwrap();
        let [SocialEvent::Comment(comment), SocialEvent::Ignored] = delivered.events.as_slice()
        else {
            panic!("{:?}", delivered.events);
        };
        assert_eq!(
            (
                comment.id.as_str(),
                comment.post_id.as_str(),
                comment.author_id.as_str()
            ),
            ("5_9", "1001_5", "77")
        );
        assert_eq!(comment.reply_to.as_deref(), Some("5_8"));
        let (_, forged) = signed(&body, "not-the-secret");
        assert_eq!(
            page().webhook(&WebhookRequest::new("POST", "", forged, &bytes)),
            Err(WebhookError::Unauthorized)
        );
    }

    #[test]
    fn the_handshake_needs_the_profiles_verify_token() {
        let ok = page()
            .webhook(&WebhookRequest::new(
                "GET",
                "hub.mode=subscribe&hub.verify_token=vt&hub.challenge=42",
                Vec::new(),
                b"",
            ))
            .unwrap();
        assert_eq!(ok.events, [SocialEvent::text_handshake("42")]);
        assert_eq!(
            page().webhook(&WebhookRequest::new(
                "GET",
                "hub.mode=subscribe&hub.verify_token=no&hub.challenge=42",
                Vec::new(),
                b"",
            )),
            Err(WebhookError::Unauthorized)
        );
    }

    #[test]
    fn messages_carry_mentions_hashtags_and_the_link_beside_photos() {
        let content = PostContent {
            text: "Sale".into(),
            link: Some("https://shop.example".into()),
            hashtags: vec!["spring".into()],
            mentions: vec!["123".into()],
            ..PostContent::default()
        };
        assert_eq!(
            FacebookPage::message(&content, false),
            "Sale\n\n@[123]\n\n#spring"
        );
        assert_eq!(
            FacebookPage::message(&content, true),
            "Sale\n\n@[123]\n\n#spring\n\nhttps://shop.example"
        );
    }
}
