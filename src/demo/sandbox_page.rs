//! The demo's sandbox page: the user writes as a customer on any of the demo's messengers, or
//! by e-mail, and sees what the business answers, as that customer would. A message goes
//! through the provider's fake exactly as a real customer's does (the fake delivers its signed
//! webhook to omnihub; a letter is delivered into the mailbox omnihub reads over IMAP), so it
//! lands in the inbox like any other; replies are read back from what the fake received from
//! omnihub's connector (for e-mail, what reached the SMTP sandbox). Served on its own local listener, apart from the
//! service's API, and only by `omnihub demo`.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::{App, HttpResponse, HttpServer, web};
use omnihub_core::model::Provider;
use serde::{Deserialize, Serialize};

use super::providers::{DemoProviders, SANDBOX_PROVIDERS, SandboxCustomer};

const PAGE: &str = include_str!("sandbox_page/index.html");
const SCRIPT: &str = include_str!("sandbox_page/sandbox.js");
/// Longest customer name and message the page accepts.
const MAX_NAME: usize = 64;
const MAX_TEXT: usize = 4000;

#[derive(Deserialize)]
struct Say {
    provider: Provider,
    customer: String,
    text: String,
}

#[derive(Deserialize)]
struct Who {
    provider: Provider,
    customer: String,
}

#[derive(Serialize)]
struct Replies {
    replies: Vec<String>,
}

/// Starts the page on `listen`; the returned server runs until stopped or the process ends.
pub fn start(
    providers: Arc<DemoProviders>,
    listen: &str,
) -> anyhow::Result<(SocketAddr, actix_web::dev::Server)> {
    let data = web::Data::from(providers);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::JsonConfig::default().limit(16 * 1024))
            .route("/", web::get().to(page))
            .route("/sandbox.js", web::get().to(script))
            .route("/api/providers", web::get().to(providers_list))
            .route("/api/say", web::post().to(say))
            .route("/api/replies", web::get().to(replies))
    })
    .workers(1)
    .bind(listen)?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| anyhow::anyhow!("the sandbox page is not listening"))?;
    Ok((addr, server.run()))
}

fn secured(mut response: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    response
        .insert_header((
            "content-security-policy",
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        ))
        .insert_header(("x-content-type-options", "nosniff"));
    response
}

async fn page() -> HttpResponse {
    secured(HttpResponse::Ok())
        .content_type("text/html; charset=utf-8")
        .body(PAGE)
}

async fn script() -> HttpResponse {
    secured(HttpResponse::Ok())
        .content_type("text/javascript; charset=utf-8")
        .body(SCRIPT)
}

async fn providers_list() -> HttpResponse {
    HttpResponse::Ok().json(
        SANDBOX_PROVIDERS
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>(),
    )
}

/// A 400 naming the field that is wrong.
fn bad(field: &'static str) -> HttpResponse {
    HttpResponse::BadRequest().json(serde_json::json!({ "error": field }))
}

/// The customer's name, checked: what the page sends is typed by a person.
fn customer(name: &str) -> Result<SandboxCustomer, &'static str> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err("customer");
    }
    Ok(SandboxCustomer::new(name))
}

fn provider(provider: Provider) -> Result<Provider, &'static str> {
    if SANDBOX_PROVIDERS.contains(&provider) {
        Ok(provider)
    } else {
        Err("provider")
    }
}

async fn say(providers: web::Data<DemoProviders>, body: web::Json<Say>) -> HttpResponse {
    let body = body.into_inner();
    let (provider, customer) = match (provider(body.provider), customer(&body.customer)) {
        (Ok(p), Ok(c)) => (p, c),
        (Err(field), _) | (_, Err(field)) => return bad(field),
    };
    let text = body.text.trim();
    if text.is_empty() || text.chars().count() > MAX_TEXT {
        return bad("text");
    }
    match providers.customer_writes(provider, &customer, text).await {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(err) => {
            tracing::warn!(error = %err, "a sandbox page message was not delivered");
            HttpResponse::BadGateway().json(serde_json::json!({ "error": "delivery" }))
        }
    }
}

async fn replies(providers: web::Data<DemoProviders>, who: web::Query<Who>) -> HttpResponse {
    let (provider, customer) = match (provider(who.provider), customer(&who.customer)) {
        (Ok(p), Ok(c)) => (p, c),
        (Err(field), _) | (_, Err(field)) => return bad(field),
    };
    HttpResponse::Ok().json(Replies {
        replies: providers.replies_to(provider, &customer),
    })
}
