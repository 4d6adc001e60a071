//! The embedded default backend: one SQLite file in WAL mode. Its SQL is `sql.rs`, shared with
//! PostgreSQL; this module owns only the connection setup and the few engine differences.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::{Result, SecretBox, StoreError};

type Db = sqlx::Sqlite;
type Backend = SqliteStore;
const ENGINE: &str = "sqlite";
/// Write transactions take the write lock up front: a deferred transaction that reads and then
/// writes fails with SQLITE_BUSY at once when another writer got in between, while `BEGIN
/// IMMEDIATE` waits for the lock under the busy timeout.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

// The same SQL text is compiled once per backend, each time against that backend's `Db`.
#[allow(clippy::duplicate_mod)]
#[path = "sql.rs"]
mod sql;

/// The SQLite backend.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: sqlx::SqlitePool,
    secrets: SecretBox,
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
            .busy_timeout(Duration::from_secs(5));
        if let Some(dir) = options.get_filename().parent()
            && !dir.as_os_str().is_empty()
        {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await?;
        Ok(Self { pool, secrets })
    }
}
