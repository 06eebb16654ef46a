//! Hooks of `poll` and `ppoll`.
//!
//! From a greenlet, a poll that may wait (a non-zero timeout) parks the greenlet until
//! one of its fds is ready or the timeout passes, then the real call with a zero timeout
//! fills the result exactly as the kernel would: with `patch_select()` for any fds, with
//! `patch_net()` alone for sets holding a socket the net hooks know (what
//! `TcpStream::connect_timeout` waits with). One known fd parks on its own registration
//! with the reactor; any other set on a temporary epoll instance holding its fds
//! ([`PollSet`]). A `ppoll` with a signal mask, and any poll outside greenlets, is
//! glibc's. A kill arriving while the greenlet waits makes the call fail with
//! `ECANCELED`.

use super::wait::{PollSet, Wait, deadline_ms, deadline_ts, park_fd, passed};
use super::{set_errno, tracked};
use crate::monkey::{SELECT, TRACKING, real, rt, state};
use libc::c_int;
use std::time::Instant;

/// Whether a poll of `n` fds at `fds` that may wait is made cooperatively here.
///
/// # Safety
/// `fds` holds `n` readable pollfds when non-null.
unsafe fn cooperative(fds: *mut libc::pollfd, n: libc::nfds_t) -> bool {
    let s = state();
    if s & (SELECT | TRACKING) == 0 || (n > 0 && fds.is_null()) || !rt::in_greenlet() {
        return false;
    }
    if s & SELECT != 0 {
        return true;
    }
    // SAFETY: the caller's contract (checked non-null when n > 0).
    let set = unsafe { pollfds(fds, n) };
    set.iter().any(|p| tracked(p.fd).is_some())
}

/// The `n` pollfds at `fds` (empty for `n == 0`).
///
/// # Safety
/// `fds` holds `n` readable pollfds when `n > 0`.
unsafe fn pollfds<'a>(fds: *mut libc::pollfd, n: libc::nfds_t) -> &'a [libc::pollfd] {
    if n == 0 {
        return &[];
    }
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts(fds, n as usize) }
}

/// Hook for `poll(2)`.
///
/// # Safety
/// The libc contract of `poll`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int) -> c_int {
    // SAFETY: `fds` holds `n` pollfds (poll's contract).
    if timeout == 0 || !unsafe { cooperative(fds, n) } {
        // SAFETY: forwarded unchanged.
        return unsafe { real::poll(fds, n, timeout) };
    }
    // SAFETY: as above.
    unsafe { green_poll(fds, n, deadline_ms(timeout)) }
}

/// Hook for `ppoll(2)`.
///
/// # Safety
/// The libc contract of `ppoll`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ppoll(
    fds: *mut libc::pollfd,
    n: libc::nfds_t,
    ts: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    // SAFETY: `ts` is null or readable (ppoll's contract).
    let deadline = unsafe { deadline_ts(ts) };
    // (A signal mask must be in force for the wait itself: only the kernel can do that.)
    let cooperative_now = mask.is_null()
        && matches!(deadline, Ok(d) if d.is_none_or(|d| d > Instant::now()))
        // SAFETY: `fds` holds `n` pollfds (ppoll's contract).
        && unsafe { cooperative(fds, n) };
    match deadline {
        // SAFETY: as above.
        Ok(d) if cooperative_now => unsafe { green_poll(fds, n, d) },
        // SAFETY: forwarded unchanged.
        _ => unsafe { real::ppoll(fds, n, ts, mask) },
    }
}

/// A poll from a greenlet: zero-timeout polls, parking in between until an fd is ready
/// or `deadline` passes.
///
/// # Safety
/// `fds` holds `n` readable and writable pollfds when `n > 0`.
unsafe fn green_poll(fds: *mut libc::pollfd, n: libc::nfds_t, deadline: Option<Instant>) -> c_int {
    let mut set: Option<PollSet> = None;
    loop {
        // SAFETY: the caller's contract; a zero timeout never blocks.
        let r = unsafe { real::poll(fds, n, 0) };
        if r != 0 || passed(deadline) {
            return r;
        }
        // SAFETY: the caller's contract.
        let list = unsafe { pollfds(fds, n) };
        let one = match list {
            [p] => tracked(p.fd).map(|sock| (p, sock)),
            _ => None,
        };
        let waited = match one {
            Some((p, sock)) => park_fd(p.fd, sock, interest(p.events), deadline),
            None => {
                if set.is_none() {
                    let Some(mut s) = PollSet::new() else {
                        // No epoll instance to be had: the real call blocks, as unpatched.
                        let ms = super::wait::remaining_ms(deadline).unwrap_or(-1);
                        // SAFETY: the caller's contract.
                        return unsafe { real::poll(fds, n, ms) };
                    };
                    for p in list {
                        s.add(p.fd, p.events);
                    }
                    set = Some(s);
                }
                match &set {
                    Some(s) => s.park(deadline),
                    None => Wait::TimedOut,
                }
            }
        };
        if let Wait::Failed(e) = waited {
            set_errno(e);
            return -1;
        }
    }
}

/// The reactor interest of the poll events `ev`.
fn interest(ev: libc::c_short) -> mio::Interest {
    let read = ev & (libc::POLLIN | libc::POLLPRI | libc::POLLRDNORM) != 0;
    let write = ev & (libc::POLLOUT | libc::POLLWRNORM) != 0;
    match (read, write) {
        (_, false) => mio::Interest::READABLE,
        (false, true) => mio::Interest::WRITABLE,
        (true, true) => mio::Interest::READABLE | mio::Interest::WRITABLE,
    }
}
