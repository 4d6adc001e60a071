//! omnihub-actors: the realtime hub, a supervised actor tree on ractor behind a small API of
//! its own ([`Hub`], [`HubHandle`] and plain data), so the actor library can change without
//! touching callers.
//!
//! ```text
//! root supervisor
//! ├── janitor            (expired sessions, invites, reset tokens)
//! ├── scheduler          (durable tasks: claim, run, complete or retry; recurring tasks and
//! │                       catch-up after downtime; time from a `Clock`)
//! ├── event listener     (cross-node commits via store.listen_events → publishers)
//! └── client supervisor  (one per client, started on first use, kept)
//!     ├── publisher      (store.events_after in seq order → the client's sessions)
//!     ├── router         (core::routing over store.routing_snapshot; FIFO queue; auto-replies)
//!     ├── conversation actors    (one per active conversation; stop when idle)
//!     ├── channel-account actors (one per channel; rate-limited sends with retries)
//!     └── sessions       (one light actor per console or widget visitor socket — a task
//!                            and a bounded mailbox — fed by the publisher, ending with it)
//! ```
//!
//! Children are restarted with exponential back-off after a panic or an error, and given up on
//! (reported as failed in [`HubHealth`], never taking anything else down) when they keep
//! failing; see [`RestartPolicy`]. A client subtree given up on answers that client's calls
//! with [`HubError::Unavailable`]; other clients are not affected. Actors cache and serialize;
//! the store is the truth: whatever an actor was doing when it died is found again in the store
//! (unrouted conversations, pending messages, due tasks) when it starts again.
//!
//! The crate must not depend on actix; it talks to the outside through the store, the
//! connectors' `OutboundChannel` trait and the [`SessionSink`] the HTTP layer implements.

mod channel;
mod client;
mod clock;
mod conversation;
mod ephemeral;
mod health;
mod hub;
mod ingest;
mod janitor;
mod listener;
mod media;
mod publisher;
mod restart;
mod router;
mod scheduler;
mod session;
mod shared;
mod supervisor;
mod triggers;

pub use clock::{Clock, ManualClock, SystemClock};
pub use health::{ChildHealth, ChildStatus, ClientHealth, HubHealth};
pub use hub::{
    CloseReason, ConversationScopeWithId, DEFAULT_MAX_ATTACHMENT_BYTES, Hub, HubConfig, HubError,
    HubHandle, ServerPush, SessionHandle, SessionSink, SinkClosed, Typist,
};
pub use restart::{Decision, RestartPolicy};
pub use scheduler::{TaskFailure, TaskHandler, TaskHandlers};

#[cfg(test)]
mod tests;
