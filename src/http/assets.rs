//! The web console, embedded in the binary and served at `/`: files by their path, and
//! `index.html` for every other page address so the single-page app's router can take it
//! (SPA fallback). API, webhook and probe addresses never fall back: an unknown one stays a
//! JSON 404.
//!
//! Vite names built assets by content hash under `assets/`, so those are cached for a year;
//! everything else is revalidated by its ETag. The build leaves a gzipped twin (`*.gz`) beside
//! large files; it is served to browsers that accept gzip.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use rust_embed::{Embed, EmbeddedFile};

use crate::http::error::{ApiError, ApiResult};

/// `web/dist`, or a page saying how to build it (build.rs decides).
#[derive(Embed)]
#[folder = "$OMNIHUB_WEB_DIST"]
struct Console;

const INDEX: &str = "index.html";
const HASHED_DIR: &str = "assets/";
const CACHE_HASHED: &str = "public, max-age=31536000, immutable";
const CACHE_REVALIDATE: &str = "no-cache";

/// Address prefixes that belong to the server, not to the console's router.
const SERVER_PREFIXES: [&str; 5] = ["/api/", "/hooks/", "/healthz", "/readyz", "/metrics"];

fn is_server_path(path: &str) -> bool {
    path == "/api" || SERVER_PREFIXES.iter().any(|p| path.starts_with(p))
}

/// A missing file that looks like one (`/assets/…`, or a last segment with an extension) is a
/// 404: answering it with `index.html` would hand HTML to a `<script>` or an `<img>`.
fn looks_like_file(path: &str) -> bool {
    path.starts_with(HASHED_DIR)
        || path
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains('.'))
}

/// Whether `Accept-Encoding` admits gzip (a `q=0` refuses it).
pub(crate) fn accepts_gzip(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

fn content_type(file: &EmbeddedFile) -> String {
    let mime = file.metadata.mimetype();
    if mime.starts_with("text/") || mime.ends_with("javascript") || mime.ends_with("json") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    }
}

fn etag(file: &EmbeddedFile, gzipped: bool) -> String {
    let hash = file.metadata.sha256_hash();
    let hex: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}{}\"", if gzipped { "-gz" } else { "" })
}

/// The default service of the app: the console's files and its SPA fallback.
pub async fn serve(req: HttpRequest) -> ApiResult<HttpResponse> {
    let path = req.path();
    if !matches!(*req.method(), Method::GET | Method::HEAD) || is_server_path(path) {
        return Err(ApiError::NotFound);
    }
    let wanted = path.trim_start_matches('/');
    let (name, file) = match Console::get(wanted).filter(|_| !wanted.is_empty()) {
        Some(file) => (wanted, file),
        None if looks_like_file(wanted) => return Err(ApiError::NotFound),
        None => (INDEX, Console::get(INDEX).ok_or(ApiError::NotFound)?),
    };

    let cache = if name.starts_with(HASHED_DIR) {
        CACHE_HASHED
    } else {
        CACHE_REVALIDATE
    };
    let gzipped = accepts_gzip(&req)
        .then(|| Console::get(&format!("{name}.gz")))
        .flatten();
    // Each encoding is its own representation, so each has its own entity tag.
    let tag = etag(&file, gzipped.is_some());
    let mut answer = HttpResponse::Ok();
    answer
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::ETAG, tag.as_str()))
        .insert_header((header::VARY, "Accept-Encoding"));
    let unchanged = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    if unchanged {
        return Ok(answer.status(StatusCode::NOT_MODIFIED).finish());
    }
    answer.insert_header((header::CONTENT_TYPE, content_type(&file)));
    Ok(match gzipped {
        Some(gz) => answer
            .insert_header((header::CONTENT_ENCODING, HeaderValue::from_static("gzip")))
            .body(gz.data.into_owned()),
        None => answer.body(file.data.into_owned()),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn server_addresses_never_fall_back_to_the_console() {
        for path in [
            "/api",
            "/api/v1/nope",
            "/hooks/api/x",
            "/healthz",
            "/metrics",
        ] {
            assert!(is_server_path(path), "{path}");
        }
        for path in ["/", "/inbox", "/sign-in", "/apis", "/workspace/employees"] {
            assert!(!is_server_path(path), "{path}");
        }
    }

    #[test]
    fn missing_files_are_told_from_page_addresses() {
        assert!(looks_like_file("assets/index-abc.js"));
        assert!(looks_like_file("favicon.svg"));
        assert!(!looks_like_file("inbox/0190a1"));
        assert!(!looks_like_file("reset-password"));
    }

    #[test]
    fn gzip_is_negotiated_from_accept_encoding() {
        let with = |v: &str| {
            TestRequest::get()
                .insert_header((header::ACCEPT_ENCODING, v))
                .to_http_request()
        };
        assert!(accepts_gzip(&with("gzip, deflate, br")));
        assert!(accepts_gzip(&with("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(&with("*")));
        assert!(!accepts_gzip(&with("gzip;q=0, br")));
        assert!(!accepts_gzip(&with("br, identity")));
        assert!(!accepts_gzip(&TestRequest::get().to_http_request()));
    }

    #[actix_web::test]
    async fn pages_fall_back_to_index_and_api_misses_stay_json() {
        let page = serve(TestRequest::get().uri("/inbox/123").to_http_request())
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let ct = page.headers().get(header::CONTENT_TYPE).unwrap();
        assert_eq!(ct, "text/html; charset=utf-8");
        assert_eq!(
            page.headers().get(header::CACHE_CONTROL).unwrap(),
            CACHE_REVALIDATE
        );

        let tag = page.headers().get(header::ETAG).unwrap().clone();
        let again = TestRequest::get()
            .uri("/")
            .insert_header((header::IF_NONE_MATCH, tag))
            .to_http_request();
        assert_eq!(
            serve(again).await.unwrap().status(),
            StatusCode::NOT_MODIFIED
        );

        for req in [
            TestRequest::get().uri("/api/v1/nope"),
            TestRequest::get().uri("/assets/missing-abc.js"),
            TestRequest::post().uri("/inbox"),
        ] {
            let err = serve(req.to_http_request()).await.unwrap_err();
            assert!(matches!(err, ApiError::NotFound));
        }
    }
}
