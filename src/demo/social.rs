//! The demo's social profiles: the seeded client's VK community wall and OK group, both on the
//! sandbox's fakes, are connected the way a person connects them (token checked, events set
//! up), get a few posts through the same connectors publishing uses, and now and then someone
//! comments under them. VK delivers the comments by its Callback API, OK's are polled, and both
//! show up in the inbox; the profiles' posts carry counters.
//!
//! The fakes keep nothing across restarts: each start publishes the posts again and points the
//! profiles' events at this run's address.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use omnihub_connectors::social::{Network, PostContent, SocialNetwork};
use omnihub_core::{ChannelId, ClientId};
use rand::Rng as _;

use super::providers::DemoProviders;
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

/// How often someone comments, in seconds.
const COMMENT_PACE_SECS: std::ops::RangeInclusive<u64> = 20..=40;

/// One demo profile: where it is and what was posted on it this run.
struct Seeded {
    network: Network,
    posts: Vec<String>,
}

impl DemoProviders {
    /// Connects (or, on later starts, points again at this run) the client's VK wall and OK
    /// group, publishes the demo's posts on them and starts people commenting.
    pub async fn seed_social(
        self: Arc<Self>,
        state: &AppState,
        client: ClientId,
    ) -> anyhow::Result<()> {
        let vk = self.vk_sandbox().config();
        let ok = self.ok_sandbox().config();
        let mut seeded = Vec::new();
        for (network, external_id, token) in [
            (
                Network::Vk,
                vk.group_id.to_string(),
                vk.access_token.clone(),
            ),
            (Network::Ok, ok.group_id.clone(), ok.access_token.clone()),
        ] {
            let profile = profile(state, client, network, &external_id, &token)
                .await
                .with_context(|| format!("connecting the demo's {} profile", network.as_str()))?;
            let connector = state
                .social
                .network(client, profile)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            seeded.push(Seeded {
                network,
                posts: publish(connector.as_ref()).await?,
            });
        }
        tokio::spawn(async move {
            for n in 0usize.. {
                let pause = if n < 2 {
                    Duration::from_secs(2)
                } else {
                    Duration::from_secs(rand::rng().random_range(COMMENT_PACE_SECS))
                };
                tokio::time::sleep(pause).await;
                let on = &seeded[n % seeded.len()];
                let post = &on.posts[(n / seeded.len()) % on.posts.len()];
                let text = COMMENTS[n % COMMENTS.len()];
                let person = 90_001 + (n % 4) as i64;
                let commented = match on.network {
                    Network::Vk => self
                        .vk_sandbox()
                        .customer_comments(post.parse().unwrap_or_default(), person, text, None)
                        .await
                        .is_some(),
                    _ => self
                        .ok_sandbox()
                        .person_comments(post, &format!("5700000{person}"), text, None)
                        .is_some(),
                };
                if !commented {
                    tracing::warn!(%post, "a demo comment under a post that is gone");
                }
            }
        });
        Ok(())
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

/// Publishes the demo's posts; their ids on the network.
async fn publish(network: &dyn SocialNetwork) -> anyhow::Result<Vec<String>> {
    let mut posts = Vec::new();
    for (n, (text, tags)) in POSTS.iter().enumerate() {
        let content = PostContent {
            text: (*text).to_string(),
            hashtags: tags.iter().map(|t| (*t).to_string()).collect(),
            ..PostContent::default()
        };
        let id = network
            .create_post(&content, &format!("demo-post-{n}"))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        posts.push(id);
    }
    Ok(posts)
}
