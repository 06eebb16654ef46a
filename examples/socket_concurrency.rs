//! The seeds' homework — "a socket server made concurrent in a single thread with
//! gevent" — with the seeds' server and their 400 clients in ONE process and ONE OS
//! thread: the server's accept loop, one greenlet per connection, and 400 client
//! greenlets, all switching on IO readiness.
//!
//! ```text
//! cargo run --release --example socket_concurrency -- [--conns 400] [--duration 5]
//! ```

#[path = "shared/mod.rs"]
mod shared;

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::time::Duration;

use green::net::TcpListener;
use shared::{cli, echo, logger, sys};

const USAGE: &str = "\
usage: socket_concurrency [OPTIONS]

The seeds' echo server and their 400 clients in one process and one OS thread; runs
for a while, prints the round trips per second, and exits.

Options:
  --conns N          client connections (default 400)
  --duration SECS    how long the clients run (default 5)
  -h, --help         print this help
";

fn main() {
    let mut conns = 400;
    let mut duration = Duration::from_secs(5);
    let mut args = cli::Args::new(USAGE);
    while let Some(arg) = args.next() {
        match arg {
            cli::Long("conns") => conns = args.count(1, 1_000_000),
            cli::Long("duration") => duration = args.secs(),
            other => cli::reject(other),
        }
    }
    logger::init();
    match sys::raise_fd_limit(2 * conns + 64) {
        Ok(n) => println!("file descriptor limit: {n}"),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
    let threads_before = sys::os_threads();
    let seen = Rc::new(RefCell::new(HashSet::new()));
    seen.borrow_mut().insert(std::thread::current().id());

    let listener = match TcpListener::bind("127.0.0.1:0") {
        Ok(l) => Rc::new(l),
        Err(e) => {
            eprintln!("bind: {e}");
            std::process::exit(1);
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("local_addr: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "server on {addr}; {conns} client greenlets for {} s, one thread",
        duration.as_secs_f64()
    );

    let (l2, seen2) = (listener.clone(), seen.clone());
    let server = green::spawn(move || {
        seen2.borrow_mut().insert(std::thread::current().id());
        echo::serve(&l2, &echo::ServeConfig::default())
    });
    let seen3 = seen.clone();
    let load = green::spawn(move || {
        seen3.borrow_mut().insert(std::thread::current().id());
        echo::run_clients(addr, conns, duration, None, "", false)
    });
    let c = match load.join() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("client load failed: {e}");
            std::process::exit(1);
        }
    };
    let threads_during = sys::os_threads();
    listener.close(); // the accept loop ends; serve() waits for the handlers
    let s = match server.join() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("server failed: {e}");
            std::process::exit(1);
        }
    };
    let errors = c.errors + s.errors + s.accept_errors;
    println!("connections served: {}", s.conns);
    println!(
        "messages: {} in {:.2} s = {:.0} messages/s (round trips; server answered {})",
        c.messages,
        c.elapsed.as_secs_f64(),
        c.messages as f64 / c.elapsed.as_secs_f64(),
        s.messages
    );
    println!("errors: {errors}");
    println!(
        "OS threads in the process: {threads_before} before, {threads_during} at the end; \
         thread ids seen by main, server and clients: {}",
        seen.borrow().len()
    );
    if errors > 0 || s.conns != conns || seen.borrow().len() != 1 {
        std::process::exit(1);
    }
}
