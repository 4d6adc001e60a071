//! Authentication: who is calling. Password hashing, random secrets and their hashes, second
//! factor, the short-lived cache of resolved callers, and sign-in throttling. Whether the caller
//! may do something is decided elsewhere, by `omnihub_core::decide`.

pub mod cache;
pub mod password;
pub mod throttle;
pub mod tokens;
pub mod totp;
