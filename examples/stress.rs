//! A stress harness for the echo server of `examples/shared/echo.rs`: many connections
//! at once, of five kinds, checked byte for byte, plus a phase in which the server runs
//! out of file descriptors.
//!
//! ```text
//! cargo run --release --example stress -- --duration 60 --connections 1000
//! ```
//!
//! Without `--addr` it starts the server itself, as a child process running this
//! program with `--serve` (so the server's memory and descriptors are its own), and
//! stops it at the end. With `--addr` it drives the server there; `--server-pid` names
//! that server's process for the figures and the fd-exhaustion phase.
//!
//! The client kinds, picked at random for each connection:
//! - `echo`: up to `--messages` messages of random size and random bytes, each checked;
//! - `reset`: a round trip, more data, then `SO_LINGER` 0 and close: an abrupt reset;
//! - `half-close`: data, `shutdown(Write)`, then read the whole reply up to EOF;
//! - `idle`: connect and stay silent, then talk; or, when the server's idle timeout is
//!   known, stay silent past it and expect the server to close the connection;
//! - `slow`: a slowloris, one byte at a time with pauses.
//!
//! A third of the way through, the server's `RLIMIT_NOFILE` is lowered (with
//! `prlimit`) to half the descriptors it holds, `--exhaust` extra connections
//! are opened and held for two seconds, then closed and the limit restored: the server
//! must ride it out and serve on. Needs the server's pid (and the right to change its
//! limits: the same user). Against a server whose pid is unknown, run the server with
//! a low limit instead (`ulimit -n 256`).
//!
//! Exits 1 if a byte came back wrong, any client error occurred, the server held more
//! descriptors at the end than at the start, or its resident memory grew by more than
//! `--max-rss-growth` MiB; 2 on a bad flag.

#[path = "shared/mod.rs"]
mod shared;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsFd;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use green::net::{TcpListener, TcpStream};
use shared::{cli, echo, logger, sys};

const USAGE: &str = "\
usage: stress [OPTIONS]

Drives an echo server with many connections: random messages checked byte for byte,
abrupt resets, half-closes, idle and slowloris clients, and a phase in which the server
runs out of file descriptors. Starts the server (a child process) unless --addr is
given. Exits 1 on a wrong byte, a client error, a descriptor leak or too much growth.

Options:
  --duration SECS        how long to run (default 10)
  --connections N        clients at once, each one connection at a time (default 200)
  --threads N            client threads (default 1)
  --total N              stop after N connections in all (then --duration is a limit)
  --messages N           most messages per echo connection (default 20)
  --max-size BYTES       largest message (default 65536)
  --mix KINDS            client kinds, comma-separated, from echo, reset, half-close,
                         idle, slow (default: all)
  --idle-timeout SECS    the server's idle timeout: passed to the server started here
                         (default 5); for --addr, tell it to test it (0: unknown)
  --exhaust N            extra connections for the fd-exhaustion phase (default 300,
                         0: skip the phase)
  --io-timeout SECS      a client's longest wait for the server (default 30)
  --max-rss-growth MIB   most growth of the server's RSS allowed (default 64)
  --seed N               random seed (default: from the clock)
  --addr HOST:PORT       drive the echo server there instead of starting one
  --server-pid PID       the process of the --addr server, for its figures
  --serve HOST:PORT      only serve: the echo server this harness starts; it stops
                         when its standard input closes
  -h, --help             print this help
";

/// The client kinds, their names and weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Echo,
    Reset,
    HalfClose,
    Idle,
    Slow,
}

/// A client kind, its name, and how often it is picked (its weight).
type Weighted = (Kind, &'static str, u64);

const KINDS: [Weighted; 5] = [
    (Kind::Echo, "echo", 6),
    (Kind::Reset, "reset", 1),
    (Kind::HalfClose, "half-close", 1),
    (Kind::Idle, "idle", 1),
    (Kind::Slow, "slow", 1),
];

/// A message is sent in pieces of at most this many bytes, each piece's reply read
/// before the next is sent: socket buffers never fill up in both directions.
const PIECE: usize = 8192;
/// The largest message of a half-closing client, which sends it all before reading.
const HALF_CLOSE_MAX: usize = 32 * 1024;

struct Options {
    duration: Duration,
    connections: u64,
    threads: u64,
    total: Option<u64>,
    messages: u64,
    max_size: u64,
    mix: Vec<Weighted>,
    idle_timeout: Option<Duration>,
    exhaust: u64,
    io_timeout: Duration,
    max_rss_growth_mib: u64,
    seed: u64,
    addr: Option<SocketAddr>,
    server_pid: Option<u32>,
}

/// The command line: the harness's options, or the address to serve on.
enum Mode {
    Drive(Options),
    Serve(SocketAddr, Option<Duration>),
}

fn parse_mix(text: &str) -> Vec<Weighted> {
    let mut mix: Vec<Weighted> = Vec::new();
    for name in text.split(',') {
        match KINDS.iter().find(|(_, n, _)| *n == name.trim()) {
            Some(k) if !mix.contains(k) => mix.push(*k),
            Some(_) => {}
            None => cli::fail(format!(
                "--mix: unknown kind '{name}' (kinds: echo, reset, half-close, idle, slow)"
            )),
        }
    }
    mix
}

fn parse() -> Mode {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let mut o = Options {
        duration: Duration::from_secs(10),
        connections: 200,
        threads: 1,
        total: None,
        messages: 20,
        max_size: 65536,
        mix: KINDS.to_vec(),
        idle_timeout: None,
        exhaust: 300,
        io_timeout: Duration::from_secs(30),
        max_rss_growth_mib: 64,
        seed,
        addr: None,
        server_pid: None,
    };
    let (mut duration, mut idle, mut serve) = (None, None, None);
    let mut args = cli::Args::new(USAGE);
    while let Some(arg) = args.next() {
        match arg {
            cli::Long("duration") => duration = Some(args.secs()),
            cli::Long("connections") => o.connections = args.count(1, 1_000_000),
            cli::Long("threads") => o.threads = args.count(1, 256),
            cli::Long("total") => o.total = Some(args.count(1, u64::MAX)),
            cli::Long("messages") => o.messages = args.count(1, 1_000_000),
            cli::Long("max-size") => o.max_size = args.count(1, 1 << 24),
            cli::Long("mix") => o.mix = parse_mix(&args.value::<String>()),
            cli::Long("idle-timeout") => idle = Some(args.timeout()),
            cli::Long("exhaust") => o.exhaust = args.count(0, 100_000),
            cli::Long("io-timeout") => o.io_timeout = args.secs(),
            cli::Long("max-rss-growth") => o.max_rss_growth_mib = args.count(0, 1 << 20),
            cli::Long("seed") => o.seed = args.value(),
            cli::Long("addr") => o.addr = Some(args.addr()),
            cli::Long("server-pid") => o.server_pid = Some(args.count(1, i32::MAX as u64) as u32),
            cli::Long("serve") => serve = Some(args.addr()),
            other => cli::reject(other),
        }
    }
    if let Some(addr) = serve {
        return Mode::Serve(addr, idle.unwrap_or(Some(Duration::from_secs(5))));
    }
    if o.threads > o.connections {
        cli::fail(format!(
            "--threads {} is above --connections {}",
            o.threads, o.connections
        ));
    }
    if o.server_pid.is_some() && o.addr.is_none() {
        cli::fail("--server-pid needs --addr (without it, the harness starts its server)");
    }
    // With --total alone, the count decides when to stop.
    o.duration = duration.unwrap_or(if o.total.is_some() {
        Duration::from_secs_f64(cli::MAX_SECS)
    } else {
        Duration::from_secs(10)
    });
    // The server started here gets 5 s; an --addr server's timeout is unknown.
    o.idle_timeout = idle.unwrap_or(if o.addr.is_none() {
        Some(Duration::from_secs(5))
    } else {
        None
    });
    Mode::Drive(o)
}

/// SplitMix64: small, fast, and good enough to pick sizes and bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// One of `mix`, as often as its weight says.
    fn pick(&mut self, mix: &[Weighted]) -> Weighted {
        let mut x = self.range(1, mix.iter().map(|m| m.2).sum());
        for m in mix {
            if x <= m.2 {
                return *m;
            }
            x -= m.2;
        }
        mix[0] // not reached: x is at most the sum of the weights
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

/// What the clients of one thread saw.
#[derive(Debug, Default)]
struct Tally {
    conns: BTreeMap<&'static str, u64>,
    messages: u64,
    bytes: u64,
    wrong_bytes: u64,
    /// Idle connections the server closed after its timeout, as it should.
    idle_closed: u64,
    /// Errors by client kind and error kind, with the first message of each.
    errors: BTreeMap<String, (u64, String)>,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        for (k, n) in o.conns {
            *self.conns.entry(k).or_default() += n;
        }
        self.messages += o.messages;
        self.bytes += o.bytes;
        self.wrong_bytes += o.wrong_bytes;
        self.idle_closed += o.idle_closed;
        for (k, (n, first)) in o.errors {
            self.errors.entry(k).or_insert((0, first)).0 += n;
        }
    }

    fn error_count(&self) -> u64 {
        self.errors.values().map(|(n, _)| n).sum()
    }
}

/// What the client greenlets of one thread share.
struct Ctx {
    addr: SocketAddr,
    deadline: Instant,
    /// Connections left to open, for `--total`.
    remaining: Option<Arc<AtomicU64>>,
    o: Arc<Options>,
    tally: RefCell<Tally>,
}

impl Ctx {
    /// Whether to open another connection (and count it against `--total`).
    fn go_on(&self) -> bool {
        Instant::now() < self.deadline
            && self.remaining.as_ref().is_none_or(|r| {
                r.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
            })
    }

    fn connect(&self) -> io::Result<TcpStream> {
        let c = TcpStream::connect_timeout(&self.addr, self.o.io_timeout)?;
        c.set_read_timeout(Some(self.o.io_timeout))?;
        c.set_write_timeout(Some(self.o.io_timeout))?;
        Ok(c)
    }

    /// Counts the bytes of `got` that are not `sent` upper-cased, and any missing.
    fn check(&self, sent: &[u8], got: &[u8]) {
        let wrong = sent
            .iter()
            .zip(got)
            .filter(|(s, g)| s.to_ascii_uppercase() != **g)
            .count()
            + sent.len().abs_diff(got.len());
        let mut t = self.tally.borrow_mut();
        t.wrong_bytes += wrong as u64;
        t.bytes += sent.len() as u64;
        t.messages += 1;
    }

    /// Sends `msg` piece by piece, reading and checking each piece's reply.
    fn round_trip(&self, conn: &mut TcpStream, msg: &[u8]) -> io::Result<()> {
        let mut got = Vec::new();
        for piece in msg.chunks(PIECE) {
            conn.write_all(piece)?;
            got.resize(got.len() + piece.len(), 0);
            let start = got.len() - piece.len();
            conn.read_exact(&mut got[start..])?;
        }
        self.check(msg, &got);
        Ok(())
    }

    fn random_message(&self, rng: &mut Rng, max: u64) -> Vec<u8> {
        let n = rng.range(1, max.min(self.o.max_size)) as usize;
        rng.bytes(n)
    }
}

/// `echo`: several messages of random size, then an orderly close.
fn echo_client(ctx: &Ctx, rng: &mut Rng) -> io::Result<()> {
    let mut conn = ctx.connect()?;
    for _ in 0..rng.range(1, ctx.o.messages) {
        let msg = ctx.random_message(rng, u64::MAX);
        ctx.round_trip(&mut conn, &msg)?;
    }
    Ok(())
}

/// `reset`: a round trip, then more data left unread, then an abrupt reset.
fn reset_client(ctx: &Ctx, rng: &mut Rng) -> io::Result<()> {
    let mut conn = ctx.connect()?;
    let msg = ctx.random_message(rng, 4096);
    ctx.round_trip(&mut conn, &msg)?;
    conn.write_all(&ctx.random_message(rng, 4096))?;
    sys::set_linger_zero(conn.as_fd())
    // The drop closes the socket: with linger 0 that sends RST.
}

/// `half-close`: everything, then `shutdown(Write)`, then the reply up to EOF.
fn half_close_client(ctx: &Ctx, rng: &mut Rng) -> io::Result<()> {
    let mut conn = ctx.connect()?;
    let msg = ctx.random_message(rng, HALF_CLOSE_MAX as u64);
    conn.write_all(&msg)?;
    conn.shutdown(Shutdown::Write)?;
    let mut got = Vec::with_capacity(msg.len());
    conn.read_to_end(&mut got)?;
    ctx.check(&msg, &got);
    Ok(())
}

/// `idle`: silent for a while, then a round trip; or, when the server's idle timeout
/// is known and time allows, silent past it, expecting the server to close.
fn idle_client(ctx: &Ctx, rng: &mut Rng) -> io::Result<()> {
    let mut conn = ctx.connect()?;
    let timeout = ctx.o.idle_timeout;
    let past = timeout.map(|t| t + Duration::from_secs(1));
    if let Some(wait) = past.filter(|w| rng.range(0, 1) == 0 && Instant::now() + *w < ctx.deadline)
    {
        green::sleep(wait);
        return match conn.read(&mut [0u8; 64]) {
            Ok(0) => {
                ctx.tally.borrow_mut().idle_closed += 1;
                Ok(())
            }
            Err(e) if echo::peer_gone(&e) => {
                ctx.tally.borrow_mut().idle_closed += 1;
                Ok(())
            }
            Ok(_) => Err(io::Error::new(
                ErrorKind::InvalidData,
                "data on an idle connection",
            )),
            Err(e) if e.kind() == ErrorKind::TimedOut => Err(io::Error::new(
                ErrorKind::TimedOut,
                "the server kept a connection idle past its timeout",
            )),
            Err(e) => Err(e),
        };
    }
    // Well below the timeout (a quarter of it, at most 2 s), the server must keep it.
    let most = timeout.map_or(Duration::from_secs(2), |t| {
        (t / 4).min(Duration::from_secs(2))
    });
    green::sleep(most.mul_f64(rng.range(0, 1000) as f64 / 1000.0));
    let msg = ctx.random_message(rng, 256);
    ctx.round_trip(&mut conn, &msg)
}

/// `slow`: a slowloris, one byte at a time, 20 to 150 ms apart.
fn slow_client(ctx: &Ctx, rng: &mut Rng) -> io::Result<()> {
    let mut conn = ctx.connect()?;
    let msg = ctx.random_message(rng, 16);
    let mut got = vec![0u8; msg.len()];
    for (i, b) in msg.iter().enumerate() {
        conn.write_all(&[*b])?;
        conn.read_exact(&mut got[i..=i])?;
        green::sleep(Duration::from_millis(rng.range(20, 150)));
    }
    ctx.check(&msg, &got);
    Ok(())
}

/// One client: connection after connection, of random kinds, until the end.
fn worker(ctx: Rc<Ctx>, mut rng: Rng) {
    while ctx.go_on() {
        let (kind, name, _) = rng.pick(&ctx.o.mix);
        let r = match kind {
            Kind::Echo => echo_client(&ctx, &mut rng),
            Kind::Reset => reset_client(&ctx, &mut rng),
            Kind::HalfClose => half_close_client(&ctx, &mut rng),
            Kind::Idle => idle_client(&ctx, &mut rng),
            Kind::Slow => slow_client(&ctx, &mut rng),
        };
        let mut t = ctx.tally.borrow_mut();
        *t.conns.entry(name).or_default() += 1;
        if let Err(e) = r {
            let key = format!("{name} {:?}", e.kind());
            t.errors.entry(key).or_insert((0, e.to_string())).0 += 1;
        }
    }
}

/// Runs `n` workers as greenlets of this thread until the end; returns their tally.
fn client_thread(
    o: Arc<Options>,
    addr: SocketAddr,
    start: Instant,
    n: u64,
    first: u64,
    remaining: Option<Arc<AtomicU64>>,
) -> Tally {
    let ctx = Rc::new(Ctx {
        addr,
        deadline: start + o.duration,
        remaining,
        o: o.clone(),
        tally: RefCell::default(),
    });
    let workers: Vec<_> = (first..first + n)
        .map(|i| {
            let (ctx, rng) = (
                ctx.clone(),
                Rng(o.seed ^ i.wrapping_mul(0x2545_f491_4f6c_dd1d)),
            );
            green::spawn(move || worker(ctx, rng))
        })
        .collect();
    for r in green::joinall(workers) {
        if let Err(e) = r {
            let mut t = ctx.tally.borrow_mut();
            t.errors
                .entry("worker panicked".into())
                .or_insert((0, e.to_string()))
                .0 += 1;
        }
    }
    ctx.tally.take()
}

/// The echo server as a child process (`--serve`), stopped by closing its stdin.
struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
    addr: SocketAddr,
}

impl Server {
    fn start(idle: Option<Duration>) -> Result<Server, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let idle = idle.map_or(0.0, |d| d.as_secs_f64()).to_string();
        let mut child = Command::new(exe)
            .args(["--serve", "127.0.0.1:0", "--idle-timeout", &idle])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting the server: {e}"))?;
        let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut line = String::new();
        let addr = stdout
            .read_line(&mut line)
            .ok()
            .and_then(|_| line.trim().strip_prefix("listening on ")?.parse().ok());
        match addr {
            Some(addr) => Ok(Server {
                child,
                stdout,
                addr,
            }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("the server did not start (it said {line:?})"))
            }
        }
    }

    /// Closes its stdin, waits up to 10 s for it to exit (then kills it); returns what
    /// it printed last, or why it failed.
    fn stop(mut self) -> Result<String, String> {
        drop(self.child.stdin.take());
        let until = Instant::now() + Duration::from_secs(10);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err("the server did not stop within 10 s; killed".into());
                }
            }
        };
        let mut rest = String::new();
        let _ = self.stdout.read_to_string(&mut rest);
        let said = rest.trim().to_string();
        if status.success() {
            Ok(said)
        } else {
            Err(format!("the server exited with {status}: {said}"))
        }
    }
}

/// `--serve`: the echo server alone, until stdin closes.
fn serve(addr: SocketAddr, idle_timeout: Option<Duration>) {
    let listener = match TcpListener::bind(addr).and_then(|l| Ok((l.local_addr()?, l))) {
        Ok((a, l)) => {
            println!("listening on {a}");
            Rc::new(l)
        }
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        let _ = io::copy(&mut io::stdin(), &mut io::sink());
        s.store(true, Ordering::Relaxed);
    });
    echo::close_when(listener.clone(), stop);
    let cfg = echo::ServeConfig {
        idle_timeout,
        ..Default::default()
    };
    let s = echo::serve(&listener, &cfg);
    println!(
        "server: {} connections, {} messages, {} errors, {} reset by the peer, {} closed \
         idle, {} failed accepts",
        s.conns, s.messages, s.errors, s.resets, s.idle_closed, s.accept_errors
    );
}

/// How long the fd-exhaustion phase holds its extra connections.
const EXHAUST_HOLD: Duration = Duration::from_secs(2);

/// The fd-exhaustion phase: lowers the server's descriptor limit to half what it holds
/// (a new descriptor must be numbered below the limit, so the server can then hold only
/// about that many connections), opens `n` extra connections, holds them for
/// [`EXHAUST_HOLD`], closes them and restores the limit. Returns a line saying what
/// happened (or why it was skipped); an error if the limit could not be restored.
fn exhaust(pid: u32, addr: SocketAddr, n: u64) -> Result<String, String> {
    let held_fds = match sys::proc_stats(pid) {
        Ok(s) => s.fds as u64,
        Err(e) => return Ok(format!("fd exhaustion skipped: server stats: {e}")),
    };
    let limit = held_fds / 2 + 8;
    let old = match sys::set_fd_limit(pid, limit) {
        Ok(old) => old,
        Err(e) => {
            return Ok(format!(
                "fd exhaustion skipped: cannot lower the limit: {e}"
            ));
        }
    };
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..n {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(c) => held.push(c),
            Err(_) => refused += 1,
        }
    }
    std::thread::sleep(EXHAUST_HOLD);
    let during = sys::proc_stats(pid).map(|s| s.fds).unwrap_or(0);
    drop(held);
    sys::set_fd_limit(pid, old).map_err(|e| format!("cannot restore the server's limit: {e}"))?;
    Ok(format!(
        "fd exhaustion: server limit {old} -> {limit} (it held {held_fds} fds) for {} s, \
         {n} extra connections ({refused} not connected); it held {during} fds then",
        EXHAUST_HOLD.as_secs()
    ))
}

fn stats_line(s: Option<sys::ProcStats>) -> String {
    s.map_or("?".into(), |s| {
        format!("RSS {} KiB, {} fds", s.rss_kib, s.fds)
    })
}

fn drive(o: Options) -> bool {
    if let Err(e) = sys::raise_fd_limit(o.connections + o.exhaust + 64) {
        eprintln!("{e}");
        std::process::exit(1);
    }
    let (server, addr, pid) = match o.addr {
        Some(a) => (None, a, o.server_pid),
        None => match Server::start(o.idle_timeout) {
            Ok(s) => {
                let (a, p) = (s.addr, s.child.id());
                (Some(s), a, Some(p))
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        },
    };
    println!(
        "stress: {} connections on {} thread(s) against {addr}{}, for {}, seed {}",
        o.connections,
        o.threads,
        pid.map_or(String::new(), |p| format!(" (server pid {p})")),
        match o.total {
            Some(t) => format!("{t} connections"),
            None => format!("{} s", o.duration.as_secs_f64()),
        },
        o.seed
    );
    // One round trip first, so that what the server sets up once is in the baseline.
    let warm = std::net::TcpStream::connect(addr).and_then(|mut c| {
        c.write_all(b"warm-up")?;
        c.read_exact(&mut [0u8; 7])
    });
    if let Err(e) = warm {
        eprintln!("the server at {addr} does not answer: {e}");
        if let Some(s) = server {
            let _ = s.stop();
        }
        std::process::exit(1);
    }
    std::thread::sleep(Duration::from_millis(200));
    let before = pid.and_then(|p| sys::proc_stats(p).ok());

    let o = Arc::new(o);
    let start = Instant::now();
    let remaining = o.total.map(|t| Arc::new(AtomicU64::new(t)));
    let threads: Vec<_> = (0..o.threads)
        .map(|i| {
            let n = o.connections / o.threads + u64::from(i < o.connections % o.threads);
            let first = i * (o.connections / o.threads + 1);
            let (o, remaining) = (o.clone(), remaining.clone());
            std::thread::spawn(move || client_thread(o, addr, start, n, first, remaining))
        })
        .collect();

    let mut failures = Vec::new();
    let mut phase = None;
    if o.exhaust > 0 && o.total.is_some() {
        phase = Some("fd exhaustion skipped: a --total run has no duration to place it in".into());
    } else if o.exhaust > 0 {
        match pid {
            Some(p) => {
                std::thread::sleep(o.duration / 3);
                match exhaust(p, addr, o.exhaust) {
                    Ok(line) => phase = Some(line),
                    Err(e) => failures.push(e),
                }
            }
            None => phase = Some("fd exhaustion skipped: no --server-pid".into()),
        }
    }
    let mut tally = Tally::default();
    for t in threads {
        match t.join() {
            Ok(t) => tally.merge(t),
            Err(_) => failures.push("a client thread panicked".into()),
        }
    }
    let elapsed = start.elapsed();

    // Let the server close what the clients closed, then take its figures.
    let mut after = None;
    if let (Some(p), Some(b)) = (pid, before) {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            after = sys::proc_stats(p).ok();
            if after.is_none_or(|a| a.fds <= b.fds) || Instant::now() > until {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let said = server.map(Server::stop);

    let total_conns: u64 = tally.conns.values().sum();
    println!(
        "connections: {total_conns} in {:.1} s ({})",
        elapsed.as_secs_f64(),
        tally
            .conns
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "messages: {}, bytes: {} (each checked)",
        tally.messages, tally.bytes
    );
    println!("wrong bytes: {}", tally.wrong_bytes);
    println!(
        "idle connections closed by the server: {}",
        tally.idle_closed
    );
    println!("errors: {}", tally.error_count());
    for (k, (n, first)) in &tally.errors {
        println!("  {k}: {n} (first: {first})");
    }
    if let Some(p) = &phase {
        println!("{p}");
    }
    println!("server before: {}", stats_line(before));
    println!("server after:  {}", stats_line(after));
    match &said {
        Some(Ok(line)) => println!("{line}"),
        Some(Err(e)) => failures.push(e.clone()),
        None => {}
    }

    if tally.wrong_bytes > 0 {
        failures.push(format!("{} wrong bytes", tally.wrong_bytes));
    }
    if tally.error_count() > 0 {
        failures.push(format!("{} client errors", tally.error_count()));
    }
    if tally.messages == 0 {
        failures.push("no message went through".into());
    }
    if let (Some(b), Some(a)) = (before, after) {
        if a.fds > b.fds {
            failures.push(format!(
                "the server holds {} more fds than at the start",
                a.fds - b.fds
            ));
        }
        let growth = a.rss_kib.saturating_sub(b.rss_kib);
        println!("server RSS growth: {growth} KiB");
        if growth > o.max_rss_growth_mib * 1024 {
            failures.push(format!(
                "the server's RSS grew by {growth} KiB (limit {} MiB)",
                o.max_rss_growth_mib
            ));
        }
    }
    if failures.is_empty() {
        println!("result: OK");
        true
    } else {
        println!("result: FAILED: {}", failures.join("; "));
        false
    }
}

fn main() {
    let mode = parse();
    logger::init();
    match mode {
        Mode::Serve(addr, idle) => serve(addr, idle),
        Mode::Drive(o) => {
            if !drive(o) {
                std::process::exit(1);
            }
        }
    }
}
