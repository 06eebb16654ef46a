//! Single-threaded echo server throughput and latency.
//!
//! Load generator: a hand-written mio client on its own thread pinned to CPU 1, C
//! connections in a closed loop (send a 32-byte message like the example client's "client1 5", wait
//! for the whole upper-cased reply, send again), 0.5 s warm-up then a fixed measurement
//! window. It records messages/s and the round-trip latency of every reply (exact
//! percentiles from the sorted samples).
//!
//! Servers, each on a thread pinned to CPU 0, listening on 127.0.0.1:0, upper-casing:
//! * `tokio`: tokio current-thread runtime, one task per connection.
//! * `mio`: a hand-written edge-triggered mio event loop (read until drained, write back,
//!   keep the unwritten rest and finish it on WRITABLE).
//! * `may`: the `may` green-thread runtime on one worker thread, one coroutine per
//!   connection running the same blocking-style handler as `green`.
//! * `green_raw`: one greenlet per connection, std sockets in non-blocking mode waited on
//!   through `green::__net::FdRegistration` (what `green::net` wraps), telling it about
//!   short reads (`clear_ready`) as `green::net` does.
//! * `green_monkey` (with the default feature `monkey`): gevent style, plain blocking
//!   `std::net` code in greenlets made cooperative by `green::monkey::patch_net()`.
//! * `green`: one greenlet per connection with `green::net::{TcpListener, TcpStream}`.
//!
//! Every run is a fresh child process (so the monkey patch cannot leak into other runs).
//! Servers run interleaved (tokio, mio, may, green, green_raw, green_monkey, tokio, ...)
//! for a few rounds; the table gives medians and the ratios green/tokio, green/mio and
//! green/may. Both
//! cores are busy (the client does as many syscalls per message as a server), so the
//! table also gives each side's CPU use and the server's CPU time per message
//! (`srv ns/msg`), the figure least bent by the client being saturated too; each round's
//! line also gives the server's user-mode time per message (from the `utime` ticks of
//! /proc/.../stat: 10 ms resolution, so use windows of a few seconds). Runs in which
//! another process took the CPU from the server or client thread (runqueue wait over 5% of
//! the window, from /proc/.../schedstat) are left out of the medians when possible. Each
//! server stops by itself at the end of its run (shutdown flag + a wake: tokio `Notify`,
//! mio `Waker`, a throwaway connect for green's servers).
//!
//! The `monkey` feature links libc hooks (`read`, `write`, `accept4`, ...) into the whole
//! binary, peers included; unpatched they cost one atomic load per call. To measure the
//! peers without them: `cargo bench -p green-benches --no-default-features --bench echo`.
//!
//! Run: `cargo bench -p green-benches --bench echo`. Knobs (env): `GREEN_ECHO_CONNS` (default "100,1000"),
//! `GREEN_ECHO_SECS` (measurement window, default 1.5), `GREEN_ECHO_WARMUP_MS` (default 500),
//! `GREEN_ECHO_ROUNDS` (default 2), `GREEN_ECHO_SERVERS` (default all, e.g. "tokio,mio").
//!
//! Calibration knob: `GREEN_ECHO_MIO_SPIN=K` makes the mio server do K steps of a
//! dependent multiply-add chain per message (about 1.9 ns per step here: K = 80 is about
//! 150 ns), pure user-space CPU work with no memory traffic. It shows what a given extra
//! user time per message costs the closed loop.
//! `scripts/echo_ab.sh` compares builds or knob settings in paired child processes.

#[path = "common/mod.rs"]
mod common;

use common::{Row, median, percentile_sorted, pin_to_cpu};
use mio::net::{TcpListener as MioListener, TcpStream as MioStream};
use mio::{Events, Interest, Poll, Token, Waker};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

const MSG_LEN: usize = 32;
const SERVER_CPU: usize = 0;
const CLIENT_CPU: usize = 1;
/// Linux epoll(7): for stream sockets a read that returns less than asked for means the
/// receive buffer is drained, so with edge-triggered readiness we may stop there instead
/// of paying one more `read` that returns `EWOULDBLOCK`. tokio and `green::net`'s
/// `TcpStream` do the same; the mio server, `green_raw` (through
/// `FdRegistration::clear_ready`) and the client use it.
const SHORT_READ_MEANS_DRAINED: bool = true;

// ---------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------

/// What a server hands back once it listens: its address and how to wake it for shutdown.
struct Started {
    addr: SocketAddr,
    /// The server thread's kernel tid, to read its CPU time from /proc.
    tid: i32,
    wake: Box<dyn Fn() + Send>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Server {
    Tokio,
    Mio,
    May,
    GreenRaw,
    #[cfg(feature = "monkey")]
    GreenMonkey,
    Green,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Tokio => "tokio",
            Server::Mio => "mio",
            Server::May => "may",
            Server::GreenRaw => "green_raw",
            #[cfg(feature = "monkey")]
            Server::GreenMonkey => "green_monkey",
            Server::Green => "green",
        }
    }

    fn all() -> Vec<Server> {
        vec![
            Server::Tokio,
            Server::Mio,
            Server::May,
            Server::Green,
            Server::GreenRaw,
            #[cfg(feature = "monkey")]
            Server::GreenMonkey,
        ]
    }

    fn serve(self, shutdown: Arc<AtomicBool>, started: mpsc::Sender<Started>) {
        match self {
            Server::Tokio => serve_tokio(shutdown, started),
            Server::Mio => serve_mio(shutdown, started),
            Server::May => serve_may(shutdown, started),
            Server::GreenRaw => serve_green_raw(shutdown, started),
            #[cfg(feature = "monkey")]
            Server::GreenMonkey => serve_green_monkey(shutdown, started),
            Server::Green => serve_green(shutdown, started),
        }
    }
}

fn serve_tokio(shutdown: Arc<AtomicBool>, started: mpsc::Sender<Started>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let notify = Arc::new(tokio::sync::Notify::new());
        let n2 = notify.clone();
        started
            .send(Started {
                tid: gettid(),
                addr: listener.local_addr().unwrap(),
                wake: Box::new(move || n2.notify_one()),
            })
            .unwrap();
        loop {
            let (mut s, _) = tokio::select! {
                r = listener.accept() => r.unwrap(),
                _ = notify.notified() => break,
            };
            if shutdown.load(Ordering::Acquire) {
                break;
            }
            s.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    let n = match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    buf[..n].make_ascii_uppercase();
                    if s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    // Dropping the runtime drops any connection task still alive.
}

fn serve_mio(shutdown: Arc<AtomicBool>, started: mpsc::Sender<Started>) {
    const LISTENER: Token = Token(usize::MAX - 1);
    const WAKER: Token = Token(usize::MAX - 2);
    struct Conn {
        sock: MioStream,
        out: Vec<u8>,
        out_pos: usize,
    }
    let mut poll = Poll::new().unwrap();
    let mut listener = MioListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .unwrap();
    let waker = Arc::new(Waker::new(poll.registry(), WAKER).unwrap());
    started
        .send(Started {
            tid: gettid(),
            addr: listener.local_addr().unwrap(),
            wake: Box::new(move || waker.wake().unwrap()),
        })
        .unwrap();
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 4096];
    let spin: u64 = env_or("GREEN_ECHO_MIO_SPIN", 0);

    // Write `data` (or queue it behind what is already pending). Ok(false) = connection gone.
    fn send(c: &mut Conn, data: &[u8]) -> io::Result<()> {
        if c.out_pos < c.out.len() {
            c.out.extend_from_slice(data);
            return Ok(());
        }
        c.out.clear();
        c.out_pos = 0;
        let mut off = 0;
        while off < data.len() {
            match c.sock.write(&data[off..]) {
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    c.out.extend_from_slice(&data[off..]);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
    fn flush(c: &mut Conn) -> io::Result<()> {
        while c.out_pos < c.out.len() {
            match c.sock.write(&c.out[c.out_pos..]) {
                Ok(n) => c.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    'outer: loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("poll: {e}"),
        }
        for ev in events.iter() {
            match ev.token() {
                WAKER => {
                    if shutdown.load(Ordering::Acquire) {
                        break 'outer;
                    }
                }
                LISTENER => loop {
                    match listener.accept() {
                        Ok((mut sock, _)) => {
                            sock.set_nodelay(true).unwrap();
                            let idx = free.pop().unwrap_or_else(|| {
                                conns.push(None);
                                conns.len() - 1
                            });
                            poll.registry()
                                .register(
                                    &mut sock,
                                    Token(idx),
                                    Interest::READABLE | Interest::WRITABLE,
                                )
                                .unwrap();
                            conns[idx] = Some(Conn {
                                sock,
                                out: Vec::new(),
                                out_pos: 0,
                            });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => panic!("accept: {e}"),
                    }
                },
                Token(idx) => {
                    let Some(c) = conns.get_mut(idx).and_then(Option::as_mut) else {
                        continue;
                    };
                    let mut close = false;
                    if ev.is_writable() && flush(c).is_err() {
                        close = true;
                    }
                    if ev.is_readable() && !close {
                        loop {
                            match c.sock.read(&mut buf) {
                                Ok(0) => {
                                    close = true;
                                    break;
                                }
                                Ok(n) => {
                                    spin_steps(spin);
                                    buf[..n].make_ascii_uppercase();
                                    if send(c, &buf[..n]).is_err() {
                                        close = true;
                                        break;
                                    }
                                    if SHORT_READ_MEANS_DRAINED && n < buf.len() {
                                        break;
                                    }
                                }
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                                Err(_) => {
                                    close = true;
                                    break;
                                }
                            }
                        }
                    } else if ev.is_read_closed() || ev.is_error() {
                        close = true;
                    }
                    if close {
                        let mut c = conns[idx].take().unwrap();
                        let _ = poll.registry().deregister(&mut c.sock);
                        free.push(idx);
                    }
                }
            }
        }
    }
}

/// `GREEN_ECHO_MIO_SPIN`'s work: `k` steps of a dependent multiply-add chain.
#[inline(never)]
fn spin_steps(k: u64) {
    let mut x = 1u64;
    for i in 0..k {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
    }
    std::hint::black_box(x);
}

/// may, the best-known stackful green-thread runtime for Rust, on one worker thread
/// (which inherits this thread's pinning, see `common::may_one_worker`): one coroutine
/// per connection running the same blocking-style handler as green's, the accept loop in
/// a coroutine of its own. The CPU time reported is the worker's (may also starts a timer
/// thread, idle here).
fn serve_may(shutdown: Arc<AtomicBool>, started: mpsc::Sender<Started>) {
    common::may_one_worker();
    let listener = may::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // The thread whose CPU time counts is may's worker, not this one.
    announce_accepting(&started, addr, common::may_run(gettid));
    let acceptor = common::may_spawn(move || {
        let mut handles = Vec::new();
        loop {
            let (s, _) = listener.accept().unwrap();
            if shutdown.load(Ordering::Acquire) {
                break;
            }
            s.set_nodelay(true).unwrap();
            handles.push(common::may_spawn(move || echo_upper(s)));
        }
        handles
    });
    let handles = acceptor.join().unwrap();
    // The clients closed every connection before the shutdown: all handlers end.
    for h in handles {
        h.join().unwrap();
    }
}

/// green with std sockets made cooperative by hand through `green::__net::FdRegistration`
/// (what `green::net` wraps): one greenlet per connection, the accept loop in the thread's
/// main greenlet.
fn serve_green_raw(shutdown: Arc<AtomicBool>, started: mpsc::Sender<Started>) {
    use green::__net::FdRegistration;
    use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
    // Bind through mio for its 1024 backlog (and non-blocking mode), then use std's type.
    let listener = MioListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    // SAFETY: `into_raw_fd` hands over sole ownership of an open listening socket.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(listener.into_raw_fd()) };
    let addr = listener.local_addr().unwrap();
    let lreg = FdRegistration::new(listener.as_raw_fd()).unwrap();
    announce_accepting(&started, addr, gettid());
    let mut handles = Vec::new();
    loop {
        let (s, _) = lreg
            .retry(Interest::READABLE, None, || listener.accept())
            .unwrap();
        if shutdown.load(Ordering::Acquire) {
            break;
        }
        s.set_nonblocking(true).unwrap();
        s.set_nodelay(true).unwrap();
        handles.push(green::spawn(move || {
            let reg = FdRegistration::new(s.as_raw_fd()).unwrap();
            let mut buf = [0u8; 4096];
            'conn: loop {
                let n = match reg.retry(Interest::READABLE, None, || (&s).read(&mut buf)) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if SHORT_READ_MEANS_DRAINED && n < buf.len() {
                    // Drained (as the mio server assumes): the next `retry` waits for
                    // the next edge instead of first trying a read that would fail.
                    reg.clear_ready(Interest::READABLE);
                }
                buf[..n].make_ascii_uppercase();
                let mut off = 0;
                while off < n {
                    match reg.retry(Interest::WRITABLE, None, || (&s).write(&buf[off..n])) {
                        Ok(k) => off += k,
                        Err(_) => break 'conn,
                    }
                }
            }
            drop(reg); // deregister before the socket closes
        }));
    }
    drop(lreg);
    // The clients closed every connection before the shutdown: all handlers end.
    for r in green::joinall(handles) {
        r.unwrap();
    }
}

/// gevent style: plain blocking `std::net` code in greenlets, made cooperative by
/// `green::monkey::patch_net()` (the libc hooks). The accept loop runs in a spawned
/// greenlet, one greenlet per connection.
#[cfg(feature = "monkey")]
fn serve_green_monkey(shutdown: Arc<AtomicBool>, started: mpsc::Sender<Started>) {
    green::monkey::patch_net();
    let acceptor = green::spawn(move || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        announce_accepting(&started, addr, gettid());
        let mut handles = Vec::new();
        loop {
            let (s, _) = listener.accept().unwrap();
            if shutdown.load(Ordering::Acquire) {
                break;
            }
            s.set_nodelay(true).unwrap();
            handles.push(green::spawn(move || echo_upper(s)));
        }
        handles
    });
    let handles = acceptor.join().unwrap();
    for r in green::joinall(handles) {
        r.unwrap();
    }
}

/// green::net: one greenlet per connection, the accept loop in the thread's main greenlet.
fn serve_green(shutdown: Arc<AtomicBool>, started: mpsc::Sender<Started>) {
    let listener = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    announce_accepting(&started, addr, gettid());
    let mut handles = Vec::new();
    loop {
        let (s, _) = listener.accept().unwrap();
        if shutdown.load(Ordering::Acquire) {
            break;
        }
        s.set_nodelay(true).unwrap();
        handles.push(green::spawn(move || echo_upper(s)));
    }
    drop(listener);
    // The clients closed every connection before the shutdown: all handlers end.
    for r in green::joinall(handles) {
        r.unwrap();
    }
}

/// Reports an accept-loop server as started, its CPU time to be read from thread `tid`;
/// its wake is a throwaway connection that makes the pending accept return (after which
/// the loop sees the shutdown flag).
fn announce_accepting(started: &mpsc::Sender<Started>, addr: std::net::SocketAddr, tid: i32) {
    started
        .send(Started {
            tid,
            addr,
            wake: Box::new(move || {
                let _ = std::net::TcpStream::connect(addr);
            }),
        })
        .unwrap();
}

/// The per-connection handler, blocking style: read, upper-case, write back,
/// until EOF or an error.
fn echo_upper(mut s: impl Read + Write) {
    let mut buf = [0u8; 4096];
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf[..n].make_ascii_uppercase();
        if s.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

fn gettid() -> i32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// (time run on a CPU, time spent runnable but waiting for a CPU) in ns for a thread of
/// this process, from /proc/self/task/TID/schedstat.
fn thread_sched(tid: i32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).unwrap_or_default();
    let mut it = s.split_whitespace().map(|x| x.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// User-mode CPU time in ns of a thread of this process, from the `utime` field of
/// /proc/self/task/TID/stat (clock ticks: 10 ms resolution at the usual 100 Hz).
fn thread_utime_ns(tid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3: utime is 14.
    let after = s.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after
        .split_whitespace()
        .nth(11)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * 1_000_000_000 / hz
}

/// A run is "disturbed" when the server or client thread spent more than this fraction of
/// the window runnable but waiting for its CPU (another process had it). Disturbed runs
/// are left out of the medians when the server has at least one undisturbed run.
const MAX_STEAL: f64 = 0.05;

// ---------------------------------------------------------------------------------------
// Load generator
// ---------------------------------------------------------------------------------------

struct LoadResult {
    msgs_per_sec: f64,
    /// Sorted round-trip latencies in ns, replies completed inside the window only.
    lat_ns: Vec<u32>,
    bad_replies: u64,
    /// CPU use of the server and client threads over the window (1.0 = one core busy).
    server_cpu: f64,
    /// The server thread's user-mode share of the window (tick resolution).
    server_user: f64,
    client_cpu: f64,
    /// Largest runqueue-wait fraction of the two threads over the window.
    steal: f64,
}

fn load_generator(
    addr: SocketAddr,
    server_tid: i32,
    conns: usize,
    warmup: Duration,
    window: Duration,
) -> LoadResult {
    struct Conn {
        sock: MioStream,
        msg: [u8; MSG_LEN],
        want: [u8; MSG_LEN],
        sent_at: Instant,
        wpos: usize,
        got: usize,
        rbuf: [u8; MSG_LEN],
    }
    fn write_more(c: &mut Conn) -> io::Result<()> {
        while c.wpos < MSG_LEN {
            match c.sock.write(&c.msg[c.wpos..]) {
                Ok(n) => c.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    let mut poll = Poll::new().unwrap();
    let mut cs: Vec<Conn> = Vec::with_capacity(conns);
    for i in 0..conns {
        let s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).unwrap();
        s.set_nonblocking(true).unwrap();
        let mut sock = MioStream::from_std(s);
        poll.registry()
            .register(&mut sock, Token(i), Interest::READABLE | Interest::WRITABLE)
            .unwrap();
        let mut msg = [b' '; MSG_LEN];
        let text = format!("client{i} 5");
        msg[..text.len()].copy_from_slice(text.as_bytes());
        msg[MSG_LEN - 1] = b'\n';
        let mut want = msg;
        want.make_ascii_uppercase();
        cs.push(Conn {
            sock,
            msg,
            want,
            sent_at: Instant::now(),
            wpos: 0,
            got: 0,
            rbuf: [0; MSG_LEN],
        });
    }
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + window;
    for c in cs.iter_mut() {
        c.sent_at = Instant::now();
        write_more(c).expect("first write");
    }
    let mut lat_ns: Vec<u32> = Vec::with_capacity(1 << 20);
    let mut count = 0u64;
    let mut bad = 0u64;
    let mut events = Events::with_capacity(1024);
    let my_tid = gettid();
    type Sched = (u64, u64);
    let mut cpu0: Option<(Instant, Sched, Sched, u64)> = None;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if cpu0.is_none() && now >= measure_from {
            cpu0 = Some((
                now,
                thread_sched(server_tid),
                thread_sched(my_tid),
                thread_utime_ns(server_tid),
            ));
        }
        match poll.poll(
            &mut events,
            Some((end - now).min(Duration::from_millis(50))),
        ) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("client poll: {e}"),
        }
        for ev in events.iter() {
            let c = &mut cs[ev.token().0];
            if ev.is_writable() && c.wpos < MSG_LEN {
                write_more(c).expect("client write");
            }
            if !ev.is_readable() {
                continue;
            }
            loop {
                match c.sock.read(&mut c.rbuf[c.got..]) {
                    Ok(0) => panic!("server closed a connection"),
                    Ok(n) => {
                        let asked = MSG_LEN - c.got;
                        c.got += n;
                        if c.got == MSG_LEN {
                            let now = Instant::now();
                            if c.rbuf != c.want {
                                bad += 1;
                            }
                            if now >= measure_from && now < end {
                                count += 1;
                                lat_ns.push((now - c.sent_at).as_nanos().min(u32::MAX as u128) as u32);
                            }
                            c.got = 0;
                            c.wpos = 0;
                            c.sent_at = now;
                            write_more(c).expect("client write");
                            // Closed loop: the server cannot have sent more, the socket is drained.
                            break;
                        }
                        if SHORT_READ_MEANS_DRAINED && n < asked {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => panic!("client read: {e}"),
                }
            }
        }
    }
    let (t0, s0, c0, u0) = cpu0.unwrap_or((start, (0, 0), (0, 0), 0));
    let wall = t0.elapsed().as_nanos() as f64;
    let (s1, c1) = (thread_sched(server_tid), thread_sched(my_tid));
    let server_cpu = s1.0.saturating_sub(s0.0) as f64 / wall;
    let server_user = thread_utime_ns(server_tid).saturating_sub(u0) as f64 / wall;
    let client_cpu = c1.0.saturating_sub(c0.0) as f64 / wall;
    let steal = (s1.1.saturating_sub(s0.1)).max(c1.1.saturating_sub(c0.1)) as f64 / wall;
    drop(cs); // closes every connection: the servers' connection handlers see EOF
    lat_ns.sort_unstable();
    LoadResult {
        msgs_per_sec: count as f64 / window.as_secs_f64(),
        lat_ns,
        bad_replies: bad,
        server_cpu,
        server_user,
        client_cpu,
        steal,
    }
}

// ---------------------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct RunStats {
    msgs_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
    server_cpu: f64,
    client_cpu: f64,
    /// Largest runqueue-wait fraction of the two threads over the window.
    steal: f64,
    /// The server thread's user-mode share of the window.
    server_user: f64,
}

fn run_once(server: Server, conns: usize, warmup: Duration, window: Duration) -> RunStats {
    let shutdown = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let sd = shutdown.clone();
    let server_thread = thread::Builder::new()
        .name(format!("echo-{}", server.name()))
        .spawn(move || {
            pin_to_cpu(SERVER_CPU);
            server.serve(sd, tx)
        })
        .unwrap();
    let Started { addr, tid, wake } = rx.recv().expect("server did not start");
    let client = thread::Builder::new()
        .name("echo-client".into())
        .spawn(move || {
            pin_to_cpu(CLIENT_CPU);
            load_generator(addr, tid, conns, warmup, window)
        })
        .unwrap();
    let res = client.join().expect("load generator panicked");
    shutdown.store(true, Ordering::Release);
    wake();
    server_thread.join().expect("server panicked");
    assert_eq!(res.bad_replies, 0, "{}: wrong replies", server.name());
    RunStats {
        msgs_per_sec: res.msgs_per_sec,
        p50_us: percentile_sorted(&res.lat_ns, 50.0) as f64 / 1e3,
        p99_us: percentile_sorted(&res.lat_ns, 99.0) as f64 / 1e3,
        server_cpu: res.server_cpu,
        client_cpu: res.client_cpu,
        steal: res.steal,
        server_user: res.server_user,
    }
}

/// Runs `run_once` in a fresh child process (this binary with `--child SERVER CONNS
/// WARMUP_MS WINDOW_S`): every run starts from a clean heap, and the process-wide monkey
/// patch of `green_monkey` cannot leak into the other servers' runs.
fn run_in_child(
    server: Server,
    conns: usize,
    warmup: Duration,
    window: Duration,
) -> Option<RunStats> {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--child",
            server.name(),
            &conns.to_string(),
            &warmup.as_millis().to_string(),
            &window.as_secs_f64().to_string(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find(|l| l.starts_with("RESULT "));
    match (out.status.success(), line) {
        (true, Some(line)) => {
            let f: Vec<f64> = line[7..].split(' ').map(|x| x.parse().unwrap()).collect();
            Some(RunStats {
                msgs_per_sec: f[0],
                p50_us: f[1],
                p99_us: f[2],
                server_cpu: f[3],
                client_cpu: f[4],
                steal: f[5],
                server_user: f.get(6).copied().unwrap_or(0.0),
            })
        }
        _ => {
            eprintln!(
                "{} c={conns} failed: {}\n{}",
                server.name(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            None
        }
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    common::raise_nofile_limit();
    let args: Vec<String> = std::env::args().collect();
    if args.len() >= 6 && args[1] == "--child" {
        let server = Server::all()
            .into_iter()
            .find(|s| s.name() == args[2])
            .expect("server");
        let r = run_once(
            server,
            args[3].parse().unwrap(),
            Duration::from_millis(args[4].parse().unwrap()),
            Duration::from_secs_f64(args[5].parse().unwrap()),
        );
        println!(
            "RESULT {} {} {} {} {} {} {}",
            r.msgs_per_sec, r.p50_us, r.p99_us, r.server_cpu, r.client_cpu, r.steal, r.server_user
        );
        return;
    }
    let conns_list: Vec<usize> = std::env::var("GREEN_ECHO_CONNS")
        .unwrap_or_else(|_| "100,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let window = Duration::from_secs_f64(env_or("GREEN_ECHO_SECS", 1.5));
    let warmup = Duration::from_millis(env_or("GREEN_ECHO_WARMUP_MS", 500));
    let rounds: usize = env_or("GREEN_ECHO_ROUNDS", 2);
    // `cargo test --all-targets`: a quick smoke run.
    let (conns_list, window, warmup, rounds) = if common::smoke_test() {
        (
            vec![10],
            Duration::from_millis(200),
            Duration::from_millis(100),
            1,
        )
    } else {
        (conns_list, window, warmup, rounds)
    };
    let servers: Vec<Server> = match std::env::var("GREEN_ECHO_SERVERS") {
        Ok(list) => Server::all()
            .into_iter()
            .filter(|s| list.split(',').any(|x| x.trim() == s.name()))
            .collect(),
        Err(_) => Server::all(),
    };

    println!(
        "(runs = runs used / runs made: runs where the server or client thread waited more than \
         {:.0}% of the window for its CPU are left out when an undisturbed run exists)",
        MAX_STEAL * 100.0
    );
    println!(
        "echo: {MSG_LEN}-byte messages, closed loop; server on cpu {SERVER_CPU}, client on cpu {CLIENT_CPU}; \
         {warmup:?} warm-up + {window:?} window; {rounds} rounds interleaved; medians"
    );
    let mut rows = Vec::new();
    let mut table = Vec::new();
    // Per connection count, per round: each server's run (for the paired ratios below).
    let mut by_round: Vec<(usize, Vec<Vec<Option<RunStats>>>)> = Vec::new();
    for &conns in &conns_list {
        let mut stats: Vec<Vec<RunStats>> = servers.iter().map(|_| Vec::new()).collect();
        let mut rounds_of_c: Vec<Vec<Option<RunStats>>> = Vec::new();
        for round in 0..rounds {
            rounds_of_c.push(vec![None; servers.len()]);
            for (k, &s) in servers.iter().enumerate() {
                let Some(r) = run_in_child(s, conns, warmup, window) else {
                    continue;
                };
                eprintln!(
                    "  round {round} c={conns} {:<12} {:>10.0} msg/s  p50 {:>8.1} us  p99 {:>8.1} us  cpu server {:>3.0}% (user {:>4.0} ns/msg) client {:>3.0}%  steal {:>3.0}%{}",
                    s.name(),
                    r.msgs_per_sec,
                    r.p50_us,
                    r.p99_us,
                    r.server_cpu * 100.0,
                    r.server_user * 1e9 / r.msgs_per_sec,
                    r.client_cpu * 100.0,
                    r.steal * 100.0,
                    if r.steal > MAX_STEAL {
                        "  (disturbed)"
                    } else {
                        ""
                    }
                );
                stats[k].push(r);
                rounds_of_c[round][k] = Some(r);
            }
        }
        by_round.push((conns, rounds_of_c));
        for (k, &s) in servers.iter().enumerate() {
            let clean: Vec<&RunStats> = stats[k].iter().filter(|r| r.steal <= MAX_STEAL).collect();
            let used: Vec<&RunStats> = if clean.is_empty() {
                stats[k].iter().collect()
            } else {
                clean
            };
            let runs = format!("{}/{}", used.len(), stats[k].len());
            let stats_k = &used;
            let tput = median(&stats_k.iter().map(|r| r.msgs_per_sec).collect::<Vec<_>>());
            let p50 = median(&stats_k.iter().map(|r| r.p50_us).collect::<Vec<_>>());
            let p99 = median(&stats_k.iter().map(|r| r.p99_us).collect::<Vec<_>>());
            let scpu = median(&stats_k.iter().map(|r| r.server_cpu).collect::<Vec<_>>());
            let ccpu = median(&stats_k.iter().map(|r| r.client_cpu).collect::<Vec<_>>());
            table.push((conns, s, tput, p50, p99, scpu, ccpu, runs));
            let base = k == 0;
            let v = s.name().to_string();
            rows.push(Row {
                case: format!("c{conns}_tput"),
                variant: v.clone(),
                value: tput,
                unit: "msg/s".into(),
                higher_is_better: true,
                baseline: base,
            });
            rows.push(Row {
                case: format!("c{conns}_srv_ns_per_msg"),
                variant: v.clone(),
                value: scpu * 1e9 / tput,
                unit: "ns".into(),
                higher_is_better: false,
                baseline: base,
            });
            rows.push(Row {
                case: format!("c{conns}_p50"),
                variant: v.clone(),
                value: p50,
                unit: "us".into(),
                higher_is_better: false,
                baseline: base,
            });
            rows.push(Row {
                case: format!("c{conns}_p99"),
                variant: v,
                value: p99,
                unit: "us".into(),
                higher_is_better: false,
                baseline: base,
            });
        }
    }

    println!(
        "{:>6} {:<12} {:>12} {:>10} {:>10} {:>10} {:>8} {:>8} {:>11} {:>6}",
        "conns",
        "server",
        "msg/s",
        "p50 us",
        "p99 us",
        "vs tokio",
        "srv cpu",
        "cli cpu",
        "srv ns/msg",
        "runs"
    );
    for (conns, s, tput, p50, p99, scpu, ccpu, runs) in &table {
        let (conns, s, tput, p50, p99, scpu, ccpu) = (*conns, *s, *tput, *p50, *p99, *scpu, *ccpu);
        let tokio = table
            .iter()
            .find(|r| r.0 == conns && r.1 == Server::Tokio)
            .map(|r| r.2);
        let rel = tokio.map_or(String::from("-"), |t| format!("{:.2}x", tput / t));
        println!(
            "{conns:>6} {:<12} {tput:>12.0} {p50:>10.1} {p99:>10.1} {rel:>10} {:>7.0}% {:>7.0}% {:>11.0} {runs:>6}",
            s.name(),
            scpu * 100.0,
            ccpu * 100.0,
            scpu * 1e9 / tput
        );
    }
    // Ratios for green's servers: throughput (higher is better) and server CPU time per
    // message (lower is better).
    for &conns in &conns_list {
        let get = |srv: Server| table.iter().find(|r| r.0 == conns && r.1 == srv);
        for g in servers
            .iter()
            .copied()
            .filter(|s| s.name().starts_with("green"))
        {
            let (Some(g), Some(t), Some(m)) = (get(g), get(Server::Tokio), get(Server::Mio)) else {
                continue;
            };
            let ns = |r: &(usize, Server, f64, f64, f64, f64, f64, String)| r.5 * 1e9 / r.2;
            let may = get(Server::May).map_or(String::new(), |m| {
                format!(", {}/may = {:.2}", g.1.name(), g.2 / m.2)
            });
            println!(
                "c={conns}: {}/tokio = {:.2}, {}/mio = {:.2}{may} (msg/s);  server ns/msg: {}/tokio = {:.2}, {}/mio = {:.2}",
                g.1.name(),
                g.2 / t.2,
                g.1.name(),
                g.2 / m.2,
                g.1.name(),
                ns(g) / ns(t),
                g.1.name(),
                ns(g) / ns(m)
            );
        }
    }
    print_paired(&servers, &by_round);
    common::write_results("echo", &rows);
}

/// Paired ratios: each green server against each peer *within the same round* (the two
/// runs a few seconds apart), then the median and range over the rounds where neither
/// run was disturbed. The machine's speed drifts over minutes, and a closed loop on two
/// busy cores settles into runs of different speed (the client's batch per `epoll_wait`
/// varies several-fold between runs of the same server): pairing removes the drift that
/// comparing each server's own median leaves in.
fn print_paired(servers: &[Server], by_round: &[(usize, Vec<Vec<Option<RunStats>>>)]) {
    let ns = |r: &RunStats| r.server_cpu * 1e9 / r.msgs_per_sec;
    for (conns, rounds) in by_round {
        for (gk, g) in servers.iter().enumerate() {
            if !g.name().starts_with("green") {
                continue;
            }
            for (pk, p) in servers.iter().enumerate() {
                if !matches!(p, Server::Tokio | Server::Mio | Server::May) {
                    continue;
                }
                let pairs: Vec<(f64, f64)> = rounds
                    .iter()
                    .filter_map(|r| match (r[gk], r[pk]) {
                        (Some(a), Some(b)) if a.steal <= MAX_STEAL && b.steal <= MAX_STEAL => {
                            Some((a.msgs_per_sec / b.msgs_per_sec, ns(&a) / ns(&b)))
                        }
                        _ => None,
                    })
                    .collect();
                if pairs.is_empty() {
                    continue;
                }
                let tput: Vec<f64> = pairs.iter().map(|p| p.0).collect();
                let cpu: Vec<f64> = pairs.iter().map(|p| p.1).collect();
                let range = |v: &[f64]| {
                    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    format!("[{lo:.2}-{hi:.2}]")
                };
                println!(
                    "c={conns} paired {}/{} over {} rounds: msg/s {:.3} {}, server ns/msg {:.3} {}",
                    g.name(),
                    p.name(),
                    pairs.len(),
                    median(&tput),
                    range(&tput),
                    median(&cpu),
                    range(&cpu)
                );
            }
        }
    }
}
