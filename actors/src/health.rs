//! What the tree reports about itself. Plain data, so the HTTP layer can render it without
//! knowing anything about actors.

/// A snapshot of the supervised tree, from [`crate::Hub::health`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubHealth {
    /// Whether the root supervisor is running. When it is not, nothing below it runs either,
    /// whatever `children` last said.
    pub root_running: bool,
    /// The root's children, in start order.
    pub children: Vec<ChildHealth>,
}

impl HubHealth {
    /// The entry of the child called `name`, if the root has such a child.
    pub fn child(&self, name: &str) -> Option<&ChildHealth> {
        self.children.iter().find(|c| c.name == name)
    }

    /// True when the root and every child are running. A child waiting out its back-off
    /// counts as unhealthy, so a crash loop shows up even before the root gives up on it.
    pub fn is_healthy(&self) -> bool {
        self.root_running
            && self
                .children
                .iter()
                .all(|c| c.status == ChildStatus::Running)
    }
}

/// One supervised child.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildHealth {
    pub name: String,
    pub status: ChildStatus,
    /// How many times the child was started again after going down (attempts, including
    /// ones whose start itself failed).
    pub restarts: u32,
    /// Why the child last went down, if it ever did.
    pub last_failure: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildStatus {
    Running,
    /// Went down; a restart is scheduled after the back-off.
    Restarting,
    /// Went down too often within the policy's window; it is left down until the hub is
    /// started again.
    Failed,
}
