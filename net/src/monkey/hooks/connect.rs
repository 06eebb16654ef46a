//! Hook of `connect`.
//!
//! On an fd the hooks do not handle it is glibc's. On an adopted socket that blocks for
//! the user, the non-blocking real `connect` is completed by waiting for writability
//! (parked in a greenlet, in `poll` on a plain thread) within the user's send timeout
//! (then `EINPROGRESS`), and a Unix listener's full backlog is waited out with naps; a
//! kill arriving meanwhile makes it fail with `ECANCELED`.

use super::wait::{Dir, Wait, timeout, wait};
use super::{Mode, Sock, errno, green_sleep, mode, set_errno};
use crate::monkey::real;
use crate::unix::{UNIX_CONNECT_FIRST_NAP, UNIX_CONNECT_MAX_NAP};
use libc::{c_int, sockaddr, socklen_t};
use std::time::{Duration, Instant};

/// Hook for `connect(2)`.
///
/// # Safety
/// The libc contract of `connect`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let (green, slot) = match mode(fd) {
        Mode::Pass | Mode::Polled(_) | Mode::File => {
            // SAFETY: forwarded unchanged.
            return unsafe { real::connect(fd, addr, len) };
        }
        Mode::Green(s) => (true, s),
        Mode::Emulate(s) => (false, s),
    };
    // SAFETY: forwarded unchanged (the fd is non-blocking underneath).
    let r = unsafe { real::connect(fd, addr, len) };
    if r == 0 {
        return r;
    }
    let e = errno();
    if e == libc::EAGAIN && is_unix_addr(addr, len) {
        return connect_unix_full_backlog(fd, addr, len, green, slot);
    }
    if e != libc::EINPROGRESS {
        return r;
    }
    let deadline = timeout(slot, Dir::Write);
    loop {
        match wait(fd, slot, green, Dir::Write, deadline) {
            Wait::Ready => {
                let mut p = libc::pollfd {
                    fd,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one valid pollfd, zero timeout.
                if unsafe { real::poll(&mut p, 1, 0) } == 0 {
                    continue;
                }
                let mut err: c_int = 0;
                let mut l = std::mem::size_of::<c_int>() as socklen_t;
                // SAFETY: `err`/`l` are valid for writes of an int.
                let r = unsafe {
                    real::getsockopt(
                        fd,
                        libc::SOL_SOCKET,
                        libc::SO_ERROR,
                        (&raw mut err).cast(),
                        &mut l,
                    )
                };
                if r != 0 {
                    return r;
                }
                if err == 0 {
                    return 0;
                }
                set_errno(err);
                return -1;
            }
            Wait::TimedOut => {
                set_errno(libc::EINPROGRESS);
                return -1;
            }
            Wait::Failed(e) => {
                set_errno(e);
                return -1;
            }
        }
    }
}

/// Whether `addr` is an `AF_UNIX` address (`connect` reads its family the same way).
fn is_unix_addr(addr: *const sockaddr, len: socklen_t) -> bool {
    if addr.is_null() || (len as usize) < std::mem::size_of::<libc::sa_family_t>() {
        return false;
    }
    // SAFETY: the caller of `connect` passes `len` readable bytes at `addr`, and the
    // address family is their first field.
    let family = unsafe { std::ptr::read_unaligned(addr.cast::<libc::sa_family_t>()) };
    c_int::from(family) == libc::AF_UNIX
}

/// A `connect` to a Unix stream listener whose backlog is full: the non-blocking real fd
/// says `EAGAIN` where a blocking one waits for room (the kernel reports no progress
/// through readiness, so there is nothing to park on). Retries after naps of
/// [`UNIX_CONNECT_FIRST_NAP`] doubling to [`UNIX_CONNECT_MAX_NAP`], as
/// `green::net::UnixStream::connect` does (cooperative in a greenlet, plain sleeps on a
/// thread) until it connects, fails otherwise, or the user's send timeout
/// (`SO_SNDTIMEO`, which bounds the kernel's wait too) passes: then `EAGAIN`, as the
/// kernel says.
#[cold]
fn connect_unix_full_backlog(
    fd: c_int,
    addr: *const sockaddr,
    len: socklen_t,
    green: bool,
    slot: Sock,
) -> c_int {
    let deadline = timeout(slot, Dir::Write);
    let mut nap = UNIX_CONNECT_FIRST_NAP;
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left == Some(Duration::ZERO) {
            set_errno(libc::EAGAIN);
            return -1;
        }
        let d = left.map_or(nap, |l| nap.min(l));
        if green {
            if !green_sleep(d) {
                set_errno(libc::ECANCELED);
                return -1;
            }
        } else {
            thread_sleep(d);
        }
        nap = (nap * 2).min(UNIX_CONNECT_MAX_NAP);
        // SAFETY: forwarded unchanged, as the first attempt.
        let r = unsafe { real::connect(fd, addr, len) };
        if r == 0 {
            return 0;
        }
        let e = errno();
        if e != libc::EAGAIN && e != libc::EINTR {
            return r;
        }
    }
}

/// Blocks the thread for `d` in glibc's `nanosleep` (for calls outside greenlets).
fn thread_sleep(d: Duration) {
    let ts = libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    };
    // SAFETY: a valid timespec and a null remainder; an early return (EINTR) only
    // shortens the nap.
    unsafe { real::nanosleep(&ts, std::ptr::null_mut()) };
}
