//! The seeds' upper-casing echo server and client, shared by the socket examples.

use std::cell::Cell;
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use green::net::{TcpListener, TcpStream};

use super::logger::Episode;

/// How long a connection may stay silent before the server closes it, unless told.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How a server runs.
#[derive(Debug, Clone, Copy)]
pub struct ServeConfig {
    /// Stop accepting after this many connections (`None`: until the listener closes).
    pub max_conns: Option<u64>,
    /// Close a connection that neither sends nor takes data for this long.
    pub idle_timeout: Option<Duration>,
    /// Print every message and every reset, as the seeds do.
    pub verbose: bool,
}

impl Default for ServeConfig {
    /// No connection limit, [`DEFAULT_IDLE_TIMEOUT`], quiet.
    fn default() -> Self {
        ServeConfig {
            max_conns: None,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            verbose: false,
        }
    }
}

/// What a server saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct ServeStats {
    pub conns: u64,
    pub messages: u64,
    /// Connections closed because they stayed idle past the timeout.
    pub idle_closed: u64,
    /// Connections the peer reset (or closed while we wrote): the peer's business.
    pub resets: u64,
    /// Other connection errors, and failed spawns.
    pub errors: u64,
    /// Failed `accept`s (out of file descriptors, say).
    pub accept_errors: u64,
}

fn update(stats: &Cell<ServeStats>, f: impl FnOnce(&mut ServeStats)) {
    let mut s = stats.get();
    f(&mut s);
    stats.set(s);
}

/// Whether `e` says the peer went away: it reset or aborted the connection, or closed
/// it while we wrote.
pub fn peer_gone(e: &io::Error) -> bool {
    match e.kind() {
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => true,
        ErrorKind::ConnectionAborted => !listener_closed(e),
        _ => false,
    }
}

/// Whether `e` is what `accept` says once the listener was closed by `close()` (a
/// kernel `ECONNABORTED` has an OS error code; the close's error has none).
fn listener_closed(e: &io::Error) -> bool {
    e.kind() == ErrorKind::ConnectionAborted && e.raw_os_error().is_none()
}

/// The seeds' `talk(conn)`: read up to 1024 bytes, send them back upper-cased, until
/// EOF. Counts the messages answered in `messages`.
fn talk(conn: &mut TcpStream, verbose: bool, messages: &mut u64) -> io::Result<()> {
    let mut buf = [0u8; 1024];
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(()); // if len(data) == 0: break
        }
        if verbose {
            println!("{}", String::from_utf8_lossy(&buf[..n]));
        }
        buf[..n].make_ascii_uppercase();
        conn.write_all(&buf[..n])?;
        *messages += 1;
    }
}

/// Serves one connection: [`talk`] with the idle timeout set for reads and writes;
/// adds what happened to `stats`. A reset by the peer ends it quietly (printed when
/// `verbose`, as the seeds' `except ConnectionResetError as e: print(e)`).
pub fn handle_connection(mut conn: TcpStream, cfg: &ServeConfig, stats: &Cell<ServeStats>) {
    let mut messages = 0;
    let r = conn
        .set_nodelay(true)
        .and_then(|()| conn.set_read_timeout(cfg.idle_timeout))
        .and_then(|()| conn.set_write_timeout(cfg.idle_timeout))
        .and_then(|()| talk(&mut conn, cfg.verbose, &mut messages));
    update(stats, |s| {
        s.messages += messages;
        match &r {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::TimedOut => s.idle_closed += 1,
            Err(e) if peer_gone(e) => s.resets += 1,
            Err(_) => s.errors += 1,
        }
    });
    if let Err(e) = r {
        if peer_gone(&e) {
            if cfg.verbose {
                println!("{e}");
            }
        } else if e.kind() != ErrorKind::TimedOut {
            log::warn!("connection {:?}: {e}", conn.peer_addr().ok());
        }
    }
    // conn.close() is the drop
}

/// The handlers still running, counted so that shutdown can wait for them while
/// nothing is kept per finished connection.
struct Live {
    count: Cell<usize>,
    none: green::Event,
}

/// One running handler; dropped when it ends, also when it is killed.
struct LiveGuard(Rc<Live>);

impl LiveGuard {
    fn new(live: &Rc<Live>) -> LiveGuard {
        live.count.set(live.count.get() + 1);
        live.none.clear();
        LiveGuard(live.clone())
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let n = self.0.count.get() - 1;
        self.0.count.set(n);
        if n == 0 {
            self.0.none.set();
        }
    }
}

/// The seeds' `server1()`: accepts connections and spawns [`handle_connection`] for
/// each, detached (its `JoinHandle` is dropped: the greenlet runs on, and nothing stays
/// behind when it ends), until `cfg.max_conns` connections were accepted or the
/// listener was closed. Then waits for the handlers and returns the totals.
///
/// Running out of file descriptors never reaches this loop: `green::net`'s `accept`
/// backs off and retries by itself (and logs one line per episode). Any other failed
/// `accept` (a connection aborted before it was accepted, say) is counted, and printed
/// once per episode of failures ([`Episode`]).
pub fn serve(listener: &TcpListener, cfg: &ServeConfig) -> ServeStats {
    let stats = Rc::new(Cell::new(ServeStats::default()));
    let live = Rc::new(Live {
        count: Cell::new(0),
        none: green::Event::new(),
    });
    live.none.set();
    let mut failing = Episode::default();
    while cfg.max_conns.is_none_or(|m| stats.get().conns < m) {
        let conn = match listener.accept() {
            Ok((conn, _)) => conn,
            Err(e) if listener_closed(&e) => break,
            Err(e) => {
                failing.error("accept", &e);
                update(&stats, |s| s.accept_errors += 1);
                continue;
            }
        };
        update(&stats, |s| s.conns += 1);
        let (st, cfg, guard) = (stats.clone(), *cfg, LiveGuard::new(&live));
        if let Err(e) = green::try_spawn(move || {
            let _guard = guard;
            handle_connection(conn, &cfg, &st);
        }) {
            // No stack for another greenlet: the connection is closed (dropped).
            failing.error("spawn", &e);
            update(&stats, |s| s.errors += 1);
        }
    }
    while live.count.get() > 0 {
        if let Err(e) = live.none.wait() {
            log::error!("waiting for {} connection handlers: {e}", live.count.get());
            break;
        }
    }
    stats.get()
}

/// Closes `listener` once another thread sets `stop`. Hubs are per thread, so a
/// greenlet of this thread looks at the flag every 20 ms.
pub fn close_when(listener: Rc<TcpListener>, stop: Arc<AtomicBool>) {
    green::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            green::sleep(Duration::from_millis(20));
        }
        listener.close();
    });
}

/// The seeds' `client()`: connects and sends "<name> <n>" for n = 0, 1, ..., reading
/// each reply, until `until` or `max_messages`. Checks every reply. Returns the number
/// of round trips.
pub fn client(
    addr: SocketAddr,
    name: &str,
    until: Instant,
    max_messages: Option<u64>,
    verbose: bool,
) -> io::Result<u64> {
    let mut conn = TcpStream::connect(addr)?;
    let mut reply = [0u8; 1024];
    let mut n = 0u64;
    while Instant::now() < until && max_messages.is_none_or(|m| n < m) {
        let data = format!("{name} {n}");
        conn.write_all(data.as_bytes())?;
        let got = &mut reply[..data.len()];
        conn.read_exact(got)?;
        if !got.eq_ignore_ascii_case(data.as_bytes()) || got.iter().any(u8::is_ascii_lowercase) {
            return Err(io::Error::new(ErrorKind::InvalidData, "wrong reply"));
        }
        if verbose {
            println!("{}", String::from_utf8_lossy(got));
        }
        n += 1;
    }
    Ok(n)
}

/// What a client load saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClientStats {
    pub conns: u64,
    pub messages: u64,
    pub errors: u64,
    pub elapsed: Duration,
}

/// Runs `conns` clients as greenlets of this thread (the seeds' 400 threads) for
/// `duration` or `max_messages` each, and waits for all of them. The first error is
/// printed; the others are counted.
pub fn run_clients(
    addr: SocketAddr,
    conns: u64,
    duration: Duration,
    max_messages: Option<u64>,
    prefix: &str,
    verbose: bool,
) -> ClientStats {
    let start = Instant::now();
    let until = start + duration;
    let mut stats = ClientStats {
        conns,
        ..ClientStats::default()
    };
    let mut handles = Vec::new();
    let mut failing = Episode::default();
    for i in 0..conns {
        let name = format!("{prefix}Greenlet-{i}");
        match green::try_spawn(move || client(addr, &name, until, max_messages, verbose)) {
            Ok(h) => handles.push(h),
            Err(e) => {
                failing.error("spawning a client", &e);
                stats.errors += 1;
            }
        }
    }
    for r in green::joinall(handles) {
        let e = match r {
            Ok(Ok(n)) => {
                stats.messages += n;
                continue;
            }
            Ok(Err(e)) => e,
            Err(e) => io::Error::other(e.to_string()),
        };
        failing.error("client", &e);
        stats.errors += 1;
    }
    stats.elapsed = start.elapsed();
    stats
}
