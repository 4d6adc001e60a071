//! The demo's social profiles: the seeded client's VK community wall, OK group, Facebook Page,
//! Instagram business account, X account and YouTube channel, each on the sandbox's fake of
//! its network, are connected the way a person connects them (token checked, events set up),
//! get a few posts through the same connectors and content path publishing uses (Instagram's
//! photo and YouTube's video come from the client's media library, Instagram fetching its
//! photo by the signed link), and now and then someone comments under them. Each comment
//! arrives the way its network delivers it: VK's Callback API, Meta's webhook to the
//! application's one callback (which the demo sets up as the app's dashboard would, with the
//! server's verify token), X's Account Activity webhook, and polling for OK and YouTube. They
//! all show up in the inbox, tied to their posts; the profiles' posts carry counters.
//!
//! The fakes keep nothing across restarts: each start publishes the posts again and points the
//! profiles' events at this run's address. The library's two demo files are added once.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use omnihub_connectors::social::{Network, SocialNetwork};
use omnihub_core::social::PostContent;
use omnihub_core::{ChannelId, ClientId};
use omnihub_sandbox::graph::Person;
use rand::Rng as _;

use super::providers::{DemoProviders, META_VERIFY_TOKEN};
use crate::http::routes::social::hooks_base;
use crate::social::ProfileToConnect;
use crate::state::AppState;

/// What the demo's profiles say, Russian first like its customers.
const POSTS: [(&str, &[&str]); 3] = [
    (
        "Весенняя коллекция уже в магазине! Приходите примерять.",
        &["новинки", "весна"],
    ),
    (
        "Доставка по Москве теперь за 2 часа. Пишите в личные сообщения.",
        &["доставка"],
    ),
    ("We now ship to Kazakhstan and Armenia.", &["shipping"]),
];

/// What people write under the posts.
const COMMENTS: [&str; 6] = [
    "А размеры какие есть? #вопрос",
    "Очень красиво!",
    "Сколько стоит доставка в Подольск?",
    "Do you ship to Yerevan?",
    "Заказала вчера, жду!",
    "Можно оплатить при получении? #вопрос",
];

/// Who comments: a name and a handle (Instagram's username, X's screen name).
const PEOPLE: [(&str, &str); 4] = [
    ("Анна Петрова", "anna.petrova"),
    ("Dmitry K.", "dmitry_k"),
    ("Ольга Смирнова", "olga.smirnova"),
    ("Sergey Ivanov", "sergey_iv"),
];

/// The first round of comments, one under each profile, this far apart; then one every
/// `COMMENT_PACE_SECS`.
const FIRST_ROUND_GAP: Duration = Duration::from_secs(1);
const COMMENT_PACE_SECS: std::ops::RangeInclusive<u64> = 20..=40;

/// The library's photo (Instagram posts need one) and video (a YouTube post is one).
const DEMO_PHOTO: &str = "demo-shop.jpg";
const DEMO_VIDEO: &str = "demo-shop.mp4";

/// One demo profile: where it is and what was posted on it this run.
struct Seeded {
    network: Network,
    posts: Vec<String>,
}

impl DemoProviders {
    /// Connects (or, on later starts, points again at this run) the client's profiles on
    /// every network, publishes the demo's posts on them and starts people commenting.
    pub async fn seed_social(
        self: Arc<Self>,
        state: &AppState,
        client: ClientId,
    ) -> anyhow::Result<()> {
        let vk = self.vk_sandbox().config();
        let ok = self.ok_sandbox().config();
        let graph = self.graph_sandbox().config();
        let x = self.x_sandbox().config();
        let youtube = self.youtube_sandbox().config();
        let library = library(state, client)
            .await
            .context("adding the demo's files to the media library")?;
        let mut seeded = Vec::new();
        for (network, external_id, token) in [
            (
                Network::Vk,
                vk.group_id.to_string(),
                vk.access_token.clone(),
            ),
            (Network::Ok, ok.group_id.clone(), ok.access_token.clone()),
            (
                Network::Facebook,
                graph.page_id.clone(),
                graph.page_token.clone(),
            ),
            (
                Network::Instagram,
                graph.ig_user_id.clone(),
                graph.page_token.clone(),
            ),
            (Network::X, x.user_id.clone(), x.access_token.clone()),
            (
                Network::Youtube,
                youtube.channel_id.clone(),
                youtube.access_token.clone(),
            ),
        ] {
            let profile = profile(state, client, network, &external_id, &token)
                .await
                .with_context(|| format!("connecting the demo's {} profile", network.as_str()))?;
            let connector = state
                .social
                .network(client, profile)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let posts = publish(state, client, network, connector.as_ref(), &library)
                .await
                .with_context(|| format!("publishing on the demo's {}", network.as_str()))?;
            seeded.push(Seeded { network, posts });
        }
        // Whoever runs the server sets the Meta application's callbacks once, in its
        // dashboard: the fake asks for the handshake with the verify token there.
        for (object, network) in [
            ("page", Network::Facebook),
            ("instagram", Network::Instagram),
        ] {
            let url = hooks_base(state, network);
            self.graph_sandbox()
                .configure_callback(object, url.trim_end_matches('/'), META_VERIFY_TOKEN)
                .await
                .map_err(|e| anyhow::anyhow!("the Meta app's `{object}` callback: {e}"))?;
        }
        tokio::spawn(async move {
            for n in 0usize.. {
                let pause = if n < seeded.len() {
                    FIRST_ROUND_GAP
                } else {
                    Duration::from_secs(rand::rng().random_range(COMMENT_PACE_SECS))
                };
                tokio::time::sleep(pause).await;
                let on = &seeded[n % seeded.len()];
                let post = &on.posts[(n / seeded.len()) % on.posts.len()];
                let text = COMMENTS[n % COMMENTS.len()];
                if !self.comment(on.network, post, n, text).await {
                    tracing::warn!(%post, network = on.network.as_str(), "a demo comment under a post that is gone");
                }
            }
        });
        Ok(())
    }

    /// Someone comments `text` under `post` on the network's fake, which delivers it its own
    /// way; false when the post is gone.
    async fn comment(&self, network: Network, post: &str, n: usize, text: &str) -> bool {
        let who = n % PEOPLE.len();
        let (name, handle) = PEOPLE[who];
        let number = 90_001 + who as i64;
        match network {
            Network::Vk => self
                .vk_sandbox()
                .customer_comments(post.parse().unwrap_or_default(), number, text, None)
                .await
                .is_some(),
            Network::Ok => self
                .ok_sandbox()
                .person_comments(post, &format!("5700000{number}"), text, None)
                .is_some(),
            Network::Facebook => {
                let person = Person {
                    id: format!("61000000000{number}"),
                    name: name.to_string(),
                };
                self.graph_sandbox()
                    .person_comments(post, &person, text, None)
                    .await
                    .is_some()
            }
            Network::Instagram => {
                let person = Person {
                    id: format!("17841000000{number}"),
                    name: handle.to_string(),
                };
                self.graph_sandbox()
                    .person_comments_on_media(post, &person, text, None)
                    .await
                    .is_some()
            }
            Network::X => self
                .x_sandbox()
                .person_replies(post, &format!("16000000000000{number}"), handle, text)
                .await
                .is_some(),
            Network::Youtube => self
                .youtube_sandbox()
                .person_comments(
                    post,
                    &format!("UCdemoViewer0000000{number}"),
                    name,
                    text,
                    None,
                )
                .is_some(),
            _ => false,
        }
    }
}

/// The client's profile of `external_id` on `network`: connected now, or (connected on an
/// earlier start) with its events pointed at this run's address.
async fn profile(
    state: &AppState,
    client: ClientId,
    network: Network,
    external_id: &str,
    token: &str,
) -> anyhow::Result<ChannelId> {
    let hooks = hooks_base(state, network);
    let existing = state.store.list_social_profiles(client).await?;
    if let Some(profile) = existing
        .iter()
        .find(|p| p.network == network.as_str() && p.external_id == external_id)
    {
        let connector = state
            .social
            .network(client, profile.id)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        connector
            .subscribe(&format!("{hooks}{}", profile.id))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        return Ok(profile.id);
    }
    let profile = state
        .social
        .connect(&ProfileToConnect {
            client,
            network,
            external_id,
            access_token: token,
            refresh_token: None,
            token_expires_at: None,
            kept: &[],
            hooks_base: &hooks,
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(profile.id)
}

/// The demo's files in the client's media library.
struct Library {
    photo: uuid::Uuid,
    video: uuid::Uuid,
}

/// Finds the demo's photo and video in the client's media library, adding those missing (as
/// an upload does: into the media store, then a library row).
async fn library(state: &AppState, client: ClientId) -> anyhow::Result<Library> {
    let files = state.store.list_social_media(client).await?;
    let mut ids = Vec::new();
    for (name, mime, bytes) in [
        (
            DEMO_PHOTO,
            "image/jpeg",
            omnihub_sandbox::SAMPLE_JPEG.to_vec(),
        ),
        (DEMO_VIDEO, "video/mp4", demo_clip()),
    ] {
        if let Some(file) = files.iter().find(|f| f.file_name == name) {
            ids.push(file.id);
            continue;
        }
        use futures_util::StreamExt as _;
        let size = bytes.len() as u64;
        let stream = futures_util::stream::once(async move {
            Ok::<_, std::io::Error>(bytes::Bytes::from(bytes))
        })
        .boxed();
        let put = state.media.put(stream, size).await?;
        let file = state
            .store
            .create_social_media(&omnihub_store::NewSocialMedia {
                client_id: client,
                file_name: name.to_string(),
                mime_type: mime.to_string(),
                size: i64::try_from(put.size).unwrap_or(i64::MAX),
                storage_key: put.key,
                uploaded_by: None,
            })
            .await?;
        ids.push(file.id);
    }
    Ok(Library {
        photo: ids[0],
        video: ids[1],
    })
}

/// A few kilobytes that are an MP4 file by their first box (`ftyp`, brand `isom`): enough
/// for the fakes, small enough for the demo's memory.
fn demo_clip() -> Vec<u8> {
    let mut bytes = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2".to_vec();
    bytes.extend((0..4096u32).map(|i| (i % 251) as u8));
    bytes
}

/// Publishes the demo's posts (with the library's photo on Instagram, as the library's video
/// on YouTube); their ids on the network.
async fn publish(
    state: &AppState,
    client: ClientId,
    network: Network,
    connector: &dyn SocialNetwork,
    library: &Library,
) -> anyhow::Result<Vec<String>> {
    let media = match network {
        Network::Instagram => Some(vec![library.photo]),
        Network::Youtube => Some(vec![library.video]),
        _ => None,
    };
    let mut posts = Vec::new();
    for (n, (text, tags)) in POSTS.iter().enumerate() {
        let content = PostContent {
            text: Some((*text).to_string()),
            hashtags: Some(tags.iter().map(|t| (*t).to_string()).collect()),
            media: media.clone(),
            ..PostContent::default()
        };
        let wire = state
            .social
            .wire(client, network, &content)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let id = connector
            .create_post(&wire, &format!("demo-post-{n}"))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        posts.push(id);
    }
    Ok(posts)
}
