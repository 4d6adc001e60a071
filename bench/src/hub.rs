//! Suite `hub`: omnihub's realtime hub against a bare actix-web / actix-ws baseline
//! ([`crate::bare_hub`]) measured in the same run: webhook ingest rate and acknowledgement
//! tail, inbound → operator-socket latency with loss and duplicate counting, resident memory
//! per idle operator socket, and broadcast of one inbound message to many idle sockets.
//! `BENCHMARKS.md` documents every figure.
//!
//! This process runs both servers (one worker each) and omnihub's actors on its main thread;
//! the HTTP load generator and the single in-process socket run on a thread of their own. The
//! many idle sockets live in a child process (`omnihub-bench hub-sockets`, [`crate::sockets`])
//! so that their memory and file descriptors are not charged to the servers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use omnihub::AppState;
use omnihub_core::model::{ChannelKind, Provider};
use omnihub_store::NewChannel;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

use crate::api::{self, ScratchDir, median};
use crate::apps::{self, Variant};
use crate::bare_hub::BareHub;
use crate::cpu;
use crate::load::{self, Load, MakeRequest, Outcome};
use crate::report::{Figure, Goal};
use crate::sockets::{self, Tally};

const INGEST_TARGET: f64 = 0.25;
const ACK_P99_MS: f64 = 50.0;
const E2E_P99_MS: f64 = 100.0;
const BROADCAST_TARGET: f64 = 0.5;
const BROADCAST_P99_TARGET: f64 = 1.5;
const MEMORY_TARGET: f64 = 1.2;
const IDLE_RSS_MB: f64 = 100.0;
const LOADED_RSS_MB: f64 = 1024.0;
/// The API channel's inbound token (and the bare server's).
const INBOUND_TOKEN: &str = "bench-inbound-0123456789abcdef0123456789";
/// HTTP connections the load generator opens at most.
const MAX_CONNECTIONS: usize = 10_000;
/// Conversations the inbound messages are spread over.
const CONVERSATIONS: u64 = 64;
/// How long deliveries may trail the last POST before the missing ones count as lost.
const DRAIN: Duration = Duration::from_secs(5);

pub const OPTIONS_HELP: &str = concat!(
    "  --connections N   HTTP connections of the load generator (default 32; the ingest\n",
    "                    maximum is the best of N, 4N and 16N)\n",
    "  --warmup SECS     warm-up of each load run (default 1)\n",
    "  --seconds SECS    measured window of each load run (default 3)\n",
    "  --rounds N        rounds of each HTTP load; figures are medians (default 2)\n",
    "  --sockets N       idle sockets for memory and broadcast (default 10000)\n",
    "  --broadcasts N    measured broadcasts to the idle sockets (default 10)\n",
);

#[derive(Clone, Debug)]
pub struct Options {
    pub connections: usize,
    pub warmup: Duration,
    pub measure: Duration,
    pub rounds: usize,
    pub sockets: usize,
    pub broadcasts: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connections: 32,
            warmup: Duration::from_secs(1),
            measure: Duration::from_secs(3),
            rounds: 2,
            sockets: 10_000,
            broadcasts: 10,
        }
    }
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options::default();
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let count = |max: usize| -> Result<usize, String> {
                value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| {
                        format!("{flag}: `{value}` is not a whole number from 1 to {max}")
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
                "--connections" => o.connections = count(MAX_CONNECTIONS)?,
                "--rounds" => o.rounds = count(100)?,
                "--sockets" => o.sockets = count(100_000)?,
                "--broadcasts" => o.broadcasts = count(1_000)?,
                "--warmup" => o.warmup = secs()?,
                "--seconds" => {
                    o.measure = secs()?;
                    if o.measure.is_zero() {
                        return Err("--seconds must be more than 0".into());
                    }
                }
                other => return Err(format!("unknown option `{other}`")),
            }
        }
        Ok(o)
    }
}

/// Raises the soft limit of open files to the hard one (10,000 sockets need 10,000 descriptors
/// in the server process and as many in the client's).
pub fn raise_open_files() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

fn open_files_limit() -> String {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .map_or_else(|| "unlimited".into(), |n| n.to_string())
}

fn rss_kib() -> f64 {
    cpu::status_kib("VmRSS:").map_or(f64::NAN, |k| k as f64)
}

pub fn run(options: &Options) -> anyhow::Result<Vec<Figure>> {
    api::init_logging()?;
    raise_open_files();
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

/// One server under test, as the clients see it.
#[derive(Clone)]
struct Target {
    label: &'static str,
    addr: SocketAddr,
    hook: Arc<str>,
    ws_path: &'static str,
    ws_token: Arc<str>,
}

/// A process-wide sequence: every inbound message has its own number (and so its own
/// `event_id`, never a duplicate by accident).
static SEQ: AtomicU64 = AtomicU64::new(0);

/// The webhook POST for the next sequence number, due at `due`; `sent` (when given) records
/// `seq → due_ns`.
fn hook_request(target: &Target, due: Instant, sent: Option<&Mutex<HashMap<u64, u64>>>) -> Vec<u8> {
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let due_ns = sockets::ns_at(due);
    if let Some(sent) = sent {
        sent.lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(seq, due_ns);
    }
    let who = seq % CONVERSATIONS;
    let body = json!({
        "event_id": format!("ev-{seq}"),
        "conversation": format!("conv-{who}"),
        "user": {"id": format!("customer-{who}"), "name": "Benchmark Customer"},
        "text": sockets::marker(seq, due_ns),
    })
    .to_string();
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {INBOUND_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nUser-Agent: omnihub-bench\r\n\r\n",
        target.hook,
        target.addr,
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body.as_bytes());
    request
}

fn maker(target: &Target, sent: Option<Arc<Mutex<HashMap<u64, u64>>>>) -> MakeRequest {
    let target = target.clone();
    Arc::new(move |_, due| hook_request(&target, due, sent.as_deref()))
}

/// Runs `f` on a thread and runtime of its own (the load generator's), leaving this thread to
/// omnihub's actors and the servers' acceptors.
async fn off_thread<F, Fut, T>(f: F) -> anyhow::Result<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(f())
    })
    .await
    .context("the load generator's thread panicked")?
}

async fn measure(o: &Options, data_dir: &Path) -> anyhow::Result<Vec<Figure>> {
    eprintln!(
        "hub: open-file limit {}; seeding a fresh SQLite store in {}",
        open_files_limit(),
        data_dir.display()
    );
    let bare = BareHub::start(INBOUND_TOKEN)?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_bare = rss_kib();
    let (config, store) = api::open_store(data_dir).await?;
    let seeded = api::seed(&store).await.context("cannot seed the store")?;
    let channel = store
        .create_channel(&NewChannel {
            client_id: seeded.client_id,
            kind: ChannelKind::Messaging,
            provider: Provider::Api,
            name: "Benchmark API channel".into(),
            settings: json!({}),
            credentials: Some(json!({ "inbound_token": INBOUND_TOKEN })),
        })
        .await
        .context("cannot create the API channel")?;
    let state = AppState::build(Arc::new(config), store).await?;
    let omnihub = apps::start(Variant::Omnihub, &state, &Arc::new(Value::Null))?;
    let hook: Arc<str> = Arc::from(format!("/hooks/api/{}", channel.id));
    let targets = [
        Target {
            label: "bare",
            addr: bare.addr,
            hook: hook.clone(),
            ws_path: "/ws",
            ws_token: Arc::from(seeded.token.as_str()),
        },
        Target {
            label: "omnihub",
            addr: omnihub.addr,
            hook,
            ws_path: "/api/v1/ws",
            ws_token: Arc::from(seeded.token.as_str()),
        },
    ];
    // Both accept a message; omnihub's event frame sets the size of the bare one's.
    let frame_len = {
        let t = targets[1].clone();
        off_thread(move || sample_frame(t)).await?
    };
    bare.shared
        .frame_len
        .store(frame_len, std::sync::atomic::Ordering::Relaxed);
    let reply = load::fetch(bare.addr, &hook_request(&targets[0], Instant::now(), None)).await?;
    if reply.status != 200 {
        bail!("the bare hook answered {}", reply.status);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = rss_kib();
    eprintln!(
        "hub: event frame {frame_len} bytes; RSS {:.1} MB with the bare server, {:.1} MB with \
         omnihub idle too",
        rss_bare / 1024.0,
        rss_idle / 1024.0
    );

    let mut figures = Vec::new();

    // (1) Ingest: the closed-loop maximum, then p99 acknowledgement at half of omnihub's. A
    // server's maximum is its best over a few concurrency levels: a bare handler is at its
    // fastest with few requests in flight, while omnihub commits whatever arrived meanwhile in
    // one transaction, so its rate grows with the requests in flight until its writer is busy.
    let levels = concurrency_levels(o.connections);
    let mut max: [Vec<Vec<Outcome>>; 2] = std::array::from_fn(|_| {
        std::iter::repeat_with(Vec::new)
            .take(levels.len())
            .collect()
    });
    for (level, connections) in levels.iter().enumerate() {
        for round in 0..o.rounds {
            for i in order(round) {
                let outcome = http_load(o, &targets[i], *connections, None, None).await?;
                describe(
                    &format!("ingest max, {connections} connections,"),
                    round,
                    targets[i].label,
                    &outcome,
                );
                max[i][level].push(outcome);
            }
        }
    }
    let level_rates = |i: usize| -> Vec<f64> {
        max[i]
            .iter()
            .map(|runs| median(runs.iter().map(Outcome::requests_per_sec).collect()))
            .collect()
    };
    let rate = |i: usize| level_rates(i).into_iter().fold(0.0, f64::max);
    let errors = |runs: &[Outcome]| runs.iter().map(|r| r.errors).sum::<u64>();
    let sound = max.iter().flatten().map(|runs| errors(runs)).sum::<u64>() == 0;
    figures.push(Figure::new(
        "hub_ingest",
        "req/s",
        rate(1),
        rate(0),
        Goal::AtLeast,
        INGEST_TARGET,
        sound,
    ));
    let half = rate(1) / 2.0;
    // The paced runs open as many connections as carried omnihub's maximum: fewer would queue
    // requests in the generator (each connection carries one at a time) and time its own
    // backlog instead of the servers.
    let paced_connections = levels
        .iter()
        .zip(level_rates(1))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(o.connections, |(n, _)| *n)
        .max(o.connections * 2);
    eprintln!(
        "hub: half of omnihub's ingest rate: {half:.0} req/s, offered to both servers over \
         {paced_connections} connections"
    );
    let mut paced: [Vec<Outcome>; 2] = [Vec::new(), Vec::new()];
    for round in 0..o.rounds {
        for i in order(round) {
            let outcome = http_load(o, &targets[i], paced_connections, Some(half), None).await?;
            describe("ingest half", round, targets[i].label, &outcome);
            paced[i].push(outcome);
        }
    }
    let p99 = |i: usize| median(paced[i].iter().map(|r| r.latency_ms(0.99)).collect());
    let achieved = |i: usize| median(paced[i].iter().map(Outcome::requests_per_sec).collect());
    let sound = errors(&paced[0]) + errors(&paced[1]) == 0 && achieved(1) >= 0.95 * half;
    figures.push(Figure::new(
        "hub_ingest_ack_p99",
        "ms",
        p99(1),
        p99(0),
        Goal::ValueAtMost,
        ACK_P99_MS,
        sound,
    ));
    emit(&figures);

    // (2) End to end at the same rate: POST → one operator socket.
    let mut e2e: [Vec<EndToEnd>; 2] = [Vec::new(), Vec::new()];
    for round in 0..o.rounds {
        for i in order(round) {
            let run = end_to_end(o, &targets[i], half, paced_connections).await?;
            eprintln!(
                "hub: e2e round {} {:<8} {:>6.0} req/s sent {} received {} lost {} duplicated \
                 {}, p50 {:.2} ms, p99 {:.2} ms{}",
                round + 1,
                targets[i].label,
                run.outcome.requests_per_sec(),
                run.sent,
                run.received,
                run.lost,
                run.duplicated,
                run.p50_ms,
                run.p99_ms,
                first_error(&run.outcome)
            );
            if i == 0 {
                bare.forget_sockets();
            }
            e2e[i].push(run);
        }
    }
    let e2e_p99 = |i: usize| median(e2e[i].iter().map(|r| r.p99_ms).collect());
    let faults = |i: usize| e2e[i].iter().map(|r| r.lost + r.duplicated).sum::<u64>() as f64;
    let sound = e2e.iter().flatten().all(|r| r.outcome.errors == 0);
    figures.push(Figure::new(
        "hub_e2e_p99",
        "ms",
        e2e_p99(1),
        e2e_p99(0),
        Goal::ValueAtMost,
        E2E_P99_MS,
        sound,
    ));
    figures.push(Figure::new(
        "hub_e2e_lost_or_duplicated",
        "messages",
        faults(1),
        faults(0),
        Goal::ValueAtMost,
        0.0,
        sound,
    ));
    emit(&figures[2..]);

    // (3) and (4): idle sockets in a child process, then broadcasts to them. omnihub first, so
    // that any memory the allocator keeps from it cannot flatter omnihub's own figure.
    let mut fanout = Vec::new();
    for i in [1, 0] {
        let result = idle_and_broadcast(o, &targets[i]).await;
        if i == 0 {
            bare.forget_sockets();
        }
        fanout.push(result?);
    }
    let (om, ba) = (&fanout[0], &fanout[1]);
    figures.push(Figure::new(
        "hub_socket_memory",
        "KiB/socket",
        om.kib_per_socket,
        ba.kib_per_socket,
        Goal::AtMost,
        MEMORY_TARGET,
        om.failed == 0 && ba.failed == 0,
    ));
    let broadcast_sound = om.sound() && ba.sound();
    figures.push(Figure::new(
        "hub_broadcast",
        "deliveries/s",
        om.rate,
        ba.rate,
        Goal::AtLeast,
        BROADCAST_TARGET,
        broadcast_sound,
    ));
    figures.push(Figure::new(
        "hub_broadcast_p99",
        "ms",
        om.p99_ms,
        ba.p99_ms,
        Goal::AtMost,
        BROADCAST_P99_TARGET,
        broadcast_sound,
    ));
    let peak = cpu::status_kib("VmHWM:").map_or(f64::NAN, |k| k as f64);
    figures.push(Figure::new(
        "hub_rss_idle",
        "MB",
        rss_idle / 1024.0,
        rss_bare / 1024.0,
        Goal::ValueAtMost,
        IDLE_RSS_MB,
        true,
    ));
    figures.push(Figure::new(
        "hub_rss_peak",
        "MB",
        peak / 1024.0,
        rss_idle / 1024.0,
        Goal::ValueAtMost,
        LOADED_RSS_MB,
        true,
    ));
    emit(&figures[4..]);

    omnihub.stop().await?;
    bare.stop().await?;
    state.hub_tree.stop().await;
    Ok(figures)
}

/// Figures as they are found, on stderr (stdout gets them all at the end).
fn emit(figures: &[Figure]) {
    for f in figures {
        eprintln!("hub: figure {}", f.to_json());
    }
}

fn order(round: usize) -> [usize; 2] {
    if round.is_multiple_of(2) {
        [0, 1]
    } else {
        [1, 0]
    }
}

fn first_error(outcome: &Outcome) -> String {
    match &outcome.first_error {
        Some(e) => format!("; {} ERRORS, first: {e}", outcome.errors),
        None => String::new(),
    }
}

/// Prints a run, with its CPU use and the server's CPU time per answered request (its HTTP
/// worker plus, for omnihub, the hub's and SQLite's threads): a figure that noise on a shared
/// machine moves far less than the rate.
fn describe(what: &str, round: usize, label: &str, outcome: &Outcome) {
    let cpu = outcome
        .cpu
        .map(|c| {
            format!(
                "; CPU server {:.0}%, generator {:.0}%, other {:.0}%, outside {}; {:.1} µs a request",
                c.server * 100.0,
                c.generator * 100.0,
                c.other * 100.0,
                c.outside
                    .map(|o| format!("{:.0}%", o * 100.0))
                    .unwrap_or_else(|| "?".into()),
                (c.server + c.other) / outcome.requests_per_sec().max(1.0) * 1e6
            )
        })
        .unwrap_or_default();
    eprintln!(
        "hub: {what} round {} {:<8} {:>7.0} req/s, p50 {:.3} ms, p99 {:.3} ms{cpu}{}",
        round + 1,
        label,
        outcome.requests_per_sec(),
        outcome.latency_ms(0.5),
        outcome.latency_ms(0.99),
        first_error(outcome)
    );
}

/// The closed loop's concurrency levels: the given one, 4 and 16 times it (within the
/// generator's limit).
fn concurrency_levels(connections: usize) -> Vec<usize> {
    let mut levels: Vec<usize> = [1, 4, 16]
        .iter()
        .map(|k| (connections * k).min(MAX_CONNECTIONS))
        .collect();
    levels.dedup();
    levels
}

async fn http_load(
    o: &Options,
    target: &Target,
    connections: usize,
    rate: Option<f64>,
    sent: Option<Arc<Mutex<HashMap<u64, u64>>>>,
) -> anyhow::Result<Outcome> {
    let load = Load {
        addr: target.addr,
        request: Arc::from(&b""[..]),
        connections,
        warmup: o.warmup,
        measure: o.measure,
        make: Some(maker(target, sent)),
        rate,
    };
    off_thread(move || async move { load::run(&load).await }).await
}

/// Opens one socket, posts one message and returns the length of the frame that delivered it.
async fn sample_frame(target: Target) -> anyhow::Result<usize> {
    let mut ws = sockets::open(target.addr, target.ws_path, &target.ws_token).await?;
    let reply = load::fetch(target.addr, &hook_request(&target, Instant::now(), None)).await?;
    if reply.status != 200 {
        bail!(
            "the {} hook answered {}: {}",
            target.label,
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
    }
    use futures_util::StreamExt as _;
    let deadline = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => {
                    if sockets::delivery(t.as_str()).is_some() {
                        return Ok(t.len());
                    }
                }
                Some(Ok(_)) => {}
                other => bail!("the {} socket ended before the event: {other:?}", target.label),
            },
            _ = &mut deadline => bail!("no event reached the {} socket in 10 s", target.label),
        }
    }
}

struct EndToEnd {
    outcome: Outcome,
    sent: u64,
    received: u64,
    lost: u64,
    duplicated: u64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Paced POSTs with one operator socket open; every POST's message must reach it exactly once.
async fn end_to_end(
    o: &Options,
    target: &Target,
    rate: f64,
    connections: usize,
) -> anyhow::Result<EndToEnd> {
    let t = target.clone();
    let o = o.clone();
    off_thread(move || async move {
        let ws = sockets::open(t.addr, t.ws_path, &t.ws_token).await?;
        let tally = Arc::new(Mutex::new(Tally::default()));
        let reader = tokio::spawn(sockets::read(ws, tally.clone()));
        let sent = Arc::new(Mutex::new(HashMap::new()));
        let window_ns = sockets::now_ns() + u64::try_from(o.warmup.as_nanos()).unwrap_or(0);
        let load = Load {
            addr: t.addr,
            request: Arc::from(&b""[..]),
            connections,
            warmup: o.warmup,
            measure: o.measure,
            make: Some(maker(&t, Some(sent.clone()))),
            rate: Some(rate),
        };
        let outcome = load::run(&load).await?;
        let expected = sent.lock().unwrap_or_else(|p| p.into_inner()).len();
        let until = Instant::now() + DRAIN;
        while Instant::now() < until {
            let distinct = sockets::counts(&tally.lock().unwrap_or_else(|p| p.into_inner())).len();
            if distinct >= expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        reader.abort();
        let sent = sent.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let tally = tally.lock().unwrap_or_else(|p| p.into_inner());
        let counts = sockets::counts(&tally);
        let lost = sent.keys().filter(|s| !counts.contains_key(s)).count() as u64;
        let duplicated = counts.values().map(|c| u64::from(c - 1)).sum::<u64>()
            + counts.keys().filter(|s| !sent.contains_key(s)).count() as u64;
        let in_window = |s: u64| sent.get(&s).is_some_and(|due| *due >= window_ns);
        Ok(EndToEnd {
            sent: sent.len() as u64,
            received: tally.seen.len() as u64,
            lost,
            duplicated,
            p50_ms: tally.quantile_us(0.5, in_window) / 1000.0,
            p99_ms: tally.quantile_us(0.99, in_window) / 1000.0,
            outcome,
        })
    })
    .await
}

struct Fanout {
    sockets: u64,
    failed: u64,
    kib_per_socket: f64,
    rate: f64,
    p99_ms: f64,
    lost: u64,
    duplicated: u64,
}

impl Fanout {
    fn sound(&self) -> bool {
        self.failed == 0 && self.lost == 0 && self.duplicated == 0 && self.sockets > 0
    }
}

/// A child process holding `o.sockets` idle sockets.
struct Child {
    process: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl Child {
    async fn ask(&mut self, command: &str) -> anyhow::Result<Value> {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await?;
        self.stdin.flush().await?;
        self.answer().await
    }

    async fn answer(&mut self) -> anyhow::Result<Value> {
        let line = self
            .lines
            .next_line()
            .await?
            .context("the socket process ended")?;
        serde_json::from_str(&line).with_context(|| format!("the socket process said `{line}`"))
    }
}

async fn idle_and_broadcast(o: &Options, target: &Target) -> anyhow::Result<Fanout> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib();
    let started = Instant::now();
    let mut process = tokio::process::Command::new(std::env::current_exe()?)
        .args([
            "hub-sockets",
            &target.addr.to_string(),
            target.ws_path,
            &target.ws_token,
            &o.sockets.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the socket process")?;
    let stdin = process.stdin.take().context("no stdin")?;
    let stdout = process.stdout.take().context("no stdout")?;
    let mut child = Child {
        process,
        stdin,
        lines: tokio::io::BufReader::new(stdout).lines(),
    };
    let ready = child.answer().await?;
    let sockets = ready["ready"].as_u64().unwrap_or(0);
    let failed = ready["failed"].as_u64().unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib();
    let kib_per_socket = if sockets > 0 {
        (after - before) / sockets as f64
    } else {
        f64::NAN
    };
    eprintln!(
        "hub: {:<8} {sockets} idle sockets open in {:.1} s ({failed} failed{}); RSS {:.1} → {:.1} \
         MB: {kib_per_socket:.1} KiB per socket",
        target.label,
        started.elapsed().as_secs_f64(),
        ready["error"]
            .as_str()
            .map(|e| format!(", first: {e}"))
            .unwrap_or_default(),
        before / 1024.0,
        after / 1024.0,
    );

    // One broadcast to warm up, then the measured ones, each POSTed once the previous one was
    // acknowledged; then wait until every socket has every message (or the drain runs out).
    let expect = |n: u64| n * sockets;
    broadcast(target, 1).await?;
    wait_for(&mut child, expect(1)).await?;
    child.ask("reset").await?;
    let n = o.broadcasts as u64;
    let first_ns = sockets::now_ns();
    broadcast(target, o.broadcasts).await?;
    let report = wait_for(&mut child, expect(n)).await?;
    let deliveries = report["deliveries"].as_u64().unwrap_or(0);
    let duplicated = report["duplicates"].as_u64().unwrap_or(0);
    let last_ns = report["last_ns"].as_u64().unwrap_or(0);
    let elapsed_s = last_ns.saturating_sub(first_ns) as f64 / 1e9;
    let rate = deliveries as f64 / elapsed_s;
    let p99_ms = report["p99_us"].as_f64().unwrap_or(f64::NAN) / 1000.0;
    let lost = expect(n).saturating_sub(deliveries - duplicated);
    eprintln!(
        "hub: {:<8} broadcast {n} × {sockets} sockets: {deliveries} deliveries in {elapsed_s:.3} \
         s = {rate:.0}/s, p50 {:.1} ms, p99 {p99_ms:.1} ms, lost {lost}, duplicated \
         {duplicated}, sockets closed {}",
        target.label,
        report["p50_us"].as_f64().unwrap_or(f64::NAN) / 1000.0,
        report["closed"],
    );
    drop(child.stdin);
    let _ = tokio::time::timeout(Duration::from_secs(30), child.process.wait()).await;
    Ok(Fanout {
        sockets,
        failed,
        kib_per_socket,
        rate,
        p99_ms,
        lost,
        duplicated,
    })
}

/// Posts `n` messages to one conversation, each after the previous one's acknowledgement.
async fn broadcast(target: &Target, n: usize) -> anyhow::Result<()> {
    for _ in 0..n {
        let reply = load::fetch(target.addr, &hook_request(target, Instant::now(), None)).await?;
        if reply.status != 200 {
            bail!("the {} hook answered {}", target.label, reply.status);
        }
    }
    Ok(())
}

/// Asks the socket process until `deliveries` have arrived, or [`DRAIN`] passes without one more.
async fn wait_for(child: &mut Child, deliveries: u64) -> anyhow::Result<Value> {
    let mut last = (0, Instant::now());
    loop {
        let report = child.ask("report").await?;
        let got = report["deliveries"].as_u64().unwrap_or(0);
        if got >= deliveries {
            return Ok(report);
        }
        if got > last.0 {
            last = (got, Instant::now());
        } else if last.1.elapsed() > DRAIN {
            return Ok(report);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_levels_grow_fourfold_within_the_generators_limit() {
        assert_eq!(concurrency_levels(32), vec![32, 128, 512]);
        assert_eq!(concurrency_levels(1000), vec![1000, 4000, 10_000]);
        assert_eq!(concurrency_levels(MAX_CONNECTIONS), vec![MAX_CONNECTIONS]);
    }
}
