//! Every route, grouped by who uses it. Paths here and the `#[utoipa::path]` annotations on the
//! handlers must agree: a test checks that each registered route is documented.

use actix_web::web;

pub mod account;
pub mod attachments;
pub mod audit;
pub mod calls;
pub mod channel_connection;
pub mod channels;
pub mod contacts;
pub mod conversations;
pub mod employees;
pub mod groups;
pub mod hooks;
pub mod invites;
pub mod media_links;
pub mod platform;
pub mod provider_hooks;
pub mod quick_replies;
pub mod routing;
pub mod social;
pub mod social_hooks;
pub mod social_oauth;
pub mod system;
pub mod tasks;
pub mod tokens;
pub mod triggers;

pub fn configure(cfg: &mut web::ServiceConfig) {
    system::configure(cfg);
    // Provider webhooks live outside /api/v1: their addresses are part of the external contract.
    hooks::configure(cfg);
    social_hooks::configure_app_callbacks(cfg);
    provider_hooks::configure(cfg);
    social_hooks::configure(cfg);
    social_oauth::configure_callback(cfg);
    // Signed links to outgoing files, fetched by providers (Viber) without signing in.
    media_links::configure(cfg);
    // Before the /api/v1 scope, which would otherwise take (and 404) the public widget API.
    crate::widget::configure(cfg);
    cfg.service(
        web::scope("/api/v1")
            .configure(account::configure)
            .configure(platform::configure)
            .configure(employees::configure)
            .configure(groups::configure)
            .configure(channels::configure)
            .configure(channel_connection::configure)
            .configure(invites::configure)
            .configure(tokens::configure)
            .configure(audit::configure)
            .configure(conversations::configure)
            .configure(calls::configure)
            .configure(attachments::configure)
            .configure(contacts::configure)
            .configure(quick_replies::configure)
            .configure(routing::configure)
            .configure(tasks::configure)
            .configure(triggers::configure)
            .configure(social::configure)
            .configure(social_oauth::configure)
            .configure(crate::ws::configure)
            .configure(crate::widget::configure_api)
            .route("/openapi.json", web::get().to(crate::http::openapi::serve)),
    );
}
