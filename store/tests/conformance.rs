#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The store's conformance suite: every scenario is written once against `dyn Store` and runs
//! on SQLite always (a fresh file per test) and on PostgreSQL when `OMNIHUB_TEST_POSTGRES_URL`
//! names a server (a fresh database per test, dropped afterwards).

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use futures_util::{FutureExt, StreamExt};
use omnihub_core::events::{EventKind, HubEvent};
use omnihub_core::model::*;
use omnihub_core::routing::{AutoReplies, Presence, RoutingMode, TimeRange, WeeklyHours};
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
    ingest_batch_commits_together_and_fails_alone,
    ingest_batch_moves_conversations_as_one_by_one,
    poll_cursors_are_kept_per_channel_and_client,
    calls_are_recorded_finished_once_and_counted,
    widgets_keys_visitors_and_their_conversations,
    poll_leases_have_one_holder_and_pass_on_when_they_run_out,
    audit_filter_and_keyset_pagination,
    outbound_is_idempotent_and_notes_stay_inside,
    delivery_moves_forward_only,
    conversation_updates_assign_transfer_and_snooze,
    concurrent_assignment_has_one_winner,
    list_conversations_filters_unread_and_pages,
    tags_and_read_marks_append_events,
    search_finds_words_in_any_script,
    contacts_merge_and_split,
    quick_replies_crud,
    routing_snapshot_settings_and_load,
    routing_queue_is_fifo_and_idempotent,
    ingest_says_whether_the_conversation_waits,
    events_resume_without_gaps,
    old_events_are_pruned_and_the_head_stays,
    tasks_lease_complete_fail_and_dedupe,
    recurring_tasks_schedule_their_next_occurrence_once,
    clients_see_and_control_only_their_tasks,
    triggers_crud_and_notifications_once,
    inbound_attachments_wait_then_are_stored_or_failed,
    inbound_attachments_already_stored_are_ready_at_once,
    uploads_go_out_with_one_reply_only,
);

conformance!(raw:
    placeholders_bind_by_number,
    totp_secret_is_sealed,
    channel_credentials_are_sealed_and_never_in_channel,
    concurrent_ingest_dedupes,
    requests_follow_resolve_and_return,
    events_are_announced_across_nodes,
    ten_thousand_due_tasks_are_claimed_once,
    social_profiles_posts_threads_and_media,
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

    async fn count(&mut self, sql: &str, id: Uuid) -> i64 {
        let sql = AssertSqlSafe(sql.to_string());
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

/// An inbound event on `chat`, from the chat's own user (`user-<chat>`).
fn inbound(client: ClientId, channel: ChannelId, chat: &str, event: &str) -> InboundEvent {
    InboundEvent {
        attachments: Vec::new(),
        client_id: client,
        channel_id: channel,
        external_conversation_id: chat.to_string(),
        external_user_id: format!("user-{chat}"),
        contact_name: format!("contact {chat}"),
        provider_event_id: event.to_string(),
        text: format!("text of {event}"),
    }
}

/// The same event sent by another user id.
fn sent_by(user: &str, ev: InboundEvent) -> InboundEvent {
    InboundEvent {
        external_user_id: user.to_string(),
        ..ev
    }
}

/// The same event with another text.
fn saying(text: &str, ev: InboundEvent) -> InboundEvent {
    InboundEvent {
        text: text.to_string(),
        ..ev
    }
}

/// What `Ingest::New` carries, for tests that expect a new message.
struct Ingested {
    message: Message,
    conversation: Conversation,
    new_request: bool,
    returning_customer: bool,
    waiting: bool,
    event_seq: i64,
}

fn expect_new(i: Ingest) -> Ingested {
    match i {
        Ingest::New {
            message,
            conversation,
            new_request,
            returning_customer,
            waiting,
            event_seq,
        } => Ingested {
            message,
            conversation,
            new_request,
            returning_customer,
            waiting,
            event_seq,
        },
        Ingest::Duplicate(id) => panic!("expected a new message, got a duplicate of {id}"),
    }
}

async fn ingest_new(store: &DynStore, ev: &InboundEvent) -> Ingested {
    expect_new(store.ingest(ev).await.unwrap())
}

/// The event `seq` of `client`, as the log keeps it.
async fn stored_event(store: &DynStore, client: ClientId, seq: i64) -> HubEvent {
    let mut events = store.events_after(client, seq - 1, 1).await.unwrap();
    assert_eq!(
        events.first().map(|e| e.seq),
        Some(seq),
        "event {seq} of {client}"
    );
    events.remove(0)
}

fn outbound(
    client: ClientId,
    conversation: ConversationId,
    kind: MessageKind,
    key: &str,
    author: Option<UserId>,
) -> NewOutbound {
    NewOutbound {
        attachments: Vec::new(),
        client_id: client,
        conversation_id: conversation,
        author_id: author,
        kind,
        text: format!("reply {key}"),
        idempotency_key: key.to_string(),
    }
}

/// A `message_created` payload: the message, with the conversation after it.
fn message_created(m: &Message, c: &Conversation) -> serde_json::Value {
    let mut v = json(m);
    v.as_object_mut()
        .unwrap()
        .insert("conversation".into(), json(c));
    v
}

/// `event` is the `message_created` of `new`, with the conversation as that message left it.
fn assert_message_created(event: &HubEvent, new: &Ingested) {
    let c = &new.conversation;
    assert_eq!(
        (event.seq, event.kind, event.client_id),
        (new.event_seq, EventKind::MessageCreated, c.client_id)
    );
    assert_eq!(
        (event.conversation_id, event.channel_id),
        (Some(c.id), Some(c.channel_id))
    );
    assert_eq!(
        (event.assignee_id, event.group_id),
        (c.assignee_id, c.group_id)
    );
    assert_eq!(event.payload, message_created(&new.message, c));
}

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap()
}

/// The payload of a `conversation_updated` event: the conversation and its tags.
fn conversation_payload(c: &Conversation, tags: &[&str]) -> serde_json::Value {
    let mut v = json(c);
    v.as_object_mut()
        .unwrap()
        .insert("tags".into(), serde_json::json!(tags));
    v
}

fn patch() -> ConversationPatch {
    ConversationPatch::default()
}

/// Lets the millisecond clock move on, so timestamps of what follows differ.
async fn tick() {
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
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
        // The FTS5 index and its shadow tables are SQLite's counterpart of a PostgreSQL index.
        "SELECT m.name, p.name FROM sqlite_schema m, pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite%' AND m.name NOT LIKE '_sqlx%' \
         AND m.name NOT LIKE 'messages_fts%'",
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
    let b_in = ingest_new(&store, &inbound(cb, chan_b.id, "chat", "e1")).await;
    let msg_b = b_in.message.clone();
    let conv_b = msg_b.conversation_id;
    let contact_b = b_in.conversation.contact_id;
    let (reply_b, _) = store
        .add_outbound(&outbound(cb, conv_b, MessageKind::Message, "k", None))
        .await
        .unwrap();
    store
        .set_delivery(cb, reply_b.id, DeliveryStatus::Sent, None, Some("pm-b"))
        .await
        .unwrap();
    let (reply_b, _) = store
        .set_delivery(cb, reply_b.id, DeliveryStatus::Sent, None, None)
        .await
        .unwrap();
    store.add_tag(cb, conv_b, "vip").await.unwrap();
    let quick_b = store.create_quick_reply(cb, "hi", "Hello").await.unwrap();
    store.enqueue(cb, conv_b, Some(group_b.id)).await.unwrap();
    store
        .append_audit(&audit(Some(cb), Some(b.owner.id), "b.secret"))
        .await
        .unwrap();
    let a_in = ingest_new(&store, &inbound(ca, chan_a.id, "chat", "e1")).await;
    let conv_a = a_in.conversation.id;
    let conversation_b = store.get_conversation(cb, conv_b).await.unwrap();
    let b_events = store.events_after(cb, 0, 0).await.unwrap();
    let b_snapshot = store.routing_snapshot(cb).await.unwrap();
    let at = now();

    // Reads.
    not_found(store.get_client_user(ca, b.owner.id).await);
    not_found(store.get_group(ca, group_b.id).await);
    not_found(store.get_channel(ca, chan_b.id).await);
    not_found(store.channel_credentials(ca, chan_b.id).await);
    not_found(store.get_conversation(ca, conv_b).await);
    not_found(store.conversation_messages(ca, conv_b, None, 0).await);
    not_found(store.conversation_tags(ca, conv_b).await);
    not_found(store.get_contact(ca, contact_b).await);
    not_found(store.contact_identities(ca, contact_b).await);
    not_found(store.message_by_provider_id(ca, chan_b.id, "pm-b").await);
    not_found(
        store
            .list_conversations(ca, Some(b.owner.id), &ConversationFilter::default())
            .await,
    );
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
    let listed = store
        .list_conversations(ca, Some(a.owner.id), &ConversationFilter::default())
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|s| s.conversation.id).collect::<Vec<_>>(),
        vec![conv_a]
    );
    // Without a viewer (routing) the same client's conversations, and only those.
    let unviewed = store
        .list_conversations(ca, None, &ConversationFilter::default())
        .await
        .unwrap();
    assert_eq!(
        unviewed
            .iter()
            .map(|s| s.conversation.id)
            .collect::<Vec<_>>(),
        vec![conv_a]
    );
    // Even naming B's channel in the filter shows nothing of B's.
    assert!(
        store
            .list_conversations(
                ca,
                Some(a.owner.id),
                &ConversationFilter {
                    channels: Some(vec![chan_b.id]),
                    ..Default::default()
                }
            )
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .search_messages(ca, None, "text", 0)
            .await
            .unwrap()
            .iter()
            .map(|m| m.client_id)
            .collect::<Vec<_>>(),
        vec![ca]
    );
    assert!(
        store
            .search_messages(ca, Some(&[chan_b.id]), "text", 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.pending_outbound(ca, 0).await.unwrap().is_empty());
    assert!(store.list_quick_replies(ca).await.unwrap().is_empty());
    assert!(
        store
            .events_after(ca, 0, 0)
            .await
            .unwrap()
            .iter()
            .all(|e| e.client_id == ca)
    );
    let snapshot_a = store.routing_snapshot(ca).await.unwrap();
    assert!(snapshot_a.groups.iter().all(|(g, _, _)| g.client_id == ca));
    assert!(
        snapshot_a
            .operators
            .iter()
            .all(|o| [a.owner.id, a.employee.id].contains(&o.user_id))
    );
    assert!(snapshot_a.queue.is_empty());

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
    not_found(store.ingest(&inbound(ca, chan_b.id, "chat", "e2")).await);
    // Not even a retry of B's event through A's id tells anything.
    not_found(store.ingest(&inbound(ca, chan_b.id, "chat", "e1")).await);
    not_found(
        store
            .add_outbound(&outbound(ca, conv_b, MessageKind::Message, "k2", None))
            .await,
    );
    // Nor a retry of B's reply key.
    not_found(
        store
            .add_outbound(&outbound(ca, conv_b, MessageKind::Message, "k", None))
            .await,
    );
    not_found(
        store
            .add_outbound(&outbound(
                ca,
                conv_a,
                MessageKind::Note,
                "n",
                Some(b.owner.id),
            ))
            .await,
    );
    not_found(
        store
            .set_delivery(ca, reply_b.id, DeliveryStatus::Read, None, Some("x"))
            .await,
    );
    let take = ConversationPatch {
        assignee_id: Some(Some(a.employee.id)),
        status: Some(ConversationStatus::Resolved),
        ..patch()
    };
    not_found(store.update_conversation(ca, conv_b, &take).await);
    let to_b_user = ConversationPatch {
        assignee_id: Some(Some(b.employee.id)),
        ..patch()
    };
    not_found(store.update_conversation(ca, conv_a, &to_b_user).await);
    let to_b_group = ConversationPatch {
        group_id: Some(Some(group_b.id)),
        ..patch()
    };
    not_found(store.update_conversation(ca, conv_a, &to_b_group).await);
    not_found(store.add_tag(ca, conv_b, "mine").await);
    not_found(store.remove_tag(ca, conv_b, "vip").await);
    not_found(store.mark_read(ca, conv_b, a.owner.id, msg_b.id).await);
    not_found(
        store
            .mark_read(ca, conv_a, b.owner.id, a_in.message.id)
            .await,
    );
    not_found(store.mark_read(ca, conv_a, a.owner.id, msg_b.id).await);
    not_found(
        store
            .update_contact(ca, contact_b, Some("mine"), None)
            .await,
    );
    not_found(
        store
            .merge_contacts(ca, a_in.conversation.contact_id, contact_b)
            .await,
    );
    not_found(
        store
            .merge_contacts(ca, contact_b, a_in.conversation.contact_id)
            .await,
    );
    let identity_b = store.contact_identities(cb, contact_b).await.unwrap();
    not_found(store.split_contact(ca, contact_b, &identity_b[0]).await);
    not_found(store.delete_quick_reply(ca, quick_b.id).await);
    not_found(
        store
            .set_group_routing(
                ca,
                group_b.id,
                &GroupRouting {
                    mode: RoutingMode::MostSkilled,
                    hours: WeeklyHours::default(),
                    auto_replies: AutoReplies::default(),
                },
            )
            .await,
    );
    not_found(
        store
            .set_competency(ca, group_b.id, b.employee.id, 99)
            .await,
    );
    not_found(
        store
            .set_operator(ca, b.employee.id, Some(99), None, None)
            .await,
    );
    not_found(store.enqueue(ca, conv_b, None).await);
    not_found(store.enqueue(ca, conv_a, Some(group_b.id)).await);
    not_found(store.dequeue(ca, conv_b).await);

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
    assert_eq!(
        store
            .conversation_messages(cb, conv_b, None, 0)
            .await
            .unwrap(),
        vec![msg_b, reply_b.clone()]
    );
    assert_eq!(
        store.get_conversation(cb, conv_b).await.unwrap(),
        conversation_b
    );
    assert_eq!(
        store.conversation_tags(cb, conv_b).await.unwrap(),
        vec!["vip"]
    );
    assert_eq!(
        store
            .message_by_provider_id(cb, chan_b.id, "pm-b")
            .await
            .unwrap(),
        reply_b
    );
    assert_eq!(
        store.contact_identities(cb, contact_b).await.unwrap(),
        identity_b
    );
    assert_eq!(store.list_quick_replies(cb).await.unwrap(), vec![quick_b]);
    assert_eq!(store.events_after(cb, 0, 0).await.unwrap(), b_events);
    assert_eq!(store.routing_snapshot(cb).await.unwrap(), b_snapshot);
    assert_eq!(
        store
            .list_audit(cb, &AuditFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn ingest_batch_commits_together_and_fails_alone(store: DynStore) {
    let a = tenant(&store, "Batch").await;
    let b = tenant(&store, "Other").await;
    let c = a.client.id;
    let tg = channel(&store, c, "tg").await;
    let foreign = channel(&store, b.client.id, "foreign").await;
    let known = ingest_new(&store, &inbound(c, tg.id, "chat-0", "ev-0")).await;

    let batch = vec![
        inbound(c, tg.id, "chat-1", "ev-1"),
        // Another client's channel: refused alone, leaves nothing behind.
        inbound(c, foreign.id, "chat-x", "ev-x"),
        // The same event twice in one batch: the second is a duplicate of the first.
        inbound(c, tg.id, "chat-1", "ev-2"),
        inbound(c, tg.id, "chat-1", "ev-2"),
        // A retry of an event committed earlier.
        inbound(c, tg.id, "chat-0", "ev-0"),
        inbound(c, tg.id, "chat-2", "ev-3"),
    ];
    let outcomes = store.ingest_batch(&batch).await.unwrap();
    assert_eq!(outcomes.len(), batch.len());
    let mut outcomes = outcomes.into_iter();
    let first = expect_new(outcomes.next().unwrap().unwrap());
    assert!(first.new_request && !first.returning_customer);
    assert!(matches!(
        outcomes.next().unwrap(),
        Err(StoreError::NotFound)
    ));
    let second = expect_new(outcomes.next().unwrap().unwrap());
    assert_eq!(
        second.message.conversation_id,
        first.message.conversation_id
    );
    assert!(!second.new_request);
    assert_eq!(
        outcomes.next().unwrap().unwrap(),
        Ingest::Duplicate(second.message.id)
    );
    assert_eq!(
        outcomes.next().unwrap().unwrap(),
        Ingest::Duplicate(known.message.id)
    );
    let third = expect_new(outcomes.next().unwrap().unwrap());
    assert_ne!(third.message.conversation_id, first.message.conversation_id);

    // Committed in order, one event each, nothing of the refused one.
    let seqs: Vec<i64> = [&first, &second, &third]
        .iter()
        .map(|i| i.event_seq)
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let events = store.events_after(c, known.event_seq, 0).await.unwrap();
    assert_eq!(events.len(), 3);
    for (event, new) in events.iter().zip([&first, &second, &third]) {
        assert_message_created(event, new);
    }
    assert!(
        store
            .events_after(b.client.id, 0, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .get_conversation(c, first.message.conversation_id)
            .await
            .unwrap(),
        second.conversation
    );
    assert!(store.ingest_batch(&[]).await.unwrap().is_empty());

    // The customer's last word, not the operator's.
    let conversation = first.message.conversation_id;
    assert_eq!(
        store.last_inbound_at(c, conversation).await.unwrap(),
        Some(second.message.created_at)
    );
    tick().await;
    let reply = outbound(c, conversation, MessageKind::Message, "r-1", None);
    store.add_outbound(&reply).await.unwrap();
    assert_eq!(
        store.last_inbound_at(c, conversation).await.unwrap(),
        Some(second.message.created_at)
    );
    assert_eq!(
        store
            .last_inbound_at(b.client.id, conversation)
            .await
            .unwrap(),
        None,
        "another client's conversation"
    );
}

/// A batch leaves conversations, requests and events as the same events taken one by one
/// would: several messages into one conversation, a new request after resolve, a pending
/// conversation answered, a new conversation and its second message, a duplicate inside.
async fn ingest_batch_moves_conversations_as_one_by_one(store: DynStore) {
    let a = tenant(&store, "Batch moves").await;
    let c = a.client.id;
    let tg = channel(&store, c, "tg").await;
    let resolved = ingest_new(&store, &inbound(c, tg.id, "chat-a", "ev-a1")).await;
    let status = |s: ConversationStatus| ConversationPatch {
        status: Some(s),
        ..ConversationPatch::default()
    };
    store
        .update_conversation(
            c,
            resolved.conversation.id,
            &status(ConversationStatus::Resolved),
        )
        .await
        .unwrap();
    let pending = ingest_new(&store, &inbound(c, tg.id, "chat-b", "ev-b1")).await;
    store
        .update_conversation(
            c,
            pending.conversation.id,
            &status(ConversationStatus::Pending),
        )
        .await
        .unwrap();
    store
        .set_blocked(c, pending.conversation.id, Some("bot blocked"))
        .await
        .unwrap();
    // Every column of a conversation set, and an id JSON must escape.
    let odd_chat = "чат \"d\" \\ \u{1F600}";
    let held = ingest_new(&store, &inbound(c, tg.id, odd_chat, "ev-d1")).await;
    let sales = store.create_group(c, "Sales").await.unwrap();
    store
        .update_conversation(
            c,
            held.conversation.id,
            &ConversationPatch {
                status: Some(ConversationStatus::Snoozed),
                snoozed_until: Some(Some(now() + Duration::hours(1))),
                assignee_id: Some(Some(a.employee.id)),
                group_id: Some(Some(sales.id)),
                ..ConversationPatch::default()
            },
        )
        .await
        .unwrap();
    store
        .set_blocked(c, held.conversation.id, Some("blocked \"again\""))
        .await
        .unwrap();
    let head = store.last_event_seq().await.unwrap();
    tick().await;

    let batch = vec![
        inbound(c, tg.id, "chat-a", "ev-a2"),
        inbound(c, tg.id, "chat-b", "ev-b2"),
        inbound(c, tg.id, "chat-a", "ev-a3"),
        inbound(c, tg.id, "chat-c", "ev-c1"),
        inbound(c, tg.id, "chat-a", "ev-a2"),
        inbound(c, tg.id, "chat-c", "ev-c2"),
        inbound(c, tg.id, odd_chat, "ev-d2"),
    ];
    let mut outcomes = store.ingest_batch(&batch).await.unwrap().into_iter();
    let a2 = expect_new(outcomes.next().unwrap().unwrap());
    let b2 = expect_new(outcomes.next().unwrap().unwrap());
    let a3 = expect_new(outcomes.next().unwrap().unwrap());
    let c1 = expect_new(outcomes.next().unwrap().unwrap());
    assert_eq!(
        outcomes.next().unwrap().unwrap(),
        Ingest::Duplicate(a2.message.id)
    );
    let c2 = expect_new(outcomes.next().unwrap().unwrap());
    let d2 = expect_new(outcomes.next().unwrap().unwrap());
    assert!(outcomes.next().is_none());

    // After resolve: a new request, once.
    assert!(a2.new_request && a2.returning_customer);
    assert_eq!(
        (a2.conversation.status, a2.conversation.request_no),
        (ConversationStatus::New, 2)
    );
    assert!(!a3.new_request);
    assert_eq!(
        (a3.conversation.status, a3.conversation.request_no),
        (ConversationStatus::New, 2)
    );
    assert!(a3.conversation.last_message_at >= a2.conversation.last_message_at);
    // The customer answered: open again, and no longer blocked.
    assert!(!b2.new_request);
    assert_eq!(b2.conversation.status, ConversationStatus::Open);
    assert_eq!(b2.conversation.blocked_at, None);
    assert_eq!(b2.conversation.blocked_reason, None);
    // A new chat: its first message opens request 1, the second follows it.
    assert!(c1.new_request && !c1.returning_customer);
    assert_eq!(c1.conversation.request_no, 1);
    assert!(!c2.new_request && c2.returning_customer);
    assert_eq!(c2.conversation.id, c1.conversation.id);
    // Held by an employee of a group: it stays theirs, woken and unblocked.
    assert_eq!(d2.conversation.id, held.conversation.id);
    assert_eq!(d2.conversation.status, ConversationStatus::Open);
    assert_eq!(d2.conversation.snoozed_until, None);
    assert_eq!(d2.conversation.blocked_reason, None);
    assert_eq!(d2.conversation.external_id, odd_chat);
    assert_eq!(d2.conversation.assignee_id, Some(a.employee.id));
    assert_eq!(d2.conversation.group_id, Some(sales.id));
    assert_eq!(d2.conversation.contact_id, held.conversation.contact_id);
    assert_eq!(d2.conversation.created_at, held.conversation.created_at);

    for (id, last) in [
        (a2.conversation.id, &a3.conversation),
        (b2.conversation.id, &b2.conversation),
        (c1.conversation.id, &c2.conversation),
        (d2.conversation.id, &d2.conversation),
    ] {
        assert_eq!(&store.get_conversation(c, id).await.unwrap(), last);
    }
    let events = store.events_after(c, head, 0).await.unwrap();
    assert_eq!(events.len(), 6);
    for (event, new) in events.iter().zip([&a2, &b2, &a3, &c1, &c2, &d2]) {
        assert_message_created(event, new);
    }
    // Each event carries its conversation as its own message left it.
    assert_eq!(
        events[0].payload["conversation"]["request_no"],
        serde_json::json!(2)
    );
    assert_eq!(
        events[3].payload["conversation"]["id"],
        serde_json::json!(c1.conversation.id)
    );
    let texts: Vec<String> = store
        .conversation_messages(c, a2.conversation.id, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(texts.len(), 3, "{texts:?}");
}

fn new_widget(client: ClientId, name: &str) -> NewChannel {
    NewChannel {
        client_id: client,
        kind: ChannelKind::Messaging,
        provider: Provider::Widget,
        name: name.to_string(),
        settings: serde_json::json!({"origins": ["https://shop.test"]}),
        credentials: None,
    }
}

async fn widgets_keys_visitors_and_their_conversations(store: DynStore) {
    let a = tenant(&store, "Widgets").await;
    let b = tenant(&store, "Other widgets").await;
    let w = store
        .create_widget(&new_widget(a.client.id, "site"), "pk_a")
        .await
        .unwrap();
    assert_eq!(w.provider, Provider::Widget);
    assert!(!w.has_credentials);
    // The key is unique across every client, and a failed create leaves no channel behind.
    assert!(matches!(
        store
            .create_widget(&new_widget(b.client.id, "copy"), "pk_a")
            .await,
        Err(StoreError::Conflict("public_key"))
    ));
    assert!(store.list_channels(b.client.id).await.unwrap().is_empty());
    // Only widgets, without credentials.
    let mut not_widget = new_widget(a.client.id, "tg");
    not_widget.provider = Provider::Telegram;
    assert!(store.create_widget(&not_widget, "pk_tg").await.is_err());
    assert_eq!(store.widget_key(a.client.id, w.id).await.unwrap(), "pk_a");
    assert!(matches!(
        store.widget_key(b.client.id, w.id).await,
        Err(StoreError::NotFound)
    ));
    let tg = channel(&store, a.client.id, "tg").await;
    assert!(matches!(
        store.widget_key(a.client.id, tg.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.widget_by_key("pk_a").await.unwrap().id, w.id);
    assert!(matches!(
        store.widget_by_key("pk_missing").await,
        Err(StoreError::NotFound)
    ));

    // Visitors: found only by their own token within their own widget.
    let other_w = store
        .create_widget(&new_widget(a.client.id, "second site"), "pk_a2")
        .await
        .unwrap();
    let new_visitor = |channel: ChannelId, hash: &[u8]| NewVisitor {
        client_id: a.client.id,
        channel_id: channel,
        token_hash: hash.to_vec(),
        name: "Анна".into(),
        details: serde_json::json!({"email": "anna@example.test"}),
    };
    let v = store
        .create_visitor(&new_visitor(w.id, b"hash-1"))
        .await
        .unwrap();
    assert_eq!(v.channel_id, w.id);
    let again = store.visitor_by_token(w.id, b"hash-1").await.unwrap();
    assert_eq!(again.id, v.id);
    assert_eq!(again.details["email"], "anna@example.test");
    assert!(again.last_seen_at >= v.last_seen_at);
    assert!(matches!(
        store.visitor_by_token(other_w.id, b"hash-1").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.visitor_by_token(w.id, b"hash-2").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.create_visitor(&new_visitor(w.id, b"hash-1")).await,
        Err(StoreError::Conflict(_))
    ));
    // Not on a channel that is no widget, nor on another client's widget.
    assert!(matches!(
        store.create_visitor(&new_visitor(tg.id, b"hash-3")).await,
        Err(StoreError::NotFound)
    ));
    let foreign = store
        .create_widget(&new_widget(b.client.id, "b site"), "pk_b")
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_visitor(&new_visitor(foreign.id, b"hash-4"))
            .await,
        Err(StoreError::NotFound)
    ));

    // The visitor's conversation appears with the first message.
    let external = v.id.to_string();
    assert_eq!(
        store
            .conversation_by_external_id(a.client.id, w.id, &external)
            .await
            .unwrap(),
        None
    );
    let Ingest::New { conversation, .. } = store
        .ingest(&inbound(a.client.id, w.id, &external, "v-1"))
        .await
        .unwrap()
    else {
        panic!("a first message is new");
    };
    assert_eq!(
        store
            .conversation_by_external_id(a.client.id, w.id, &external)
            .await
            .unwrap(),
        Some(conversation.id)
    );
    assert_eq!(
        store
            .conversation_by_external_id(b.client.id, w.id, &external)
            .await
            .unwrap(),
        None,
        "another client's"
    );
    // Visitors and the key go with their widget.
    store.delete_channel(a.client.id, w.id).await.unwrap();
    assert!(matches!(
        store.visitor_by_token(w.id, b"hash-1").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.widget_by_key("pk_a").await,
        Err(StoreError::NotFound)
    ));
}

async fn poll_cursors_are_kept_per_channel_and_client(store: DynStore) {
    let a = tenant(&store, "Polled").await;
    let b = tenant(&store, "Other polled").await;
    let mail = channel(&store, a.client.id, "mailbox").await;
    let other = channel(&store, b.client.id, "other mailbox").await;
    assert_eq!(store.poll_cursor(a.client.id, mail.id).await.unwrap(), None);
    store
        .set_poll_cursor(a.client.id, mail.id, "imap:7:41")
        .await
        .unwrap();
    store
        .set_poll_cursor(a.client.id, mail.id, "imap:7:42")
        .await
        .unwrap();
    assert_eq!(
        store
            .poll_cursor(a.client.id, mail.id)
            .await
            .unwrap()
            .as_deref(),
        Some("imap:7:42")
    );
    // Another client's channel: not found either way, and nothing written.
    assert!(matches!(
        store.set_poll_cursor(a.client.id, other.id, "x").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.poll_cursor(a.client.id, other.id).await.unwrap(),
        None
    );
    assert_eq!(store.poll_cursor(b.client.id, mail.id).await.unwrap(), None);
    // Every client's channels of a provider, for the poller.
    let found = store.channels_of_providers(&[mail.provider]).await.unwrap();
    assert!(found.iter().any(|c| c.id == mail.id) && found.iter().any(|c| c.id == other.id));
    assert!(
        store
            .channels_of_providers(&[Provider::Youtube])
            .await
            .unwrap()
            .is_empty()
    );
    // The cursor goes with its channel.
    store.delete_channel(a.client.id, mail.id).await.unwrap();
    assert_eq!(store.poll_cursor(a.client.id, mail.id).await.unwrap(), None);
}

async fn poll_leases_have_one_holder_and_pass_on_when_they_run_out(store: DynStore) {
    let a = tenant(&store, "Leased").await;
    let bot = channel(&store, a.client.id, "polled bot").await;
    let t0 = Utc::now();
    let later = move |secs: i64| t0 + Duration::seconds(secs);
    assert_eq!(store.poll_lease(bot.id).await.unwrap(), None);
    // Free: node A claims it; B is refused while A's lease is live.
    assert!(
        store
            .claim_poll_lease(bot.id, "node-a", t0, later(30))
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_poll_lease(bot.id, "node-b", later(1), later(31))
            .await
            .unwrap()
    );
    // A renews, even past its old end; the row shows A until the new end.
    assert!(
        store
            .claim_poll_lease(bot.id, "node-a", later(10), later(40))
            .await
            .unwrap()
    );
    let (holder, until) = store.poll_lease(bot.id).await.unwrap().unwrap();
    assert_eq!(holder, "node-a");
    assert_eq!(until.timestamp_millis(), later(40).timestamp_millis());
    assert!(
        !store
            .claim_poll_lease(bot.id, "node-b", later(39), later(69))
            .await
            .unwrap()
    );
    // A stops renewing (its node died): once the lease ran out, B takes it over and A, back
    // again, is refused.
    assert!(
        store
            .claim_poll_lease(bot.id, "node-b", later(40), later(70))
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_poll_lease(bot.id, "node-a", later(41), later(71))
            .await
            .unwrap()
    );
    assert_eq!(store.poll_lease(bot.id).await.unwrap().unwrap().0, "node-b");
    // Releasing someone else's lease changes nothing; the holder's release frees it at once.
    store.release_poll_lease(bot.id, "node-a").await.unwrap();
    assert_eq!(store.poll_lease(bot.id).await.unwrap().unwrap().0, "node-b");
    store.release_poll_lease(bot.id, "node-b").await.unwrap();
    assert_eq!(store.poll_lease(bot.id).await.unwrap(), None);
    assert!(
        store
            .claim_poll_lease(bot.id, "node-a", later(42), later(72))
            .await
            .unwrap()
    );
    // A channel that does not exist is never leased.
    let missing = ChannelId(Uuid::new_v4());
    assert!(
        !store
            .claim_poll_lease(missing, "node-a", t0, later(30))
            .await
            .unwrap()
    );
    assert_eq!(store.poll_lease(missing).await.unwrap(), None);

    // Ten nodes claiming a free channel at once: exactly one is granted.
    let raced = channel(&store, a.client.id, "raced bot").await;
    let end = later(30);
    let claims: Vec<_> = (0..10)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let node = format!("node-{n}");
                let granted = store
                    .claim_poll_lease(raced.id, &node, t0, end)
                    .await
                    .unwrap();
                (node, granted)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for claim in claims {
        let (node, granted) = claim.await.unwrap();
        if granted {
            winners.push(node);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(
        store.poll_lease(raced.id).await.unwrap().unwrap().0,
        winners[0]
    );
    // The lease goes with its channel.
    store.delete_channel(a.client.id, raced.id).await.unwrap();
    assert_eq!(store.poll_lease(raced.id).await.unwrap(), None);
}

async fn ingest_creates_conversation_and_dedupes(store: DynStore) {
    let a = tenant(&store, "Inbox").await;
    let c = a.client.id;
    let tg = channel(&store, c, "tg").await;
    let vk = channel(&store, c, "vk").await;

    let first = ingest_new(&store, &inbound(c, tg.id, "chat-1", "ev-1")).await;
    let m1 = first.message.clone();
    assert_eq!(m1.direction, Direction::Inbound);
    assert_eq!(m1.kind, MessageKind::Message);
    assert_eq!(m1.status, DeliveryStatus::Received);
    assert_eq!(m1.provider_event_id.as_deref(), Some("ev-1"));
    assert_eq!((m1.text.as_str(), m1.author_id), ("text of ev-1", None));
    assert_eq!(
        (m1.failure_reason.as_deref(), m1.idempotency_key.as_deref()),
        (None, None)
    );
    assert!(
        first.new_request,
        "the first message opens the first request"
    );
    assert!(!first.returning_customer, "nobody knew this sender");
    let conv = store.get_conversation(c, m1.conversation_id).await.unwrap();
    assert_eq!(conv, first.conversation);
    assert_eq!(
        (conv.channel_id, conv.external_id.as_str()),
        (tg.id, "chat-1")
    );
    assert_eq!(
        (
            conv.status,
            conv.assignee_id,
            conv.group_id,
            conv.snoozed_until
        ),
        (ConversationStatus::New, None, None, None)
    );
    assert_eq!((conv.request_no, conv.last_message_at), (1, m1.created_at));
    assert_eq!(conv.client_id, c);

    // The message's event, committed with it.
    let events = store.events_after(c, 0, 0).await.unwrap();
    assert_eq!(events.len(), 1);
    let ev = &events[0];
    // Its conversation is `conv`, checked above to be in `tg`, unassigned.
    assert_message_created(ev, &first);

    // The contact and how it is known on this channel.
    let contact = store.get_contact(c, conv.contact_id).await.unwrap();
    assert_eq!(
        (contact.name.as_str(), &contact.fields),
        ("contact chat-1", &serde_json::json!({}))
    );
    assert_eq!(
        store.contact_identities(c, contact.id).await.unwrap(),
        vec![ContactIdentity {
            contact_id: contact.id,
            channel_id: tg.id,
            external_id: "user-chat-1".into(),
        }]
    );

    // The same conversation gets the next message; a retry is a duplicate.
    tick().await;
    let second = ingest_new(&store, &inbound(c, tg.id, "chat-1", "ev-2")).await;
    let m2 = second.message.clone();
    assert_eq!(m2.conversation_id, conv.id);
    assert!(!second.new_request);
    assert!(second.returning_customer);
    assert_eq!(second.conversation.status, ConversationStatus::New);
    assert_eq!(second.conversation.last_message_at, m2.created_at);
    assert!(second.event_seq > first.event_seq);
    assert_eq!(
        store
            .ingest(&inbound(c, tg.id, "chat-1", "ev-1"))
            .await
            .unwrap(),
        Ingest::Duplicate(m1.id)
    );
    assert_eq!(
        store
            .conversation_messages(c, conv.id, None, 0)
            .await
            .unwrap(),
        vec![m1.clone(), m2.clone()]
    );
    assert_eq!(
        store.events_after(c, 0, 0).await.unwrap().len(),
        2,
        "a duplicate appends no event"
    );

    // The same sender in another chat of the channel: a new conversation, the same contact.
    let other_chat = ingest_new(
        &store,
        &sent_by("user-chat-1", inbound(c, tg.id, "chat-2", "ev-3")),
    )
    .await;
    assert_ne!(other_chat.conversation.id, conv.id);
    assert_eq!(other_chat.conversation.contact_id, conv.contact_id);
    assert!(other_chat.new_request && other_chat.returning_customer);

    // Another sender is another contact.
    let stranger = ingest_new(&store, &inbound(c, tg.id, "chat-3", "ev-4")).await;
    assert_ne!(stranger.conversation.contact_id, conv.contact_id);
    assert!(!stranger.returning_customer);

    // Ids are per channel: the same chat, sender and event ids on another channel are new.
    let m4 = ingest_new(&store, &inbound(c, vk.id, "chat-1", "ev-1")).await;
    assert_ne!(m4.conversation.id, conv.id);
    assert_ne!(m4.conversation.contact_id, conv.contact_id);
    assert_eq!(m4.conversation.channel_id, vk.id);
    assert!(!m4.returning_customer);

    // Keyset pages over the messages.
    let page = store
        .conversation_messages(c, conv.id, Some(m1.id), 10)
        .await
        .unwrap();
    assert_eq!(page, vec![m2.clone()]);
    assert_eq!(
        store
            .conversation_messages(c, conv.id, None, 1)
            .await
            .unwrap(),
        vec![m1.clone()]
    );
    assert!(
        store
            .conversation_messages(c, conv.id, Some(m2.id), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A cursor from another conversation is not a cursor here.
    not_found(
        store
            .conversation_messages(c, conv.id, Some(m4.message.id), 10)
            .await,
    );

    not_found(store.ingest(&inbound(c, ChannelId::new(), "c", "e")).await);
    not_found(store.get_conversation(c, ConversationId::new()).await);
    not_found(
        store
            .conversation_messages(c, ConversationId::new(), None, 0)
            .await,
    );

    // Deleting the channel takes its conversations along.
    store.delete_channel(c, tg.id).await.unwrap();
    not_found(store.get_conversation(c, conv.id).await);
    assert!(
        store
            .contact_identities(c, conv.contact_id)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Requests: one per customer return after resolve, closed by resolving, with status moves
/// decided by `core::conversation::after_customer_message`.
async fn requests_follow_resolve_and_return(store: DynStore, url: String) {
    let a = tenant(&store, "Requests").await;
    let c = a.client.id;
    let ch = channel(&store, c, "bot").await;
    let first = ingest_new(&store, &inbound(c, ch.id, "chat", "e1")).await;
    let id = first.conversation.id;
    let mut raw = Raw::connect(&url).await;
    let requests = "SELECT COUNT(*) FROM requests WHERE conversation_id = $1";
    let open = "SELECT COUNT(*) FROM requests WHERE conversation_id = $1 AND resolved_at IS NULL";
    assert_eq!(
        (raw.count(requests, id.0).await, raw.count(open, id.0).await),
        (1, 1)
    );

    let set = |status| ConversationPatch {
        status: Some(status),
        ..patch()
    };
    let (pending, _) = store
        .update_conversation(c, id, &set(ConversationStatus::Pending))
        .await
        .unwrap();
    assert_eq!(pending.status, ConversationStatus::Pending);
    // The customer answers: pending → open, the same request.
    let answer = ingest_new(&store, &inbound(c, ch.id, "chat", "e2")).await;
    assert_eq!(answer.conversation.status, ConversationStatus::Open);
    assert!(!answer.new_request);
    assert_eq!(answer.conversation.request_no, 1);

    let (resolved, _) = store
        .update_conversation(c, id, &set(ConversationStatus::Resolved))
        .await
        .unwrap();
    assert_eq!(resolved.status, ConversationStatus::Resolved);
    assert_eq!(
        (raw.count(requests, id.0).await, raw.count(open, id.0).await),
        (1, 0)
    );

    // A message after resolve opens request 2.
    let back = ingest_new(&store, &inbound(c, ch.id, "chat", "e3")).await;
    assert!(back.new_request && back.returning_customer);
    assert_eq!(back.conversation.status, ConversationStatus::New);
    assert_eq!(back.conversation.request_no, 2);
    assert_eq!(
        store.get_conversation(c, id).await.unwrap(),
        back.conversation
    );
    assert_eq!(
        (raw.count(requests, id.0).await, raw.count(open, id.0).await),
        (2, 1)
    );

    // Snoozed until a time; a customer message wakes it (open) and clears the time.
    let until = now() + Duration::hours(2);
    let (snoozed, _) = store
        .update_conversation(
            c,
            id,
            &ConversationPatch {
                status: Some(ConversationStatus::Snoozed),
                snoozed_until: Some(Some(until)),
                ..patch()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (snoozed.status, snoozed.snoozed_until),
        (ConversationStatus::Snoozed, Some(until))
    );
    let woken = ingest_new(&store, &inbound(c, ch.id, "chat", "e4")).await;
    assert_eq!(
        (woken.conversation.status, woken.conversation.snoozed_until),
        (ConversationStatus::Open, None)
    );
    assert!(!woken.new_request);

    // An operator reopening a resolved conversation continues its request.
    store
        .update_conversation(c, id, &set(ConversationStatus::Resolved))
        .await
        .unwrap();
    assert_eq!(raw.count(open, id.0).await, 0);
    let (reopened, _) = store
        .update_conversation(c, id, &set(ConversationStatus::Open))
        .await
        .unwrap();
    assert_eq!(
        (reopened.status, reopened.request_no),
        (ConversationStatus::Open, 2)
    );
    assert_eq!(
        (raw.count(requests, id.0).await, raw.count(open, id.0).await),
        (2, 1)
    );
}

async fn concurrent_ingest_dedupes(store: DynStore, url: String) {
    let a = tenant(&store, "Concurrent").await;
    let ch = channel(&store, a.client.id, "bot").await;

    // Five deliveries of one event, on a conversation nobody has seen yet.
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let store = store.clone();
            let msg = inbound(a.client.id, ch.id, "chat", "event-1");
            tokio::spawn(async move { store.ingest(&msg).await })
        })
        .collect();
    let mut new = Vec::new();
    let mut duplicates = Vec::new();
    for task in tasks {
        match task.await.unwrap().unwrap() {
            i @ Ingest::New { .. } => new.push(expect_new(i).message),
            Ingest::Duplicate(id) => duplicates.push(id),
        }
    }
    assert_eq!(new.len(), 1, "exactly one delivery is new");
    assert_eq!(duplicates, vec![new[0].id; 4]);
    assert_eq!(
        store
            .conversation_messages(a.client.id, new[0].conversation_id, None, 0)
            .await
            .unwrap(),
        new
    );

    // Five different events from one new sender racing to open one new conversation.
    let tasks: Vec<_> = (0..5)
        .map(|i| {
            let store = store.clone();
            let msg = inbound(a.client.id, ch.id, "chat-2", &format!("event-2-{i}"));
            tokio::spawn(async move { store.ingest(&msg).await })
        })
        .collect();
    let mut conversations = HashSet::new();
    let mut opened = 0;
    for task in tasks {
        let i = expect_new(task.await.unwrap().unwrap());
        conversations.insert(i.conversation.id);
        opened += usize::from(i.new_request);
    }
    assert_eq!(conversations.len(), 1);
    assert_eq!(opened, 1, "one of them opened the request");
    let conv = *conversations.iter().next().unwrap();
    assert_eq!(
        store
            .conversation_messages(a.client.id, conv, None, 0)
            .await
            .unwrap()
            .len(),
        5
    );

    // One new sender opening five chats at once: five conversations, one contact.
    let tasks: Vec<_> = (0..5)
        .map(|i| {
            let store = store.clone();
            let msg = sent_by(
                "shared",
                inbound(
                    a.client.id,
                    ch.id,
                    &format!("chat-3-{i}"),
                    &format!("e3-{i}"),
                ),
            );
            tokio::spawn(async move { store.ingest(&msg).await })
        })
        .collect();
    let mut contacts = HashSet::new();
    let mut returning = 0;
    for task in tasks {
        let i = expect_new(task.await.unwrap().unwrap());
        contacts.insert(i.conversation.contact_id);
        returning += usize::from(i.returning_customer);
    }
    assert_eq!(contacts.len(), 1);
    assert_eq!(returning, 4, "the contact was new to exactly one of them");

    // No stray contacts or conversations were left by the losers.
    let mut raw = Raw::connect(&url).await;
    let client = a.client.id.0;
    let count = |table: &str| format!("SELECT COUNT(*) FROM {table} WHERE client_id = $1");
    for (table, n) in [
        ("conversations", 7),
        ("contacts", 3),
        ("contact_identities", 3),
        ("requests", 7),
        ("messages", 11),
        ("events", 11),
    ] {
        assert_eq!(raw.count(&count(table), client).await, n, "{table}");
    }
}

async fn outbound_is_idempotent_and_notes_stay_inside(store: DynStore) {
    let a = tenant(&store, "Outbound").await;
    let c = a.client.id;
    let ch = channel(&store, c, "bot").await;
    let inbound_msg = ingest_new(&store, &inbound(c, ch.id, "chat", "e1")).await;
    let conv = inbound_msg.conversation.id;
    tick().await;

    let (reply, event) = store
        .add_outbound(&outbound(
            c,
            conv,
            MessageKind::Message,
            "k1",
            Some(a.owner.id),
        ))
        .await
        .unwrap();
    assert_eq!(
        (reply.direction, reply.kind, reply.status),
        (
            Direction::Outbound,
            MessageKind::Message,
            DeliveryStatus::Pending
        )
    );
    assert_eq!(
        (
            reply.author_id,
            reply.idempotency_key.as_deref(),
            reply.text.as_str()
        ),
        (Some(a.owner.id), Some("k1"), "reply k1")
    );
    assert_eq!(reply.provider_event_id, None);
    let event = event.expect("a new reply has an event");
    assert_eq!(event.kind, EventKind::MessageCreated);
    assert_eq!(event.conversation_id, Some(conv));
    let after_reply = store.get_conversation(c, conv).await.unwrap();
    assert_eq!(event.payload, message_created(&reply, &after_reply));
    assert_eq!(after_reply.last_message_at, reply.created_at);

    // The same key again, whatever the text: the first message, and no event.
    let mut again = outbound(c, conv, MessageKind::Message, "k1", Some(a.owner.id));
    again.text = "something else".into();
    assert_eq!(
        store.add_outbound(&again).await.unwrap(),
        (reply.clone(), None)
    );

    // A note: outbound, final at once (`sent`), never delivered, not a conversation message.
    tick().await;
    let (note, note_event) = store
        .add_outbound(&outbound(
            c,
            conv,
            MessageKind::Note,
            "n1",
            Some(a.employee.id),
        ))
        .await
        .unwrap();
    assert_eq!(
        (note.direction, note.kind, note.status),
        (Direction::Outbound, MessageKind::Note, DeliveryStatus::Sent)
    );
    assert_eq!(
        note_event.unwrap().payload,
        message_created(&note, &store.get_conversation(c, conv).await.unwrap())
    );
    assert_eq!(
        store
            .get_conversation(c, conv)
            .await
            .unwrap()
            .last_message_at,
        reply.created_at,
        "a note does not move the conversation up"
    );

    // An automatic reply: outbound, no author, pending delivery.
    let (auto, _) = store
        .add_outbound(&outbound(c, conv, MessageKind::AutoReply, "a1", None))
        .await
        .unwrap();
    assert_eq!(
        (auto.kind, auto.status, auto.author_id),
        (MessageKind::AutoReply, DeliveryStatus::Pending, None)
    );
    assert_eq!(
        store.pending_outbound(c, 0).await.unwrap(),
        vec![reply.clone(), auto.clone()]
    );
    assert_eq!(
        store.pending_outbound(c, 1).await.unwrap(),
        vec![reply.clone()]
    );
    assert_eq!(
        store.conversation_messages(c, conv, None, 0).await.unwrap(),
        vec![inbound_msg.message.clone(), reply.clone(), note, auto]
    );

    // Keys are per conversation.
    let other = ingest_new(&store, &inbound(c, ch.id, "chat-2", "e2")).await;
    let (elsewhere, ev) = store
        .add_outbound(&outbound(
            c,
            other.conversation.id,
            MessageKind::Message,
            "k1",
            None,
        ))
        .await
        .unwrap();
    assert_ne!(elsewhere.id, reply.id);
    assert!(ev.is_some());

    // Concurrent sends with one key: one message, one event.
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let store = store.clone();
            let msg = outbound(c, conv, MessageKind::Message, "race", None);
            tokio::spawn(async move { store.add_outbound(&msg).await })
        })
        .collect();
    let mut ids = HashSet::new();
    let mut events = 0;
    for t in tasks {
        let (m, e) = t.await.unwrap().unwrap();
        ids.insert(m.id);
        events += usize::from(e.is_some());
    }
    assert_eq!((ids.len(), events), (1, 1));

    not_found(
        store
            .add_outbound(&outbound(
                c,
                ConversationId::new(),
                MessageKind::Message,
                "x",
                None,
            ))
            .await,
    );
    not_found(
        store
            .add_outbound(&outbound(
                c,
                conv,
                MessageKind::Message,
                "y",
                Some(UserId::new()),
            ))
            .await,
    );
}

async fn delivery_moves_forward_only(store: DynStore) {
    let a = tenant(&store, "Delivery").await;
    let c = a.client.id;
    let ch = channel(&store, c, "bot").await;
    let first = ingest_new(&store, &inbound(c, ch.id, "chat", "e1")).await;
    let conv = first.conversation.id;
    let send = |key: &str| {
        let store = store.clone();
        let msg = outbound(c, conv, MessageKind::Message, key, None);
        async move { store.add_outbound(&msg).await.unwrap().0 }
    };
    let deliver = |id: MessageId,
                   status: DeliveryStatus,
                   reason: Option<&'static str>,
                   pid: Option<&'static str>| {
        let store = store.clone();
        async move { store.set_delivery(c, id, status, reason, pid).await }
    };

    let reply = send("r1").await;
    let (sent, ev) = deliver(reply.id, DeliveryStatus::Sent, None, Some("pm-1"))
        .await
        .unwrap();
    assert_eq!(sent.status, DeliveryStatus::Sent);
    let ev = ev.expect("a move has an event");
    assert_eq!(ev.kind, EventKind::MessageStatus);
    assert_eq!(ev.payload, json(&sent));
    assert_eq!(
        (ev.conversation_id, ev.channel_id),
        (Some(conv), Some(ch.id))
    );
    assert_eq!(
        store
            .message_by_provider_id(c, ch.id, "pm-1")
            .await
            .unwrap(),
        sent
    );
    // Backwards or sideways: unchanged, no event.
    assert_eq!(
        deliver(reply.id, DeliveryStatus::Pending, None, None)
            .await
            .unwrap(),
        (sent.clone(), None)
    );
    assert_eq!(
        deliver(reply.id, DeliveryStatus::Sent, None, None)
            .await
            .unwrap(),
        (sent.clone(), None)
    );
    let (read, ev) = deliver(reply.id, DeliveryStatus::Read, None, None)
        .await
        .unwrap();
    assert_eq!(read.status, DeliveryStatus::Read);
    assert!(ev.is_some());
    assert_eq!(
        deliver(reply.id, DeliveryStatus::Delivered, None, None)
            .await
            .unwrap(),
        (read.clone(), None)
    );
    assert_eq!(
        deliver(reply.id, DeliveryStatus::Failed, Some("late"), None)
            .await
            .unwrap(),
        (read.clone(), None),
        "failed only from pending or sent"
    );

    // Failed is final and says why.
    let doomed = send("r2").await;
    let (failed, ev) = deliver(
        doomed.id,
        DeliveryStatus::Failed,
        Some("blocked by user"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        (failed.status, failed.failure_reason.as_deref()),
        (DeliveryStatus::Failed, Some("blocked by user"))
    );
    assert!(ev.is_some());
    for status in [
        DeliveryStatus::Sent,
        DeliveryStatus::Read,
        DeliveryStatus::Failed,
    ] {
        assert_eq!(
            deliver(doomed.id, status, Some("x"), None).await.unwrap(),
            (failed.clone(), None)
        );
    }

    // A `delivered` overtaking `sent`: the late `sent` moves nothing but records the id.
    let fast = send("r3").await;
    let (delivered, _) = deliver(fast.id, DeliveryStatus::Delivered, None, None)
        .await
        .unwrap();
    assert_eq!(
        deliver(fast.id, DeliveryStatus::Sent, None, Some("pm-3"))
            .await
            .unwrap(),
        (delivered.clone(), None)
    );
    assert_eq!(
        store
            .message_by_provider_id(c, ch.id, "pm-3")
            .await
            .unwrap(),
        delivered
    );

    // A provider id belongs to one message of the channel.
    let dup = send("r4").await;
    conflict(
        deliver(dup.id, DeliveryStatus::Sent, None, Some("pm-1")).await,
        "provider_message_id",
    );
    assert_eq!(store.pending_outbound(c, 0).await.unwrap(), vec![dup]);

    // Inbound messages and notes have no delivery to move.
    let (note, _) = store
        .add_outbound(&outbound(c, conv, MessageKind::Note, "n", None))
        .await
        .unwrap();
    assert_eq!(
        deliver(note.id, DeliveryStatus::Delivered, None, None)
            .await
            .unwrap(),
        (note, None)
    );
    assert_eq!(
        deliver(first.message.id, DeliveryStatus::Read, None, None)
            .await
            .unwrap(),
        (first.message.clone(), None)
    );
    not_found(deliver(MessageId::new(), DeliveryStatus::Sent, None, None).await);
    not_found(store.message_by_provider_id(c, ch.id, "pm-9").await);
    let statuses = store
        .events_after(c, 0, 0)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::MessageStatus)
        .count();
    assert_eq!(statuses, 4, "sent, read, failed, delivered");
}

async fn conversation_updates_assign_transfer_and_snooze(store: DynStore) {
    let a = tenant(&store, "Updates").await;
    let c = a.client.id;
    let ch = channel(&store, c, "bot").await;
    let group = store.create_group(c, "Sales").await.unwrap();
    let first = ingest_new(&store, &inbound(c, ch.id, "chat", "e1")).await;
    let id = first.conversation.id;
    store.enqueue(c, id, Some(group.id)).await.unwrap();

    let take = |user: UserId| ConversationPatch {
        assignee_id: Some(Some(user)),
        only_if_unassigned: true,
        ..patch()
    };
    let before = now();
    let (taken, event) = store
        .update_conversation(c, id, &take(a.employee.id))
        .await
        .unwrap();
    assert_eq!(taken.assignee_id, Some(a.employee.id));
    assert_eq!(event.kind, EventKind::ConversationUpdated);
    assert_eq!(
        (event.conversation_id, event.assignee_id, event.channel_id),
        (Some(id), Some(a.employee.id), Some(ch.id))
    );
    // It was nobody's and in no group: who saw it then is named so consoles can let it go.
    let mut expected = conversation_payload(&taken, &[]);
    expected["previous_scope"] = serde_json::json!({ "assignee_id": null, "group_id": null });
    assert_eq!(event.payload, expected);
    assert_eq!(
        event.previous_scope().map(|s| (s.assignee_id, s.group_id)),
        Some((None, None))
    );
    assert_eq!(store.get_conversation(c, id).await.unwrap(), taken);
    let snapshot = store.routing_snapshot(c).await.unwrap();
    assert!(
        snapshot.queue.is_empty(),
        "an assigned conversation waits no longer"
    );
    let op = snapshot
        .operators
        .iter()
        .find(|o| o.user_id == a.employee.id)
        .unwrap();
    assert!(op.last_assigned_at.unwrap() >= before);
    assert_eq!(op.active, 1);

    // Someone holds it: taking it conditionally fails and changes nothing; the holder may
    // take it again.
    conflict(
        store.update_conversation(c, id, &take(a.owner.id)).await,
        "assignee",
    );
    assert_eq!(store.get_conversation(c, id).await.unwrap(), taken);
    store
        .update_conversation(c, id, &take(a.employee.id))
        .await
        .unwrap();

    // A supervisor reassigns unconditionally; then a transfer to a group unassigns.
    let (owned, _) = store
        .update_conversation(
            c,
            id,
            &ConversationPatch {
                assignee_id: Some(Some(a.owner.id)),
                ..patch()
            },
        )
        .await
        .unwrap();
    assert_eq!(owned.assignee_id, Some(a.owner.id));
    let (transferred, event) = store
        .update_conversation(
            c,
            id,
            &ConversationPatch {
                assignee_id: Some(None),
                group_id: Some(Some(group.id)),
                ..patch()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (transferred.assignee_id, transferred.group_id),
        (None, Some(group.id))
    );
    assert_eq!((event.assignee_id, event.group_id), (None, Some(group.id)));
    // A patch without a group change keeps the group.
    let (opened, _) = store
        .update_conversation(
            c,
            id,
            &ConversationPatch {
                status: Some(ConversationStatus::Open),
                ..patch()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (opened.status, opened.group_id),
        (ConversationStatus::Open, Some(group.id))
    );

    // Snooze sets the time; leaving snoozed clears it.
    let until = now() + Duration::minutes(30);
    let (snoozed, _) = store
        .update_conversation(
            c,
            id,
            &ConversationPatch {
                status: Some(ConversationStatus::Snoozed),
                snoozed_until: Some(Some(until)),
                ..patch()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (snoozed.status, snoozed.snoozed_until),
        (ConversationStatus::Snoozed, Some(until))
    );
    let (pending, _) = store
        .update_conversation(
            c,
            id,
            &ConversationPatch {
                status: Some(ConversationStatus::Pending),
                ..patch()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (pending.status, pending.snoozed_until),
        (ConversationStatus::Pending, None)
    );

    // Resolving removes it from the queue.
    store.enqueue(c, id, None).await.unwrap();
    store
        .update_conversation(
            c,
            id,
            &ConversationPatch {
                status: Some(ConversationStatus::Resolved),
                ..patch()
            },
        )
        .await
        .unwrap();
    assert!(store.routing_snapshot(c).await.unwrap().queue.is_empty());

    not_found(
        store
            .update_conversation(c, ConversationId::new(), &patch())
            .await,
    );
    not_found(store.update_conversation(c, id, &take(UserId::new())).await);
    not_found(
        store
            .update_conversation(
                c,
                id,
                &ConversationPatch {
                    group_id: Some(Some(GroupId::new())),
                    ..patch()
                },
            )
            .await,
    );
    let kinds: Vec<EventKind> = store
        .events_after(c, first.event_seq, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, vec![EventKind::ConversationUpdated; 8]);
}

/// Ten nodes assign one conversation to ten operators at once: exactly one wins.
async fn concurrent_assignment_has_one_winner(store: DynStore) {
    let a = tenant(&store, "Assign race").await;
    let c = a.client.id;
    let ch = channel(&store, c, "bot").await;
    let first = ingest_new(&store, &inbound(c, ch.id, "chat", "e1")).await;
    let id = first.conversation.id;
    let mut users = Vec::new();
    for i in 0..10 {
        let u = store
            .create_user(&new_user(
                &format!("op{i}@race.test"),
                Role::Employee,
                Some(c),
            ))
            .await
            .unwrap();
        users.push(u.id);
    }
    let tasks: Vec<_> = users
        .iter()
        .map(|&user| {
            let store = store.clone();
            tokio::spawn(async move {
                let p = ConversationPatch {
                    assignee_id: Some(Some(user)),
                    only_if_unassigned: true,
                    ..ConversationPatch::default()
                };
                (user, store.update_conversation(c, id, &p).await)
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut conflicts = 0;
    for t in tasks {
        match t.await.unwrap() {
            (user, Ok((conv, _))) => {
                assert_eq!(conv.assignee_id, Some(user));
                winners.push(user);
            }
            (_, Err(StoreError::Conflict("assignee"))) => conflicts += 1,
            (_, Err(e)) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!((winners.len(), conflicts), (1, 9));
    assert_eq!(
        store.get_conversation(c, id).await.unwrap().assignee_id,
        Some(winners[0])
    );
    let updates = store.events_after(c, first.event_seq, 0).await.unwrap();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].assignee_id, Some(winners[0]));
    let snapshot = store.routing_snapshot(c).await.unwrap();
    let assigned: Vec<_> = snapshot
        .operators
        .iter()
        .filter(|o| o.last_assigned_at.is_some())
        .map(|o| o.user_id)
        .collect();
    assert_eq!(assigned, winners, "only the winner counts as assigned");
}

async fn list_conversations_filters_unread_and_pages(store: DynStore) {
    let a = tenant(&store, "Listing").await;
    let c = a.client.id;
    let tg = channel(&store, c, "tg").await;
    let vk = channel(&store, c, "vk").await;
    let sales = store.create_group(c, "Sales").await.unwrap();
    let support = store.create_group(c, "Support").await.unwrap();

    // c1 (tg): two customer messages, a reply and a note; assigned to the employee.
    let c1 = ingest_new(&store, &inbound(c, tg.id, "one", "1a")).await;
    let m1b = ingest_new(&store, &inbound(c, tg.id, "one", "1b"))
        .await
        .message;
    let id1 = c1.conversation.id;
    tick().await;
    let (reply1, _) = store
        .add_outbound(&outbound(
            c,
            id1,
            MessageKind::Message,
            "r",
            Some(a.employee.id),
        ))
        .await
        .unwrap();
    tick().await;
    store
        .add_outbound(&outbound(
            c,
            id1,
            MessageKind::Note,
            "note",
            Some(a.employee.id),
        ))
        .await
        .unwrap();
    store
        .update_conversation(
            c,
            id1,
            &ConversationPatch {
                assignee_id: Some(Some(a.employee.id)),
                status: Some(ConversationStatus::Open),
                ..patch()
            },
        )
        .await
        .unwrap();
    tick().await;
    // c2 (vk): in the Sales group, tagged.
    let c2 = ingest_new(&store, &inbound(c, vk.id, "two", "2a")).await;
    let id2 = c2.conversation.id;
    store
        .update_conversation(
            c,
            id2,
            &ConversationPatch {
                group_id: Some(Some(sales.id)),
                ..patch()
            },
        )
        .await
        .unwrap();
    store.add_tag(c, id2, "vip").await.unwrap();
    store.add_tag(c, id2, "b2b").await.unwrap();
    tick().await;
    // c3 (tg): unassigned, resolved.
    let c3 = ingest_new(&store, &inbound(c, tg.id, "three", "3a")).await;
    let id3 = c3.conversation.id;
    store
        .update_conversation(
            c,
            id3,
            &ConversationPatch {
                status: Some(ConversationStatus::Resolved),
                ..patch()
            },
        )
        .await
        .unwrap();
    tick().await;
    // c4 (vk): support group, assigned to the owner.
    let c4 = ingest_new(&store, &inbound(c, vk.id, "four", "4a")).await;
    let id4 = c4.conversation.id;
    store
        .update_conversation(
            c,
            id4,
            &ConversationPatch {
                group_id: Some(Some(support.id)),
                assignee_id: Some(Some(a.owner.id)),
                ..patch()
            },
        )
        .await
        .unwrap();

    let list = |viewer: UserId, filter: ConversationFilter| {
        let store = store.clone();
        async move {
            store
                .list_conversations(c, Some(viewer), &filter)
                .await
                .unwrap()
        }
    };
    let ids =
        |rows: &[ConversationSummary]| rows.iter().map(|r| r.conversation.id).collect::<Vec<_>>();
    let all = list(a.owner.id, ConversationFilter::default()).await;
    assert_eq!(ids(&all), vec![id4, id3, id2, id1], "newest message first");
    let row1 = &all[3];
    assert_eq!(
        row1.conversation,
        store.get_conversation(c, id1).await.unwrap()
    );
    assert_eq!(row1.contact_name, "contact one");
    assert_eq!(
        row1.last_message_text.as_deref(),
        Some(reply1.text.as_str()),
        "notes are not last messages"
    );
    assert_eq!(row1.last_message_at, reply1.created_at);
    assert_eq!(row1.unread, 2);
    assert_eq!(all[1].tags, Vec::<String>::new());
    assert_eq!(all[2].tags, vec!["b2b", "vip"]);
    assert_eq!(all[2].last_message_text.as_deref(), Some("text of 2a"));

    // Unread counts inbound messages after the viewer's own mark.
    store
        .mark_read(c, id1, a.owner.id, c1.message.id)
        .await
        .unwrap();
    let unread = |rows: Vec<ConversationSummary>, id: ConversationId| {
        rows.into_iter()
            .find(|r| r.conversation.id == id)
            .unwrap()
            .unread
    };
    assert_eq!(
        unread(list(a.owner.id, ConversationFilter::default()).await, id1),
        1
    );
    store
        .mark_read(c, id1, a.owner.id, reply1.id)
        .await
        .unwrap();
    assert_eq!(
        unread(list(a.owner.id, ConversationFilter::default()).await, id1),
        0
    );
    // An older mark arriving late does not move it back.
    store.mark_read(c, id1, a.owner.id, m1b.id).await.unwrap();
    assert_eq!(
        unread(list(a.owner.id, ConversationFilter::default()).await, id1),
        0
    );
    assert_eq!(
        unread(
            list(a.employee.id, ConversationFilter::default()).await,
            id1
        ),
        2,
        "marks are per viewer"
    );

    let f = |filter: ConversationFilter| list(a.owner.id, filter);
    assert_eq!(
        ids(&f(ConversationFilter {
            channels: Some(vec![tg.id]),
            ..Default::default()
        })
        .await),
        vec![id3, id1]
    );
    // One contact's conversations: theirs only, with the other filters still applied.
    let contact_two = c2.conversation.contact_id;
    assert_eq!(
        ids(&f(ConversationFilter {
            contact: Some(contact_two),
            ..Default::default()
        })
        .await),
        vec![id2]
    );
    assert!(
        f(ConversationFilter {
            contact: Some(contact_two),
            channels: Some(vec![tg.id]),
            ..Default::default()
        })
        .await
        .is_empty()
    );
    assert!(
        f(ConversationFilter {
            channels: Some(vec![]),
            ..Default::default()
        })
        .await
        .is_empty()
    );
    assert_eq!(
        ids(&f(ConversationFilter {
            assignee: Some(a.employee.id),
            ..Default::default()
        })
        .await),
        vec![id1]
    );
    assert_eq!(
        ids(&f(ConversationFilter {
            groups: Some(vec![sales.id, support.id]),
            ..Default::default()
        })
        .await),
        vec![id4, id2]
    );
    assert!(
        f(ConversationFilter {
            groups: Some(vec![]),
            ..Default::default()
        })
        .await
        .is_empty()
    );
    assert_eq!(
        ids(&f(ConversationFilter {
            unassigned: true,
            ..Default::default()
        })
        .await),
        vec![id3, id2]
    );
    // Assignee, groups and unassigned are OR-ed.
    assert_eq!(
        ids(&f(ConversationFilter {
            assignee: Some(a.employee.id),
            groups: Some(vec![support.id]),
            ..Default::default()
        })
        .await),
        vec![id4, id1]
    );
    assert_eq!(
        ids(&f(ConversationFilter {
            assignee: Some(a.employee.id),
            unassigned: true,
            ..Default::default()
        })
        .await),
        vec![id3, id2, id1]
    );
    // The other fields are AND-ed.
    assert_eq!(
        ids(&f(ConversationFilter {
            unassigned: true,
            channels: Some(vec![vk.id]),
            ..Default::default()
        })
        .await),
        vec![id2]
    );
    assert_eq!(
        ids(&f(ConversationFilter {
            status: Some(ConversationStatus::Resolved),
            ..Default::default()
        })
        .await),
        vec![id3]
    );
    assert_eq!(
        ids(&f(ConversationFilter {
            status: Some(ConversationStatus::New),
            ..Default::default()
        })
        .await),
        vec![id4, id2]
    );
    assert_eq!(
        ids(&f(ConversationFilter {
            tag: Some("vip".into()),
            ..Default::default()
        })
        .await),
        vec![id2]
    );
    assert!(
        f(ConversationFilter {
            tag: Some("VIP".into()),
            ..Default::default()
        })
        .await
        .is_empty()
    );

    // Keyset pages walk everything once, in order.
    let mut walked = Vec::new();
    let mut before = None;
    loop {
        let page = f(ConversationFilter {
            before,
            limit: 1,
            ..Default::default()
        })
        .await;
        assert!(page.len() <= 1);
        let Some(last) = page.last() else { break };
        before = Some((last.last_message_at, last.conversation.id));
        walked.extend(ids(&page));
    }
    assert_eq!(walked, ids(&all));
    assert_eq!(
        ids(&f(ConversationFilter {
            before: Some((all[1].last_message_at, all[1].conversation.id)),
            limit: 10,
            ..Default::default()
        })
        .await),
        vec![id2, id1]
    );
    not_found(
        store
            .list_conversations(c, Some(UserId::new()), &ConversationFilter::default())
            .await,
    );
}

async fn tags_and_read_marks_append_events(store: DynStore) {
    let a = tenant(&store, "Tags").await;
    let c = a.client.id;
    let ch = channel(&store, c, "bot").await;
    let first = ingest_new(&store, &inbound(c, ch.id, "chat", "e1")).await;
    let id = first.conversation.id;

    let (conv, event) = store.add_tag(c, id, "vip").await.unwrap();
    assert_eq!(conv, first.conversation);
    assert_eq!(event.kind, EventKind::ConversationUpdated);
    assert_eq!(event.payload, conversation_payload(&conv, &["vip"]));
    let (_, event) = store.add_tag(c, id, "Ёлка").await.unwrap();
    assert_eq!(event.payload, conversation_payload(&conv, &["vip", "Ёлка"]));
    // Adding a tag twice keeps one.
    store.add_tag(c, id, "vip").await.unwrap();
    assert_eq!(
        store.conversation_tags(c, id).await.unwrap(),
        vec!["vip", "Ёлка"]
    );
    let (_, event) = store.remove_tag(c, id, "vip").await.unwrap();
    assert_eq!(event.payload, conversation_payload(&conv, &["Ёлка"]));
    store.remove_tag(c, id, "never there").await.unwrap();
    assert_eq!(store.conversation_tags(c, id).await.unwrap(), vec!["Ёлка"]);

    let mark = store
        .mark_read(c, id, a.employee.id, first.message.id)
        .await
        .unwrap();
    assert_eq!(mark.kind, EventKind::ReadMark);
    assert_eq!(
        mark.payload,
        serde_json::json!({"user_id": a.employee.id, "message_id": first.message.id})
    );
    assert_eq!(mark.conversation_id, Some(id));

    let other = ingest_new(&store, &inbound(c, ch.id, "chat-2", "e2")).await;
    not_found(
        store
            .mark_read(c, id, a.employee.id, other.message.id)
            .await,
    );
    not_found(
        store
            .mark_read(c, id, UserId::new(), first.message.id)
            .await,
    );
    not_found(store.add_tag(c, ConversationId::new(), "x").await);
    not_found(store.conversation_tags(c, ConversationId::new()).await);

    let kinds: Vec<EventKind> = store
        .events_after(c, first.event_seq, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::ConversationUpdated,
            EventKind::ConversationUpdated,
            EventKind::ConversationUpdated,
            EventKind::ConversationUpdated,
            EventKind::ConversationUpdated,
            EventKind::ReadMark,
            EventKind::MessageCreated,
        ]
    );
}

async fn search_finds_words_in_any_script(store: DynStore) {
    let a = tenant(&store, "Search").await;
    let b = tenant(&store, "Search B").await;
    let c = a.client.id;
    let vk = channel(&store, c, "vk").await;
    let tg = channel(&store, c, "tg").await;
    let say = |ch: ChannelId, chat: &str, event: &str, text: &str| {
        saying(text, inbound(c, ch, chat, event))
    };
    let hello = ingest_new(&store, &say(vk.id, "v", "v1", "hello world"))
        .await
        .message;
    let syntax = ingest_new(
        &store,
        &say(
            vk.id,
            "v",
            "v2",
            "NEAR the \"quoted\" * star - minus AND OR NOT",
        ),
    )
    .await
    .message;
    tick().await;
    let ru1 = ingest_new(
        &store,
        &say(tg.id, "t", "t1", "Здравствуйте! Где мой заказ?"),
    )
    .await
    .message;
    tick().await;
    let ru2 = ingest_new(&store, &say(tg.id, "t", "t2", "ЗАКАЗ доставлен, спасибо"))
        .await
        .message;
    let b_ch = channel(&store, b.client.id, "b").await;
    ingest_new(
        &store,
        &saying(
            "заказ другого клиента",
            inbound(b.client.id, b_ch.id, "x", "x"),
        ),
    )
    .await;

    let search = |channels: Option<Vec<ChannelId>>, q: &'static str, limit: u32| {
        let store = store.clone();
        async move {
            store
                .search_messages(c, channels.as_deref(), q, limit)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        search(None, "заказ", 0).await,
        vec![ru2.clone(), ru1.clone()]
    );
    assert_eq!(
        search(None, "ЗаКаЗ", 0).await,
        vec![ru2.clone(), ru1.clone()]
    );
    assert_eq!(
        search(None, "где   заказ", 0).await,
        vec![ru1.clone()],
        "every word"
    );
    assert_eq!(search(None, "заказ", 1).await, vec![ru2.clone()]);
    assert_eq!(search(None, "HELLO", 0).await, vec![hello.clone()]);
    assert_eq!(search(Some(vec![vk.id]), "заказ", 0).await, vec![]);
    assert_eq!(
        search(Some(vec![tg.id, vk.id]), "спасибо", 0).await,
        vec![ru2.clone()]
    );
    assert_eq!(search(Some(vec![]), "заказ", 0).await, vec![]);
    assert_eq!(search(None, "посылка", 0).await, vec![]);
    // Query syntax in user input is text, never an error.
    for q in [
        "\"",
        "\"unterminated",
        "*",
        "-",
        "NEAR",
        "NEAR(hello world)",
        "a OR b",
        "(",
        ")",
        "hello*",
        "-hello",
        "text:hello",
        "^hello",
        "hello + world",
        "'; DROP TABLE messages; --",
        "",
        "   ",
        "AND",
        "NOT hello",
    ] {
        store
            .search_messages(c, None, q, 0)
            .await
            .unwrap_or_else(|e| panic!("query {q:?}: {e}"));
    }
    assert_eq!(search(None, "NEAR", 0).await, vec![syntax.clone()]);
    assert_eq!(search(None, "\"quoted\"", 0).await, vec![syntax.clone()]);
    assert_eq!(search(None, "hello*", 0).await, vec![hello.clone()]);
    assert_eq!(search(None, "-hello", 0).await, vec![hello.clone()]);
    assert_eq!(search(None, "*", 0).await, vec![]);
    assert_eq!(search(None, "", 0).await, vec![]);

    // Replies and notes are searchable too.
    let (reply, _) = store
        .add_outbound(&NewOutbound {
            text: "Ваш заказ уже в пути".into(),
            ..outbound(c, ru1.conversation_id, MessageKind::Message, "r", None)
        })
        .await
        .unwrap();
    assert_eq!(
        search(None, "заказ", 0).await,
        vec![reply.clone(), ru2.clone(), ru1.clone()]
    );

    // Deleted messages leave the index (the channel's cascade included), and new messages in
    // their place are not found by the old words.
    store.delete_channel(c, tg.id).await.unwrap();
    assert_eq!(search(None, "заказ", 0).await, vec![]);
    let later = ingest_new(&store, &say(vk.id, "v", "v3", "совсем другое"))
        .await
        .message;
    let later2 = ingest_new(&store, &say(vk.id, "v", "v4", "и ещё одно"))
        .await
        .message;
    assert_eq!(search(None, "заказ", 0).await, vec![]);
    assert_eq!(search(None, "другое", 0).await, vec![later]);
    assert_eq!(search(None, "одно", 0).await, vec![later2]);
}

async fn contacts_merge_and_split(store: DynStore) {
    let a = tenant(&store, "Contacts").await;
    let c = a.client.id;
    let tg = channel(&store, c, "tg").await;
    let vk = channel(&store, c, "vk").await;
    let anna_tg = ingest_new(&store, &sent_by("anna-tg", inbound(c, tg.id, "a1", "e1"))).await;
    let anna_vk = ingest_new(&store, &sent_by("anna-vk", inbound(c, vk.id, "a2", "e2"))).await;
    let keep = anna_tg.conversation.contact_id;
    let other = anna_vk.conversation.contact_id;
    assert_ne!(keep, other);

    let updated = store
        .update_contact(
            c,
            keep,
            Some("Anna"),
            Some(&serde_json::json!({"company": "Acme"})),
        )
        .await
        .unwrap();
    assert_eq!(
        (updated.name.as_str(), &updated.fields),
        ("Anna", &serde_json::json!({"company": "Acme"}))
    );
    assert_eq!(store.get_contact(c, keep).await.unwrap(), updated);
    // Name only: the fields stay.
    let renamed = store
        .update_contact(c, keep, Some("Anna K."), None)
        .await
        .unwrap();
    assert_eq!(renamed.fields, updated.fields);
    store
        .update_contact(
            c,
            other,
            None,
            Some(&serde_json::json!({"company": "Other", "phone": "+7 900"})),
        )
        .await
        .unwrap();

    let merged = store.merge_contacts(c, keep, other).await.unwrap();
    assert_eq!(merged.id, keep);
    assert_eq!(merged.name, "Anna K.");
    assert_eq!(
        merged.fields,
        serde_json::json!({"company": "Acme", "phone": "+7 900"}),
        "the kept card wins, the other fills gaps"
    );
    assert_eq!(store.get_contact(c, keep).await.unwrap(), merged);
    not_found(store.get_contact(c, other).await);
    let identities = store.contact_identities(c, keep).await.unwrap();
    assert_eq!(
        identities
            .iter()
            .map(|i| (i.contact_id, i.channel_id, i.external_id.as_str()))
            .collect::<Vec<_>>(),
        vec![(keep, tg.id, "anna-tg"), (keep, vk.id, "anna-vk")]
    );
    assert_eq!(
        store
            .get_conversation(c, anna_vk.conversation.id)
            .await
            .unwrap()
            .contact_id,
        keep
    );
    // Her next chat on vk finds the merged card.
    let again = ingest_new(&store, &sent_by("anna-vk", inbound(c, vk.id, "a3", "e3"))).await;
    assert_eq!(again.conversation.contact_id, keep);
    assert!(again.returning_customer);

    // Split the vk identity back off, with its conversations.
    let vk_identity = identities[1].clone();
    let split = store.split_contact(c, keep, &vk_identity).await.unwrap();
    assert_ne!(split.id, keep);
    assert_eq!(
        (split.name.as_str(), &split.fields),
        ("Anna K.", &serde_json::json!({}))
    );
    assert_eq!(store.get_contact(c, split.id).await.unwrap(), split);
    assert_eq!(
        store.contact_identities(c, split.id).await.unwrap(),
        vec![ContactIdentity {
            contact_id: split.id,
            ..vk_identity.clone()
        }]
    );
    assert_eq!(
        store.contact_identities(c, keep).await.unwrap(),
        vec![identities[0].clone()]
    );
    for (conv, owner) in [
        (anna_tg.conversation.id, keep),
        (anna_vk.conversation.id, split.id),
        (again.conversation.id, split.id),
    ] {
        assert_eq!(
            store.get_conversation(c, conv).await.unwrap().contact_id,
            owner
        );
    }
    // The identity is no longer this contact's: splitting it again is not found.
    not_found(store.split_contact(c, keep, &vk_identity).await);
    not_found(
        store
            .split_contact(
                c,
                keep,
                &ContactIdentity {
                    contact_id: keep,
                    channel_id: tg.id,
                    external_id: "nobody".into(),
                },
            )
            .await,
    );
    // Merging a contact with itself changes nothing.
    assert_eq!(
        store.merge_contacts(c, keep, keep).await.unwrap(),
        store.get_contact(c, keep).await.unwrap()
    );
    not_found(store.merge_contacts(c, keep, ContactId::new()).await);
    not_found(store.merge_contacts(c, ContactId::new(), keep).await);
    not_found(
        store
            .update_contact(c, ContactId::new(), Some("x"), None)
            .await,
    );
    not_found(store.contact_identities(c, ContactId::new()).await);
}

async fn quick_replies_crud(store: DynStore) {
    let a = tenant(&store, "Quick").await;
    let c = a.client.id;
    let thanks = store
        .create_quick_reply(c, "Thanks", "Спасибо, {{contact.name}}!")
        .await
        .unwrap();
    let hello = store
        .create_quick_reply(c, "Hello", "Здравствуйте")
        .await
        .unwrap();
    assert_eq!(thanks.text, "Спасибо, {{contact.name}}!");
    assert_eq!(
        store.list_quick_replies(c).await.unwrap(),
        vec![hello.clone(), thanks.clone()]
    );
    store.delete_quick_reply(c, thanks.id).await.unwrap();
    not_found(store.delete_quick_reply(c, thanks.id).await);
    assert_eq!(store.list_quick_replies(c).await.unwrap(), vec![hello]);
}

async fn routing_snapshot_settings_and_load(store: DynStore) {
    let a = tenant(&store, "Routing").await;
    let c = a.client.id;
    let ch = channel(&store, c, "bot").await;
    let group = store.create_group(c, "Sales").await.unwrap();
    let group = store
        .set_group_members(c, group.id, &[a.owner.id, a.employee.id])
        .await
        .unwrap();

    // Defaults when nothing was ever set.
    let snapshot = store.routing_snapshot(c).await.unwrap();
    let defaults = GroupRouting {
        mode: RoutingMode::RoundRobin,
        hours: WeeklyHours::default(),
        auto_replies: AutoReplies::default(),
    };
    let mut members = vec![
        RoutingMember {
            user_id: a.owner.id,
            competency: 50,
        },
        RoutingMember {
            user_id: a.employee.id,
            competency: 50,
        },
    ];
    members.sort_by_key(|m| m.user_id);
    assert_eq!(snapshot.groups, vec![(group.clone(), defaults, members)]);
    let fresh = |user: UserId| OperatorState {
        user_id: user,
        presence: Presence::Offline,
        accepting_new: true,
        capacity: 5,
        active: 0,
        last_assigned_at: None,
    };
    assert_eq!(
        snapshot.operators,
        vec![fresh(a.owner.id), fresh(a.employee.id)]
    );
    assert!(snapshot.queue.is_empty());

    // Settings round-trip.
    let nine_to_six = TimeRange {
        start: chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        end: chrono::NaiveTime::from_hms_opt(18, 0, 0).unwrap(),
    };
    let mut days: [Vec<TimeRange>; 7] = Default::default();
    days[0] = vec![nine_to_six.clone()];
    days[4] = vec![nine_to_six];
    let routing = GroupRouting {
        mode: RoutingMode::MostSkilled,
        hours: WeeklyHours {
            timezone: "Europe/Moscow".into(),
            always_open: false,
            days,
        },
        auto_replies: AutoReplies {
            new_in_hours: Some("Здравствуйте!".into()),
            returning_off_hours: Some("Мы ответим утром".into()),
            ..AutoReplies::default()
        },
    };
    store
        .set_group_routing(c, group.id, &routing)
        .await
        .unwrap();
    store
        .set_competency(c, group.id, a.employee.id, 90)
        .await
        .unwrap();
    store
        .set_competency(c, group.id, a.owner.id, 0)
        .await
        .unwrap();
    let snapshot = store.routing_snapshot(c).await.unwrap();
    let (g, r, m) = &snapshot.groups[0];
    assert_eq!((g, r), (&group, &routing));
    let level =
        |m: &[RoutingMember], u: UserId| m.iter().find(|x| x.user_id == u).unwrap().competency;
    assert_eq!(level(m, a.employee.id), 90);
    assert_eq!(level(m, a.owner.id), 1, "kept inside 1..=100");
    not_found(store.set_competency(c, group.id, UserId::new(), 10).await);
    not_found(store.set_group_routing(c, GroupId::new(), &routing).await);

    // Changing the members keeps the competency of those who stay.
    let newcomer = store
        .create_user(&new_user("new@routing.test", Role::Employee, Some(c)))
        .await
        .unwrap();
    store
        .set_group_members(c, group.id, &[a.employee.id, newcomer.id])
        .await
        .unwrap();
    let snapshot = store.routing_snapshot(c).await.unwrap();
    let m = &snapshot.groups[0].2;
    assert_eq!(m.len(), 2);
    assert_eq!((level(m, a.employee.id), level(m, newcomer.id)), (90, 50));

    // Operator state: partial updates keep what they do not name.
    let state = store
        .set_operator(
            c,
            a.employee.id,
            Some(3),
            Some(false),
            Some(Presence::Online),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            state.capacity,
            state.accepting_new,
            state.presence,
            state.active
        ),
        (3, false, Presence::Online, 0)
    );
    let state = store
        .set_operator(c, a.employee.id, None, None, Some(Presence::Away))
        .await
        .unwrap();
    assert_eq!(
        (state.capacity, state.accepting_new, state.presence),
        (3, false, Presence::Away)
    );
    let owner = store
        .set_operator(c, a.owner.id, None, Some(true), None)
        .await
        .unwrap();
    assert_eq!(owner, fresh(a.owner.id));
    not_found(
        store
            .set_operator(c, UserId::new(), Some(1), None, None)
            .await,
    );

    // Load: assigned conversations that are new, open or pending.
    let mut convs = Vec::new();
    for (i, status) in [
        ConversationStatus::New,
        ConversationStatus::Open,
        ConversationStatus::Pending,
        ConversationStatus::Snoozed,
        ConversationStatus::Resolved,
    ]
    .into_iter()
    .enumerate()
    {
        let conv = ingest_new(
            &store,
            &inbound(c, ch.id, &format!("chat-{i}"), &format!("e{i}")),
        )
        .await;
        store
            .update_conversation(
                c,
                conv.conversation.id,
                &ConversationPatch {
                    assignee_id: Some(Some(a.employee.id)),
                    status: (status != ConversationStatus::New).then_some(status),
                    snoozed_until: (status == ConversationStatus::Snoozed)
                        .then_some(Some(now() + Duration::hours(1))),
                    ..patch()
                },
            )
            .await
            .unwrap();
        convs.push(conv.conversation.id);
    }
    let snapshot = store.routing_snapshot(c).await.unwrap();
    let emp = snapshot
        .operators
        .iter()
        .find(|o| o.user_id == a.employee.id)
        .unwrap();
    assert_eq!(emp.active, 3);
    assert_eq!((emp.capacity, emp.presence), (3, Presence::Away));
    assert!(emp.last_assigned_at.is_some());

    // Disabled users are not operators.
    store.set_user_disabled(newcomer.id, true).await.unwrap();
    let snapshot = store.routing_snapshot(c).await.unwrap();
    assert_eq!(
        snapshot
            .operators
            .iter()
            .map(|o| o.user_id)
            .collect::<Vec<_>>(),
        vec![a.owner.id, a.employee.id]
    );
}

/// A message into a conversation waiting in the routing queue says so, one by one and in a
/// batch, so that routing is not asked again about it.
async fn ingest_says_whether_the_conversation_waits(store: DynStore) {
    let a = tenant(&store, "Waiting").await;
    let c = a.client.id;
    let ch = channel(&store, c, "bot").await;
    let first = ingest_new(&store, &inbound(c, ch.id, "chat", "w1")).await;
    assert!(!first.waiting, "a new conversation waits nowhere yet");
    let id = first.conversation.id;
    assert!(
        !ingest_new(&store, &inbound(c, ch.id, "chat", "w2"))
            .await
            .waiting
    );

    store.enqueue(c, id, None).await.unwrap();
    assert!(
        ingest_new(&store, &inbound(c, ch.id, "chat", "w3"))
            .await
            .waiting
    );
    let batch = store
        .ingest_batch(&[
            inbound(c, ch.id, "chat", "w4"),
            inbound(c, ch.id, "other", "w5"),
        ])
        .await
        .unwrap();
    let waits: Vec<bool> = batch
        .into_iter()
        .map(|outcome| expect_new(outcome.unwrap()).waiting)
        .collect();
    assert_eq!(waits, vec![true, false]);

    store.dequeue(c, id).await.unwrap();
    assert!(
        !ingest_new(&store, &inbound(c, ch.id, "chat", "w6"))
            .await
            .waiting
    );
    let batch = store
        .ingest_batch(&[inbound(c, ch.id, "chat", "w7")])
        .await
        .unwrap();
    assert!(!expect_new(batch.into_iter().next().unwrap().unwrap()).waiting);
}

async fn routing_queue_is_fifo_and_idempotent(store: DynStore) {
    let a = tenant(&store, "Queue").await;
    let c = a.client.id;
    let ch = channel(&store, c, "bot").await;
    let sales = store.create_group(c, "Sales").await.unwrap();
    let one = ingest_new(&store, &inbound(c, ch.id, "one", "e1"))
        .await
        .conversation
        .id;
    let two = ingest_new(&store, &inbound(c, ch.id, "two", "e2"))
        .await
        .conversation
        .id;
    let three = ingest_new(&store, &inbound(c, ch.id, "three", "e3"))
        .await
        .conversation
        .id;

    store.enqueue(c, two, Some(sales.id)).await.unwrap();
    tick().await;
    store.enqueue(c, one, None).await.unwrap();
    tick().await;
    store.enqueue(c, three, None).await.unwrap();
    let first = store.routing_snapshot(c).await.unwrap().queue;
    assert_eq!(
        first.iter().map(|q| q.conversation_id).collect::<Vec<_>>(),
        vec![two, one, three]
    );
    assert_eq!(first[0].group_id, Some(sales.id));
    assert!(first[0].enqueued_at <= first[1].enqueued_at);

    // Enqueued again: still once, in its first place; the group follows.
    tick().await;
    store.enqueue(c, two, None).await.unwrap();
    let queue = store.routing_snapshot(c).await.unwrap().queue;
    assert_eq!(queue.len(), 3);
    assert_eq!(
        (
            queue[0].conversation_id,
            queue[0].group_id,
            queue[0].enqueued_at
        ),
        (two, None, first[0].enqueued_at)
    );

    store.dequeue(c, two).await.unwrap();
    store.dequeue(c, two).await.unwrap();
    assert_eq!(
        store
            .routing_snapshot(c)
            .await
            .unwrap()
            .queue
            .iter()
            .map(|q| q.conversation_id)
            .collect::<Vec<_>>(),
        vec![one, three]
    );
    not_found(store.enqueue(c, ConversationId::new(), None).await);
    not_found(store.enqueue(c, one, Some(GroupId::new())).await);
    not_found(store.dequeue(c, ConversationId::new()).await);
    // A deleted group leaves its waiting conversations in the queue, without a group.
    store.enqueue(c, one, Some(sales.id)).await.unwrap();
    store.delete_group(c, sales.id).await.unwrap();
    assert_eq!(
        store.routing_snapshot(c).await.unwrap().queue[0].group_id,
        None
    );
}

/// Writers on several conversations of one client commit concurrently while a reader follows
/// `events_after`: the reader sees every event, in seq order, none skipped.
async fn events_resume_without_gaps(store: DynStore) {
    let a = tenant(&store, "Events").await;
    let b = tenant(&store, "Events B").await;
    let c = a.client.id;
    let ch = channel(&store, c, "bot").await;
    let mut convs = Vec::new();
    for i in 0..4 {
        convs.push(
            ingest_new(
                &store,
                &inbound(c, ch.id, &format!("chat-{i}"), &format!("e{i}")),
            )
            .await
            .conversation
            .id,
        );
    }
    let start = store.last_event_seq().await.unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let store = store.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut cursor = start;
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let page = store.events_after(c, cursor, 7).await.unwrap();
                for e in &page {
                    assert!(e.seq > cursor);
                    cursor = e.seq;
                    seen.push(e.seq);
                }
                if page.is_empty() && finished {
                    return seen;
                }
            }
        })
    };
    let writers: Vec<_> = convs
        .iter()
        .map(|&id| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..25 {
                    store.add_tag(c, id, &format!("t{i}")).await.unwrap();
                }
            })
        })
        .collect();
    // Another client writing meanwhile is not in A's log.
    let b_ch = channel(&store, b.client.id, "b").await;
    for i in 0..10 {
        ingest_new(
            &store,
            &inbound(b.client.id, b_ch.id, "b", &format!("b{i}")),
        )
        .await;
    }
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = reader.await.unwrap();
    let all: Vec<i64> = store
        .events_after(c, start, 1000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(all.len(), 100);
    assert_eq!(seen, all, "the follower saw every event once, in order");
    assert!(store.last_event_seq().await.unwrap() >= *all.last().unwrap());
    assert_eq!(store.events_after(c, start, 10).await.unwrap().len(), 10);
}

async fn old_events_are_pruned_and_the_head_stays(store: DynStore) {
    let a = tenant(&store, "Prune").await;
    let b = tenant(&store, "Prune's neighbour").await;
    let ch = channel(&store, a.client.id, "bot").await;
    let other = channel(&store, b.client.id, "bot").await;
    assert_eq!(store.events_pruned_through().await.unwrap(), 0);
    assert_eq!(
        store.last_client_event_seq(a.client.id).await.unwrap(),
        None
    );
    let mut seqs = Vec::new();
    for i in 0..5 {
        let chat = format!("chat-{i}");
        let new = ingest_new(
            &store,
            &inbound(a.client.id, ch.id, &chat, &format!("e{i}")),
        )
        .await;
        seqs.push(new.event_seq);
    }
    // Each client's head is its own newest event, whatever other clients commit after it.
    let theirs = ingest_new(&store, &inbound(b.client.id, other.id, "chat", "b0")).await;
    assert_eq!(
        store.last_client_event_seq(a.client.id).await.unwrap(),
        Some(seqs[4])
    );
    assert_eq!(
        store.last_client_event_seq(b.client.id).await.unwrap(),
        Some(theirs.event_seq)
    );
    let head = store.last_event_seq().await.unwrap();
    // Nothing is older than a while ago.
    let past = now() - Duration::hours(1);
    assert_eq!(store.prune_events(past, 100).await.unwrap(), 0);
    assert_eq!(store.events_pruned_through().await.unwrap(), 0);
    // Everything is older than a moment from now: the oldest two go first, in seq order.
    let future = now() + Duration::seconds(1);
    assert_eq!(store.prune_events(future, 2).await.unwrap(), 2);
    assert_eq!(store.events_pruned_through().await.unwrap(), seqs[1]);
    let left: Vec<i64> = store
        .events_after(a.client.id, 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(left, seqs[2..].to_vec());
    // Emptied, the log keeps its head, and new events go on above it.
    let rest = store.prune_events(future, 100).await.unwrap();
    assert!(rest >= 3, "{rest}");
    assert!(
        store
            .events_after(a.client.id, 0, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.last_event_seq().await.unwrap(), head);
    assert_eq!(store.events_pruned_through().await.unwrap(), head);
    assert_eq!(
        store.last_client_event_seq(a.client.id).await.unwrap(),
        None
    );
    let later = ingest_new(&store, &inbound(a.client.id, ch.id, "chat-9", "e9")).await;
    assert!(later.event_seq > head);
}

async fn next_announcement(
    events: &mut futures_util::stream::BoxStream<'static, Result<Announcement>>,
) -> Announcement {
    tokio::time::timeout(std::time::Duration::from_secs(10), events.next())
        .await
        .expect("a notification within 10 s")
        .expect("the stream goes on")
        .unwrap()
}

/// PostgreSQL announces committed events to every node; SQLite has no listener.
async fn events_are_announced_across_nodes(store: DynStore, url: String) {
    let Some(mut events) = store.listen_events().await.unwrap() else {
        assert_eq!(store.engine(), "sqlite");
        return;
    };
    assert_eq!(store.engine(), "postgres");
    // Another node on the same database.
    let node_b = omnihub_store::open(&url, secrets()).await.unwrap();
    let a = tenant(&node_b, "Announce").await;
    let ch = channel(&node_b, a.client.id, "bot").await;
    let first = ingest_new(&node_b, &inbound(a.client.id, ch.id, "chat", "e1")).await;
    assert_eq!(
        next_announcement(&mut events).await,
        Announcement::Committed {
            client: a.client.id,
            seq: first.event_seq
        }
    );
    // A duplicate (rolled back) announces nothing: the next one is the next commit.
    assert!(matches!(
        node_b
            .ingest(&inbound(a.client.id, ch.id, "chat", "e1"))
            .await
            .unwrap(),
        Ingest::Duplicate(_)
    ));
    let (_, tagged) = node_b
        .add_tag(a.client.id, first.conversation.id, "x")
        .await
        .unwrap();
    assert_eq!(
        next_announcement(&mut events).await,
        Announcement::Committed {
            client: a.client.id,
            seq: tagged.seq
        }
    );
    // What is not stored reaches every node too, as it was said.
    node_b
        .announce(a.client.id, r#"{"kind":"typing"}"#)
        .await
        .unwrap();
    assert_eq!(
        next_announcement(&mut events).await,
        Announcement::Ephemeral {
            client: a.client.id,
            payload: r#"{"kind":"typing"}"#.into()
        }
    );
}

async fn tasks_lease_complete_fail_and_dedupe(store: DynStore) {
    let a = tenant(&store, "Tasks").await;
    let t0 = now();
    let task = |key: &str, due: DateTime<Utc>| NewTask {
        client_id: Some(a.client.id),
        kind: "conversation.unsnooze".into(),
        payload: serde_json::json!({"key": key}),
        due_at: due,
        idempotency_key: key.into(),
    };
    let soon = store
        .schedule_task(&task("a", t0 - Duration::seconds(1)))
        .await
        .unwrap();
    assert_eq!(
        (soon.status.clone(), soon.attempts, soon.last_error.clone()),
        (TaskStatus::Pending, 0, None)
    );
    assert_eq!(soon.payload, serde_json::json!({"key": "a"}));
    let later = store
        .schedule_task(&task("b", t0 + Duration::hours(1)))
        .await
        .unwrap();
    let platform = store
        .schedule_task(&NewTask {
            client_id: None,
            ..task("c", t0 - Duration::seconds(2))
        })
        .await
        .unwrap();
    // The same key again keeps the first task.
    let again = store
        .schedule_task(&NewTask {
            payload: serde_json::json!({"other": true}),
            ..task("a", t0 + Duration::days(1))
        })
        .await
        .unwrap();
    assert_eq!(again, soon);
    assert_eq!(store.next_task_due().await.unwrap(), Some(platform.due_at));

    let lease = t0 + Duration::seconds(30);
    let claimed = store.claim_due_tasks("n1", t0, lease, 10).await.unwrap();
    assert_eq!(
        claimed.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![platform.id, soon.id],
        "due ones, earliest first"
    );
    assert!(
        claimed
            .iter()
            .all(|t| t.status == TaskStatus::Running && t.attempts == 1)
    );
    assert!(
        store
            .claim_due_tasks("n2", t0, lease, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Only the holder completes or fails a task.
    not_found(store.complete_task(soon.id, "n2").await);
    store.complete_task(soon.id, "n1").await.unwrap();
    not_found(store.complete_task(soon.id, "n1").await);
    not_found(store.complete_task(uuid::Uuid::now_v7(), "n1").await);
    not_found(store.fail_task(platform.id, "n2", "no", None).await);
    let retry = t0 + Duration::seconds(10);
    store
        .fail_task(platform.id, "n1", "boom", Some(retry))
        .await
        .unwrap();
    assert_eq!(store.next_task_due().await.unwrap(), Some(retry));
    assert!(
        store
            .claim_due_tasks("n1", t0, lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let retried = store
        .claim_due_tasks("n2", retry, retry + Duration::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(
        (
            retried[0].id,
            retried[0].attempts,
            retried[0].last_error.as_deref(),
            retried[0].due_at
        ),
        (platform.id, 2, Some("boom"), retry)
    );
    store
        .fail_task(platform.id, "n2", "boom again", None)
        .await
        .unwrap();
    not_found(store.complete_task(platform.id, "n2").await);

    // A lease that runs out (the node died) is claimable again; the old holder lost it.
    let at = later.due_at;
    let first = store
        .claim_due_tasks("n1", at, at + Duration::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(
        first.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![later.id]
    );
    assert_eq!(
        store.next_task_due().await.unwrap(),
        Some(at + Duration::seconds(30))
    );
    assert!(
        store
            .claim_due_tasks(
                "n2",
                at + Duration::seconds(29),
                at + Duration::seconds(60),
                10
            )
            .await
            .unwrap()
            .is_empty()
    );
    let stolen = store
        .claim_due_tasks(
            "n2",
            at + Duration::seconds(31),
            at + Duration::seconds(90),
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        (stolen[0].id, stolen[0].attempts, stolen.len()),
        (later.id, 2, 1)
    );
    not_found(store.complete_task(later.id, "n1").await);
    store.complete_task(later.id, "n2").await.unwrap();
    assert_eq!(store.next_task_due().await.unwrap(), None);
    assert!(
        store
            .claim_due_tasks("n3", at + Duration::days(7), at + Duration::days(8), 10)
            .await
            .unwrap()
            .is_empty(),
        "done and failed tasks stay done"
    );
    not_found(
        store
            .schedule_task(&NewTask {
                client_id: Some(ClientId::new()),
                ..task("z", t0)
            })
            .await,
    );
}

macro_rules! insert_due_tasks {
    ($conn:expr, $db:ty, $ids:expr, $due:expr) => {{
        let mut q = sqlx::QueryBuilder::<$db>::new(
            "INSERT INTO tasks (id, kind, payload, due_at, status, attempts, idempotency_key, \
             created_at) ",
        );
        q.push_values($ids, |mut row, id: &Uuid| {
            row.push_bind(*id)
                .push_bind("bulk")
                .push_bind(sqlx::types::Json(serde_json::json!({})))
                .push_bind($due)
                .push_bind("pending")
                .push_bind(0_i64)
                .push_bind(id.to_string())
                .push_bind($due);
        });
        q.build().execute($conn).await.unwrap();
    }};
}

/// 10,000 tasks due at once, four nodes claiming batches of 500: each task exactly once, and
/// completed in bulk by the node that holds it.
async fn ten_thousand_due_tasks_are_claimed_once(store: DynStore, url: String) {
    const TASKS: usize = 10_000;
    let due = now() - Duration::seconds(1);
    let ids: Vec<Uuid> = (0..TASKS).map(|_| Uuid::now_v7()).collect();
    let mut raw = Raw::connect(&url).await;
    for chunk in ids.chunks(1000) {
        match &mut raw {
            Raw::Sqlite(c) => {
                insert_due_tasks!(&mut *c, sqlx::Sqlite, chunk, due.timestamp_millis())
            }
            Raw::Pg(c) => insert_due_tasks!(&mut *c, sqlx::Postgres, chunk, due.timestamp_millis()),
        }
    }
    let claimers: Vec<_> = (0..4)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let node = format!("node-{n}");
                let mut mine = Vec::new();
                loop {
                    let at = now();
                    let batch = store
                        .claim_due_tasks(&node, at, at + Duration::minutes(5), 500)
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    assert!(batch.len() <= 500);
                    mine.extend(batch.into_iter().map(|t| t.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut per_node = Vec::new();
    for (n, c) in claimers.into_iter().enumerate() {
        let mine = c.await.unwrap();
        all.extend(mine.iter().copied());
        per_node.push((format!("node-{n}"), mine));
    }
    let unique: HashSet<Uuid> = all.iter().copied().collect();
    assert_eq!(all.len(), TASKS, "every task claimed exactly once");
    assert_eq!(unique, ids.iter().copied().collect());

    // Completed in bulk: a node completes only what it holds, each task once.
    let mut completed = 0;
    for (node, mine) in &per_node {
        assert_eq!(
            store.complete_tasks(&ids, node).await.unwrap(),
            mine.len() as u64,
            "{node} completes its own tasks only"
        );
        completed += mine.len();
    }
    assert_eq!(completed, TASKS);
    assert_eq!(store.complete_tasks(&ids, "node-0").await.unwrap(), 0);
    assert_eq!(store.complete_tasks(&[], "node-0").await.unwrap(), 0);
    let at = now() + Duration::hours(1);
    assert!(
        store
            .claim_due_tasks("node-9", at, at + Duration::minutes(5), 10)
            .await
            .unwrap()
            .is_empty(),
        "completed tasks are never claimed again, not even after their lease"
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

async fn calls_are_recorded_finished_once_and_counted(store: DynStore) {
    let a = tenant(&store, "Calling").await;
    let b = tenant(&store, "Other calling").await;
    let phone = channel(&store, a.client.id, "pbx").await;
    let other_phone = channel(&store, b.client.id, "other pbx").await;
    let talk = ingest_new(
        &store,
        &inbound(a.client.id, phone.id, "+79990001122", "call-1"),
    )
    .await
    .conversation;
    let new_call = |id: CallId, number: &str, ip: &str| NewCall {
        id,
        client_id: a.client.id,
        channel_id: phone.id,
        conversation_id: talk.id,
        number: number.to_string(),
        visitor: Some("visitor-1".into()),
        ip: Some(ip.to_string()),
        requested_by: None,
    };
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    let first = store
        .create_call(&new_call(CallId::new(), "+79990001122", "203.0.113.5"))
        .await
        .unwrap();
    assert_eq!(first.outcome, None);
    let second = store
        .create_call(&new_call(CallId::new(), "+79990001122", "203.0.113.6"))
        .await
        .unwrap();
    // Another client's channel or conversation: not found, nothing written.
    let mut foreign = new_call(CallId::new(), "+79990001122", "203.0.113.5");
    foreign.channel_id = other_phone.id;
    assert!(matches!(
        store.create_call(&foreign).await,
        Err(StoreError::NotFound)
    ));
    let mut foreign = new_call(CallId::new(), "+79990001122", "203.0.113.5");
    foreign.client_id = b.client.id;
    foreign.channel_id = other_phone.id;
    assert!(matches!(
        store.create_call(&foreign).await,
        Err(StoreError::NotFound)
    ));

    let count = |by: CallsBy<'static>| {
        let store = store.clone();
        async move { store.count_calls(a.client.id, by, before).await.unwrap() }
    };
    assert_eq!(count(CallsBy::Number("+79990001122")).await, 2);
    assert_eq!(count(CallsBy::Ip("203.0.113.5")).await, 1);
    assert_eq!(count(CallsBy::Visitor("visitor-1")).await, 2);
    assert_eq!(count(CallsBy::Number("+79990009999")).await, 0);
    assert_eq!(
        store
            .count_calls(b.client.id, CallsBy::Number("+79990001122"), before)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .count_calls(
                a.client.id,
                CallsBy::Number("+79990001122"),
                chrono::Utc::now() + chrono::Duration::seconds(5)
            )
            .await
            .unwrap(),
        0
    );

    // The newest open call to a number; provider ids unique per channel.
    assert_eq!(
        store
            .open_call_to(phone.id, "+79990001122")
            .await
            .unwrap()
            .id,
        second.id
    );
    store
        .set_call_provider_id(a.client.id, first.id, "CA1")
        .await
        .unwrap();
    assert!(matches!(
        store
            .set_call_provider_id(a.client.id, second.id, "CA1")
            .await,
        Err(StoreError::Conflict("provider_call_id"))
    ));
    assert!(matches!(
        store
            .set_call_provider_id(b.client.id, second.id, "CA2")
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.call_by_provider_id(phone.id, "CA1").await.unwrap().id,
        first.id
    );
    assert!(matches!(
        store.call_by_provider_id(other_phone.id, "CA1").await,
        Err(StoreError::NotFound)
    ));

    // The first outcome stays; a redelivery or a later leg changes nothing.
    let done = store
        .finish_call(
            a.client.id,
            second.id,
            CallOutcomeKind::Answered,
            Some(42),
            None,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.outcome, Some(CallOutcomeKind::Answered));
    assert_eq!(done.duration_secs, Some(42));
    assert!(done.ended_at.is_some());
    assert_eq!(
        store
            .finish_call(a.client.id, second.id, CallOutcomeKind::Busy, None, None)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .get_call(a.client.id, second.id)
            .await
            .unwrap()
            .outcome,
        Some(CallOutcomeKind::Answered)
    );
    assert!(matches!(
        store
            .finish_call(b.client.id, first.id, CallOutcomeKind::Busy, None, None)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.get_call(b.client.id, first.id).await,
        Err(StoreError::NotFound)
    ));
    // The sweep after a restart finds the calls still going placed before its bound, of
    // every client, oldest first.
    let later = chrono::Utc::now() + chrono::Duration::seconds(5);
    let unfinished: Vec<CallId> = store
        .unfinished_calls(later, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.client_id == a.client.id)
        .map(|c| c.id)
        .collect();
    assert_eq!(unfinished, [first.id]);
    assert!(
        store
            .unfinished_calls(before, 100)
            .await
            .unwrap()
            .is_empty()
    );
    // Only calls still going are found by number.
    assert_eq!(
        store
            .open_call_to(phone.id, "+79990001122")
            .await
            .unwrap()
            .id,
        first.id
    );
    store
        .finish_call(
            a.client.id,
            first.id,
            CallOutcomeKind::Failed,
            None,
            Some("no money"),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        store.open_call_to(phone.id, "+79990001122").await,
        Err(StoreError::NotFound)
    ));
}

// --- attachments ----------------------------------------------------------------------------

fn photo(reference: &str) -> NewInboundAttachment {
    NewInboundAttachment {
        kind: omnihub_core::media::AttachmentKind::Image,
        file_name: "photo.jpg".into(),
        mime_type: "image/jpeg".into(),
        size: Some(1234),
        provider_ref: reference.into(),
        stored: None,
    }
}

async fn inbound_attachments_already_stored_are_ready_at_once(store: DynStore) {
    use omnihub_core::media::AttachmentState;
    let a = tenant(&store, "Widget files").await;
    let ch = channel(&store, a.client.id, "site").await;
    let mut event = inbound(a.client.id, ch.id, "visitor-1", "ev-1");
    let mut file = photo("unused");
    file.stored = Some(StoredFile {
        storage_key: "fedcba9876543210fedcba9876543210".into(),
        size: 777,
        sha256: "cd".repeat(32),
        mime_type: None,
        file_name: None,
    });
    event.attachments = vec![file];
    let Ingest::New {
        message, event_seq, ..
    } = store.ingest(&event).await.unwrap()
    else {
        panic!("expected a new message");
    };
    let pushed = stored_event(&store, a.client.id, event_seq).await;
    assert_eq!(message.attachments[0].state, AttachmentState::Ready);
    assert_eq!(message.attachments[0].size, Some(777));
    assert_eq!(pushed.payload["attachments"][0]["state"], "ready");
    let stored = store
        .get_attachment(a.client.id, message.attachments[0].id)
        .await
        .unwrap();
    assert_eq!(
        stored.storage_key.as_deref(),
        Some("fedcba9876543210fedcba9876543210")
    );
    assert_eq!(stored.provider_ref, None);
    assert_eq!(stored.attachment.sha256, Some("cd".repeat(32)));
    // Nothing to download.
    let now = Utc::now();
    let tasks = store
        .claim_due_tasks(
            "n1",
            now + Duration::seconds(1),
            now + Duration::minutes(1),
            10,
        )
        .await
        .unwrap();
    assert!(tasks.iter().all(|t| t.kind != ATTACHMENT_DOWNLOAD));
}

async fn inbound_attachments_wait_then_are_stored_or_failed(store: DynStore) {
    use omnihub_core::media::AttachmentState;
    let a = tenant(&store, "Files").await;
    let b = tenant(&store, "Other files").await;
    let ch = channel(&store, a.client.id, "bot").await;
    let mut event = inbound(a.client.id, ch.id, "chat-1", "ev-1");
    event.attachments = vec![photo("file-1"), photo("file-2")];
    let Ingest::New {
        message, event_seq, ..
    } = store.ingest(&event).await.unwrap()
    else {
        panic!("expected a new message");
    };
    let pushed = stored_event(&store, a.client.id, event_seq).await;
    // Committed with the message, pending, in order, and in the pushed event.
    assert_eq!(message.attachments.len(), 2);
    assert!(
        message
            .attachments
            .iter()
            .all(|f| f.state == AttachmentState::Pending)
    );
    assert_eq!(pushed.payload["attachments"][1]["state"], "pending");
    let first = message.attachments[0].id;
    let second = message.attachments[1].id;
    let stored = store.get_attachment(a.client.id, first).await.unwrap();
    assert_eq!(stored.provider_ref.as_deref(), Some("file-1"));
    assert_eq!(stored.channel_id, ch.id);
    assert_eq!(stored.storage_key, None);
    // One download task per file, due at once; a redelivery adds neither files nor tasks.
    assert!(matches!(
        store.ingest(&event).await.unwrap(),
        Ingest::Duplicate(_)
    ));
    let now = Utc::now();
    let tasks = store
        .claim_due_tasks(
            "n1",
            now + Duration::seconds(1),
            now + Duration::minutes(1),
            10,
        )
        .await
        .unwrap();
    let downloads: Vec<_> = tasks
        .iter()
        .filter(|t| t.kind == ATTACHMENT_DOWNLOAD)
        .collect();
    assert_eq!(downloads.len(), 2);
    assert!(
        downloads
            .iter()
            .any(|t| t.payload["attachment_id"] == serde_json::json!(first))
    );

    // Another client can neither read nor settle it.
    assert!(matches!(
        store.get_attachment(b.client.id, first).await,
        Err(StoreError::NotFound)
    ));
    let file = StoredFile {
        storage_key: "0123456789abcdef0123456789abcdef".into(),
        size: 1200,
        sha256: "ab".repeat(32),
        mime_type: None,
        file_name: None,
    };
    assert!(matches!(
        store.attachment_stored(b.client.id, first, &file).await,
        Err(StoreError::NotFound)
    ));

    let ev = store
        .attachment_stored(a.client.id, first, &file)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev.kind, EventKind::MessageUpdated);
    assert_eq!(ev.conversation_id, Some(message.conversation_id));
    assert_eq!(ev.payload["id"], serde_json::json!(message.id));
    assert_eq!(ev.payload["attachments"][0]["state"], "ready");
    assert_eq!(ev.payload["attachments"][0]["size"], 1200);
    // Settling twice changes nothing and appends nothing.
    assert!(
        store
            .attachment_stored(a.client.id, first, &file)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .attachment_failed(a.client.id, first, "late")
            .await
            .unwrap()
            .is_none()
    );
    let ev = store
        .attachment_failed(a.client.id, second, "file is too big")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev.payload["attachments"][1]["state"], "failed");

    let listed = store
        .conversation_messages(a.client.id, message.conversation_id, None, 10)
        .await
        .unwrap();
    let files = &listed[0].attachments;
    assert_eq!(files[0].state, AttachmentState::Ready);
    assert_eq!(files[0].sha256.as_deref(), Some("ab".repeat(32).as_str()));
    assert_eq!(files[1].state, AttachmentState::Failed);
    assert_eq!(files[1].failure_reason.as_deref(), Some("file is too big"));
    let stored = store.get_attachment(a.client.id, first).await.unwrap();
    assert_eq!(
        stored.storage_key.as_deref(),
        Some("0123456789abcdef0123456789abcdef")
    );
}

async fn uploads_go_out_with_one_reply_only(store: DynStore) {
    let a = tenant(&store, "Uploads").await;
    let b = tenant(&store, "Other uploads").await;
    let ch = channel(&store, a.client.id, "bot").await;
    let other_ch = channel(&store, b.client.id, "bot").await;
    let one = ingest_new(&store, &inbound(a.client.id, ch.id, "c1", "e1"))
        .await
        .message;
    let two = ingest_new(&store, &inbound(a.client.id, ch.id, "c2", "e2"))
        .await
        .message;
    let theirs = ingest_new(&store, &inbound(b.client.id, other_ch.id, "c1", "e1"))
        .await
        .message;
    let upload = |client: ClientId, conversation: ConversationId, by: Option<UserId>| NewUpload {
        client_id: client,
        conversation_id: conversation,
        uploaded_by: by,
        kind: omnihub_core::media::AttachmentKind::Document,
        file_name: "invoice.pdf".into(),
        mime_type: "application/pdf".into(),
        size: 42,
        sha256: "cd".repeat(32),
        storage_key: "fedcba9876543210fedcba9876543210".into(),
    };
    // Only into one's own conversations, by one's own people.
    assert!(matches!(
        store
            .create_upload(&upload(a.client.id, theirs.conversation_id, None))
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .create_upload(&upload(a.client.id, one.conversation_id, Some(b.owner.id)))
            .await,
        Err(StoreError::NotFound)
    ));
    let file = store
        .create_upload(&upload(
            a.client.id,
            one.conversation_id,
            Some(a.employee.id),
        ))
        .await
        .unwrap();
    assert_eq!(file.message_id, None);
    assert_eq!(file.state, omnihub_core::media::AttachmentState::Ready);

    // Not in another conversation's reply; nothing is committed then.
    let mut wrong = outbound(
        a.client.id,
        two.conversation_id,
        MessageKind::Message,
        "w",
        None,
    );
    wrong.attachments = vec![file.id];
    assert!(matches!(
        store.add_outbound(&wrong).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store
            .conversation_messages(a.client.id, two.conversation_id, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );

    let mut reply = outbound(
        a.client.id,
        one.conversation_id,
        MessageKind::Message,
        "r1",
        None,
    );
    reply.attachments = vec![file.id];
    let (sent, event) = store.add_outbound(&reply).await.unwrap();
    assert_eq!(sent.attachments.len(), 1);
    assert_eq!(sent.attachments[0].message_id, Some(sent.id));
    assert_eq!(
        event.unwrap().payload["attachments"][0]["file_name"],
        "invoice.pdf"
    );
    // The same request again is the same message.
    let (again, event) = store.add_outbound(&reply).await.unwrap();
    assert_eq!((again.id, event), (sent.id, None));
    // Another reply cannot take the file once sent.
    let mut second = outbound(
        a.client.id,
        one.conversation_id,
        MessageKind::Message,
        "r2",
        None,
    );
    second.attachments = vec![file.id];
    assert!(matches!(
        store.add_outbound(&second).await,
        Err(StoreError::Conflict("attachment"))
    ));
    // Pending replies carry their files for the channel to send.
    let pending = store.pending_outbound(a.client.id, 10).await.unwrap();
    let mine = pending.iter().find(|m| m.id == sent.id).unwrap();
    assert_eq!(mine.attachments[0].id, file.id);
    let stored = store.get_attachment(a.client.id, file.id).await.unwrap();
    assert_eq!(
        stored.storage_key.as_deref(),
        Some("fedcba9876543210fedcba9876543210")
    );
}

// --- the media store (engine-independent) ---------------------------------------------------

mod media_store {
    use bytes::Bytes;
    use futures_util::StreamExt;
    use omnihub_store::media::{ByteStream, FsMediaStore, MediaError, MediaStore, read_all};

    fn chunks(parts: Vec<&'static [u8]>) -> ByteStream<'static> {
        futures_util::stream::iter(parts.into_iter().map(|p| Ok(Bytes::from_static(p)))).boxed()
    }

    async fn fresh() -> (FsMediaStore, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("omnihub-media-{}", uuid::Uuid::new_v4()));
        (FsMediaStore::open_dir(&dir).await.unwrap(), dir)
    }

    fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                found.extend(files_under(&path));
            } else {
                found.push(path);
            }
        }
        found
    }

    #[tokio::test]
    async fn put_open_delete_round_trip_with_size_and_hash() {
        let (media, dir) = fresh().await;
        let put = media
            .put(chunks(vec![b"hello ", b"world"]), 1024)
            .await
            .unwrap();
        assert_eq!(put.size, 11);
        // sha256("hello world")
        assert_eq!(
            put.sha256,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(
            read_all(&media, &put.key, 1024).await.unwrap(),
            b"hello world"
        );
        assert_eq!(media.open(&put.key).await.unwrap().size, 11);
        // Nothing is left in the temporary directory.
        assert!(std::fs::read_dir(dir.join("tmp")).unwrap().next().is_none());
        let again = media.put(chunks(vec![b"hello world"]), 1024).await.unwrap();
        assert_ne!(again.key, put.key, "keys are never reused");
        media.delete(&put.key).await.unwrap();
        media.delete(&put.key).await.unwrap();
        assert!(matches!(
            media.open(&put.key).await,
            Err(MediaError::NotFound)
        ));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn too_large_or_broken_uploads_leave_nothing() {
        let (media, dir) = fresh().await;
        let big = media.put(chunks(vec![b"12345", b"67890", b"x"]), 10).await;
        assert!(matches!(big, Err(MediaError::TooLarge { limit: 10 })));
        let broken: ByteStream<'static> = futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"part")),
            Err(std::io::Error::other("connection reset")),
        ])
        .boxed();
        assert!(matches!(
            media.put(broken, 100).await,
            Err(MediaError::Source(_))
        ));
        assert!(files_under(&dir).is_empty(), "{:?}", files_under(&dir));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn keys_not_of_its_own_making_name_nothing() {
        let (media, dir) = fresh().await;
        std::fs::write(dir.join("secret"), b"not yours").unwrap();
        for key in [
            "../secret",
            "secret",
            "/etc/passwd",
            "..",
            "",
            "0123456789ABCDEF0123456789abcdef",
        ] {
            assert!(
                matches!(media.open(key).await, Err(MediaError::NotFound)),
                "{key}"
            );
            media.delete(key).await.unwrap();
        }
        assert!(dir.join("secret").exists());
        let _ = std::fs::remove_dir_all(dir);
    }
}

// --- the scheduler: recurrence, control, triggers, notifications ---------------------------

fn client_task(client: ClientId, key: &str, due_at: DateTime<Utc>) -> NewTask {
    NewTask {
        client_id: Some(client),
        kind: "test.kind".into(),
        payload: serde_json::json!({ "key": key }),
        due_at,
        idempotency_key: key.into(),
    }
}

async fn recurring_tasks_schedule_their_next_occurrence_once(store: DynStore) {
    let t = tenant(&store, "Recurring").await;
    let t0 = DateTime::parse_from_rfc3339("2026-04-01T07:00:00Z")
        .unwrap()
        .to_utc();
    let options = TaskOptions {
        recurrence: Some(schedule::Recurrence::parse("0 10 * * *", "Europe/Moscow").unwrap()),
        catch_up: schedule::CatchUp::FireOnce,
        ..TaskOptions::default()
    };
    let first = store
        .schedule_task_with(&client_task(t.client.id, "daily", t0), &options)
        .await
        .unwrap();
    assert_eq!(first.series_id, Some(first.id));
    assert_eq!(first.recurrence.as_deref(), Some("0 10 * * *"));
    assert_eq!(first.time_zone.as_deref(), Some("Europe/Moscow"));
    assert_eq!(first.catch_up, "fire_once");
    assert_eq!(first.occurrence_at, t0);

    let lease = t0 + Duration::seconds(60);
    let claimed = store.claim_due_tasks("n1", t0, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let next = t0 + Duration::days(1);
    let done = FinishedTask {
        id: first.id,
        outcome: TaskOutcome::Done,
        next_due: Some(next),
    };
    // Another node whose claim ran out cannot finish it; the holder can, once.
    assert_eq!(
        store
            .finish_tasks(std::slice::from_ref(&done), "n2", t0)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .finish_tasks(std::slice::from_ref(&done), "n1", t0)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.finish_tasks(&[done], "n1", t0).await.unwrap(), 0);
    let all = store
        .list_tasks(t.client.id, &TaskFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0].status, TaskStatus::Done);
    assert_eq!(all[0].finished_at, Some(t0));
    let second = &all[1];
    assert_eq!(
        (
            &second.status,
            second.due_at,
            second.occurrence_at,
            second.series_id
        ),
        (&TaskStatus::Pending, next, next, Some(first.id))
    );
    assert_eq!(second.recurrence, first.recurrence);
    assert_eq!(second.catch_up, "fire_once");

    // The second occurrence, run twice by a node that lost its lease to another: one third.
    let lease = next + Duration::seconds(60);
    assert_eq!(
        store
            .claim_due_tasks("n1", next, lease, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let later = lease + Duration::seconds(1);
    assert_eq!(
        store
            .claim_due_tasks("n2", later, later + Duration::seconds(60), 10)
            .await
            .unwrap()
            .len(),
        1,
        "the lease ran out"
    );
    let failed = FinishedTask {
        id: second.id,
        outcome: TaskOutcome::Failed {
            error: "VK: access denied".into(),
            retry_at: None,
        },
        next_due: Some(next + Duration::days(1)),
    };
    assert_eq!(
        store
            .finish_tasks(std::slice::from_ref(&failed), "n1", later)
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.finish_tasks(&[failed], "n2", later).await.unwrap(), 1);
    let all = store
        .list_tasks(t.client.id, &TaskFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all[1].status, TaskStatus::Failed);
    assert_eq!(all[1].last_error.as_deref(), Some("VK: access denied"));

    // A retry keeps its series where it is; a skip ends the occurrence like a failure.
    let third = all[2].clone();
    let t3 = third.due_at;
    store
        .claim_due_tasks("n1", t3, t3 + Duration::seconds(60), 10)
        .await
        .unwrap();
    let retry_at = t3 + Duration::seconds(2);
    let retry = FinishedTask {
        id: third.id,
        outcome: TaskOutcome::Failed {
            error: "timeout".into(),
            retry_at: Some(retry_at),
        },
        next_due: None,
    };
    assert_eq!(store.finish_tasks(&[retry], "n1", t3).await.unwrap(), 1);
    let retried = store.get_task(t.client.id, third.id).await.unwrap();
    assert_eq!(
        (&retried.status, retried.due_at, retried.occurrence_at),
        (&TaskStatus::Pending, retry_at, t3)
    );
    store
        .claim_due_tasks("n1", retry_at, retry_at + Duration::seconds(60), 10)
        .await
        .unwrap();
    let skipped = FinishedTask {
        id: third.id,
        outcome: TaskOutcome::Skipped {
            reason: "too late".into(),
        },
        next_due: Some(t3 + Duration::days(1)),
    };
    assert_eq!(
        store
            .finish_tasks(&[skipped], "n1", retry_at)
            .await
            .unwrap(),
        1
    );
    let all = store
        .list_tasks(t.client.id, &TaskFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[2].status, TaskStatus::Skipped);
    assert_eq!(all[2].last_error.as_deref(), Some("too late"));
    assert_eq!(all[3].due_at, t3 + Duration::days(1));

    // Ids from keys: the same key is the same id on every engine.
    let keyed = store
        .schedule_task_with(
            &client_task(t.client.id, "trigger:x:vk:1", t0),
            &TaskOptions {
                id_from_key: true,
                ..TaskOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(keyed.id, task_id_for_key("trigger:x:vk:1"));
    assert_eq!(keyed.series_id, None);
}

async fn clients_see_and_control_only_their_tasks(store: DynStore) {
    let a = tenant(&store, "Tasks A").await;
    let b = tenant(&store, "Tasks B").await;
    let t0 = now();
    for i in 0..5 {
        store
            .schedule_task(&client_task(
                a.client.id,
                &format!("a-{i}"),
                t0 + Duration::hours(i),
            ))
            .await
            .unwrap();
    }
    let theirs = store
        .schedule_task(&client_task(b.client.id, "b-0", t0))
        .await
        .unwrap();
    let platform = store
        .schedule_task(&NewTask {
            client_id: None,
            ..client_task(a.client.id, "platform", t0)
        })
        .await
        .unwrap();
    let range = TaskFilter {
        from: Some(t0 + Duration::hours(1)),
        to: Some(t0 + Duration::hours(3)),
        ..TaskFilter::default()
    };
    let listed = store.list_tasks(a.client.id, &range).await.unwrap();
    let keys: Vec<&str> = listed.iter().map(|t| t.idempotency_key.as_str()).collect();
    assert_eq!(keys, ["a-1", "a-2"]);
    let all = store
        .list_tasks(a.client.id, &TaskFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 5, "neither b's nor the platform's");
    let by_kind = TaskFilter {
        kind: Some("other.kind".into()),
        ..TaskFilter::default()
    };
    assert!(
        store
            .list_tasks(a.client.id, &by_kind)
            .await
            .unwrap()
            .is_empty()
    );
    not_found(store.get_task(a.client.id, theirs.id).await);
    not_found(store.get_task(a.client.id, platform.id).await);
    not_found(store.cancel_task(a.client.id, theirs.id, t0).await);
    not_found(store.reschedule_task(a.client.id, theirs.id, t0).await);

    // Reschedule a pending one; cancel it; then neither cancel nor reschedule again.
    let first = all[0].clone();
    let moved = store
        .reschedule_task(a.client.id, first.id, t0 + Duration::days(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved.due_at, t0 + Duration::days(2));
    assert_eq!(moved.occurrence_at, first.occurrence_at);
    let cancelled = store
        .cancel_task(a.client.id, first.id, t0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cancelled.status, TaskStatus::Cancelled);
    assert!(
        store
            .cancel_task(a.client.id, first.id, t0)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .reschedule_task(a.client.id, first.id, t0)
            .await
            .unwrap()
            .is_none()
    );
    let cancelled_only = TaskFilter {
        status: Some(TaskStatus::Cancelled),
        ..TaskFilter::default()
    };
    assert_eq!(
        store
            .list_tasks(a.client.id, &cancelled_only)
            .await
            .unwrap()
            .len(),
        1
    );
    // A cancelled task is never claimed; b's task was not touched.
    let claimed = store
        .claim_due_tasks("n1", t0 + Duration::days(3), t0 + Duration::days(4), 100)
        .await
        .unwrap();
    assert!(claimed.iter().all(|t| t.id != first.id));
    assert!(claimed.iter().any(|t| t.id == theirs.id));

    // A failed task is retried by moving it to now, its attempts counted afresh.
    let failed = FinishedTask {
        id: theirs.id,
        outcome: TaskOutcome::Failed {
            error: "gone".into(),
            retry_at: None,
        },
        next_due: None,
    };
    store.finish_tasks(&[failed], "n1", t0).await.unwrap();
    let retried = store
        .reschedule_task(b.client.id, theirs.id, t0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((retried.status, retried.attempts), (TaskStatus::Pending, 0));
    assert_eq!(retried.last_error.as_deref(), Some("gone"));
}

async fn triggers_crud_and_notifications_once(store: DynStore) {
    let a = tenant(&store, "Rules A").await;
    let b = tenant(&store, "Rules B").await;
    let rule = NewTrigger {
        name: "sale".into(),
        profile_id: Some(Uuid::now_v7()),
        condition: triggers::TriggerCondition::Hashtag {
            hashtag: "#скидка".into(),
        },
        action: triggers::TriggerAction::Reply {
            template: "{{author.name}}, see DM".into(),
        },
        enabled: true,
    };
    let created = store.create_trigger(a.client.id, &rule).await.unwrap();
    assert_eq!(created.condition, rule.condition);
    assert_eq!(created.action, rule.action);
    assert_eq!(created.profile_id, rule.profile_id);
    assert_eq!(
        store.get_trigger(a.client.id, created.id).await.unwrap(),
        created
    );
    not_found(store.get_trigger(b.client.id, created.id).await);
    not_found(store.update_trigger(b.client.id, created.id, &rule).await);
    not_found(store.delete_trigger(b.client.id, created.id).await);
    let changed = store
        .update_trigger(
            a.client.id,
            created.id,
            &NewTrigger {
                enabled: false,
                action: triggers::TriggerAction::Notify {
                    user_id: a.employee.id,
                },
                ..rule.clone()
            },
        )
        .await
        .unwrap();
    assert!(!changed.enabled);
    assert_eq!(
        store.list_triggers(a.client.id).await.unwrap(),
        vec![changed]
    );
    assert!(store.list_triggers(b.client.id).await.unwrap().is_empty());
    store.delete_trigger(a.client.id, created.id).await.unwrap();
    assert!(store.list_triggers(a.client.id).await.unwrap().is_empty());

    let id = NotificationId::new();
    let payload = serde_json::json!({ "trigger_name": "sale" });
    let (note, event) = store
        .create_notification(id, a.client.id, a.employee.id, "trigger", &payload)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (note.id, note.user_id, &note.payload),
        (id, a.employee.id, &payload)
    );
    assert_eq!(event.kind, EventKind::Notification);
    assert_eq!(event.assignee_id, Some(a.employee.id));
    assert_eq!(event.channel_id, None);
    assert!(
        store
            .create_notification(id, a.client.id, a.employee.id, "trigger", &payload)
            .await
            .unwrap()
            .is_none(),
        "the same id notifies once"
    );
    not_found(
        store
            .create_notification(
                NotificationId::new(),
                a.client.id,
                b.employee.id,
                "trigger",
                &payload,
            )
            .await,
    );
    let events = store.events_after(a.client.id, 0, 100).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == EventKind::Notification)
            .count(),
        1
    );
    assert_eq!(
        store
            .list_notifications(a.client.id, a.employee.id, 10)
            .await
            .unwrap(),
        vec![note]
    );
    assert!(
        store
            .list_notifications(a.client.id, a.owner.id, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn social_profiles_posts_threads_and_media(store: DynStore, url: String) {
    let a = tenant(&store, "Social A").await;
    let b = tenant(&store, "Social B").await;
    let token = "vk1.a.very-secret-admin-token";
    let new_profile = |client: ClientId, external: &str| NewSocialProfile {
        client_id: client,
        provider: Provider::Vk,
        network: "vk".into(),
        external_id: external.into(),
        name: format!("club{external}"),
        credentials: serde_json::json!({ "access_token": token, "group_id": 1 }),
        token_expires_at: Some(now() + Duration::hours(1)),
    };
    let profile = store
        .create_social_profile(&new_profile(a.client.id, "123"))
        .await
        .unwrap();
    assert_eq!(
        (
            profile.network.as_str(),
            profile.status.as_str(),
            profile.name.as_str()
        ),
        ("vk", "active", "club123")
    );
    let channel = store.get_channel(a.client.id, profile.id).await.unwrap();
    assert_eq!(
        (channel.kind, channel.provider),
        (ChannelKind::Social, Provider::Vk)
    );
    conflict(
        store
            .create_social_profile(&new_profile(a.client.id, "123"))
            .await,
        "profile",
    );
    // Another client may connect the same community; each sees only its own.
    let theirs = store
        .create_social_profile(&new_profile(b.client.id, "123"))
        .await
        .unwrap();
    assert_eq!(
        store.list_social_profiles(a.client.id).await.unwrap(),
        vec![profile.clone()]
    );
    not_found(store.get_social_profile(a.client.id, theirs.id).await);
    assert_eq!(
        store.social_profile_for_hook(profile.id).await.unwrap(),
        profile
    );
    // An application-wide webhook names the account: both clients' profiles of it, no other.
    assert_eq!(
        store
            .social_profiles_for_account("vk", "123")
            .await
            .unwrap(),
        vec![profile.clone(), theirs.clone()]
    );
    assert!(
        store
            .social_profiles_for_account("ok", "123")
            .await
            .unwrap()
            .is_empty()
    );
    let mut raw = Raw::connect(&url).await;
    let sealed = raw
        .bytes(
            "SELECT credentials FROM channels WHERE id = $1",
            profile.id.0,
        )
        .await
        .unwrap();
    assert!(
        !contains(&sealed, token.as_bytes()),
        "the token is stored in the clear"
    );
    store
        .set_social_profile_status(a.client.id, profile.id, "failing", Some("no callback"))
        .await
        .unwrap();
    let failing = store
        .get_social_profile(a.client.id, profile.id)
        .await
        .unwrap();
    assert_eq!(failing.status_detail.as_deref(), Some("no callback"));

    // A refreshed token replaces the credentials, sealed, and makes the profile active again.
    let renewed = serde_json::json!({"access_token": "renewed-token-9f3", "group_id": 123});
    let expiry = chrono::DateTime::from_timestamp(2_000_000_000, 0);
    store
        .renew_social_profile_token(a.client.id, profile.id, &renewed, expiry)
        .await
        .unwrap();
    let active = store
        .get_social_profile(a.client.id, profile.id)
        .await
        .unwrap();
    assert_eq!(
        (
            active.status.as_str(),
            active.status_detail,
            active.token_expires_at
        ),
        ("active", None, expiry)
    );
    assert_eq!(
        store
            .channel_credentials(a.client.id, profile.id)
            .await
            .unwrap(),
        Some(renewed.clone())
    );
    let sealed = raw
        .bytes(
            "SELECT credentials FROM channels WHERE id = $1",
            profile.id.0,
        )
        .await
        .unwrap();
    assert!(!contains(&sealed, b"renewed-token-9f3"));
    not_found(
        store
            .renew_social_profile_token(b.client.id, profile.id, &renewed, None)
            .await,
    );

    // A post targets only the client's own profiles.
    let content = serde_json::json!({ "text": "hello", "hashtags": ["a"] });
    not_found(
        store
            .create_social_post(&NewSocialPost {
                client_id: a.client.id,
                author_id: Some(a.owner.id),
                content: content.clone(),
                targets: vec![(theirs.id, None)],
            })
            .await,
    );
    let post = store
        .create_social_post(&NewSocialPost {
            client_id: a.client.id,
            author_id: Some(a.owner.id),
            content: content.clone(),
            targets: vec![(profile.id, Some(serde_json::json!({ "text": "for VK" })))],
        })
        .await
        .unwrap();
    assert_eq!(post.status, "draft");
    assert_eq!(
        post.targets[0].content,
        Some(serde_json::json!({ "text": "for VK" }))
    );
    not_found(store.get_social_post(b.client.id, post.id).await);
    let edited = store
        .update_social_post(
            a.client.id,
            post.id,
            &serde_json::json!({ "text": "v2" }),
            &[(profile.id, None)],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            edited.content["text"].as_str(),
            edited.targets[0].content.clone()
        ),
        (Some("v2"), None)
    );

    // The approval flow moves only from the statuses it names.
    let step = |from: &'static [&'static str], to: &'static str| PostTransition {
        from,
        to,
        approved_by: None,
        scheduled: None,
    };
    conflict(
        store
            .transition_social_post(a.client.id, post.id, &step(&["approved"], "scheduled"))
            .await,
        "status",
    );
    store
        .transition_social_post(a.client.id, post.id, &step(&["draft"], "awaiting_approval"))
        .await
        .unwrap();
    conflict(
        store
            .update_social_post(a.client.id, post.id, &content, &[(profile.id, None)])
            .await,
        "status",
    );
    let approved = store
        .transition_social_post(
            a.client.id,
            post.id,
            &PostTransition {
                from: &["awaiting_approval"],
                to: "approved",
                approved_by: Some(a.owner.id),
                scheduled: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(approved.approved_by, Some(a.owner.id));
    let at = DateTime::from_timestamp_millis(now().timestamp_millis() + 3_600_000).unwrap();
    let scheduled = store
        .transition_social_post(
            a.client.id,
            post.id,
            &PostTransition {
                from: &["approved"],
                to: "scheduled",
                approved_by: None,
                scheduled: Some(Some((at, "Europe/Moscow".into()))),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (
            scheduled.scheduled_at,
            scheduled.time_zone.as_deref(),
            scheduled.approved_by
        ),
        (Some(at), Some("Europe/Moscow"), Some(a.owner.id))
    );
    store
        .transition_social_post(a.client.id, post.id, &step(&["scheduled"], "publishing"))
        .await
        .unwrap();

    // Outcomes: failed, then published with the remote id; the post follows its targets.
    let failed = store
        .set_target_outcome(
            a.client.id,
            post.id,
            profile.id,
            &TargetOutcome {
                status: "failed",
                remote_id: None,
                failure_reason: Some("VK error 15"),
            },
        )
        .await
        .unwrap();
    assert_eq!(failed.status, "failed");
    assert_eq!(
        failed.targets[0].failure_reason.as_deref(),
        Some("VK error 15")
    );
    let retried = store
        .transition_social_post(a.client.id, post.id, &step(&["failed"], "publishing"))
        .await
        .unwrap();
    assert_eq!(
        retried.targets[0].status, "pending",
        "a retry publishes the failed targets"
    );
    let published = store
        .set_target_outcome(
            a.client.id,
            post.id,
            profile.id,
            &TargetOutcome {
                status: "published",
                remote_id: Some("77"),
                failure_reason: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(published.status, "published");
    assert_eq!(published.targets[0].remote_id.as_deref(), Some("77"));
    assert!(published.targets[0].published_at.is_some());
    store
        .set_target_counters(a.client.id, post.id, profile.id, [3, 2, 1, 40])
        .await
        .unwrap();
    let counted = store.get_social_post(a.client.id, post.id).await.unwrap();
    assert_eq!(
        (
            counted.targets[0].likes,
            counted.targets[0].comments,
            counted.targets[0].views
        ),
        (3, 2, 40)
    );
    conflict(
        store.delete_social_post(a.client.id, post.id).await,
        "status",
    );

    // A comment conversation is tied to the post by its remote id, once.
    let comment = ingest_new(
        &store,
        &InboundEvent {
            attachments: Vec::new(),
            client_id: a.client.id,
            channel_id: profile.id,
            external_conversation_id: "77:42".into(),
            external_user_id: "42".into(),
            contact_name: "id42".into(),
            provider_event_id: "501".into(),
            text: "nice".into(),
        },
    )
    .await;
    for _ in 0..2 {
        store
            .link_social_thread(a.client.id, comment.conversation.id, profile.id, "77")
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .social_thread(a.client.id, comment.conversation.id)
            .await
            .unwrap(),
        Some((profile.id, "77".to_string(), Some(post.id)))
    );
    assert_eq!(
        store.post_threads(a.client.id, post.id).await.unwrap(),
        vec![comment.conversation.id]
    );
    let found = store
        .social_comment(a.client.id, comment.message.id)
        .await
        .unwrap();
    assert_eq!(
        (
            found.profile_id,
            found.remote_post_id.as_str(),
            found.comment_id.as_deref()
        ),
        (profile.id, "77", Some("501"))
    );
    not_found(store.social_comment(b.client.id, comment.message.id).await);
    assert_eq!(
        store
            .social_thread(b.client.id, comment.conversation.id)
            .await
            .unwrap(),
        None
    );

    // Deleted everywhere, the post says so.
    let deleted = store
        .set_target_outcome(
            a.client.id,
            post.id,
            profile.id,
            &TargetOutcome {
                status: "deleted",
                remote_id: None,
                failure_reason: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (
            deleted.status.as_str(),
            deleted.targets[0].remote_id.as_deref()
        ),
        ("deleted", Some("77"))
    );
    store
        .delete_social_post(a.client.id, post.id)
        .await
        .unwrap();
    assert_eq!(
        store
            .social_thread(a.client.id, comment.conversation.id)
            .await
            .unwrap(),
        Some((profile.id, "77".to_string(), None)),
        "the conversation outlives the post"
    );

    // The media library.
    let media = store
        .create_social_media(&NewSocialMedia {
            client_id: a.client.id,
            file_name: "a.png".into(),
            mime_type: "image/png".into(),
            size: 10,
            storage_key: "k".into(),
            uploaded_by: Some(a.owner.id),
        })
        .await
        .unwrap();
    assert_eq!(
        store.get_social_media(a.client.id, media.id).await.unwrap(),
        media
    );
    not_found(store.get_social_media(b.client.id, media.id).await);
    assert_eq!(media.kind, omnihub_core::social::MediaKind::Image);
    let video = store
        .create_social_media(&NewSocialMedia {
            client_id: a.client.id,
            file_name: "clip.mp4".into(),
            mime_type: "video/mp4".into(),
            size: 3 << 30,
            storage_key: "v".into(),
            uploaded_by: Some(a.owner.id),
        })
        .await
        .unwrap();
    assert_eq!(video.kind, omnihub_core::social::MediaKind::Video);
    assert_eq!(
        store.list_social_media(a.client.id).await.unwrap(),
        vec![video, media],
        "newest first, each with its kind and a size past 32 bits"
    );

    // Disconnecting removes the profile with its channel.
    store.delete_channel(a.client.id, profile.id).await.unwrap();
    not_found(store.get_social_profile(a.client.id, profile.id).await);
}

/// A write transaction that fails part-way does not keep SQLite's write lock until the store's
/// next write: another connection (here, as another process would) may write at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_failed_write_lets_go_of_the_write_lock() {
    run(TestDb::sqlite().await, |store, url| async move {
        let a = tenant(&store, "Writer").await;
        let b = tenant(&store, "Other").await;
        let theirs = channel(&store, b.client.id, "bot").await;
        // Refused inside its write transaction: the channel is another client's.
        let refused = store
            .ingest(&inbound(a.client.id, theirs.id, "chat", "e1"))
            .await;
        assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
        let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("PRAGMA busy_timeout = 5000")
            .execute(&mut other)
            .await
            .unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut other)
            .await
            .unwrap();
        sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
        other.close().await.unwrap();
        // And the store writes on, with nothing of the refused event kept.
        let new = ingest_new(
            &store,
            &inbound(
                a.client.id,
                channel(&store, a.client.id, "own").await.id,
                "chat",
                "e1",
            ),
        )
        .await;
        assert_eq!(
            store.events_after(a.client.id, 0, 10).await.unwrap().len(),
            1
        );
        assert!(new.event_seq > 0);
    })
    .await;
}

/// SQLite's write-ahead log is copied back into the database file by the store's checkpointer,
/// not by whichever commit finds the log long: a commit reaches the main file within moments
/// with no further write. (`immutable` reads the main file alone, ignoring the log.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_log_is_checkpointed_off_the_writers_path() {
    run(TestDb::sqlite().await, |store, url| async move {
        let client = store.create_client("Checkpointed", None).await.unwrap();
        let main_file_only = format!("{url}?immutable=true");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let mut conn = sqlx::SqliteConnection::connect(&main_file_only)
                .await
                .unwrap();
            // Until the first checkpoint the main file has not even the tables.
            let found = sqlx::query("SELECT 1 FROM clients WHERE id = $1")
                .bind(client.id.0)
                .fetch_optional(&mut conn)
                .await;
            conn.close().await.unwrap();
            if matches!(found, Ok(Some(_))) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the commit never reached the database file"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// Under writes that never pause, the log still starts over once it holds 64 MiB, so it is
/// rewritten from its first page instead of growing until the load stops. A log that starts
/// over gets a new checkpoint sequence number in its header (bytes 12..16). Long texts make
/// the megabytes quickly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_log_starts_over_under_steady_writes() {
    run(TestDb::sqlite().await, |store, url| async move {
        let t = tenant(&store, "Steady").await;
        let ch = channel(&store, t.client.id, "steady").await;
        let log = format!("{}-wal", url.trim_start_matches("sqlite://"));
        let restarts = || async {
            let mut header = [0u8; 16];
            let mut file = tokio::fs::File::open(&log).await.unwrap();
            tokio::io::AsyncReadExt::read_exact(&mut file, &mut header)
                .await
                .unwrap();
            u32::from_be_bytes(header[12..16].try_into().unwrap())
        };
        let before = restarts().await;
        let text = "x".repeat(8_000);
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut n = 0;
        while restarts().await < before + 2 && std::time::Instant::now() < until {
            let batch: Vec<InboundEvent> = (0..20)
                .map(|_| {
                    n += 1;
                    saying(
                        &text,
                        inbound(
                            t.client.id,
                            ch.id,
                            &format!("chat-{}", n % 64),
                            &format!("e{n}"),
                        ),
                    )
                })
                .collect();
            for outcome in store.ingest_batch(&batch).await.unwrap() {
                expect_new(outcome.unwrap());
            }
        }
        let after = restarts().await;
        assert!(
            after >= before + 2,
            "the log started over {} times in 60 s of steady writes ({n} messages)",
            after - before
        );
        // Started over only once past its bound, and not left to grow far beyond it.
        let size = tokio::fs::metadata(&log).await.unwrap().len();
        assert!(size > 64 << 20, "the log started over at {size} bytes");
        assert!(size < 256 << 20, "the log grew to {size} bytes");
    })
    .await;
}
