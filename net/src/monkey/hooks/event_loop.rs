//! Foreign event loops inside greenlets: [`event_loop`], and the hooks of `epoll_wait`,
//! `epoll_pwait` and `epoll_pwait2`.
//!
//! An async runtime's `block_on` (tokio's current-thread runtime, which the sync
//! `postgres` client runs inside) waits in `epoll_wait`. Parking the greenlet there
//! would let the hub run other greenlets, but tokio marks the *thread* as inside a
//! runtime and panics when a second `block_on` starts on it, before any system call a
//! hook could see. So the hooks leave `epoll_wait` alone (the thread blocks, the loops
//! run one after another, and the blocked-hub report names `epoll_wait`), except inside
//! [`event_loop`]: that scope is our code, so it can make sure that only one greenlet of
//! the thread is inside a foreign loop at a time, and the loop's waits can park.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::ptr;
use std::time::{Duration, Instant};

use libc::c_int;

use super::wait::{deadline_ms, deadline_ts, passed, remaining_ms};
use super::{errno, set_errno};
use crate::monkey::{SELECT, real, rt, state};

/// Kills and timeouts that reached the scope's greenlet while parked in a hooked wait:
/// raised when the scope ends (they cannot unwind through the foreign loop's frames).
type Held = RefCell<Vec<rt::Payload>>;

// Neither has a destructor, so both stay readable while the thread's end unwinds the
// greenlets parked in a scope (thread-locals with destructors are gone by then).
thread_local! {
    /// The greenlet inside this thread's `event_loop` scope (0: none).
    static OWNER: Cell<u64> = const { Cell::new(0) };
    /// Its [`Held`] list, which lives in its `event_loop` frame (null: no scope).
    static HELD: Cell<*const Held> = const { Cell::new(ptr::null()) };
}

/// Runs `f`, which drives a foreign event loop (an async runtime's `block_on`), so that
/// the other greenlets of the thread keep running while the loop waits: inside `f`, the
/// loop's `epoll_wait` (and `epoll_pwait`, `epoll_pwait2`) parks the greenlet on the
/// hub's reactor until the loop's epoll fd is ready or its timeout passes. Needs
/// [`patch_select`](crate::monkey::patch_select) (part of `patch_all`); without it, or
/// outside a greenlet, it simply runs `f`.
///
/// One greenlet per thread is inside an `event_loop` at a time: a second one waits
/// (parked, in order of arrival) until the first leaves. So the loops run one after
/// another — as they do without the scope, where each blocks the thread — while every
/// other greenlet keeps running. Run *every* such loop of the thread inside
/// `event_loop`: tokio panics ("Cannot start a runtime from within a runtime") when a
/// greenlet enters a runtime while another greenlet of the thread is parked inside one,
/// and only this scope keeps them apart. For many loops to wait *at once* (many clients
/// with their own runtimes, such as the sync `postgres` client), run their calls on
/// helper threads with [`run_blocking`](green_runtime::run_blocking) instead.
///
/// A kill or timeout of a greenlet inside the scope takes effect when `f` returns: it
/// cannot unwind through the loop's frames.
///
/// # Panics
///
/// If the scope is held by a greenlet that can never leave it (every greenlet of the
/// thread waits for something only they could do).
///
/// # Examples
///
/// ```no_run
/// green_net::monkey::patch_all();
/// // let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// let v = green_net::monkey::event_loop(|| {
///     // rt.block_on(async { tokio::time::sleep(Duration::from_millis(200)).await; 7 })
///     7
/// });
/// assert_eq!(v, 7);
/// ```
pub fn event_loop<R>(f: impl FnOnce() -> R) -> R {
    if !rt::in_greenlet() {
        return f();
    }
    let me = rt::current_id();
    if OWNER.get() == me {
        // Nested inside its own scope.
        return f();
    }
    let Some(lock) = rt::event_loop_lock() else {
        // The thread's end destroyed the lock: no scope can be held any more.
        return f();
    };
    if !rt::lock_scope(&lock) {
        panic!(
            "green::monkey::event_loop: another greenlet holds this thread's event loop \
             scope and nothing can ever make it leave"
        );
    }
    // (Empty unless a kill or timeout came; dropped unraised if `f` panics: the panic
    // wins.)
    let held = Held::default();
    OWNER.set(me);
    HELD.set(&held);
    struct Leave(rt::ScopeLock);
    impl Drop for Leave {
        fn drop(&mut self) {
            OWNER.set(0);
            HELD.set(ptr::null());
            rt::unlock_scope(&self.0);
        }
    }
    let leave = Leave(lock);
    let r = f();
    drop(leave);
    if let Some(p) = held.into_inner().into_iter().next() {
        resume_unwind(p);
    }
    r
}

/// Whether the calling greenlet is inside its `event_loop` scope, patched.
fn in_scope() -> bool {
    if state() & SELECT == 0 {
        return false;
    }
    let owner = OWNER.get();
    owner != 0 && rt::in_greenlet() && rt::current_id() == owner
}

/// How often a loop parked inside the scope looks whether other greenlets ran (see
/// [`green_epoll`]).
const TICK: Duration = Duration::from_millis(1);

/// An epoll wait inside the scope: `call(ms)` is the real wait with timeout `ms`. Tries
/// it without waiting; while nothing is ready, parks until the epoll fd `ep` is
/// readable or `deadline` passes.
///
/// It also returns (with no events, as a loop's wait may) once other greenlets of the
/// thread have run: a tokio waker used on the runtime's own thread only sets a flag,
/// since tokio takes the caller for the runtime itself, which it assumes is not parked.
/// So a future that another greenlet woke is found when the loop looks again: every
/// [`TICK`] while parked, the greenlet wakes and, if any other greenlet ran meanwhile
/// (or the hub does not count its switches), returns to the loop.
fn green_epoll(
    ep: c_int,
    deadline: Option<Instant>,
    mut call: impl FnMut(c_int) -> c_int,
) -> c_int {
    let r = call(0);
    if r != 0 || passed(deadline) {
        return r;
    }
    let saved = errno();
    let registered = rt::Readable::new(ep).map(|reg| park_in_loop(&reg, deadline));
    set_errno(saved);
    match registered {
        // The registration is gone before the loop looks again.
        Ok(()) => call(0),
        // Not registrable: wait for real, as unpatched.
        Err(_) => call(remaining_ms(deadline).unwrap_or(-1)),
    }
}

/// Parks on the loop's epoll fd (`reg`) until it is readable, `deadline` passes or
/// other greenlets ran (see [`green_epoll`]). Kills and timeouts are held for the end
/// of the scope.
fn park_in_loop(reg: &rt::Readable, deadline: Option<Instant>) {
    let mut seen = rt::switches();
    loop {
        let tick = Instant::now() + TICK;
        let until = deadline.map_or(tick, |d| d.min(tick));
        let waited = catch_unwind(AssertUnwindSafe(|| reg.wait(Some(until))));
        let now = rt::switches();
        let others_ran = match (seen, now) {
            // Its own resume counts one.
            (Some(a), Some(b)) => b.wrapping_sub(a) > 1,
            _ => true,
        };
        seen = now;
        match waited {
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
                if passed(deadline) || others_ran {
                    return;
                }
            }
            Ok(_) => return,
            Err(p) => hold(p),
        }
    }
}

/// Keeps `p`, a kill or timeout caught in a wait of the scope's greenlet, for the end
/// of its scope.
fn hold(p: rt::Payload) {
    let held = HELD.get();
    debug_assert!(!held.is_null(), "a wait of an event_loop scope outside one");
    if !held.is_null() {
        // SAFETY: only the scope's greenlet waits in the scope (`in_scope`), and while it
        // holds the scope `HELD` points at the list in its `event_loop` frame, which is
        // suspended below this call.
        unsafe { (*held).borrow_mut().push(p) };
    }
}

/// Hook for `epoll_wait(2)` (what mio, and so tokio, waits with).
///
/// # Safety
/// The libc contract of `epoll_wait`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_wait(
    ep: c_int,
    ev: *mut libc::epoll_event,
    max: c_int,
    timeout: c_int,
) -> c_int {
    if timeout == 0 || !in_scope() {
        // SAFETY: forwarded unchanged.
        return unsafe { real::epoll_wait(ep, ev, max, timeout) };
    }
    // SAFETY: forwarded with the caller's arguments and a shorter timeout.
    green_epoll(ep, deadline_ms(timeout), |ms| unsafe {
        real::epoll_wait(ep, ev, max, ms)
    })
}

/// Hook for `epoll_pwait(2)`. With a signal mask it is glibc's.
///
/// # Safety
/// The libc contract of `epoll_pwait`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_pwait(
    ep: c_int,
    ev: *mut libc::epoll_event,
    max: c_int,
    timeout: c_int,
    mask: *const libc::sigset_t,
) -> c_int {
    if timeout == 0 || !mask.is_null() || !in_scope() {
        // SAFETY: forwarded unchanged.
        return unsafe { real::epoll_pwait(ep, ev, max, timeout, mask) };
    }
    // SAFETY: forwarded with the caller's arguments and a shorter timeout.
    green_epoll(ep, deadline_ms(timeout), |ms| unsafe {
        real::epoll_pwait(ep, ev, max, ms, mask)
    })
}

/// Hook for `epoll_pwait2(2)`. With a signal mask it is the system call's.
///
/// # Safety
/// The contract of `epoll_pwait2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_pwait2(
    ep: c_int,
    ev: *mut libc::epoll_event,
    max: c_int,
    ts: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    // SAFETY: `ts` is null or readable (epoll_pwait2's contract).
    let deadline = unsafe { deadline_ts(ts) };
    match deadline {
        Ok(d) if mask.is_null() && d.is_none_or(|d| d > Instant::now()) && in_scope() => {
            green_epoll(ep, d, |ms| {
                let t = (ms >= 0).then(|| libc::timespec {
                    tv_sec: (ms / 1000) as libc::time_t,
                    tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
                });
                let tp = t
                    .as_ref()
                    .map_or(std::ptr::null(), |t| t as *const libc::timespec);
                // SAFETY: the caller's arguments and a shorter timeout.
                unsafe { real::epoll_pwait2(ep, ev, max, tp, mask) }
            })
        }
        // SAFETY: forwarded unchanged.
        _ => unsafe { real::epoll_pwait2(ep, ev, max, ts, mask) },
    }
}
