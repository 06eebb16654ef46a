//! The fairness budget: a greenlet whose socket operations never have to wait (a peer
//! that sends and reads flat out) still lets the other greenlets of its hub run.
//!
//! Each test echoes for [`BUSY`] to a peer on other threads that writes and reads as
//! fast as it can, beside a greenlet that ticks every millisecond. Without the budget
//! the echo greenlet keeps the hub until one of its reads or writes happens to come up
//! short (the peer fell behind for a moment): the ticker then waits tens to hundreds of
//! milliseconds at a time, a few dozen ticks in all. With it, the ticker ticks hundreds
//! of times, a few milliseconds apart at worst.

#[path = "common/child.rs"]
mod child;

use std::cell::Cell;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// How long the peer sends and reads flat out.
const BUSY: Duration = Duration::from_millis(1500);
/// The widest gap between two ticks of the 1 ms ticker that the tests accept.
const MAX_GAP: Duration = Duration::from_millis(500);
/// The widest mean gap between two ticks that the tests accept.
const MAX_MEAN_GAP: Duration = Duration::from_millis(5);
/// The size of the server's read buffer.
const SERVER_BUF: usize = 64 * 1024;
/// The size of the peer's writes and reads.
const PEER_BUF: usize = 1024 * 1024;

/// The tests run one at a time: two flat-out echoes at once would share the CPUs.
static SERIAL: Mutex<()> = Mutex::new(());

/// The peer, on threads of its own with plain blocking std sockets: one thread writes
/// `PEER_BUF`-byte blocks as fast as the server takes them for `BUSY`, another reads
/// everything echoed back; then it shuts its sending side down and reads to the end.
/// Returns the number of bytes it read.
fn flat_out_peer(addr: std::net::SocketAddr) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let mut w = std::net::TcpStream::connect(addr).unwrap();
        let r = w.try_clone().unwrap();
        let reader = thread::spawn(move || {
            let mut buf = vec![0u8; PEER_BUF];
            let mut total = 0u64;
            loop {
                // MSG_TRUNC: the kernel counts the bytes and drops them without a copy,
                // so the reader stays ahead of the server.
                // SAFETY: `buf` is writable for its length (the kernel writes nothing
                // with MSG_TRUNC on TCP); the fd is open for the whole call.
                let n = unsafe {
                    libc::recv(
                        r.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        libc::MSG_TRUNC,
                    )
                };
                if n <= 0 {
                    return total;
                }
                total += n as u64;
            }
        });
        let block = vec![7u8; PEER_BUF];
        let end = Instant::now() + BUSY;
        while Instant::now() < end {
            if w.write_all(&block).is_err() {
                break;
            }
        }
        let _ = w.shutdown(std::net::Shutdown::Write);
        reader.join().unwrap()
    })
}

/// How the ticker fared.
struct Ticks {
    count: u32,
    widest: Duration,
    total: Duration,
}

/// Ticks every millisecond (sleeping with `sleep`) until `until`.
fn ticker(until: Instant, sleep: impl Fn(Duration)) -> Ticks {
    let start = Instant::now();
    let mut last = start;
    let (mut count, mut widest) = (0, Duration::ZERO);
    while last < until {
        sleep(Duration::from_millis(1));
        let now = Instant::now();
        widest = widest.max(now - last);
        count += 1;
        last = now;
    }
    Ticks {
        count,
        widest,
        total: last - start,
    }
}

/// Echoes what `conn` reads until the end of the stream; returns the bytes echoed.
fn echo(mut conn: impl Read + Write) -> u64 {
    let mut buf = vec![0u8; SERVER_BUF];
    let mut total = 0u64;
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return total,
            Ok(n) => {
                conn.write_all(&buf[..n]).unwrap();
                total += n as u64;
            }
        }
    }
}

/// Checks the outcome of one run: the peer got back all it sent, and the ticker kept
/// ticking.
fn check(echoed: u64, received: u64, t: Ticks) {
    let mean = t.total / t.count.max(1);
    eprintln!(
        "echoed {} MiB; the 1 ms ticker ticked {} times in {:?}: mean gap {mean:?}, \
         widest {:?}",
        echoed >> 20,
        t.count,
        t.total,
        t.widest
    );
    assert!(echoed > 0, "nothing was echoed");
    assert_eq!(echoed, received, "the peer got back what the server read");
    assert!(t.widest < MAX_GAP, "the ticker waited {:?}", t.widest);
    assert!(mean < MAX_MEAN_GAP, "the ticker's mean gap was {mean:?}");
}

#[test]
fn a_flat_out_peer_does_not_freeze_a_ticker_greenlet() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let listener = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = flat_out_peer(listener.local_addr().unwrap());
    let (conn, _) = listener.accept().unwrap();
    let server = green::spawn(move || echo(conn));
    let tick = green::spawn(|| ticker(Instant::now() + BUSY, green::sleep));
    let ticks = tick.join().unwrap();
    let echoed = server.join().unwrap();
    check(echoed, peer.join().unwrap(), ticks);
}

#[cfg(feature = "monkey")]
#[test]
fn a_flat_out_peer_does_not_freeze_a_ticker_greenlet_under_the_monkey_patch() {
    const NAME: &str = "a_flat_out_peer_does_not_freeze_a_ticker_greenlet_under_the_monkey_patch";
    if !child::is_child(NAME) {
        // The patch is process-wide: the body runs in a process of its own.
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        eprint!("{}", child::run(NAME, Duration::from_secs(60)));
        return;
    }
    green::monkey::patch_all();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // The peer's sockets are made on plain threads: the patch leaves them alone.
    let peer = flat_out_peer(listener.local_addr().unwrap());
    let echoed = Rc::new(Cell::new(0));
    let e = echoed.clone();
    let server = green::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        e.set(echo(conn));
    });
    // A std sleep in a greenlet: the patched `clock_nanosleep`.
    let tick = green::spawn(|| ticker(Instant::now() + BUSY, thread::sleep));
    let ticks = tick.join().unwrap();
    server.join().unwrap();
    check(echoed.get(), peer.join().unwrap(), ticks);
}
