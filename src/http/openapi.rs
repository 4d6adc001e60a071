//! The OpenAPI document: every route module contributes its own `Api`, merged here.

use actix_web::web;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::http::routes::*;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "omnihub API",
        description = "One inbox for every messenger, e-mail and website chat."
    ),
    paths(system::healthz, system::readyz, system::metrics, serve),
    components(schemas(crate::http::error::ErrorBody))
)]
struct Root;

/// Builds the document once per call; it is small and served rarely.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = Root::openapi();
    for part in [
        account::Api::openapi(),
        platform::Api::openapi(),
        employees::Api::openapi(),
        groups::Api::openapi(),
        channels::Api::openapi(),
        channel_connection::Api::openapi(),
        invites::Api::openapi(),
        tokens::Api::openapi(),
        audit::Api::openapi(),
        conversations::Api::openapi(),
        calls::Api::openapi(),
        attachments::Api::openapi(),
        contacts::Api::openapi(),
        quick_replies::Api::openapi(),
        routing::Api::openapi(),
        tasks::Api::openapi(),
        triggers::Api::openapi(),
        hooks::Api::openapi(),
        provider_hooks::Api::openapi(),
        social::Api::openapi(),
        social_hooks::Api::openapi(),
        social_oauth::Api::openapi(),
        media_links::Api::openapi(),
        crate::ws::Api::openapi(),
        crate::widget::owner::Api::openapi(),
        crate::widget::public::Api::openapi(),
    ] {
        doc.merge(part);
    }
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            "__Host-omnihub_session",
            "Session cookie from /api/v1/auth/login; unsafe methods also need X-CSRF-Token.",
        ))),
    );
    components.add_security_scheme(
        "token",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("omh_…")
                .build(),
        ),
    );
    components.add_security_scheme(
        "channel_token",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A channel's own inbound secret (the API channel's `credentials.inbound_token`).",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "visitor_token",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("omv_…")
                .description(Some(
                    "A website visitor's token, from POST /api/v1/public/widgets/{public_key}/visitors.",
                ))
                .build(),
        ),
    );
    doc
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "system", responses((status = 200, description = "OpenAPI 3.1 document")))]
pub async fn serve() -> web::Json<utoipa::openapi::OpenApi> {
    web::Json(document())
}
