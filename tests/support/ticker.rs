//! A ticker greenlet, shared by the test binaries of every crate of the workspace
//! through `#[path]`: it sleeps 1 ms at a time, counting its wakes and keeping the
//! longest gap between two, which shows whether the hub ran, and whether something
//! blocked it, while other greenlets waited.
#![allow(dead_code)] // each test binary uses a part

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The longest wait of the ticker that the tests accept. The ticker sleeps 1 ms at a
/// time, so a call that blocks the hub shows as a gap as long as the call (200 ms or
/// more in these tests); the bound leaves room for a loaded machine.
pub const MAX_GAP: Duration = Duration::from_millis(100);

/// A running ticker greenlet (see the module's notes).
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

    /// Stops the ticker; how many times it woke.
    pub fn ticks(self) -> u32 {
        self.finish().1
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
