//! `omnihub-bench SUITE`: omnihub's benchmarks. Each suite measures something omnihub does
//! against a baseline measured in the same process and the same run (so a slow or busy machine
//! slows both), and prints one JSON object per line on stdout:
//! `{"bench","value","unit","baseline","ratio","target","ok"}`, where `ratio` is
//! `value / baseline` and `ok` says whether it meets `target` (at least or at most it, depending
//! on the figure; `BENCHMARKS.md` says which). Progress and details go to stderr. Exit status:
//! 0 when every figure is ok, 1 when one is not or the suite failed, 2 for a usage error.
//!
//! Suites: `api` (an authenticated API GET through the whole application, against a bare
//! actix-web handler) and `hub` (webhook ingest, inbound → operator socket, idle sockets and
//! broadcast, against bare actix-web / actix-ws). `omnihub-bench list` names them. Benchmarks belong here, never as timed
//! assertions in tests; run them in release: `cargo run --release -p omnihub-bench -- api`.

mod api;
mod apps;
mod bare_hub;
mod channels;
mod cpu;
mod hub;
mod inproc;
mod load;
mod report;
mod scheduler;
mod sockets;

use std::process::ExitCode;

/// Every suite: its name and what it measures.
const SUITES: &[(&str, &str)] = &[
    (
        "api",
        "authenticated GET /api/v1/auth/me through omnihub vs a bare actix-web handler: \
         throughput and p99 latency ratios",
    ),
    (
        "channels",
        "1,000 replies to one Telegram bot against the sandbox's fake Bot API: rate, busiest \
         second overall and per chat, 429s received",
    ),
    (
        "hub",
        "webhook ingest, inbound → operator socket, memory per idle socket and broadcast to \
         idle sockets, vs bare actix-web / actix-ws",
    ),
    (
        "scheduler",
        "10,000 no-op tasks due at the same instant on SQLite and PostgreSQL: lateness p99 \
         and runs exactly once, vs a bare tokio timer loop",
    ),
];

fn usage() -> String {
    let mut text = String::from(
        "usage: omnihub-bench SUITE [OPTIONS]\n       omnihub-bench list\n\nsuites:\n",
    );
    for (name, about) in SUITES {
        text.push_str(&format!("  {name:<9} {about}\n"));
    }
    text.push_str("\noptions of `api`:\n");
    text.push_str(api::OPTIONS_HELP);
    text.push_str("\noptions of `channels`:\n");
    text.push_str(channels::OPTIONS_HELP);
    text.push_str("\noptions of `hub`:\n");
    text.push_str(hub::OPTIONS_HELP);
    text.push_str("\noptions of `scheduler`:\n");
    text.push_str(scheduler::OPTIONS_HELP);
    text
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("list") if args.len() == 1 => {
            for (name, about) in SUITES {
                println!("{name}\t{about}");
            }
            ExitCode::SUCCESS
        }
        Some("-h" | "--help" | "help") => {
            print!("{}", usage());
            ExitCode::SUCCESS
        }
        Some("api") => match api::Options::parse(&args[1..]) {
            Ok(options) => finish(api::run(&options)),
            Err(problem) => usage_error(&problem),
        },
        Some("channels") => match channels::Options::parse(&args[1..]) {
            Ok(options) => finish(channels::run(&options)),
            Err(problem) => usage_error(&problem),
        },
        Some("hub") => match hub::Options::parse(&args[1..]) {
            Ok(options) => finish(hub::run(&options)),
            Err(problem) => usage_error(&problem),
        },
        Some("scheduler") => match scheduler::Options::parse(&args[1..]) {
            Ok(options) => finish(scheduler::run(&options)),
            Err(problem) => usage_error(&problem),
        },
        // The `hub` suite's child process holding idle sockets; not for use by hand.
        Some("hub-sockets") => match sockets::child_main(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("omnihub-bench hub-sockets: {e:#}");
                ExitCode::FAILURE
            }
        },
        Some(other) => usage_error(&format!("unknown suite or command `{other}`")),
        None => usage_error("no suite given"),
    }
}

fn usage_error(problem: &str) -> ExitCode {
    eprintln!("omnihub-bench: {problem}\n\n{}", usage());
    ExitCode::from(2)
}

/// Prints the figures, one JSON object per line, and turns them into the exit status.
fn finish(result: anyhow::Result<Vec<report::Figure>>) -> ExitCode {
    match result {
        Ok(figures) => {
            for figure in &figures {
                println!("{}", figure.to_json());
            }
            if figures.iter().all(|f| f.ok) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("omnihub-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
