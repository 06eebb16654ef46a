//! A keep-alive HTTP/1.1 "Hello, World!" server on `green::net::StreamServer`: one
//! greenlet per connection, requests parsed with `httparse`, pipelined requests
//! answered in order (see `shared/http.rs`).
//!
//! ```text
//! cargo run --release --example http_hello -- [--addr 127.0.0.1:8080] [--sleep-ms N]
//!     [--idle-timeout SECS] [--max-conns N] [--duration SECS]
//! wrk -t1 -c100 -d10s --latency http://127.0.0.1:8080/
//! ```
//!
//! `--sleep-ms N` waits N ms before each answer with a plain `std::thread::sleep`, a
//! stand-in for a database call: under the monkey patch it parks only the greenlet of
//! that connection, so 100 connections sleeping 10 ms each are served at about 10,000
//! requests per second by one thread.

#[path = "shared/mod.rs"]
mod shared;

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use green::net::StreamServer;
use shared::{cli, http, logger, sys};

const USAGE: &str = "\
usage: http_hello [OPTIONS]

A keep-alive HTTP/1.1 \"Hello, World!\" server: one greenlet per connection.

Options:
  --addr HOST:PORT      address to listen on (default 127.0.0.1:8080)
  --sleep-ms N          wait N ms before each answer, with std::thread::sleep (default 0)
  --idle-timeout SECS   close a connection silent for SECS seconds (default 60, 0: never)
  --max-conns N         serve at most N connections at once (the rest wait to be accepted)
  --duration SECS       stop after SECS seconds (giving open connections 1 s to finish)
  -h, --help            print this help
";

/// How long a stop leaves the open connections to finish.
const GRACE: Duration = Duration::from_secs(1);

fn main() {
    let mut addr = SocketAddr::from(([127, 0, 0, 1], 8080));
    let mut cfg = http::Config {
        sleep: None,
        idle_timeout: Some(Duration::from_secs(60)),
    };
    let mut max_conns = None;
    let mut duration = None;
    let mut args = cli::Args::new(USAGE);
    while let Some(arg) = args.next() {
        match arg {
            cli::Long("addr") => addr = args.addr(),
            cli::Long("sleep-ms") => {
                cfg.sleep =
                    Some(Duration::from_millis(args.count(0, 3_600_000))).filter(|d| !d.is_zero())
            }
            cli::Long("idle-timeout") => cfg.idle_timeout = args.timeout(),
            cli::Long("max-conns") => max_conns = Some(args.count(1, 1 << 32) as usize),
            cli::Long("duration") => duration = Some(args.secs()),
            other => cli::reject(other),
        }
    }
    logger::init();
    if let Err(e) = sys::raise_fd_limit(1024) {
        eprintln!("warning: {e}");
    }
    // Makes the handler's std::thread::sleep switch greenlets instead of blocking.
    #[cfg(feature = "monkey")]
    green::monkey::patch_all();

    let mut server = StreamServer::new(addr, move |conn, _peer| {
        // A reset or a timed-out write ends the connection; nothing to report.
        let _ = http::serve(conn, &cfg);
    })
    .backlog(4096);
    if let Some(n) = max_conns {
        server = server.max_connections(n);
    }
    if let Err(e) = server.start() {
        eprintln!("cannot listen on {addr}: {e}");
        std::process::exit(1);
    }
    match server.local_addr() {
        Ok(a) => println!("listening on {a}"),
        Err(e) => println!("listening ({e})"),
    }
    let _ = std::io::stdout().flush();
    if let Some(d) = duration {
        let s = server.clone();
        green::spawn(move || {
            green::sleep(d);
            s.stop(GRACE);
        });
    }
    if let Err(e) = server.serve_forever() {
        eprintln!("server failed: {e}");
        std::process::exit(1);
    }
    println!("stopped");
}
