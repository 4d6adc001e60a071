//! Local fake provider servers for tests and `omnihub demo`. Each module speaks one provider's
//! real wire contract closely enough that the production connector, pointed at it, cannot tell
//! the difference, and records what it received so a test can look at it. Nothing here depends
//! on omnihub's store or HTTP layer: the sandbox is something omnihub talks to, not part of it.

pub mod graph;
pub mod imap;
pub mod mail_servers;

/// A small photo (a 120×80 PNG) customers send in tests and in the demo.
pub const SAMPLE_PHOTO: &[u8] = include_bytes!("sample_photo.png");

/// A small JPEG (16×16, grey) for networks that take JPEG only (Instagram).
pub const SAMPLE_JPEG: &[u8] = include_bytes!("sample_photo.jpg");

pub mod max;
pub mod oauth;
pub mod ok;
pub mod smtp;
mod support;
pub mod telegram;
pub mod telephony;
pub mod viber;
pub mod vk;
pub mod webhook_delivery;
pub mod whatsapp;
pub mod x;
pub mod youtube;
