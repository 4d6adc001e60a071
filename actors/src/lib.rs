//! omnihub-actors: the supervised actor tree that does omnihub's long-running work. Its root
//! supervisor is meant to own per-client supervisors, which own the channel-account,
//! conversation and operator-session actors, next to a router and a scheduler. Today it is the
//! root and its first child, the janitor, which removes expired sessions, invites and reset
//! tokens.
//!
//! Children are restarted with exponential back-off after a panic or an error, and given up on
//! (reported as failed in [`HubHealth`], never taking anything else down) when they keep
//! failing; see [`RestartPolicy`]. The crate's API is [`Hub`] and plain data: ractor's types
//! stay inside, so the actor library can change without touching callers. It must not depend
//! on actix or on connectors' HTTP details; it talks to the outside through the store and,
//! later, through connector traits.

mod health;
mod hub;
mod janitor;
mod restart;
mod supervisor;

pub use health::{ChildHealth, ChildStatus, HubHealth};
pub use hub::{Hub, HubConfig, HubError};
pub use restart::{Decision, RestartPolicy};

#[cfg(test)]
mod tests;
