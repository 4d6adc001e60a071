//! The embedded default backend: one SQLite file in WAL mode. Its SQL is `sql.rs`, shared with
//! PostgreSQL; this module owns only the connection setup and the few engine differences.

use std::str::FromStr;
use std::time::Duration;

use futures_util::stream::BoxStream;
use omnihub_core::ClientId;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions as _, Connection as _};
use tokio::sync::oneshot;

use crate::{Announcement, Result, SecretBox, StoreError, codec};

type Db = sqlx::Sqlite;
type Backend = SqliteStore;
const ENGINE: &str = "sqlite";
/// Write transactions take the write lock up front: a deferred transaction that reads and then
/// writes fails with SQLITE_BUSY at once when another writer got in between, while `BEGIN
/// IMMEDIATE` waits for the lock under the busy timeout.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";
/// Several reads that must agree: in WAL mode a deferred transaction reads one snapshot.
const BEGIN_SNAPSHOT: &str = "BEGIN";
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

// Engine-specific fragments of hub_sql.rs, as macros so they fit in `concat!`. SQLite has one
// writer and every write transaction starts with `BEGIN IMMEDIATE`: a row read in a write
// transaction cannot change under it, so there is nothing to lock or skip.
macro_rules! for_update {
    () => {
        ""
    };
}
macro_rules! skip_locked {
    () => {
        ""
    };
}

/// How often the write-ahead log is copied back into the database file. SQLite would otherwise
/// do it inside whichever commit finds the log past 1000 pages: that commit then copies the
/// pages and syncs both files (milliseconds here, once every few hundred inbound events) while
/// every writer queued behind it waits. Off the writers' path, the copy runs beside them.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Full-text search: the FTS5 index joined to its content table.
const SEARCH_FROM: &str = "messages_fts JOIN messages m ON m.rowid = messages_fts.rowid";
/// The match condition around the bound query.
const SEARCH_MATCH: (&str, &str) = ("messages_fts MATCH ", "");

/// User input as an FTS5 query (every word quoted), `None` when nothing could match.
fn search_query(query: &str) -> Option<String> {
    codec::fts5_query(query)
}

/// Nothing to do: with one writer, event seq order is commit order.
async fn lock_events(_: &mut sqlx::SqliteConnection, _: ClientId) -> Result<()> {
    Ok(())
}

/// Nothing to do: one process owns the file, and it knows what it committed.
async fn notify_event(_: &mut sqlx::SqliteConnection, _: ClientId, _: i64) -> Result<()> {
    Ok(())
}

/// No cross-node notifications on SQLite.
async fn listen_events(
    _: &SqliteStore,
) -> Result<Option<BoxStream<'static, Result<Announcement>>>> {
    Ok(None)
}

/// Nobody else to tell on SQLite.
async fn announce(_: &SqliteStore, _: ClientId, _: &str) -> Result<()> {
    Ok(())
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

/// The SQLite backend.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: sqlx::SqlitePool,
    /// The one connection write transactions use. SQLite drops a connection's page cache
    /// whenever another connection has written since its last transaction; written through one
    /// connection only, the writer's cache stays warm from one transaction to the next.
    writer: sqlx::SqlitePool,
    secrets: SecretBox,
    /// SQLite has one writer: writers of this process take turns here (see `WriteTx`).
    write_turn: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Dropped with the last clone of the store, which stops the checkpointer.
    _checkpointer: std::sync::Arc<oneshot::Sender<()>>,
}

impl SqliteStore {
    /// Opens (creating it and its directory if missing) the database file named by `url`,
    /// e.g. `sqlite://data/omnihub.db`.
    pub async fn connect(url: &str, secrets: SecretBox, max_connections: u32) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            // The checkpointer below does it instead of the commits.
            .pragma("wal_autocheckpoint", "0");
        if let Some(dir) = options.get_filename().parent()
            && !dir.as_os_str().is_empty()
        {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            // The pool's health check before lending a connection is a round trip to the
            // connection's worker thread, i.e. two thread switches, on every query. A local
            // file does not drop connections; a connection that failed is still tested (and
            // closed) when it comes back.
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .test_before_acquire(false)
            // Writers queue on `write_turn` first, so the wait here is never long.
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await?;
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(checkpoint_until(options.connect().await?, stopped));
        Ok(Self {
            pool,
            writer,
            secrets,
            write_turn: Default::default(),
            _checkpointer: std::sync::Arc::new(stop),
        })
    }

    fn write_turn(&self) -> Option<&tokio::sync::Mutex<()>> {
        Some(&self.write_turn)
    }

    fn write_pool(&self) -> &sqlx::SqlitePool {
        &self.writer
    }
}

/// Every [`CHECKPOINT_EVERY`], a passive checkpoint on a connection of its own: it copies what
/// no reader still needs from the log into the database file without taking the write lock, and
/// once all is copied the next writer starts the log over. Ends when the store is dropped.
async fn checkpoint_until(mut conn: SqliteConnection, mut stopped: oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            _ = tick.tick() => {
                if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&mut conn)
                    .await
                {
                    tracing::warn!(error = %err, "SQLite checkpoint failed; the next one retries");
                }
            }
        }
    }
    if let Err(err) = conn.close().await {
        tracing::debug!(error = %err, "closing the checkpoint connection");
    }
}
