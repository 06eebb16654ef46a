//! The seeds' gevent echo server ("TCP服务端通过协程实现并发"), written with plain
//! `std::net::TcpListener`/`TcpStream`: no `green::net` import. `green` is used only
//! for `spawn` and `monkey::patch_all()`; after the patch, every `accept`, `read` and
//! `write` below parks its greenlet instead of blocking the thread, so one thread serves
//! all the clients. Replies are upper-cased; EOF, a reset, or a connection idle past
//! `--idle-timeout` (std's `set_read_timeout`) ends a connection.
//!
//! Run the server: `cargo run --release --example monkey_echo_server -- --addr 127.0.0.1:8080`
//! (add `--quiet` to stop printing every message, as the seeds do).
//!
//! Self-test: `cargo run --release --example monkey_echo_server -- --self-test 400
//! --duration 3` runs 400 std-client greenlets (the seeds' 400 client threads) against
//! the server in the same thread for 3 s, prints messages/s and errors, and exits.

#[path = "shared/mod.rs"]
mod shared;

use std::cell::{Cell, RefCell};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use shared::{cli, logger, sys};

const USAGE: &str = "\
usage: monkey_echo_server [OPTIONS]

The seeds' gevent echo server in plain std code, made cooperative by
green::monkey::patch_all().

Options:
  --addr HOST:PORT      address to listen on (default 127.0.0.1:8080; with
                        --self-test, a free port)
  --idle-timeout SECS   close a connection silent for SECS seconds (default 60, 0: never)
  --quiet               do not print every message
  --self-test N         run N std clients against the server in this thread, then exit
  --duration SECS       how long the self-test runs (default 3)
  -h, --help            print this help
";

/// How the server treats its connections.
#[derive(Clone, Copy)]
struct Config {
    quiet: bool,
    idle_timeout: Option<Duration>,
}

/// `talk(conn)`: echo upper-cased until EOF, a reset, or the idle timeout.
fn talk(mut conn: TcpStream, cfg: Config, live: Rc<Cell<usize>>, peak: Rc<Cell<usize>>) {
    // Replies go out at once (no Nagle delay); a silent peer is dropped after a while.
    if let Err(e) = conn
        .set_nodelay(true)
        .and_then(|()| conn.set_read_timeout(cfg.idle_timeout))
        .and_then(|()| conn.set_write_timeout(cfg.idle_timeout))
    {
        eprintln!("setting up a connection: {e}");
        return;
    }
    live.set(live.get() + 1);
    peak.set(peak.get().max(live.get()));
    let mut data = [0u8; 1024];
    loop {
        match conn.read(&mut data) {
            Ok(0) => break,
            Ok(n) => {
                if !cfg.quiet {
                    println!("{}", String::from_utf8_lossy(&data[..n]));
                }
                data[..n].make_ascii_uppercase();
                if let Err(e) = conn.write_all(&data[..n]) {
                    if !cfg.quiet {
                        println!("{e}");
                    }
                    break;
                }
            }
            // std reports an expired read timeout (SO_RCVTIMEO) as WouldBlock.
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => {
                if !cfg.quiet {
                    println!("{e}"); // except ConnectionResetError as e: print(e)
                }
                break;
            }
        }
    }
    live.set(live.get() - 1);
    // `conn` is closed here, like the seeds' `conn.close()`.
}

/// `server1()`: accept forever (or until `stop` is set), one greenlet per connection.
fn server1(server: TcpListener, cfg: Config, stop: Rc<Cell<bool>>, peak: Rc<Cell<usize>>) {
    let live = Rc::new(Cell::new(0));
    let mut failing = logger::Episode::default();
    loop {
        match server.accept() {
            Ok(_) if stop.get() => break,
            Ok((conn, _addr)) => {
                let (live, peak) = (live.clone(), peak.clone());
                // The handle is dropped: the greenlet runs on, detached.
                if let Err(e) = green::try_spawn(move || talk(conn, cfg, live, peak)) {
                    failing.error("spawn", &e);
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => {
                break; // this greenlet was killed inside `accept`
            }
            Err(e) => {
                // EMFILE and friends: the patched `accept` waited before failing, so this
                // loop does not spin; report the first of a run, and keep serving.
                failing.error("accept", &e);
            }
        }
    }
}

#[derive(Default)]
struct Stats {
    messages: Cell<u64>,
    errors: Cell<u64>,
    connected: Cell<usize>,
    failing: RefCell<logger::Episode>,
}

/// The seeds' client, as a greenlet: send `"client-i n"`, read the upper-cased reply.
fn client(i: usize, addr: SocketAddr, until: Instant, stats: Rc<Stats>) {
    let mut c = match TcpStream::connect(addr) {
        Ok(c) => c,
        Err(e) => {
            stats
                .failing
                .borrow_mut()
                .error(&format!("client {i}: connect"), &e);
            stats.errors.set(stats.errors.get() + 1);
            return;
        }
    };
    stats.connected.set(stats.connected.get() + 1);
    let mut res = [0u8; 1024];
    let mut n = 0u64;
    while Instant::now() < until {
        let data = format!("client-{i} {n}");
        let ok = c.write_all(data.as_bytes()).is_ok()
            && c.read_exact(&mut res[..data.len()]).is_ok()
            && res[..data.len()] == *data.to_ascii_uppercase().as_bytes();
        if !ok {
            stats.errors.set(stats.errors.get() + 1);
            return;
        }
        stats.messages.set(stats.messages.get() + 1);
        n += 1;
    }
}

/// Runs `clients` std clients against the server for `duration`; returns the errors.
fn self_test(
    server: TcpListener,
    addr: SocketAddr,
    cfg: Config,
    clients: usize,
    duration: Duration,
) -> u64 {
    let stop = Rc::new(Cell::new(false));
    let peak = Rc::new(Cell::new(0));
    let g1 = {
        let (stop, peak) = (stop.clone(), peak.clone());
        let cfg = Config { quiet: true, ..cfg };
        green::spawn(move || server1(server, cfg, stop, peak))
    };
    let stats = Rc::new(Stats::default());
    let start = Instant::now();
    let until = start + duration;
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let stats = stats.clone();
            green::spawn(move || client(i, addr, until, stats))
        })
        .collect();
    // Sample the thread count while everything runs.
    std::thread::sleep(duration / 2); // patched: the main greenlet parks, the hub runs
    let threads = sys::os_threads();
    for r in green::joinall(handles) {
        if let Err(e) = r {
            eprintln!("a client failed: {e}");
            stats.errors.set(stats.errors.get() + 1);
        }
    }
    let took = start.elapsed();
    // Wake the acceptor with one last connection and let it stop.
    stop.set(true);
    drop(TcpStream::connect(addr));
    if let Err(e) = g1.join() {
        eprintln!("the acceptor failed: {e}");
    }
    let m = stats.messages.get();
    println!(
        "self-test: {clients} std clients ({} connected), peak {} concurrent connections, \
         {threads} OS thread(s)",
        stats.connected.get(),
        peak.get()
    );
    println!(
        "{m} messages in {:.2} s: {:.0} messages/s, {} errors",
        took.as_secs_f64(),
        m as f64 / took.as_secs_f64(),
        stats.errors.get()
    );
    stats.errors.get()
}

fn main() {
    let mut addr = None;
    let mut cfg = Config {
        quiet: false,
        idle_timeout: Some(Duration::from_secs(60)),
    };
    let mut self_test_clients = None;
    let mut duration = Duration::from_secs(3);
    let mut args = cli::Args::new(USAGE);
    while let Some(arg) = args.next() {
        match arg {
            cli::Long("addr") => addr = Some(args.addr()),
            cli::Long("idle-timeout") => cfg.idle_timeout = args.timeout(),
            cli::Long("quiet") => cfg.quiet = true,
            cli::Long("self-test" | "clients") => {
                self_test_clients = Some(args.count(1, 1_000_000) as usize);
            }
            cli::Long("duration") => duration = args.secs(),
            other => cli::reject(other),
        }
    }
    logger::init();

    // `from gevent import monkey; monkey.patch_all()`: first thing, before any socket.
    green::monkey::patch_all();

    // The self-test picks a free port unless told otherwise.
    let port = if self_test_clients.is_some() { 0 } else { 8080 };
    let addr = addr.unwrap_or(SocketAddr::from(([127, 0, 0, 1], port)));
    let (server, addr) = match TcpListener::bind(addr).and_then(|s| {
        let a = s.local_addr()?;
        Ok((s, a))
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bind {addr}: {e}");
            std::process::exit(1)
        }
    };

    match self_test_clients {
        Some(n) => {
            if self_test(server, addr, cfg, n, duration) > 0 {
                std::process::exit(1);
            }
        }
        None => {
            println!("echo server on {addr}");
            let never = Rc::new(Cell::new(false));
            let g1 = green::spawn(move || server1(server, cfg, never, Rc::default()));
            if let Err(e) = g1.join() {
                eprintln!("the acceptor failed: {e}");
            }
        }
    }
}
