//! Comments of networks that deliver no comment webhooks (a [`CommentDelivery::Polling`] row of
//! the capability matrix: OK, and YouTube later), fetched for each connected profile every
//! `[social] comments_poll_secs`. Generic over [`SocialNetwork`]: a poll lists the profile's
//! latest posts with their counters, and lists the comments of those whose comment count moved
//! since the last poll; each new comment goes through [`inbound::comment_arrived`] exactly as a
//! webhook's would (which dedupes by the comment's id), and new posts through
//! [`inbound::post_arrived`].
//!
//! The watermark is the profile's poll cursor (the store's `poll_cursors`, kept for every
//! polled channel): per watched post, the comment count seen and the id of the last comment
//! taken. It is written only after everything fetched was committed, so a crash re-fetches
//! rather than loses, and the next poll of an unchanged post costs no request at all.
//! Comments and posts from before the profile was connected are not brought in. A deletion
//! and a new comment under the same post within one interval leave the count unchanged; that
//! comment arrives with the post's next change.
//!
//! One node polls each profile: `pollers` holds the profile's lease (`poll_leases`) while it
//! runs [`poll_profile`], as for polled channels.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use omnihub_connectors::social::{self as net, CommentDelivery, RemoteComment};
use omnihub_core::model::{ChannelKind, Provider};
use omnihub_core::{ChannelId, ClientId};
use omnihub_store::StoreError;
use serde::{Deserialize, Serialize};

use super::inbound::{self, Profile};
use crate::state::AppState;

/// How many of a profile's latest posts are watched for comments.
pub const WATCHED_POSTS: u32 = 20;

/// Waits after a failed poll: doubling from the first up to the poll interval, at least this.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// The providers whose profiles' comments are polled.
pub fn polled_providers() -> Vec<Provider> {
    [
        Provider::Vk,
        Provider::Ok,
        Provider::Facebook,
        Provider::Instagram,
        Provider::X,
        Provider::Youtube,
    ]
    .into_iter()
    .filter(|p| {
        net::network_of(*p).is_some_and(|n| {
            let row = net::capabilities(n);
            row.comments == CommentDelivery::Polling && row.connect == net::Support::Supported
        })
    })
    .collect()
}

/// What was taken of one post's comments.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Mark {
    /// The post's comment count at the last poll.
    comments: u64,
    /// The last comment taken (in the network's order), when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last: Option<String>,
}

/// A profile's watermark: per watched post.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Watermark {
    posts: BTreeMap<String, Mark>,
}

/// Polls one profile until it is removed or its network stops being polled.
pub async fn poll_profile(state: AppState, client: ClientId, id: ChannelId) {
    let every = Duration::from_secs(state.config.social.comments_poll_secs.max(1));
    let mut retry = FIRST_RETRY;
    loop {
        match poll_comments_once(&state, client, id).await {
            Ok(true) => {
                retry = FIRST_RETRY;
                tokio::time::sleep(every).await;
            }
            Ok(false) => return,
            Err(err) => {
                tracing::warn!(profile = %id, error = %err, "polling comments failed; trying again");
                tokio::time::sleep(retry.max(FIRST_RETRY)).await;
                retry = (retry * 2).min(every.max(FIRST_RETRY));
            }
        }
    }
}

/// One poll of a profile's comments; false when the profile is gone or not polled.
pub async fn poll_comments_once(
    state: &AppState,
    client: ClientId,
    id: ChannelId,
) -> anyhow::Result<bool> {
    let channel = match state.store.get_channel(client, id).await {
        Ok(channel) => channel,
        Err(StoreError::NotFound) => return Ok(false),
        Err(err) => return Err(err.into()),
    };
    let Some(network) = net::network_of(channel.provider) else {
        return Ok(false);
    };
    if channel.kind != ChannelKind::Social
        || net::capabilities(network).comments != CommentDelivery::Polling
    {
        return Ok(false);
    }
    let connector = state
        .social
        .network(client, id)
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let profile = Profile {
        client,
        id,
        network,
    };
    let since = channel.created_at;
    let stored = state.store.poll_cursor(client, id).await?;
    let before: Watermark = stored
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default();
    let mut after = Watermark::default();
    let posts = connector.list_posts(WATCHED_POSTS).await?;
    for post in posts {
        let mark = before.posts.get(&post.id);
        if mark.is_none() && at_or_after(post.published_at, since) {
            inbound::post_arrived(&state.hub, profile, post.clone())
                .await
                .map_err(|err| anyhow::anyhow!("committing a polled post: {err:?}"))?;
        }
        if mark.is_some_and(|m| m.comments == post.counters.comments)
            || (mark.is_none() && post.counters.comments == 0)
        {
            after.posts.insert(
                post.id.clone(),
                mark.cloned().unwrap_or(Mark {
                    comments: post.counters.comments,
                    last: None,
                }),
            );
            continue;
        }
        let comments = match connector.list_comments(&post.id).await {
            Ok(comments) => comments,
            Err(err) if !err.is_transient() => {
                // The post went meanwhile, or its comments are closed: nothing to take.
                tracing::debug!(profile = %id, post = %post.id, error = %err, "comments not listed");
                continue;
            }
            Err(err) => return Err(err.into()),
        };
        let last_taken = mark.and_then(|m| m.last.as_deref());
        for comment in new_comments(&comments, last_taken, since) {
            inbound::comment_arrived(&state.hub, &state.store, profile, comment.clone())
                .await
                .map_err(|err| anyhow::anyhow!("committing a polled comment: {err:?}"))?;
        }
        after.posts.insert(
            post.id.clone(),
            Mark {
                comments: post.counters.comments,
                last: comments
                    .last()
                    .map(|c| c.id.clone())
                    .or_else(|| last_taken.map(str::to_string)),
            },
        );
    }
    if after != before || stored.is_none() {
        let cursor = serde_json::to_string(&after)?;
        state.store.set_poll_cursor(client, id, &cursor).await?;
    }
    Ok(true)
}

fn at_or_after(at: Option<DateTime<Utc>>, since: DateTime<Utc>) -> bool {
    // Networks date to the second: a comment in the second the profile was connected counts.
    at.is_none_or(|at| at.timestamp() >= since.timestamp())
}

/// The comments after the last one taken (all of them when it is gone or none was taken),
/// from the profile's connection on.
fn new_comments<'a>(
    comments: &'a [RemoteComment],
    last_taken: Option<&str>,
    since: DateTime<Utc>,
) -> impl Iterator<Item = &'a RemoteComment> {
    let start = last_taken
        .and_then(|last| comments.iter().position(|c| c.id == last))
        .map_or(0, |i| i + 1);
    comments[start..]
        .iter()
        .filter(move |c| at_or_after(c.created_at, since))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comment(id: &str, secs: i64) -> RemoteComment {
        RemoteComment {
            id: id.into(),
            post_id: "1".into(),
            author_id: "7".into(),
            text: String::new(),
            created_at: DateTime::from_timestamp(secs, 0),
            reply_to: None,
            by_profile: false,
        }
    }

    #[test]
    fn only_comments_after_the_watermark_and_the_connection_are_new() {
        let since = DateTime::from_timestamp(100, 500_000_000).unwrap_or_default();
        let all = [comment("a", 50), comment("b", 100), comment("c", 200)];
        let ids = |last| -> Vec<String> {
            new_comments(&all, last, since)
                .map(|c| c.id.clone())
                .collect()
        };
        assert_eq!(ids(None), ["b", "c"]);
        assert_eq!(ids(Some("b")), ["c"]);
        assert_eq!(ids(Some("c")), Vec::<String>::new());
        assert_eq!(ids(Some("gone")), ["b", "c"]);
    }

    #[test]
    fn ok_is_polled_and_vk_is_not() {
        let polled = polled_providers();
        assert!(polled.contains(&Provider::Ok));
        assert!(!polled.contains(&Provider::Vk));
    }
}
