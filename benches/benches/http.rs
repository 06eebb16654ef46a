//! HTTP/1.1 "Hello, World!" servers under `wrk -t1 -c100 --latency`, one thread each.
//!
//! Servers, each a fresh child process (this binary with `GREEN_HTTP_CHILD=NAME`)
//! pinned to CPU 0, keep-alive, no pipelining from wrk:
//! * `green`: `examples/http_hello.rs` as it ships (this file includes its
//!   `examples/shared/http.rs`): `green::net::StreamServer`, a greenlet per connection,
//!   httparse, a 60 s idle timeout, the monkey patch on.
//! * `hyper`: hyper 1.x (`http1` only) on a tokio current-thread runtime, a task per
//!   connection (`http1::Builder::serve_connection`).
//! * `may`: `may_minihttp` on may with one worker (`may::config().set_workers(1)`).
//! * `mio`: a hand-written edge-triggered mio loop answering with green's parsing code
//!   (`shared/http.rs`'s `Input` and `Session`), so that only the runtime differs.
//! * `green_sleep`, `hyper_sleep`: the same servers waiting `GREEN_HTTP_SLEEP_MS`
//!   (10) ms before each answer (green: a monkey-patched `std::thread::sleep`; hyper:
//!   `tokio::time::sleep`): 100 connections can then make at most 100 / 10 ms = 10,000
//!   requests per second.
//!
//! wrk runs on CPU 1 (this process pins itself there; wrk inherits it). Servers run
//! interleaved (green, hyper, may, mio, green_sleep, hyper_sleep, green, ...) for a
//! few rounds; the table gives medians, the spread of requests/s over the rounds, the
//! server's CPU time per request and how busy it was (from /proc/PID/stat, 10 ms ticks:
//! a server well below 100% busy was not the bottleneck, wrk was), and the medians of
//! green's per-round ratios to each peer (which take the machine's drift out).
//!
//! Run: `cargo bench -p green-benches --bench http`. Knobs (env): `GREEN_HTTP_SECS`
//! (wrk's -d, whole seconds, default 1), `GREEN_HTTP_ROUNDS` (default 8),
//! `GREEN_HTTP_CONNS` (default 100), `GREEN_HTTP_SLEEP_MS` (default 10),
//! `GREEN_HTTP_SERVERS` (default all, e.g. "green,hyper"). `GREEN_HTTP_INSTR=1`
//! counts each server's user-space instructions per request with callgrind instead
//! (the stable figure on a noisy machine; the kernel's share is not in it). Without
//! `--bench` (as
//! `cargo test --all-targets` runs it) each server only answers two pipelined
//! requests, without wrk.

#[path = "common/mod.rs"]
mod common;

#[allow(dead_code)] // the bench uses the connection loop and the sans-IO parts
#[path = "../../examples/shared/http.rs"]
mod http;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Row, median, pin_to_cpu};

const SERVER_CPU: usize = 0;
const CLIENT_CPU: usize = 1;
/// Set in a server child: which server to run.
const CHILD_VAR: &str = "GREEN_HTTP_CHILD";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Server {
    Green,
    Hyper,
    May,
    Mio,
    GreenSleep,
    HyperSleep,
}

impl Server {
    const ALL: [Server; 6] = [
        Server::Green,
        Server::Hyper,
        Server::May,
        Server::Mio,
        Server::GreenSleep,
        Server::HyperSleep,
    ];

    fn name(self) -> &'static str {
        match self {
            Server::Green => "green",
            Server::Hyper => "hyper",
            Server::May => "may",
            Server::Mio => "mio",
            Server::GreenSleep => "green_sleep",
            Server::HyperSleep => "hyper_sleep",
        }
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn sleep_per_request() -> Duration {
    Duration::from_millis(env_or("GREEN_HTTP_SLEEP_MS", 10))
}

// ---------------------------------------------------------------------------------------
// Servers (in the child process)
// ---------------------------------------------------------------------------------------

/// Tells the parent where the server listens: one line on stdout.
fn announce(addr: SocketAddr) {
    println!("{addr}");
    let _ = io::stdout().flush();
}

fn run_server(server: Server) {
    pin_to_cpu(SERVER_CPU);
    common::raise_nofile_limit();
    // The parent ends the server by closing its stdin: a clean exit, after which
    // callgrind reports its count (a signal can leave callgrind without a word).
    std::thread::spawn(|| {
        let _ = io::stdin().read(&mut [0u8; 1]);
        std::process::exit(0);
    });
    match server {
        Server::Green => green_server(None),
        Server::GreenSleep => green_server(Some(sleep_per_request())),
        Server::Hyper => hyper_server(None),
        Server::HyperSleep => hyper_server(Some(sleep_per_request())),
        Server::May => may_server(),
        Server::Mio => mio_server(),
    }
}

/// `examples/http_hello.rs` with its default settings.
fn green_server(sleep: Option<Duration>) {
    #[cfg(feature = "monkey")]
    green::monkey::patch_all();
    let cfg = http::Config {
        sleep,
        idle_timeout: Some(Duration::from_secs(60)),
    };
    let server = green::net::StreamServer::new("127.0.0.1:0", move |conn, _| {
        let _ = http::serve(conn, &cfg);
    })
    .backlog(4096);
    server.start().expect("green: listen");
    announce(server.local_addr().expect("green: address"));
    server.serve_forever().expect("green: serve");
}

fn hyper_server(sleep: Option<Duration>) {
    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::header::{CONTENT_TYPE, HeaderValue};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Request, Response, body::Incoming};
    use hyper_util::rt::TokioIo;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("hyper: listen");
        announce(listener.local_addr().expect("hyper: address"));
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let hello = service_fn(move |_req: Request<Incoming>| async move {
                    if let Some(d) = sleep {
                        tokio::time::sleep(d).await;
                    }
                    let mut rsp = Response::new(Full::new(Bytes::from_static(http::BODY)));
                    rsp.headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                    Ok::<_, std::convert::Infallible>(rsp)
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), hello)
                    .await;
            });
        }
    });
}

fn may_server() {
    use may_minihttp::{HttpServer, HttpService, Request, Response};

    #[derive(Clone)]
    struct Hello;

    impl HttpService for Hello {
        fn call(&mut self, _req: Request, rsp: &mut Response) -> io::Result<()> {
            rsp.header("Content-Type: text/plain");
            rsp.body("Hello, World!");
            Ok(())
        }
    }

    common::may_one_worker();
    // may_minihttp binds by itself and does not tell the port: take a free one.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("may: a free port");
    let server = HttpServer(Hello).start(addr).expect("may: listen");
    announce(addr);
    let _ = server.join();
}

/// The hand-written mio loop: edge-triggered, one buffer pair per connection.
fn mio_server() {
    use mio::net::{TcpListener, TcpStream};
    use mio::{Events, Interest, Poll, Token};

    struct Conn {
        sock: TcpStream,
        input: http::Input,
        session: http::Session,
        out: Vec<u8>,
        written: usize,
        closing: bool,
    }

    impl Conn {
        /// Writes what is pending: `Ok(true)` when all of it is written.
        fn flush(&mut self) -> io::Result<bool> {
            while self.written < self.out.len() {
                match self.sock.write(&self.out[self.written..]) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => self.written += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            self.out.clear();
            self.written = 0;
            Ok(true)
        }

        /// Handles a readiness event: reads, answers, writes. Returns true to close.
        fn ready(&mut self) -> bool {
            match self.flush() {
                Ok(true) if self.closing => return true,
                Ok(true) => {}
                Ok(false) => return false,
                Err(_) => return true,
            }
            loop {
                let Some(space) = self.input.space() else {
                    self.out.extend_from_slice(http::TOO_LARGE);
                    self.closing = true;
                    return self.flush().unwrap_or(true);
                };
                let room = space.len();
                match self.sock.read(space) {
                    Ok(0) => return true,
                    Ok(n) => {
                        self.input.filled(n);
                        self.closing = self.session.answer(&mut self.input, &mut self.out, || {});
                        match self.flush() {
                            Ok(true) if self.closing => return true,
                            Ok(true) => {}
                            Ok(false) => return false,
                            Err(_) => return true,
                        }
                        // A short read drained the socket (Linux stream sockets).
                        if n < room {
                            return false;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return true,
                }
            }
        }
    }

    const LISTENER: Token = Token(usize::MAX);
    let mut poll = Poll::new().expect("mio: poll");
    let mut listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).expect("mio: listen");
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .expect("mio: register");
    announce(listener.local_addr().expect("mio: address"));
    let mut conns: slab::Slab<Conn> = slab::Slab::new();
    let mut events = Events::with_capacity(1024);
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            assert_eq!(e.kind(), io::ErrorKind::Interrupted, "mio: poll: {e}");
            continue;
        }
        for ev in &events {
            if ev.token() == LISTENER {
                while let Ok((mut sock, _)) = listener.accept() {
                    let _ = sock.set_nodelay(true);
                    let entry = conns.vacant_entry();
                    let token = Token(entry.key());
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if poll.registry().register(&mut sock, token, interest).is_ok() {
                        entry.insert(Conn {
                            sock,
                            input: http::Input::default(),
                            session: http::Session::default(),
                            out: Vec::with_capacity(1024),
                            written: 0,
                            closing: false,
                        });
                    }
                }
                continue;
            }
            let key = ev.token().0;
            if conns.get_mut(key).is_some_and(Conn::ready) {
                let mut c = conns.remove(key);
                let _ = poll.registry().deregister(&mut c.sock);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The parent: children, wrk, figures
// ---------------------------------------------------------------------------------------

/// A server child, killed when dropped.
struct ServerProcess {
    child: Child,
    addr: SocketAddr,
}

impl ServerProcess {
    fn start(server: Server) -> ServerProcess {
        let exe = std::env::current_exe().expect("the bench's own path");
        ServerProcess::spawn(server, Command::new(exe), Stdio::inherit())
    }

    /// The server under callgrind, its stderr (where callgrind's total goes) piped.
    fn start_under_callgrind(server: Server) -> ServerProcess {
        let exe = std::env::current_exe().expect("the bench's own path");
        let mut cmd = Command::new("valgrind");
        cmd.args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
            .arg(exe);
        ServerProcess::spawn(server, cmd, Stdio::piped())
    }

    fn spawn(server: Server, mut cmd: Command, stderr: Stdio) -> ServerProcess {
        let mut child = cmd
            .env(CHILD_VAR, server.name())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start a server child");
        let mut line = String::new();
        let stdout = child.stdout.as_mut().expect("piped stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the server's address");
        let addr = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{}: said {line:?}", server.name()));
        ServerProcess { child, addr }
    }

    /// CPU time the child has used so far (user + system, all threads), from
    /// /proc/PID/stat in clock ticks.
    fn cpu(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // The fields after the command name, which is in parentheses.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        // utime and stime are fields 14 and 15 of the whole line (11 and 12 here).
        let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
        // SAFETY: sysconf takes a constant name and has no memory effects.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Duration::from_nanos(ticks * 1_000_000_000 / hz)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One wrk run's figures.
#[derive(Clone, Copy, Debug)]
struct Run {
    rps: f64,
    p50: Duration,
    p99: Duration,
    /// The server's CPU time per request.
    cpu_per_req: Duration,
    /// The server's CPU time over the run's wall time: near 1, the server was the
    /// bottleneck; well below, wrk was (or another process took wrk's CPU).
    busy: f64,
    /// Socket errors and non-2xx answers that wrk reported.
    errors: u64,
}

/// `1.03ms`, `510.10us`, `2.00s`, `1.00m` as wrk prints latencies.
fn parse_latency(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().ok()?;
    let secs = match unit {
        "us" => v / 1e6,
        "ms" => v / 1e3,
        "s" => v,
        "m" => v * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

/// Reads wrk's output: requests/s, the 50th and 99th percentiles, errors.
fn parse_wrk(out: &str) -> Option<(f64, Duration, Duration, u64, u64)> {
    let (mut rps, mut p50, mut p99, mut requests, mut errors) = (None, None, None, None, 0);
    for line in out.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v] => rps = v.parse().ok(),
            ["50%", v] => p50 = parse_latency(v),
            ["99%", v] => p99 = parse_latency(v),
            [n, "requests", "in", ..] => requests = n.parse().ok(),
            ["Socket", "errors:", rest @ ..] => {
                errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            ["Non-2xx", "or", "3xx", "responses:", n] => errors += n.parse().unwrap_or(0),
            _ => {}
        }
    }
    Some((rps?, p50?, p99?, requests?, errors))
}

/// Runs wrk against `server` for `secs` seconds.
fn measure(server: Server, conns: usize, secs: u64) -> Option<Run> {
    let child = ServerProcess::start(server);
    let url = format!("http://{}/", child.addr);
    let (cpu0, t0) = (child.cpu(), Instant::now());
    let out = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{conns}"),
            &format!("-d{secs}s"),
            "--latency",
        ])
        .arg(&url)
        .stdin(Stdio::null())
        .output();
    let (cpu, wall) = (child.cpu().saturating_sub(cpu0), t0.elapsed());
    drop(child);
    let out = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => {
            eprintln!(
                "{}: wrk failed: {}",
                server.name(),
                String::from_utf8_lossy(&o.stderr)
            );
            return None;
        }
        Err(e) => {
            eprintln!("cannot run wrk: {e}");
            return None;
        }
    };
    let Some((rps, p50, p99, requests, errors)) = parse_wrk(&out) else {
        eprintln!("{}: cannot read wrk's output:\n{out}", server.name());
        return None;
    };
    Some(Run {
        rps,
        p50,
        p99,
        cpu_per_req: cpu / requests.max(1) as u32,
        busy: cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9),
        errors,
    })
}

/// Ends a server started under callgrind by closing its stdin (callgrind then prints
/// its total) and returns the user-space instructions it counted.
fn callgrind_total(mut p: ServerProcess) -> Option<u64> {
    drop(p.child.stdin.take());
    let mut err = String::new();
    p.child.stderr.take()?.read_to_string(&mut err).ok()?;
    let total = err
        .lines()
        .find(|l| l.contains("Collected :"))
        .and_then(|l| l.rsplit(':').next()?.trim().parse().ok());
    if total.is_none() {
        let tail: Vec<&str> = err.lines().rev().take(30).collect();
        eprintln!(
            "callgrind said:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    total
}

/// `GREEN_HTTP_INSTR=1`: user-space instructions per request of each server, from
/// callgrind: (Ir of a run under wrk - Ir of a run without requests) / requests.
fn instructions(servers: &[Server], conns: usize) {
    if Command::new("valgrind").arg("--version").output().is_err() {
        println!("http instructions: valgrind not found, skipped");
        return;
    }
    println!(
        "http: callgrind, user-space instructions per request under wrk -t1 -c{conns} -d5s \
         (start-up and tear-down subtracted)"
    );
    let awake = servers
        .iter()
        .filter(|s| !matches!(s, Server::GreenSleep | Server::HyperSleep));
    for &s in awake {
        let idle = callgrind_total(ServerProcess::start_under_callgrind(s));
        let p = ServerProcess::start_under_callgrind(s);
        let out = Command::new("wrk")
            .args(["-t1", &format!("-c{conns}"), "-d5s"])
            .arg(format!("http://{}/", p.addr))
            .output();
        let loaded = callgrind_total(p);
        let requests = out.ok().and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.lines().find_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                match w.as_slice() {
                    [n, "requests", "in", ..] => n.parse::<u64>().ok(),
                    _ => None,
                }
            })
        });
        match (idle, loaded, requests) {
            (Some(i), Some(l), Some(n)) if n > 0 => println!(
                "{:12} {:>8.0} instructions per request ({n} requests)",
                s.name(),
                (l as f64 - i as f64) / n as f64
            ),
            other => println!("{:12} failed: {other:?}", s.name()),
        }
    }
}

/// Without `--bench`: each server answers two pipelined requests on one connection.
fn smoke(server: Server) {
    let child = ServerProcess::start(server);
    let mut c = std::net::TcpStream::connect(child.addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    c.write_all(format!("{get}{get}").as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while got.windows(13).filter(|w| w == &http::BODY).count() < 2 {
        let n = c.read(&mut buf).expect("read the answers");
        assert!(n > 0, "{}: closed early: {got:?}", server.name());
        got.extend_from_slice(&buf[..n]);
    }
    println!("{}: answers two pipelined requests", server.name());
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// The pairs whose per-round ratios the bench reports: green and a peer.
const PAIRS: [(Server, Server); 4] = [
    (Server::Green, Server::Hyper),
    (Server::Green, Server::May),
    (Server::Green, Server::Mio),
    (Server::GreenSleep, Server::HyperSleep),
];

fn main() {
    if let Ok(name) = std::env::var(CHILD_VAR) {
        let server = Server::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .unwrap_or_else(|| panic!("no server {name:?}"));
        run_server(server);
        return;
    }
    let servers: Vec<Server> = match std::env::var("GREEN_HTTP_SERVERS") {
        Ok(list) => Server::ALL
            .into_iter()
            .filter(|s| list.split(',').any(|x| x.trim() == s.name()))
            .collect(),
        Err(_) => Server::ALL.to_vec(),
    };
    if common::smoke_test() {
        servers.iter().copied().for_each(smoke);
        return;
    }
    let secs: u64 = env_or("GREEN_HTTP_SECS", 1).max(1);
    let rounds: usize = env_or("GREEN_HTTP_ROUNDS", 8).max(1);
    let conns: usize = env_or("GREEN_HTTP_CONNS", 100).max(1);
    pin_to_cpu(CLIENT_CPU);
    if env_or("GREEN_HTTP_INSTR", 0) == 1 {
        instructions(&servers, conns);
        return;
    }
    println!(
        "http: wrk -t1 -c{conns} -d{secs}s --latency on cpu {CLIENT_CPU}, each server alone on \
         cpu {SERVER_CPU}; {rounds} rounds interleaved; sleeping servers wait {:?} per request",
        sleep_per_request()
    );
    let started = Instant::now();
    // runs[round][server]
    let mut runs: Vec<Vec<Option<Run>>> = Vec::new();
    for round in 1..=rounds {
        let mut this = Vec::new();
        for &s in &servers {
            let r = measure(s, conns, secs);
            if let Some(r) = r {
                println!(
                    "round {round} {:12} {:>9.0} req/s  p50 {:>9}  p99 {:>9}  server: {:>5.2} us \
                     CPU/req, {:>3.0}% busy{}",
                    s.name(),
                    r.rps,
                    ms(r.p50),
                    ms(r.p99),
                    r.cpu_per_req.as_secs_f64() * 1e6,
                    r.busy * 100.0,
                    if r.errors > 0 {
                        format!("  ({} errors)", r.errors)
                    } else {
                        String::new()
                    }
                );
            }
            this.push(r);
        }
        runs.push(this);
    }
    println!("\n({} rounds in {:.0?})", rounds, started.elapsed());
    println!(
        "{:12} {:>9} {:>15} {:>9} {:>9} {:>10} {:>5}",
        "server", "req/s", "min..max", "p50", "p99", "us CPU/req", "busy"
    );
    let column = |i: usize| runs.iter().filter_map(move |r| r[i]);
    let mut rows = Vec::new();
    for (i, s) in servers.iter().enumerate() {
        let rs: Vec<Run> = column(i).collect();
        if rs.is_empty() {
            continue;
        }
        let pick = |f: fn(&Run) -> f64| median(&rs.iter().map(f).collect::<Vec<_>>());
        let rps = pick(|r| r.rps);
        let lo = rs.iter().map(|r| r.rps).fold(f64::INFINITY, f64::min);
        let hi = rs.iter().map(|r| r.rps).fold(0.0, f64::max);
        println!(
            "{:12} {:>9.0} {:>15} {:>9} {:>9} {:>10.2} {:>4.0}%",
            s.name(),
            rps,
            format!("{lo:.0}..{hi:.0}"),
            ms(Duration::from_secs_f64(pick(|r| r.p50.as_secs_f64()))),
            ms(Duration::from_secs_f64(pick(|r| r.p99.as_secs_f64()))),
            pick(|r| r.cpu_per_req.as_secs_f64()) * 1e6,
            pick(|r| r.busy) * 100.0
        );
        let case = if matches!(s, Server::GreenSleep | Server::HyperSleep) {
            "sleep"
        } else {
            "hello"
        };
        rows.push(Row {
            case: format!("{case}_c{conns}"),
            variant: s.name().into(),
            value: rps,
            unit: "req/s".into(),
            higher_is_better: true,
            baseline: matches!(s, Server::Hyper | Server::HyperSleep),
        });
    }
    println!("\nmedians of the per-round ratios (green's over the peer's, same round):");
    for (ours, peer) in PAIRS {
        let (Some(a), Some(b)) = (
            servers.iter().position(|&x| x == ours),
            servers.iter().position(|&x| x == peer),
        ) else {
            continue;
        };
        let pairs: Vec<(Run, Run)> = runs.iter().filter_map(|r| Some((r[a]?, r[b]?))).collect();
        let ratio = |f: fn(&Run) -> f64| {
            median(&pairs.iter().map(|(x, y)| f(x) / f(y)).collect::<Vec<_>>())
        };
        let rps: Vec<f64> = pairs.iter().map(|(x, y)| x.rps / y.rps).collect();
        let lo = rps.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = rps.iter().copied().fold(0.0, f64::max);
        println!(
            "{}/{}: req/s {:.3}x ({lo:.2}..{hi:.2}), p99 {:.2}x, server CPU per request {:.3}x \
             ({} rounds)",
            ours.name(),
            peer.name(),
            ratio(|r| r.rps),
            ratio(|r| r.p99.as_secs_f64()),
            ratio(|r| r.cpu_per_req.as_secs_f64()),
            pairs.len()
        );
    }
    common::write_results("http", &rows);
}
