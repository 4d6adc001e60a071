//! Social networks: publishing to a connected profile (a VK community, later an OK group, a
//! Facebook Page, an Instagram business account, an X account, a YouTube channel) and
//! moderating the comments under its posts.
//!
//! Every network is one implementation of [`SocialNetwork`]; what a network's API allows, and
//! what omnihub has built of it, is its [`Capabilities`] (a row of the capability matrix), so
//! the HTTP layer refuses an unsupported action with the network's reason before anything is
//! scheduled. A network's failures are [`SendError`]s: transient ones (rate limits, outages)
//! are retried by the scheduler with back-off, permanent ones are shown with the provider's
//! words.
//!
//! Effects are idempotent by key: a post and a comment carry a `guid` derived from the task
//! that makes them (VK drops a second `wall.post` with the same `guid`; OK and Meta's Graph API
//! take no key, so their connectors look for the post or comment among the profile's recent
//! ones before making it again), deleting what is gone succeeds, and liking (or disliking)
//! twice is one like.

pub mod facebook;
pub mod graph;
pub mod instagram;
pub mod meta_app;
pub mod oauth;
pub mod ok;
pub mod place;
pub mod source;
pub mod vk;
pub mod x;
pub mod youtube;

use std::sync::Arc;

use async_trait::async_trait;
use omnihub_core::model::Provider;
use serde::Serialize;

use crate::provider::{ConfigError, WebhookError, WebhookRequest};
use crate::registry::Endpoints;
use crate::{OutboundChannel, OutboundMessage, SendError, SendReceipt};
pub use source::MediaSource;

/// The social networks omnihub knows of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    Vk,
    Ok,
    Facebook,
    Instagram,
    X,
    Youtube,
    /// Shut down by Google in 2019: listed so the product can say so.
    GooglePlus,
}

impl Network {
    pub const ALL: [Network; 7] = [
        Network::Vk,
        Network::Ok,
        Network::Facebook,
        Network::Instagram,
        Network::X,
        Network::Youtube,
        Network::GooglePlus,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Network::Vk => "vk",
            Network::Ok => "ok",
            Network::Facebook => "facebook",
            Network::Instagram => "instagram",
            Network::X => "x",
            Network::Youtube => "youtube",
            Network::GooglePlus => "google_plus",
        }
    }

    pub fn parse(name: &str) -> Option<Network> {
        Network::ALL.into_iter().find(|n| n.as_str() == name)
    }
}

/// Everything one may do with a profile's content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// List posts with their counters (likes, comments, reposts, views).
    ListPosts,
    /// Publish a post with text.
    CreatePost,
    /// … with images.
    PostImages,
    /// … with a video.
    PostVideo,
    /// … with a link.
    PostLink,
    /// … with hashtags.
    PostHashtags,
    /// … mentioning users or pages.
    PostMentions,
    /// … with a location.
    PostLocation,
    EditPost,
    DeletePost,
    ListComments,
    ReplyComment,
    DeleteComment,
    HideComment,
    LikePost,
    UnlikePost,
    LikeComment,
    UnlikeComment,
    /// Dislike a post (a video), and take the dislike back.
    Dislike,
    /// Dislike a comment, and take the dislike back.
    DislikeComment,
}

impl Action {
    pub const ALL: [Action; 20] = [
        Action::ListPosts,
        Action::CreatePost,
        Action::PostImages,
        Action::PostVideo,
        Action::PostLink,
        Action::PostHashtags,
        Action::PostMentions,
        Action::PostLocation,
        Action::EditPost,
        Action::DeletePost,
        Action::ListComments,
        Action::ReplyComment,
        Action::DeleteComment,
        Action::HideComment,
        Action::LikePost,
        Action::UnlikePost,
        Action::LikeComment,
        Action::UnlikeComment,
        Action::Dislike,
        Action::DislikeComment,
    ];
}

/// Whether an action can be done on a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "snake_case")]
pub enum Support {
    /// The network allows it and omnihub does it.
    Supported,
    /// The network allows it; omnihub does not do it yet (why).
    Planned(&'static str),
    /// The network's API does not allow it (why).
    Unsupported(&'static str),
}

/// How new comments reach omnihub.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommentDelivery {
    /// The network calls our webhook.
    Webhook,
    /// omnihub asks the network periodically.
    Polling,
    /// Not at all.
    None,
}

/// What a network takes in one post.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Characters of text, hashtags and mentions included.
    pub max_text_chars: usize,
    pub max_images: usize,
    /// Image types the network accepts.
    pub image_types: &'static [&'static str],
    /// Bytes of one image.
    pub max_image_bytes: usize,
    /// Videos in one post; images and videos together are at most the larger of
    /// `max_images` and `max_videos`.
    pub max_videos: usize,
    /// Whether a post with a video may carry images too.
    pub videos_with_images: bool,
    /// Video types (as sniffed from the file) the network accepts.
    pub video_types: &'static [&'static str],
    /// Bytes of one video.
    pub max_video_bytes: u64,
}

/// One network's row of the capability matrix.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Capabilities {
    pub network: Network,
    /// Whether profiles of this network can be connected now, and if not why.
    pub connect: Support,
    pub comments: CommentDelivery,
    pub limits: Option<Limits>,
    actions: &'static [(Action, Support)],
}

impl Capabilities {
    /// Whether `action` is possible; an action the row does not list is planned.
    pub fn support(&self, action: Action) -> Support {
        if let Support::Unsupported(reason) = self.connect {
            return Support::Unsupported(reason);
        }
        self.actions
            .iter()
            .find(|(a, _)| *a == action)
            .map_or(Support::Planned("not built yet"), |(_, s)| *s)
    }

    /// Every action with its support, in [`Action::ALL`] order.
    pub fn matrix(&self) -> Vec<(Action, Support)> {
        Action::ALL.iter().map(|a| (*a, self.support(*a))).collect()
    }

    /// `Ok` when supported; otherwise the reason.
    pub fn require(&self, action: Action) -> Result<(), &'static str> {
        match self.support(action) {
            Support::Supported => Ok(()),
            Support::Planned(reason) | Support::Unsupported(reason) => Err(reason),
        }
    }
}

/// The capability matrix row of `network`.
pub fn capabilities(network: Network) -> Capabilities {
    match network {
        Network::Vk => vk::CAPABILITIES,
        Network::Ok => ok::CAPABILITIES,
        Network::Facebook => facebook::CAPABILITIES,
        Network::Instagram => instagram::CAPABILITIES,
        Network::X => x::CAPABILITIES,
        Network::Youtube => youtube::CAPABILITIES,
        Network::GooglePlus => Capabilities {
            network,
            connect: Support::Unsupported("Google+ was shut down in 2019 and has had no API since"),
            comments: CommentDelivery::None,
            limits: None,
            actions: &[],
        },
    }
}

/// A file to publish with a post.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostMedia {
    pub file_name: String,
    pub mime_type: String,
    /// Its bytes, opened afresh for each upload: a video is sent in pieces as it is read, only
    /// an image may be held whole ([`MediaSource::read_whole`]).
    pub source: MediaSource,
    /// A signed, expiring link the network can fetch the file from, for networks that take
    /// media only by URL (Instagram, Facebook's photos); `None` when the server has no public
    /// URL.
    pub public_url: Option<String>,
}

/// A point on the map, in degrees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coordinates {
    pub latitude: f64,
    pub longitude: f64,
}

/// A place a post is tied to, as its network takes it ([`place::resolve`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Location {
    pub coordinates: Option<Coordinates>,
    /// The id of a place in the network's own catalogue.
    pub place_id: Option<String>,
}

impl PostContent {
    /// The id of the post's place in the network's catalogue, if it has one.
    pub fn place_id(&self) -> Option<&str> {
        self.location.as_ref()?.place_id.as_deref()
    }
}

/// A post as one network receives it.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct PostContent {
    pub text: String,
    pub images: Vec<PostMedia>,
    /// Video files (MP4, QuickTime or WebM), within the network's [`Limits`].
    pub videos: Vec<PostMedia>,
    /// Who may watch the video, where the network has the setting (YouTube).
    pub video_privacy: omnihub_core::social::VideoPrivacy,
    pub link: Option<String>,
    /// Without the `#`.
    pub hashtags: Vec<String>,
    /// The network's ids or screen names of the people or pages mentioned.
    pub mentions: Vec<String>,
    pub location: Option<Location>,
}

/// Counters of a post.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub likes: u64,
    pub comments: u64,
    pub reposts: u64,
    pub views: u64,
}

/// A post as the network shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct RemotePost {
    pub id: String,
    pub text: String,
    pub published_at: Option<chrono::DateTime<chrono::Utc>>,
    pub counters: Counters,
}

/// A comment under a post.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteComment {
    pub id: String,
    pub post_id: String,
    /// The author's id on the network; empty for the profile itself.
    pub author_id: String,
    pub text: String,
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The comment this one answers.
    pub reply_to: Option<String>,
    /// Whether the profile itself wrote it (our own replies come back in events too).
    pub by_profile: bool,
}

/// What a like (or a dislike) is given to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LikeTarget<'a> {
    Post(&'a str),
    Comment(&'a str),
}

impl LikeTarget<'_> {
    /// The action of the capability matrix that disliking this target (or taking the
    /// dislike back) is.
    pub fn dislike_action(self) -> Action {
        match self {
            LikeTarget::Post(_) => Action::Dislike,
            LikeTarget::Comment(_) => Action::DislikeComment,
        }
    }
}

/// What a network's webhook delivered about a profile.
#[derive(Clone, Debug, PartialEq)]
pub enum SocialEvent {
    /// Answer the network's handshake (VK's confirmation, Meta's `hub.challenge`, X's CRC)
    /// with this body; nothing else is in the delivery.
    Handshake {
        body: String,
        /// `text/plain` or `application/json`.
        content_type: &'static str,
    },
    /// A new comment.
    Comment(RemoteComment),
    /// A new post appeared on the profile (made here or elsewhere).
    Post(RemotePost),
    /// Something omnihub does not act on; acknowledged.
    Ignored,
}

impl SocialEvent {
    /// A handshake answered with plain text.
    pub fn text_handshake(body: impl Into<String>) -> SocialEvent {
        SocialEvent::Handshake {
            body: body.into(),
            content_type: "text/plain",
        }
    }
}

/// What one webhook request carried: its events (networks batch several: Meta's `entry[]`,
/// X's arrays), with the unique id of the delivery where the network gives one.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivered {
    pub event_id: Option<String>,
    pub events: Vec<SocialEvent>,
    /// What the network expects as the body of the 200.
    pub ack_body: &'static str,
}

/// One connected profile on one network. Each call is one request (or a few) to the network;
/// failures are classified for the scheduler.
#[async_trait]
pub trait SocialNetwork: Send + Sync {
    fn capabilities(&self) -> Capabilities;

    /// The profile's latest posts, newest first, with their counters.
    async fn list_posts(&self, count: u32) -> Result<Vec<RemotePost>, SendError>;

    /// Publishes a post; `guid` is the idempotency key: the same key publishes once.
    /// Returns the network's id of the post.
    async fn create_post(&self, content: &PostContent, guid: &str) -> Result<String, SendError>;

    /// Whether the post still exists on the network (answered before re-posting).
    async fn post_exists(&self, post_id: &str) -> Result<bool, SendError>;

    async fn edit_post(&self, post_id: &str, content: &PostContent) -> Result<(), SendError>;

    /// Deletes a post; one that is already gone is not an error.
    async fn delete_post(&self, post_id: &str) -> Result<(), SendError>;

    async fn list_comments(&self, post_id: &str) -> Result<Vec<RemoteComment>, SendError>;

    /// Comments under a post as the profile, answering `reply_to` when given; `guid` as for
    /// posts. Returns the network's id of the comment.
    async fn comment(
        &self,
        post_id: &str,
        reply_to: Option<&str>,
        text: &str,
        guid: &str,
    ) -> Result<String, SendError>;

    async fn delete_comment(&self, post_id: &str, comment_id: &str) -> Result<(), SendError>;

    async fn hide_comment(&self, _post_id: &str, _comment_id: &str) -> Result<(), SendError> {
        Err(unsupported(self.capabilities(), Action::HideComment))
    }

    async fn like(&self, target: LikeTarget<'_>) -> Result<(), SendError>;

    async fn unlike(&self, target: LikeTarget<'_>) -> Result<(), SendError>;

    /// Dislikes a post or a comment as the profile; disliking twice is one dislike. Only
    /// networks with dislikes implement it: the others refuse with their reason.
    async fn dislike(&self, target: LikeTarget<'_>) -> Result<(), SendError> {
        Err(unsupported(self.capabilities(), target.dislike_action()))
    }

    /// Takes back the profile's dislike of a post or a comment; there being none is not an
    /// error.
    async fn undislike(&self, target: LikeTarget<'_>) -> Result<(), SendError> {
        Err(unsupported(self.capabilities(), target.dislike_action()))
    }

    /// Checks a webhook request is the network's (secret or signature on the raw bytes) and
    /// reads the event it carries.
    fn webhook(&self, request: &WebhookRequest<'_>) -> Result<Delivered, WebhookError>;

    /// Points the network's event delivery for this profile at `url`.
    async fn subscribe(&self, url: &str) -> Result<(), SendError>;
}

/// The permanent failure of an action the network does not allow.
pub fn unsupported(capabilities: Capabilities, action: Action) -> SendError {
    let reason = match capabilities.support(action) {
        Support::Supported => "not available",
        Support::Planned(reason) | Support::Unsupported(reason) => reason,
    };
    SendError::Permanent {
        reason: reason.to_string(),
    }
}

/// The network a provider's profiles are on (a channel of kind `social` has one of these
/// providers).
pub fn network_of(provider: Provider) -> Option<Network> {
    Some(match provider {
        Provider::Vk => Network::Vk,
        Provider::Ok => Network::Ok,
        Provider::Facebook => Network::Facebook,
        Provider::Instagram => Network::Instagram,
        Provider::X => Network::X,
        Provider::Youtube => Network::Youtube,
        _ => return None,
    })
}

/// The connected profile of a social channel, built from its stored credentials; the API
/// base is the server's configuration, never the tenant's.
pub fn social_network(
    provider: Provider,
    credentials: Option<&serde_json::Value>,
    endpoints: &Endpoints,
) -> Result<Arc<dyn SocialNetwork>, ConfigError> {
    let credentials =
        credentials.ok_or_else(|| ConfigError("the profile has no credentials".into()))?;
    match network_of(provider) {
        Some(Network::Vk) => Ok(Arc::new(vk::VkWall::from_profile(
            credentials,
            &endpoints.vk,
        )?)),
        Some(Network::Ok) => Ok(Arc::new(ok::OkGroup::from_profile(
            credentials,
            &endpoints.ok,
            &endpoints.apps.ok,
        )?)),
        Some(Network::Facebook) => Ok(Arc::new(facebook::FacebookPage::from_profile(
            credentials,
            &endpoints.graph,
            &endpoints.apps.meta,
        )?)),
        Some(Network::Instagram) => Ok(Arc::new(instagram::InstagramAccount::from_profile(
            credentials,
            &endpoints.graph,
            &endpoints.apps.meta,
        )?)),
        Some(Network::X) => Ok(Arc::new(x::XAccount::from_profile(credentials, endpoints)?)),
        Some(Network::Youtube) => Ok(Arc::new(youtube::YoutubeChannel::from_profile(
            credentials,
            &endpoints.youtube,
        )?)),
        Some(network) => Err(ConfigError(format!(
            "{} profiles cannot be connected yet",
            network.as_str()
        ))),
        None => Err(ConfigError(format!(
            "{} is not a social network",
            provider.as_str()
        ))),
    }
}

/// What connecting a profile is given: by a person pasting a token, or by an OAuth grant.
#[derive(Clone, Copy, Debug)]
pub struct Grant<'a> {
    /// The community's, group's, page's, account's or channel's id on the network.
    pub external_id: &'a str,
    pub access_token: &'a str,
    /// Kept beside the access token when the network issues one.
    pub refresh_token: Option<&'a str>,
    /// A fresh random secret (`[A-Za-z0-9]`, 32+ characters) for the profile's webhook, for
    /// networks whose webhooks carry a per-subscription secret (VK's callback secret, Meta's
    /// `hub.verify_token`).
    pub webhook_secret: &'a str,
}

/// A profile the network has confirmed: its name, and the credentials to seal and keep.
#[derive(Clone, Debug, PartialEq)]
pub struct Connected {
    pub name: String,
    pub credentials: serde_json::Value,
}

/// Why a profile could not be connected.
#[derive(Debug)]
pub enum ConnectFailure {
    /// Not an id of a community, group, page or channel on that network.
    BadExternalId,
    /// The network is not connectable, or the server's application for it is not set.
    Config(String),
    /// The network refused the token or the id, or could not be reached.
    Network(SendError),
}

/// Checks a grant with the network and gives the profile's name and credentials.
pub async fn connect(
    network: Network,
    grant: &Grant<'_>,
    endpoints: &Endpoints,
) -> Result<Connected, ConnectFailure> {
    let mut connected = match network {
        Network::Vk => vk::connect(grant, endpoints).await?,
        Network::Ok => ok::connect(grant, endpoints).await?,
        Network::Facebook => facebook::connect(grant, endpoints).await?,
        Network::Instagram => instagram::connect(grant, endpoints).await?,
        Network::X => x::connect(grant, endpoints).await?,
        Network::Youtube => youtube::connect(grant, endpoints).await?,
        other => {
            return Err(ConnectFailure::Config(format!(
                "{} profiles cannot be connected yet",
                other.as_str()
            )));
        }
    };
    if let Some(refresh) = grant.refresh_token {
        connected.credentials["refresh_token"] = refresh.into();
    }
    Ok(connected)
}

/// How a network's profiles are connected by OAuth; `None` where omnihub has no flow for it.
pub fn oauth_spec(network: Network) -> Option<oauth::OAuthSpec> {
    match network {
        Network::Vk => Some(vk::OAUTH),
        Network::Ok => Some(ok::OAUTH),
        Network::Facebook | Network::Instagram => Some(graph::OAUTH),
        Network::X => Some(x::OAUTH),
        Network::Youtube => Some(youtube::OAUTH),
        Network::GooglePlus => None,
    }
}

/// The server's application on a network (Facebook and Instagram share Meta's, YouTube is
/// Google's).
pub fn oauth_app(network: Network, endpoints: &Endpoints) -> &crate::registry::SocialApp {
    let apps = &endpoints.apps;
    match network {
        Network::Vk | Network::GooglePlus => &apps.vk,
        Network::Ok => &apps.ok,
        Network::Facebook | Network::Instagram => &apps.meta,
        Network::X => &apps.x,
        Network::Youtube => &apps.google,
    }
}

/// A network's OAuth endpoints.
pub fn oauth_endpoint(network: Network, endpoints: &Endpoints) -> &oauth::OAuthUrl {
    let urls = &endpoints.oauth;
    match network {
        Network::Vk | Network::GooglePlus => &urls.vk,
        Network::Ok => &urls.ok,
        Network::Facebook | Network::Instagram => &urls.meta,
        Network::X => &urls.x,
        Network::Youtube => &urls.google,
    }
}

/// The profiles the holder of `access_token` may connect on `network`.
pub async fn manageable_profiles(
    network: Network,
    access_token: &str,
    endpoints: &Endpoints,
) -> Result<Vec<oauth::Manageable>, SendError> {
    match network {
        Network::Vk => vk::manageable_profiles(access_token, endpoints).await,
        Network::Ok => ok::manageable_profiles(access_token, endpoints).await,
        // Pages' tokens made from a long-lived user token do not expire.
        Network::Facebook | Network::Instagram => {
            let (long_lived, _) = graph::long_lived_token(endpoints, access_token).await?;
            graph::manageable_profiles(endpoints, &long_lived, network == Network::Instagram).await
        }
        Network::X => x::manageable_profiles(access_token, endpoints).await,
        Network::Youtube => youtube::manageable_profiles(access_token, endpoints).await,
        Network::GooglePlus => Err(SendError::Permanent {
            reason: "Google+ has had no API since 2019".into(),
        }),
    }
}

/// The external id of the conversation holding one person's comments under one post.
pub fn thread_id(post_id: &str, author_id: &str) -> String {
    format!("{post_id}:{author_id}")
}

/// The post and author of a comment conversation's external id.
pub fn thread_parts(thread: &str) -> Option<(&str, &str)> {
    thread
        .split_once(':')
        .filter(|(post, author)| !post.is_empty() && !author.is_empty())
}

/// An operator's reply in a comment conversation goes out as a comment under the post,
/// answering the person's latest comment there; its idempotency key is the comment's `guid`.
pub struct CommentReplies(pub Arc<dyn SocialNetwork>);

#[async_trait]
impl OutboundChannel for CommentReplies {
    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let (post_id, author) =
            thread_parts(&message.conversation).ok_or_else(|| SendError::Permanent {
                reason: format!("not a comment thread: {:?}", message.conversation),
            })?;
        if !message.attachments.is_empty() {
            return Err(SendError::Permanent {
                reason: "replies to comments carry text only".into(),
            });
        }
        let reply_to = match &message.reply_to {
            Some(id) => Some(id.clone()),
            None => self
                .0
                .list_comments(post_id)
                .await?
                .into_iter()
                .rfind(|c| c.author_id == author && !c.by_profile)
                .map(|c| c.id),
        };
        let id = self
            .0
            .comment(
                post_id,
                reply_to.as_deref(),
                &message.text,
                &message.idempotency_key,
            )
            .await?;
        Ok(SendReceipt {
            provider_message_id: Some(id),
        })
    }
}

/// A post's text as networks without separate fields take it: the text, then the link, the
/// mentions and the hashtags each on their own line when not already in the text.
pub fn compose_text(content: &PostContent, mention: impl Fn(&str) -> String) -> String {
    let mut text = content.text.trim_end().to_string();
    let mut push_line = |line: String| {
        if line.is_empty() || text.contains(&line) {
            return;
        }
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(&line);
    };
    let mentions: Vec<String> = content
        .mentions
        .iter()
        .map(|m| mention(m))
        .filter(|m| !content.text.contains(m.as_str()))
        .collect();
    push_line(mentions.join(" "));
    let tags: Vec<String> = content
        .hashtags
        .iter()
        .map(|tag| format!("#{}", tag.trim_start_matches('#')))
        .filter(|tag| !content.text.contains(tag.as_str()))
        .collect();
    push_line(tags.join(" "));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_plus_is_dead_for_every_action() {
        let row = capabilities(Network::GooglePlus);
        for (action, support) in row.matrix() {
            assert!(
                matches!(support, Support::Unsupported(reason) if reason.contains("2019")),
                "{action:?}"
            );
        }
    }

    #[test]
    fn only_youtube_videos_take_dislikes() {
        for network in Network::ALL {
            let row = capabilities(network);
            assert!(
                matches!(row.support(Action::DislikeComment), Support::Unsupported(_)),
                "{network:?}"
            );
            assert_eq!(
                row.support(Action::Dislike) == Support::Supported,
                network == Network::Youtube,
                "{network:?}"
            );
        }
    }

    #[test]
    fn networks_parse_their_own_names() {
        for network in Network::ALL {
            assert_eq!(Network::parse(network.as_str()), Some(network));
        }
        assert_eq!(Network::parse("myspace"), None);
    }

    #[test]
    fn text_gets_mentions_and_hashtags_once() {
        let content = PostContent {
            text: "Sale today #sale".into(),
            hashtags: vec!["sale".into(), "#spring".into()],
            mentions: vec!["club1".into()],
            ..PostContent::default()
        };
        assert_eq!(
            compose_text(&content, |m| format!("@{m}")),
            "Sale today #sale\n\n@club1\n\n#spring"
        );
    }
}
