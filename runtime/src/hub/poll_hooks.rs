//! Hooks around the hub's poll, for the monkey patch's synchronisation hooks: functions
//! every hub calls on its own thread right before and after it polls its reactor, while
//! some of its greenlets wait for other threads (a [`RemoteWait`] exists). The futex
//! hook uses them to re-arm std's per-thread park word before the hub sleeps.
//!
//! One pair per process, set once by the monkey patch (a different pair is refused).
//! When none is set, or no greenlet of the hub waits for another thread, the poll costs
//! one more load and branch.
//!
//! [`RemoteWait`]: crate::hub::remote::RemoteWait

use std::io;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::greenlet::trampoline::run_callback;
use crate::hub::Hub;

/// The pair set with [`set_poll_hooks`].
struct PollHooks {
    before: fn(bool) -> Option<Instant>,
    after: fn(),
}

static HOOKS: OnceLock<PollHooks> = OnceLock::new();

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
/// They run in the hub: they must not block or switch; they may wake greenlets.
///
/// The pair is set once per process: setting the same pair again does nothing, and a
/// different pair is refused with [`io::ErrorKind::AlreadyExists`] (the first pair
/// stays).
///
/// ```
/// fn before(_blocking: bool) -> Option<std::time::Instant> { None }
/// fn after() {}
/// fn other_after() {}
/// green::__net::set_poll_hooks(before, after).unwrap();
/// green::__net::set_poll_hooks(before, after).unwrap(); // the same pair: fine
/// let e = green::__net::set_poll_hooks(before, other_after).unwrap_err();
/// assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
/// ```
pub fn set_poll_hooks(before: fn(bool) -> Option<Instant>, after: fn()) -> io::Result<()> {
    let set = HOOKS.get_or_init(|| PollHooks { before, after });
    // Compared as addresses: the same function named twice has one address here.
    if set.before as usize == before as usize && set.after as usize == after as usize {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "green: the hub's poll hooks are already set to other functions",
        ))
    }
}

/// Polls `h` for at most `timeout` with `poll`, with the hooks of [`set_poll_hooks`]
/// around it when some are set and a greenlet of `h` waits for another thread.
#[inline]
pub(crate) fn poll(h: &Hub, timeout: Option<Duration>, poll: fn(&Hub, Option<Duration>)) {
    if h.blocking_pending.get() > 0
        && let Some(hooks) = HOOKS.get()
    {
        return poll_hooked(h, hooks, timeout, poll);
    }
    poll(h, timeout)
}

/// [`poll`] with the hooks: `before`'s deadline shortens the wait, and a greenlet it
/// woke makes the poll not wait at all.
#[cold]
fn poll_hooked(
    h: &Hub,
    hooks: &PollHooks,
    timeout: Option<Duration>,
    poll: fn(&Hub, Option<Duration>),
) {
    let blocking = timeout != Some(Duration::ZERO);
    let next = run_callback(|| (hooks.before)(blocking)).flatten();
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
    run_callback(hooks.after);
}
