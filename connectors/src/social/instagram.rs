//! An Instagram business or creator account (Instagram Graph API through Facebook Login,
//! v23.0): publishing photos, and moderating the comments under them, as the account.
//!
//! Built by [`InstagramAccount::from_profile`] from the profile's stored credentials:
//!
//! | key | required | meaning |
//! |---|---|---|
//! | `access_token` | yes | the token of the Page linked to the account (`instagram_basic`, `instagram_content_publish`, `instagram_manage_comments`) |
//! | `ig_user_id` | yes | the Instagram account's id |
//! | `page_id` | for webhooks | the linked Page, which subscribes the application |
//! | `verify_token` | for webhooks | what Meta's subscription handshake must present as `hub.verify_token` |
//!
//! Instagram takes no uploads: each image is fetched by Meta from a URL, the server's signed
//! media link. One image is one container (`POST /{ig-user-id}/media` with `image_url`), several
//! are carousel items gathered by a `CAROUSEL` container's `children`; the container is then
//! published with `media_publish`. Hashtags and `@username` mentions go into the caption, and
//! the people mentioned are also tagged on the (first) photo with `user_tags`; a location is the
//! published container's `location_id` (the id of a Facebook place Page). A video goes out
//! as a reel: a `REELS` container with `video_url` (the signed media link) and the caption,
//! whose `status_code` is polled until Meta has fetched and transcoded it (`FINISHED`) before
//! `media_publish`; a reel still `IN_PROGRESS` after the polls is left to a later attempt, and
//! `ERROR` or `EXPIRED` fails with Meta's words. Comments arrive
//! by webhook (`object: instagram`, field `comments`); replies go to `/{comment-id}/replies`.
//!
//! Idempotency: Graph takes no idempotency key. Before publishing, the account's recent media
//! are read, and one published in the last 24 hours with exactly this caption is taken as the
//! one an earlier attempt made; replies the same way among the account's own comments.

use async_trait::async_trait;
use reqwest::Url;
use serde_json::{Value, json};

use super::facebook::{credential, is_graph_id};
use super::graph::{self, GraphApi, created_id, data, id_of, text};
use super::{
    Action, Capabilities, CommentDelivery, Counters, Delivered, LikeTarget, Limits, Network,
    PostContent, RemoteComment, RemotePost, SocialEvent, SocialNetwork, Support, compose_text,
    unsupported,
};
use crate::SendError;
use crate::provider::{ConfigError, WebhookError, WebhookRequest};
use crate::rest_client::{permanent, transient};

const NO_LIKES: &str = "the Instagram Graph API has no likes";

/// Graph's code for a container that is not ready to publish yet.
const MEDIA_NOT_READY: &str = "code 9007";

/// The pauses between polls of a reel's container: about a minute and a half in all, within
/// one publishing attempt (Meta asks for at most one poll a second).
const REEL_POLLS: [std::time::Duration; 7] = [
    std::time::Duration::from_secs(1),
    std::time::Duration::from_secs(2),
    std::time::Duration::from_secs(4),
    std::time::Duration::from_secs(8),
    std::time::Duration::from_secs(15),
    std::time::Duration::from_secs(30),
    std::time::Duration::from_secs(30),
];

/// What an Instagram business account allows, and what omnihub does of it.
pub const CAPABILITIES: Capabilities = Capabilities {
    network: Network::Instagram,
    connect: Support::Supported,
    comments: CommentDelivery::Webhook,
    // Meta's content publishing limits: a caption of 2,200 characters (30 hashtags, 20
    // mentions), a carousel of 10 items, JPEG images of at most 8 MB.
    limits: Some(Limits {
        max_text_chars: 2_200,
        max_images: 10,
        image_types: &["image/jpeg"],
        max_image_bytes: 8 * 1024 * 1024,
        // A video goes out as a reel (`media_type=REELS`): one MOV or MP4 of at most 300 MB,
        // on its own.
        max_videos: 1,
        videos_with_images: false,
        video_types: &["video/mp4", "video/quicktime"],
        max_video_bytes: 300 * 1024 * 1024,
    }),
    actions: &[
        (Action::ListPosts, Support::Supported),
        (Action::CreatePost, Support::Supported),
        (Action::PostImages, Support::Supported),
        (Action::PostVideo, Support::Supported),
        (
            Action::PostLink,
            Support::Unsupported("Instagram captions carry no clickable links"),
        ),
        (Action::PostHashtags, Support::Supported),
        (Action::PostMentions, Support::Supported),
        (Action::PostLocation, Support::Supported),
        (
            Action::EditPost,
            Support::Unsupported("the Graph API cannot edit a published media's caption"),
        ),
        (Action::DeletePost, Support::Supported),
        (Action::ListComments, Support::Supported),
        (Action::ReplyComment, Support::Supported),
        (Action::DeleteComment, Support::Supported),
        (Action::HideComment, Support::Supported),
        (Action::LikePost, Support::Unsupported(NO_LIKES)),
        (Action::UnlikePost, Support::Unsupported(NO_LIKES)),
        (Action::LikeComment, Support::Unsupported(NO_LIKES)),
        (Action::UnlikeComment, Support::Unsupported(NO_LIKES)),
        (
            Action::Dislike,
            Support::Unsupported("Instagram has no dislikes"),
        ),
        (
            Action::DislikeComment,
            Support::Unsupported("Instagram has no dislikes"),
        ),
    ],
};

/// One connected Instagram account.
pub struct InstagramAccount {
    api: GraphApi,
    ig_user_id: String,
    page_id: Option<String>,
    verify_token: Option<String>,
    app_secret: String,
}

// Written by hand so that no secret reaches a log.
impl std::fmt::Debug for InstagramAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstagramAccount")
            .field("ig_user_id", &self.ig_user_id)
            .field("access_token", &"***")
            .finish()
    }
}

impl InstagramAccount {
    pub fn from_profile(
        credentials: &Value,
        graph_base: &Url,
        app: &crate::registry::SocialApp,
    ) -> Result<InstagramAccount, ConfigError> {
        let access_token = credential(credentials, "access_token")
            .ok_or_else(|| ConfigError("credentials.access_token is required".into()))?;
        let ig_user_id = credential(credentials, "ig_user_id")
            .filter(|id| is_graph_id(id))
            .ok_or_else(|| {
                ConfigError("credentials.ig_user_id must be the Instagram account's id".into())
            })?;
        Ok(InstagramAccount {
            api: GraphApi::new(graph_base, access_token).map_err(ConfigError)?,
            ig_user_id,
            page_id: credential(credentials, "page_id"),
            verify_token: credential(credentials, "verify_token"),
            app_secret: app.client_secret.clone(),
        })
    }

    fn caption(content: &PostContent) -> String {
        compose_text(content, |m| format!("@{}", m.trim_start_matches('@')))
    }

    /// A container of one image: a carousel item, or the post itself with its caption.
    async fn image_container(
        &self,
        image: &super::PostMedia,
        caption: Option<&str>,
        user_tags: Option<&Value>,
        place_id: Option<&str>,
    ) -> Result<String, SendError> {
        let url = image.public_url.clone().ok_or_else(|| {
            permanent("Instagram fetches images by URL: the server needs a public URL")
        })?;
        let mut params = vec![("image_url", url)];
        match caption {
            Some(caption) => params.push(("caption", caption.to_string())),
            None => params.push(("is_carousel_item", "true".into())),
        }
        if let Some(tags) = user_tags {
            params.push(("user_tags", tags.to_string()));
        }
        if let Some(place) = place_id {
            params.push(("location_id", place.to_string()));
        }
        let answer = self.api.post(&[&self.ig_user_id, "media"], &params).await?;
        created_id(&answer, "/media")
    }

    /// A reel's container (`media_type=REELS`), fetched by Meta from the video's link.
    async fn reel_container(
        &self,
        video: &super::PostMedia,
        caption: &str,
        place: Option<&str>,
    ) -> Result<String, SendError> {
        let url = video.public_url.clone().ok_or_else(|| {
            permanent("Instagram fetches videos by URL: the server needs a public URL")
        })?;
        let mut params = vec![("media_type", "REELS".to_string()), ("video_url", url)];
        if !caption.is_empty() {
            params.push(("caption", caption.to_string()));
        }
        if let Some(place) = place {
            params.push(("location_id", place.to_string()));
        }
        let answer = self.api.post(&[&self.ig_user_id, "media"], &params).await?;
        created_id(&answer, "/media (reel)")
    }

    /// Polls a container's `status_code` until it is `FINISHED`.
    async fn wait_until_finished(&self, container: &str) -> Result<(), SendError> {
        for pause in REEL_POLLS {
            let answer = self
                .api
                .get(&[container], &[("fields", "status_code,status".into())])
                .await?;
            match answer.get("status_code").and_then(Value::as_str) {
                Some("FINISHED" | "PUBLISHED") => return Ok(()),
                Some(failed @ ("ERROR" | "EXPIRED")) => {
                    return Err(permanent(format!(
                        "Instagram could not process the video ({failed}): {}",
                        text(&answer, "status")
                    )));
                }
                _ => tokio::time::sleep(pause).await,
            }
        }
        Err(transient(
            "Instagram is still processing the video; a later attempt publishes it",
        ))
    }

    /// A recent media of the account with exactly `caption`.
    async fn find_recent_media(&self, caption: &str) -> Result<Option<String>, SendError> {
        let answer = self
            .api
            .get(
                &[&self.ig_user_id, "media"],
                &[
                    ("fields", "id,caption,timestamp".into()),
                    ("limit", "25".into()),
                ],
            )
            .await?;
        let since = chrono::Utc::now() - graph::RECENT;
        Ok(data(&answer)
            .find(|media| {
                text(media, "caption") == caption
                    && graph::time(media.get("timestamp")).is_some_and(|t| t >= since)
            })
            .and_then(|media| id_of(media.get("id"))))
    }
}

/// The people mentioned, tagged on a photo in a row across its middle.
fn user_tags(mentions: &[String]) -> Option<Value> {
    if mentions.is_empty() {
        return None;
    }
    let step = 1.0 / (mentions.len() as f64 + 1.0);
    Some(Value::Array(
        mentions
            .iter()
            .enumerate()
            .map(|(i, who)| {
                json!({"username": who.trim_start_matches('@'),
                    "x": step * (i as f64 + 1.0), "y": 0.5})
            })
            .collect(),
    ))
}

fn media_of(item: &Value) -> Option<RemotePost> {
    let count = |key: &str| item.get(key).and_then(Value::as_u64).unwrap_or(0);
    Some(RemotePost {
        id: id_of(item.get("id"))?,
        text: text(item, "caption"),
        published_at: graph::time(item.get("timestamp")),
        counters: Counters {
            likes: count("like_count"),
            comments: count("comments_count"),
            reposts: 0,
            views: 0,
        },
    })
}

fn comment_of(
    item: &Value,
    media_id: &str,
    ig_user_id: &str,
    parent: Option<&str>,
) -> Option<RemoteComment> {
    let author = id_of(item.pointer("/from/id")).unwrap_or_default();
    Some(RemoteComment {
        id: id_of(item.get("id"))?,
        post_id: media_id.to_string(),
        by_profile: author == ig_user_id,
        author_id: author,
        text: text(item, "text"),
        created_at: graph::time(item.get("timestamp")),
        reply_to: id_of(item.get("parent_id")).or(parent.map(str::to_string)),
    })
}

#[async_trait]
impl SocialNetwork for InstagramAccount {
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn list_posts(&self, count: u32) -> Result<Vec<RemotePost>, SendError> {
        let answer = self
            .api
            .get(
                &[&self.ig_user_id, "media"],
                &[
                    (
                        "fields",
                        "id,caption,timestamp,like_count,comments_count".into(),
                    ),
                    ("limit", count.clamp(1, 100).to_string()),
                ],
            )
            .await?;
        Ok(data(&answer).filter_map(media_of).collect())
    }

    async fn create_post(&self, content: &PostContent, _guid: &str) -> Result<String, SendError> {
        if content.images.is_empty() && content.videos.is_empty() {
            return Err(permanent(
                "an Instagram post is a photo or a video: add an image or a video",
            ));
        }
        if content.link.is_some() {
            return Err(unsupported(CAPABILITIES, Action::PostLink));
        }
        if !content.videos.is_empty() && !content.images.is_empty() {
            return Err(permanent("an Instagram reel is a video without images"));
        }
        let caption = Self::caption(content);
        if let Some(id) = self.find_recent_media(&caption).await? {
            return Ok(id);
        }
        let tags = user_tags(&content.mentions);
        let container = if let [video] = content.videos.as_slice() {
            let container = self
                .reel_container(video, &caption, content.place_id())
                .await?;
            self.wait_until_finished(&container).await?;
            container
        } else if !content.videos.is_empty() {
            return Err(permanent("an Instagram reel is one video"));
        } else if let [image] = content.images.as_slice() {
            self.image_container(image, Some(&caption), tags.as_ref(), content.place_id())
                .await?
        } else {
            let mut children = Vec::with_capacity(content.images.len());
            for (i, image) in content.images.iter().enumerate() {
                let tags = if i == 0 { tags.as_ref() } else { None };
                children.push(self.image_container(image, None, tags, None).await?);
            }
            let mut params = vec![
                ("media_type", "CAROUSEL".into()),
                ("children", children.join(",")),
                ("caption", caption),
            ];
            if let Some(place) = content.place_id() {
                params.push(("location_id", place.to_string()));
            }
            let answer = self.api.post(&[&self.ig_user_id, "media"], &params).await?;
            created_id(&answer, "/media (carousel)")?
        };
        let published = self
            .api
            .call(
                reqwest::Method::POST,
                &[&self.ig_user_id, "media_publish"],
                &[("creation_id", container)],
            )
            .await;
        match published {
            Ok(answer) => created_id(&answer, "/media_publish"),
            Err(err) => {
                let failure = err.into_send_error();
                if failure.reason().contains(MEDIA_NOT_READY) {
                    // Meta is still fetching the images: a later attempt publishes.
                    Err(transient(format!(
                        "Instagram has not finished fetching the images: {}",
                        failure.reason()
                    )))
                } else {
                    Err(failure)
                }
            }
        }
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

    async fn edit_post(&self, _post_id: &str, _content: &PostContent) -> Result<(), SendError> {
        Err(unsupported(CAPABILITIES, Action::EditPost))
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
                    (
                        "fields",
                        "id,text,timestamp,from,replies{id,text,timestamp,from}".into(),
                    ),
                    ("limit", "50".into()),
                ],
            )
            .await?;
        let mut comments = Vec::new();
        for item in data(&answer) {
            let Some(comment) = comment_of(item, post_id, &self.ig_user_id, None) else {
                continue;
            };
            let replies: Vec<RemoteComment> = item
                .get("replies")
                .map(data)
                .into_iter()
                .flatten()
                .filter_map(|reply| comment_of(reply, post_id, &self.ig_user_id, Some(&comment.id)))
                .collect();
            comments.push(comment);
            comments.extend(replies);
        }
        Ok(comments)
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
            graph::earlier_comment(listed, reply_to, text, graph::Untimed::Recent)
        {
            return Ok(earlier);
        }
        let params = [("message", text.to_string())];
        let answer = match reply_to {
            Some(comment) => self.api.post(&[comment, "replies"], &params).await?,
            None => self.api.post(&[post_id, "comments"], &params).await?,
        };
        created_id(&answer, "/comments")
    }

    async fn delete_comment(&self, _post_id: &str, comment_id: &str) -> Result<(), SendError> {
        self.api.delete(&[comment_id]).await
    }

    async fn hide_comment(&self, _post_id: &str, comment_id: &str) -> Result<(), SendError> {
        self.api
            .post(&[comment_id], &[("hide", "true".into())])
            .await
            .map(drop)
    }

    async fn like(&self, target: LikeTarget<'_>) -> Result<(), SendError> {
        let action = match target {
            LikeTarget::Post(_) => Action::LikePost,
            LikeTarget::Comment(_) => Action::LikeComment,
        };
        Err(unsupported(CAPABILITIES, action))
    }

    async fn unlike(&self, target: LikeTarget<'_>) -> Result<(), SendError> {
        let action = match target {
            LikeTarget::Post(_) => Action::UnlikePost,
            LikeTarget::Comment(_) => Action::UnlikeComment,
        };
        Err(unsupported(CAPABILITIES, action))
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
        for entry in graph::entries(&body, "instagram", &self.ig_user_id)? {
            events.extend(entry_events(entry, &self.ig_user_id)?);
        }
        Ok(Delivered {
            event_id: None,
            events,
            ack_body: "",
        })
    }

    async fn subscribe(&self, _url: &str) -> Result<(), SendError> {
        // Instagram's events come for accounts whose Page has subscribed the application.
        let page = self
            .page_id
            .as_deref()
            .ok_or_else(|| permanent("the profile does not know its linked Page"))?;
        let answer = self
            .api
            .post(
                &[page, "subscribed_apps"],
                &[("subscribed_fields", "feed".into())],
            )
            .await?;
        if answer.get("success").and_then(Value::as_bool) == Some(false) {
            return Err(transient("subscribed_apps answered success: false"));
        }
        Ok(())
    }
}

/// The events of one verified `instagram` webhook entry about the account `ig_user_id`: its
/// `comments` changes. Direct messages (`messaging[]`) are not this connector's.
pub(crate) fn entry_events(
    entry: &Value,
    ig_user_id: &str,
) -> Result<Vec<SocialEvent>, WebhookError> {
    let mut events = Vec::new();
    let changes = entry.get("changes").and_then(Value::as_array);
    for change in changes.into_iter().flatten() {
        if change.get("field").and_then(Value::as_str) != Some("comments") {
            events.push(SocialEvent::Ignored);
            continue;
        }
        let value = change.get("value").unwrap_or(&Value::Null);
        let malformed =
            |what: &str| WebhookError::Malformed(format!("a comments change without {what}"));
        let author = id_of(value.pointer("/from/id")).ok_or_else(|| malformed("from.id"))?;
        events.push(SocialEvent::Comment(RemoteComment {
            id: id_of(value.get("id")).ok_or_else(|| malformed("id"))?,
            post_id: id_of(value.pointer("/media/id")).ok_or_else(|| malformed("media.id"))?,
            by_profile: author == ig_user_id,
            author_id: author,
            text: text(value, "text"),
            created_at: graph::time(entry.get("time")),
            reply_to: id_of(value.get("parent_id")),
        }));
    }
    Ok(events)
}

/// Connects an Instagram account: reads its username (checking the token) and the Page the
/// token belongs to, which must be the account's.
pub async fn connect(
    grant: &super::Grant<'_>,
    endpoints: &crate::registry::Endpoints,
) -> Result<super::Connected, super::ConnectFailure> {
    use super::ConnectFailure;
    let ig_user_id = grant.external_id.trim();
    if !is_graph_id(ig_user_id) {
        return Err(ConnectFailure::BadExternalId);
    }
    let mut credentials = json!({
        "access_token": grant.access_token,
        "ig_user_id": ig_user_id,
        "verify_token": grant.webhook_secret,
    });
    let account =
        InstagramAccount::from_profile(&credentials, &endpoints.graph, &endpoints.apps.meta)
            .map_err(|err| ConnectFailure::Config(err.0))?;
    let user = account
        .api
        .get(&[ig_user_id], &[("fields", "id,username,name".into())])
        .await
        .map_err(ConnectFailure::Network)?;
    let page = account
        .api
        .get(
            &["me"],
            &[("fields", "id,instagram_business_account".into())],
        )
        .await
        .map_err(ConnectFailure::Network)?;
    if id_of(page.pointer("/instagram_business_account/id")).as_deref() != Some(ig_user_id) {
        return Err(ConnectFailure::Network(permanent(
            "the token is not of the Page linked to this Instagram account",
        )));
    }
    if let Some(page_id) = id_of(page.get("id")) {
        credentials["page_id"] = page_id.into();
    }
    let name = Some(text(&user, "username"))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| text(&user, "name"));
    Ok(super::Connected { name, credentials })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::signing::hmac_sha256_hex;

    fn account() -> InstagramAccount {
        InstagramAccount::from_profile(
            &json!({"access_token": "t", "ig_user_id": "1784", "page_id": "1001",
                "verify_token": "vt"}),
            &Url::parse("http://127.0.0.1:9/").unwrap(),
            &crate::registry::SocialApp {
                client_id: "app".into(),
                client_secret: "shh".into(),
                public_key: String::new(),
            },
        )
        .unwrap()
    }

    #[test]
    fn a_signed_comments_change_is_read_and_messages_are_ignored() {
        let body = json!({"object": "instagram", "entry": [
            {"id": "1784", "time": 1_795_773_600, "changes": [{"field": "comments",
                "value": {"id": "1790", "text": "Price?", "parent_id": "1789",
                    "from": {"id": "555", "username": "customer1"},
                    "media": {"id": "1780", "media_product_type": "FEED"}}}]},
            {"id": "1784", "time": 1, "messaging": [{"sender": {"id": "555"}}]}]});
        let bytes = serde_json::to_vec(&body).unwrap();
        let signature = format!("sha256={}", hmac_sha256_hex(b"shh", &bytes));
        let delivered = account()
            .webhook(&WebhookRequest::new(
                "POST",
                "",
                vec![("x-hub-signature-256".into(), signature)],
                &bytes,
            ))
            .unwrap();
        let [SocialEvent::Comment(comment)] = delivered.events.as_slice() else {
            panic!("{:?}", delivered.events);
        };
        assert_eq!(
            (
                comment.id.as_str(),
                comment.post_id.as_str(),
                comment.author_id.as_str()
            ),
            ("1790", "1780", "555")
        );
        assert_eq!(comment.reply_to.as_deref(), Some("1789"));
        assert!(!comment.by_profile);
        assert_eq!(
            account().webhook(&WebhookRequest::new("POST", "", Vec::new(), &bytes)),
            Err(WebhookError::Unauthorized)
        );
    }

    #[test]
    fn mentions_are_tagged_across_the_photo() {
        let tags = user_tags(&["@a".into(), "b".into()]).unwrap();
        assert_eq!(tags[0]["username"], "a");
        assert!((tags[1]["x"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(user_tags(&[]), None);
    }
}
