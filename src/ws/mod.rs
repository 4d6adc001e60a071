//! The operator WebSocket, `GET /api/v1/ws`: a console's live connection to the hub.
//!
//! The upgrade is authenticated like any request (API token, or session cookie), and a
//! cookie-authenticated upgrade must also come from omnihub's own origin: browsers attach
//! cookies to cross-site WebSocket handshakes, and no CSRF header can be required of one, so
//! the `Origin` check is what stops another site from opening a socket as the user
//! (cross-site WebSocket hijacking). After the upgrade, [`socket`] runs the connection on the
//! actix worker that accepted it (actix-ws's message stream must be polled there) and opens an
//! operator session in the hub. The wire format is [`protocol`], documented in
//! `docs/ws-protocol.md`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::auth::cache::Credential;
use crate::auth::tokens;
use crate::http::error::{ApiError, ApiResult, ErrorBody, request_lang};
use crate::http::extract::{Auth, ViewOwnClient};
use crate::i18n::Msg;
use crate::state::AppState;

pub mod protocol;
mod socket;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // One render cache per worker: an event fanned out to many sockets is serialised once.
    cfg.app_data(web::Data::new(protocol::EventCache::default()))
        .route("/ws", web::get().to(connect));
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(connect))]
pub struct Api;

/// The gauge of open operator sockets.
pub const OPEN_SOCKETS: &str = "omnihub_ws_open_sockets";

/// Opens the operator WebSocket (protocol: `docs/ws-protocol.md`).
#[utoipa::path(get, path = "/api/v1/ws", tag = "realtime",
    responses((status = 101, description = "switched to the WebSocket protocol of docs/ws-protocol.md"),
        (status = 400, description = "`invalid_parameter`: not a WebSocket upgrade", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "platform staff, a blocked client, or a session cookie sent from another origin", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    cache: web::Data<protocol::EventCache>,
    caller: Auth<ViewOwnClient>,
) -> ApiResult<HttpResponse> {
    let caller = caller.0;
    let recheck = match &caller.credential {
        Credential::Session { token_hash, .. } => {
            if !origin_allowed(&req, &state.config.server.public_url) {
                return Err(ApiError::Forbidden);
            }
            socket::Recheck::Session(token_hash.clone())
        }
        Credential::ApiToken => {
            // The extractor accepted exactly this header, so it is present and well-formed.
            let token = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .ok_or(ApiError::Unauthenticated)?;
            socket::Recheck::Token(tokens::hash(token))
        }
    };
    let (response, session, stream) = actix_ws::handle(&req, body)
        .map_err(|_| ApiError::InvalidParameter(Msg::WsUpgradeRequired))?;
    let stream = stream
        .max_frame_size(protocol::MAX_FRAME_BYTES)
        .aggregate_continuations()
        .max_continuation_size(protocol::MAX_FRAME_BYTES);
    let conn = socket::Conn::new(
        state.get_ref().clone(),
        caller,
        recheck,
        request_lang(),
        session,
        cache.into_inner(),
    );
    // The message stream is not Send: it must be polled on this worker's runtime.
    actix_web::rt::spawn(conn.run(stream));
    Ok(response)
}

/// `scheme://host[:port]` of an http(s) URL or `Origin` value, lower-cased, default port
/// dropped (as browsers serialise origins).
fn origin_of(url: &str) -> Option<String> {
    let url = url.trim().to_ascii_lowercase();
    let (scheme, rest) = url.split_once("://")?;
    let default_port = match scheme {
        "https" => ":443",
        "http" => ":80",
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = authority.strip_suffix(default_port).unwrap_or(authority);
    Some(format!("{scheme}://{authority}"))
}

/// Whether the handshake's `Origin` is omnihub's public URL or the host the request was sent
/// to. An absent or opaque (`null`) origin fails: every browser sends one on a WebSocket
/// handshake, and clients that are not browsers authenticate with tokens.
fn origin_allowed(req: &HttpRequest, public_url: &str) -> bool {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .and_then(origin_of)
    else {
        return false;
    };
    if origin_of(public_url).as_deref() == Some(origin.as_str()) {
        return true;
    }
    // The request's own host, whatever scheme a proxy in front terminated.
    let host = req.connection_info().host().to_ascii_lowercase();
    let authority = origin.split_once("://").map(|(_, a)| a).unwrap_or_default();
    let scheme_port = if origin.starts_with("https://") {
        ":443"
    } else {
        ":80"
    };
    authority == host || host.strip_suffix(scheme_port) == Some(authority)
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn allowed(origin: Option<&str>, host: &str) -> bool {
        let mut req = TestRequest::get()
            .uri("/api/v1/ws")
            .insert_header((header::HOST, host));
        if let Some(o) = origin {
            req = req.insert_header((header::ORIGIN, o));
        }
        origin_allowed(&req.to_http_request(), "https://omnihub.example:8443/app")
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("HTTPS://Omnihub.Example:443/x").as_deref(),
            Some("https://omnihub.example")
        );
        assert_eq!(
            origin_of("http://a.b:8080").as_deref(),
            Some("http://a.b:8080")
        );
        assert_eq!(origin_of("null"), None);
        assert_eq!(origin_of("ftp://a.b"), None);
        assert_eq!(origin_of("https://user@a.b"), None);
    }

    #[test]
    fn only_our_own_origins_may_use_the_cookie() {
        // The public URL, whatever host the request names.
        assert!(allowed(
            Some("https://omnihub.example:8443"),
            "10.0.0.1:8443"
        ));
        // The request's own host.
        assert!(allowed(Some("http://127.0.0.1:9000"), "127.0.0.1:9000"));
        assert!(allowed(Some("https://intranet.local"), "intranet.local"));
        assert!(allowed(
            Some("https://intranet.local"),
            "intranet.local:443"
        ));
        // Anything else.
        assert!(!allowed(
            Some("https://evil.example"),
            "omnihub.example:8443"
        ));
        assert!(!allowed(
            Some("https://omnihub.example"),
            "omnihub.example:8443"
        ));
        assert!(!allowed(
            Some("https://omnihub.example:8443.evil.example"),
            "x"
        ));
        assert!(!allowed(Some("null"), "omnihub.example:8443"));
        assert!(!allowed(None, "omnihub.example:8443"));
    }
}
