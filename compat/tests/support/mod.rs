//! What the compatibility tests share: the patch, a ticker greenlet that measures how
//! long the hub was kept from switching, and the check for a test server.
#![allow(dead_code)] // each test file uses a part

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Turns on everything `patch_all` patches (idempotent).
pub fn patch() {
    green::monkey::patch_all();
}

/// The longest wait of the ticker that the tests accept. The ticker sleeps 1 ms at a
/// time, so a call that blocks the hub shows as a gap as long as the call (200 ms or
/// more in these tests); the bound leaves room for a loaded machine.
pub const MAX_GAP: Duration = Duration::from_millis(100);

/// A greenlet that sleeps 1 ms at a time and records its longest gap between wakes.
pub struct Ticker {
    stop: Rc<Cell<bool>>,
    handle: green::JoinHandle<(Duration, u32)>,
}

/// Starts a ticker on this thread's hub.
pub fn ticker() -> Ticker {
    let stop = Rc::new(Cell::new(false));
    let s = stop.clone();
    let handle = green::Builder::new()
        .name("ticker")
        .spawn(move || {
            let (mut gap, mut ticks) = (Duration::ZERO, 0u32);
            let mut last = Instant::now();
            while !s.get() {
                green::sleep(Duration::from_millis(1));
                let now = Instant::now();
                gap = gap.max(now - last);
                last = now;
                ticks += 1;
            }
            (gap, ticks)
        })
        .expect("spawn the ticker");
    green::yield_now(); // it starts and parks
    Ticker { stop, handle }
}

impl Ticker {
    /// Stops the ticker; its longest gap and its number of ticks.
    pub fn finish(self) -> (Duration, u32) {
        self.stop.set(true);
        self.handle.join().expect("the ticker runs to its end")
    }

    /// Stops the ticker and checks that the hub never stalled for `MAX_GAP` meanwhile.
    pub fn assert_smooth(self, what: &str) {
        let (gap, ticks) = self.finish();
        assert!(
            gap < MAX_GAP,
            "{what}: the ticker waited {gap:?} (at most {MAX_GAP:?})"
        );
        assert!(ticks >= 3, "{what}: the ticker ran only {ticks} times");
    }
}

/// Whether a server answers on 127.0.0.1:`port`. Under CI (`CI` set) it must: the CI
/// script starts it, so a missing one fails the test. Elsewhere the test says it skips.
pub fn server_answers(what: &str, port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let up = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok();
    if !up {
        assert!(
            std::env::var_os("CI").is_none(),
            "{what} does not answer on {addr}; .ci/run starts it under CI"
        );
        eprintln!("skipped: no {what} answers on {addr} (.ci/run starts one)");
    }
    up
}

/// Joins every greenlet; their values, in order (a failed one fails the test).
pub fn join_all<T: 'static>(handles: Vec<green::JoinHandle<T>>) -> Vec<T> {
    green::joinall(handles)
        .into_iter()
        .map(|r| r.expect("the greenlet returned"))
        .collect()
}
