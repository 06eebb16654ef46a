//! What the monkey patch's synchronisation hooks need from the hub, beyond
//! [`RemoteWait`](crate::remote::RemoteWait):
//!
//! - [`hold_deferred`]: park inside a call that cannot fail (a futex wait under
//!   `Mutex::lock`, a thread join) while a kill is already deferred, instead of
//!   raising it at once;
//! - [`set_poll_hooks`]: functions every hub calls right before and after it polls its
//!   reactor (while greenlets wait for other threads), which may wake greenlets or
//!   shorten the poll;
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

/// The functions set with [`set_poll_hooks`] (0: none).
static BEFORE_POLL: AtomicUsize = AtomicUsize::new(0);
static AFTER_POLL: AtomicUsize = AtomicUsize::new(0);

/// Sets the functions every hub calls on its own thread around each poll of its
/// reactor for IO and cross-thread wakes, while greenlets wait for other threads (a
/// [`RemoteWait`](crate::remote::RemoteWait) exists):
///
/// - `before(blocking)` right before the poll; `blocking` says whether the poll may
///   wait (nothing else is ready to run). It returns when it must be called again at
///   the latest (the poll then waits no longer), or `None`. If it wakes a greenlet, the
///   poll does not wait.
/// - `after()` right after the poll, before any greenlet runs.
///
/// They run in the hub: they must not block or switch; they may wake greenlets. One
/// pair per process: a later call replaces it.
///
/// ```
/// fn before(_blocking: bool) -> Option<std::time::Instant> { None }
/// fn after() {}
/// green::__remote::set_poll_hooks(before, after);
/// ```
pub fn set_poll_hooks(before: fn(bool) -> Option<Instant>, after: fn()) {
    AFTER_POLL.store(after as usize, Ordering::Release);
    BEFORE_POLL.store(before as usize, Ordering::Release);
}

/// A poll of `h` for at most `timeout` by `poll`, with the hooks of [`set_poll_hooks`]
/// around it: `before`'s deadline shortens the wait, and a greenlet it woke makes the
/// poll not wait at all.
#[cold]
pub(crate) fn poll_hooked(
    h: &crate::hub::Hub,
    timeout: Option<Duration>,
    poll: fn(&crate::hub::Hub, Option<Duration>),
) {
    let before = BEFORE_POLL.load(Ordering::Acquire);
    if before == 0 {
        return poll(h, timeout);
    }
    // SAFETY: only `set_poll_hooks` stores here, and it stores a
    // `fn(bool) -> Option<Instant>`.
    let before = unsafe { std::mem::transmute::<usize, fn(bool) -> Option<Instant>>(before) };
    let blocking = timeout != Some(Duration::ZERO);
    let next = crate::driver::run_hub_callback(|| before(blocking)).flatten();
    let timeout = if !h.ready.is_empty() {
        Some(Duration::ZERO)
    } else {
        match next {
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                Some(timeout.map_or(left, |t| t.min(left)))
            }
            None => timeout,
        }
    };
    poll(h, timeout);
    let after = AFTER_POLL.load(Ordering::Acquire);
    if after != 0 {
        // SAFETY: only `set_poll_hooks` stores here, and it stores a `fn()`.
        let after = unsafe { std::mem::transmute::<usize, fn()>(after) };
        crate::driver::run_hub_callback(after);
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
