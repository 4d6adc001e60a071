//! Where the CPU went during a measurement: the server's worker threads versus the load
//! generator, read from Linux's per-thread `/proc/self/task/*/schedstat` (nanoseconds on CPU).
//! It tells whether a figure was bounded by the server (its worker near 100 % of a core) or by
//! the generator sharing the machine. Elsewhere, or when `/proc` is unreadable, there is no
//! figure and the benchmark simply does not print one.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

/// actix-server names its worker threads `actix-server worker N`; the kernel keeps 15 bytes.
const WORKER_PREFIX: &str = "actix-server wo";

#[derive(Clone, Copy, Debug)]
pub struct Snapshot {
    at: Instant,
    /// CPU time of every actix-server worker thread (only the server under load is busy).
    workers: Duration,
    /// CPU time of the thread that takes the snapshot: the load generator's.
    generator: Duration,
    /// CPU time of every thread of the process.
    process: Duration,
    /// Resident memory of the process, in KiB.
    rss_kib: Option<u64>,
    machine: Option<MachineTicks>,
}

/// The whole machine's CPU counters from `/proc/stat`, in clock ticks.
#[derive(Clone, Copy, Debug)]
struct MachineTicks {
    busy: u64,
    total: u64,
    cpus: usize,
}

/// CPU used between two snapshots, as fractions of one core.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    pub server: f64,
    pub generator: f64,
    pub other: f64,
    /// Cores kept busy by everything outside this process (other programs on a shared
    /// machine), by the machine-wide counters.
    pub outside: Option<f64>,
    /// Change of the process's resident memory, in KiB.
    pub rss_growth_kib: Option<i64>,
}

/// Takes a snapshot; call it on the generator's thread.
pub fn snapshot() -> Option<Snapshot> {
    let me = fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let generator = first_ns(&me)?;
    let mut workers = Duration::ZERO;
    let mut process = Duration::ZERO;
    for entry in fs::read_dir("/proc/self/task").ok()?.flatten() {
        let dir = entry.path();
        // A thread may end between listing and reading; it then counts for nothing.
        let Some(ran) = thread_ns(&dir) else { continue };
        process += ran;
        let name = fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if name.starts_with(WORKER_PREFIX) {
            workers += ran;
        }
    }
    Some(Snapshot {
        at: Instant::now(),
        workers,
        generator,
        process,
        rss_kib: rss_kib(),
        machine: machine_ticks(),
    })
}

impl Snapshot {
    /// What was used from `self` until `later`.
    pub fn until(&self, later: &Snapshot) -> Usage {
        let wall = later
            .at
            .duration_since(self.at)
            .as_secs_f64()
            .max(f64::EPSILON);
        let share = |a: Duration, b: Duration| b.saturating_sub(a).as_secs_f64() / wall;
        let server = share(self.workers, later.workers);
        let generator = share(self.generator, later.generator);
        let process = share(self.process, later.process);
        let outside = self.machine.zip(later.machine).and_then(|(a, b)| {
            let total = b.total.checked_sub(a.total).filter(|t| *t > 0)?;
            let busy = b.busy.saturating_sub(a.busy);
            let cores = busy as f64 / total as f64 * b.cpus as f64;
            Some((cores - process).max(0.0))
        });
        Usage {
            server,
            outside,
            generator,
            other: (process - server - generator).max(0.0),
            rss_growth_kib: match (self.rss_kib, later.rss_kib) {
                (Some(a), Some(b)) => i64::try_from(b)
                    .ok()
                    .zip(i64::try_from(a).ok())
                    .map(|(b, a)| b - a),
                _ => None,
            },
        }
    }
}

fn thread_ns(dir: &Path) -> Option<Duration> {
    first_ns(&fs::read_to_string(dir.join("schedstat")).ok()?)
}

/// The first field of a `schedstat` line: time spent on the CPU, in nanoseconds.
fn first_ns(schedstat: &str) -> Option<Duration> {
    schedstat
        .split_whitespace()
        .next()?
        .parse()
        .ok()
        .map(Duration::from_nanos)
}

fn machine_ticks() -> Option<MachineTicks> {
    parse_proc_stat(&fs::read_to_string("/proc/stat").ok()?)
}

/// The aggregate `cpu` line: user nice system idle iowait irq softirq steal …; idle and
/// iowait are not busy, and guest time is already counted in user.
fn parse_proc_stat(text: &str) -> Option<MachineTicks> {
    let mut lines = text.lines();
    let first = lines.next()?;
    let mut fields = first.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let ticks: Vec<u64> = fields
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let total: u64 = ticks.iter().sum();
    let idle = ticks.get(3)? + ticks.get(4)?;
    let cpus = lines
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    Some(MachineTicks {
        busy: total - idle,
        total,
        cpus: cpus.max(1),
    })
}

fn rss_kib() -> Option<u64> {
    status_kib("VmRSS:")
}

/// A `… kB` field of `/proc/self/status` (`VmRSS:`, `VmHWM:`), in KiB.
pub fn status_kib(field: &str) -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedstat_first_field_is_nanoseconds() {
        assert_eq!(
            first_ns("419564673 135575808 119\n"),
            Some(Duration::from_nanos(419_564_673))
        );
        assert_eq!(first_ns(""), None);
        assert_eq!(first_ns("x 1 2"), None);
    }

    #[test]
    fn proc_stat_counts_busy_ticks_and_cpus() {
        let text = "cpu  100 5 50 800 20 3 2 10 0 0\ncpu0 50 2 25 400 10 1 1 5 0 0\n\
                    cpu1 50 3 25 400 10 2 1 5 0 0\nintr 1 2 3\nctxt 9\n";
        let m = parse_proc_stat(text);
        assert!(matches!(
            m,
            Some(MachineTicks {
                busy: 170,
                total: 990,
                cpus: 2
            })
        ));
        assert!(parse_proc_stat("intr 1\n").is_none());
    }
}
