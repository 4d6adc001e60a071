//! The WebSocket client side of the `hub` suite, the same code for omnihub and the bare actix-ws
//! baseline: open a socket with a bearer token, send `hello`, wait for the first text frame
//! (`welcome`), then read frames and tally the deliveries the benchmark marked.
//!
//! A delivery is a text frame holding `"message_created"` and the marker `bench:<seq>:<ns>`,
//! where `seq` numbers the inbound message (unique in the process that sent it) and `ns` is
//! the wall-clock time (Unix nanoseconds) at which it was due, so a receiver in another process
//! on the same machine can time it.
//!
//! `omnihub-bench hub-sockets ADDR PATH TOKEN COUNT` (started by the suite, not by hand) holds
//! COUNT idle sockets in a process of its own, so that their client-side memory and file
//! descriptors are not the measured server's: it prints one JSON line when they are open
//! (`{"ready","failed","error"}`), then answers each `report` line on stdin with the tally
//! (`{"deliveries","duplicates","closed","last_ns","p50_us","p99_us"}`), clears it on `reset`,
//! and exits at the end of stdin.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// Sockets being opened at once.
const CONNECTING: usize = 64;
/// How long one socket may take to open and be welcomed.
const OPEN_TIMEOUT: Duration = Duration::from_secs(60);

pub type Socket = WebSocketStream<TcpStream>;

/// Wall-clock now, in Unix nanoseconds.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// The wall-clock time of a monotonic instant (past or future), in Unix nanoseconds.
pub fn ns_at(at: std::time::Instant) -> u64 {
    let now = std::time::Instant::now();
    let base = now_ns();
    if at <= now {
        base.saturating_sub(u64::try_from((now - at).as_nanos()).unwrap_or(u64::MAX))
    } else {
        base.saturating_add(u64::try_from((at - now).as_nanos()).unwrap_or(u64::MAX))
    }
}

/// The text of marked inbound message `seq`, due at `due_ns`.
pub fn marker(seq: u64, due_ns: u64) -> String {
    format!("bench:{seq}:{due_ns} hello from the benchmark")
}

/// The `(seq, due_ns)` of a marked delivery, or `None` for any other frame.
pub fn delivery(frame: &str) -> Option<(u64, u64)> {
    if !frame.contains("\"message_created\"") {
        return None;
    }
    let rest = &frame[frame.find("bench:")? + "bench:".len()..];
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let n = digits(rest);
    let seq = rest[..n].parse().ok()?;
    let rest = rest[n..].strip_prefix(':')?;
    let due = rest[..digits(rest)].parse().ok()?;
    Some((seq, due))
}

/// Opens a socket, sends `hello` and waits for the first text frame (`welcome`).
pub async fn open(addr: SocketAddr, path: &str, token: &str) -> anyhow::Result<Socket> {
    let tcp = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    tcp.set_nodelay(true)?;
    let mut request = format!("ws://{addr}{path}").into_client_request()?;
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}"))?,
    );
    let (mut ws, _) = tokio_tungstenite::client_async(request, tcp)
        .await
        .with_context(|| format!("WebSocket handshake with {addr}{path}"))?;
    ws.send(Message::text(r#"{"v":1,"type":"hello"}"#)).await?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(_))) => return Ok(ws),
            Some(Ok(Message::Close(reason))) => bail!("closed before welcome: {reason:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => bail!("before welcome: {e}"),
            None => bail!("the socket ended before welcome"),
        }
    }
}

/// Deliveries seen by every socket of a process.
#[derive(Debug, Default)]
pub struct Tally {
    /// `(seq, latency in µs)` of every delivery, duplicates included.
    pub seen: Vec<(u64, u32)>,
    /// Deliveries of a `seq` the same socket had already received.
    pub duplicates: u64,
    /// Sockets that ended (closed by the server, or failed).
    pub closed: u64,
    /// Wall-clock time of the latest delivery, Unix ns.
    pub last_ns: u64,
}

impl Tally {
    /// Latency quantile `q` in µs over the deliveries whose seq `keep` accepts (nearest rank).
    pub fn quantile_us(&self, q: f64, keep: impl Fn(u64) -> bool) -> f64 {
        let mut lat: Vec<u32> = self
            .seen
            .iter()
            .filter(|(s, _)| keep(*s))
            .map(|(_, l)| *l)
            .collect();
        lat.sort_unstable();
        nearest_rank(&lat, q)
    }
}

pub fn nearest_rank(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Reads `ws` until it ends, recording marked deliveries in `tally`; answers nothing but the
/// pings (tungstenite queues their pongs itself and flushes them as it reads).
pub async fn read(mut ws: Socket, tally: Arc<Mutex<Tally>>) {
    let mut mine: HashSet<u64> = HashSet::new();
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let Some((seq, due)) = delivery(text.as_str()) else {
                    continue;
                };
                let now = now_ns();
                let us = u32::try_from(now.saturating_sub(due) / 1000).unwrap_or(u32::MAX);
                let repeated = !mine.insert(seq);
                let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
                t.seen.push((seq, us));
                t.duplicates += u64::from(repeated);
                t.last_ns = t.last_ns.max(now);
            }
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
            Some(Ok(_)) => {}
        }
    }
    tally.lock().unwrap_or_else(|p| p.into_inner()).closed += 1;
}

/// `omnihub-bench hub-sockets ADDR PATH TOKEN COUNT`.
pub fn child_main(args: &[String]) -> anyhow::Result<()> {
    let [addr, path, token, count] = args else {
        bail!("usage: omnihub-bench hub-sockets ADDR PATH TOKEN COUNT");
    };
    let addr: SocketAddr = addr.parse().context("ADDR")?;
    let count: usize = count.parse().context("COUNT")?;
    crate::hub::raise_open_files();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(child(addr, path.clone(), token.clone(), count))
}

async fn child(addr: SocketAddr, path: String, token: String, count: usize) -> anyhow::Result<()> {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let gate = Arc::new(tokio::sync::Semaphore::new(CONNECTING));
    let (done, mut results) = tokio::sync::mpsc::unbounded_channel::<Result<(), String>>();
    let path: Arc<str> = Arc::from(path);
    let token: Arc<str> = Arc::from(token);
    for _ in 0..count {
        let (gate, done, tally) = (gate.clone(), done.clone(), tally.clone());
        let (path, token) = (path.clone(), token.clone());
        tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let opened = tokio::time::timeout(OPEN_TIMEOUT, open(addr, &path, &token)).await;
            drop(permit);
            match opened {
                Ok(Ok(ws)) => {
                    let _ = done.send(Ok(()));
                    read(ws, tally).await;
                }
                Ok(Err(e)) => {
                    let _ = done.send(Err(format!("{e:#}")));
                }
                Err(_) => {
                    let _ = done.send(Err("timed out opening".into()));
                }
            }
        });
    }
    drop(done);
    let (mut ready, mut failed, mut error) = (0u64, 0u64, None);
    for _ in 0..count {
        match results.recv().await {
            Some(Ok(())) => ready += 1,
            Some(Err(e)) => {
                failed += 1;
                error.get_or_insert(e);
            }
            None => break,
        }
    }
    let mut out = tokio::io::stdout();
    let line = json!({"ready": ready, "failed": failed, "error": error}).to_string() + "\n";
    out.write_all(line.as_bytes()).await?;
    out.flush().await?;

    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(command) = lines.next_line().await? {
        let answer = {
            let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
            match command.trim() {
                "reset" => {
                    t.seen.clear();
                    t.duplicates = 0;
                    t.last_ns = 0;
                    json!({"reset": true})
                }
                _ => json!({
                    "deliveries": t.seen.len(),
                    "duplicates": t.duplicates,
                    "closed": t.closed,
                    "last_ns": t.last_ns,
                    "p50_us": t.quantile_us(0.5, |_| true),
                    "p99_us": t.quantile_us(0.99, |_| true),
                }),
            }
        };
        out.write_all((answer.to_string() + "\n").as_bytes())
            .await?;
        out.flush().await?;
    }
    Ok(())
}

/// Per-seq delivery counts, for loss and duplicate counting over one socket.
pub fn counts(tally: &Tally) -> HashMap<u64, u32> {
    let mut counts = HashMap::new();
    for (seq, _) in &tally.seen {
        *counts.entry(*seq).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_only_in_message_created_frames() {
        let text = marker(42, 1_700_000_000_123_456_789);
        let frame = format!(
            r#"{{"v":1,"type":"event","kind":"message_created","payload":{{"text":"{text}"}}}}"#
        );
        assert_eq!(delivery(&frame), Some((42, 1_700_000_000_123_456_789)));
        let other = frame.replace("message_created", "conversation_updated");
        assert_eq!(delivery(&other), None);
        assert_eq!(delivery(r#""message_created" bench:x"#), None);
    }

    #[test]
    fn quantiles() {
        let t = Tally {
            seen: (1..=100).map(|i| (i, i as u32)).collect(),
            ..Tally::default()
        };
        assert_eq!(t.quantile_us(0.99, |_| true), 99.0);
        assert_eq!(t.quantile_us(0.5, |s| s > 50), 75.0);
        assert!(t.quantile_us(0.5, |_| false).is_nan());
    }
}
