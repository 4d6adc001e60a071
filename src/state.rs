//! The shared state every request handler sees: configuration, the store, the realtime hub,
//! outgoing mail, and the small in-memory helpers of authentication. Cheap to clone (one `Arc`).

use std::net::IpAddr;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::http::header::HeaderValue;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use omnihub_actors::{Hub, HubConfig, HubHandle};
use omnihub_connectors::email::{SmtpMailer, SmtpSecurity, SmtpSettings};
use omnihub_connectors::media_link::MediaLinks;
use omnihub_connectors::registry::Endpoints;
use omnihub_core::{GlobalRights, Principal, Role, UserId};
use omnihub_store::media::{FsMediaStore, MediaStore};
use omnihub_store::{DynStore, NewAuditEntry, StoreError};

use crate::auth::cache::AuthCache;
use crate::auth::throttle::LoginThrottle;
use crate::auth::totp::ReplayGuard;
use crate::config::{self, Config};
use crate::http::error::{ApiError, ApiResult};
use crate::http::routes::provider_hooks::ProviderChannels;

/// How long a resolved caller is trusted without asking the store again.
const AUTH_CACHE_TTL: Duration = Duration::from_secs(5);
const AUTH_CACHE_MAX: usize = 100_000;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Arc<Config>,
    pub store: DynStore,
    /// The realtime hub: every conversation change and every operator session goes through it.
    pub hub: HubHandle,
    /// The supervised tree behind `hub`, kept so `server::run` can stop it after the HTTP
    /// servers (one tree per process; dropping the last state stops it too).
    pub hub_tree: Hub,
    /// `None` when `[smtp] host` is empty.
    pub mailer: Option<SmtpMailer>,
    pub auth_cache: AuthCache,
    pub login_throttle: LoginThrottle,
    pub totp_guard: ReplayGuard,
    pub metrics: PrometheusHandle,
    /// The `Strict-Transport-Security` value, when omnihub itself serves TLS.
    pub hsts: Option<HeaderValue>,
    /// Where the messenger providers' APIs live (`[providers]`).
    pub endpoints: Endpoints,
    /// Connectors of channels whose webhooks arrived, kept between requests.
    pub provider_channels: ProviderChannels,
    /// API channels and their inbound tokens, read recently (`POST /hooks/api/…`).
    pub hook_channels: crate::http::routes::hooks::HookChannels,
    /// The captcha visitors' call-backs must pass; `None` when `[callback]` sets none.
    pub captcha: Option<Arc<dyn crate::callback::CaptchaVerifier>>,
    /// Where attachments' bytes are kept (`[media]`).
    pub media: Arc<dyn MediaStore>,
    /// Mints and checks the signed public links of outgoing files (`GET /media/…`).
    pub media_links: Option<MediaLinks>,
    /// Per-IP and per-visitor limits of the widget's public API.
    pub widget_limits: crate::widget::WidgetLimits,
    /// Calls whose outcome this process follows on a PBX's event stream.
    pub followed_calls: crate::callback::FollowedCalls,
    /// Social publishing (profiles' connectors, content checks), shared with the scheduler.
    pub social: crate::social::SocialService,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The Prometheus recorder is process-wide by the `metrics` crate's design, so it is installed
/// once and every state shares its handle.
fn metrics_handle() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets(&[
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ])?
        .build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        // Another state won the race; use whatever it installed.
        return HANDLE
            .get()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("metrics recorder lost"));
    }
    let handle = HANDLE.get_or_init(|| handle).clone();
    // Histogram samples queue up until upkeep folds them in; without a scraper calling
    // `render`, nothing else would, and memory would grow with every request.
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(5));
                upkeep.run_upkeep();
            }
        })?;
    Ok(handle)
}

impl AppState {
    pub async fn build(config: Arc<Config>, store: DynStore) -> anyhow::Result<AppState> {
        let mailer = if config.smtp.host.is_empty() {
            None
        } else {
            let smtp = &config.smtp;
            let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
            Some(SmtpMailer::new(&SmtpSettings {
                host: smtp.host.clone(),
                port: smtp.port,
                security: match smtp.security {
                    config::SmtpSecurity::None => SmtpSecurity::None,
                    config::SmtpSecurity::Starttls => SmtpSecurity::StartTls,
                    config::SmtpSecurity::Tls => SmtpSecurity::Tls,
                },
                username: non_empty(&smtp.username),
                password: non_empty(smtp.password.expose()),
                from: smtp.from.clone(),
            })?)
        };
        let login_throttle = LoginThrottle::per_minute(config.security.login_attempts_per_minute);
        // Started here, on the caller's runtime (`main`'s multi-threaded one in production),
        // never inside a handler: the tree must outlive any one actix worker.
        let mut endpoints = config
            .providers
            .endpoints()
            .map_err(|e| anyhow::anyhow!(e))?;
        endpoints.apps = config.social.apps();
        let media: Arc<dyn MediaStore> = Arc::new(
            FsMediaStore::open_dir(config.media_dir())
                .await
                .map_err(|e| anyhow::anyhow!("cannot open the media directory: {e}"))?,
        );
        // A server without a secret key refuses to start (`server::run`); states built
        // without one (tests of unrelated parts) simply mint no media links.
        let media_links = config
            .secret_key_bytes()
            .ok()
            .and_then(|key| MediaLinks::new(&config.server.public_url, &key).ok());
        let social = crate::social::SocialService {
            store: store.clone(),
            endpoints: endpoints.clone(),
            media: media.clone(),
            media_links: media_links.clone(),
            oauth: config.secret_key_bytes().ok().and_then(|key| {
                crate::social::oauth::OAuthFlows::new(&key, &config.server.public_url).ok()
            }),
        };
        let hub_config = HubConfig {
            session_queue: config.hub.session_queue,
            events_retention: (config.hub.events_retention_days > 0).then(|| {
                Duration::from_secs(u64::from(config.hub.events_retention_days) * 24 * 3600)
            }),
            task_lease: Duration::from_secs(config.hub.task_lease_secs),
            endpoints: endpoints.clone(),
            media: Some(media.clone()),
            max_attachment_bytes: config.media.max_attachment_bytes as u64,
            task_handlers: crate::social::tasks::handlers(social.clone(), Default::default()),
            media_links: media_links.clone(),
            ..HubConfig::default()
        };
        let hub_tree = Hub::start(store.clone(), hub_config)
            .await
            .map_err(|e| anyhow::anyhow!("cannot start the actor tree: {e}"))?;
        let hub = hub_tree.handle();
        Ok(AppState(Arc::new(Inner {
            hub,
            hub_tree,
            mailer,
            auth_cache: AuthCache::new(AUTH_CACHE_TTL, AUTH_CACHE_MAX),
            login_throttle,
            totp_guard: ReplayGuard::default(),
            metrics: metrics_handle()?,
            hsts: config
                .tls_enabled()
                .then(|| {
                    HeaderValue::from_str(&format!(
                        "max-age={}; includeSubDomains",
                        config.tls.hsts_max_age_secs
                    ))
                    .ok()
                })
                .flatten(),
            endpoints,
            provider_channels: ProviderChannels::default(),
            hook_channels: Default::default(),
            captcha: if config.callback.captcha_verify_url.is_empty() {
                None
            } else {
                Some(Arc::new(
                    crate::callback::HttpCaptcha::new(
                        &config.callback.captcha_verify_url,
                        config.callback.captcha_secret.expose(),
                    )
                    .map_err(|e| anyhow::anyhow!(e))?,
                ))
            },
            media,
            social,
            media_links,
            widget_limits: crate::widget::WidgetLimits::new(
                config.hub.widget_requests_per_minute,
                config.hub.widget_messages_per_minute,
            ),
            followed_calls: crate::callback::FollowedCalls::default(),
            config,
            store,
        })))
    }

    /// Resolves a user into the principal that rights are decided on; `None` when the user
    /// is disabled or gone (their credentials then stop working at once).
    pub async fn load_principal(&self, user_id: UserId) -> ApiResult<Option<Principal>> {
        let user = match self.store.get_user(user_id).await {
            Ok(u) => u,
            Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if user.disabled {
            return Ok(None);
        }
        let (client_active, channels) = match user.client_id {
            Some(client_id) => {
                let client = self.store.get_client(client_id).await?;
                let grants = if user.role == Role::Employee {
                    self.store.channel_grants(client_id, user.id).await?
                } else {
                    Vec::new()
                };
                (
                    client.status == omnihub_core::model::ClientStatus::Active,
                    grants
                        .into_iter()
                        .map(|g| (g.channel_id, g.rights))
                        .collect(),
                )
            }
            None => (false, Default::default()),
        };
        Ok(Some(Principal {
            user_id: user.id,
            role: user.role,
            client_id: user.client_id,
            client_active,
            global: if user.role == Role::ClientOwner {
                GlobalRights::all()
            } else {
                user.global_rights
            },
            channels,
            groups: match user.client_id {
                Some(client_id) => self.store.user_groups(client_id, user.id).await?,
                None => Vec::new(),
            },
        }))
    }

    /// Records an action in the audit log. A failure here fails the request: an action that
    /// cannot be audited must not pass silently.
    pub async fn audit(&self, entry: NewAuditEntry) -> ApiResult<()> {
        self.store
            .append_audit(&entry)
            .await
            .map(drop)
            .map_err(ApiError::from)
    }

    /// Sends a plain-text e-mail in the background, logging the outcome; the caller's answer
    /// must not depend on (or reveal) whether delivery worked.
    pub fn send_mail_later(&self, to: String, subject: String, body: String) -> ApiResult<()> {
        let mailer = self.mailer.clone().ok_or(ApiError::EmailNotConfigured)?;
        tokio::spawn(async move {
            if let Err(e) = mailer.send_text(&to, &subject, &body).await {
                tracing::warn!(error = %e, "could not send e-mail");
            }
        });
        Ok(())
    }

    pub fn check_login_rate(&self, ip: Option<IpAddr>) -> ApiResult<()> {
        match ip {
            Some(ip) => self.login_throttle.check(ip).map_err(ApiError::RateLimited),
            None => Ok(()),
        }
    }
}
