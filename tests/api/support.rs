//! The test harness: a fresh application on its own SQLite file and SMTP sandbox, a seeded world
//! of two clients and the platform staff, signed-in actors, and helpers to send requests as any
//! of them and to read the answers.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::cookie::Cookie;
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderMap};
use actix_web::test::{self, TestRequest};
use actix_web::web::Bytes;
use futures_util::future::LocalBoxFuture;
use omnihub::AppState;
use omnihub::auth::{password, tokens};
use omnihub::config::{Config, Secret, SmtpSecurity};
use omnihub_core::model::{Channel, ChannelKind, Client, Group, Invite, Provider, User};
use omnihub_core::{ClientId, GlobalRights, Role};
use omnihub_sandbox::smtp::{CapturedMail, SmtpSandbox};
use omnihub_store::{
    AuditFilter, ClientFilter, DynStore, NewApiToken, NewChannel, NewInvite, NewUser, SecretBox,
};
use serde_json::{Value, json};

/// Every seeded account has this password; it is hashed once per test binary.
pub const PASSWORD: &str = "correct horse battery staple";

/// argon2 is slow by design: one hash serves every seeded user of every test.
pub fn password_hash() -> String {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| password::hash(PASSWORD).unwrap())
        .clone()
}

/// A client IP nobody else in this test binary uses, so the per-IP sign-in throttle of one
/// test (or one actor) never trips another.
pub fn fresh_ip() -> IpAddr {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    IpAddr::V4(Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8))
}

fn peer(ip: IpAddr) -> SocketAddr {
    SocketAddr::new(ip, 40_000)
}

/// A unique number within the process, for names that must not collide.
pub fn seq() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "omnihub-test-{label}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// A response, read to the end.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub cookies: Vec<Cookie<'static>>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The `code` of an error body.
    pub fn code(&self) -> Option<String> {
        self.json()
            .get("code")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    pub fn cookie(&self, name: &str) -> Option<&Cookie<'static>> {
        self.cookies.iter().find(|c| c.name() == name)
    }

    /// An error with this status and code, in the one documented shape: `code`, `message`,
    /// `request_id`, the last equal to the `X-Request-Id` header.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status,
            status,
            "expected {status} {code}, got body {}",
            self.text()
        );
        self.assert_error_shape();
        assert_eq!(self.code().as_deref(), Some(code), "body {}", self.text());
    }

    /// Whatever the status: a JSON error body whose request id matches the header.
    #[track_caller]
    pub fn assert_error_shape(&self) {
        let ct = self.header("content-type").unwrap_or_default();
        assert!(
            ct.starts_with("application/json"),
            "content-type {ct:?}, body {:?}",
            self.text()
        );
        let v = self.json();
        let code = v["code"].as_str().unwrap_or_default();
        assert!(!code.is_empty(), "no code in {}", self.text());
        let message = v["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "no message in {}", self.text());
        let rid = v["request_id"].as_str().unwrap_or_default();
        assert!(!rid.is_empty(), "no request_id in {}", self.text());
        assert_eq!(
            self.header("x-request-id").as_deref(),
            Some(rid),
            "X-Request-Id header vs body"
        );
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "body {}", self.text());
        self
    }
}

// ---------------------------------------------------------------------------------------------
// The application under test
// ---------------------------------------------------------------------------------------------

/// Knobs a test may turn; everything else is `Config::default()`.
#[derive(Clone, Debug)]
pub struct Options {
    pub cookie_secure: bool,
    pub max_body_bytes: usize,
    pub login_max_failures: u32,
    pub login_attempts_per_minute: u32,
    /// The operator WebSocket's heartbeat (`[hub]`), in milliseconds.
    pub heartbeat_interval_ms: u64,
    pub heartbeat_timeout_ms: u64,
    /// Where the messenger providers live (the sandbox's fakes in the messenger tests).
    pub providers: omnihub::config::ProvidersConfig,
    /// omnihub's applications on the social networks (`[social]`).
    pub social: omnihub::config::SocialConfig,
    /// The captcha of visitors' call-backs.
    pub callback: omnihub::config::CallbackConfig,
    /// `[media] max_upload_bytes`.
    pub max_upload_bytes: usize,
    /// `[media] max_video_bytes`.
    pub max_video_bytes: u64,
    /// The widget's public API limits (`[hub]`).
    pub widget_messages_per_minute: u32,
    pub widget_requests_per_minute: u32,
    /// `[server] public_url`, when a test's providers must reach a live listener.
    pub public_url: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        let hub = omnihub::config::HubSection::default();
        Options {
            cookie_secure: false,
            max_body_bytes: 16 * 1024,
            login_max_failures: 5,
            login_attempts_per_minute: 30,
            heartbeat_interval_ms: hub.heartbeat_interval_ms,
            heartbeat_timeout_ms: hub.heartbeat_timeout_ms,
            providers: omnihub::config::ProvidersConfig::default(),
            social: omnihub::config::SocialConfig::default(),
            callback: omnihub::config::CallbackConfig::default(),
            max_upload_bytes: omnihub::config::MediaConfig::default().max_upload_bytes,
            max_video_bytes: omnihub::config::MediaConfig::default().max_video_bytes,
            widget_messages_per_minute: hub.widget_messages_per_minute,
            widget_requests_per_minute: hub.widget_requests_per_minute,
            public_url: None,
        }
    }
}

type CallFn = Rc<dyn Fn(TestRequest) -> LocalBoxFuture<'static, Resp>>;

/// Who sends a request.
#[derive(Clone, Copy)]
pub enum Who<'a> {
    Anon(IpAddr),
    /// The actor's current session cookie (and CSRF header on unsafe methods).
    Session(&'a Actor),
    /// A bearer token from an IP.
    Token(&'a str, IpAddr),
    /// A given session (e.g. an old or a second one) from an IP.
    Cookie(&'a Sess, IpAddr),
}

/// One application: config, store, state, the in-process service and an SMTP sandbox.
pub struct Harness {
    pub config: Arc<Config>,
    pub store: DynStore,
    pub state: AppState,
    pub smtp: SmtpSandbox,
    call: CallFn,
    _dir: TempDir,
}

impl Harness {
    pub async fn start(label: &str, options: &Options) -> Harness {
        let dir = TempDir::new(label);
        let smtp = SmtpSandbox::start().await.unwrap();
        let (_, key) = SecretBox::generate();
        let mut config = Config::default();
        config.server.plain_http = true;
        config.server.listen = "127.0.0.1:0".into();
        config.server.redirect_listen = String::new();
        config.server.public_url = options
            .public_url
            .clone()
            .unwrap_or_else(|| "https://omnihub.test".into());
        config.server.data_dir = dir.path().to_path_buf();
        config.server.max_body_bytes = options.max_body_bytes;
        config.store.url = format!(
            "sqlite://{}",
            dir.path().join(format!("{label}.db")).display()
        );
        config.security.secret_key = Secret::new(key);
        config.security.cookie_secure = options.cookie_secure;
        config.security.login_max_failures = options.login_max_failures;
        config.security.login_attempts_per_minute = options.login_attempts_per_minute;
        config.hub.heartbeat_interval_ms = options.heartbeat_interval_ms;
        config.hub.heartbeat_timeout_ms = options.heartbeat_timeout_ms;
        config.providers = options.providers.clone();
        config.callback = options.callback.clone();
        config.social = options.social.clone();
        config.media.max_upload_bytes = options.max_upload_bytes;
        config.media.max_video_bytes = options.max_video_bytes;
        config.hub.widget_messages_per_minute = options.widget_messages_per_minute;
        config.hub.widget_requests_per_minute = options.widget_requests_per_minute;
        config.smtp.host = "127.0.0.1".into();
        config.smtp.port = smtp.addr().port();
        config.smtp.security = SmtpSecurity::None;
        config.smtp.from = "omnihub <noreply@omnihub.test>".into();
        let config = Arc::new(config);
        let store = omnihub::server::open_store(&config).await.unwrap();
        let state = AppState::build(config.clone(), store.clone())
            .await
            .unwrap();
        let svc = Rc::new(test::init_service(omnihub::create_app(state.clone())).await);
        let call: CallFn = Rc::new(move |req: TestRequest| {
            let svc = svc.clone();
            Box::pin(async move {
                match test::try_call_service(&*svc, req.to_request()).await {
                    Ok(res) => {
                        let status = res.status().as_u16();
                        let headers = res.headers().clone();
                        let cookies = res.response().cookies().map(|c| c.into_owned()).collect();
                        let body = test::read_body(res).await;
                        Resp {
                            status,
                            headers,
                            body,
                            cookies,
                        }
                    }
                    Err(e) => {
                        let res = e.error_response();
                        let status = res.status().as_u16();
                        let headers = res.headers().clone();
                        let cookies = res.cookies().map(|c| c.into_owned()).collect();
                        let body = actix_web::body::to_bytes(res.into_body())
                            .await
                            .unwrap_or_default();
                        Resp {
                            status,
                            headers,
                            body,
                            cookies,
                        }
                    }
                }
            })
        });
        Harness {
            config,
            store,
            state,
            smtp,
            call,
            _dir: dir,
        }
    }

    pub fn cookie_name(&self) -> &'static str {
        omnihub::http::extract::session_cookie_name(&self.state)
    }

    /// A request as `who`, with the peer address set so IP throttling applies.
    pub fn request(&self, who: Who<'_>, method: Method, uri: &str) -> TestRequest {
        let unsafe_method = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
        let req = TestRequest::default().method(method).uri(uri);
        match who {
            Who::Anon(ip) => req.peer_addr(peer(ip)),
            Who::Token(token, ip) => req
                .peer_addr(peer(ip))
                .insert_header((header::AUTHORIZATION, format!("Bearer {token}"))),
            Who::Session(actor) => {
                let s = actor.session();
                let req = req
                    .peer_addr(peer(actor.ip))
                    .cookie(Cookie::new(self.cookie_name(), s.cookie));
                if unsafe_method {
                    req.insert_header(("X-CSRF-Token", s.csrf))
                } else {
                    req
                }
            }
            Who::Cookie(s, ip) => {
                let req = req
                    .peer_addr(peer(ip))
                    .cookie(Cookie::new(self.cookie_name(), s.cookie.clone()));
                if unsafe_method {
                    req.insert_header(("X-CSRF-Token", s.csrf.clone()))
                } else {
                    req
                }
            }
        }
    }

    pub async fn send(&self, req: TestRequest) -> Resp {
        (self.call)(req).await
    }

    /// Posts one file as `multipart/form-data`, in the part named `file`, to `uri` as `who`.
    pub async fn upload_file(
        &self,
        who: Who<'_>,
        uri: &str,
        file_name: &str,
        mime: &str,
        bytes: &[u8],
    ) -> Resp {
        let boundary = "omnihub-test-boundary";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"{file_name}\"\r\nContent-Type: {mime}\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let req = self
            .request(who, Method::POST, uri)
            .insert_header((
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            ))
            .set_payload(body);
        self.send(req).await
    }

    /// Sends `body` as JSON when given.
    pub async fn call(&self, who: Who<'_>, method: Method, uri: &str, body: Option<Value>) -> Resp {
        let req = self.request(who, method, uri);
        let req = match body {
            Some(b) => req.set_json(b),
            None => req,
        };
        self.send(req).await
    }

    pub async fn get(&self, who: Who<'_>, uri: &str) -> Resp {
        self.call(who, Method::GET, uri, None).await
    }

    pub async fn post(&self, who: Who<'_>, uri: &str, body: Value) -> Resp {
        self.call(who, Method::POST, uri, Some(body)).await
    }

    pub async fn patch(&self, who: Who<'_>, uri: &str, body: Value) -> Resp {
        self.call(who, Method::PATCH, uri, Some(body)).await
    }

    pub async fn put(&self, who: Who<'_>, uri: &str, body: Value) -> Resp {
        self.call(who, Method::PUT, uri, Some(body)).await
    }

    pub async fn delete(&self, who: Who<'_>, uri: &str) -> Resp {
        self.call(who, Method::DELETE, uri, None).await
    }

    /// `POST /api/v1/auth/login` from `ip`.
    pub async fn login(&self, email: &str, password: &str, ip: IpAddr, totp: Option<&str>) -> Resp {
        let mut body = json!({ "email": email, "password": password });
        if let Some(code) = totp {
            body["totp_code"] = json!(code);
        }
        self.post(Who::Anon(ip), "/api/v1/auth/login", body).await
    }

    /// Signs `actor` in with the shared password and makes that session theirs.
    pub async fn sign_in(&self, actor: &Actor) -> Sess {
        let s = self.new_session(actor).await;
        actor.set_session(s.clone());
        s
    }

    /// A new session of `actor`, without replacing the one they use.
    pub async fn new_session(&self, actor: &Actor) -> Sess {
        let r = self
            .login(&actor.user.email, PASSWORD, actor.ip, None)
            .await;
        assert_eq!(r.status, 200, "sign-in of {}: {}", actor.label, r.text());
        Sess::from_login(&r, self.cookie_name())
    }

    // --- seeding through the store ------------------------------------------------------------

    pub async fn create_user(
        &self,
        email: &str,
        name: &str,
        role: Role,
        client: Option<ClientId>,
        rights: GlobalRights,
    ) -> User {
        self.store
            .create_user(&NewUser {
                email: email.to_string(),
                display_name: name.to_string(),
                password_hash: password_hash(),
                role,
                client_id: client,
                global_rights: rights,
                locale: "en".into(),
            })
            .await
            .unwrap()
    }

    pub async fn actor(
        &self,
        label: &str,
        email: &str,
        name: &str,
        role: Role,
        client: Option<ClientId>,
        rights: GlobalRights,
    ) -> Actor {
        let user = self.create_user(email, name, role, client, rights).await;
        let actor = Actor::new(label, user);
        self.sign_in(&actor).await;
        actor
    }

    /// Seeds one client: owner, an employee without rights, a manager and an integrator (both
    /// with manage-employees, manage-settings, analytics and scheduling), a channel with credentials, a
    /// group, a pending invitation and an API token of the integrator made through the API.
    /// Every name and address contains `tag`, so a leak of this client's data is one substring.
    pub async fn seed_tenant(&self, tag: &str) -> Tenant {
        let title = format!("{}{}", tag[..1].to_uppercase(), &tag[1..]);
        let client = self
            .store
            .create_client(&format!("{title} Trading"), Some("pro"))
            .await
            .unwrap();
        let cid = Some(client.id);
        let managing = GlobalRights::MANAGE_EMPLOYEES
            | GlobalRights::MANAGE_SETTINGS
            | GlobalRights::ANALYTICS
            | GlobalRights::SCHEDULING;
        let owner = self
            .actor(
                &format!("{tag} owner"),
                &format!("owner@{tag}.test"),
                &format!("{title} Owner"),
                Role::ClientOwner,
                cid,
                GlobalRights::all(),
            )
            .await;
        let plain = self
            .actor(
                &format!("{tag} operator"),
                &format!("operator@{tag}.test"),
                &format!("{title} Operator"),
                Role::Employee,
                cid,
                GlobalRights::empty(),
            )
            .await;
        let manager = self
            .actor(
                &format!("{tag} manager"),
                &format!("manager@{tag}.test"),
                &format!("{title} Manager"),
                Role::Employee,
                cid,
                managing,
            )
            .await;
        let integrator = self
            .actor(
                &format!("{tag} integrator"),
                &format!("integrator@{tag}.test"),
                &format!("{title} Integrator"),
                Role::Employee,
                cid,
                managing,
            )
            .await;
        let channel = self
            .store
            .create_channel(&NewChannel {
                client_id: client.id,
                kind: ChannelKind::Messaging,
                provider: Provider::Api,
                name: format!("{title} Support"),
                settings: json!({ "base_url": format!("https://{tag}.example") }),
                credentials: Some(json!({ "api_key": credential_secret(tag) })),
            })
            .await
            .unwrap();
        let group = self
            .store
            .create_group(client.id, &format!("{title} Team"))
            .await
            .unwrap();
        let group = self
            .store
            .set_group_members(client.id, group.id, &[plain.user.id])
            .await
            .unwrap();
        let invite_token = tokens::random_secret();
        let invite = self
            .store_invite(
                &client,
                owner.user.id,
                &format!("invitee@{tag}.test"),
                &invite_token,
            )
            .await;

        let r = self
            .post(
                Who::Session(&integrator),
                "/api/v1/tokens",
                json!({ "name": format!("{tag} integration") }),
            )
            .await;
        assert_eq!(r.status, 201, "token for {tag}: {}", r.text());
        let token = r.json()["token"].as_str().unwrap().to_string();

        Tenant {
            tag: tag.to_string(),
            client,
            owner,
            plain,
            manager,
            integrator,
            token,
            channel,
            group,
            invite,
            invite_token,
        }
    }

    pub async fn store_invite(
        &self,
        client: &Client,
        by: omnihub_core::UserId,
        email: &str,
        secret: &str,
    ) -> Invite {
        self.store
            .create_invite(&NewInvite {
                client_id: client.id,
                email: email.to_string(),
                token_hash: tokens::hash(secret),
                global_rights: GlobalRights::empty(),
                group_ids: Vec::new(),
                channel_grants: Vec::new(),
                created_by: by,
                expires_at: chrono::Utc::now() + chrono::Duration::days(1),
            })
            .await
            .unwrap()
    }

    // --- throw-away rows for destructive requests ---------------------------------------------

    pub async fn victim_employee(&self, t: &Tenant) -> User {
        let n = seq();
        self.create_user(
            &format!("victim{n}@{}.test", t.tag),
            &format!("{} Victim {n}", t.tag),
            Role::Employee,
            Some(t.client.id),
            GlobalRights::empty(),
        )
        .await
    }

    pub async fn victim_group(&self, t: &Tenant) -> Group {
        self.store
            .create_group(t.client.id, &format!("{} victim group {}", t.tag, seq()))
            .await
            .unwrap()
    }

    pub async fn victim_channel(&self, t: &Tenant) -> Channel {
        self.store
            .create_channel(&NewChannel {
                client_id: t.client.id,
                kind: ChannelKind::Messaging,
                provider: Provider::Api,
                name: format!("{} victim channel {}", t.tag, seq()),
                settings: json!({}),
                credentials: None,
            })
            .await
            .unwrap()
    }

    pub async fn victim_invite(&self, t: &Tenant) -> Invite {
        let email = format!("victim-invite{}@{}.test", seq(), t.tag);
        self.store_invite(&t.client, t.owner.user.id, &email, &tokens::random_secret())
            .await
    }

    pub async fn victim_token(&self, t: &Tenant) -> omnihub_core::model::ApiToken {
        let secret = tokens::new_api_token();
        self.store
            .create_api_token(&NewApiToken {
                client_id: t.client.id,
                user_id: t.owner.user.id,
                name: format!("{} victim token {}", t.tag, seq()),
                prefix: secret.chars().take(12).collect(),
                token_hash: tokens::hash(&secret),
                expires_at: None,
            })
            .await
            .unwrap()
    }

    // --- observing --------------------------------------------------------------------------

    /// Everything the store holds that a request could change, as JSON, for before/after
    /// comparisons. Token `last_used_at` is left out: using a token is not a change.
    pub async fn snapshot(&self) -> Value {
        let (clients, total) = self
            .store
            .list_clients(&ClientFilter {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut per_client = serde_json::Map::new();
        for c in &clients {
            let mut tokens =
                serde_json::to_value(self.store.list_api_tokens(c.id).await.unwrap()).unwrap();
            for t in tokens.as_array_mut().unwrap() {
                t.as_object_mut().unwrap().remove("last_used_at");
            }
            let audit = self
                .store
                .list_audit(
                    c.id,
                    &AuditFilter {
                        limit: 1000,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            per_client.insert(
                c.id.to_string(),
                json!({
                    "users": self.store.list_client_users(c.id).await.unwrap(),
                    "groups": self.store.list_groups(c.id).await.unwrap(),
                    "channels": self.store.list_channels(c.id).await.unwrap(),
                    "invites": self.store.list_invites(c.id).await.unwrap(),
                    "tokens": tokens,
                    "audit": audit,
                }),
            );
        }
        json!({
            "clients": clients,
            "total": total,
            "owners": self.store.list_staff(Role::PlatformOwner).await.unwrap(),
            "moderators": self.store.list_staff(Role::PlatformModerator).await.unwrap(),
            "per_client": per_client,
        })
    }

    /// The actions in a client's audit log (newest first), read through the API as `who`.
    pub async fn audit_actions(&self, who: Who<'_>) -> Vec<String> {
        let r = self.get(who, "/api/v1/audit?limit=200").await;
        assert_eq!(r.status, 200, "audit: {}", r.text());
        r.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_string())
            .collect()
    }

    /// Waits for at least `n` mails in the sandbox (10 s at most) and returns them all.
    pub async fn mails(&self, n: usize) -> Vec<CapturedMail> {
        self.smtp.wait_for(n, Duration::from_secs(10)).await
    }
}

/// The provider secret seeded into a tenant's channel; it must never come out of the API.
pub fn credential_secret(tag: &str) -> String {
    format!("sk-{tag}-do-not-leak")
}

/// The code an authenticator app shows `offset_secs` from now (30 s is the next step, which
/// the server accepts as one step of clock skew).
pub fn totp_code(secret: &[u8], offset_secs: u64) -> String {
    let totp = totp_rs::Builder::new()
        .with_secret(secret.to_vec())
        .build()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    totp.generate(now + offset_secs).to_string()
}

/// The decoded text body of a captured mail.
pub fn mail_text(mail: &CapturedMail) -> String {
    mail_parser::MessageParser::default()
        .parse(mail.data.as_bytes())
        .and_then(|m| m.body_text(0).map(|t| t.into_owned()))
        .unwrap_or_default()
}

/// The secret of a one-time link (`…#token=SECRET`) in a text.
pub fn link_token(text: &str) -> Option<String> {
    let start = text.find("#token=")? + "#token=".len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (!token.is_empty()).then_some(token)
}

// ---------------------------------------------------------------------------------------------
// Actors and the seeded world
// ---------------------------------------------------------------------------------------------

/// A browser session: the cookie value and its CSRF token.
#[derive(Clone, Debug)]
pub struct Sess {
    pub cookie: String,
    pub csrf: String,
}

impl Sess {
    #[track_caller]
    pub fn from_login(r: &Resp, cookie_name: &str) -> Sess {
        let cookie = r
            .cookie(cookie_name)
            .unwrap_or_else(|| panic!("no {cookie_name} cookie in {:?}", r.cookies));
        let csrf = r.json()["csrf_token"]
            .as_str()
            .expect("csrf_token")
            .to_string();
        Sess {
            cookie: cookie.value().to_string(),
            csrf,
        }
    }
}

/// A seeded user with a fixed IP and their current session.
pub struct Actor {
    pub label: String,
    pub user: User,
    pub ip: IpAddr,
    session: RefCell<Option<Sess>>,
}

impl Actor {
    pub fn new(label: &str, user: User) -> Actor {
        Actor {
            label: label.to_string(),
            user,
            ip: fresh_ip(),
            session: RefCell::new(None),
        }
    }

    #[track_caller]
    pub fn session(&self) -> Sess {
        self.session
            .borrow()
            .clone()
            .unwrap_or_else(|| panic!("{} is not signed in", self.label))
    }

    pub fn set_session(&self, s: Sess) {
        *self.session.borrow_mut() = Some(s);
    }

    pub fn who(&self) -> Who<'_> {
        Who::Session(self)
    }

    pub fn email(&self) -> &str {
        &self.user.email
    }
}

/// One seeded client.
pub struct Tenant {
    pub tag: String,
    pub client: Client,
    pub owner: Actor,
    /// An employee with no global rights and no channels.
    pub plain: Actor,
    /// An employee with manage-employees, manage-settings and analytics.
    pub manager: Actor,
    /// Same rights as the manager; holds `token`.
    pub integrator: Actor,
    /// The integrator's API token, made through `POST /api/v1/tokens`.
    pub token: String,
    pub channel: Channel,
    /// Its members: `plain`.
    pub group: Group,
    pub invite: Invite,
    pub invite_token: String,
}

impl Tenant {
    /// The API token, sent from the integrator's IP.
    pub fn token_who(&self) -> Who<'_> {
        Who::Token(&self.token, self.integrator.ip)
    }

    pub fn actors(&self) -> [&Actor; 4] {
        [&self.owner, &self.plain, &self.manager, &self.integrator]
    }
}

/// Two clients (`alpha`, `bravo`) and the platform staff, everyone signed in.
pub struct World {
    pub h: Harness,
    pub platform_owner: Actor,
    pub moderator: Actor,
    pub a: Tenant,
    pub b: Tenant,
}

impl Deref for World {
    type Target = Harness;
    fn deref(&self) -> &Harness {
        &self.h
    }
}

impl World {
    pub async fn new(label: &str) -> World {
        World::with(label, Options::default()).await
    }

    pub async fn with(label: &str, options: Options) -> World {
        let h = Harness::start(label, &options).await;
        let platform_owner = h
            .actor(
                "platform owner",
                "root@platform.test",
                "Platform Root",
                Role::PlatformOwner,
                None,
                GlobalRights::empty(),
            )
            .await;
        let moderator = h
            .actor(
                "moderator",
                "moderator@platform.test",
                "Platform Moderator",
                Role::PlatformModerator,
                None,
                GlobalRights::empty(),
            )
            .await;
        let a = h.seed_tenant("alpha").await;
        let b = h.seed_tenant("bravo").await;
        World {
            h,
            platform_owner,
            moderator,
            a,
            b,
        }
    }
}
