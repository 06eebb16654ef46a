//! Hooks around the hub's poll, for the monkey patch's synchronisation hooks: functions
//! every hub calls on its own thread right before and after it polls its reactor, while
//! some of its greenlets wait for other threads (a [`RemoteWait`] exists). The futex
//! hook uses them to re-arm std's per-thread park word before the hub sleeps.
//!
//! One pair per process, set once by the monkey patch. When none is set, or no greenlet
//! of the hub waits for another thread, the poll costs one more load and branch.
//!
//! [`RemoteWait`]: crate::hub::remote::RemoteWait

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::greenlet::trampoline::run_callback;
use crate::hub::Hub;

/// The functions set with [`set_poll_hooks`] (0: none).
static BEFORE_POLL: AtomicUsize = AtomicUsize::new(0);
static AFTER_POLL: AtomicUsize = AtomicUsize::new(0);

/// Sets the functions every hub calls on its own thread around each poll of its
/// reactor for IO and cross-thread wakes, while greenlets wait for other threads (a
/// [`RemoteWait`](crate::hub::remote::RemoteWait) exists):
///
/// - `before(blocking)` right before the poll; `blocking` says whether the poll may
///   wait (nothing else is ready to run). It returns when it must be called again at
///   the latest (the poll then waits no longer), or `None`. If it wakes a greenlet, the
///   poll does not wait.
/// - `after()` right after the poll, before any greenlet runs.
///
/// They run in the hub: they must not block or switch; they may wake greenlets. A
/// later call replaces the pair.
///
/// ```
/// fn before(_blocking: bool) -> Option<std::time::Instant> { None }
/// fn after() {}
/// green::__net::set_poll_hooks(before, after);
/// ```
pub fn set_poll_hooks(before: fn(bool) -> Option<Instant>, after: fn()) {
    AFTER_POLL.store(after as usize, Ordering::Release);
    BEFORE_POLL.store(before as usize, Ordering::Release);
}

/// Polls `h` for at most `timeout` with `poll`, with the hooks of [`set_poll_hooks`]
/// around it when some are set and a greenlet of `h` waits for another thread.
#[inline]
pub(crate) fn poll(h: &Hub, timeout: Option<Duration>, poll: fn(&Hub, Option<Duration>)) {
    if h.blocking_pending.get() > 0 && BEFORE_POLL.load(Ordering::Relaxed) != 0 {
        return poll_hooked(h, timeout, poll);
    }
    poll(h, timeout)
}

/// [`poll`] with the hooks: `before`'s deadline shortens the wait, and a greenlet it
/// woke makes the poll not wait at all.
#[cold]
fn poll_hooked(h: &Hub, timeout: Option<Duration>, poll: fn(&Hub, Option<Duration>)) {
    let before = BEFORE_POLL.load(Ordering::Acquire);
    // SAFETY: only `set_poll_hooks` stores a non-zero value here, and it stores a
    // `fn(bool) -> Option<Instant>`.
    let before = unsafe { std::mem::transmute::<usize, fn(bool) -> Option<Instant>>(before) };
    let blocking = timeout != Some(Duration::ZERO);
    let next = run_callback(|| before(blocking)).flatten();
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
        // SAFETY: only `set_poll_hooks` stores a non-zero value here, and it stores a
        // `fn()`.
        let after = unsafe { std::mem::transmute::<usize, fn()>(after) };
        run_callback(after);
    }
}
