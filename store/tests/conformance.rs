#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The store's conformance suite: every scenario is written once against `dyn Store` and runs
//! on SQLite always (a fresh file per test) and on PostgreSQL when `OMNIHUB_TEST_POSTGRES_URL`
//! names a server (a fresh database per test, dropped afterwards).

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use futures_util::FutureExt;
use omnihub_core::model::*;
use omnihub_core::*;
use omnihub_store::*;
use sqlx::{AssertSqlSafe, Connection};
use uuid::Uuid;

const PG_ENV: &str = "OMNIHUB_TEST_POSTGRES_URL";
/// A fixed key, so a scenario could reopen the same database.
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

// --- harness ------------------------------------------------------------------------------

struct TestDb {
    store: DynStore,
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(PathBuf),
    Postgres { admin_url: String, name: String },
}

fn secrets() -> SecretBox {
    SecretBox::from_base64(KEY).unwrap()
}

impl TestDb {
    async fn sqlite() -> TestDb {
        let dir = std::env::temp_dir().join(format!("omnihub-store-{}", Uuid::new_v4().simple()));
        // A directory that does not exist yet: connect must create it.
        let path = dir.join("data").join("omnihub.db");
        let url = format!("sqlite://{}", path.display());
        let store = omnihub_store::open(&url, secrets()).await.unwrap();
        store.migrate().await.unwrap();
        TestDb {
            store,
            url,
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    async fn postgres(admin_url: &str) -> TestDb {
        let name = format!("omnihub_t_{}", Uuid::new_v4().simple());
        let mut admin = admin_connection(admin_url).await;
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        let url = with_database(admin_url, &name);
        let store = omnihub_store::open(&url, secrets()).await.unwrap();
        store.migrate().await.unwrap();
        TestDb {
            store,
            url,
            cleanup: Cleanup::Postgres {
                admin_url: admin_url.to_string(),
                name,
            },
        }
    }

    async fn finish(self) {
        drop(self.store);
        match self.cleanup {
            Cleanup::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres { admin_url, name } => {
                let mut admin = admin_connection(&admin_url).await;
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await
                .unwrap();
                admin.close().await.unwrap();
            }
        }
    }
}

/// A connection for creating and dropping test databases: to the database the URL names or,
/// when that one does not exist, to the server's `postgres` maintenance database.
async fn admin_connection(admin_url: &str) -> sqlx::PgConnection {
    match sqlx::PgConnection::connect(admin_url).await {
        Ok(conn) => conn,
        Err(first) => sqlx::PgConnection::connect(&with_database(admin_url, "postgres"))
            .await
            .unwrap_or_else(|e| {
                panic!("cannot reach {admin_url} ({first}) nor its postgres database ({e})")
            }),
    }
}

/// `url` with its database name replaced by `db` (query parameters kept).
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let mut out = format!("{}/{db}", &base[..path]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Runs a scenario and removes its database whether it passed or panicked.
async fn run<F, Fut>(db: TestDb, scenario: F)
where
    F: FnOnce(DynStore, String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let outcome = AssertUnwindSafe(scenario(db.store.clone(), db.url.clone()))
        .catch_unwind()
        .await;
    db.finish().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Generates `<scenario>::sqlite` and `<scenario>::postgres` tests for each scenario. Plain
/// scenarios take the store; `raw` ones also get the database URL to look under the store.
macro_rules! conformance {
    (@one $name:ident, $call:expr) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::run(super::TestDb::sqlite().await, $call).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Ok(admin) = std::env::var(super::PG_ENV) else {
                    eprintln!("skipped: {} is not set", super::PG_ENV);
                    return;
                };
                super::run(super::TestDb::postgres(&admin).await, $call).await;
            }
        }
    };
    (store: $($name:ident),* $(,)?) => {
        $(conformance!(@one $name, |store, _url| super::$name(store));)*
    };
    (raw: $($name:ident),* $(,)?) => {
        $(conformance!(@one $name, |store, url| super::$name(store, url));)*
    };
}

conformance!(store:
    ping_engine_and_migrate_again,
    clients_create_get_and_status,
    list_clients_search_status_paging_and_count,
    users_create_get_and_case_insensitive_email,
    users_listing_profile_rights_and_disable,
    lockout_counts_and_resets,
    sessions_expiry_touch_and_revoke,
    api_tokens_revoke_and_expiry,
    invites_lifecycle,
    concurrent_invite_accepts_create_one_user,
    password_reset_is_single_use_and_revokes_sessions,
    groups_and_members,
    channel_grants_replace,
    tenant_isolation,
    ingest_creates_conversation_and_dedupes,
    audit_filter_and_keyset_pagination,
);

conformance!(raw:
    placeholders_bind_by_number,
    totp_secret_is_sealed,
    channel_credentials_are_sealed_and_never_in_channel,
    concurrent_ingest_dedupes,
);

// --- a look under the store ---------------------------------------------------------------

enum Raw {
    Sqlite(sqlx::SqliteConnection),
    Pg(sqlx::PgConnection),
}

impl Raw {
    async fn connect(url: &str) -> Raw {
        if url.starts_with("sqlite:") {
            Raw::Sqlite(sqlx::SqliteConnection::connect(url).await.unwrap())
        } else {
            Raw::Pg(sqlx::PgConnection::connect(url).await.unwrap())
        }
    }

    /// One bytes column of the row whose id is `$1`.
    async fn bytes(&mut self, sql: &'static str, id: Uuid) -> Option<Vec<u8>> {
        match self {
            Raw::Sqlite(c) => sqlx::query_scalar(sql).bind(id).fetch_one(c).await.unwrap(),
            Raw::Pg(c) => sqlx::query_scalar(sql).bind(id).fetch_one(c).await.unwrap(),
        }
    }

    async fn count(&mut self, sql: &'static str, id: Uuid) -> i64 {
        match self {
            Raw::Sqlite(c) => sqlx::query_scalar(sql).bind(id).fetch_one(c).await.unwrap(),
            Raw::Pg(c) => sqlx::query_scalar(sql).bind(id).fetch_one(c).await.unwrap(),
        }
    }

    async fn text2(&mut self, sql: &'static str, a: &str, b: &str) -> String {
        match self {
            Raw::Sqlite(c) => sqlx::query_scalar(sql)
                .bind(a)
                .bind(b)
                .fetch_one(c)
                .await
                .unwrap(),
            Raw::Pg(c) => sqlx::query_scalar(sql)
                .bind(a)
                .bind(b)
                .fetch_one(c)
                .await
                .unwrap(),
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// --- fixtures -----------------------------------------------------------------------------

/// Now, at the millisecond precision the store keeps.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap()
}

fn not_found<T: std::fmt::Debug>(r: Result<T>) {
    assert!(
        matches!(r, Err(StoreError::NotFound)),
        "expected NotFound, got {r:?}"
    );
}

fn conflict<T: std::fmt::Debug>(r: Result<T>, field: &str) {
    match r {
        Err(StoreError::Conflict(f)) => assert_eq!(f, field),
        other => panic!("expected Conflict({field}), got {other:?}"),
    }
}

fn new_user(email: &str, role: Role, client: Option<ClientId>) -> NewUser {
    NewUser {
        email: email.to_string(),
        display_name: format!("name of {email}"),
        password_hash: format!("hash of {email}"),
        role,
        client_id: client,
        global_rights: role.default_global_rights(),
        locale: "ru".to_string(),
    }
}

struct Tenant {
    client: Client,
    owner: User,
    employee: User,
}

async fn tenant(store: &DynStore, name: &str) -> Tenant {
    let client = store.create_client(name, Some("start")).await.unwrap();
    let slug = name.to_lowercase().replace(' ', "-");
    let owner = store
        .create_user(&new_user(
            &format!("owner@{slug}.test"),
            Role::ClientOwner,
            Some(client.id),
        ))
        .await
        .unwrap();
    let employee = store
        .create_user(&new_user(
            &format!("emp@{slug}.test"),
            Role::Employee,
            Some(client.id),
        ))
        .await
        .unwrap();
    Tenant {
        client,
        owner,
        employee,
    }
}

async fn channel(store: &DynStore, client: ClientId, name: &str) -> Channel {
    store
        .create_channel(&NewChannel {
            client_id: client,
            kind: ChannelKind::Messaging,
            provider: Provider::Telegram,
            name: name.to_string(),
            settings: serde_json::json!({"mode": "webhook"}),
            credentials: Some(serde_json::json!({"token": format!("token-of-{name}")})),
        })
        .await
        .unwrap()
}

fn inbound(client: ClientId, channel: ChannelId, chat: &str, event: &str) -> NewInboundMessage {
    NewInboundMessage {
        client_id: client,
        channel_id: channel,
        external_conversation_id: chat.to_string(),
        contact_name: format!("contact {chat}"),
        provider_event_id: event.to_string(),
        text: format!("text of {event}"),
    }
}

fn session(user: UserId, token: &str, expires_at: DateTime<Utc>) -> Session {
    let t = now();
    Session {
        token_hash: token.as_bytes().to_vec(),
        user_id: user,
        csrf_token: format!("csrf-{token}"),
        created_at: t,
        expires_at,
        last_seen_at: t,
        ip: Some("203.0.113.7".into()),
        user_agent: None,
    }
}

fn token(t: &Tenant, hash: &str, expires_at: Option<DateTime<Utc>>) -> NewApiToken {
    NewApiToken {
        client_id: t.client.id,
        user_id: t.owner.id,
        name: format!("token {hash}"),
        prefix: hash.chars().take(4).collect(),
        token_hash: hash.as_bytes().to_vec(),
        expires_at,
    }
}

fn invite(t: &Tenant, email: &str, hash: &str) -> NewInvite {
    NewInvite {
        client_id: t.client.id,
        email: email.to_string(),
        token_hash: hash.as_bytes().to_vec(),
        global_rights: GlobalRights::ANALYTICS,
        group_ids: vec![],
        channel_grants: vec![],
        created_by: t.owner.id,
        expires_at: now() + Duration::days(7),
    }
}

fn audit(client: Option<ClientId>, actor: Option<UserId>, action: &str) -> NewAuditEntry {
    NewAuditEntry {
        client_id: client,
        actor_id: actor,
        action: action.to_string(),
        target_kind: Some("user".into()),
        target_id: Some(action.to_string()),
        details: serde_json::json!({"action": action, "n": [1, 2]}),
        ip: None,
    }
}

// --- tests that do not depend on an engine ------------------------------------------------

fn migration_names(engine: &str) -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(engine);
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn migration_file_names_are_identical_on_both_engines() {
    let sqlite = migration_names("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, migration_names("postgres"));
}

#[test]
fn database_url_swap_keeps_host_and_parameters() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://h/db?sslmode=disable", "x"),
        "postgres://h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
}

/// Both schemas have the same tables with the same columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_have_the_same_tables_and_columns() {
    let Ok(admin) = std::env::var(PG_ENV) else {
        eprintln!("skipped: {PG_ENV} is not set");
        return;
    };
    let lite = TestDb::sqlite().await;
    let pg = TestDb::postgres(&admin).await;

    let mut conn = sqlx::SqliteConnection::connect(&lite.url).await.unwrap();
    let lite_cols: HashSet<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_schema m, pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite%' AND m.name NOT LIKE '_sqlx%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .collect();
    conn.close().await.unwrap();

    let mut conn = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    let pg_cols: HashSet<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name NOT LIKE '\\_sqlx%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .collect();
    conn.close().await.unwrap();

    lite.finish().await;
    pg.finish().await;
    assert!(lite_cols.len() > 50, "{lite_cols:?}");
    assert_eq!(lite_cols, pg_cols);
}

// --- scenarios ----------------------------------------------------------------------------

async fn ping_engine_and_migrate_again(store: DynStore) {
    store.ping().await.unwrap();
    assert!(["sqlite", "postgres"].contains(&store.engine()));
    // Migrating an up-to-date database changes nothing and does not fail.
    store.migrate().await.unwrap();
    let c = store.create_client("Acme", None).await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.get_client(c.id).await.unwrap(), c);
}

async fn placeholders_bind_by_number(store: DynStore, url: String) {
    let mut raw = Raw::connect(&url).await;
    assert_eq!(raw.text2("SELECT $2 || $1", "a", "b").await, "ba");
    assert_eq!(raw.text2("SELECT $2 || $1 || $2", "x", "y").await, "yxy");
    // And through the store, whose get_client_user names `$2` first.
    let t = tenant(&store, "Order").await;
    assert_eq!(
        store
            .get_client_user(t.client.id, t.owner.id)
            .await
            .unwrap(),
        t.owner
    );
}

async fn clients_create_get_and_status(store: DynStore) {
    let c = store.create_client("Acme", Some("pro")).await.unwrap();
    assert_eq!(c.status, ClientStatus::Active);
    assert_eq!(c.plan.as_deref(), Some("pro"));
    assert_eq!(c.blocked_reason, None);
    assert_eq!(store.get_client(c.id).await.unwrap(), c);
    not_found(store.get_client(ClientId::new()).await);

    let blocked = store
        .set_client_status(c.id, ClientStatus::Blocked, Some("spam"))
        .await
        .unwrap();
    assert_eq!(blocked.status, ClientStatus::Blocked);
    assert_eq!(blocked.blocked_reason.as_deref(), Some("spam"));
    assert_eq!(store.get_client(c.id).await.unwrap(), blocked);

    let active = store
        .set_client_status(c.id, ClientStatus::Active, Some("ignored"))
        .await
        .unwrap();
    assert_eq!(active.status, ClientStatus::Active);
    assert_eq!(active.blocked_reason, None);
    assert_eq!(active.created_at, c.created_at);
    not_found(
        store
            .set_client_status(ClientId::new(), ClientStatus::Blocked, None)
            .await,
    );
}

async fn list_clients_search_status_paging_and_count(store: DynStore) {
    let alpha = store.create_client("Alpha Cafe", None).await.unwrap();
    let beta = store.create_client("Бета Салон", None).await.unwrap();
    let gamma = store.create_client("gamma_shop", None).await.unwrap();
    let pure = store.create_client("100% Pure", None).await.unwrap();
    store
        .create_user(&new_user(
            "Boss@Example.ORG",
            Role::ClientOwner,
            Some(gamma.id),
        ))
        .await
        .unwrap();
    store
        .create_user(&new_user(
            "worker@hidden.test",
            Role::Employee,
            Some(alpha.id),
        ))
        .await
        .unwrap();
    store
        .set_client_status(beta.id, ClientStatus::Blocked, Some("debt"))
        .await
        .unwrap();

    let ids = |v: &[Client]| v.iter().map(|c| c.id).collect::<Vec<_>>();
    let search = |query: Option<&str>, status: Option<ClientStatus>, limit: u32, offset: u32| {
        let store = store.clone();
        let filter = ClientFilter {
            query: query.map(str::to_string),
            status,
            limit,
            offset,
        };
        async move { store.list_clients(&filter).await.unwrap() }
    };

    let (all, total) = search(None, None, 0, 0).await;
    assert_eq!(total, 4);
    assert_eq!(
        ids(&all),
        vec![pure.id, gamma.id, beta.id, alpha.id],
        "newest first"
    );

    let (found, total) = search(Some("CAFE"), None, 0, 0).await;
    assert_eq!((ids(&found), total), (vec![alpha.id], 1));
    let (found, total) = search(Some("бета"), None, 0, 0).await;
    assert_eq!(
        (ids(&found), total),
        (vec![beta.id], 1),
        "Cyrillic folds on both engines"
    );
    let (found, _) = search(Some("example.org"), None, 0, 0).await;
    assert_eq!(ids(&found), vec![gamma.id], "owner e-mail matches");
    let (found, _) = search(Some("hidden"), None, 0, 0).await;
    assert!(found.is_empty(), "an employee's e-mail is not the owner's");
    let (found, _) = search(Some("%"), None, 0, 0).await;
    assert_eq!(ids(&found), vec![pure.id], "% is literal");
    let (found, _) = search(Some("a_s"), None, 0, 0).await;
    assert_eq!(ids(&found), vec![gamma.id], "_ is literal");
    let (found, total) = search(Some("nothing like it"), None, 0, 0).await;
    assert_eq!((found.len(), total), (0, 0));

    let (found, total) = search(None, Some(ClientStatus::Blocked), 0, 0).await;
    assert_eq!((ids(&found), total), (vec![beta.id], 1));
    assert_eq!(found[0].blocked_reason.as_deref(), Some("debt"));
    let (found, total) = search(Some("a"), Some(ClientStatus::Active), 0, 0).await;
    assert_eq!((ids(&found), total), (vec![gamma.id, alpha.id], 2));

    let (page, total) = search(None, None, 3, 0).await;
    assert_eq!((ids(&page), total), (vec![pure.id, gamma.id, beta.id], 4));
    let (page, total) = search(None, None, 3, 3).await;
    assert_eq!((ids(&page), total), (vec![alpha.id], 4));
    let (page, total) = search(None, None, 3, 10).await;
    assert_eq!(
        (page.len(), total),
        (0, 4),
        "the total does not depend on the page"
    );
}

async fn users_create_get_and_case_insensitive_email(store: DynStore) {
    let t = tenant(&store, "Mail").await;
    let u = store
        .create_user(&new_user(
            "Mixed.Case@Example.COM",
            Role::Employee,
            Some(t.client.id),
        ))
        .await
        .unwrap();
    assert_eq!(u.email, "mixed.case@example.com");
    assert_eq!(u.role, Role::Employee);
    assert_eq!(u.client_id, Some(t.client.id));
    assert!(!u.disabled && !u.totp_enabled);
    assert_eq!(store.get_user(u.id).await.unwrap(), u);
    assert_eq!(store.get_client_user(t.client.id, u.id).await.unwrap(), u);

    conflict(
        store
            .create_user(&new_user(
                "MIXED.case@example.com",
                Role::Employee,
                Some(t.client.id),
            ))
            .await,
        "email",
    );
    // Unicode folds too.
    store
        .create_user(&new_user(
            "Пётр@Пример.РФ",
            Role::Employee,
            Some(t.client.id),
        ))
        .await
        .unwrap();
    conflict(
        store
            .create_user(&new_user(
                "пётр@пример.рф",
                Role::Employee,
                Some(t.client.id),
            ))
            .await,
        "email",
    );

    let creds = store
        .credentials_by_email("mIxEd.CaSe@EXAMPLE.com")
        .await
        .unwrap();
    assert_eq!(creds.user, u);
    assert_eq!(creds.password_hash, "hash of Mixed.Case@Example.COM");
    assert_eq!(creds.totp_secret, None);
    assert_eq!((creds.failed_logins, creds.locked_until), (0, None));
    assert_eq!(store.credentials(u.id).await.unwrap().user, u);

    not_found(store.get_user(UserId::new()).await);
    not_found(store.credentials(UserId::new()).await);
    not_found(store.credentials_by_email("nobody@example.com").await);
    not_found(
        store
            .create_user(&new_user("x@y.z", Role::Employee, Some(ClientId::new())))
            .await,
    );

    let staff = store
        .create_user(&new_user("root@platform.test", Role::PlatformOwner, None))
        .await
        .unwrap();
    assert_eq!(staff.client_id, None);
    assert_eq!(staff.global_rights, GlobalRights::empty());
}

async fn users_listing_profile_rights_and_disable(store: DynStore) {
    let a = tenant(&store, "Listing A").await;
    let b = tenant(&store, "Listing B").await;
    let owner = store
        .create_user(&new_user("po@platform.test", Role::PlatformOwner, None))
        .await
        .unwrap();
    let m1 = store
        .create_user(&new_user("m1@platform.test", Role::PlatformModerator, None))
        .await
        .unwrap();
    let m2 = store
        .create_user(&new_user("m2@platform.test", Role::PlatformModerator, None))
        .await
        .unwrap();

    assert_eq!(
        store.list_client_users(a.client.id).await.unwrap(),
        vec![a.owner.clone(), a.employee.clone()]
    );
    assert_eq!(
        store.list_client_users(b.client.id).await.unwrap(),
        vec![b.owner.clone(), b.employee.clone()]
    );
    assert!(
        store
            .list_client_users(ClientId::new())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.list_staff(Role::PlatformOwner).await.unwrap(),
        vec![owner]
    );
    assert_eq!(
        store.list_staff(Role::PlatformModerator).await.unwrap(),
        vec![m1, m2]
    );

    let u = store
        .update_user_profile(a.employee.id, Some("Анна"), None)
        .await
        .unwrap();
    assert_eq!((u.display_name.as_str(), u.locale.as_str()), ("Анна", "ru"));
    let u = store
        .update_user_profile(a.employee.id, None, Some("en"))
        .await
        .unwrap();
    assert_eq!((u.display_name.as_str(), u.locale.as_str()), ("Анна", "en"));
    assert_eq!(store.get_user(a.employee.id).await.unwrap(), u);
    not_found(
        store
            .update_user_profile(UserId::new(), Some("x"), None)
            .await,
    );

    let rights = GlobalRights::MANAGE_EMPLOYEES | GlobalRights::BILLING;
    let u = store
        .set_user_rights(a.client.id, a.employee.id, Role::Employee, rights)
        .await
        .unwrap();
    assert_eq!(u.global_rights, rights);
    assert_eq!(
        store.get_user(a.employee.id).await.unwrap().global_rights,
        rights
    );
    let u = store
        .set_user_rights(
            a.client.id,
            a.employee.id,
            Role::ClientOwner,
            GlobalRights::all(),
        )
        .await
        .unwrap();
    assert_eq!(
        (u.role, u.global_rights),
        (Role::ClientOwner, GlobalRights::all())
    );

    let u = store.set_user_disabled(a.employee.id, true).await.unwrap();
    assert!(u.disabled);
    assert!(
        store
            .credentials(a.employee.id)
            .await
            .unwrap()
            .user
            .disabled
    );
    assert!(
        !store
            .set_user_disabled(a.employee.id, false)
            .await
            .unwrap()
            .disabled
    );
    not_found(store.set_user_disabled(UserId::new(), true).await);

    store
        .set_password_hash(a.employee.id, "new hash")
        .await
        .unwrap();
    assert_eq!(
        store
            .credentials(a.employee.id)
            .await
            .unwrap()
            .password_hash,
        "new hash"
    );
    not_found(store.set_password_hash(UserId::new(), "x").await);
}

async fn totp_secret_is_sealed(store: DynStore, url: String) {
    let t = tenant(&store, "Totp").await;
    let secret = b"JBSWY3DPEHPK3PXP-totp-secret";
    store
        .set_totp(t.owner.id, Some(secret), true)
        .await
        .unwrap();
    let creds = store.credentials(t.owner.id).await.unwrap();
    assert_eq!(creds.totp_secret.as_deref(), Some(&secret[..]));
    assert!(creds.user.totp_enabled);
    assert!(store.get_user(t.owner.id).await.unwrap().totp_enabled);

    let mut raw = Raw::connect(&url).await;
    let stored = raw
        .bytes("SELECT totp_secret FROM users WHERE id = $1", t.owner.id.0)
        .await
        .unwrap();
    assert!(
        !contains(&stored, secret),
        "the TOTP secret is stored in the clear"
    );
    assert_eq!(
        SecretBox::from_base64(KEY).unwrap().open(&stored).unwrap(),
        secret
    );

    // Pending set-up: a secret, not yet enforced.
    store
        .set_totp(t.owner.id, Some(b"other"), false)
        .await
        .unwrap();
    let creds = store.credentials(t.owner.id).await.unwrap();
    assert_eq!(
        (creds.totp_secret.as_deref(), creds.user.totp_enabled),
        (Some(&b"other"[..]), false)
    );

    store.set_totp(t.owner.id, None, true).await.unwrap();
    let creds = store.credentials(t.owner.id).await.unwrap();
    assert_eq!((creds.totp_secret, creds.user.totp_enabled), (None, false));
    assert_eq!(
        raw.bytes("SELECT totp_secret FROM users WHERE id = $1", t.owner.id.0)
            .await,
        None
    );
    not_found(store.set_totp(UserId::new(), None, false).await);
}

async fn lockout_counts_and_resets(store: DynStore) {
    let t = tenant(&store, "Lock").await;
    let id = t.employee.id;
    let at = now();
    let lock_for = Duration::minutes(15);

    let f = store
        .record_login_failure(id, at, 3, lock_for)
        .await
        .unwrap();
    assert_eq!(
        f,
        LoginFailure {
            failed_logins: 1,
            locked_until: None
        }
    );
    let f = store
        .record_login_failure(id, at, 3, lock_for)
        .await
        .unwrap();
    assert_eq!(
        f,
        LoginFailure {
            failed_logins: 2,
            locked_until: None
        }
    );
    let f = store
        .record_login_failure(id, at, 3, lock_for)
        .await
        .unwrap();
    assert_eq!(
        f,
        LoginFailure {
            failed_logins: 3,
            locked_until: Some(at + lock_for)
        }
    );

    let creds = store.credentials(id).await.unwrap();
    assert_eq!(
        (creds.failed_logins, creds.locked_until),
        (3, Some(at + lock_for))
    );
    // The other user is untouched.
    assert_eq!(
        store.credentials(t.owner.id).await.unwrap().failed_logins,
        0
    );

    store.reset_login_failures(id).await.unwrap();
    let creds = store.credentials(id).await.unwrap();
    assert_eq!((creds.failed_logins, creds.locked_until), (0, None));

    // Concurrent failures are all counted.
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.record_login_failure(id, at, 100, lock_for).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(store.credentials(id).await.unwrap().failed_logins, 6);
    store.reset_login_failures(id).await.unwrap();

    // A threshold of zero never locks.
    let f = store
        .record_login_failure(id, at, 0, lock_for)
        .await
        .unwrap();
    assert_eq!(
        f,
        LoginFailure {
            failed_logins: 1,
            locked_until: None
        }
    );

    not_found(
        store
            .record_login_failure(UserId::new(), at, 3, lock_for)
            .await,
    );
    not_found(store.reset_login_failures(UserId::new()).await);
}

async fn sessions_expiry_touch_and_revoke(store: DynStore) {
    let t = tenant(&store, "Sessions").await;
    let start = now();
    let a1 = session(t.owner.id, "a1", start + Duration::hours(1));
    let a2 = session(t.owner.id, "a2", start + Duration::minutes(5));
    let b1 = session(t.employee.id, "b1", start + Duration::hours(1));
    for s in [&a1, &a2, &b1] {
        store.create_session(s).await.unwrap();
    }
    conflict(store.create_session(&a1).await, "session");
    not_found(
        store
            .create_session(&session(UserId::new(), "orphan", start))
            .await,
    );

    let later = start + Duration::minutes(1);
    let touched = store.touch_session(b"a1", later).await.unwrap();
    assert_eq!(
        touched,
        Session {
            last_seen_at: later,
            ..a1.clone()
        }
    );
    assert_eq!(
        store
            .touch_session(b"a1", later)
            .await
            .unwrap()
            .last_seen_at,
        later
    );

    // Expiry is exclusive: at expires_at the session is gone.
    not_found(store.touch_session(b"a2", a2.expires_at).await);
    assert_eq!(
        store.touch_session(b"a2", later).await.unwrap().user_id,
        t.owner.id
    );
    not_found(store.touch_session(b"nope", later).await);

    assert_eq!(store.revoke_user_sessions(t.owner.id).await.unwrap(), 2);
    assert_eq!(store.revoke_user_sessions(t.owner.id).await.unwrap(), 0);
    not_found(store.touch_session(b"a1", later).await);
    assert_eq!(
        store.touch_session(b"b1", later).await.unwrap().user_id,
        t.employee.id
    );

    store.delete_session(b"b1").await.unwrap();
    not_found(store.touch_session(b"b1", later).await);
    store.delete_session(b"b1").await.unwrap();

    // delete_expired removes expired sessions and reset tokens, and nothing live.
    store
        .create_session(&session(t.owner.id, "old", start + Duration::minutes(1)))
        .await
        .unwrap();
    store
        .create_session(&session(t.owner.id, "live", start + Duration::hours(2)))
        .await
        .unwrap();
    store
        .create_password_reset(t.owner.id, b"old-reset", start + Duration::minutes(1))
        .await
        .unwrap();
    store
        .create_password_reset(t.owner.id, b"live-reset", start + Duration::hours(2))
        .await
        .unwrap();
    let at = start + Duration::minutes(30);
    assert_eq!(store.delete_expired(at).await.unwrap(), 2);
    assert_eq!(store.delete_expired(at).await.unwrap(), 0);
    assert!(store.touch_session(b"live", at).await.is_ok());
    not_found(store.touch_session(b"old", start).await);
    assert_eq!(
        store
            .consume_password_reset(b"live-reset", at, "h")
            .await
            .unwrap(),
        t.owner.id
    );
}

async fn api_tokens_revoke_and_expiry(store: DynStore) {
    let a = tenant(&store, "Tokens A").await;
    let b = tenant(&store, "Tokens B").await;
    let at = now();

    let t1 = store
        .create_api_token(&token(&a, "secret-one", None))
        .await
        .unwrap();
    assert_eq!(
        (t1.client_id, t1.user_id, t1.prefix.as_str()),
        (a.client.id, a.owner.id, "secr")
    );
    assert_eq!(
        (t1.last_used_at, t1.revoked_at, t1.expires_at),
        (None, None, None)
    );
    let t2 = store
        .create_api_token(&token(&a, "secret-two", Some(at + Duration::hours(1))))
        .await
        .unwrap();
    conflict(
        store.create_api_token(&token(&a, "secret-one", None)).await,
        "token",
    );
    // A token cannot act as a user of another client.
    let mut foreign = token(&a, "secret-foreign", None);
    foreign.user_id = b.owner.id;
    not_found(store.create_api_token(&foreign).await);

    assert_eq!(
        store.list_api_tokens(a.client.id).await.unwrap(),
        vec![t1.clone(), t2.clone()]
    );
    assert!(store.list_api_tokens(b.client.id).await.unwrap().is_empty());

    let used = store.use_api_token(b"secret-one", at).await.unwrap();
    assert_eq!(
        used,
        ApiToken {
            last_used_at: Some(at),
            ..t1.clone()
        }
    );
    not_found(store.use_api_token(b"unknown", at).await);

    // Expiry.
    assert!(
        store
            .use_api_token(b"secret-two", at + Duration::minutes(59))
            .await
            .is_ok()
    );
    not_found(
        store
            .use_api_token(b"secret-two", at + Duration::hours(1))
            .await,
    );

    // Revocation, by the owning client only, keeping the first revocation time.
    not_found(store.revoke_api_token(b.client.id, t1.id, at).await);
    assert!(store.use_api_token(b"secret-one", at).await.is_ok());
    let revoked = store
        .revoke_api_token(a.client.id, t1.id, at)
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(at));
    not_found(store.use_api_token(b"secret-one", at).await);
    let again = store
        .revoke_api_token(a.client.id, t1.id, at + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(again.revoked_at, Some(at));
    not_found(
        store
            .revoke_api_token(a.client.id, ApiTokenId::new(), at)
            .await,
    );
}

async fn invites_lifecycle(store: DynStore) {
    let a = tenant(&store, "Invites A").await;
    let b = tenant(&store, "Invites B").await;
    let group = store.create_group(a.client.id, "Sales").await.unwrap();
    let ch = channel(&store, a.client.id, "bot").await;
    let foreign_group = store.create_group(b.client.id, "Theirs").await.unwrap();
    let foreign_channel = channel(&store, b.client.id, "their bot").await;
    let at = now();

    let mut new = invite(&a, "New.Person@Example.com", "invite-1");
    new.group_ids = vec![group.id];
    new.channel_grants = vec![ChannelGrant {
        channel_id: ch.id,
        rights: ChannelRights::READ | ChannelRights::REPLY,
    }];
    let inv = store.create_invite(&new).await.unwrap();
    assert_eq!(inv.email, "new.person@example.com");
    assert_eq!(
        (inv.group_ids.clone(), inv.channel_grants.clone()),
        (new.group_ids.clone(), new.channel_grants.clone())
    );
    assert_eq!(inv.accepted_at, None);
    conflict(store.create_invite(&new).await, "token");

    // Groups and channels of another client cannot be promised.
    let mut bad = invite(&a, "x@example.com", "invite-bad-group");
    bad.group_ids = vec![foreign_group.id];
    not_found(store.create_invite(&bad).await);
    let mut bad = invite(&a, "x@example.com", "invite-bad-channel");
    bad.channel_grants = vec![ChannelGrant {
        channel_id: foreign_channel.id,
        rights: ChannelRights::READ,
    }];
    not_found(store.create_invite(&bad).await);

    assert_eq!(
        store.list_invites(a.client.id).await.unwrap(),
        vec![inv.clone()]
    );
    assert!(store.list_invites(b.client.id).await.unwrap().is_empty());
    assert_eq!(store.pending_invite(b"invite-1", at).await.unwrap(), inv);
    not_found(store.pending_invite(b"invite-1", inv.expires_at).await);
    not_found(store.pending_invite(b"nope", at).await);
    not_found(
        store
            .accept_invite(b"invite-1", inv.expires_at, "Late", "h", "ru")
            .await,
    );

    let user = store
        .accept_invite(b"invite-1", at, "New Person", "pw-hash", "en")
        .await
        .unwrap();
    assert_eq!(user.email, "new.person@example.com");
    assert_eq!(
        (user.role, user.client_id),
        (Role::Employee, Some(a.client.id))
    );
    assert_eq!(user.global_rights, GlobalRights::ANALYTICS);
    assert_eq!(
        (user.display_name.as_str(), user.locale.as_str()),
        ("New Person", "en")
    );
    assert_eq!(
        store.credentials(user.id).await.unwrap().password_hash,
        "pw-hash"
    );
    assert_eq!(
        store.user_groups(a.client.id, user.id).await.unwrap(),
        vec![group.id]
    );
    assert_eq!(
        store.channel_grants(a.client.id, user.id).await.unwrap(),
        new.channel_grants
    );
    assert_eq!(
        store
            .get_group(a.client.id, group.id)
            .await
            .unwrap()
            .member_ids,
        vec![user.id]
    );

    not_found(store.pending_invite(b"invite-1", at).await);
    not_found(
        store
            .accept_invite(b"invite-1", at, "Again", "h", "ru")
            .await,
    );
    let listed = store.list_invites(a.client.id).await.unwrap();
    assert_eq!(listed[0].accepted_at, Some(at));

    // A taken address fails the whole acceptance: the invite stays pending.
    let taken = store
        .create_invite(&invite(&a, "EMP@invites-a.test", "invite-taken"))
        .await
        .unwrap();
    conflict(
        store
            .accept_invite(b"invite-taken", at, "Dup", "h", "ru")
            .await,
        "email",
    );
    assert_eq!(
        store.pending_invite(b"invite-taken", at).await.unwrap(),
        taken
    );

    // Groups and channels deleted meanwhile are skipped.
    let gone_group = store.create_group(a.client.id, "Gone").await.unwrap();
    let gone_channel = channel(&store, a.client.id, "gone").await;
    let mut late = invite(&a, "late@example.com", "invite-late");
    late.group_ids = vec![gone_group.id, group.id];
    late.channel_grants = vec![ChannelGrant {
        channel_id: gone_channel.id,
        rights: ChannelRights::all(),
    }];
    store.create_invite(&late).await.unwrap();
    store
        .delete_group(a.client.id, gone_group.id)
        .await
        .unwrap();
    store
        .delete_channel(a.client.id, gone_channel.id)
        .await
        .unwrap();
    let late_user = store
        .accept_invite(b"invite-late", at, "Late", "h", "ru")
        .await
        .unwrap();
    assert_eq!(
        store.user_groups(a.client.id, late_user.id).await.unwrap(),
        vec![group.id]
    );
    assert!(
        store
            .channel_grants(a.client.id, late_user.id)
            .await
            .unwrap()
            .is_empty()
    );

    // Deletion, by the owning client only.
    not_found(store.delete_invite(b.client.id, taken.id).await);
    store.delete_invite(a.client.id, taken.id).await.unwrap();
    not_found(store.delete_invite(a.client.id, taken.id).await);
    not_found(store.pending_invite(b"invite-taken", at).await);
}

async fn concurrent_invite_accepts_create_one_user(store: DynStore) {
    let a = tenant(&store, "Race").await;
    store
        .create_invite(&invite(&a, "racer@example.com", "race"))
        .await
        .unwrap();
    let at = now();
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .accept_invite(b"race", at, &format!("Racer {i}"), "h", "ru")
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(user) => {
                ok += 1;
                assert_eq!(user.email, "racer@example.com");
            }
            Err(StoreError::NotFound) => {}
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!(ok, 1);
    let users = store.list_client_users(a.client.id).await.unwrap();
    assert_eq!(
        users
            .iter()
            .filter(|u| u.email == "racer@example.com")
            .count(),
        1
    );
    assert_eq!(users.len(), 3);
}

async fn password_reset_is_single_use_and_revokes_sessions(store: DynStore) {
    let t = tenant(&store, "Reset").await;
    let at = now();
    let id = t.owner.id;
    store
        .create_session(&session(id, "s1", at + Duration::hours(1)))
        .await
        .unwrap();
    store
        .create_session(&session(id, "s2", at + Duration::hours(1)))
        .await
        .unwrap();
    store
        .create_session(&session(t.employee.id, "other", at + Duration::hours(1)))
        .await
        .unwrap();
    store
        .create_password_reset(id, b"r1", at + Duration::hours(1))
        .await
        .unwrap();
    store
        .create_password_reset(id, b"r2", at + Duration::hours(1))
        .await
        .unwrap();
    store
        .create_password_reset(t.employee.id, b"r-other", at + Duration::hours(1))
        .await
        .unwrap();
    store
        .create_password_reset(id, b"r-expired", at)
        .await
        .unwrap();
    conflict(
        store
            .create_password_reset(id, b"r1", at + Duration::hours(1))
            .await,
        "token",
    );
    not_found(
        store
            .create_password_reset(UserId::new(), b"r-nobody", at)
            .await,
    );

    not_found(store.consume_password_reset(b"r-expired", at, "x").await);
    not_found(store.consume_password_reset(b"unknown", at, "x").await);
    assert_eq!(
        store.credentials(id).await.unwrap().password_hash,
        "hash of owner@reset.test"
    );

    assert_eq!(
        store
            .consume_password_reset(b"r1", at, "new-hash")
            .await
            .unwrap(),
        id
    );
    assert_eq!(
        store.credentials(id).await.unwrap().password_hash,
        "new-hash"
    );
    not_found(store.touch_session(b"s1", at).await);
    not_found(store.touch_session(b"s2", at).await);
    // Single use, and the user's other tokens went with it.
    not_found(store.consume_password_reset(b"r1", at, "again").await);
    not_found(store.consume_password_reset(b"r2", at, "again").await);
    assert_eq!(
        store.credentials(id).await.unwrap().password_hash,
        "new-hash"
    );
    // Another user's session and token are untouched.
    assert!(store.touch_session(b"other", at).await.is_ok());
    assert_eq!(
        store
            .consume_password_reset(b"r-other", at, "e")
            .await
            .unwrap(),
        t.employee.id
    );
}

async fn groups_and_members(store: DynStore) {
    let a = tenant(&store, "Groups A").await;
    let b = tenant(&store, "Groups B").await;
    let sales = store.create_group(a.client.id, "Sales").await.unwrap();
    assert_eq!(
        (sales.name.as_str(), sales.client_id, sales.member_ids.len()),
        ("Sales", a.client.id, 0)
    );
    conflict(store.create_group(a.client.id, "Sales").await, "name");
    store.create_group(b.client.id, "Sales").await.unwrap();
    not_found(store.create_group(ClientId::new(), "Orphans").await);
    let support = store.create_group(a.client.id, "Support").await.unwrap();

    let renamed = store
        .rename_group(a.client.id, sales.id, "Sales EU")
        .await
        .unwrap();
    assert_eq!(renamed.name, "Sales EU");
    conflict(
        store.rename_group(a.client.id, sales.id, "Support").await,
        "name",
    );
    not_found(store.rename_group(a.client.id, GroupId::new(), "X").await);

    let mut both = vec![a.owner.id, a.employee.id];
    both.sort();
    let g = store
        .set_group_members(
            a.client.id,
            sales.id,
            &[a.employee.id, a.owner.id, a.employee.id],
        )
        .await
        .unwrap();
    assert_eq!(g.member_ids, both);
    assert_eq!(store.get_group(a.client.id, sales.id).await.unwrap(), g);
    store
        .set_group_members(a.client.id, support.id, &[a.employee.id])
        .await
        .unwrap();

    let groups = store.list_groups(a.client.id).await.unwrap();
    assert_eq!(
        groups
            .iter()
            .map(|g| (g.id, g.member_ids.clone()))
            .collect::<Vec<_>>(),
        vec![(sales.id, both.clone()), (support.id, vec![a.employee.id])]
    );
    let mut expect = vec![sales.id, support.id];
    expect.sort();
    assert_eq!(
        store.user_groups(a.client.id, a.employee.id).await.unwrap(),
        expect
    );
    assert_eq!(
        store.user_groups(a.client.id, a.owner.id).await.unwrap(),
        vec![sales.id]
    );

    // Replacing, not adding.
    let g = store
        .set_group_members(a.client.id, sales.id, &[a.owner.id])
        .await
        .unwrap();
    assert_eq!(g.member_ids, vec![a.owner.id]);
    assert_eq!(
        store.user_groups(a.client.id, a.employee.id).await.unwrap(),
        vec![support.id]
    );
    let g = store
        .set_group_members(a.client.id, sales.id, &[])
        .await
        .unwrap();
    assert!(g.member_ids.is_empty());

    store.delete_group(a.client.id, support.id).await.unwrap();
    not_found(store.get_group(a.client.id, support.id).await);
    not_found(store.delete_group(a.client.id, support.id).await);
    assert!(
        store
            .user_groups(a.client.id, a.employee.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.list_groups(a.client.id).await.unwrap().len(), 1);
}

async fn channel_credentials_are_sealed_and_never_in_channel(store: DynStore, url: String) {
    let a = tenant(&store, "Channels").await;
    let plaintext = "super-secret-bot-token-42";
    let ch = store
        .create_channel(&NewChannel {
            client_id: a.client.id,
            kind: ChannelKind::Messaging,
            provider: Provider::Telegram,
            name: "Support bot".into(),
            settings: serde_json::json!({"webhook": true, "limit": 30}),
            credentials: Some(serde_json::json!({"token": plaintext})),
        })
        .await
        .unwrap();
    assert!(ch.has_credentials);
    assert_eq!(
        (ch.kind, ch.provider),
        (ChannelKind::Messaging, Provider::Telegram)
    );
    assert_eq!(store.get_channel(a.client.id, ch.id).await.unwrap(), ch);
    let shown = serde_json::to_string(&store.list_channels(a.client.id).await.unwrap()).unwrap();
    assert!(
        !shown.contains(plaintext),
        "credentials leaked into Channel: {shown}"
    );

    let mut raw = Raw::connect(&url).await;
    let stored = raw
        .bytes("SELECT credentials FROM channels WHERE id = $1", ch.id.0)
        .await
        .unwrap();
    assert!(
        !contains(&stored, plaintext.as_bytes()),
        "credentials are stored in the clear"
    );
    assert!(!contains(&stored, b"token"));

    assert_eq!(
        store.channel_credentials(a.client.id, ch.id).await.unwrap(),
        Some(serde_json::json!({"token": plaintext}))
    );
    not_found(
        store
            .channel_credentials(a.client.id, ChannelId::new())
            .await,
    );

    // Patches touch only what they name.
    let patch = ChannelPatch {
        name: Some("Renamed".into()),
        ..Default::default()
    };
    let renamed = store
        .update_channel(a.client.id, ch.id, &patch)
        .await
        .unwrap();
    assert_eq!(
        renamed,
        Channel {
            name: "Renamed".into(),
            ..ch.clone()
        }
    );
    assert!(
        store
            .channel_credentials(a.client.id, ch.id)
            .await
            .unwrap()
            .is_some()
    );
    let patch = ChannelPatch {
        settings: Some(serde_json::json!({"webhook": false})),
        ..Default::default()
    };
    let updated = store
        .update_channel(a.client.id, ch.id, &patch)
        .await
        .unwrap();
    assert_eq!(updated.settings, serde_json::json!({"webhook": false}));
    assert_eq!(updated.name, "Renamed");
    let patch = ChannelPatch {
        credentials: Some(serde_json::json!({"token": "rotated"})),
        ..Default::default()
    };
    assert!(
        store
            .update_channel(a.client.id, ch.id, &patch)
            .await
            .unwrap()
            .has_credentials
    );
    assert_eq!(
        store.channel_credentials(a.client.id, ch.id).await.unwrap(),
        Some(serde_json::json!({"token": "rotated"}))
    );
    let patch = ChannelPatch {
        credentials: Some(serde_json::Value::Null),
        ..Default::default()
    };
    assert!(
        !store
            .update_channel(a.client.id, ch.id, &patch)
            .await
            .unwrap()
            .has_credentials
    );
    assert_eq!(
        store.channel_credentials(a.client.id, ch.id).await.unwrap(),
        None
    );
    assert_eq!(
        raw.bytes("SELECT credentials FROM channels WHERE id = $1", ch.id.0)
            .await,
        None
    );
    not_found(
        store
            .update_channel(a.client.id, ChannelId::new(), &ChannelPatch::default())
            .await,
    );

    // A channel without credentials.
    let bare = store
        .create_channel(&NewChannel {
            client_id: a.client.id,
            kind: ChannelKind::Social,
            provider: Provider::Vk,
            name: "Page".into(),
            settings: serde_json::json!({}),
            credentials: None,
        })
        .await
        .unwrap();
    assert!(!bare.has_credentials);
    assert_eq!(store.list_channels(a.client.id).await.unwrap().len(), 2);

    // Hard delete takes the grants with it.
    store
        .set_channel_grants(
            a.client.id,
            a.employee.id,
            &[ChannelGrant {
                channel_id: ch.id,
                rights: ChannelRights::READ,
            }],
        )
        .await
        .unwrap();
    store.delete_channel(a.client.id, ch.id).await.unwrap();
    not_found(store.get_channel(a.client.id, ch.id).await);
    not_found(store.delete_channel(a.client.id, ch.id).await);
    assert!(
        store
            .channel_grants(a.client.id, a.employee.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.list_channels(a.client.id).await.unwrap(), vec![bare]);
}

async fn channel_grants_replace(store: DynStore) {
    let a = tenant(&store, "Grants").await;
    let c1 = channel(&store, a.client.id, "one").await;
    let c2 = channel(&store, a.client.id, "two").await;
    assert!(
        store
            .channel_grants(a.client.id, a.employee.id)
            .await
            .unwrap()
            .is_empty()
    );

    let grants = vec![
        ChannelGrant {
            channel_id: c1.id,
            rights: ChannelRights::READ | ChannelRights::REPLY,
        },
        ChannelGrant {
            channel_id: c2.id,
            rights: ChannelRights::full(),
        },
    ];
    store
        .set_channel_grants(a.client.id, a.employee.id, &grants)
        .await
        .unwrap();
    assert_eq!(
        store
            .channel_grants(a.client.id, a.employee.id)
            .await
            .unwrap(),
        grants
    );
    assert!(
        store
            .channel_grants(a.client.id, a.owner.id)
            .await
            .unwrap()
            .is_empty()
    );

    let replaced = vec![ChannelGrant {
        channel_id: c2.id,
        rights: ChannelRights::ANALYTICS,
    }];
    store
        .set_channel_grants(a.client.id, a.employee.id, &replaced)
        .await
        .unwrap();
    assert_eq!(
        store
            .channel_grants(a.client.id, a.employee.id)
            .await
            .unwrap(),
        replaced
    );

    // A failed replacement changes nothing.
    let bad = vec![
        ChannelGrant {
            channel_id: c1.id,
            rights: ChannelRights::READ,
        },
        ChannelGrant {
            channel_id: ChannelId::new(),
            rights: ChannelRights::READ,
        },
    ];
    not_found(
        store
            .set_channel_grants(a.client.id, a.employee.id, &bad)
            .await,
    );
    assert_eq!(
        store
            .channel_grants(a.client.id, a.employee.id)
            .await
            .unwrap(),
        replaced
    );

    store
        .set_channel_grants(a.client.id, a.employee.id, &[])
        .await
        .unwrap();
    assert!(
        store
            .channel_grants(a.client.id, a.employee.id)
            .await
            .unwrap()
            .is_empty()
    );
    not_found(
        store
            .set_channel_grants(a.client.id, UserId::new(), &[])
            .await,
    );
}

/// Client A can reach nothing of client B's, through any scoped call.
async fn tenant_isolation(store: DynStore) {
    let a = tenant(&store, "Iso A").await;
    let b = tenant(&store, "Iso B").await;
    let (ca, cb) = (a.client.id, b.client.id);
    let group_a = store.create_group(ca, "A team").await.unwrap();
    let group_b = store.create_group(cb, "B team").await.unwrap();
    let group_b = store
        .set_group_members(cb, group_b.id, &[b.employee.id])
        .await
        .unwrap();
    let chan_a = channel(&store, ca, "a bot").await;
    let chan_b = channel(&store, cb, "b bot").await;
    let grants_b = vec![ChannelGrant {
        channel_id: chan_b.id,
        rights: ChannelRights::READ,
    }];
    store
        .set_channel_grants(cb, b.employee.id, &grants_b)
        .await
        .unwrap();
    let token_b = store
        .create_api_token(&token(&b, "b-token", None))
        .await
        .unwrap();
    let invite_b = store
        .create_invite(&invite(&b, "new@b.test", "b-invite"))
        .await
        .unwrap();
    let Ingested::New(msg_b) = store
        .ingest_inbound(&inbound(cb, chan_b.id, "chat", "e1"))
        .await
        .unwrap()
    else {
        panic!("first event must be new")
    };
    let conv_b = msg_b.conversation_id;
    store
        .append_audit(&audit(Some(cb), Some(b.owner.id), "b.secret"))
        .await
        .unwrap();
    let at = now();

    // Reads.
    not_found(store.get_client_user(ca, b.owner.id).await);
    not_found(store.get_group(ca, group_b.id).await);
    not_found(store.get_channel(ca, chan_b.id).await);
    not_found(store.channel_credentials(ca, chan_b.id).await);
    not_found(store.get_conversation(ca, conv_b).await);
    not_found(store.list_messages(ca, conv_b).await);
    not_found(store.user_groups(ca, b.employee.id).await);
    not_found(store.channel_grants(ca, b.employee.id).await);
    assert!(
        !store
            .list_client_users(ca)
            .await
            .unwrap()
            .iter()
            .any(|u| u.client_id == Some(cb))
    );
    assert!(
        store
            .list_groups(ca)
            .await
            .unwrap()
            .iter()
            .all(|g| g.client_id == ca)
    );
    assert_eq!(store.list_channels(ca).await.unwrap(), vec![chan_a.clone()]);
    assert!(store.list_api_tokens(ca).await.unwrap().is_empty());
    assert!(store.list_invites(ca).await.unwrap().is_empty());
    assert!(
        store
            .list_audit(ca, &AuditFilter::default())
            .await
            .unwrap()
            .is_empty()
    );

    // Writes.
    not_found(
        store
            .set_user_rights(ca, b.employee.id, Role::Employee, GlobalRights::all())
            .await,
    );
    not_found(store.rename_group(ca, group_b.id, "mine").await);
    not_found(store.delete_group(ca, group_b.id).await);
    not_found(
        store
            .set_group_members(ca, group_b.id, &[a.employee.id])
            .await,
    );
    not_found(
        store
            .set_group_members(ca, group_a.id, &[a.employee.id, b.employee.id])
            .await,
    );
    not_found(
        store
            .update_channel(
                ca,
                chan_b.id,
                &ChannelPatch {
                    name: Some("mine".into()),
                    ..Default::default()
                },
            )
            .await,
    );
    not_found(store.delete_channel(ca, chan_b.id).await);
    not_found(
        store
            .set_channel_grants(
                ca,
                a.employee.id,
                &[ChannelGrant {
                    channel_id: chan_b.id,
                    rights: ChannelRights::all(),
                }],
            )
            .await,
    );
    not_found(store.set_channel_grants(ca, b.employee.id, &[]).await);
    not_found(store.revoke_api_token(ca, token_b.id, at).await);
    not_found(store.delete_invite(ca, invite_b.id).await);
    not_found(
        store
            .ingest_inbound(&inbound(ca, chan_b.id, "chat", "e2"))
            .await,
    );
    // Not even a retry of B's event through A's id tells anything.
    not_found(
        store
            .ingest_inbound(&inbound(ca, chan_b.id, "chat", "e1"))
            .await,
    );

    // B's data is as it was.
    assert_eq!(store.get_user(b.employee.id).await.unwrap(), b.employee);
    assert_eq!(store.get_group(cb, group_b.id).await.unwrap(), group_b);
    assert!(
        store
            .get_group(ca, group_a.id)
            .await
            .unwrap()
            .member_ids
            .is_empty()
    );
    assert_eq!(store.get_channel(cb, chan_b.id).await.unwrap(), chan_b);
    assert_eq!(
        store.channel_grants(cb, b.employee.id).await.unwrap(),
        grants_b
    );
    assert!(
        store
            .channel_grants(ca, a.employee.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.list_api_tokens(cb).await.unwrap(), vec![token_b]);
    assert_eq!(store.list_invites(cb).await.unwrap(), vec![invite_b]);
    assert_eq!(store.list_messages(cb, conv_b).await.unwrap(), vec![msg_b]);
    assert_eq!(
        store
            .list_audit(cb, &AuditFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn ingest_creates_conversation_and_dedupes(store: DynStore) {
    let a = tenant(&store, "Inbox").await;
    let tg = channel(&store, a.client.id, "tg").await;
    let vk = channel(&store, a.client.id, "vk").await;

    let Ingested::New(m1) = store
        .ingest_inbound(&inbound(a.client.id, tg.id, "chat-1", "ev-1"))
        .await
        .unwrap()
    else {
        panic!("first event must be new")
    };
    assert_eq!(m1.direction, Direction::Inbound);
    assert_eq!(m1.status, DeliveryStatus::Received);
    assert_eq!(m1.provider_event_id.as_deref(), Some("ev-1"));
    assert_eq!((m1.text.as_str(), m1.author_id), ("text of ev-1", None));
    let conv = store
        .get_conversation(a.client.id, m1.conversation_id)
        .await
        .unwrap();
    assert_eq!(
        (conv.channel_id, conv.external_id.as_str()),
        (tg.id, "chat-1")
    );
    assert_eq!(
        (conv.status, conv.assignee_id, conv.group_id),
        (ConversationStatus::New, None, None)
    );
    assert_eq!(conv.client_id, a.client.id);

    // The same conversation gets the next message; a retry is a duplicate.
    let Ingested::New(m2) = store
        .ingest_inbound(&inbound(a.client.id, tg.id, "chat-1", "ev-2"))
        .await
        .unwrap()
    else {
        panic!("second event must be new")
    };
    assert_eq!(m2.conversation_id, conv.id);
    assert_eq!(
        store
            .ingest_inbound(&inbound(a.client.id, tg.id, "chat-1", "ev-1"))
            .await
            .unwrap(),
        Ingested::Duplicate(m1.id)
    );
    assert_eq!(
        store.list_messages(a.client.id, conv.id).await.unwrap(),
        vec![m1.clone(), m2.clone()]
    );

    // Another chat is another conversation with another contact.
    let Ingested::New(m3) = store
        .ingest_inbound(&inbound(a.client.id, tg.id, "chat-2", "ev-3"))
        .await
        .unwrap()
    else {
        panic!("new chat must be new")
    };
    let conv2 = store
        .get_conversation(a.client.id, m3.conversation_id)
        .await
        .unwrap();
    assert_ne!(conv2.id, conv.id);
    assert_ne!(conv2.contact_id, conv.contact_id);

    // Ids are per channel: the same chat and event ids on another channel are new.
    let Ingested::New(m4) = store
        .ingest_inbound(&inbound(a.client.id, vk.id, "chat-1", "ev-1"))
        .await
        .unwrap()
    else {
        panic!("same ids on another channel must be new")
    };
    assert_ne!(m4.conversation_id, conv.id);
    assert_eq!(
        store
            .get_conversation(a.client.id, m4.conversation_id)
            .await
            .unwrap()
            .channel_id,
        vk.id
    );

    not_found(
        store
            .ingest_inbound(&inbound(a.client.id, ChannelId::new(), "c", "e"))
            .await,
    );
    not_found(
        store
            .get_conversation(a.client.id, ConversationId::new())
            .await,
    );
    not_found(
        store
            .list_messages(a.client.id, ConversationId::new())
            .await,
    );

    // Deleting the channel takes its conversations along.
    store.delete_channel(a.client.id, tg.id).await.unwrap();
    not_found(store.get_conversation(a.client.id, conv.id).await);
}

async fn concurrent_ingest_dedupes(store: DynStore, url: String) {
    let a = tenant(&store, "Concurrent").await;
    let ch = channel(&store, a.client.id, "bot").await;

    // Five deliveries of one event, on a conversation nobody has seen yet.
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let store = store.clone();
            let msg = inbound(a.client.id, ch.id, "chat", "event-1");
            tokio::spawn(async move { store.ingest_inbound(&msg).await })
        })
        .collect();
    let mut new = Vec::new();
    let mut duplicates = Vec::new();
    for task in tasks {
        match task.await.unwrap().unwrap() {
            Ingested::New(m) => new.push(m),
            Ingested::Duplicate(id) => duplicates.push(id),
        }
    }
    assert_eq!(new.len(), 1, "exactly one delivery is new");
    assert_eq!(duplicates, vec![new[0].id; 4]);
    assert_eq!(
        store
            .list_messages(a.client.id, new[0].conversation_id)
            .await
            .unwrap(),
        new
    );

    // Five different events racing to open one new conversation.
    let tasks: Vec<_> = (0..5)
        .map(|i| {
            let store = store.clone();
            let msg = inbound(a.client.id, ch.id, "chat-2", &format!("event-2-{i}"));
            tokio::spawn(async move { store.ingest_inbound(&msg).await })
        })
        .collect();
    let mut conversations = HashSet::new();
    for task in tasks {
        let Ingested::New(m) = task.await.unwrap().unwrap() else {
            panic!("distinct events are new")
        };
        conversations.insert(m.conversation_id);
    }
    assert_eq!(conversations.len(), 1);
    let conv = *conversations.iter().next().unwrap();
    assert_eq!(
        store.list_messages(a.client.id, conv).await.unwrap().len(),
        5
    );

    // No stray contacts or conversations were left by the losers.
    let mut raw = Raw::connect(&url).await;
    let client = a.client.id.0;
    assert_eq!(
        raw.count(
            "SELECT COUNT(*) FROM conversations WHERE client_id = $1",
            client
        )
        .await,
        2
    );
    assert_eq!(
        raw.count("SELECT COUNT(*) FROM contacts WHERE client_id = $1", client)
            .await,
        2
    );
    assert_eq!(
        raw.count("SELECT COUNT(*) FROM messages WHERE client_id = $1", client)
            .await,
        6
    );
}

async fn audit_filter_and_keyset_pagination(store: DynStore) {
    let a = tenant(&store, "Audit A").await;
    let b = tenant(&store, "Audit B").await;
    let ca = a.client.id;
    let actions = [
        (a.owner.id, "employee.invite"),
        (a.employee.id, "channel.create"),
        (a.owner.id, "employee.remove"),
        (a.owner.id, "employees.export"),
        (a.employee.id, "Employee.odd"),
        (a.owner.id, "channel.delete"),
        (a.employee.id, "employee.invite"),
    ];
    let mut entries = Vec::new();
    for (actor, action) in actions {
        entries.push(
            store
                .append_audit(&audit(Some(ca), Some(actor), action))
                .await
                .unwrap(),
        );
    }
    store
        .append_audit(&audit(
            Some(b.client.id),
            Some(b.owner.id),
            "employee.invite",
        ))
        .await
        .unwrap();
    let platform = store
        .append_audit(&audit(None, None, "client.block"))
        .await
        .unwrap();
    assert_eq!(platform.client_id, None);
    not_found(
        store
            .append_audit(&audit(Some(ClientId::new()), None, "x"))
            .await,
    );
    not_found(
        store
            .append_audit(&audit(Some(ca), Some(UserId::new()), "x"))
            .await,
    );

    let newest_first: Vec<AuditEntry> = entries.iter().rev().cloned().collect();
    let list = |filter: AuditFilter| {
        let store = store.clone();
        async move { store.list_audit(ca, &filter).await.unwrap() }
    };
    assert_eq!(
        list(AuditFilter::default()).await,
        newest_first,
        "limit 0 is a default page"
    );
    assert_eq!(
        entries[0].details,
        serde_json::json!({"action": "employee.invite", "n": [1, 2]})
    );

    let by_actor = list(AuditFilter {
        actor_id: Some(a.employee.id),
        ..Default::default()
    })
    .await;
    assert_eq!(
        by_actor,
        vec![entries[6].clone(), entries[4].clone(), entries[1].clone()]
    );

    let prefixed = list(AuditFilter {
        action_prefix: Some("employee.".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(
        prefixed,
        vec![entries[6].clone(), entries[2].clone(), entries[0].clone()],
        "case-sensitive prefix"
    );
    let both = list(AuditFilter {
        actor_id: Some(a.owner.id),
        action_prefix: Some("employee".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(
        both,
        vec![entries[3].clone(), entries[2].clone(), entries[0].clone()]
    );
    assert!(
        list(AuditFilter {
            action_prefix: Some("%".into()),
            ..Default::default()
        })
        .await
        .is_empty()
    );

    // Keyset pagination walks everything exactly once.
    let mut walked = Vec::new();
    let mut before = None;
    loop {
        let page = list(AuditFilter {
            before,
            limit: 3,
            ..Default::default()
        })
        .await;
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        walked.extend(page);
    }
    assert_eq!(walked, newest_first);
    let page = list(AuditFilter {
        before: Some(entries[3].id),
        limit: 2,
        ..Default::default()
    })
    .await;
    assert_eq!(page, vec![entries[2].clone(), entries[1].clone()]);
}
