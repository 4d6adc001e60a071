//! Suite `api`: the throughput and tail latency of an authenticated API GET through the whole
//! of omnihub (`create_app`: middleware, routing, API-token authentication from the cache,
//! rights decision, JSON) as ratios to a bare actix-web handler that answers the same JSON body.
//!
//! Both servers run in this process on 127.0.0.1 with one worker each, so the load generator
//! (one thread) has the other core of a two-core machine. Rounds alternate which server goes
//! first and each figure is the median over the rounds, so drift and noise on a shared machine
//! hit both sides alike.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use anyhow::{Context as _, bail};
use omnihub::auth::{password, tokens};
use omnihub::config::{Config, Secret};
use omnihub::{AppState, create_app};
use omnihub_core::{GlobalRights, Role};
use omnihub_store::{DynStore, NewApiToken, NewUser, SecretBox};

use crate::load::{self, Load, Outcome};
use crate::report::{Figure, Goal};

/// The route measured: answered from the authentication cache, no store round trip.
const PATH: &str = "/api/v1/auth/me";
/// Worker threads of each server.
const WORKERS: usize = 1;
/// Throughput through omnihub must be at least this share of the bare handler's.
const THROUGHPUT_TARGET: f64 = 0.5;
/// omnihub's p99 latency must be at most this multiple of the bare handler's.
const P99_TARGET: f64 = 3.0;

pub const OPTIONS_HELP: &str = concat!(
    "  --connections N   keep-alive connections of the load generator (default 32)\n",
    "  --warmup SECS     warm-up of each load run, not measured (default 1)\n",
    "  --seconds SECS    measured window of each load run (default 3)\n",
    "  --rounds N        rounds, each loading both servers; figures are medians (default 3)\n",
);

#[derive(Clone, Debug)]
pub struct Options {
    pub connections: usize,
    pub warmup: Duration,
    pub measure: Duration,
    pub rounds: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connections: 32,
            warmup: Duration::from_secs(1),
            measure: Duration::from_secs(3),
            rounds: 3,
        }
    }
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options::default();
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let count = || -> Result<usize, String> {
                value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or_else(|| {
                        format!("{flag}: `{value}` is not a whole number from 1 to 10000")
                    })
            };
            let secs = || -> Result<Duration, String> {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && (0.0..=3600.0).contains(s))
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| {
                        format!("{flag}: `{value}` is not a number of seconds from 0 to 3600")
                    })
            };
            match flag.as_str() {
                "--connections" => options.connections = count()?,
                "--rounds" => options.rounds = count()?,
                "--warmup" => options.warmup = secs()?,
                "--seconds" => {
                    options.measure = secs()?;
                    if options.measure.is_zero() {
                        return Err("--seconds must be more than 0".into());
                    }
                }
                other => return Err(format!("unknown option `{other}`")),
            }
        }
        Ok(options)
    }
}

pub fn run(options: &Options) -> anyhow::Result<Vec<Figure>> {
    init_logging()?;
    // One thread for set-up and the load generator; each server's worker has its own thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let scratch = ScratchDir::create()?;
    let result = runtime.block_on(measure(options, scratch.path()));
    drop(runtime);
    drop(scratch);
    result
}

/// omnihub's default logging (level `info` to stderr; `OMNIHUB_LOG` overrides it), so the
/// request span the middleware opens costs what it costs in production. Only actix-server's
/// start and stop chatter is quietened.
fn init_logging() -> anyhow::Result<()> {
    let filter = std::env::var("OMNIHUB_LOG")
        .ok()
        .filter(|f| !f.trim().is_empty())
        .unwrap_or_else(|| "info,actix_server=warn".into());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .map_err(|e| anyhow::anyhow!("OMNIHUB_LOG: `{filter}` is not a log filter: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Bare,
    Omnihub,
}

struct Running {
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    load: Load,
}

async fn measure(options: &Options, data_dir: &Path) -> anyhow::Result<Vec<Figure>> {
    eprintln!(
        "api: seeding a fresh SQLite store in {}",
        data_dir.display()
    );
    let (secrets, key) = SecretBox::generate();
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".into();
    config.server.redirect_listen = String::new();
    config.server.public_url = "http://127.0.0.1".into();
    config.server.data_dir = data_dir.to_path_buf();
    config.server.plain_http = true;
    config.server.workers = WORKERS;
    config.security.secret_key = Secret::new(key);
    config.security.cookie_secure = false;
    config.validate().context("benchmark configuration")?;

    let store = omnihub_store::open(&config.store_url(), secrets)
        .await
        .context("cannot open the store")?;
    store.migrate().await.context("cannot migrate the store")?;
    let token = seed(&store).await.context("cannot seed the store")?;
    let state = AppState::build(Arc::new(config), store).await?;

    let omnihub = start_omnihub(state, &token, options)?;
    let sample = load::fetch(omnihub.load.addr, &omnihub.load.request).await?;
    if sample.status != 200 {
        bail!(
            "GET {PATH} with the seeded API token answered {}: {}",
            sample.status,
            String::from_utf8_lossy(&sample.body)
        );
    }
    let body: serde_json::Value = serde_json::from_slice(&sample.body)
        .with_context(|| format!("GET {PATH} did not answer JSON"))?;
    let bare = start_bare(Arc::new(body), &token, options)?;
    let bare_sample = load::fetch(bare.load.addr, &bare.load.request).await?;
    if bare_sample.status != 200 {
        bail!("the bare handler answered {}", bare_sample.status);
    }
    eprintln!(
        "api: {} connections; {WORKERS} server worker each, the load generator on its own \
         thread; {} rounds of {:?} warm-up + {:?} measured; JSON body {} bytes (bare {})",
        options.connections,
        options.rounds,
        options.warmup,
        options.measure,
        sample.body.len(),
        bare_sample.body.len(),
    );

    let mut rounds: Vec<Round> = Vec::with_capacity(options.rounds);
    for round in 1..=options.rounds {
        // Alternate who goes first, so a trend in the machine's load favours neither.
        let order = if !round.is_multiple_of(2) {
            [Side::Bare, Side::Omnihub]
        } else {
            [Side::Omnihub, Side::Bare]
        };
        let mut bare_outcome = None;
        let mut omnihub_outcome = None;
        for side in order {
            let server = if side == Side::Bare { &bare } else { &omnihub };
            let outcome = load::run(&server.load).await?;
            describe(round, side, &outcome);
            match side {
                Side::Bare => bare_outcome = Some(outcome),
                Side::Omnihub => omnihub_outcome = Some(outcome),
            }
        }
        if let (Some(bare), Some(omnihub)) = (bare_outcome, omnihub_outcome) {
            rounds.push(Round { bare, omnihub });
        }
    }

    for server in [bare, omnihub] {
        server.handle.stop(true).await;
        server
            .task
            .await
            .context("a server task panicked")?
            .context("a server failed")?;
    }
    Ok(figures(&rounds))
}

struct Round {
    bare: Outcome,
    omnihub: Outcome,
}

/// The request both servers get: the same bytes but for the port in `Host`.
fn request(addr: std::net::SocketAddr, token: &str) -> Arc<[u8]> {
    let text = format!(
        "GET {PATH} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Accept: application/json\r\nUser-Agent: omnihub-bench\r\n\r\n"
    );
    Arc::from(text.into_bytes())
}

fn load_for(addr: std::net::SocketAddr, token: &str, options: &Options) -> Load {
    Load {
        addr,
        request: request(addr, token),
        connections: options.connections,
        warmup: options.warmup,
        measure: options.measure,
    }
}

/// omnihub as `omnihub serve` runs it behind a TLS proxy (`server.plain_http`), one worker.
fn start_omnihub(state: AppState, token: &str, options: &Options) -> anyhow::Result<Running> {
    let server = HttpServer::new(move || create_app(state.clone()))
        .workers(WORKERS)
        .disable_signals()
        .shutdown_timeout(1)
        .bind(("127.0.0.1", 0))
        .context("cannot bind omnihub's listener")?;
    let addr = bound(server.addrs())?;
    let server = server.run();
    Ok(Running {
        handle: server.handle(),
        task: tokio::spawn(server),
        load: load_for(addr, token, options),
    })
}

/// The baseline: actix-web with nothing but one route answering the same JSON value.
fn start_bare(
    body: Arc<serde_json::Value>,
    token: &str,
    options: &Options,
) -> anyhow::Result<Running> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::from(body.clone()))
            .route(PATH, web::get().to(bare_handler))
    })
    .workers(WORKERS)
    .disable_signals()
    .shutdown_timeout(1)
    .bind(("127.0.0.1", 0))
    .context("cannot bind the bare listener")?;
    let addr = bound(server.addrs())?;
    let server = server.run();
    Ok(Running {
        handle: server.handle(),
        task: tokio::spawn(server),
        load: load_for(addr, token, options),
    })
}

/// Serialises a JSON value per request, as `/auth/me` serialises its answer.
async fn bare_handler(body: web::Data<serde_json::Value>) -> web::Json<serde_json::Value> {
    web::Json(body.get_ref().clone())
}

fn bound(addrs: Vec<std::net::SocketAddr>) -> anyhow::Result<std::net::SocketAddr> {
    addrs
        .first()
        .copied()
        .context("the server bound no address")
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Bare => "bare   ",
        Side::Omnihub => "omnihub",
    }
}

/// One progress line per load run, on stderr.
fn describe(round: usize, side: Side, outcome: &Outcome) {
    let cpu = match &outcome.cpu {
        Some(c) => format!(
            "; CPU server {:.0}%, generator {:.0}%, other {:.0}%, outside {}{}",
            c.server * 100.0,
            c.generator * 100.0,
            c.other * 100.0,
            c.outside
                .map(|o| format!("{:.0}%", o * 100.0))
                .unwrap_or_else(|| "?".into()),
            c.rss_growth_kib
                .map(|kib| format!("; RSS {kib:+} KiB"))
                .unwrap_or_default(),
        ),
        None => String::new(),
    };
    let errors = match &outcome.first_error {
        Some(first) => format!("; {} ERRORS, first: {first}", outcome.errors),
        None => String::new(),
    };
    eprintln!(
        "api: round {round} {}: {:>9.0} req/s, p50 {:.3} ms, p99 {:.3} ms{cpu}{errors}",
        side_name(side),
        outcome.requests_per_sec(),
        outcome.latency_ms(0.5),
        outcome.latency_ms(0.99),
    );
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if !n.is_multiple_of(2) => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

fn figures(rounds: &[Round]) -> Vec<Figure> {
    let of = |f: &dyn Fn(&Round) -> f64| median(rounds.iter().map(f).collect());
    let sound = rounds
        .iter()
        .all(|r| r.bare.errors == 0 && r.omnihub.errors == 0);
    let tput = (
        of(&|r| r.omnihub.requests_per_sec()),
        of(&|r| r.bare.requests_per_sec()),
    );
    let p50 = (
        of(&|r| r.omnihub.latency_ms(0.5)),
        of(&|r| r.bare.latency_ms(0.5)),
    );
    let p99 = (
        of(&|r| r.omnihub.latency_ms(0.99)),
        of(&|r| r.bare.latency_ms(0.99)),
    );
    eprintln!(
        "api: medians: omnihub {:.0} req/s (p50 {:.3} ms, p99 {:.3} ms); bare {:.0} req/s \
         (p50 {:.3} ms, p99 {:.3} ms){}",
        tput.0,
        p50.0,
        p99.0,
        tput.1,
        p50.1,
        p99.1,
        if sound {
            ""
        } else {
            "; errors occurred, so no figure is ok"
        },
    );
    vec![
        Figure::new(
            "api_authenticated_get",
            "req/s",
            tput.0,
            tput.1,
            Goal::AtLeast,
            THROUGHPUT_TARGET,
            sound,
        ),
        Figure::new(
            "api_authenticated_get_p99",
            "ms",
            p99.0,
            p99.1,
            Goal::AtMost,
            P99_TARGET,
            sound,
        ),
    ]
}

/// The seeded tenant: a client, its owner and an API token of theirs; returns the token.
async fn seed(store: &DynStore) -> anyhow::Result<String> {
    let client = store.create_client("Benchmark client", None).await?;
    let owner = store
        .create_user(&NewUser {
            email: "owner@bench.invalid".into(),
            display_name: "Benchmark owner".into(),
            password_hash: password::hash(&tokens::random_secret())?,
            role: Role::ClientOwner,
            client_id: Some(client.id),
            global_rights: GlobalRights::all(),
            locale: "en".into(),
        })
        .await?;
    let secret = tokens::new_api_token();
    store
        .create_api_token(&NewApiToken {
            client_id: client.id,
            user_id: owner.id,
            name: "benchmark".into(),
            prefix: secret.chars().take(12).collect(),
            token_hash: tokens::hash(&secret),
            expires_at: None,
        })
        .await?;
    Ok(secret)
}

/// A fresh directory under the system's temporary directory, removed with everything in it
/// when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn create() -> anyhow::Result<ScratchDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let path =
            std::env::temp_dir().join(format!("omnihub-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(ScratchDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("omnihub-bench: cannot remove {}: {e}", self.0.display());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_parse_and_reject_nonsense() {
        let o = Options::parse(&args(&[
            "--connections",
            "8",
            "--seconds",
            "0.5",
            "--rounds",
            "5",
        ]))
        .unwrap();
        assert_eq!(
            (o.connections, o.measure, o.rounds),
            (8, Duration::from_millis(500), 5)
        );
        assert_eq!(o.warmup, Duration::from_secs(1));
        for bad in [
            &["--connections"][..],
            &["--connections", "0"],
            &["--seconds", "0"],
            &["--warmup", "-1"],
            &["--rounds", "x"],
            &["--bogus", "1"],
        ] {
            assert!(Options::parse(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }
}
