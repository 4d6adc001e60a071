//! The scale-out backend: PostgreSQL. Its SQL is `sql.rs` and `hub_sql.rs`, shared with SQLite;
//! this module owns only the connection setup and the few engine differences.

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use omnihub_core::ClientId;
use omnihub_core::model::Conversation;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgListener, PgPoolOptions};

use crate::{Announcement, Result, SecretBox, StoreError, codec};

type Db = sqlx::Postgres;
type Backend = PgStore;
const ENGINE: &str = "postgres";
/// READ COMMITTED is enough: every multi-step write either updates its guarding row first
/// (which locks it) or relies on a unique index with `ON CONFLICT`.
const BEGIN_WRITE: &str = "BEGIN";
/// Several reads that must agree: one snapshot for the whole transaction.
const BEGIN_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The `LISTEN/NOTIFY` channel events are announced on, as `<client id>:<seq>`.
const EVENTS_CHANNEL: &str = "omnihub_events";
/// The channel of `HubStore::announce`, as `<client id>:<payload>`.
const EPHEMERAL_CHANNEL: &str = "omnihub_ephemeral";

// Engine-specific fragments of hub_sql.rs, as macros so they fit in `concat!`.
/// Locks the row a write transaction decides on, like the UPDATE that follows would. Not
/// `FOR UPDATE`: that also conflicts with the `FOR KEY SHARE` lock every insert referencing the
/// row takes (a message's foreign key on its conversation), and two ingests that each inserted
/// a message would then wait for each other.
macro_rules! for_update {
    () => {
        " FOR NO KEY UPDATE"
    };
}
/// Claims rows no other transaction holds, skipping the ones it does (task claiming).
macro_rules! skip_locked {
    () => {
        " FOR UPDATE SKIP LOCKED"
    };
}

/// An ingest round's lookup of its conversations, with whether each waits in the routing queue
/// as column `waiting`: a row each, which the driver reads on the caller's task.
macro_rules! conversations_waiting {
    () => {
        concat!(
            "SELECT ",
            conversation_cols!(),
            ", ",
            in_routing_queue!(),
            " AS waiting FROM conversations WHERE channel_id = "
        )
    };
}

/// Full-text search: the messages table, matched through its GIN expression index.
const SEARCH_FROM: &str = "messages m";
/// The match condition around the bound query; the expression is the index's.
const SEARCH_MATCH: (&str, &str) = (
    "to_tsvector('simple', m.text) @@ plainto_tsquery('simple', ",
    ")",
);

/// `plainto_tsquery` takes plain text (no syntax), so the input goes as it is; `None` when no
/// word of it could match, like on SQLite.
fn search_query(query: &str) -> Option<String> {
    codec::search_words(query).map(|words| words.join(" "))
}

/// An event's payload as bound: `jsonb`, which sqlx writes straight into the statement's
/// arguments.
fn payload_arg<T: serde::Serialize>(payload: T) -> Result<sqlx::types::Json<T>> {
    Ok(sqlx::types::Json(payload))
}

/// Taken right before an event is inserted, as the transaction's last statements: events of one
/// client then get their seq and commit in the same order, so a reader of `events_after` never
/// sees seq N+1 committed while N is still to come and skips it.
async fn lock_events(conn: &mut sqlx::PgConnection, client: ClientId) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(codec::lock_key(client.0))
        .execute(conn)
        .await?;
    Ok(())
}

/// Runs the lookup `q` (`conversations_waiting!()`) and reads its rows.
async fn conversations_waiting(
    conn: &mut sqlx::PgConnection,
    mut q: sqlx::QueryBuilder<Db>,
) -> Result<Vec<(Conversation, bool)>> {
    use sqlx::Row as _;
    let rows = q.build().fetch_all(conn).await?;
    rows.iter()
        .map(|r| Ok((hub_sql::conversation_row(r)?, r.try_get("waiting")?)))
        .collect()
}

/// Runs the multi-row insert `q` into `events` and answers each row's seq, in the order of its
/// `rows` (the conversation of each), or `None` when the answer does not pair with them.
async fn insert_events(
    conn: &mut sqlx::PgConnection,
    mut q: sqlx::QueryBuilder<Db>,
    rows: &[omnihub_core::ConversationId],
) -> Result<Option<Vec<i64>>> {
    q.push(" RETURNING seq, conversation_id");
    let mut answer: Vec<(i64, uuid::Uuid)> = q.build_query_as().fetch_all(conn).await?;
    // The rows of one insert take their seq in the order of its values; the answer may come
    // in any order.
    answer.sort_unstable_by_key(|(seq, _)| *seq);
    let paired =
        answer.len() == rows.len() && answer.iter().zip(rows).all(|((_, c), row)| *c == row.0);
    Ok(paired.then(|| answer.into_iter().map(|(seq, _)| seq).collect()))
}

/// Announces an event to every node; PostgreSQL delivers it at commit, and not at all on
/// rollback.
async fn notify_event(conn: &mut sqlx::PgConnection, client: ClientId, seq: i64) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(EVENTS_CHANNEL)
        .bind(format!("{client}:{seq}"))
        .execute(conn)
        .await?;
    Ok(())
}

/// Delivered at once (outside any transaction) to every listening node, this one included.
async fn announce(store: &PgStore, client: ClientId, payload: &str) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(EPHEMERAL_CHANNEL)
        .bind(format!("{client}:{payload}"))
        .execute(&store.pool)
        .await?;
    Ok(())
}

fn parse_notification(channel: &str, payload: &str) -> Result<Announcement> {
    let bad = || StoreError::Corrupt(format!("notification `{payload}` on {channel}"));
    let (client, rest) = payload.split_once(':').ok_or_else(bad)?;
    let client = client.parse().map_err(|_| bad())?;
    if channel == EPHEMERAL_CHANNEL {
        return Ok(Announcement::Ephemeral {
            client,
            payload: rest.to_owned(),
        });
    }
    Ok(Announcement::Committed {
        client,
        seq: rest.parse().map_err(|_| bad())?,
    })
}

/// Listens on its own one-connection pool, so the store's pool keeps all its connections.
async fn listen_events(
    store: &PgStore,
) -> Result<Option<BoxStream<'static, Result<Announcement>>>> {
    let options = (*store.pool.connect_options()).clone();
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener
        .listen_all([EVENTS_CHANNEL, EPHEMERAL_CHANNEL])
        .await?;
    let stream = futures_util::stream::unfold(Some(listener), |listener| async move {
        let mut listener = listener?;
        match listener.try_recv().await {
            Ok(Some(n)) => Some((parse_notification(n.channel(), n.payload()), Some(listener))),
            // The connection was lost and re-established: whatever was announced meanwhile is
            // gone. Say so, and go on listening.
            Ok(None) => Some((
                Err(StoreError::Database(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "event listener reconnected; notifications may have been missed",
                )))),
                Some(listener),
            )),
            Err(e) => Some((Err(e.into()), None)),
        }
    });
    Ok(Some(stream.boxed()))
}

// The same SQL text is compiled once per backend, each time against that backend's `Db`.
#[allow(clippy::duplicate_mod)]
#[path = "sql.rs"]
mod sql;

#[allow(clippy::duplicate_mod)]
#[path = "hub_sql.rs"]
mod hub_sql;

#[allow(clippy::duplicate_mod)]
#[path = "widget_sql.rs"]
mod widget_sql;

#[allow(clippy::duplicate_mod)]
#[path = "scheduler_sql.rs"]
mod scheduler_sql;

#[allow(clippy::duplicate_mod)]
#[path = "social_sql.rs"]
mod social_sql;

/// The PostgreSQL backend.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: sqlx::PgPool,
    secrets: SecretBox,
}

/// A write transaction on any pooled connection: PostgreSQL has row locks and many writers, so
/// there is no turn-taking.
pub(crate) struct WriteTx<'a> {
    tx: sqlx::Transaction<'static, Db>,
    _store: std::marker::PhantomData<&'a PgStore>,
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = sqlx::PgConnection;
    fn deref(&self) -> &sqlx::PgConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut sqlx::PgConnection {
        &mut self.tx
    }
}

impl WriteTx<'_> {
    pub(crate) async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn rollback(self) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}

impl PgStore {
    pub(crate) async fn begin_write(&self) -> Result<WriteTx<'_>> {
        Ok(WriteTx {
            tx: self.pool.begin_with(BEGIN_WRITE).await?,
            _store: std::marker::PhantomData,
        })
    }
}

impl PgStore {
    /// Connects to the database named by `url` (`postgres://…`).
    pub async fn connect(url: &str, secrets: SecretBox, max_connections: u32) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .connect(url)
            .await?;
        Ok(Self { pool, secrets })
    }
}
