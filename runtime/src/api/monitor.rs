//! Blocking detection (gevent's `max_blocking_time` monitor): an opt-in plain thread
//! that warns through [`log::warn!`] when a greenlet keeps the hub from switching for
//! longer than a threshold — typically a CPU-bound loop or a blocking call that was not
//! made cooperative.
//!
//! While a monitor is attached, the greenlet layer's trampoline counts resumes in an
//! atomic counter (one relaxed store per switch) and records which greenlet runs
//! (`thread::SwitchLog`). The
//! monitor thread samples the counter: if it has not moved for longer than the
//! threshold while a greenlet (not the idle hub) is running, it logs one warning for
//! that stall, naming the greenlet by id and name.

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::greenlet::thread::{self, SwitchLog};
use std::thread as os_thread;

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
    thread: Option<os_thread::JoinHandle<()>>,
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
        let _ = thread::try_with(|t| t.watched.set(false));
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
    let shared = thread::with(|t| {
        t.watched.set(true);
        t.switch_log.clone()
    });
    // The caller runs now (the main greenlet or a greenlet), until it switches.
    shared.record(&thread::current_greenlet());
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let thread = os_thread::Builder::new()
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

fn watch(shared: &SwitchLog, stop: &AtomicBool, threshold: Duration) {
    let period = (threshold / 4).max(Duration::from_millis(1));
    let mut last = shared.switches.load(Ordering::Relaxed);
    let mut since = Instant::now();
    let mut reported = false;
    while !stop.load(Ordering::Relaxed) {
        os_thread::park_timeout(period);
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
        let Ok(r) = shared.running.lock() else { return };
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
