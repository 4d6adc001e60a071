//! Suite `scheduler`: 10,000 no-op tasks due at the same instant, fired by omnihub's scheduler
//! (the actor tree's: claimed under a lease, run side by side, completed in bulk) on SQLite
//! and on PostgreSQL, against a bare tokio timer loop (10,000 sleeps to the same instant)
//! measured in the same run. Figures: lateness p99 (how long after its due time each task
//! ran) and how many tasks did not run exactly once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, bail};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use omnihub_actors::{Hub, HubConfig, TaskFailure, TaskHandler, TaskHandlers};
use omnihub_store::{DynStore, NewTask, SecretBox, Task};
use sqlx::{AssertSqlSafe, Connection as _};
use tokio::sync::Notify;

use crate::api::{ScratchDir, median};
use crate::report::{Figure, Goal};

pub const OPTIONS_HELP: &str = concat!(
    "  --tasks N          tasks due at the same instant (default 10000)\n",
    "  --lead SECS        how far ahead they are scheduled (default 20)\n",
    "  --postgres URL     server for the PostgreSQL run, `none` to skip it\n",
    "                     (default postgres://postgres@127.0.0.1:5432/test)\n",
);

const KIND: &str = "bench.noop";
const SQLITE_P99_S: f64 = 0.5;
const POSTGRES_P99_S: f64 = 1.0;
/// How long after the due instant every task must have run before the rest count as lost.
const DEADLINE: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct Options {
    pub tasks: usize,
    pub lead: Duration,
    pub postgres: Option<String>,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options {
            tasks: 10_000,
            lead: Duration::from_secs(20),
            postgres: Some("postgres://postgres@127.0.0.1:5432/test".into()),
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = || value.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
            match flag.as_str() {
                "--tasks" => o.tasks = usize::try_from(number()?.max(1)).unwrap_or(usize::MAX),
                "--lead" => o.lead = Duration::from_secs(number()?.max(1)),
                "--postgres" => o.postgres = (value != "none").then(|| value.clone()),
                other => return Err(format!("unknown option `{other}`")),
            }
        }
        Ok(o)
    }
}

pub fn run(options: &Options) -> anyhow::Result<Vec<Figure>> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter("warn")
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(measure(options))
}

async fn measure(o: &Options) -> anyhow::Result<Vec<Figure>> {
    let bare = bare_timers(o).await;
    eprintln!(
        "scheduler: bare tokio timers {} tasks: lateness p50 {:.1} ms, p99 {:.1} ms",
        o.tasks,
        bare.p50 * 1e3,
        bare.p99 * 1e3
    );
    let mut figures = Vec::new();

    let dir = ScratchDir::create()?;
    let url = format!("sqlite://{}", dir.path().join("omnihub.db").display());
    let sqlite = fire(&url, o).await.context("the SQLite run")?;
    sqlite.describe("SQLite");
    sqlite.figures(
        &mut figures,
        ("scheduler_sqlite_lateness_p99", "scheduler_sqlite_not_once"),
        &bare,
        SQLITE_P99_S,
    );
    drop(dir);

    if let Some(server) = &o.postgres {
        let db = ScratchDatabase::create(server).await?;
        let result = fire(&db.url, o).await.context("the PostgreSQL run");
        db.drop_it().await;
        let postgres = result?;
        postgres.describe("PostgreSQL");
        postgres.figures(
            &mut figures,
            (
                "scheduler_postgres_lateness_p99",
                "scheduler_postgres_not_once",
            ),
            &bare,
            POSTGRES_P99_S,
        );
    }
    Ok(figures)
}

/// Lateness in seconds.
struct Lateness {
    p50: f64,
    p99: f64,
}

impl Lateness {
    fn of(mut seconds: Vec<f64>) -> Lateness {
        seconds.sort_by(f64::total_cmp);
        Lateness {
            p50: median(seconds.clone()),
            p99: nearest_rank(&seconds, 0.99),
        }
    }
}

fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The baseline: one tokio task per timer, all sleeping to the same instant.
async fn bare_timers(o: &Options) -> Lateness {
    let due = tokio::time::Instant::now() + o.lead;
    let due_wall = Utc::now() + chrono::Duration::from_std(o.lead).unwrap_or_default();
    let timers: Vec<_> = (0..o.tasks)
        .map(|_| {
            tokio::spawn(async move {
                tokio::time::sleep_until(due).await;
                seconds_since(due_wall)
            })
        })
        .collect();
    let mut late = Vec::with_capacity(o.tasks);
    for timer in timers {
        if let Ok(seconds) = timer.await {
            late.push(seconds);
        }
    }
    Lateness::of(late)
}

fn seconds_since(at: DateTime<Utc>) -> f64 {
    (Utc::now() - at).to_std().map_or(0.0, |d| d.as_secs_f64())
}

/// What one run of the scheduler did.
struct Fired {
    lateness: Lateness,
    /// Tasks run more than once, or not at all by the deadline.
    not_once: usize,
    tasks: usize,
}

impl Fired {
    fn describe(&self, engine: &str) {
        eprintln!(
            "scheduler: omnihub on {engine} {} tasks: lateness p50 {:.1} ms, p99 {:.1} ms; \
             not run exactly once: {}",
            self.tasks,
            self.lateness.p50 * 1e3,
            self.lateness.p99 * 1e3,
            self.not_once
        );
    }

    fn figures(
        &self,
        out: &mut Vec<Figure>,
        (lateness, once): (&'static str, &'static str),
        bare: &Lateness,
        target: f64,
    ) {
        out.push(Figure::new(
            lateness,
            "s",
            self.lateness.p99,
            bare.p99,
            Goal::ValueAtMost,
            target,
            self.not_once == 0,
        ));
        out.push(Figure::new(
            once,
            "tasks",
            self.not_once as f64,
            0.0,
            Goal::ValueAtMost,
            0.0,
            true,
        ));
    }
}

/// Counts every run of every task and when it happened.
struct Counter {
    runs: Mutex<HashMap<uuid::Uuid, u32>>,
    late: Mutex<Vec<f64>>,
    expected: usize,
    all_ran: Notify,
}

#[async_trait]
impl TaskHandler for Counter {
    async fn run(&self, task: &Task) -> Result<(), TaskFailure> {
        let late = seconds_since(task.due_at);
        self.late
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(late);
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        *runs.entry(task.id).or_default() += 1;
        if runs.len() == self.expected {
            self.all_ran.notify_one();
        }
        Ok(())
    }
}

/// Schedules the tasks, starts a hub on the store at `url` and waits for them to run.
async fn fire(url: &str, o: &Options) -> anyhow::Result<Fired> {
    let store = omnihub_store::open(url, SecretBox::generate().0)
        .await
        .context("cannot open the store")?;
    store.migrate().await.context("cannot migrate the store")?;
    let due = Utc::now() + chrono::Duration::from_std(o.lead).unwrap_or_default();
    let ids = schedule(&store, o.tasks, due).await?;
    if Utc::now() + chrono::Duration::milliseconds(500) > due {
        bail!("scheduling took longer than the lead; give a larger --lead");
    }

    let counter = Arc::new(Counter {
        runs: Mutex::new(HashMap::new()),
        late: Mutex::new(Vec::with_capacity(o.tasks)),
        expected: o.tasks,
        all_ran: Notify::new(),
    });
    let config = HubConfig {
        task_handlers: TaskHandlers::default().with(KIND, counter.clone()),
        ..HubConfig::default()
    };
    let hub = Hub::start(store.clone(), config).await?;
    let deadline = o.lead + DEADLINE;
    let _ = tokio::time::timeout(deadline, counter.all_ran.notified()).await;
    // Give a duplicate that would come from a second claim the time to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    hub.stop().await;

    let runs = counter.runs.lock().unwrap_or_else(PoisonError::into_inner);
    let not_once = ids
        .iter()
        .filter(|id| runs.get(id).copied() != Some(1))
        .count();
    let late = counter
        .late
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    Ok(Fired {
        lateness: Lateness::of(late),
        not_once,
        tasks: o.tasks,
    })
}

/// Schedules `n` no-op tasks due at `due`, sixteen at a time.
async fn schedule(
    store: &DynStore,
    n: usize,
    due: DateTime<Utc>,
) -> anyhow::Result<Vec<uuid::Uuid>> {
    use futures_util::StreamExt as _;
    let tasks: Vec<anyhow::Result<Task>> = futures_util::stream::iter(0..n)
        .map(|i| async move {
            let task = NewTask {
                client_id: None,
                kind: KIND.into(),
                payload: serde_json::json!({ "n": i }),
                due_at: due,
                idempotency_key: format!("bench-{i}"),
            };
            Ok(store.schedule_task(&task).await?)
        })
        .buffer_unordered(16)
        .collect()
        .await;
    tasks.into_iter().map(|t| t.map(|t| t.id)).collect()
}

/// A database of its own on the PostgreSQL server, dropped after the run.
struct ScratchDatabase {
    server: String,
    name: String,
    url: String,
}

impl ScratchDatabase {
    async fn create(server: &str) -> anyhow::Result<ScratchDatabase> {
        let name = format!("omnihub_bench_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(server).await.with_context(|| {
            format!("cannot reach PostgreSQL at {server} (--postgres none skips it)")
        })?;
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        let url = match server.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => bail!("cannot tell the database in {server}"),
        };
        Ok(ScratchDatabase {
            server: server.to_string(),
            name,
            url,
        })
    }

    async fn drop_it(self) {
        if let Ok(mut admin) = sqlx::PgConnection::connect(&self.server).await {
            let _ = sqlx::raw_sql(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut admin)
            .await;
            let _ = admin.close().await;
        }
    }
}
