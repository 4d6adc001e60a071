//! The servers the `api` suite loads: the bare baseline, omnihub's whole application, and (for
//! `--layers`) the bare handler with one or all of omnihub's per-request layers added, which
//! tells what each layer costs.
//!
//! Every one runs in this process on 127.0.0.1 with [`WORKERS`] worker thread(s) and answers
//! `GET` [`PATH`] with the same JSON body.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::{HttpServer, web};
use anyhow::Context as _;
use omnihub::AppState;
use omnihub::http::extract::{Auth, OwnAccount};
use serde_json::Value;

/// The route measured: `/auth/me` answers from the authentication cache, no store round trip.
pub const PATH: &str = "/api/v1/auth/me";
/// Worker threads of each server: one, so the load generator has the other core of two.
pub const WORKERS: usize = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// actix-web with one route whose handler serialises the JSON body: the baseline.
    Bare,
    /// Bare plus omnihub's `observe` middleware (request id, language, tracing span, security
    /// headers, metrics).
    Observe,
    /// Bare plus the `Auth<OwnAccount>` extractor (API token → cache → rights decision).
    Auth,
    /// Bare plus both, stacked as `create_app` stacks them.
    Stack,
    /// omnihub's `create_app`, as `omnihub serve` runs it with `server.plain_http`.
    Omnihub,
}

impl Variant {
    /// The layers, in the order `--layers` measures them.
    pub const LAYERS: [Variant; 3] = [Variant::Observe, Variant::Auth, Variant::Stack];

    pub fn label(self) -> &'static str {
        match self {
            Variant::Bare => "bare",
            Variant::Observe => "bare+observe",
            Variant::Auth => "bare+auth",
            Variant::Stack => "bare+both",
            Variant::Omnihub => "omnihub",
        }
    }
}

pub struct Server {
    pub variant: Variant,
    pub addr: SocketAddr,
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Stops accepting, lets open connections finish (for a second at most) and waits.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.handle.stop(true).await;
        self.task
            .await
            .context("a server task panicked")?
            .with_context(|| format!("the {} server failed", self.variant.label()))
    }
}

/// Evaluates `$then` with `$make` bound to a `Fn() -> App<…>` (`Send + Clone`, as
/// `HttpServer::new` wants) that builds `$variant`'s application; one arm per variant because
/// each is a different type.
macro_rules! with_app {
    ($variant:expr, $state:expr, $body:expr, |$make:ident| $then:expr) => {{
        use actix_web::middleware::from_fn;
        use actix_web::{App, web};
        use omnihub::http::middleware::observe;
        use $crate::apps::{PATH, Variant, authenticated, bare};
        let state: omnihub::AppState = $state.clone();
        let body: std::sync::Arc<serde_json::Value> = $body.clone();
        match $variant {
            Variant::Bare => {
                let $make = move || {
                    App::new()
                        .app_data(web::Data::from(body.clone()))
                        .route(PATH, web::get().to(bare))
                };
                $then
            }
            Variant::Observe => {
                let $make = move || {
                    App::new()
                        .app_data(web::Data::new(state.clone()))
                        .app_data(web::Data::from(body.clone()))
                        .route(PATH, web::get().to(bare))
                        .wrap(from_fn(observe))
                };
                $then
            }
            Variant::Auth => {
                let $make = move || {
                    App::new()
                        .app_data(web::Data::new(state.clone()))
                        .app_data(web::Data::from(body.clone()))
                        .route(PATH, web::get().to(authenticated))
                };
                $then
            }
            Variant::Stack => {
                let $make = move || {
                    App::new()
                        .app_data(web::Data::new(state.clone()))
                        .app_data(web::Data::from(body.clone()))
                        .route(PATH, web::get().to(authenticated))
                        .wrap(from_fn(observe))
                };
                $then
            }
            Variant::Omnihub => {
                let $make = move || omnihub::create_app(state.clone());
                $then
            }
        }
    }};
}
pub(crate) use with_app;

/// Builds, binds and spawns one server on the current tokio runtime.
macro_rules! serve {
    ($variant:expr, $factory:expr) => {{
        let server = HttpServer::new($factory)
            .workers(WORKERS)
            .disable_signals()
            .shutdown_timeout(1)
            .bind(("127.0.0.1", 0))
            .with_context(|| format!("cannot bind the {} listener", $variant.label()))?;
        let addr = server
            .addrs()
            .first()
            .copied()
            .context("the server bound no address")?;
        let server = server.run();
        Server {
            variant: $variant,
            addr,
            handle: server.handle(),
            task: tokio::spawn(server),
        }
    }};
}

/// Starts `variant`; `body` is what the bare handler answers (a sample of omnihub's own).
pub fn start(variant: Variant, state: &AppState, body: &Arc<Value>) -> anyhow::Result<Server> {
    Ok(with_app!(variant, state, body, |make| serve!(
        variant, make
    )))
}

/// Serialises a JSON value per request, as `/auth/me` serialises its answer.
pub async fn bare(body: web::Data<Value>) -> web::Json<Value> {
    web::Json(body.get_ref().clone())
}

pub async fn authenticated(_: Auth<OwnAccount>, body: web::Data<Value>) -> web::Json<Value> {
    web::Json(body.get_ref().clone())
}
