//! Blocking detection (gevent's `max_blocking_time` monitor): a plain thread that warns
//! through [`log::warn!`] when a greenlet keeps the hub from switching for longer than a
//! threshold — typically a CPU-bound loop or a blocking call that was not made
//! cooperative.
//!
//! While a monitor is attached the hub counts resumes in an atomic counter and records
//! which greenlet runs (a relaxed store each; a named greenlet's name is copied when
//! another one ran last). The monitor thread samples the counter: if it has not moved
//! for longer than the threshold while a greenlet (not the idle hub) is running, it
//! logs one warning for that stall, naming the greenlet by id and name and the system
//! call its thread is blocked in (`/proc/self/task/TID/syscall`).
//!
//! [`set_stall_report`] runs one such watcher for every hub of the process (on by
//! default in programs that call `green::monkey::patch_all()`).

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::greenlet::Greenlet;
use crate::hub::with_hub;

#[doc(hidden)]
pub use crate::stall::{DEFAULT_STALL_THRESHOLD, report_stalls_by_default};
pub use crate::stall::{set_stall_report, stall_report};

/// The name of the last named greenlet that ran, by id.
#[derive(Default)]
struct Named {
    id: u64,
    name: String,
}

/// The part of a hub that a monitor thread reads. Written only by the hub's thread.
#[derive(Default)]
pub(crate) struct Shared {
    switches: AtomicU64,
    /// The id of the running greenlet; 0: the hub (idle or scheduling).
    current: AtomicU64,
    /// The id whose name `named` holds (a relaxed copy, so that switching back to the
    /// same named greenlet takes no lock).
    named_id: AtomicU64,
    named: Mutex<Named>,
}

impl Shared {
    /// Counts one resume (called by the driver on every switch).
    #[inline]
    pub(crate) fn count_switch(&self) {
        // Only the hub's thread writes: a load and a store, not a (locked) read-modify-write.
        let n = self.switches.load(Ordering::Relaxed);
        self.switches.store(n.wrapping_add(1), Ordering::Relaxed);
    }

    /// Records that `g` runs (only while a monitor is attached): one relaxed store, and
    /// for a named greenlet other than the last named one, a copy of its name.
    #[inline]
    pub(crate) fn record(&self, g: &Greenlet) {
        let id = g.id();
        self.current.store(id, Ordering::Relaxed);
        if let Some(name) = g.name()
            && self.named_id.load(Ordering::Relaxed) != id
        {
            self.record_name(id, name);
        }
    }

    #[cold]
    fn record_name(&self, id: u64, name: &str) {
        if let Ok(mut n) = self.named.lock() {
            n.id = id;
            n.name.clear();
            n.name.push_str(name);
            self.named_id.store(id, Ordering::Relaxed);
        }
    }

    /// Records that the hub runs (only while a monitor is attached).
    #[inline]
    pub(crate) fn record_hub(&self) {
        self.current.store(0, Ordering::Relaxed);
    }

    /// The switch count.
    pub(crate) fn switches(&self) -> u64 {
        self.switches.load(Ordering::Relaxed)
    }

    /// The running greenlet's id and name (empty if it has none, or if it changed
    /// while being read); `None` while the hub runs.
    pub(crate) fn running(&self) -> Option<(u64, String)> {
        let id = self.current.load(Ordering::Relaxed);
        if id == 0 {
            return None;
        }
        let name = match self.named.lock() {
            Ok(n) if n.id == id => n.name.clone(),
            _ => String::new(),
        };
        Some((id, name))
    }
}

/// How many times this thread's hub has resumed a greenlet, while it counts (a monitor
/// or the blocked-hub report watches it); `None` otherwise. For the monkey patch, whose
/// foreign event loops check whether other greenlets ran. Not covered by semver.
///
/// ```
/// let _n: Option<u64> = green::monitor::__switches();
/// ```
#[doc(hidden)]
pub fn __switches() -> Option<u64> {
    crate::hub::try_with_hub(|h| h.monitoring.get().then(|| h.monitor.switches())).flatten()
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
        // The process-wide report may still want the hub's records.
        let _ = crate::hub::try_with_hub(|h| h.monitoring.set(crate::stall::watches(&h.monitor)));
    }
}

/// Starts watching the calling thread's hub: logs a warning (target `green::monitor`)
/// naming the running greenlet, and the system call its thread is blocked in,
/// whenever the hub has not switched for longer than `threshold` (gevent's
/// `max_blocking_time`). Returns a guard; dropping it stops the monitor. Start at most
/// one per thread (dropping any stops the recording).
///
/// For a whole process there is also [`set_stall_report`], on by default in programs
/// that call `green::monkey::patch_all()`.
///
/// # Panics
///
/// If the monitor thread cannot be started (the process is out of threads).
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
    let mut watch = crate::stall::Watch::new(&shared);
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let period = (threshold / 4).max(Duration::from_millis(1));
    let thread = thread::Builder::new()
        .name("green-monitor".into())
        .spawn(move || {
            while !s.load(Ordering::Relaxed) {
                thread::park_timeout(period);
                if let Some(msg) = watch.check(threshold) {
                    log::warn!(target: "green::monitor", "{msg}");
                }
            }
        })
        .expect("green: cannot start the monitor thread");
    Monitor {
        stop,
        thread: Some(thread),
        threshold,
        _not_send: PhantomData,
    }
}
