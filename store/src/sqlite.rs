//! The embedded default backend: one SQLite file in WAL mode. Its SQL is `sql.rs`, shared with
//! PostgreSQL; this module owns only the connection setup and the few engine differences.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::stream::BoxStream;
use omnihub_core::model::Conversation;
use omnihub_core::{ChannelId, ClientId, ContactId, ConversationId, GroupId, UserId};
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

/// An ingest round's lookup of its conversations, with whether each waits in the routing queue,
/// answered as one row: a JSON array of arrays, each a conversation's columns in the order of
/// `conversation_cols!()` and then that flag. sqlx hands every row of an answer from the
/// connection's thread to the caller's on its own, and under load each row is a wake-up of the
/// hub's thread; a round reads a conversation per sender. JSON holds no blobs, so ids are hex
/// (and `hex(NULL)`, the empty string, is turned back into null).
macro_rules! conversations_waiting {
    () => {
        concat!(
            "SELECT json_group_array(json_array(hex(id), hex(client_id), hex(channel_id), \
             hex(contact_id), external_id, status, snoozed_until, nullif(hex(assignee_id), ''), \
             nullif(hex(group_id), ''), request_no, last_message_at, created_at, blocked_at, \
             blocked_reason, ",
            in_routing_queue!(),
            ")) FROM conversations WHERE channel_id = "
        )
    };
}

/// How often the write-ahead log is copied back into the database file. SQLite would otherwise
/// do it inside whichever commit finds the log past 1000 pages: that commit then copies the
/// pages and syncs both files (milliseconds here, once every few hundred inbound events) while
/// every writer queued behind it waits. Off the writers' path, the copy runs beside them. The
/// interval also bounds what a second pass, holding the writers up, has left to copy; a
/// checkpoint once a second held a batch up about 50 ms against 27 ms every 200 ms
/// (BENCHMARKS.md).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Frames the write-ahead log may hold before a checkpoint makes the writers wait so that it
/// can start over (see [`checkpoint_until`]): 64 MiB of 4 KiB pages. Each such wait copies
/// only what was committed during the pass before it and syncs the database file, so it takes
/// about as long whatever the log's size; the bound sets how often it comes. After every pass,
/// under full load, the waits took 11–15 ms every 200 ms: about 6 % of the time, and every
/// acknowledgement due then (BENCHMARKS.md).
const REWIND_FRAMES: i64 = 16_384;

/// The writer's page cache, in KiB (SQLite's default is 2 MiB). Every inbound message lands on
/// its conversation's page of the messages index, so with many conversations a batch touches
/// pages all over that index; evicted, each is read again from the file. It grows only as
/// pages are used, and only the one writer has it.
const WRITER_CACHE_KIB: u32 = 64 * 1024;

/// Full-text search: the FTS5 index joined to its content table.
const SEARCH_FROM: &str = "messages_fts JOIN messages m ON m.rowid = messages_fts.rowid";
/// The match condition around the bound query.
const SEARCH_MATCH: (&str, &str) = ("messages_fts MATCH ", "");

/// User input as an FTS5 query (every word quoted), `None` when nothing could match.
fn search_query(query: &str) -> Option<String> {
    codec::fts5_query(query)
}

/// An event's payload as bound: SQLite keeps JSON as text. Written into a buffer sized for a
/// whole event, since serde_json's own starts at 128 bytes and doubles its way up to a message
/// event's kilobyte, copying it each time.
fn payload_arg(payload: impl serde::Serialize) -> Result<String> {
    let mut text = Vec::with_capacity(PAYLOAD_BYTES);
    serde_json::to_writer(&mut text, &payload).map_err(codec::bad_payload)?;
    String::from_utf8(text).map_err(codec::bad_payload)
}

/// Room for a typical event payload: a message and its conversation take about a kilobyte.
const PAYLOAD_BYTES: usize = 2048;

/// Nothing to do: with one writer, event seq order is commit order.
async fn lock_events(_: &mut sqlx::SqliteConnection, _: ClientId) -> Result<()> {
    Ok(())
}

/// Runs the multi-row insert `q` into `events` and answers each row's seq, in the order of its
/// `rows`. SQLite's one writer numbers a statement's rows one after another up to its last
/// rowid, so nothing comes back row by row: each row of an answer would be a hop between the
/// connection's thread and the caller's, and under load each hop a context switch.
async fn insert_events(
    conn: &mut sqlx::SqliteConnection,
    mut q: sqlx::QueryBuilder<Db>,
    rows: &[omnihub_core::ConversationId],
) -> Result<Option<Vec<i64>>> {
    let done = q.build().execute(conn).await?;
    let count = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    if done.rows_affected() != rows.len() as u64 {
        return Ok(None);
    }
    let last = done.last_insert_rowid();
    Ok(Some((last - count + 1..=last).collect()))
}

/// Runs the lookup `q` (`conversations_waiting!()`) and reads its one row.
async fn conversations_waiting(
    conn: &mut SqliteConnection,
    mut q: sqlx::QueryBuilder<Db>,
) -> Result<Vec<(Conversation, bool)>> {
    let found: String = q.build_query_scalar().fetch_one(conn).await?;
    let cells: Vec<ConversationCells> = serde_json::from_str(&found)
        .map_err(|e| StoreError::Corrupt(format!("conversations lookup: {e}")))?;
    cells.into_iter().map(ConversationCells::read).collect()
}

/// One conversation of [`conversations_waiting`]'s answer, as SQLite wrote it: serde reads a
/// struct's fields from an array in the order they are declared here.
#[derive(serde::Deserialize)]
struct ConversationCells {
    id: ConversationId,
    client_id: ClientId,
    channel_id: ChannelId,
    contact_id: ContactId,
    external_id: String,
    status: String,
    snoozed_until: Option<i64>,
    assignee_id: Option<UserId>,
    group_id: Option<GroupId>,
    request_no: i64,
    last_message_at: i64,
    created_at: i64,
    blocked_at: Option<i64>,
    blocked_reason: Option<String>,
    waiting: u8,
}

impl ConversationCells {
    fn read(self) -> Result<(Conversation, bool)> {
        let conversation = Conversation {
            id: self.id,
            client_id: self.client_id,
            channel_id: self.channel_id,
            contact_id: self.contact_id,
            external_id: self.external_id,
            status: codec::conversation_status(&self.status)?,
            snoozed_until: codec::opt_ts(self.snoozed_until)?,
            assignee_id: self.assignee_id,
            group_id: self.group_id,
            request_no: self.request_no,
            last_message_at: codec::ts(self.last_message_at)?,
            created_at: codec::ts(self.created_at)?,
            blocked_at: codec::opt_ts(self.blocked_at)?,
            blocked_reason: self.blocked_reason,
        };
        Ok((conversation, self.waiting != 0))
    }
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
    /// The one connection write transactions use; SQLite has one writer, and writers of this
    /// process take turns here instead of sleeping in SQLite's busy handler (which backs off in
    /// steps of up to 100 ms). SQLite drops a connection's page cache whenever another one has
    /// written since its last transaction; written through one connection only, the writer's
    /// cache stays warm. Outside any pool: a pool would test the connection with a round trip
    /// to its thread each time it came back, and hand it to the next writer from a task of its
    /// own.
    writer: std::sync::Arc<tokio::sync::Mutex<Writer>>,
    secrets: SecretBox,
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
        let writer = Writer {
            conn: options
                .clone()
                .pragma("cache_size", format!("-{WRITER_CACHE_KIB}"))
                // A multi-row write keeps a journal of the pages it changes, to undo itself
                // alone; past 64 KiB SQLite moves it to a temporary file, opened and deleted
                // each time. The writer's are small enough to stay in memory, and so do the
                // temporary indexes of its `IN` lists. Readers keep the default: a large
                // sort may still spill to a file instead of taking memory.
                .pragma("temp_store", "memory")
                .connect()
                .await?,
            in_transaction: false,
            commits: std::sync::Arc::default(),
        };
        let commits = writer.commits.clone();
        let writer = std::sync::Arc::new(tokio::sync::Mutex::new(writer));
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(checkpoint_until(
            options.connect().await?,
            writer.clone(),
            commits,
            stopped,
        ));
        Ok(Self {
            pool,
            writer,
            secrets,
            _checkpointer: std::sync::Arc::new(stop),
        })
    }

    pub(crate) async fn begin_write(&self) -> Result<WriteTx<'_>> {
        let mut writer = self.writer.clone().lock_owned().await;
        if writer.in_transaction {
            // A transaction dropped unfinished (see `WriteTx`'s drop) ends here, before this
            // one starts.
            writer.rollback().await;
        }
        // Set first: should this call be cut short, whatever began is rolled back.
        writer.in_transaction = true;
        sqlx::query(BEGIN_WRITE).execute(&mut writer.conn).await?;
        Ok(WriteTx {
            writer,
            _store: std::marker::PhantomData,
        })
    }
}

/// The writer's connection, and whether a transaction may be open on it.
#[derive(Debug)]
pub(crate) struct Writer {
    conn: SqliteConnection,
    in_transaction: bool,
    /// Transactions committed so far; the checkpointer reads it without taking the turn.
    commits: std::sync::Arc<AtomicU64>,
}

impl Writer {
    /// Ends the transaction with `COMMIT` or `ROLLBACK`. On an error it may still be open, and
    /// is rolled back before the next one begins.
    async fn end(&mut self, statement: &'static str) -> Result<()> {
        sqlx::query(statement).execute(&mut self.conn).await?;
        self.in_transaction = false;
        Ok(())
    }

    /// Ends whatever transaction may be open. A `COMMIT` cut short may have run all the same,
    /// so SQLite's "no transaction is active" is no error here.
    async fn rollback(&mut self) {
        if let Err(err) = self.end("ROLLBACK").await {
            tracing::debug!(error = %err, "rolling back an unfinished write transaction");
        }
        self.in_transaction = false;
    }
}

/// A write transaction, holding this process's turn to write until it ends.
pub(crate) struct WriteTx<'a> {
    writer: tokio::sync::OwnedMutexGuard<Writer>,
    _store: std::marker::PhantomData<&'a SqliteStore>,
}

impl WriteTx<'_> {
    pub(crate) async fn commit(mut self) -> Result<()> {
        self.writer.end("COMMIT").await?;
        self.writer.commits.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) async fn rollback(mut self) -> Result<()> {
        self.writer.end("ROLLBACK").await
    }
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.writer.conn
    }
}

impl std::ops::DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.writer.conn
    }
}

/// Dropped unfinished (its caller failed or gave up), the transaction is rolled back at once
/// by a task that takes the next turn, so SQLite's write lock is not left held; should another
/// writer get the turn first, its `begin_write` rolls back instead.
impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        if !self.writer.in_transaction {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let writer = tokio::sync::OwnedMutexGuard::mutex(&self.writer).clone();
            runtime.spawn(async move {
                let mut writer = writer.lock_owned().await;
                if writer.in_transaction {
                    writer.rollback().await;
                }
            });
        }
    }
}

/// Every [`CHECKPOINT_EVERY`], a passive checkpoint on a connection of its own: it copies what
/// no reader still needs from the log into the database file without taking the write lock.
///
/// Under steady writes that alone never lets the log start over: a writer rewinds the log only
/// if it finds every frame copied, and the commits made while a checkpoint ran are always left
/// for the next one. The log then grows by every commit (about 100 MB a second under full load
/// on a small machine), and a write that extends a file waits for the file system's journal,
/// which the checkpoint's sync is committing. So once the log holds [`REWIND_FRAMES`] and
/// something was committed during the first pass, a second one follows at once and copies it
/// while this process's writers wait their turn; the next writer then rewinds the log and
/// rewrites its first pages instead of extending it. When the first pass was slow, the disk
/// is, and the writers are not made to wait for it: the log grows one more interval instead.
/// Ends when the store is dropped.
async fn checkpoint_until(
    mut conn: SqliteConnection,
    writer: std::sync::Arc<tokio::sync::Mutex<Writer>>,
    commits: std::sync::Arc<AtomicU64>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            _ = tick.tick() => {
                let started = std::time::Instant::now();
                let committed = commits.load(Ordering::Relaxed);
                let frames = checkpoint(&mut conn).await;
                if frames.is_some_and(|n| n > REWIND_FRAMES)
                    && commits.load(Ordering::Relaxed) != committed
                    && started.elapsed() < SLOW_CHECKPOINT
                {
                    let _turn = writer.lock().await;
                    checkpoint(&mut conn).await;
                }
            }
        }
    }
    if let Err(err) = conn.close().await {
        tracing::debug!(error = %err, "closing the checkpoint connection");
    }
}

/// A first checkpoint pass slower than this means a busy disk (it normally takes a few
/// milliseconds per 100 ms of full-load writes), and the second pass is skipped.
const SLOW_CHECKPOINT: Duration = Duration::from_millis(50);

/// One passive checkpoint: the frames in the log, or `None` if it failed.
async fn checkpoint(conn: &mut SqliteConnection) -> Option<i64> {
    // Its row: whether it was blocked, the frames in the log, the frames copied.
    match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(conn)
        .await
    {
        Ok((_, frames, _)) => Some(frames),
        Err(err) => {
            tracing::warn!(error = %err, "SQLite checkpoint failed; the next one retries");
            None
        }
    }
}
