//! Hook of `poll` (what `TcpStream::connect_timeout` waits with).
//!
//! Only a poll from a greenlet that may wait (a non-zero timeout), on a set that holds a
//! socket the hooks know, is cooperative; any other is glibc's. A kill arriving meanwhile makes it fail:
//! `ECANCELED` while parked on one socket, `EINTR` between the polls of several.

use super::wait::{Wait, park_fd, remaining_ms};
use super::{green_sleep, set_errno, tracked};
use crate::monkey::{TRACKING, real, rt, state};
use libc::c_int;
use std::time::{Duration, Instant};

/// Hook for `poll(2)` (what `TcpStream::connect_timeout` waits with).
///
/// From a greenlet, a poll on one tracked socket parks on the reactor; a poll on several
/// fds of which one is tracked is approximated by non-blocking polls with short
/// cooperative sleeps; anything else is glibc's.
///
/// # Safety
/// The libc contract of `poll`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int) -> c_int {
    if state() & TRACKING == 0 || n == 0 || timeout == 0 || fds.is_null() || !rt::in_greenlet() {
        // SAFETY: forwarded unchanged.
        return unsafe { real::poll(fds, n, timeout) };
    }
    // SAFETY: the caller passes `n` valid pollfds.
    let set = unsafe { std::slice::from_raw_parts(fds, n as usize) };
    let first = if n == 1 { tracked(set[0].fd) } else { None };
    if first.is_none() && !set.iter().any(|p| tracked(p.fd).is_some()) {
        // SAFETY: forwarded unchanged.
        return unsafe { real::poll(fds, n, timeout) };
    }
    let deadline = (timeout > 0).then(|| Instant::now() + Duration::from_millis(timeout as u64));
    let mut backoff = Duration::from_millis(1);
    loop {
        // SAFETY: forwarded with a zero timeout.
        let r = unsafe { real::poll(fds, n, 0) };
        if r != 0 || remaining_ms(deadline) == Some(0) {
            return r;
        }
        if let Some(slot) = first {
            let ev = set[0].events;
            let mut interest = None::<mio::Interest>;
            if ev & (libc::POLLIN | libc::POLLPRI) != 0 {
                interest = Some(mio::Interest::READABLE);
            }
            if ev & libc::POLLOUT != 0 {
                interest =
                    Some(interest.map_or(mio::Interest::WRITABLE, |i| i | mio::Interest::WRITABLE));
            }
            match park_fd(
                set[0].fd,
                slot,
                interest.unwrap_or(mio::Interest::READABLE),
                deadline,
            ) {
                Wait::Ready | Wait::TimedOut => {}
                Wait::Failed(e) => {
                    set_errno(e);
                    return -1;
                }
            }
        } else {
            let left = deadline.map_or(backoff, |d| d.saturating_duration_since(Instant::now()));
            if !green_sleep(backoff.min(left)) {
                set_errno(libc::EINTR);
                return -1;
            }
            backoff = (backoff * 2).min(Duration::from_millis(20));
        }
    }
}
