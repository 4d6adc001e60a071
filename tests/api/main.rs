//! HTTP integration tests of omnihub: the whole application (`create_app`) in process on a fresh
//! SQLite database per test, plus the real binary for what only a process can show (HTTPS,
//! the redirect listener, the CLI).
//!
//! - `rights_matrix`: every route of the OpenAPI document × every role × own / other client.
//! - `bad_input`: malformed, oversized and forged input answers 4xx with a code and changes
//!   nothing.
//! - `auth_flows`: sign-in, lockout, throttling, second factor, session revocation, password
//!   reset by e-mail, invitations, blocked clients, and the audit trail of all of it.
//! - `process`: `omnihub demo` over HTTPS, its redirect listener, `omnihub config …`.
//! - `contacts`: the contact card's history across channels (only what the caller may see)
//!   and custom fields, and the routing settings the workspace edits.
//! - `hub`: the realtime hub over real sockets — webhooks, the operator WebSocket, outbound
//!   replies to a local receiver — and the REST inbox.
//! - `messengers`: each messenger provider's webhook and sends through the whole application,
//!   against the sandbox's fake of that provider.
//! - `nodes`: real `omnihub serve` processes — `kill -9` right after an acknowledgement and while
//!   scheduled tasks fire, and two nodes on one PostgreSQL database (cross-node pushes,
//!   assignment, scheduled tasks).
//! - `scheduler`: the scheduler's REST API (tasks and triggered-task rules) through the app.
//! - `social`: social profiles against the sandbox's VK fake — connecting, approval,
//!   scheduled publishing, comments into the inbox and their moderation, tenant isolation.
//! - `social_ok`: an OK group against the sandbox's OK fake — signed calls, publishing once,
//!   comments brought in by the poller exactly once, replies and likes, OK's refusals.
//! - `social_meta`: a Facebook Page and an Instagram account against the sandbox's Graph fake
//!   — connecting by token, a scheduled post with a photo fetched by its signed link, a
//!   comment webhook into the inbox once, the reply, hiding, and what the networks refuse.
//! - `social_x_youtube`: X and YouTube profiles against the sandbox's fakes — connecting
//!   (X's webhook through a CRC), publishing once, replies by webhook and comments by polling
//!   into the inbox, answers and moderation, the networks' refusals.
//! - `widget`: the website widget's public API and visitor WebSocket — origins and CORS,
//!   visitors kept apart, bad input, dedupe, rate limits, resume after a reconnect.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth_flows;
mod bad_input;
mod contacts;
mod hub;
mod messengers;
mod nodes;
mod process;
mod rights_matrix;
mod scheduler;
mod social;
mod social_meta;
mod social_ok;
mod social_x_youtube;
mod support;
mod telephony;
mod widget;
