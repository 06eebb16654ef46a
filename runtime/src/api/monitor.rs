//! Blocking detection (gevent's `max_blocking_time` monitor): an opt-in plain thread
//! that warns through [`log::warn!`] when a greenlet keeps the hub from switching for
//! longer than a threshold — typically a CPU-bound loop or a blocking call that was not
//! made cooperative.
//!
//! The hub counts resumes in an atomic counter (one relaxed add per switch, always);
//! while a monitor is attached the driver also records which greenlet runs. The
//! monitor thread samples the counter: if it has not moved for longer than the
//! threshold while a greenlet (not the idle hub) is running, it logs one warning for
//! that stall, naming the greenlet by id and name.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::greenlet::Greenlet;
use crate::hub::with_hub;

/// Which greenlet runs; id 0 is the hub (idle or scheduling).
#[derive(Default)]
struct Record {
    id: u64,
    name: String,
}

/// The part of a hub that a monitor thread reads.
#[derive(Default)]
pub(crate) struct Shared {
    switches: AtomicU64,
    current: Mutex<Record>,
}

impl Shared {
    /// Counts one resume (called by the driver on every switch).
    #[inline]
    pub(crate) fn count_switch(&self) {
        // Only the hub's thread writes: a load and a store, not a (locked) read-modify-write.
        let n = self.switches.load(Ordering::Relaxed);
        self.switches.store(n.wrapping_add(1), Ordering::Relaxed);
    }

    /// Records that `g` runs (only while a monitor is attached).
    pub(crate) fn record(&self, g: &Greenlet) {
        if let Ok(mut r) = self.current.lock()
            && r.id != g.id()
        {
            r.id = g.id();
            r.name.clear();
            r.name.push_str(g.name().unwrap_or(""));
        }
    }

    /// Records that the hub runs (only while a monitor is attached).
    pub(crate) fn record_hub(&self) {
        if let Ok(mut r) = self.current.lock() {
            r.id = 0;
        }
    }
}

/// A running monitor; dropping it stops the monitor thread. Bound to the thread whose
/// hub it watches (`!Send`).
///
/// ```
/// let m = green::monitor::start(std::time::Duration::from_millis(100));
/// assert_eq!(m.threshold(), std::time::Duration::from_millis(100));
/// drop(m); // stops it
/// ```
#[must_use = "dropping the monitor stops it"]
pub struct Monitor {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
    threshold: Duration,
    _not_send: PhantomData<*const ()>,
}

impl Monitor {
    /// The threshold it warns after.
    ///
    /// ```
    /// let m = green::monitor::start(std::time::Duration::from_secs(1));
    /// assert_eq!(m.threshold(), std::time::Duration::from_secs(1));
    /// ```
    pub fn threshold(&self) -> Duration {
        self.threshold
    }
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("threshold", &self.threshold)
            .finish()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
        let _ = crate::hub::try_with_hub(|h| h.monitoring.set(false));
    }
}

/// Starts watching the calling thread's hub: logs a warning (target `green::monitor`)
/// naming the running greenlet whenever the hub has not switched for longer than
/// `threshold` (gevent's `max_blocking_time`). Returns a guard; dropping it stops the
/// monitor. Start at most one per thread (dropping any stops the recording).
///
/// # Examples
///
/// ```no_run
/// use std::time::{Duration, Instant};
/// let _monitor = green::monitor::start(Duration::from_millis(100));
/// let h = green::Builder::new().name("busy").spawn(|| {
///     let t = Instant::now();
///     while t.elapsed() < Duration::from_millis(300) {} // never switches
/// }).unwrap();
/// h.join().unwrap(); // logs: green: greenlet 7 ("busy") has blocked the hub for ...
/// ```
pub fn start(threshold: Duration) -> Monitor {
    let shared = with_hub(|h| {
        h.monitoring.set(true);
        h.monitor.clone()
    });
    // The caller runs now (the main greenlet or a greenlet), until it switches.
    with_hub(|h| shared.record(&h.current_greenlet()));
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let thread = thread::Builder::new()
        .name("green-monitor".into())
        .spawn(move || watch(&shared, &s, threshold))
        .expect("green: cannot start the monitor thread");
    Monitor {
        stop,
        thread: Some(thread),
        threshold,
        _not_send: PhantomData,
    }
}

fn watch(shared: &Shared, stop: &AtomicBool, threshold: Duration) {
    let period = (threshold / 4).max(Duration::from_millis(1));
    let mut last = shared.switches.load(Ordering::Relaxed);
    let mut since = Instant::now();
    let mut reported = false;
    while !stop.load(Ordering::Relaxed) {
        thread::park_timeout(period);
        let now = shared.switches.load(Ordering::Relaxed);
        if now != last {
            last = now;
            since = Instant::now();
            reported = false;
            continue;
        }
        let stalled = since.elapsed();
        if reported || stalled < threshold {
            continue;
        }
        let Ok(r) = shared.current.lock() else { return };
        if r.id == 0 {
            // The hub is idle (waiting for timers or IO), not blocked.
            since = Instant::now();
            continue;
        }
        let name = if r.name.is_empty() {
            "<unnamed>"
        } else {
            &r.name
        };
        log::warn!(
            target: "green::monitor",
            "green: greenlet {} ({:?}) has blocked the hub for {:?} (threshold {:?}) without switching",
            r.id,
            name,
            stalled,
            threshold
        );
        reported = true;
    }
}
