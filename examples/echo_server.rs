//! The seeds' gevent server ("TCP服务端通过协程实现并发"), in one thread: the main
//! greenlet accepts, each connection gets a greenlet that sends back what it receives,
//! upper-cased, and ends on EOF, a reset by the peer, or when idle too long.
//!
//! ```text
//! cargo run --release --example echo_server -- [--addr 127.0.0.1:8080] [--max-conns N]
//!     [--duration SECS] [--idle-timeout SECS] [--quiet]
//! ```
//!
//! It runs until killed, or until `--max-conns` connections were served, or for
//! `--duration` seconds. `--quiet` skips printing every message (the seeds print them).

#[path = "shared/mod.rs"]
mod shared;

use std::net::SocketAddr;
use std::rc::Rc;

use green::net::TcpListener;
use shared::{cli, echo, logger, sys};

const USAGE: &str = "\
usage: echo_server [OPTIONS]

The seeds' echo server: one greenlet per connection, replies upper-cased.

Options:
  --addr HOST:PORT      address to listen on (default 127.0.0.1:8080)
  --max-conns N         stop accepting after N connections
  --duration SECS       stop accepting after SECS seconds
  --idle-timeout SECS   close a connection silent for SECS seconds (default 60, 0: never)
  --quiet               do not print every message
  -h, --help            print this help
";

fn main() {
    let mut addr = SocketAddr::from(([127, 0, 0, 1], 8080));
    let mut duration = None;
    let mut cfg = echo::ServeConfig {
        verbose: true,
        ..Default::default()
    };
    let mut args = cli::Args::new(USAGE);
    while let Some(arg) = args.next() {
        match arg {
            cli::Long("addr") => addr = args.addr(),
            cli::Long("max-conns") => cfg.max_conns = Some(args.count(1, u64::MAX)),
            cli::Long("duration") => duration = Some(args.secs()),
            cli::Long("idle-timeout") => cfg.idle_timeout = args.timeout(),
            cli::Long("quiet") => cfg.verbose = false,
            other => cli::reject(other),
        }
    }
    logger::init();
    if let Err(e) = sys::raise_fd_limit(256) {
        eprintln!("warning: {e}");
    }

    // server = socket.socket(); server.bind(...); server.listen(5)
    let server = match TcpListener::bind(addr) {
        Ok(l) => Rc::new(l),
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    match server.local_addr() {
        Ok(a) => println!("listening on {a}"),
        Err(e) => println!("listening ({e})"),
    }
    if let Some(d) = duration {
        // Close the listener after `d`: accept then fails and serve() returns.
        let s = server.clone();
        green::spawn(move || {
            green::sleep(d);
            s.close();
        });
    }
    let s = echo::serve(&server, &cfg);
    println!(
        "served {} connections, {} messages, {} errors ({} reset by the peer, {} closed idle, \
         {} failed accepts)",
        s.conns, s.messages, s.errors, s.resets, s.idle_closed, s.accept_errors
    );
}
