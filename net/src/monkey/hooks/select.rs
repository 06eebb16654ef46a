//! Hooks of `select` and `pselect` (`patch_select()`).
//!
//! From a greenlet, a select that may wait parks the greenlet on a temporary epoll
//! instance holding the fds of its sets until one is ready or the timeout passes; each
//! time, the real call with a zero timeout on the caller's sets fills them exactly as
//! the kernel would. `select` leaves the time not slept in its timeout, as Linux does.
//! A `pselect` with a signal mask, a select with more than `FD_SETSIZE` fds, and any
//! select outside greenlets, is glibc's. A kill arriving while the greenlet waits makes
//! the call fail with `ECANCELED`.

use super::set_errno;
use super::wait::{PollSet, Wait, deadline_ts, far_future, passed};
use crate::monkey::{SELECT, real, rt, state};
use libc::{c_int, fd_set};
use std::time::{Duration, Instant};

fn cooperative(nfds: c_int) -> bool {
    state() & SELECT != 0 && (0..=libc::FD_SETSIZE as c_int).contains(&nfds) && rt::in_greenlet()
}

/// The caller's three sets, and a copy of what they held on entry.
struct Sets {
    ptrs: [*mut fd_set; 3],
    orig: [Option<fd_set>; 3],
}

impl Sets {
    /// # Safety
    /// Each pointer is null or a readable and writable `fd_set`.
    unsafe fn new(r: *mut fd_set, w: *mut fd_set, e: *mut fd_set) -> Sets {
        let ptrs = [r, w, e];
        // SAFETY: the caller's contract (each checked non-null).
        let orig = ptrs.map(|p| (!p.is_null()).then(|| unsafe { *p }));
        Sets { ptrs, orig }
    }

    /// Puts what the sets held on entry back (a zero-timeout select cleared them).
    fn restore(&self) {
        for (p, o) in self.ptrs.iter().zip(&self.orig) {
            if let Some(o) = o {
                // SAFETY: a non-null caller's set (see `new`).
                unsafe { **p = *o };
            }
        }
    }

    /// A zero-timeout select on the caller's sets, as they were on entry.
    fn select_now(&self, nfds: c_int) -> c_int {
        self.restore();
        let mut zero = libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        let [r, w, e] = self.ptrs;
        // SAFETY: the caller's sets and a zero timeout.
        unsafe { real::select(nfds, r, w, e, &mut zero) }
    }

    /// A temporary epoll instance holding the fds below `nfds` of the sets on entry.
    fn poll_set(&self, nfds: c_int) -> Option<PollSet> {
        let mut set = PollSet::new()?;
        let bits = [libc::POLLIN, libc::POLLOUT, libc::POLLPRI];
        for fd in 0..nfds {
            let mut ev = 0;
            for (o, bit) in self.orig.iter().zip(bits) {
                // SAFETY: `fd` is below `nfds <= FD_SETSIZE`.
                if o.as_ref().is_some_and(|s| unsafe { libc::FD_ISSET(fd, s) }) {
                    ev |= bit;
                }
            }
            if ev != 0 {
                set.add(fd, ev);
            }
        }
        Some(set)
    }
}

/// A select from a greenlet (see the module docs); `remaining` gets the time not slept.
fn green_select(
    nfds: c_int,
    sets: &Sets,
    deadline: Option<Instant>,
    remaining: impl Fn(),
) -> c_int {
    let mut set = None;
    loop {
        let r = sets.select_now(nfds);
        if r != 0 || passed(deadline) {
            remaining();
            return r;
        }
        if set.is_none() {
            set = sets.poll_set(nfds);
        }
        let waited = match &set {
            Some(s) => s.park(deadline),
            None => Wait::Failed(libc::ENOMEM),
        };
        if let Wait::Failed(e) = waited {
            sets.restore();
            remaining();
            set_errno(e);
            return -1;
        }
    }
}

/// Hook for `select(2)`.
///
/// # Safety
/// The libc contract of `select`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn select(
    nfds: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    tv: *mut libc::timeval,
) -> c_int {
    let deadline = if tv.is_null() {
        Some(None)
    } else {
        // SAFETY: a non-null `tv` is readable (select's contract).
        let t = unsafe { *tv };
        let valid = t.tv_sec >= 0 && (0..1_000_000).contains(&t.tv_usec);
        let d = Duration::new(t.tv_sec as u64, 0) + Duration::from_micros(t.tv_usec as u64);
        (valid && !d.is_zero())
            .then(|| Some(Instant::now().checked_add(d).unwrap_or_else(far_future)))
    };
    match deadline {
        Some(deadline) if cooperative(nfds) => {
            // SAFETY: the sets are null or valid (select's contract).
            let sets = unsafe { Sets::new(r, w, e) };
            green_select(nfds, &sets, deadline, || {
                if let (false, Some(d)) = (tv.is_null(), deadline) {
                    let left = d.saturating_duration_since(Instant::now());
                    // SAFETY: a non-null `tv` is writable (select's contract).
                    unsafe {
                        *tv = libc::timeval {
                            tv_sec: left.as_secs() as libc::time_t,
                            tv_usec: left.subsec_micros() as libc::suseconds_t,
                        }
                    };
                }
            })
        }
        // SAFETY: forwarded unchanged.
        _ => unsafe { real::select(nfds, r, w, e, tv) },
    }
}

/// Hook for `pselect(2)`.
///
/// # Safety
/// The libc contract of `pselect`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pselect(
    nfds: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    ts: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    // SAFETY: `ts` is null or readable (pselect's contract).
    let deadline = unsafe { deadline_ts(ts) };
    match deadline {
        // (A signal mask must be in force for the wait itself: only the kernel can do
        // that.)
        Ok(d) if mask.is_null() && d.is_none_or(|d| d > Instant::now()) && cooperative(nfds) => {
            // SAFETY: the sets are null or valid (pselect's contract).
            let sets = unsafe { Sets::new(r, w, e) };
            green_select(nfds, &sets, d, || {})
        }
        // SAFETY: forwarded unchanged.
        _ => unsafe { real::pselect(nfds, r, w, e, ts, mask) },
    }
}
