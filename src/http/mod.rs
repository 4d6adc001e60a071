//! The HTTP surface: `create_app` wires middleware, body limits, JSON error mapping and every
//! route; `openapi` documents them all.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::middleware::from_fn;
use actix_web::{App, Error, HttpRequest, web};

pub mod assets;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod routes;

use error::ApiError;

use crate::i18n::Msg;
use crate::state::AppState;

fn json_error(err: JsonPayloadError, _: &HttpRequest) -> Error {
    match err {
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            ApiError::PayloadTooLarge(limit).into()
        }
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType.into(),
        JsonPayloadError::Deserialize(e) => ApiError::InvalidJson(e.to_string()).into(),
        other => ApiError::InvalidJson(other.to_string()).into(),
    }
}

fn path_error(err: PathError, _: &HttpRequest) -> Error {
    ApiError::InvalidParameter(Msg::InvalidPathParameter {
        detail: err.to_string(),
    })
    .into()
}

fn query_error(err: QueryPayloadError, _: &HttpRequest) -> Error {
    ApiError::InvalidParameter(Msg::InvalidQueryParameter {
        detail: err.to_string(),
    })
    .into()
}

/// The whole application, for `HttpServer::new(move || create_app(state.clone()))` and tests.
pub fn create_app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = Error,
        InitError = (),
    >,
> {
    let limit = state.config.server.max_body_bytes;
    App::new()
        .app_data(web::Data::new(state))
        .app_data(
            web::JsonConfig::default()
                .limit(limit)
                .error_handler(json_error),
        )
        .app_data(web::PayloadConfig::default().limit(limit))
        .app_data(web::PathConfig::default().error_handler(path_error))
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .configure(routes::configure)
        // Unmatched addresses: the web console and its SPA fallback (JSON 404 under /api).
        .default_service(web::to(assets::serve))
        .wrap(from_fn(middleware::observe))
}
