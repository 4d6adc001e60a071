//! What a network tells omnihub about a profile, however it arrives (its webhook, or omnihub's
//! polling where the network has no webhook): a new comment becomes a customer message in the
//! unified inbox, in the conversation of that person under that post (external id
//! `<post>:<author>`, tied to the post in `social_threads`), and every comment and post goes to
//! the client's trigger rules. Both are committed before the caller acknowledges the network;
//! a redelivery carries the same comment id and adds nothing, and triggered tasks key on the
//! item, so nothing fires twice.

use omnihub_actors::{HubError, HubHandle};
use omnihub_connectors::social::{self as net, Network, RemoteComment, RemotePost};
use omnihub_core::triggers::{ItemKind, SocialItem};
use omnihub_core::{ChannelId, ClientId};
use omnihub_store::{DynStore, InboundEvent, StoreError};

/// Longest text taken from a comment, in characters (as much as an operator's message).
const MAX_TEXT_CHARS: usize = 10_000;

/// Longest id taken from a network, in characters.
const MAX_ID_CHARS: usize = 200;

/// The profile something arrived for.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    pub client: ClientId,
    pub id: ChannelId,
    pub network: Network,
}

/// A person's new comment: into the inbox and through the triggers. Our own comments (replies
/// sent from the inbox) are in their conversations already and are skipped.
pub async fn comment_arrived(
    hub: &HubHandle,
    store: &DynStore,
    profile: Profile,
    comment: RemoteComment,
) -> Result<(), HubError> {
    if comment.by_profile {
        return Ok(());
    }
    let post = cut(&comment.post_id, MAX_ID_CHARS);
    let author = cut(&comment.author_id, MAX_ID_CHARS);
    let thread = net::thread_id(&post, &author);
    let text = match cut(&comment.text, MAX_TEXT_CHARS) {
        t if t.is_empty() => "…".to_string(),
        t => t,
    };
    hub.ingest(InboundEvent {
        client_id: profile.client,
        channel_id: profile.id,
        external_conversation_id: thread.clone(),
        external_user_id: author.clone(),
        contact_name: author_name(profile.network, &author),
        // The comment's id: a redelivery is the same message, and moderation actions name
        // the comment by it.
        provider_event_id: cut(&comment.id, MAX_ID_CHARS),
        text,
        attachments: Vec::new(),
    })
    .await?;
    let conversation = store
        .conversation_by_external_id(profile.client, profile.id, &thread)
        .await?
        .ok_or(HubError::Store(StoreError::NotFound))?;
    store
        .link_social_thread(profile.client, conversation, profile.id, &post)
        .await?;
    let item = SocialItem {
        client_id: profile.client,
        profile_id: profile.id.0,
        network: profile.network.as_str().into(),
        kind: ItemKind::Comment,
        remote_id: cut(&comment.id, MAX_ID_CHARS),
        parent_remote_id: Some(post),
        author_name: author_name(profile.network, &author),
        author_id: author,
        text: comment.text,
        created_at: comment.created_at.unwrap_or_else(chrono::Utc::now),
    };
    hub.social_item_arrived(&item).await?;
    Ok(())
}

/// A new post on the profile (made here or elsewhere): through the triggers.
pub async fn post_arrived(
    hub: &HubHandle,
    profile: Profile,
    post: RemotePost,
) -> Result<(), HubError> {
    let item = SocialItem {
        client_id: profile.client,
        profile_id: profile.id.0,
        network: profile.network.as_str().into(),
        kind: ItemKind::Post,
        remote_id: cut(&post.id, MAX_ID_CHARS),
        parent_remote_id: None,
        // A post on the profile is the profile's own: no author to match.
        author_id: String::new(),
        author_name: String::new(),
        text: post.text,
        created_at: post.published_at.unwrap_or_else(chrono::Utc::now),
    };
    hub.social_item_arrived(&item).await?;
    Ok(())
}

/// How a commenting person is named until the operator knows better: VK's own link form.
fn author_name(network: Network, author: &str) -> String {
    match network {
        Network::Vk if author.starts_with('-') => format!("club{}", &author[1..]),
        Network::Vk => format!("id{author}"),
        _ => author.to_string(),
    }
}

/// At most `max` characters, trimmed, without control characters but line breaks and tabs.
fn cut(s: &str, max: usize) -> String {
    s.trim()
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .take(max)
        .collect()
}
