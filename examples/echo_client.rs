//! The seeds' client, with greenlets instead of 400 threads: `--conns` connections in
//! one thread, each sending "<name> <n>" and reading the upper-cased reply in a loop.
//!
//! ```text
//! cargo run --release --example echo_client -- [--addr 127.0.0.1:8080] [--conns 400]
//!     [--duration SECS | --messages N] [--verbose]
//! ```
//!
//! Stops after `--duration` seconds (default 5) or `--messages` round trips per
//! connection, then prints the rate and the errors.

#[path = "shared/mod.rs"]
mod shared;

use std::net::SocketAddr;
use std::time::Duration;

use shared::{cli, echo, logger, sys};

const USAGE: &str = "\
usage: echo_client [OPTIONS]

The seeds' 400 client threads as greenlets of one thread, against an echo server.

Options:
  --addr HOST:PORT   server address (default 127.0.0.1:8080)
  --conns N          connections, one greenlet each (default 400)
  --duration SECS    stop after SECS seconds (default 5)
  --messages N       stop each connection after N round trips instead
  --verbose          print every reply
  -h, --help         print this help
";

fn main() {
    let mut addr = SocketAddr::from(([127, 0, 0, 1], 8080));
    let mut conns = 400;
    let mut messages = None;
    let mut duration = None;
    let mut verbose = false;
    let mut args = cli::Args::new(USAGE);
    while let Some(arg) = args.next() {
        match arg {
            cli::Long("addr") => addr = args.addr(),
            cli::Long("conns") => conns = args.count(1, 1_000_000),
            cli::Long("messages") => messages = Some(args.count(1, u64::MAX)),
            cli::Long("duration") => duration = Some(args.secs()),
            cli::Long("verbose") => verbose = true,
            other => cli::reject(other),
        }
    }
    // With --messages alone, the count decides when to stop.
    let default_secs = if messages.is_some() {
        cli::MAX_SECS
    } else {
        5.0
    };
    let duration = duration.unwrap_or(Duration::from_secs_f64(default_secs));
    logger::init();
    if let Err(e) = sys::raise_fd_limit(conns + 64) {
        eprintln!("{e}");
        std::process::exit(1);
    }
    let s = echo::run_clients(addr, conns, duration, messages, "", verbose);
    println!(
        "{} connections, {} messages in {:.2} s: {:.0} messages/s, {} errors",
        s.conns,
        s.messages,
        s.elapsed.as_secs_f64(),
        s.messages as f64 / s.elapsed.as_secs_f64(),
        s.errors
    );
    if s.errors > 0 {
        std::process::exit(1);
    }
}
