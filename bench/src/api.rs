//! Suite `api`: the throughput and tail latency of an authenticated API GET through the whole
//! of omnihub (`create_app`: middleware, routing, API-token authentication from the cache,
//! rights decision, JSON) as ratios to a bare actix-web handler that answers the same JSON body.
//!
//! Both servers run in this process on 127.0.0.1 with one worker each, so the load generator
//! (one thread) has the other core of a two-core machine. Rounds alternate which server goes
//! first and each figure is the median over the rounds, so drift and noise on a shared machine
//! hit both sides alike.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use omnihub::AppState;
use omnihub::auth::{password, tokens};
use omnihub::config::{Config, Secret};
use omnihub_core::{GlobalRights, Role};
use omnihub_store::{DynStore, NewApiToken, NewUser, SecretBox};
use serde_json::Value;

use crate::apps::{self, PATH, Variant, WORKERS};
use crate::inproc;
use crate::load::{self, Load, Outcome};
use crate::report::{Figure, Goal};

/// Throughput through omnihub must be at least this share of the bare handler's.
const THROUGHPUT_TARGET: f64 = 0.5;
/// omnihub's p99 latency must be at most this multiple of the bare handler's.
const P99_TARGET: f64 = 3.0;
/// Cores' worth of CPU used outside this process above which the run is flagged as disturbed.
const BUSY_OUTSIDE: f64 = 0.3;

pub const OPTIONS_HELP: &str = concat!(
    "  --connections N   keep-alive connections of the load generator (default 32)\n",
    "  --warmup SECS     warm-up of each load run, not measured (default 1)\n",
    "  --seconds SECS    measured window of each load run (default 3)\n",
    "  --rounds N        rounds, each loading every server; figures are medians (default 3)\n",
    "  --layers          also load the bare handler with each of omnihub's per-request layers\n",
    "                    added (observe, auth) and both, and print on\n",
    "                    stderr what each costs; the JSON lines stay the same\n",
);

#[derive(Clone, Debug)]
pub struct Options {
    pub connections: usize,
    pub warmup: Duration,
    pub measure: Duration,
    pub rounds: usize,
    pub layers: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connections: 32,
            warmup: Duration::from_secs(1),
            measure: Duration::from_secs(3),
            rounds: 3,
            layers: false,
        }
    }
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options::default();
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            if flag == "--layers" {
                options.layers = true;
                continue;
            }
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

/// omnihub's default logging (level `info` to stderr, styled only on a terminal; `OMNIHUB_LOG`
/// overrides it), so the request span the middleware opens costs what it costs in production.
/// Only actix-server's start and stop chatter is quietened.
pub(crate) fn init_logging() -> anyhow::Result<()> {
    let filter = std::env::var("OMNIHUB_LOG")
        .ok()
        .filter(|f| !f.trim().is_empty())
        .unwrap_or_else(|| "info,actix_server=warn".into());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .map_err(|e| anyhow::anyhow!("OMNIHUB_LOG: `{filter}` is not a log filter: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
}

async fn measure(options: &Options, data_dir: &Path) -> anyhow::Result<Vec<Figure>> {
    eprintln!(
        "api: seeding a fresh SQLite store in {}",
        data_dir.display()
    );
    let (config, store) = open_store(data_dir).await?;
    let token = seed(&store).await.context("cannot seed the store")?.token;
    let state = AppState::build(Arc::new(config), store).await?;

    // omnihub first: its answer is the body every other server mirrors.
    let omnihub = apps::start(Variant::Omnihub, &state, &Arc::new(Value::Null))?;
    let sample = load::fetch(omnihub.addr, &request(omnihub.addr, &token)).await?;
    if sample.status != 200 {
        bail!(
            "GET {PATH} with the seeded API token answered {}: {}",
            sample.status,
            String::from_utf8_lossy(&sample.body)
        );
    }
    let body: Value = serde_json::from_slice(&sample.body)
        .with_context(|| format!("GET {PATH} did not answer JSON"))?;
    let body = Arc::new(body);
    let mut servers = vec![apps::start(Variant::Bare, &state, &body)?, omnihub];
    if options.layers {
        for variant in Variant::LAYERS {
            servers.push(apps::start(variant, &state, &body)?);
        }
    }
    for server in &servers {
        let reply = load::fetch(server.addr, &request(server.addr, &token)).await?;
        if reply.status != 200 || reply.body.len() != sample.body.len() {
            bail!(
                "the {} server answered {} with {} bytes, not 200 with {}",
                server.variant.label(),
                reply.status,
                reply.body.len(),
                sample.body.len()
            );
        }
    }
    eprintln!(
        "api: {} connections; {WORKERS} worker per server, the load generator on a thread of \
         its own; {} rounds of {:?} warm-up + {:?} measured; JSON body {} bytes",
        options.connections,
        options.rounds,
        options.warmup,
        options.measure,
        sample.body.len(),
    );

    let mut outcomes: Vec<Vec<Outcome>> = servers.iter().map(|_| Vec::new()).collect();
    for round in 1..=options.rounds {
        // Alternate the order, so a trend in the machine's load favours no server.
        let mut order: Vec<usize> = (0..servers.len()).collect();
        if round.is_multiple_of(2) {
            order.reverse();
        }
        for i in order {
            let server = &servers[i];
            let outcome = load::run(&Load {
                addr: server.addr,
                request: request(server.addr, &token),
                connections: options.connections,
                warmup: options.warmup,
                measure: options.measure,
                make: None,
                rate: None,
            })
            .await?;
            describe(round, server.variant, &outcome);
            outcomes[i].push(outcome);
        }
    }
    let variants: Vec<Variant> = servers.iter().map(|s| s.variant).collect();
    for server in servers {
        server.stop().await?;
    }

    let outside = median(
        outcomes
            .iter()
            .flatten()
            .filter_map(|o| o.cpu.and_then(|c| c.outside))
            .collect(),
    );
    if outside > BUSY_OUTSIDE {
        eprintln!(
            "api: WARNING: other programs kept {:.0}% of a core busy during the runs (median); \
             server and load generator then share what is left and the figures, above all p99, \
             are unreliable: run again on a quieter machine",
            outside * 100.0
        );
    }

    let summaries: Vec<Summary> = variants
        .iter()
        .zip(&outcomes)
        .map(|(v, o)| Summary::of(*v, o))
        .collect();
    let [bare, omnihub, ..] = summaries.as_slice() else {
        bail!("the baseline and omnihub were not both measured");
    };
    for s in &summaries {
        s.print(bare);
    }
    if options.layers {
        eprintln!(
            "api: in-process cost per request (the application alone: no sockets, no HTTP parsing):"
        );
        let costs = inproc::measure(&state, &body, &token).await?;
        let base = costs
            .iter()
            .find(|c| c.variant == Variant::Bare)
            .map_or(0.0, |c| c.ns_per_request);
        for cost in &costs {
            eprintln!(
                "api:   {:<30} {:>6.2} µs ({:+.2} µs vs bare)",
                cost.label,
                cost.ns_per_request / 1000.0,
                (cost.ns_per_request - base) / 1000.0
            );
        }
    }
    state.hub_tree.stop().await;
    Ok(figures(omnihub, bare))
}

/// The request every server gets: the same bytes but for the port in `Host`.
fn request(addr: SocketAddr, token: &str) -> Arc<[u8]> {
    let text = format!(
        "GET {PATH} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Accept: application/json\r\nUser-Agent: omnihub-bench\r\n\r\n"
    );
    Arc::from(text.into_bytes())
}

/// One progress line per load run, on stderr.
fn describe(round: usize, variant: Variant, outcome: &Outcome) {
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
        "api: round {round} {:<14} {:>7.0} req/s, p50 {:.3} ms, p99 {:.3} ms{cpu}{errors}",
        variant.label(),
        outcome.requests_per_sec(),
        outcome.latency_ms(0.5),
        outcome.latency_ms(0.99),
    );
}

pub(crate) fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if !n.is_multiple_of(2) => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

/// One server's medians over the rounds.
struct Summary {
    variant: Variant,
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// The server worker's CPU time per answered request, in microseconds, where measurable.
    server_us: Option<f64>,
    errors: u64,
}

impl Summary {
    fn of(variant: Variant, outcomes: &[Outcome]) -> Summary {
        let of = |f: &dyn Fn(&Outcome) -> f64| median(outcomes.iter().map(f).collect());
        let per_request: Option<Vec<f64>> = outcomes
            .iter()
            .map(|o| o.cpu.map(|c| c.server / o.requests_per_sec() * 1e6))
            .collect();
        Summary {
            variant,
            requests_per_sec: of(&Outcome::requests_per_sec),
            p50_ms: of(&|o| o.latency_ms(0.5)),
            p99_ms: of(&|o| o.latency_ms(0.99)),
            server_us: per_request.map(median).filter(|us| us.is_finite()),
            errors: outcomes.iter().map(|o| o.errors).sum(),
        }
    }

    fn print(&self, bare: &Summary) {
        let cpu = match (self.server_us, bare.server_us) {
            (Some(us), Some(base)) => format!(
                ", server CPU {us:.2} µs/request ({:+.2} vs bare)",
                us - base
            ),
            _ => String::new(),
        };
        let errors = if self.errors > 0 {
            format!(", {} ERRORS", self.errors)
        } else {
            String::new()
        };
        eprintln!(
            "api: median {:<14} {:>7.0} req/s ({:.3} of bare), p50 {:.3} ms, p99 {:.3} ms{cpu}{errors}",
            self.variant.label(),
            self.requests_per_sec,
            self.requests_per_sec / bare.requests_per_sec,
            self.p50_ms,
            self.p99_ms,
        );
    }
}

fn figures(omnihub: &Summary, bare: &Summary) -> Vec<Figure> {
    let sound = omnihub.errors == 0 && bare.errors == 0;
    if !sound {
        eprintln!("api: requests failed, so no figure is ok");
    }
    vec![
        Figure::new(
            "api_authenticated_get",
            "req/s",
            omnihub.requests_per_sec,
            bare.requests_per_sec,
            Goal::AtLeast,
            THROUGHPUT_TARGET,
            sound,
        ),
        Figure::new(
            "api_authenticated_get_p99",
            "ms",
            omnihub.p99_ms,
            bare.p99_ms,
            Goal::AtMost,
            P99_TARGET,
            sound,
        ),
    ]
}

/// The benchmark's configuration (as behind a TLS proxy: `plain_http`; [`WORKERS`] worker(s))
/// and a fresh, migrated SQLite store in `data_dir`. Seed it, then `AppState::build` (whose
/// authentication cache loads what is there).
pub(crate) async fn open_store(data_dir: &Path) -> anyhow::Result<(Config, DynStore)> {
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
    Ok((config, store))
}

/// What [`seed`] made.
pub(crate) struct Seeded {
    pub client_id: omnihub_core::ClientId,
    pub owner_id: omnihub_core::UserId,
    /// The owner's API token.
    pub token: String,
}

/// The seeded tenant: a client, its owner and an API token of theirs.
pub(crate) async fn seed(store: &DynStore) -> anyhow::Result<Seeded> {
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
    Ok(Seeded {
        client_id: client.id,
        owner_id: owner.id,
        token: secret,
    })
}

/// A fresh directory under the system's temporary directory, removed with everything in it
/// when dropped.
pub(crate) struct ScratchDir(PathBuf);

impl ScratchDir {
    pub(crate) fn create() -> anyhow::Result<ScratchDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let path =
            std::env::temp_dir().join(format!("omnihub-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(ScratchDir(path))
    }

    pub(crate) fn path(&self) -> &Path {
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
