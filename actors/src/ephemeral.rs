//! Pushes that are not stored (typing, presence) reach the consoles of every node: the node
//! where they happen publishes them to its own sessions at once and announces them through the
//! store (`HubStore::announce`, PostgreSQL `NOTIFY`); the other nodes' listeners hand them to
//! their own publishers. A node ignores its own announcements, having published them already.
//! On SQLite there is one node and announcing does nothing.

use std::sync::Arc;

use omnihub_core::access::ConversationScope;
use omnihub_core::routing::Presence;
use omnihub_core::{ChannelId, ClientId, ConversationId, GroupId, UserId};
use serde::{Deserialize, Serialize};

use crate::hub::{ConversationScopeWithId, ServerPush, Typist};
use crate::publisher::PublisherMsg;
use crate::shared::Shared;

/// One announcement between nodes. Internal: every node runs the same version of it.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Announced {
    /// The node that published it to its own sessions already.
    pub node: String,
    #[serde(flatten)]
    pub push: Ephemeral,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Ephemeral {
    /// Someone typing in a conversation: an operator (`user_id`) or the customer (none).
    Typing {
        conversation_id: ConversationId,
        channel_id: ChannelId,
        assignee_id: Option<UserId>,
        group_id: Option<GroupId>,
        user_id: Option<UserId>,
    },
    Presence {
        user_id: UserId,
        presence: Presence,
    },
}

impl Ephemeral {
    pub fn typing(conversation: &ConversationScopeWithId, typist: Typist) -> Ephemeral {
        Ephemeral::Typing {
            conversation_id: conversation.conversation_id,
            channel_id: conversation.scope.channel_id,
            assignee_id: conversation.scope.assignee_id,
            group_id: conversation.scope.group_id,
            user_id: match typist {
                Typist::Operator(user) => Some(user),
                Typist::Contact => None,
            },
        }
    }

    fn message(self) -> PublisherMsg {
        match self {
            Ephemeral::Typing {
                conversation_id,
                channel_id,
                assignee_id,
                group_id,
                user_id,
            } => PublisherMsg::Typing {
                conversation: Arc::new(ConversationScopeWithId {
                    conversation_id,
                    scope: ConversationScope {
                        channel_id,
                        assignee_id,
                        group_id,
                    },
                }),
                typist: user_id.map_or(Typist::Contact, Typist::Operator),
            },
            Ephemeral::Presence { user_id, presence } => {
                PublisherMsg::Push(ServerPush::Presence { user_id, presence })
            }
        }
    }
}

/// Publishes `push` to this node's sessions of `client`, then announces it to the other nodes
/// (in the background: an ephemeral push is not worth waiting for, nor retrying).
pub(crate) fn publish(shared: &Arc<Shared>, client: ClientId, push: Ephemeral) {
    // No subtree on this node means no session here to tell.
    if let Some(refs) = shared.entry(client).and_then(|e| e.refs()) {
        let _ = refs.publisher.cast(push.clone().message());
    }
    let announced = Announced {
        node: shared.config.node_id.clone(),
        push,
    };
    let Ok(payload) = serde_json::to_string(&announced) else {
        return;
    };
    let store = shared.store.clone();
    tokio::spawn(async move {
        if let Err(err) = store.announce(client, &payload).await {
            tracing::debug!(%client, error = %err, "could not announce to other nodes");
        }
    });
}

/// Hands what another node announced to this node's sessions of `client`.
pub(crate) fn deliver(shared: &Shared, client: ClientId, payload: &str) {
    let announced: Announced = match serde_json::from_str(payload) {
        Ok(announced) => announced,
        Err(err) => {
            tracing::warn!(%client, error = %err, "unreadable announcement from another node");
            return;
        }
    };
    if announced.node == shared.config.node_id {
        return;
    }
    if let Some(refs) = shared.entry(client).and_then(|e| e.refs()) {
        let _ = refs.publisher.cast(announced.push.message());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_read_back_as_written() {
        let typing = Announced {
            node: "node-a".into(),
            push: Ephemeral::Typing {
                conversation_id: ConversationId::new(),
                channel_id: ChannelId::new(),
                assignee_id: Some(UserId::new()),
                group_id: None,
                user_id: None,
            },
        };
        let text = serde_json::to_string(&typing).unwrap();
        assert!(text.contains(r#""kind":"typing""#), "{text}");
        assert_eq!(serde_json::from_str::<Announced>(&text).unwrap(), typing);
        let presence = Announced {
            node: "node-b".into(),
            push: Ephemeral::Presence {
                user_id: UserId::new(),
                presence: Presence::Away,
            },
        };
        let text = serde_json::to_string(&presence).unwrap();
        assert_eq!(serde_json::from_str::<Announced>(&text).unwrap(), presence);
    }
}
