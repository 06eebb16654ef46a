//! Blocking detection (gevent's `max_blocking_time` monitor): a plain thread that warns
//! through [`log::warn!`] when a greenlet keeps the hub from switching for longer than a
//! threshold — typically a CPU-bound loop or a blocking call that was not made
//! cooperative.
//!
//! While a monitor is attached, the greenlet layer's trampoline counts resumes and
//! records which greenlet runs (`thread::SwitchLog`: a relaxed store each; a named
//! greenlet's name is copied when another one ran last). The monitor thread samples
//! the counter: if it has not moved for longer than the threshold while a greenlet (not
//! the idle hub) is running, it logs one warning for that stall, naming the greenlet
//! by id and name and the system call its thread is blocked in
//! (`/proc/self/task/TID/syscall`).
//!
//! [`set_stall_report`] runs one such watcher for every thread of the process (on by
//! default in programs that call `green::monkey::patch_all()`).

use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread as os_thread;
use std::time::Duration;

use crate::api::stall::Watch;
use crate::greenlet::thread;

#[doc(hidden)]
pub use crate::api::stall::report_stalls_by_default;
pub use crate::api::stall::{DEFAULT_STALL_THRESHOLD, set_stall_report, stall_report};

/// How many times this thread has resumed a greenlet, while it counts (a monitor or the
/// stall report watches it); `None` otherwise. For the monkey patch, whose foreign
/// event loops check whether other greenlets ran. Not covered by semver.
///
/// ```
/// let _n: Option<u64> = green::monitor::__switches();
/// ```
#[doc(hidden)]
pub fn __switches() -> Option<u64> {
    thread::if_exists(|t| t.monitored.get().then(|| t.switch_log.switches())).flatten()
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
        unwatch();
    }
}

/// Stops counting this thread's switches, unless the process-wide report watches it.
fn unwatch() {
    let _ = thread::try_with(|t| {
        t.set_monitored(crate::api::stall::watches(&t.switch_log));
    });
}

/// Starts watching the calling thread's hub: logs a warning (target `green::monitor`)
/// naming the running greenlet, and the system call its thread is blocked in, whenever
/// the hub has not switched for longer than `threshold` (gevent's `max_blocking_time`).
/// For a whole process there is also [`set_stall_report`], on by default in programs
/// that call `green::monkey::patch_all()`. Returns a guard; dropping it stops the
/// monitor. Start at most one per thread (dropping any stops the recording).
///
/// # Panics
///
/// If the monitor thread cannot be started (the process is out of threads), as
/// [`std::thread::spawn`] does; [`try_start`] returns the error instead.
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
    match try_start(threshold) {
        Ok(m) => m,
        Err(e) => panic!("green: cannot start the monitor thread: {e}"),
    }
}

/// [`start`], returning the error when the monitor thread cannot be started (the
/// process is out of threads); nothing is watched then.
///
/// ```
/// use std::time::Duration;
/// let m = green::monitor::try_start(Duration::from_millis(100))?;
/// assert_eq!(m.threshold(), Duration::from_millis(100));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn try_start(threshold: Duration) -> io::Result<Monitor> {
    let shared = thread::with(|t| {
        t.set_monitored(true);
        t.switch_log.clone()
    });
    // The caller runs now (the main greenlet or a greenlet), until it switches.
    shared.record(&thread::current_greenlet());
    let mut watch = Watch::new(&shared);
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let period = (threshold / 4).max(Duration::from_millis(1));
    let spawned = os_thread::Builder::new()
        .name("green-monitor".into())
        .spawn(move || {
            while !s.load(Ordering::Relaxed) {
                os_thread::park_timeout(period);
                if let Some(msg) = watch.check(threshold) {
                    log::warn!(target: "green::monitor", "{msg}");
                }
            }
        });
    let thread = match spawned {
        Ok(t) => t,
        Err(e) => {
            unwatch();
            return Err(e);
        }
    };
    Ok(Monitor {
        stop,
        thread: Some(thread),
        threshold,
        _not_send: PhantomData,
    })
}
