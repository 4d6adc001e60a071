//! omnihub: the binary's library — configuration, start-up, TLS, and the HTTP + WebSocket layer
//! (`create_app`) shared by `main` and the tests.
//!
//! Handlers stay thin: extract, authorize (through the typed extractors in `http::extract`),
//! call the store, map the result. Domain rules live in `omnihub-core`; persistence in
//! `omnihub-store`; provider IO in `omnihub-connectors`.

pub mod auth;
pub mod callback;
pub mod config;
pub mod demo;
pub mod http;
pub mod i18n;
pub mod pollers;
pub mod server;
pub mod social;
pub mod state;
pub mod tls;
pub mod widget;
pub mod ws;

pub use http::create_app;
pub use state::AppState;
