//! What the tree reports about itself. Plain data, so the HTTP layer can render it without
//! knowing anything about actors.

use omnihub_core::{ChannelId, ClientId};

/// A snapshot of the supervised tree, from [`crate::Hub::health`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct HubHealth {
    /// Whether the root supervisor is running. When it is not, nothing below it runs either,
    /// whatever `children` last said.
    pub root_running: bool,
    /// The root's own children (janitor, scheduler, event listener), in start order.
    pub children: Vec<ChildHealth>,
    /// One entry per client whose subtree this node has started (lazily, on first use).
    pub clients: Vec<ClientHealth>,
}

impl HubHealth {
    /// The entry of the child called `name`, if the root has such a child.
    pub fn child(&self, name: &str) -> Option<&ChildHealth> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The entry of one client's subtree, if this node has started it.
    pub fn client(&self, id: ClientId) -> Option<&ClientHealth> {
        self.clients.iter().find(|c| c.client_id == id)
    }

    /// True when the root and every child of the root are running. A child waiting out its
    /// back-off counts as unhealthy, so a crash loop shows up even before the root gives up on
    /// it. Clients are not part of it: one tenant's failed subtree must not take the node out
    /// of a load balancer for everyone else; see [`HubHealth::failed_clients`].
    pub fn is_healthy(&self) -> bool {
        self.root_running
            && self
                .children
                .iter()
                .all(|c| c.status == ChildStatus::Running)
    }

    /// Clients whose subtree was given up on after too many restarts.
    pub fn failed_clients(&self) -> impl Iterator<Item = &ClientHealth> {
        self.clients
            .iter()
            .filter(|c| c.status == ChildStatus::Failed)
    }
}

/// One supervised child.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ChildHealth {
    pub name: String,
    pub status: ChildStatus,
    /// How many times the child was started again after going down (attempts, including
    /// ones whose start itself failed).
    pub restarts: u32,
    /// Why the child last went down, if it ever did.
    pub last_failure: Option<String>,
}

/// One client's subtree (its supervisor, publisher, router, channel, conversation and session
/// actors).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ClientHealth {
    pub client_id: ClientId,
    /// `Failed`: the hub answers this client's calls with `HubError::Unavailable` until the
    /// hub is started again.
    pub status: ChildStatus,
    pub restarts: u32,
    pub last_failure: Option<String>,
    /// Channel-account actors given up on after too many restarts; their pending messages
    /// stay pending (and are sent after the next start).
    pub failed_channels: Vec<ChannelId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChildStatus {
    Running,
    /// Went down (or is starting); a (re)start is scheduled after the back-off.
    Restarting,
    /// Went down too often within the policy's window; it is left down until the hub is
    /// started again.
    Failed,
}
