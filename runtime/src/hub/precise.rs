//! Short timeouts to the microsecond: a `timerfd` beside the reactor's epoll.
//!
//! epoll's timeout is whole milliseconds, and mio rounds a `Duration` up to the next
//! one, so a poll that should end at a timer's deadline ends up to 1 ms after it. For a
//! crowd of greenlets sleeping 10 ms each (a handler waiting on a database) that is
//! about a tenth more per wait: 100 connections of `examples/http_hello.rs --sleep-ms
//! 10` served 8,800 requests/s with it, 9,400 without (the `http` bench). Before a poll whose
//! timeout is under [`PRECISE_BELOW`], the hub arms a timerfd for exactly that
//! timeout; the timerfd is registered in the epoll instance (edge-triggered, under
//! [`TOKEN`]), so its expiry ends the poll at the deadline. The poll keeps its own,
//! rounded-up timeout as well: if the timerfd cannot be made (the process is out of
//! fds), nothing but precision is lost, and it is tried again at the next short poll.
//!
//! Cost: one `timerfd_settime` system call per poll that blocks with a timeout under
//! [`PRECISE_BELOW`], and more such polls, as timers a few microseconds apart no longer
//! share one wake-up (in that benchmark 12.6 µs of server CPU per request instead of
//! 9.1, at 12% busy); nothing for a hub that does not block (it polls without a
//! timeout) or waits longer (a server's idle timeouts); one fd per hub that ever armed
//! it, made on first use.
//!
//! The timerfd is never read. Arming it (`timerfd_settime`) resets its expiry count, and
//! an edge-triggered registration reports every expiry, read or not; an expiry no poll
//! waited for ends the next poll early once, which only sends the hub round its loop.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

/// The timerfd's token in the reactor.
pub(crate) const TOKEN: Token = Token(usize::MAX - 2);

/// Timeouts at least this long keep epoll's millisecond: under 1% late.
pub(crate) const PRECISE_BELOW: Duration = Duration::from_millis(100);

/// The reactor's timerfd, made on first use.
#[derive(Default)]
pub(crate) struct PreciseTimer {
    fd: Option<OwnedFd>,
    /// A failure to make or arm it was logged (once per hub; it is tried again at the
    /// next short poll: running out of fds passes).
    warned: bool,
}

impl PreciseTimer {
    /// Arms the timer to expire `timeout` from now if that is short enough to need it
    /// (see the module docs). On an error the poll's own timeout still ends the wait,
    /// up to 1 ms late; the first error is logged.
    pub(crate) fn arm(&mut self, registry: &Registry, timeout: Duration) {
        if timeout.is_zero() || timeout >= PRECISE_BELOW {
            return;
        }
        if let Err(e) = self.try_arm(registry, timeout)
            && !std::mem::replace(&mut self.warned, true)
        {
            log::warn!("green: a short timeout falls back to whole milliseconds: {e}");
        }
    }

    fn try_arm(&mut self, registry: &Registry, timeout: Duration) -> io::Result<()> {
        let fd = match &self.fd {
            Some(fd) => fd.as_raw_fd(),
            None => {
                // SAFETY: plain system call; the flags are valid for timerfd_create.
                let raw = unsafe {
                    libc::timerfd_create(
                        libc::CLOCK_MONOTONIC,
                        libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
                    )
                };
                if raw < 0 {
                    return Err(io::Error::last_os_error());
                }
                // SAFETY: `raw` was just made and is owned by nothing else.
                let fd = unsafe { OwnedFd::from_raw_fd(raw) };
                registry.register(&mut SourceFd(&raw), TOKEN, Interest::READABLE)?;
                self.fd.insert(fd).as_raw_fd()
            }
        };
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: timeout.as_secs() as libc::time_t,
                tv_nsec: timeout.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: `fd` is the timerfd made above; `spec` is a valid itimerspec and the
        // old value is not asked for.
        let rc = unsafe { libc::timerfd_settime(fd, 0, &spec, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
