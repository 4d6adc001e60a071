//! Every route, grouped by who uses it. Paths here and the `#[utoipa::path]` annotations on the
//! handlers must agree: a test checks that each registered route is documented.

use actix_web::web;

pub mod account;
pub mod audit;
pub mod channels;
pub mod employees;
pub mod groups;
pub mod invites;
pub mod platform;
pub mod system;
pub mod tokens;

pub fn configure(cfg: &mut web::ServiceConfig) {
    system::configure(cfg);
    cfg.service(
        web::scope("/api/v1")
            .configure(account::configure)
            .configure(platform::configure)
            .configure(employees::configure)
            .configure(groups::configure)
            .configure(channels::configure)
            .configure(invites::configure)
            .configure(tokens::configure)
            .configure(audit::configure)
            .route("/openapi.json", web::get().to(crate::http::openapi::serve)),
    );
}
