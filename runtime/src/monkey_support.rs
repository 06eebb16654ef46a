//! What the monkey patch's synchronisation hooks need from the hub, beyond
//! [`RemoteWait`](crate::remote::RemoteWait):
//!
//! - [`hold_deferred`]: park inside a call that cannot fail (a futex wait under
//!   `Mutex::lock`, a thread join) while a kill is already deferred, instead of
//!   raising it at once;
//! - [`set_before_poll`]: one function every hub calls right before it polls its
//!   reactor, which may wake greenlets or shorten the poll;
//! - [`run_detached`]: start a job on the blocking pool without waiting for it.
//!
//! Reached through `green::__remote`; not covered by semver.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::greenlet::Inner;
use crate::hub;

type Payloads = Vec<(Box<dyn std::any::Any + Send>, bool)>;

/// Runs `f` with the current greenlet's deferred throws (see
/// [`defer_unwind`](crate::defer_unwind)) set aside, so that the switch points inside
/// `f` do not raise them, and puts them back afterwards, before any that `f` deferred
/// itself (the oldest is raised first). A throw that arrives while `f` parks still
/// unwinds out of that park: catch it and defer it.
///
/// A hook that must wait until a condition holds, whatever happens to its greenlet
/// (`Mutex::lock` cannot fail), parks through this: a kill then waits for the
/// condition and unwinds at the next switch point after the call, instead of
/// making the wait spin.
///
/// ```
/// use std::time::{Duration, Instant};
/// let h = green::spawn(|| {
///     green::defer_unwind(Box::new(green::GreenletExit));
///     let t = Instant::now();
///     // Without `hold_deferred` this park would raise the kill at once.
///     green::__remote::hold_deferred(|| {
///         green::park::park(Some(Instant::now() + Duration::from_millis(20))).unwrap()
///     });
///     assert!(t.elapsed() >= Duration::from_millis(15));
///     green::yield_now(); // the kill unwinds here
///     unreachable!()
/// });
/// assert!(h.join().unwrap_err().is_killed());
/// ```
pub fn hold_deferred<R>(f: impl FnOnce() -> R) -> R {
    if !hub::any_deferred() || !hub::is_greenlet_context() {
        return f();
    }
    let held = hub::with_hub(|h| take_all(h.current()));
    if held.is_empty() {
        return f();
    }
    let _restore = Restore(Some(held));
    f()
}

fn take_all(g: &Inner) -> Payloads {
    let list = std::mem::take(&mut *g.deferred.borrow_mut());
    if !list.is_empty() {
        g.has_deferred.set(false);
        hub::slow_switch_removed();
    }
    list
}

/// Puts held throws back in front of the current greenlet's list (also when the
/// closure unwinds).
struct Restore(Option<Payloads>);

impl Drop for Restore {
    fn drop(&mut self) {
        let Some(mut held) = self.0.take() else {
            return;
        };
        let _ = hub::try_with_hub(|h| {
            let g = h.current();
            let mut list = g.deferred.borrow_mut();
            if list.is_empty() {
                hub::slow_switch_added();
            }
            held.append(&mut list);
            *list = held;
            g.has_deferred.set(true);
        });
    }
}

/// The function set with [`set_before_poll`] (0: none).
static BEFORE_POLL: AtomicUsize = AtomicUsize::new(0);

/// Sets the function every hub calls on its own thread right before it polls its
/// reactor for IO and cross-thread wakes (with or without blocking), while greenlets
/// wait for other threads (a [`RemoteWait`](crate::remote::RemoteWait) exists). It
/// returns when it must be called again at the latest (the poll then waits no longer),
/// or `None`. It runs in the hub: it must not block or switch; it may wake greenlets
/// (the poll then does not wait). One per process: a later call replaces it.
///
/// ```
/// fn check() -> Option<std::time::Instant> { None }
/// green::__remote::set_before_poll(check);
/// ```
pub fn set_before_poll(f: fn() -> Option<Instant>) {
    BEFORE_POLL.store(f as usize, Ordering::Release);
}

/// Calls the function of [`set_before_poll`], if any, before a poll of `h` for at most
/// `timeout`; returns the poll's timeout: zero if the function woke a greenlet,
/// shortened to its deadline otherwise.
#[cold]
pub(crate) fn before_poll(h: &crate::hub::Hub, timeout: Option<Duration>) -> Option<Duration> {
    let p = BEFORE_POLL.load(Ordering::Acquire);
    if p == 0 {
        return timeout;
    }
    // SAFETY: only `set_before_poll` stores here, and it stores a `fn() -> Option<Instant>`.
    let f = unsafe { std::mem::transmute::<usize, fn() -> Option<Instant>>(p) };
    let next = crate::driver::run_hub_callback(f).flatten();
    if !h.ready.is_empty() {
        return Some(Duration::ZERO);
    }
    match next {
        Some(at) => {
            let left = at.saturating_duration_since(Instant::now());
            Some(timeout.map_or(left, |t| t.min(left)))
        }
        None => timeout,
    }
}

/// Starts `job` on the blocking pool (see [`run_blocking`](crate::run_blocking))
/// without waiting for it; the caller learns of its end however the job tells it (a
/// [`RemoteWaker`](crate::remote::RemoteWaker), typically). Fails when no helper
/// thread can be started and none is running.
///
/// ```
/// let (tx, rx) = std::sync::mpsc::channel();
/// green::__remote::run_detached(Box::new(move || tx.send(6 * 7).unwrap())).unwrap();
/// assert_eq!(rx.recv().unwrap(), 42);
/// ```
pub fn run_detached(job: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
    crate::blocking::execute(job)
}
