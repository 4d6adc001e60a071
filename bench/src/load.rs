//! A small closed-loop HTTP/1.1 load generator: N keep-alive connections over plain tokio TCP,
//! each sending one request, reading the whole response (status line, headers, a
//! `Content-Length` body) and sending the next, for a warm-up and then a measured window.
//!
//! Only `200` responses completed inside the window count towards throughput and latency.
//! Anything else (another status, a broken connection, a response it cannot frame) is an
//! error, counted and reported with the first example, and fails the figure. It deliberately
//! does no pipelining and no chunked decoding: what it measures is one request at a time per
//! connection, as an API client does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::cpu;

/// Response heads larger than this are refused rather than buffered forever.
const MAX_HEAD: usize = 64 * 1024;
/// How much of an unexpected response body an error message quotes.
const QUOTE: usize = 200;

/// One load run against one server.
#[derive(Clone)]
pub struct Load {
    pub addr: SocketAddr,
    /// The complete request, head and (empty) body, sent as is.
    pub request: Arc<[u8]>,
    pub connections: usize,
    pub warmup: Duration,
    pub measure: Duration,
    /// When set, every request is made by this function instead of `request`, from a number
    /// unique in the run and the instant it was due (see [`MakeRequest`]).
    pub make: Option<MakeRequest>,
    /// When set, an open-loop load at this many requests per second in total: request `k` is
    /// due at `start + k / rate`, spread over the connections in turn, and its latency counts
    /// from when it was due (so a server that falls behind is charged for the queue it built,
    /// with no coordinated omission). Unset: a closed loop, as fast as answers come.
    pub rate: Option<f64>,
}

/// Makes the request numbered `n` (0, 1, 2, … in the order they fall due), due at the given
/// instant.
pub type MakeRequest = Arc<dyn Fn(u64, Instant) -> Vec<u8> + Send + Sync>;

/// What a load run saw in its measured window.
#[derive(Debug)]
pub struct Outcome {
    /// `200` responses completed inside the window.
    pub completed: u64,
    /// Errors anywhere in the run, warm-up included.
    pub errors: u64,
    pub first_error: Option<String>,
    pub window: Duration,
    /// CPU use during the window, where the platform tells.
    pub cpu: Option<cpu::Usage>,
    /// Latencies of the counted responses, in microseconds, sorted.
    latencies_us: Vec<u32>,
}

impl Outcome {
    pub fn requests_per_sec(&self) -> f64 {
        self.completed as f64 / self.window.as_secs_f64()
    }

    /// The `q`-quantile (0..=1) latency by nearest rank, in milliseconds; 0 with no samples.
    pub fn latency_ms(&self, q: f64) -> f64 {
        let n = self.latencies_us.len();
        if n == 0 {
            return 0.0;
        }
        let rank = (q * n as f64).ceil() as usize;
        let idx = rank.clamp(1, n) - 1;
        f64::from(self.latencies_us[idx]) / 1000.0
    }
}

/// A response as far as the generator cares.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Runs `load` to completion: connects every connection first, then drives them all for the
/// warm-up and the measured window.
pub async fn run(load: &Load) -> anyhow::Result<Outcome> {
    let mut streams = Vec::with_capacity(load.connections);
    for _ in 0..load.connections {
        streams.push(connect(load.addr).await?);
    }
    let start = Instant::now();
    let from = start + load.warmup;
    let until = from + load.measure;
    let connections = streams.len() as u64;
    let tasks: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, stream)| {
            let plan = Plan {
                request: load.request.clone(),
                make: load.make.clone(),
                pace: load.rate.map(|rate| (start, rate, i as u64, connections)),
                from,
                until,
            };
            tokio::spawn(drive(stream, plan))
        })
        .collect();

    // This future runs on the same thread as the connections, so the snapshot's own-thread
    // figure is the generator's.
    tokio::time::sleep_until(from.into()).await;
    let before = cpu::snapshot();
    tokio::time::sleep_until(until.into()).await;
    let after = cpu::snapshot();

    let mut outcome = Outcome {
        completed: 0,
        errors: 0,
        first_error: None,
        window: load.measure,
        cpu: before.zip(after).map(|(a, b)| a.until(&b)),
        latencies_us: Vec::new(),
    };
    for task in tasks {
        let stats = task.await.context("a load connection panicked")?;
        outcome.completed += stats.completed;
        outcome.errors += stats.errors;
        if outcome.first_error.is_none() {
            outcome.first_error = stats.first_error;
        }
        outcome.latencies_us.extend(stats.latencies_us);
    }
    outcome.latencies_us.sort_unstable();
    Ok(outcome)
}

/// One request on a fresh connection, e.g. to check a route before loading it.
pub async fn fetch(addr: SocketAddr, request: &[u8]) -> anyhow::Result<Reply> {
    let mut stream = connect(addr).await?;
    let mut buf = Vec::new();
    exchange(&mut stream, request, &mut buf, true)
        .await
        .map_err(|e| anyhow::anyhow!("GET from {addr}: {e}"))
}

async fn connect(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

#[derive(Default)]
struct ConnStats {
    completed: u64,
    errors: u64,
    first_error: Option<String>,
    latencies_us: Vec<u32>,
}

impl ConnStats {
    fn error(&mut self, message: String) {
        self.errors += 1;
        self.first_error.get_or_insert(message);
    }
}

/// What one connection sends and when.
struct Plan {
    request: Arc<[u8]>,
    make: Option<MakeRequest>,
    /// Open loop: (start, total rate, this connection's index, connections).
    pace: Option<(Instant, f64, u64, u64)>,
    from: Instant,
    until: Instant,
}

async fn drive(mut stream: TcpStream, plan: Plan) -> ConnStats {
    let Plan {
        request,
        make,
        pace,
        from,
        until,
    } = plan;
    let mut stats = ConnStats::default();
    let mut buf = Vec::with_capacity(16 * 1024);
    // Closed loop: a process-wide counter numbers the requests; open loop: the schedule does.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut turn = 0u64;
    loop {
        let (number, sent) = match pace {
            Some((start, rate, index, connections)) => {
                let k = turn * connections + index;
                turn += 1;
                let due = start + Duration::from_secs_f64(k as f64 / rate);
                if due >= until {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                (k, due)
            }
            None => {
                let now = Instant::now();
                if now >= until {
                    break;
                }
                (NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed), now)
            }
        };
        let made;
        let bytes: &[u8] = match &make {
            Some(make) => {
                made = make(number, sent);
                &made
            }
            None => &request,
        };
        let reply = exchange(&mut stream, bytes, &mut buf, false).await;
        let done = Instant::now();
        match reply {
            Ok(Reply { status: 200, .. }) => {
                if done >= from && done <= until {
                    stats.completed += 1;
                    let us = done.duration_since(sent).as_micros();
                    stats
                        .latencies_us
                        .push(u32::try_from(us).unwrap_or(u32::MAX));
                }
            }
            Ok(Reply { status, body }) => {
                let quote = String::from_utf8_lossy(&body[..body.len().min(QUOTE)]).into_owned();
                stats.error(format!("status {status}: {quote}"));
            }
            Err(e) => {
                // The connection is unusable after a framing or IO error.
                stats.error(e);
                break;
            }
        }
    }
    stats
}

/// Sends `request` and reads one whole response into a [`Reply`]. Unless `keep_body`, the body
/// of a 200 is dropped (only other statuses keep it, to be quoted), so the measured loop
/// allocates nothing.
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
    keep_body: bool,
) -> Result<Reply, String> {
    stream
        .write_all(request)
        .await
        .map_err(|e| format!("write failed: {e}"))?;
    let head = loop {
        if let Some(head) = parse_head(buf)? {
            break head;
        }
        read_more(stream, buf).await?;
    };
    let total = head.head_len + head.body_len;
    while buf.len() < total {
        read_more(stream, buf).await?;
    }
    let body = if head.status == 200 && !keep_body {
        Vec::new()
    } else {
        buf[head.head_len..total].to_vec()
    };
    buf.drain(..total);
    Ok(Reply {
        status: head.status,
        body,
    })
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), String> {
    buf.reserve(8 * 1024);
    match stream.read_buf(buf).await {
        Ok(0) => Err("the server closed the connection".into()),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("read failed: {e}")),
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Head {
    status: u16,
    /// Bytes of the status line and headers, blank line included.
    head_len: usize,
    body_len: usize,
}

/// Parses the response head at the start of `buf`; `Ok(None)` while it is incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD {
            Err(format!("response head longer than {MAX_HEAD} bytes"))
        } else {
            Ok(None)
        };
    };
    let text =
        std::str::from_utf8(&buf[..end]).map_err(|_| "response head is not UTF-8".to_string())?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = parts.next().and_then(|s| s.parse::<u16>().ok());
    let status = match status {
        Some(s) if version.starts_with("HTTP/1.") && (100..1000).contains(&s) => s,
        _ => return Err(format!("bad status line `{status_line}`")),
    };
    let mut body_len = None;
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line `{line}`"))?;
        if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .trim()
                .parse()
                .map_err(|_| format!("bad Content-Length `{}`", value.trim()))?;
            body_len = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(format!("unsupported Transfer-Encoding `{}`", value.trim()));
        }
    }
    let body_len = body_len.ok_or_else(|| format!("status {status} without Content-Length"))?;
    Ok(Some(Head {
        status,
        head_len: end + 4,
        body_len,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_once_complete() {
        let raw =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse_head(&raw[..20]), Ok(None));
        let head = parse_head(raw).unwrap().unwrap();
        assert_eq!(
            head,
            Head {
                status: 200,
                head_len: raw.len() - 2,
                body_len: 2
            }
        );
        let not_found = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(parse_head(not_found).unwrap().unwrap().status, 404);
    }

    #[test]
    fn unframeable_responses_are_errors() {
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nx: y\r\n\r\n").is_err());
        assert!(parse_head(b"SPDY/3 200 OK\r\ncontent-length: 0\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 2x0 OK\r\ncontent-length: 0\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n").is_err());
        assert!(parse_head(&vec![b'a'; MAX_HEAD + 1]).is_err());
    }

    #[test]
    fn nearest_rank_percentiles() {
        let outcome = Outcome {
            completed: 100,
            errors: 0,
            first_error: None,
            window: Duration::from_secs(2),
            cpu: None,
            latencies_us: (1..=100).map(|i| i * 1000).collect(),
        };
        assert_eq!(outcome.requests_per_sec(), 50.0);
        assert_eq!(outcome.latency_ms(0.5), 50.0);
        assert_eq!(outcome.latency_ms(0.99), 99.0);
        assert_eq!(outcome.latency_ms(1.0), 100.0);
    }

    #[tokio::test]
    async fn drives_a_keep_alive_server_and_counts_only_200s() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Answers 200 to even-numbered requests on each connection and 503 to odd ones.
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut n = 0u64;
                    loop {
                        if read_more(&mut sock, &mut buf).await.is_err() {
                            return;
                        }
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            let reply: &[u8] = if n.is_multiple_of(2) {
                                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"
                            } else {
                                b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy"
                            };
                            n += 1;
                            if sock.write_all(reply).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        let request: Arc<[u8]> = Arc::from(&b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"[..]);
        let first = fetch(addr, &request).await.unwrap();
        assert_eq!((first.status, first.body.as_slice()), (200, &b"hello"[..]));
        let outcome = run(&Load {
            addr,
            request,
            connections: 2,
            warmup: Duration::from_millis(50),
            measure: Duration::from_millis(200),
            make: None,
            rate: None,
        })
        .await
        .unwrap();
        assert!(outcome.completed > 0);
        assert!(outcome.errors > 0);
        assert_eq!(outcome.first_error.as_deref(), Some("status 503: busy"));
    }
}
