//! Waiting for a socket's readiness, for the hooks that would block: a greenlet parks on
//! the reactor ([`park_fd`]; a kill arriving meanwhile makes the wait fail with
//! `ECANCELED`), a plain thread blocks in glibc's `poll` ([`poll_block`]), both bounded by
//! the user's `SO_RCVTIMEO`/`SO_SNDTIMEO` ([`timeout`]). A set of fds of any kind (a
//! `poll` or `select`) is waited for as one fd, through a temporary epoll instance
//! ([`PollSet`]). Hooks nothing itself.

use super::{Sock, errno, guarded, set_errno};
use crate::monkey::{real, rt};
use libc::c_int;
use std::time::Instant;

/// The direction of a call: what readiness it waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Dir {
    Read,
    Write,
}

impl Dir {
    pub(super) fn interest(self) -> mio::Interest {
        match self {
            Dir::Read => mio::Interest::READABLE,
            Dir::Write => mio::Interest::WRITABLE,
        }
    }
    pub(super) fn events(self) -> libc::c_short {
        match self {
            Dir::Read => libc::POLLIN,
            Dir::Write => libc::POLLOUT,
        }
    }
}

/// Outcome of waiting for readiness.
pub(super) enum Wait {
    Ready,
    TimedOut,
    Failed(c_int),
}

pub(super) fn remaining_ms(deadline: Option<Instant>) -> Option<c_int> {
    deadline.map(|d| {
        let left = d.saturating_duration_since(Instant::now());
        let ms = left.as_micros().div_ceil(1000);
        c_int::try_from(ms).unwrap_or(c_int::MAX)
    })
}

/// Blocks the thread in glibc's `poll` until `fd` has `events` or `deadline` passes.
fn poll_block(fd: c_int, events: libc::c_short, deadline: Option<Instant>) -> Wait {
    loop {
        let ms = remaining_ms(deadline);
        if ms == Some(0) {
            return Wait::TimedOut;
        }
        let mut p = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { real::poll(&mut p, 1, ms.unwrap_or(-1)) };
        match r {
            1.. => return Wait::Ready,
            0 => continue,
            _ if errno() == libc::EINTR => continue,
            _ => return Wait::Failed(errno()),
        }
    }
}

/// Parks the greenlet on the reactor until `fd` is ready for `interest`.
pub(super) fn park_fd(
    fd: c_int,
    slot: Sock,
    interest: mio::Interest,
    deadline: Option<Instant>,
) -> Wait {
    slot.mark_registered();
    match guarded(|| rt::wait_fd(fd, slot.tag(), interest, deadline)) {
        Some(Ok(())) => Wait::Ready,
        Some(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut => Wait::TimedOut,
        Some(Err(e)) => Wait::Failed(match (e.raw_os_error(), e.kind()) {
            (Some(n), _) => n,
            // forget_fd: the fd was closed under us (gevent says EBADF too).
            (None, std::io::ErrorKind::ConnectionAborted) => libc::EBADF,
            // The hub found nothing that could ever wake us.
            (None, _) => libc::EDEADLK,
        }),
        None => Wait::Failed(libc::ECANCELED),
    }
}

pub(super) fn wait(
    fd: c_int,
    slot: Sock,
    green: bool,
    dir: Dir,
    deadline: Option<Instant>,
) -> Wait {
    if green {
        park_fd(fd, slot, dir.interest(), deadline)
    } else {
        poll_block(fd, dir.events(), deadline)
    }
}

pub(super) fn timeout(slot: Sock, dir: Dir) -> Option<Instant> {
    let t = match dir {
        Dir::Read => slot.rcv_timeout(),
        Dir::Write => slot.snd_timeout(),
    };
    t.map(|t| Instant::now() + t)
}

/// A temporary epoll instance holding the fds of one `poll` or `select`: the greenlet
/// parks on it as on one fd (an epoll fd is readable while any of its fds is ready).
pub(super) struct PollSet {
    ep: c_int,
    /// How many fds it holds.
    len: usize,
}

impl PollSet {
    /// An empty set; `None` if no epoll instance can be made.
    pub(super) fn new() -> Option<PollSet> {
        // SAFETY: plain syscall wrapper; the result is checked.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        (ep >= 0).then_some(PollSet { ep, len: 0 })
    }

    /// Adds `fd` for the `poll(2)` events `events` (the `EPOLL*` bits have the same
    /// values). Fds epoll refuses (regular files, which are always ready; negative fds,
    /// which poll ignores; a repeated fd) are left out.
    pub(super) fn add(&mut self, fd: c_int, events: libc::c_short) {
        if fd < 0 {
            return;
        }
        let mask = (libc::POLLIN
            | libc::POLLPRI
            | libc::POLLOUT
            | libc::POLLRDNORM
            | libc::POLLRDBAND
            | libc::POLLWRNORM
            | libc::POLLWRBAND
            | libc::POLLRDHUP) as u16;
        let mut ev = libc::epoll_event {
            events: u32::from(events as u16 & mask),
            u64: fd as u64,
        };
        // SAFETY: our own epoll fd and a valid event.
        if unsafe { libc::epoll_ctl(self.ep, libc::EPOLL_CTL_ADD, fd, &mut ev) } == 0 {
            self.len += 1;
        }
    }

    /// Parks until one of the fds is ready (or, if the set is empty, until `deadline`).
    pub(super) fn park(&self, deadline: Option<Instant>) -> Wait {
        let saved = errno();
        let r = if self.len == 0 {
            guarded(|| match deadline {
                Some(d) => rt::sleep(d.saturating_duration_since(Instant::now())),
                // Nothing to wait for, for ever: as the kernel, wait until interrupted.
                None => loop {
                    rt::sleep(std::time::Duration::from_secs(3600));
                },
            })
            .map(|()| Err(std::io::ErrorKind::TimedOut.into()))
        } else {
            guarded(|| rt::wait_readable(self.ep, deadline))
        };
        set_errno(saved);
        match r {
            Some(Ok(())) => Wait::Ready,
            Some(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut => Wait::TimedOut,
            Some(Err(e)) => Wait::Failed(e.raw_os_error().unwrap_or(libc::EINVAL)),
            None => Wait::Failed(libc::ECANCELED),
        }
    }
}

impl Drop for PollSet {
    fn drop(&mut self) {
        let saved = errno();
        // SAFETY: our own epoll fd, closed once, without going through the close hook.
        unsafe { real::close(self.ep) };
        set_errno(saved);
    }
}

/// Converts a `poll`-style timeout in milliseconds (negative: none) to a deadline.
pub(super) fn deadline_ms(ms: c_int) -> Option<Instant> {
    (ms >= 0).then(|| Instant::now() + std::time::Duration::from_millis(ms as u64))
}

/// Converts a timespec timeout (null: none) to a deadline; `Err(())` for an invalid one.
///
/// # Safety
/// `ts` is null or readable.
pub(super) unsafe fn deadline_ts(ts: *const libc::timespec) -> Result<Option<Instant>, ()> {
    if ts.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller's contract (checked non-null).
    let t = unsafe { *ts };
    if t.tv_sec < 0 || !(0..1_000_000_000).contains(&t.tv_nsec) {
        return Err(());
    }
    let d = std::time::Duration::new(t.tv_sec as u64, t.tv_nsec as u32);
    Ok(Some(
        Instant::now().checked_add(d).unwrap_or_else(far_future),
    ))
}

/// A deadline too far to matter (for timeouts that overflow `Instant`).
pub(super) fn far_future() -> Instant {
    Instant::now() + std::time::Duration::from_secs(100 * 365 * 24 * 3600)
}

/// Whether `deadline` has passed.
pub(super) fn passed(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}
