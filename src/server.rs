//! Start-up of the running service: opening and migrating the store, binding the HTTPS
//! listener (or plain HTTP behind a proxy), the plain-HTTP listener that only redirects to
//! HTTPS, and graceful shutdown on SIGINT/SIGTERM.
//!
//! The application itself (routes, middleware, security headers) is `crate::create_app`; this
//! module only decides where and how it is served.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, http::header, web};
use anyhow::Context as _;
use omnihub_store::{DynStore, SecretBox};

use crate::config::Config;
use crate::state::AppState;
use crate::tls;

/// How long in-flight requests get to finish after a shutdown signal.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);

/// Opens the configured store, creating the data directory first, and applies pending
/// migrations. Used by every command that touches data.
pub async fn open_store(config: &Config) -> anyhow::Result<DynStore> {
    let data_dir = &config.server.data_dir;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    config.secret_key_bytes().map_err(anyhow::Error::msg)?;
    let secrets = SecretBox::from_base64(config.security.secret_key.expose().trim())
        .map_err(|e| anyhow::anyhow!("security.secret_key: {e}"))?;
    let url = config.store_url();
    let store = omnihub_store::open_with_pool(&url, secrets, config.store.max_connections)
        .await
        .with_context(|| format!("cannot open the {} store", engine_name(&url)))?;
    store
        .migrate()
        .await
        .with_context(|| format!("cannot migrate the {} store", store.engine()))?;
    Ok(store)
}

fn engine_name(url: &str) -> &'static str {
    if url.starts_with("sqlite:") {
        "SQLite"
    } else {
        "PostgreSQL"
    }
}

/// Serves the application until SIGINT or SIGTERM, then lets in-flight requests finish.
pub async fn run(config: Arc<Config>, state: AppState) -> anyhow::Result<()> {
    let listen: SocketAddr = config.server.listen.parse().with_context(|| {
        format!(
            "server.listen: `{}` is not an address",
            config.server.listen
        )
    })?;

    let app_state = state.clone();
    let mut app = HttpServer::new(move || crate::create_app(app_state.clone()))
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_TIMEOUT.as_secs());
    if config.server.workers > 0 {
        app = app.workers(config.server.workers);
    }

    let mut servers = Vec::new();
    if config.tls_enabled() {
        let mut tls_config = tls::server_config(&config).await?;
        // actix-web puts h2 and http/1.1 in front of the configured protocols itself; keep
        // only the extra ones (acme-tls/1) so each is offered once.
        tls_config
            .alpn_protocols
            .retain(|p| !tls::ALPN_HTTP.contains(&p.as_slice()));
        app = app
            .bind_rustls_0_23(listen, tls_config)
            .with_context(|| format!("cannot listen on {listen}"))?;
        let bound = first_addr(&app.addrs(), listen);
        announce("https", bound, &config);
        servers.push(app.run());

        if !config.server.redirect_listen.is_empty() {
            let redirect_addr: SocketAddr =
                config.server.redirect_listen.parse().with_context(|| {
                    format!(
                        "server.redirect_listen: `{}` is not an address",
                        config.server.redirect_listen
                    )
                })?;
            let target = RedirectTarget {
                https_port: bound.port(),
                fallback_host: url_host(&config.server.public_url),
            };
            let redirect = HttpServer::new(move || {
                App::new()
                    .app_data(web::Data::new(target.clone()))
                    .default_service(web::to(redirect_to_https))
            })
            .workers(1)
            .disable_signals()
            .shutdown_timeout(1)
            .bind(redirect_addr)
            .with_context(|| {
                format!("cannot listen on {redirect_addr} (server.redirect_listen)")
            })?;
            let bound = first_addr(&redirect.addrs(), redirect_addr);
            tracing::info!(addr = %bound, "redirecting plain HTTP to HTTPS");
            servers.push(redirect.run());
        }
    } else {
        tracing::warn!(
            "server.plain_http is on: serving PLAIN HTTP on {listen} without TLS. Passwords and \
             session cookies cross the network in clear text unless a reverse proxy in front \
             terminates TLS. Never expose this listener directly."
        );
        app = app
            .bind(listen)
            .with_context(|| format!("cannot listen on {listen}"))?;
        let bound = first_addr(&app.addrs(), listen);
        announce("http", bound, &config);
        servers.push(app.run());
    }

    // Mailboxes and long-polled bots: read from here, on the main runtime.
    let pollers = crate::pollers::start(state.clone());
    // Calls a restart or a lost webhook left without an outcome.
    let sweep = crate::callback::CallSweep::start(state.clone());
    let handles: Vec<_> = servers.iter().map(|s| s.handle()).collect();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        for handle in &handles {
            handle.stop(true).await;
        }
    });
    let served = futures_util::future::try_join_all(servers).await;
    // Another node may take this one's channels over at once.
    pollers.stop().await;
    sweep.abort();
    // The state's tree (started by `AppState::build`) stops after the HTTP servers, so
    // in-flight requests could still reach it; open sockets were closed by the servers' stop.
    state.hub_tree.stop().await;
    served.context("server failed")?;
    tracing::info!("stopped");
    Ok(())
}

fn first_addr(addrs: &[SocketAddr], requested: SocketAddr) -> SocketAddr {
    addrs.first().copied().unwrap_or(requested)
}

fn announce(scheme: &str, bound: SocketAddr, config: &Config) {
    let shown = if bound.ip().is_unspecified() {
        format!("{scheme}://localhost:{}/", bound.port())
    } else {
        format!("{scheme}://{bound}/")
    };
    println!(
        "omnihub is listening on {shown} (public URL {})",
        config.server.public_url
    );
    tracing::info!(addr = %bound, scheme, "listening");
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the server")
            }
        }
    }
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::error!(error = %e, "cannot listen for Ctrl-C");
        std::future::pending::<()>().await;
    }
}

#[derive(Clone, Debug)]
struct RedirectTarget {
    https_port: u16,
    /// Used when a request names no usable host.
    fallback_host: String,
}

async fn redirect_to_https(req: HttpRequest, target: web::Data<RedirectTarget>) -> HttpResponse {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let location = redirect_location(host, &target, path);
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// `https://HOST[:PORT]/path?query` for a plain-HTTP request, where HOST comes from the request
/// when it is a plain host name or IP literal and from the public URL otherwise.
fn redirect_location(host_header: Option<&str>, target: &RedirectTarget, path: &str) -> String {
    let host = host_header
        .map(strip_port)
        .filter(|h| is_plain_host(h))
        .unwrap_or(&target.fallback_host);
    let path = if path.starts_with('/') { path } else { "/" };
    if target.https_port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{}{path}", target.https_port)
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // [v6]:port
        match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        }
    } else {
        host.split(':').next().unwrap_or(host)
    }
}

fn is_plain_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// The host (with brackets for IPv6, without port) of an http(s) URL.
fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = strip_port(authority);
    if is_plain_host(host) {
        host.to_string()
    } else {
        "localhost".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(port: u16) -> RedirectTarget {
        RedirectTarget {
            https_port: port,
            fallback_host: "omnihub.example.com".into(),
        }
    }

    #[test]
    fn redirects_keep_host_and_path_and_use_the_https_port() {
        let t = target(8443);
        assert_eq!(
            redirect_location(Some("example.org:8080"), &t, "/api/v1/x?y=1"),
            "https://example.org:8443/api/v1/x?y=1"
        );
        assert_eq!(
            redirect_location(Some("[::1]:8080"), &t, "/"),
            "https://[::1]:8443/"
        );
        assert_eq!(
            redirect_location(Some("127.0.0.1"), &target(443), "/a"),
            "https://127.0.0.1/a"
        );
    }

    #[test]
    fn odd_hosts_fall_back_to_the_public_url() {
        let t = target(443);
        for bad in [
            None,
            Some(""),
            Some("evil.com/x"),
            Some("a@b"),
            Some("[zz]:80"),
            Some("a b"),
        ] {
            assert_eq!(
                redirect_location(bad, &t, "/p"),
                "https://omnihub.example.com/p",
                "{bad:?}"
            );
        }
        assert_eq!(redirect_location(Some("x.org"), &t, "*"), "https://x.org/");
    }

    #[test]
    fn public_url_host() {
        assert_eq!(
            url_host("https://omnihub.example.com:8443/base"),
            "omnihub.example.com"
        );
        assert_eq!(url_host("http://[::1]:80"), "[::1]");
        assert_eq!(url_host("https://localhost"), "localhost");
    }

    #[actix_web::test]
    async fn redirect_service_answers_308_with_location() {
        use actix_web::test;
        let app = test::init_service(
            App::new()
                .app_data(web::Data::new(target(9443)))
                .default_service(web::to(redirect_to_https)),
        )
        .await;
        let req = test::TestRequest::post()
            .uri("/api/v1/auth/login?next=%2F")
            .insert_header((header::HOST, "omni.example.org:8080"))
            .to_request();
        let resp = test::call_service(&app, req).await;
        assert_eq!(resp.status().as_u16(), 308);
        assert_eq!(
            resp.headers().get(header::LOCATION).unwrap(),
            "https://omni.example.org:9443/api/v1/auth/login?next=%2F"
        );
    }
}
