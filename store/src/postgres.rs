//! The scale-out backend: PostgreSQL. Its SQL is `sql.rs`, shared with SQLite; this module owns
//! only the connection setup and the few engine differences.

use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;

use crate::{Result, SecretBox};

type Db = sqlx::Postgres;
type Backend = PgStore;
const ENGINE: &str = "postgres";
/// READ COMMITTED is enough: every multi-step write either updates its guarding row first
/// (which locks it) or relies on a unique index with `ON CONFLICT`.
const BEGIN_WRITE: &str = "BEGIN";
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

// The same SQL text is compiled once per backend, each time against that backend's `Db`.
#[allow(clippy::duplicate_mod)]
#[path = "sql.rs"]
mod sql;

/// The PostgreSQL backend.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: sqlx::PgPool,
    secrets: SecretBox,
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
