//! Waiting for a socket's readiness, for the hooks that would block: a greenlet parks on
//! the reactor ([`park_fd`]; a kill arriving meanwhile makes the wait fail with
//! `ECANCELED`), a plain thread blocks in glibc's `poll` ([`poll_block`]), both bounded by
//! the user's `SO_RCVTIMEO`/`SO_SNDTIMEO` ([`timeout`]). Hooks nothing itself.

use super::{Sock, errno, guarded};
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
