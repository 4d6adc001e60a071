//! Social publishing: the service behind `/api/v1/social/…` and the scheduler's `social.*`
//! tasks. A profile is a channel of kind `social`; its connector is built from its sealed
//! credentials by `connectors::social::social_network`, against the server's `[providers]`
//! base URLs. Content is checked twice: when it is written (so people see what is wrong) and
//! when it goes out (a network's limits or a profile's state may have changed meanwhile).

pub mod inbound;
pub mod oauth;
pub mod poller;
pub mod stored_media;
pub mod tasks;

use std::sync::Arc;

use omnihub_connectors::SendError;
use omnihub_connectors::registry::Endpoints;
use omnihub_connectors::social::{
    self as net, Action, Capabilities, PostMedia, SocialNetwork, capabilities,
};
use omnihub_core::model::ChannelKind;
use omnihub_core::social::{MediaKind, PostContent};
use omnihub_core::{ChannelId, ClientId};
use omnihub_store::media::MediaStore;
use omnihub_store::{DynStore, SocialMedia, SocialPost, StoreError};

/// Everything social publishing needs, shared by the routes and the scheduler's tasks.
#[derive(Clone)]
pub struct SocialService {
    pub store: DynStore,
    pub endpoints: Endpoints,
    pub media: Arc<dyn MediaStore>,
    /// OAuth connection of profiles; `None` on a server without a secret key.
    pub oauth: Option<oauth::OAuthFlows>,
    /// Mints the links networks fetch images and videos by (Instagram, Facebook); `None`
    /// without a secret key.
    pub media_links: Option<omnihub_connectors::media_link::MediaLinks>,
}

/// How long before its expiry an access token is refreshed.
const REFRESH_AHEAD: chrono::Duration = chrono::Duration::minutes(5);

/// Where the parameters a network wants again at refreshes are kept in the credentials.
const KEPT_PARAMS: &str = "oauth_params";

/// How long a network may take to fetch a post's image or video by its link (a scheduled
/// retry mints a new one).
const IMAGE_LINK_TTL: chrono::TimeDelta = chrono::TimeDelta::hours(6);

/// Why a post cannot go to a profile, or a profile cannot be reached.
#[derive(Debug)]
pub enum SocialFailure {
    /// The profile, post or file is gone.
    NotFound,
    /// Not an id of a community or group on that network.
    BadExternalId,
    /// The network does not allow this (the reason in the capability matrix's words).
    Unsupported {
        action: Action,
        reason: &'static str,
    },
    /// The content breaks the network's limits.
    Limit(Limit),
    /// The network cannot take the post's location as given.
    Place(net::place::BadPlace),
    /// The network refused, or could not be reached.
    Network(SendError),
    /// The profile's stored credentials cannot make a connector.
    Config(String),
    Store(StoreError),
}

/// Which limit of a network a post's variant breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Empty,
    TextLength {
        max: usize,
    },
    ImageCount {
        max: usize,
    },
    ImageType,
    ImageSize {
        max: usize,
    },
    VideoCount {
        max: usize,
    },
    /// Images beside a video where the network takes a video on its own.
    VideoWithImages,
    VideoType,
    VideoSize {
        max: u64,
    },
}

impl From<StoreError> for SocialFailure {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => SocialFailure::NotFound,
            other => SocialFailure::Store(other),
        }
    }
}

impl std::fmt::Display for SocialFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SocialFailure::NotFound => f.write_str("not found"),
            SocialFailure::BadExternalId => f.write_str("not an id on that network"),
            SocialFailure::Unsupported { reason, .. } => f.write_str(reason),
            SocialFailure::Limit(limit) => write!(f, "the content breaks a limit: {limit:?}"),
            SocialFailure::Place(bad) => write!(f, "{bad}"),
            SocialFailure::Network(err) => write!(f, "{err}"),
            SocialFailure::Config(reason) => f.write_str(reason),
            SocialFailure::Store(err) => write!(f, "{err}"),
        }
    }
}

/// What connecting a profile needs from the person (or from the OAuth grant).
#[derive(Clone, Debug)]
pub struct ProfileToConnect<'a> {
    pub client: ClientId,
    pub network: net::Network,
    /// The community's, group's or page's id on the network.
    pub external_id: &'a str,
    pub access_token: &'a str,
    /// Kept beside the access token when the network issues one.
    pub refresh_token: Option<&'a str>,
    pub token_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Parameters the network wants again at every refresh (VK ID's `device_id`).
    pub kept: &'a [(String, String)],
    /// Where the network's events for the new profile go: `{public_url}/hooks/social/<network>/`
    /// (the profile's id is appended).
    pub hooks_base: &'a str,
}

impl SocialService {
    /// Connects a profile: checks the token with the network, stores the profile with its
    /// credentials sealed, and points the network's events at omnihub. A profile whose events
    /// could not be set up is kept, `failing` with the network's words.
    pub async fn connect(
        &self,
        p: &ProfileToConnect<'_>,
    ) -> Result<omnihub_store::SocialProfile, SocialFailure> {
        let connect = capabilities(p.network).connect;
        if let net::Support::Planned(reason) | net::Support::Unsupported(reason) = connect {
            return Err(SocialFailure::Unsupported {
                action: Action::CreatePost,
                reason,
            });
        }
        let secret = crate::auth::tokens::random_secret();
        let grant = net::Grant {
            external_id: p.external_id,
            access_token: p.access_token,
            refresh_token: p.refresh_token,
            webhook_secret: &secret,
        };
        let net::Connected {
            name,
            mut credentials,
        } = net::connect(p.network, &grant, &self.endpoints)
            .await
            .map_err(|err| match err {
                net::ConnectFailure::BadExternalId => SocialFailure::BadExternalId,
                net::ConnectFailure::Config(reason) => SocialFailure::Config(reason),
                net::ConnectFailure::Network(err) => SocialFailure::Network(err),
            })?;
        let provider = provider_of(p.network).ok_or(SocialFailure::NotFound)?;
        if !p.kept.is_empty() {
            credentials[KEPT_PARAMS] = p
                .kept
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
                .collect::<serde_json::Map<_, _>>()
                .into();
        }
        let profile = self
            .store
            .create_social_profile(&omnihub_store::NewSocialProfile {
                client_id: p.client,
                provider,
                network: p.network.as_str().to_string(),
                external_id: p.external_id.trim().to_string(),
                name,
                credentials,
                token_expires_at: p.token_expires_at,
            })
            .await?;
        let hook = format!("{}{}", p.hooks_base, profile.id);
        let subscribed = match self.network(p.client, profile.id).await {
            Ok(network) => network.subscribe(&hook).await.map_err(|e| e.to_string()),
            Err(err) => Err(err.to_string()),
        };
        if let Err(detail) = subscribed {
            tracing::warn!(profile = %profile.id, %detail, "setting up the profile's events failed");
            self.store
                .set_social_profile_status(p.client, profile.id, "failing", Some(&detail))
                .await?;
            return Ok(self.store.get_social_profile(p.client, profile.id).await?);
        }
        Ok(profile)
    }

    /// The profile's connector and its network's capabilities.
    pub async fn network(
        &self,
        client: ClientId,
        profile: ChannelId,
    ) -> Result<Arc<dyn SocialNetwork>, SocialFailure> {
        let channel = self.store.get_channel(client, profile).await?;
        if channel.kind != ChannelKind::Social {
            return Err(SocialFailure::NotFound);
        }
        let credentials = self.store.channel_credentials(client, profile).await?;
        let credentials = match (credentials, net::network_of(channel.provider)) {
            (Some(credentials), Some(network)) => Some(
                self.fresh_credentials(client, profile, network, credentials)
                    .await?,
            ),
            (credentials, _) => credentials,
        };
        net::social_network(channel.provider, credentials.as_ref(), &self.endpoints)
            .map_err(|err| SocialFailure::Config(err.0))
    }

    /// The credentials with an access token that is not about to lapse: a token connected by
    /// OAuth with a refresh token is refreshed within `REFRESH_AHEAD` of its expiry, and the
    /// new one is kept. A refused refresh marks the profile `token_expired` with the network's
    /// words (the person connects it again); when another node refreshed meanwhile (networks
    /// that rotate refresh tokens refuse the old one), its token is used.
    async fn fresh_credentials(
        &self,
        client: ClientId,
        id: ChannelId,
        network: net::Network,
        credentials: serde_json::Value,
    ) -> Result<serde_json::Value, SocialFailure> {
        let Some(refresh_token) = credentials
            .get("refresh_token")
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
        else {
            return Ok(credentials);
        };
        let profile = self.store.get_social_profile(client, id).await?;
        let now = chrono::Utc::now();
        let due = profile
            .token_expires_at
            .is_some_and(|at| at - now < REFRESH_AHEAD);
        let Some(spec) = net::oauth_spec(network).filter(|_| due) else {
            return Ok(credentials);
        };
        let kept: Vec<(String, String)> = credentials
            .get(KEPT_PARAMS)
            .and_then(serde_json::Value::as_object)
            .map(|params| {
                params
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let refreshed = spec
            .refresh(
                net::oauth_endpoint(network, &self.endpoints),
                net::oauth_app(network, &self.endpoints),
                &refresh_token,
                &kept,
            )
            .await;
        match refreshed {
            Ok(tokens) => {
                let mut renewed = credentials;
                renewed["access_token"] = tokens.access_token.into();
                if let Some(rotated) = tokens.refresh_token {
                    renewed["refresh_token"] = rotated.into();
                }
                let expires = tokens
                    .expires_in
                    .map(|secs| now + chrono::Duration::seconds(secs));
                self.store
                    .renew_social_profile_token(client, id, &renewed, expires)
                    .await?;
                Ok(renewed)
            }
            Err(SendError::Transient { .. }) if profile.token_expires_at > Some(now) => {
                // Still valid for a while: try again on the next use.
                Ok(credentials)
            }
            Err(err) => {
                let stored = self.store.channel_credentials(client, id).await?;
                if let Some(stored) =
                    stored.filter(|s| s.get("access_token") != credentials.get("access_token"))
                {
                    return Ok(stored);
                }
                if matches!(err, SendError::Transient { .. }) {
                    return Err(SocialFailure::Network(err));
                }
                let detail = err.to_string();
                self.store
                    .set_social_profile_status(client, id, "token_expired", Some(&detail))
                    .await?;
                Err(SocialFailure::Network(err))
            }
        }
    }

    /// The capabilities of a profile's network.
    pub async fn capabilities_of(
        &self,
        client: ClientId,
        profile: ChannelId,
    ) -> Result<Capabilities, SocialFailure> {
        let profile = self.store.get_social_profile(client, profile).await?;
        let network = net::Network::parse(&profile.network).ok_or(SocialFailure::NotFound)?;
        Ok(capabilities(network))
    }

    /// The content of `post` on `profile`: the post's, with the profile's variant applied.
    pub fn content_on(post: &SocialPost, profile: ChannelId) -> PostContent {
        let base: PostContent = serde_json::from_value(post.content.clone()).unwrap_or_default();
        let variant: Option<PostContent> = post
            .targets
            .iter()
            .find(|t| t.profile_id == profile)
            .and_then(|t| t.content.clone())
            .and_then(|v| serde_json::from_value(v).ok());
        base.with_variant(variant.as_ref())
    }

    /// Checks `content` against the network's capabilities and limits.
    pub async fn check(
        &self,
        client: ClientId,
        capabilities: &Capabilities,
        content: &PostContent,
    ) -> Result<(), SocialFailure> {
        let need = |action: Action| {
            capabilities
                .require(action)
                .map_err(|reason| SocialFailure::Unsupported { action, reason })
        };
        let mut images = Vec::new();
        let mut videos = Vec::new();
        for id in content.media() {
            let file = self.store.get_social_media(client, *id).await?;
            match MediaKind::of_mime(&file.mime_type) {
                MediaKind::Video => videos.push(file),
                MediaKind::Image => images.push(file),
            }
        }
        // A network whose posts are videos (YouTube) takes no post without one.
        if videos.is_empty() || capabilities.require(Action::CreatePost).is_ok() {
            need(Action::CreatePost)?;
        }
        if !videos.is_empty() {
            need(Action::PostVideo)?;
        }
        if !images.is_empty() {
            need(Action::PostImages)?;
        }
        if content.is_empty() {
            return Err(SocialFailure::Limit(Limit::Empty));
        }
        if content.link.is_some() {
            need(Action::PostLink)?;
        }
        if !content.hashtags().is_empty() {
            need(Action::PostHashtags)?;
        }
        if !content.mentions().is_empty() {
            need(Action::PostMentions)?;
        }
        if content.location.is_some() {
            need(Action::PostLocation)?;
            location_on(capabilities.network, content)?;
        }
        let Some(limits) = capabilities.limits else {
            return Ok(());
        };
        let text = net::compose_text(&wire_text(content), |m| format!("@{m}"));
        if text.chars().count() > limits.max_text_chars {
            return Err(SocialFailure::Limit(Limit::TextLength {
                max: limits.max_text_chars,
            }));
        }
        check_files(&limits, &images, &videos).map_err(SocialFailure::Limit)
    }

    /// The content as `network`'s connector takes it, its files opened from the media store
    /// (read by the connector as it uploads them).
    pub async fn wire(
        &self,
        client: ClientId,
        network: net::Network,
        content: &PostContent,
    ) -> Result<net::PostContent, SocialFailure> {
        let mut wire = wire_text(content);
        wire.location = location_on(network, content)?;
        for id in content.media() {
            let file = self.store.get_social_media(client, *id).await?;
            let source =
                stored_media::source_of(&self.media, &file.storage_key, file.size.max(0) as u64)
                    .await
                    .map_err(|err| SocialFailure::Config(format!("media file: {err}")))?;
            let public_url = self.media_links.as_ref().map(|links| {
                links.social_url(
                    client,
                    file.id,
                    &file.file_name,
                    chrono::Utc::now() + IMAGE_LINK_TTL,
                )
            });
            let kind = MediaKind::of_mime(&file.mime_type);
            let media = PostMedia {
                file_name: file.file_name,
                mime_type: file.mime_type,
                source,
                public_url,
            };
            match kind {
                MediaKind::Image => wire.images.push(media),
                MediaKind::Video => wire.videos.push(media),
            }
        }
        Ok(wire)
    }
}

/// The library's files of a post against a network's limits: how many images and videos,
/// whether they mix, and each file's type and size.
fn check_files(
    limits: &net::Limits,
    images: &[SocialMedia],
    videos: &[SocialMedia],
) -> Result<(), Limit> {
    if images.len() > limits.max_images {
        return Err(Limit::ImageCount {
            max: limits.max_images,
        });
    }
    if videos.len() > limits.max_videos {
        return Err(Limit::VideoCount {
            max: limits.max_videos,
        });
    }
    if !videos.is_empty() && !images.is_empty() && !limits.videos_with_images {
        return Err(Limit::VideoWithImages);
    }
    let max_files = limits.max_images.max(limits.max_videos);
    if images.len() + videos.len() > max_files {
        return Err(Limit::ImageCount { max: max_files });
    }
    for file in images {
        if !limits.image_types.contains(&file.mime_type.as_str()) {
            return Err(Limit::ImageType);
        }
        if file.size > limits.max_image_bytes as i64 {
            return Err(Limit::ImageSize {
                max: limits.max_image_bytes,
            });
        }
    }
    for file in videos {
        if !limits.video_types.contains(&file.mime_type.as_str()) {
            return Err(Limit::VideoType);
        }
        if u64::try_from(file.size).unwrap_or(u64::MAX) > limits.max_video_bytes {
            return Err(Limit::VideoSize {
                max: limits.max_video_bytes,
            });
        }
    }
    Ok(())
}

/// The provider of a network's profiles (the inverse of `net::network_of`).
fn provider_of(network: net::Network) -> Option<omnihub_core::model::Provider> {
    use omnihub_core::model::Provider;
    [
        Provider::Vk,
        Provider::Ok,
        Provider::Facebook,
        Provider::Instagram,
        Provider::X,
        Provider::Youtube,
    ]
    .into_iter()
    .find(|p| net::network_of(*p) == Some(network))
}

/// The post's location as `network` takes it (its coordinates, or the id of its place read
/// out of what was pasted), or why it cannot.
fn location_on(
    network: net::Network,
    content: &PostContent,
) -> Result<Option<net::Location>, SocialFailure> {
    let Some(location) = &content.location else {
        return Ok(None);
    };
    let coordinates = location
        .coordinates()
        .map(|(latitude, longitude)| net::Coordinates {
            latitude,
            longitude,
        });
    net::place::resolve(network, coordinates, location.place.as_deref())
        .map_err(SocialFailure::Place)
}

/// Everything of the content but its files and its location.
fn wire_text(content: &PostContent) -> net::PostContent {
    net::PostContent {
        text: content.text().to_string(),
        images: Vec::new(),
        videos: Vec::new(),
        video_privacy: content.video_privacy.unwrap_or_default(),
        link: content.link.clone(),
        hashtags: content.hashtags().to_vec(),
        mentions: content.mentions().to_vec(),
        location: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use omnihub_connectors::social::Network;

    fn file(mime: &str, size: i64) -> SocialMedia {
        SocialMedia {
            id: uuid::Uuid::now_v7(),
            client_id: ClientId(uuid::Uuid::nil()),
            file_name: "f".into(),
            mime_type: mime.into(),
            kind: MediaKind::of_mime(mime),
            size,
            storage_key: "k".into(),
            uploaded_by: None,
            created_at: chrono::Utc::now(),
        }
    }

    fn limits(network: Network) -> net::Limits {
        capabilities(network).limits.unwrap()
    }

    #[test]
    fn each_network_has_its_video_rules() {
        let mp4 = file("video/mp4", 1_000);
        let webm = file("video/webm", 1_000);
        let jpeg = file("image/jpeg", 1_000);
        // YouTube: one video, nothing beside it.
        let youtube = limits(Network::Youtube);
        assert_eq!(
            check_files(&youtube, &[], std::slice::from_ref(&mp4)),
            Ok(())
        );
        assert_eq!(
            check_files(&youtube, &[], std::slice::from_ref(&webm)),
            Ok(())
        );
        assert_eq!(
            check_files(&youtube, &[], &[mp4.clone(), webm.clone()]),
            Err(Limit::VideoCount { max: 1 })
        );
        // X, Facebook and Instagram: a video goes on its own.
        for network in [Network::X, Network::Facebook, Network::Instagram] {
            assert_eq!(
                check_files(
                    &limits(network),
                    std::slice::from_ref(&jpeg),
                    std::slice::from_ref(&mp4)
                ),
                Err(Limit::VideoWithImages),
                "{network:?}"
            );
        }
        // Instagram's reels and X take no WebM.
        assert_eq!(
            check_files(
                &limits(Network::Instagram),
                &[],
                std::slice::from_ref(&webm)
            ),
            Err(Limit::VideoType)
        );
        assert_eq!(
            check_files(&limits(Network::X), &[], std::slice::from_ref(&webm)),
            Err(Limit::VideoType)
        );
        // Reels are at most 300 MB.
        let big = file("video/quicktime", 301 * 1024 * 1024);
        assert_eq!(
            check_files(&limits(Network::Instagram), &[], std::slice::from_ref(&big)),
            Err(Limit::VideoSize {
                max: 300 * 1024 * 1024
            })
        );
        // VK mixes videos and photos within its 10 attachments.
        let vk = limits(Network::Vk);
        assert_eq!(
            check_files(&vk, std::slice::from_ref(&jpeg), std::slice::from_ref(&mp4)),
            Ok(())
        );
        let six_photos = vec![jpeg.clone(); 6];
        let five_videos = vec![mp4.clone(); 5];
        assert_eq!(
            check_files(&vk, &six_photos, &five_videos),
            Err(Limit::ImageCount { max: 10 })
        );
    }
}
