//! omnihub-core: the domain of omnihub — identifiers, roles and rights, the records every other
//! crate speaks about, and the pure rules that decide who may do what.
//!
//! It owns no IO: it must never depend on actix, sqlx, reqwest, tokio or any other crate that
//! touches the network, the disk or a clock it was not handed.

pub mod access;
pub mod conversation;
pub mod events;
pub mod ids;
pub mod media;
pub mod model;
pub mod rights;
pub mod routing;
pub mod schedule;
pub mod social;
pub mod triggers;
pub mod validate;

pub use access::{Action, Decision, Principal, decide};
pub use ids::*;
pub use rights::{ChannelRights, GlobalRights, Role};
