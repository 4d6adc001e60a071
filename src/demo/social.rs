//! The demo's social profiles: the seeded client's community wall on the VK fake is connected
//! the way a person connects one (token checked, callback server confirmed), the wall gets a
//! few posts through the same connector publishing uses, and now and then someone comments
//! under them, so the comments show up in the inbox and the profile's posts carry counters.
//!
//! The fakes keep nothing across restarts: each start publishes the posts again and points
//! the wall's events at this run's address.

use std::time::Duration;

use anyhow::Context as _;
use omnihub_connectors::social::{Network, PostContent};
use omnihub_core::ClientId;
use rand::Rng as _;

use super::providers::DemoProviders;
use crate::http::routes::social::hooks_base;
use crate::social::ProfileToConnect;
use crate::state::AppState;

/// What the demo's wall says, Russian first like its customers.
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

impl DemoProviders {
    /// Connects (or, on later starts, reconnects) the client's VK wall, publishes the demo's
    /// posts on it and starts people commenting.
    pub async fn seed_social(
        self: std::sync::Arc<Self>,
        state: &AppState,
        client: ClientId,
    ) -> anyhow::Result<()> {
        let vk = self.vk_sandbox();
        let group = vk.config().group_id.to_string();
        let hooks = hooks_base(state, Network::Vk);
        let existing = state.store.list_social_profiles(client).await?;
        let profile = match existing
            .iter()
            .find(|p| p.network == Network::Vk.as_str() && p.external_id == group)
        {
            Some(profile) => {
                let wall = state
                    .social
                    .network(client, profile.id)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                wall.subscribe(&format!("{hooks}{}", profile.id))
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                profile.id
            }
            None => {
                state
                    .social
                    .connect(&ProfileToConnect {
                        client,
                        network: Network::Vk,
                        external_id: &group,
                        access_token: &vk.config().access_token,
                        refresh_token: None,
                        token_expires_at: None,
                        kept: &[],
                        hooks_base: &hooks,
                    })
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))
                    .context("connecting the demo's VK wall")?
                    .id
            }
        };
        let wall = state
            .social
            .network(client, profile)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut posts = Vec::new();
        for (n, (text, tags)) in POSTS.iter().enumerate() {
            let content = PostContent {
                text: (*text).to_string(),
                hashtags: tags.iter().map(|t| (*t).to_string()).collect(),
                ..PostContent::default()
            };
            let id = wall
                .create_post(&content, &format!("demo-post-{n}"))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            posts.push(id.parse::<i64>().unwrap_or_default());
        }
        tokio::spawn(async move {
            for n in 0usize.. {
                let pause = if n < 2 {
                    Duration::from_secs(2)
                } else {
                    Duration::from_secs(rand::rng().random_range(COMMENT_PACE_SECS))
                };
                tokio::time::sleep(pause).await;
                let post = posts[n % posts.len()];
                let person = 90_001 + (n % 4) as i64;
                let text = COMMENTS[n % COMMENTS.len()];
                if self
                    .vk_sandbox()
                    .customer_comments(post, person, text, None)
                    .await
                    .is_none()
                {
                    tracing::warn!(post, "demo comment under a post that is gone");
                }
            }
        });
        Ok(())
    }
}
