//! The website live-chat widget: its owner's settings (`owner`), the public chat API that the
//! widget — or a client's own chat UI — speaks (`public`, under
//! `/api/v1/public/widgets/{public_key}/…`), the visitor WebSocket (`socket`, protocol in
//! `docs/widget-protocol.md`) and the widget's script (`GET /widget.js`).
//!
//! A widget is a channel of provider `widget`; its public key is published in web pages. The
//! public API trusts nothing a visitor sends: every request names its widget by key and must
//! come from a page of one of the widget's origins (the `Origin` header, checked on every route
//! and on the WebSocket upgrade; CORS is answered for those origins only); a visitor acts only
//! through their own token, which finds their visitor within that widget and, from it, their one
//! conversation — no visitor-supplied id ever names a conversation or a message to read.
//! Requests are limited per IP and messages per visitor (GCRA).

use std::net::IpAddr;
use std::num::NonZeroU32;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{Error, HttpMessage, HttpRequest, HttpResponse, web};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use omnihub_core::model::{Channel, Provider};
use omnihub_store::{StoreError, Visitor};
use rust_embed::Embed;

use crate::auth::tokens;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::peer_ip;
use crate::state::AppState;

pub mod owner;
pub mod public;
pub mod settings;
pub mod socket;

pub use settings::WidgetSettings;

/// Visitor tokens start with this, so they are told from other secrets at a glance.
pub const VISITOR_TOKEN_PREFIX: &str = "omv_";

/// The public API's prefix; the `{public_key}` segment follows.
pub const PUBLIC_PREFIX: &str = "/api/v1/public/widgets";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/widget.js", web::get().to(script)).service(
        web::scope(PUBLIC_PREFIX)
            .wrap(from_fn(cors))
            .configure(public::configure),
    );
}

pub fn configure_api(cfg: &mut web::ServiceConfig) {
    owner::configure(cfg);
}

/// The built widget (`widget/dist`), or a placeholder script saying how to build it.
#[derive(Embed)]
#[folder = "$OMNIHUB_WIDGET_DIST"]
struct Script;

/// `GET /widget.js`: the widget, for any site's `<script>` tag. Revalidated by its ETag, so a
/// new version reaches pages at once; gzipped when the browser takes it.
pub async fn script(req: HttpRequest) -> ApiResult<HttpResponse> {
    let gzip = crate::http::assets::accepts_gzip(&req);
    let file = Script::get("widget.js").ok_or(ApiError::NotFound)?;
    let gzipped = gzip.then(|| Script::get("widget.js.gz")).flatten();
    let hash = file.metadata.sha256_hash();
    let hex: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
    let tag = format!("\"w{hex}{}\"", if gzipped.is_some() { "-gz" } else { "" });
    let unchanged = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut answer = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    answer
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::ETAG, tag.as_str()))
        .insert_header((header::VARY, "Accept-Encoding"))
        // Loaded by other sites' pages: allowed across origins on purpose.
        .insert_header(("cross-origin-resource-policy", "cross-origin"))
        .insert_header((header::CONTENT_TYPE, "text/javascript; charset=utf-8"));
    if unchanged {
        return Ok(answer.finish());
    }
    Ok(match gzipped {
        Some(gz) => answer
            .insert_header((header::CONTENT_ENCODING, "gzip"))
            .body(gz.data.into_owned()),
        None => answer.body(file.data.into_owned()),
    })
}

/// The per-IP and per-visitor limits of the public API (in memory, per node).
pub struct WidgetLimits {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_visitor: DefaultKeyedRateLimiter<uuid::Uuid>,
    clock: DefaultClock,
}

/// Keys kept before idle ones are forgotten.
const PRUNE_ABOVE: usize = 100_000;

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN))
}

impl WidgetLimits {
    pub fn new(requests_per_ip_per_minute: u32, messages_per_visitor_per_minute: u32) -> Self {
        WidgetLimits {
            per_ip: RateLimiter::keyed(per_minute(requests_per_ip_per_minute)),
            per_visitor: RateLimiter::keyed(per_minute(messages_per_visitor_per_minute)),
            clock: DefaultClock::default(),
        }
    }

    fn wait(&self, not_until: governor::NotUntil<governor::clock::QuantaInstant>) -> ApiError {
        ApiError::RateLimited(not_until.wait_time_from(self.clock.now()).as_secs().max(1))
    }

    pub fn request(&self, ip: Option<IpAddr>) -> ApiResult<()> {
        if self.per_ip.len() > PRUNE_ABOVE || self.per_visitor.len() > PRUNE_ABOVE {
            self.prune();
        }
        match ip {
            Some(ip) => self.per_ip.check_key(&ip).map_err(|n| self.wait(n)),
            None => Ok(()),
        }
    }

    pub fn message(&self, visitor: uuid::Uuid) -> ApiResult<()> {
        self.per_visitor
            .check_key(&visitor)
            .map_err(|n| self.wait(n))
    }

    /// Forgets idle keys so the tables do not grow without bound.
    pub fn prune(&self) {
        self.per_ip.retain_recent();
        self.per_visitor.retain_recent();
    }
}

/// The origin a request was accepted from; the CORS layer answers for it.
#[derive(Clone)]
struct AllowedOrigin(HeaderValue);

/// A widget named by the path's public key, whose allow-list holds the request's origin.
pub struct PublicWidget {
    pub channel: Channel,
    pub settings: WidgetSettings,
}

/// Finds the widget, checks the per-IP limit and the origin, and lets the CORS layer answer
/// for this origin. An unknown key is 404; a missing or foreign origin is 403
/// `origin_not_allowed` (and, with no CORS headers, unreadable to the page).
pub async fn public_widget(
    state: &AppState,
    req: &HttpRequest,
    public_key: &str,
) -> ApiResult<PublicWidget> {
    state.widget_limits.request(peer_ip(req))?;
    let channel = match state.store.widget_by_key(public_key).await {
        Ok(channel) if channel.provider == Provider::Widget => channel,
        Ok(_) | Err(StoreError::NotFound) => return Err(ApiError::NotFound),
        Err(e) => return Err(e.into()),
    };
    let settings = WidgetSettings::of_channel(&channel.settings);
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .filter(|o| o.to_str().is_ok_and(|o| settings.allows(o)))
        .ok_or(ApiError::OriginNotAllowed)?;
    req.extensions_mut().insert(AllowedOrigin(origin.clone()));
    // A blocked client's widget is closed like its console.
    let client = state.store.get_client(channel.client_id).await?;
    if client.status != omnihub_core::model::ClientStatus::Active {
        return Err(ApiError::ClientBlocked);
    }
    Ok(PublicWidget { channel, settings })
}

/// The visitor whose token the request carries (`Authorization: Bearer omv_…`), within this
/// widget only.
pub async fn visitor_of(
    state: &AppState,
    widget: &PublicWidget,
    token: Option<&str>,
) -> ApiResult<Visitor> {
    let token = token
        .map(str::trim)
        .filter(|t| t.starts_with(VISITOR_TOKEN_PREFIX))
        .ok_or(ApiError::VisitorUnknown)?;
    match state
        .store
        .visitor_by_token(widget.channel.id, &tokens::hash(token))
        .await
    {
        Ok(v) if v.client_id == widget.channel.client_id => Ok(v),
        Ok(_) | Err(StoreError::NotFound) => Err(ApiError::VisitorUnknown),
        Err(e) => Err(e.into()),
    }
}

pub fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// CORS for the public API: an allowed origin (set by [`public_widget`]) gets the answer's
/// CORS headers; preflights are answered by the routes' `OPTIONS` handler the same way.
/// Cookies are never involved (`Allow-Credentials` is not sent): a visitor is their token.
async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let mut res = next.call(req).await?;
    let allowed = res.request().extensions().get::<AllowedOrigin>().cloned();
    let headers = res.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(AllowedOrigin(origin)) = allowed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Authorization, Content-Type, Accept-Language"),
        );
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("X-Request-Id, Retry-After"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    Ok(res)
}
